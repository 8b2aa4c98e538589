//! Every request that is not a valid order is answered 4xx with the SPEC error body
//! (`{"error": {"code", "message", "field"}}`), never 5xx, and is not an order.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtx_testkit::{async_client, get_json_async, metric_sum, post_order_async, Engine};

struct Case {
    what: &'static str,
    body: String,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    what: &'static str,
    body: &str,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        what,
        body: body.to_owned(),
        status,
        code,
        field,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_orders_are_refused_with_the_error_body() {
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_SIM_ORDER_RATE", "0")],
    );
    let http = async_client();
    let valid = r#""account_id":"demo-4","symbol":"EURUSD","side":"buy""#;
    let cases = vec![
        case(
            "malformed JSON",
            "{\"account_id\": ",
            400,
            "invalid_json",
            None,
        ),
        case("not an object", "[1, 2, 3]", 400, "invalid_body", None),
        case("empty body", "", 400, "invalid_json", None),
        case(
            "volume as a string",
            &format!("{{{valid},\"volume\":\"0.1\"}}"),
            400,
            "invalid_field",
            Some("volume"),
        ),
        case(
            "negative volume",
            &format!("{{{valid},\"volume\":-1}}"),
            400,
            "invalid_field",
            Some("volume"),
        ),
        case(
            "zero volume",
            &format!("{{{valid},\"volume\":0}}"),
            400,
            "invalid_field",
            Some("volume"),
        ),
        case(
            "NaN volume",
            &format!("{{{valid},\"volume\":NaN}}"),
            400,
            "invalid_json",
            None,
        ),
        case(
            "huge volume",
            &format!("{{{valid},\"volume\":1e400}}"),
            400,
            "invalid_json",
            None,
        ),
        case(
            "missing volume",
            &format!("{{{valid}}}"),
            400,
            "missing_field",
            Some("volume"),
        ),
        case(
            "side as a number",
            r#"{"account_id":"demo-4","symbol":"EURUSD","side":1,"volume":0.1}"#,
            400,
            "invalid_field",
            Some("side"),
        ),
        case(
            "unknown side",
            r#"{"account_id":"demo-4","symbol":"EURUSD","side":"hold","volume":0.1}"#,
            400,
            "invalid_field",
            Some("side"),
        ),
        case(
            "unknown order type",
            &format!("{{{valid},\"volume\":0.1,\"order_type\":\"iceberg\"}}"),
            400,
            "invalid_field",
            Some("order_type"),
        ),
        case(
            "limit without price",
            &format!("{{{valid},\"volume\":0.1,\"order_type\":\"limit\"}}"),
            400,
            "missing_field",
            Some("price"),
        ),
        case(
            "market with price",
            &format!("{{{valid},\"volume\":0.1,\"price\":1.1}}"),
            400,
            "invalid_field",
            Some("price"),
        ),
        case(
            "unknown symbol",
            r#"{"account_id":"demo-4","symbol":"XAUUSD","side":"buy","volume":0.1}"#,
            400,
            "unknown_symbol",
            Some("symbol"),
        ),
        case(
            "unknown account",
            r#"{"account_id":"nobody","symbol":"EURUSD","side":"buy","volume":0.1}"#,
            404,
            "unknown_account",
            None,
        ),
        case(
            "missing account",
            r#"{"symbol":"EURUSD","side":"buy","volume":0.1}"#,
            400,
            "missing_field",
            Some("account_id"),
        ),
        case(
            "overlong client id",
            &format!(
                "{{{valid},\"volume\":0.1,\"client_order_id\":\"{}\"}}",
                "x".repeat(65)
            ),
            400,
            "invalid_field",
            Some("client_order_id"),
        ),
    ];
    let before = engine.scrape();
    for c in &cases {
        // Panics, naming the body sent, when the answer is not JSON.
        let (status, body) = post_order_async(&http, &engine, &c.body).await;
        assert_eq!(status, c.status, "{}: {body}", c.what);
        assert_eq!(body["error"]["code"], c.code, "{}: {body}", c.what);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}: {body}",
            c.what
        );
        match c.field {
            Some(field) => assert_eq!(body["error"]["field"], field, "{}: {body}", c.what),
            None => assert!(body["error"].get("field").is_none(), "{}: {body}", c.what),
        }
    }
    // 10 MB: the server answers 413 as soon as the limit is passed and may close before the
    // client has sent everything, so write from one thread and read the answer on another.
    let (status, body) =
        tokio::task::block_in_place(|| post_oversized(engine.addr, 10 * 1024 * 1024));
    assert_eq!(status, 413, "10 MB body: {body}");
    let body: serde_json::Value =
        serde_json::from_str(&body).expect("413 carries the JSON error body");
    assert_eq!(body["error"]["code"], "payload_too_large");

    let after = engine.scrape();
    assert_eq!(
        metric_sum(&after, "rtx_orders_total", &[]),
        metric_sum(&before, "rtx_orders_total", &[]),
        "no refused request became an order"
    );
    let (_, listed) = get_json_async(&http, &engine.url("/api/orders")).await;
    assert_eq!(listed, serde_json::json!([]), "no order was stored");
    let server_errors = metric_sum(&after, "rtx_http_requests_total", &[("status", "500")])
        + metric_sum(&after, "rtx_http_requests_total", &[("status", "503")]);
    assert_eq!(server_errors, 0.0);

    let unknown = http
        .get(engine.url("/api/orders/no-such-order"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let limit = http
        .get(engine.url("/api/orders?limit=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(limit.status(), 400);
    let nowhere = http
        .get(engine.url("/scanner/../etc/passwd"))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);
    let text = engine.scrape();
    assert_eq!(
        metric_sum(
            &text,
            "rtx_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0,
        "unknown paths share one route label"
    );
}

fn post_oversized(addr: std::net::SocketAddr, size: usize) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = format!("POST /api/orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            if writer
                .write_all(&chunk[..chunk.len().min(size - sent)])
                .is_err()
            {
                break;
            }
            sent += chunk.len();
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
