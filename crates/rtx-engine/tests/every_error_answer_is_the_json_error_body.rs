//! Every 4xx the engine answers carries `{"error": {"code", "message", "field"}}` with a stable
//! code, whoever refused the request: a handler, an extractor (a path that is not UTF-8, a query
//! that does not parse, a WebSocket handshake that is not one), the router (an unknown route,
//! 404; a method the route does not serve, 405 with `Allow`), the admin or metrics token check,
//! on the main listener and on the management listener alike.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rtx_testkit::{free_port, Engine};

/// One raw HTTP/1.1 exchange: the request line and headers are sent exactly as written (so a
/// path can carry bytes a URL library would refuse or re-encode); the answer's status, headers
/// (lower-cased names) and body.
fn exchange(addr: SocketAddr, head: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Sends `head` and checks the answer is `status` with the error body and `code` (and `field`
/// when given); returns the headers for further checks.
fn refused(
    addr: SocketAddr,
    head: &str,
    body: &str,
    status: u16,
    code: &str,
    field: Option<&str>,
) -> Vec<(String, String)> {
    let (got, headers, text) = exchange(addr, head, body);
    assert_eq!(got, status, "{head}: {text}");
    assert!(
        header(&headers, "content-type").is_some_and(|t| t.starts_with("application/json")),
        "{head}: the error is JSON: {headers:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{head}: not JSON ({e}): {text}"));
    assert_eq!(json["error"]["code"], code, "{head}: {json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{head}: a message: {json}"
    );
    match field {
        Some(field) => assert_eq!(json["error"]["field"], field, "{head}: {json}"),
        None => assert!(json["error"].get("field").is_none(), "{head}: {json}"),
    }
    headers
}

#[test]
fn every_refusal_on_either_listener_carries_the_error_body() {
    let management = free_port();
    let management_addr = management.to_string();
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[
            ("RTX_SIM_ORDER_RATE", "0"),
            ("RTX_ADMIN_TOKEN", "admin-secret"),
            ("RTX_METRICS_TOKEN", "metrics-secret"),
            ("RTX_MANAGEMENT_ADDR", &management_addr),
        ],
    );
    let main = engine.addr;

    // The request of the issue: a path parameter that is not UTF-8.
    refused(
        main,
        "GET /api/orders/%00%ff..%2f.. HTTP/1.1",
        "",
        400,
        "invalid_path",
        Some("id"),
    );
    refused(
        main,
        "GET /api/accounts/%ff HTTP/1.1",
        "",
        400,
        "invalid_path",
        Some("id"),
    );
    refused(
        main,
        "POST /admin/symbols/%c3%28/price HTTP/1.1\r\nAuthorization: Bearer admin-secret\r\nContent-Type: application/json",
        r#"{"mid": 1.1}"#,
        400,
        "invalid_path",
        Some("symbol"),
    );
    refused(
        main,
        "GET /api/orders?limit=abc HTTP/1.1",
        "",
        400,
        "invalid_field",
        Some("limit"),
    );
    refused(
        main,
        "GET /api/orders?limit=1&limit=2 HTTP/1.1",
        "",
        400,
        "invalid_query",
        None,
    );
    refused(
        main,
        "GET /api/orders/no-such-order HTTP/1.1",
        "",
        404,
        "not_found",
        None,
    );
    refused(
        main,
        "GET /api/accounts/nobody HTTP/1.1",
        "",
        404,
        "unknown_account",
        None,
    );
    refused(
        main,
        "GET /ws/quotes HTTP/1.1",
        "",
        400,
        "invalid_websocket_handshake",
        None,
    );
    refused(
        main,
        "GET /ws/quotes?symbols=XAUUSD HTTP/1.1",
        "",
        400,
        "unknown_symbol",
        Some("symbols"),
    );

    // The router's own refusals.
    for path in ["/scanner/../etc/passwd", "/api", "/api/orders/a/b", "/%ff"] {
        refused(
            main,
            &format!("GET {path} HTTP/1.1"),
            "",
            404,
            "not_found",
            None,
        );
    }
    let headers = refused(
        main,
        "DELETE /api/orders HTTP/1.1",
        "",
        405,
        "method_not_allowed",
        None,
    );
    let allow = header(&headers, "allow").expect("405 names the methods in Allow");
    for method in ["GET", "POST"] {
        assert!(allow.contains(method), "Allow: {allow}");
    }
    let headers = refused(
        main,
        "PUT /metrics HTTP/1.1",
        "",
        405,
        "method_not_allowed",
        None,
    );
    assert!(header(&headers, "allow").is_some_and(|a| a.contains("GET")));
    refused(
        main,
        "GET /admin/lps/OANDA/connect HTTP/1.1",
        "",
        405,
        "method_not_allowed",
        None,
    );

    // Tokens.
    let headers = refused(
        main,
        "POST /admin/lps/OANDA/disconnect HTTP/1.1",
        "",
        401,
        "unauthorized",
        None,
    );
    assert!(header(&headers, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    let headers = refused(
        main,
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer wrong",
        "",
        401,
        "unauthorized",
        None,
    );
    assert!(header(&headers, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    refused(
        main,
        "POST /admin/lps/OANDA/sequence-gap HTTP/1.1\r\nAuthorization: Bearer admin-secret\r\nContent-Type: application/json",
        r#"{"messages": 1.5}"#,
        400,
        "invalid_body",
        None,
    );
    refused(
        main,
        "POST /admin/lps/OANDA/sequence-gap HTTP/1.1\r\nAuthorization: Bearer admin-secret\r\nContent-Type: application/json",
        r#"{"messages": 0.0}"#,
        400,
        "invalid_messages",
        Some("messages"),
    );
    refused(
        main,
        "POST /admin/lps/OANDA/sequence-gap HTTP/1.1\r\nAuthorization: Bearer admin-secret\r\nContent-Type: application/json",
        r#"{"messages": 1, "extra": true}"#,
        400,
        "invalid_body",
        None,
    );
    refused(
        main,
        "POST /admin/symbols/EURUSD/price HTTP/1.1\r\nAuthorization: Bearer admin-secret\r\nContent-Type: application/json",
        r#"{"mid": 1e300}"#,
        400,
        "invalid_price",
        Some("mid"),
    );

    // The management listener serves only the monitoring endpoints, and refuses alike.
    refused(
        management,
        "GET /api/orders HTTP/1.1",
        "",
        404,
        "not_found",
        None,
    );
    let headers = refused(
        management,
        "POST /health HTTP/1.1",
        "",
        405,
        "method_not_allowed",
        None,
    );
    assert!(header(&headers, "allow").is_some_and(|a| a.contains("GET")));
    refused(
        management,
        "GET /metrics HTTP/1.1",
        "",
        401,
        "unauthorized",
        None,
    );

    // What is not an error keeps its own format: the exposition stays text.
    let (status, headers, body) = exchange(
        main,
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer metrics-secret",
        "",
    );
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").is_some_and(|t| t.starts_with("text/plain")));
    assert!(body.contains("# TYPE"), "{body}");
}
