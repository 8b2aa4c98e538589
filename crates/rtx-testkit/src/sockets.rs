//! Raw sockets for tests that play a hostile or slow client: connections that stop half way
//! through their headers or body, telling whether the server closed one, timing one probe, and
//! room in the open-file limit for thousands of them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::http::http_get;

/// Makes sure this process (and the engines it starts after this call, which inherit it) may
/// open at least `wanted` descriptors, raising the soft limit with `prlimit` when it is lower.
///
/// # Panics
/// When the limit cannot be read or raised that far (the hard limit is lower, or `prlimit` is
/// missing): a flood test that quietly opened fewer connections would prove nothing.
pub fn raise_open_file_limit(wanted: usize) {
    let (soft, hard) = open_file_limits().expect("read the open-file limit from /proc/self/limits");
    if soft >= wanted {
        return;
    }
    assert!(
        hard >= wanted,
        "the hard open-file limit ({hard}) is below the {wanted} descriptors this test needs"
    );
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={wanted}:{hard}"),
        ])
        .status()
        .expect("run prlimit (util-linux) to raise the open-file limit");
    assert!(status.success(), "prlimit failed: {status}");
    let (now, _) = open_file_limits().expect("read the open-file limit again");
    assert!(
        now >= wanted,
        "the open-file limit is still {now} after prlimit"
    );
}

fn open_file_limits() -> Option<(usize, usize)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.split_whitespace().skip(3);
    let soft = fields.next()?.parse().ok()?;
    let hard = fields.next()?.parse().unwrap_or(usize::MAX);
    Some((soft, hard))
}

/// Opens a connection and sends `prefix` (the start of a request that never ends).
///
/// # Panics
/// When the connection cannot be opened or written.
pub fn half_open(addr: SocketAddr, prefix: &str) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .write_all(prefix.as_bytes())
        .unwrap_or_else(|e| panic!("write to {addr}: {e}"));
    stream
}

/// What the server did with a connection, seen from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerState {
    /// The server closed it (end of stream or reset), after sending the bytes given.
    Closed(Vec<u8>),
    /// Still open after the wait, with whatever arrived so far.
    Open(Vec<u8>),
}

/// Reads from `stream` for up to `wait`: whatever the server sends, and whether it closes.
///
/// # Panics
/// When the socket's read timeout cannot be set.
pub fn peer_state(stream: &mut TcpStream, wait: Duration) -> PeerState {
    let deadline = Instant::now() + wait;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return PeerState::Open(received);
        }
        stream
            .set_read_timeout(Some(left))
            .expect("set a read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return PeerState::Closed(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return PeerState::Open(received)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return PeerState::Closed(received),
        }
    }
}

/// One `GET path` on a fresh connection, timed: status (`None` when nothing answered) and how
/// long the answer took, connection set-up included (what a kubelet's probe sees).
pub fn timed_get(addr: SocketAddr, path: &str) -> (Option<u16>, Duration) {
    let start = Instant::now();
    let status = http_get(addr, path).map(|(status, _)| status);
    (status, start.elapsed())
}
