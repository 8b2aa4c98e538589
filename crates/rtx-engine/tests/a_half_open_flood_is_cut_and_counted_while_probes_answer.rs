//! A half-open flood against the one default listener: thousands of connections that send the
//! start of a request and never finish their headers. Each is closed within the header-read
//! timeout (or earlier, making room at the connection cap) and counted, while `/health` and
//! `/ready` keep answering (99% within 100 ms, every one within a kubelet's 1 s), because the
//! timeout and the cap keep the engine's descriptors and its accept loop free. Alone in its
//! binary, so no other test shares the CPU.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtx_testkit::{
    half_open, metric_sum, peer_state, raise_open_file_limit, timed_get, wait_for_ready_status,
    wait_until, Engine, PeerState,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

/// Connections in the flood: a few thousand, four times the cap.
const FLOOD: usize = 2_000;
const MAX_CONNECTIONS: usize = 500;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The probes' budget: 99% of them answer within it.
const PROBE_BUDGET: Duration = Duration::from_millis(100);
/// A kubelet's default probe timeout (`timeoutSeconds: 1`): every probe answers within it. The
/// slowest one or two of a few hundred can be the test machine's scheduler, not the engine
/// (seen at 150–215 ms with builds running beside the test); a probe past a second would fail
/// a real liveness check.
const KUBELET_TIMEOUT: Duration = Duration::from_secs(1);

fn closed(text: &str, reason: &str) -> f64 {
    metric_sum(
        text,
        "rtx_http_connections_closed_total",
        &[("reason", reason)],
    )
}

#[test]
fn a_half_open_flood_is_closed_within_the_header_timeout_and_counted_while_probes_answer() {
    // The flood, the probes and the engine's own descriptors, with room to spare.
    raise_open_file_limit(FLOOD + MAX_CONNECTIONS + 1_024);
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_HTTP_HEADER_READ_TIMEOUT", "1s"),
            ("RTX_HTTP_MAX_CONNECTIONS", &MAX_CONNECTIONS.to_string()),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    wait_for_ready_status(&engine, 200);
    let before = engine.scrape();

    // Probes every 20 ms on fresh connections, as a kubelet makes them, from before the flood
    // starts until well after its last connection timed out.
    let flooding = Arc::new(AtomicBool::new(true));
    let prober = {
        let flooding = Arc::clone(&flooding);
        let addr = engine.addr;
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            let mut peak_open = 0.0_f64;
            let mut tail_until = None;
            loop {
                for path in ["/health", "/ready"] {
                    answers.push((path, timed_get(addr, path)));
                }
                if let Some((200, text)) = rtx_testkit::http_get(addr, "/metrics") {
                    peak_open =
                        peak_open.max(metric_sum(&text, "rtx_http_connections_active", &[]));
                }
                if !flooding.load(Ordering::Acquire) {
                    let until =
                        *tail_until.get_or_insert_with(|| Instant::now() + HEADER_TIMEOUT * 2);
                    if Instant::now() >= until {
                        return (answers, peak_open);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // The flood arrives in bursts of 100 every 10 ms: 2,000 connections in about 200 ms.
    let prefix = "GET /api/orders HTTP/1.1\r\nHost: flood\r\n";
    let started = Instant::now();
    let mut flood: Vec<TcpStream> = Vec::with_capacity(FLOOD);
    while flood.len() < FLOOD {
        for _ in 0..100 {
            flood.push(half_open(engine.addr, prefix));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let last_opened = Instant::now();
    eprintln!("{FLOOD} half-open connections in {:?}", started.elapsed());

    // Within the header timeout of the last one (plus scheduling slack), the engine has closed
    // every one of them, sending nothing: no request was ever complete.
    let deadline = last_opened + HEADER_TIMEOUT + Duration::from_millis(1_500);
    let mut open = 0;
    for stream in &mut flood {
        let wait = deadline.saturating_duration_since(Instant::now());
        match peer_state(stream, wait.max(Duration::from_millis(1))) {
            PeerState::Closed(sent) => assert!(
                sent.is_empty(),
                "a half-open connection got an answer: {:?}",
                String::from_utf8_lossy(&sent)
            ),
            PeerState::Open(_) => open += 1,
        }
    }
    assert_eq!(
        open,
        0,
        "{open} of {FLOOD} half-open connections were still open {:?} after the last was opened",
        deadline - last_opened
    );
    flooding.store(false, Ordering::Release);
    let (answers, peak_open) = prober.join().expect("the prober");
    drop(flood);

    // Every probe answered 200, and within the budget.
    let mut latencies: Vec<Duration> = answers.iter().map(|(_, (_, took))| *took).collect();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    eprintln!(
        "{} probes during the flood: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, (status, took))| *status != Some(200) || *took > KUBELET_TIMEOUT)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} probes failed or took longer than {KUBELET_TIMEOUT:?}: {failed:?}",
        failed.len(),
        answers.len()
    );
    assert!(
        p(0.99) <= PROBE_BUDGET,
        "p99 of the probes {:?} is past {PROBE_BUDGET:?}",
        p(0.99)
    );

    // Every flood connection was closed by the engine exactly once, for one of two reasons: the
    // cap (the oldest waiting connection makes room for a new one) or the header timeout.
    wait_until(
        Duration::from_secs(5),
        "the flood's closes to be counted",
        || {
            let after = engine.scrape();
            let flood_closed = (closed(&after, "header_timeout")
                - closed(&before, "header_timeout"))
                + (closed(&after, "limit") - closed(&before, "limit"));
            flood_closed >= FLOOD as f64
        },
    );
    let after = engine.scrape();
    let by_limit = closed(&after, "limit") - closed(&before, "limit");
    let by_timeout = closed(&after, "header_timeout") - closed(&before, "header_timeout");
    let probes = answers.len() as f64;
    assert!(
        by_limit + by_timeout <= FLOOD as f64 + probes,
        "more closes than connections: {by_limit} for the cap, {by_timeout} for the timeout"
    );
    assert!(by_timeout >= 1.0, "none timed out: {after}");
    // How many reached the cap depends on how fast this machine opens them; that the open
    // count stays bounded does not. Connections chosen to make room stay open until their tasks
    // run, and the engine stops accepting while 32 of them are still closing; the gauge may
    // also lag a removal by the few worker threads dropping a slot at that moment.
    eprintln!(
        "closed for the cap {by_limit}, for the header timeout {by_timeout}; at most {peak_open} open"
    );
    assert!(
        peak_open <= (MAX_CONNECTIONS + 32 + 8) as f64,
        "{peak_open} connections open at once with a cap of {MAX_CONNECTIONS}"
    );
    // Nothing is left open but this scrape's own connection.
    wait_until(
        Duration::from_secs(5),
        "the connection gauge to fall back",
        || metric_sum(&engine.scrape(), "rtx_http_connections_active", &[]) <= 2.0,
    );
}
