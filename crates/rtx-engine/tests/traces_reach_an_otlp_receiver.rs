//! Spans reach an OTLP/HTTP receiver that decodes them with the official OpenTelemetry protobuf
//! definitions: `POST /api/orders` with a `traceparent` and a `tracestate` yields the server
//! span as a child of the caller's span (marked remote), `order.execute` below it and
//! `db.query`/`lp.request` below that, all in the caller's trace and carrying its tracestate; the
//! LP request's trace context names the LP span itself. The same trace comes out whole from a
//! real OpenTelemetry collector (rotel) that the engine exports to. Exemplars in an OpenMetrics
//! scrape name traces the receiver got; a malformed `traceparent` never fails a request; an
//! unreachable collector leaves orders fast and counts the dropped spans.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span, SpanFlags};
use rtx_testkit::{
    blocking_client, free_port, hex_id, loopback_listener, market_order, metric_sum, otlp_receiver,
    post_order, wait_for, wait_for_fill, wait_until, Engine, Rotel,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const HAS_IS_REMOTE: u32 = SpanFlags::ContextHasIsRemoteMask as u32;
const IS_REMOTE: u32 = SpanFlags::ContextIsRemoteMask as u32;

/// An order slower than this waited on the exporter. The slow collector answers after 3 s, so
/// an order held by an export shows as seconds; a loaded 2-core machine alone stretches an order
/// to a few hundred milliseconds now and then, which a tighter bound would take for a defect.
const SLOW_ORDER: Duration = Duration::from_secs(2);

/// An order with a `traceparent` header and the [`TRACESTATE`]; it must be answered 201.
fn traced_order(
    http: &reqwest::blocking::Client,
    engine: &Engine,
    account: &str,
    traceparent: &str,
) -> serde_json::Value {
    let response = http
        .post(engine.url("/api/orders"))
        .header("traceparent", traceparent)
        .header("tracestate", TRACESTATE)
        .body(market_order(account, "EURUSD", "buy", 0.01))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().unwrap()
}

/// A plain order; it must be answered 201.
fn order(http: &reqwest::blocking::Client, engine: &Engine, account: &str) {
    let (status, body) = post_order(http, engine, &market_order(account, "EURUSD", "buy", 0.01));
    assert_eq!(status, 201, "{body}");
}

/// The spans of `trace` that the receiver holds: the server span, `order.execute`, `db.query`
/// and `lp.request`, once all four are in.
fn order_spans(
    spans: &Mutex<Vec<Span>>,
    trace: &str,
    collector_log: &dyn Fn() -> String,
) -> (Span, Span, Span, Span) {
    wait_for(
        Duration::from_secs(20),
        &format!("the spans of trace {trace}"),
        || {
            let ours: Vec<Span> = spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| hex_id(&s.trace_id) == trace)
                .cloned()
                .collect();
            let find = |name: &str| ours.iter().find(|s| s.name == name).cloned();
            match (
                find("POST /api/orders"),
                find("order.execute"),
                find("db.query"),
                find("lp.request"),
            ) {
                (Some(a), Some(b), Some(c), Some(d)) => Ok((a, b, c, d)),
                _ => Err(format!(
                    "received {:?}{}",
                    ours.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    collector_log()
                )),
            }
        },
    )
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .map(|v| format!("{:?}", v.value.unwrap()))
}

/// The tree of an order traced by a caller (`trace`, `caller_span`, flags 01, [`TRACESTATE`]):
/// parentage, kinds, the remote-parent bits, the tracestate on every span, and the LP
/// request's outgoing context naming the LP span itself.
fn check_order_trace(
    spans: &Mutex<Vec<Span>>,
    trace: &str,
    caller_span: &str,
    order: &serde_json::Value,
    collector_log: &dyn Fn() -> String,
) {
    let (server, execute, db, lp) = order_spans(spans, trace, collector_log);
    assert_eq!(
        hex_id(&server.parent_span_id),
        caller_span,
        "the server span is the caller's child"
    );
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        server.flags,
        0x01 | HAS_IS_REMOTE | IS_REMOTE,
        "sampled, and the parent known to be remote"
    );
    assert!(attr(&server, "http.route").unwrap().contains("/api/orders"));
    assert!(attr(&server, "http.response.status_code")
        .unwrap()
        .contains("201"));
    assert_eq!(
        execute.parent_span_id, server.span_id,
        "order.execute under the server span"
    );
    assert!(attr(&execute, "order.id")
        .unwrap()
        .contains(order["id"].as_str().unwrap()));
    assert_eq!(
        db.parent_span_id, execute.span_id,
        "db.query under order.execute"
    );
    assert_eq!(db.kind, SpanKind::Client as i32);
    assert!(attr(&db, "db.system").unwrap().contains("sqlite"));
    assert_eq!(
        lp.parent_span_id, execute.span_id,
        "lp.request under order.execute"
    );
    assert_eq!(lp.kind, SpanKind::Client as i32);
    for local in [&execute, &db, &lp] {
        assert_eq!(
            local.flags,
            0x01 | HAS_IS_REMOTE,
            "{}: a local parent, known to be local",
            local.name
        );
    }
    for span in [&server, &execute, &db, &lp] {
        assert_eq!(span.trace_state, TRACESTATE, "{}", span.name);
    }
    // What the LP request sends: the caller's trace, the LP span's own id, the tracestate.
    assert_eq!(
        attr(&lp, "lp.traceparent").unwrap(),
        format!("StringValue(\"00-{trace}-{}-01\")", hex_id(&lp.span_id)),
    );
    assert_eq!(
        attr(&lp, "lp.tracestate").unwrap(),
        format!("StringValue(\"{TRACESTATE}\")")
    );
}

