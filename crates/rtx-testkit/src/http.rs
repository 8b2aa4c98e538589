//! Plain HTTP/1.0 over `std`: the one request the testkit itself needs (readiness of the servers
//! it starts, a scrape) without a client library or a runtime, usable from sync and async tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A minimal `GET` over a fresh connection: true on a 2xx answer.
pub fn http_get_ok(addr: SocketAddr, path: &str) -> bool {
    http_get(addr, path).is_some_and(|(status, _)| (200..300).contains(&status))
}

/// A minimal `GET`: status and body, `None` when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
