//! Every request that is not a valid order is answered 4xx with the SPEC error body
//! (`{"error": {"code", "message", "field"}}`), never 5xx, and is not an order.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtx_testkit::{metric_sum, Engine};

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
    let http = reqwest::Client::new();
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
        case(
            "10 MB body",
            &format!(
                "{{{valid},\"volume\":0.1,\"pad\":\"{}\"}}",
                "x".repeat(10 * 1024 * 1024)
            ),
            413,
            "payload_too_large",
            None,
        ),
    ];
    let before = http
        .get(engine.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for c in &cases {
        let response = http
            .post(engine.url("/api/orders"))
            .body(c.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", c.what));
        let status = response.status().as_u16();
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: the error body is not JSON: {e}", c.what));
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
    let after = http
        .get(engine.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_sum(&after, "rtx_orders_total", &[]),
        metric_sum(&before, "rtx_orders_total", &[]),
        "no refused request became an order"
    );
    let listed: Vec<serde_json::Value> = http
        .get(engine.url("/api/orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty(), "no order was stored: {listed:?}");
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
    let text = http
        .get(engine.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
