//! Each listener limit on real sockets, with the limits lowered through configuration so the test
//! stays quick: a slow body is cut by the request timeout (408, closed, counted), an idle
//! keep-alive connection by the idle timeout; at the connection cap a waiting connection makes
//! room for a new one, and when every connection is busy the new one is closed at once; the
//! WebSocket cap refuses with the error body; and the management listener keeps serving probes
//! while the main listener is full.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rtx_testkit::{
    free_port, half_open, http_get, metric_sum, peer_state, raise_open_file_limit,
    wait_for_ready_status, wait_until, Engine, PeerState,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

fn closed(engine: &Engine, reason: &str) -> f64 {
    metric_sum(
        &engine.scrape(),
        "rtx_http_connections_closed_total",
        &[("reason", reason)],
    )
}

/// The head of an order whose body never fully arrives.
fn slow_order_head(addr: std::net::SocketAddr) -> String {
    format!(
        "POST /api/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"account_id\":"
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_slow_body_is_answered_408_and_closed_by_the_request_timeout_and_is_not_an_order() {
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_HTTP_REQUEST_TIMEOUT", "1s"),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    wait_for_ready_status(&engine, 200);
    let orders_before = metric_sum(&engine.scrape(), "rtx_orders_total", &[]);
    let started = Instant::now();
    let mut slow = half_open(engine.addr, &slow_order_head(engine.addr));
    let PeerState::Closed(answer) = peer_state(&mut slow, Duration::from_secs(5)) else {
        panic!("a body that never arrives kept its connection open for 5 s");
    };
    let took = started.elapsed();
    let answer = text(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "cut after {took:?} with a 1 s request timeout"
    );
    assert_eq!(closed(&engine, "request_timeout"), 1.0);
    assert_eq!(
        metric_sum(&engine.scrape(), "rtx_orders_total", &[]),
        orders_before,
        "a request cut short is never an order"
    );
    // The same order, sent whole, is one: the timeout is on the upload, not on execution.
    let mut whole = half_open(
        engine.addr,
        &format!(
            "POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
            market_order().len(),
            market_order()
        ),
    );
    let PeerState::Closed(answer) = peer_state(&mut whole, Duration::from_secs(10)) else {
        panic!("a whole order was not answered");
    };
    assert!(
        text(&answer).starts_with("HTTP/1.1 201"),
        "{}",
        text(&answer)
    );
}

fn market_order() -> String {
    r#"{"account_id":"demo-4","symbol":"EURUSD","side":"buy","type":"market","volume":0.01}"#
        .to_owned()
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_and_counted() {
    let engine = Engine::start(
        ENGINE,
        &[("RTX_HTTP_IDLE_TIMEOUT", "1s"), ("RTX_SIM_ORDER_RATE", "0")],
    );
    wait_for_ready_status(&engine, 200);
    let mut conn = half_open(
        engine.addr,
        &format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", engine.addr),
    );
    let PeerState::Open(answer) = peer_state(&mut conn, Duration::from_millis(500)) else {
        panic!("the connection closed right after its first answer");
    };
    assert!(
        text(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        text(&answer)
    );
    let idle_from = Instant::now();
    let PeerState::Closed(rest) = peer_state(&mut conn, Duration::from_secs(4)) else {
        panic!("an idle connection was still open 4 s after its answer with a 1 s idle timeout");
    };
    assert!(rest.is_empty(), "{}", text(&rest));
    assert!(idle_from.elapsed() < Duration::from_secs(3));
    wait_until(
        Duration::from_secs(2),
        "the idle close to be counted",
        || closed(&engine, "idle_timeout") == 1.0,
    );
    assert_eq!(closed(&engine, "header_timeout"), 0.0);
}

/// A scrape of the management listener: it watches the main listener without taking one of its
/// places.
fn management_scrape(management: SocketAddr) -> String {
    match http_get(management, "/metrics") {
        Some((200, text)) => text,
        other => panic!("management scrape: {other:?}"),
    }
}

/// An engine whose main listener takes `cap` connections, watched through a management
/// listener, with header and body timeouts long enough that nothing is cut while a test holds
/// its connections.
fn capped_engine(cap: usize) -> (Engine, SocketAddr) {
    let management = free_port();
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_MANAGEMENT_ADDR", &management.to_string()),
            ("RTX_HTTP_MAX_CONNECTIONS", &cap.to_string()),
            ("RTX_HTTP_HEADER_READ_TIMEOUT", "30s"),
            ("RTX_HTTP_REQUEST_TIMEOUT", "30s"),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    (engine, management)
}

/// Fills the main listener with `cap` orders whose bodies never arrive, and waits until every
/// one is in flight (the management scrape's own request is the `+ 1`).
fn fill_with_busy_orders(engine: &Engine, management: SocketAddr, cap: usize) -> Vec<TcpStream> {
    let busy: Vec<TcpStream> = (0..cap)
        .map(|_| half_open(engine.addr, &slow_order_head(engine.addr)))
        .collect();
    wait_until(
        Duration::from_secs(5),
        "every order to be waiting for its body",
        || {
            metric_sum(
                &management_scrape(management),
                "rtx_http_requests_in_flight",
                &[],
            ) == cap as f64 + 1.0
        },
    );
    busy
}

#[test]
fn at_the_connection_cap_a_waiting_connection_makes_room_and_a_busy_listener_refuses_at_once() {
    const CAP: usize = 20;
    raise_open_file_limit(1_024);
    let (engine, management) = capped_engine(CAP);
    wait_for_ready_status(&engine, 200);
    let watch = |name: &str, labels: &[(&str, &str)]| {
        metric_sum(&management_scrape(management), name, labels)
    };
    let limit = || watch("rtx_http_connections_closed_total", &[("reason", "limit")]);
    // The gauge counts both listeners: the management scrape's own connection is the `+ 1`.
    let open_besides_the_scrape = || watch("rtx_http_connections_active", &[]) - 1.0;
    wait_until(
        Duration::from_secs(5),
        "earlier connections to close",
        || open_besides_the_scrape() == 0.0,
    );

    // The cap full of half-open connections: a probe still gets through, because the oldest
    // waiting connection gives way to it.
    let mut waiting: Vec<TcpStream> = (0..CAP)
        .map(|_| half_open(engine.addr, "GET /api/orders HTTP/1.1\r\n"))
        .collect();
    wait_until(Duration::from_secs(5), "the cap to fill", || {
        open_besides_the_scrape() == CAP as f64
    });
    let limit_before = limit();
    assert_eq!(
        http_get(engine.addr, "/health").map(|(s, _)| s),
        Some(200),
        "a probe at a full cap of waiting connections"
    );
    assert!(
        matches!(
            peer_state(&mut waiting[0], Duration::from_secs(2)),
            PeerState::Closed(_)
        ),
        "the oldest waiting connection made room"
    );
    assert_eq!(limit(), limit_before + 1.0);
    drop(waiting);
    wait_until(
        Duration::from_secs(5),
        "the waiting connections to close",
        || open_besides_the_scrape() == 0.0,
    );

    // The cap full of busy connections (orders whose bodies are still arriving): a new
    // connection is closed at once, unanswered, and counted.
    let busy = fill_with_busy_orders(&engine, management, CAP);
    let limit_before = limit();
    let started = Instant::now();
    let mut refused = half_open(engine.addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let state = peer_state(&mut refused, Duration::from_secs(2));
    assert_eq!(
        state,
        PeerState::Closed(Vec::new()),
        "a connection over a cap of busy ones is closed at once, unanswered"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(limit(), limit_before + 1.0);
    drop(busy);
    wait_until(Duration::from_secs(5), "the engine to answer again", || {
        rtx_testkit::http_get_ok(engine.addr, "/health")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_cap_refuses_with_the_error_body_and_counts_and_frees_a_place_on_close() {
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_HTTP_MAX_WEBSOCKET_CLIENTS", "2"),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let url = format!("ws://{}/ws/quotes", engine.addr);
    let (first, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (_second, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let refused = tokio_tungstenite::connect_async(&url).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("a third client over a cap of 2 was not refused: {refused:?}");
    };
    assert_eq!(response.status(), 503);
    let body = text(response.body().as_deref().unwrap_or_default());
    assert!(
        body.contains(r#""code":"too_many_websocket_clients""#),
        "{body}"
    );
    assert_eq!(closed(&engine, "limit"), 1.0);
    drop(first);
    rtx_testkit::wait_until_async(Duration::from_secs(5), "a place to free up", async || {
        tokio_tungstenite::connect_async(&url).await.is_ok()
    })
    .await;
}

#[test]
fn the_management_listener_serves_probes_and_metrics_only_and_answers_while_the_main_one_is_full() {
    const CAP: usize = 10;
    let (engine, management) = capped_engine(CAP);
    wait_until(Duration::from_secs(20), "the management /ready", || {
        http_get(management, "/ready").is_some_and(|(s, _)| s == 200)
    });
    for path in ["/health", "/metrics", "/alerts"] {
        assert_eq!(
            http_get(management, path).map(|(s, _)| s),
            Some(200),
            "{path}"
        );
    }
    let (status, body) = http_get(management, "/api/orders").unwrap();
    assert_eq!(status, 404, "the API is not on the management listener");
    assert!(body.contains(r#""code":"not_found""#), "{body}");

    // Fill the main listener with busy connections: the management listener is unaffected.
    let busy = fill_with_busy_orders(&engine, management, CAP);
    assert_eq!(
        http_get(engine.addr, "/health"),
        None,
        "the main listener is full"
    );
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(http_get(management, "/health").map(|(s, _)| s), Some(200));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let text = http_get(management, "/metrics").unwrap().1;
    assert!(
        metric_sum(
            &text,
            "rtx_http_connections_closed_total",
            &[("reason", "limit")]
        ) >= 1.0
    );
    drop(busy);
    wait_until(
        Duration::from_secs(5),
        "the main listener to answer again",
        || rtx_testkit::http_get_ok(engine.addr, "/health"),
    );
}