#[test]
fn an_order_trace_arrives_with_the_right_parentage_and_exemplars_point_at_it() {
    let (otlp, spans) = otlp_receiver();
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_OTLP_ENDPOINT", &format!("http://{otlp}")),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let http = blocking_client();
    // demo-1 is A-book: its order goes to an LP, once the LPs quote.
    wait_for_fill(&http, &engine, "demo-1");
    let order = traced_order(
        &http,
        &engine,
        "demo-1",
        &format!("00-{TRACE}-{CALLER_SPAN}-01"),
    );
    assert!(
        ["filled", "rejected", "error"].contains(&order["status"].as_str().unwrap()),
        "{order}"
    );
    // A malformed header starts a new trace and never fails the request.
    traced_order(&http, &engine, "demo-5", "00-NOT-A-TRACEPARENT-01");

    check_order_trace(&spans, TRACE, CALLER_SPAN, &order, &String::new);
    // Exemplars in an OpenMetrics scrape name traces the receiver got.
    let om = http
        .get(engine.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let exemplar_traces: Vec<&str> = om
        .lines()
        .filter(|l| {
            l.starts_with("rtx_order_execution_latency_seconds_bucket") && l.contains("trace_id=\"")
        })
        .filter_map(|l| l.split("trace_id=\"").nth(1).and_then(|r| r.get(..32)))
        .collect();
    assert!(
        !exemplar_traces.is_empty(),
        "no exemplar on the order latency histogram"
    );
    // An exemplar can name an order newer than the spans received so far (the malformed
    // header's): its spans come in a later export.
    wait_for(
        Duration::from_secs(15),
        "every exemplar's trace to be exported",
        || {
            let received: Vec<String> = spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| hex_id(&s.trace_id))
                .collect();
            let missing: Vec<&&str> = exemplar_traces
                .iter()
                .filter(|t| !received.iter().any(|r| r == **t))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("exemplar traces never exported: {missing:?}"))
            }
        },
    );
    // The engine counts an export once the receiver has answered it, which can be just after
    // the receiver holds the spans.
    wait_until(
        Duration::from_secs(15),
        "rtx_spans_exported_total >= 4",
        || metric_sum(&engine.scrape(), "rtx_spans_exported_total", &[]) >= 4.0,
    );
}

#[test]
fn an_order_trace_comes_out_of_a_real_collector_whole() {
    let (receiver, spans) = otlp_receiver();
    let collector = Rotel::start(receiver);
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_OTLP_ENDPOINT", &collector.endpoint),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let http = blocking_client();
    wait_for_fill(&http, &engine, "demo-1");
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let caller = "b7ad6b7169203331";
    let order = traced_order(&http, &engine, "demo-1", &format!("00-{trace}-{caller}-01"));
    check_order_trace(&spans, trace, caller, &order, &|| {
        format!("; the collector logged:\n{}", collector.log())
    });
}

#[test]
fn an_unreachable_collector_never_slows_orders_and_drops_are_counted() {
    let dead = free_port(); // nothing listens here
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_OTLP_ENDPOINT", &format!("http://{dead}")),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let http = blocking_client();
    wait_for_fill(&http, &engine, "demo-4");
    let mut slowest = Duration::ZERO;
    for i in 0..100 {
        let t = Instant::now();
        order(&http, &engine, &format!("demo-{}", 4 + i % 7));
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < SLOW_ORDER,
        "an order took {slowest:?} with the collector down"
    );
    let metrics = wait_for(
        Duration::from_secs(20),
        "at least 100 dropped spans counted",
        || {
            let metrics = engine.scrape();
            let dropped = metric_sum(&metrics, "rtx_spans_dropped_total", &[]);
            if dropped >= 100.0 {
                Ok(metrics)
            } else {
                Err(format!("rtx_spans_dropped_total {dropped}"))
            }
        },
    );
    assert_eq!(metric_sum(&metrics, "rtx_spans_exported_total", &[]), 0.0);
}

#[test]
fn a_slow_collector_never_slows_orders_and_the_queue_stays_bounded() {
    // A collector that takes 3 s to answer each export.
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(3));
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_OTLP_ENDPOINT", &format!("http://{addr}")),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let http = blocking_client();
    wait_for_fill(&http, &engine, "demo-4");
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..300 {
        let t = Instant::now();
        order(&http, &engine, &format!("demo-{}", 4 + i % 7));
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < SLOW_ORDER,
        "an order took {slowest:?} behind a slow collector"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let metrics = engine.scrape();
    let rss = metric_sum(&metrics, "process_resident_memory_bytes", &[]);
    assert!(rss < 200e6, "resident memory {rss} behind a slow collector");
}
