//! Loopback ports: handing out ones nobody uses, and telling which process listens on one.
//! Owns no process; the modules that start servers ask here whether theirs holds its socket.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::wait::Poll;

/// A loopback address nobody listens on right now, never the same one twice in a process.
///
/// Asking the kernel for port 0 and releasing it races: two tests running at once can be handed
/// the same just-released port, and then one engine talks to the other's. Ports here come from
/// a per-process sequence (starting at an offset derived from the process id), each checked free.
///
/// # Panics
/// When no port in the range is free.
pub fn free_port() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Below Linux's ephemeral range (32768 and up by default), so an outgoing connection's
    // source port never takes the port between this check and the server's bind.
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    let start = (std::process::id() * 7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (start + n) % SPAN;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port between {LOW} and {}", LOW + SPAN)
}

/// A listener bound on a [`free_port`], for a server the test runs in-process. Another process
/// can still take a port between `free_port`'s check and the bind; then the next one is tried.
///
/// # Panics
/// When no port can be bound.
pub fn loopback_listener() -> TcpListener {
    const ATTEMPTS: usize = 10;
    for _ in 0..ATTEMPTS {
        if let Ok(listener) = TcpListener::bind(free_port()) {
            return listener;
        }
    }
    panic!("could not bind a loopback port in {ATTEMPTS} attempts")
}

/// Waits until `child` itself has a listening socket on `addr`, or returns how it exited (a
/// server that cannot bind its port exits, and the caller may start it again on another).
///
/// A TCP connect is not proof: it can reach another process that briefly held the port, and
/// then the first real request is refused. The socket table says which process listens.
///
/// # Panics
/// When the process neither listens nor exits within `timeout`.
pub(crate) fn wait_until_listening(
    child: &mut Child,
    addr: SocketAddr,
    timeout: Duration,
    what: &str,
) -> Result<(), ExitStatus> {
    let pid = child.id();
    Poll::up_to(timeout)
        .every(Duration::from_millis(25))
        .until_ok(
            &format!("{what} (pid {pid}) to listen on {addr}"),
            || match child.try_wait() {
                Ok(Some(status)) => Ok(Err(status)),
                _ if process_listens_on(pid, addr) => Ok(Ok(())),
                _ => Err(""),
            },
        )
}

/// True when process `pid` owns a socket listening on the IPv4 `addr` (from `/proc/net/tcp` and
/// the process's descriptors).
pub(crate) fn process_listens_on(pid: u32, addr: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return false;
    };
    // /proc/net/tcp prints the address as the in-memory u32 in hex, and the port in hex.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    const LISTEN: &str = "0A";
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 9 && fields[1] == wanted && fields[3] == LISTEN)
                .then(|| format!("socket:[{}]", fields[9]))
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::process::Command;

    #[test]
    fn only_the_process_holding_the_listener_counts_as_listening() {
        let addr = free_port();
        let me = std::process::id();
        assert!(!process_listens_on(me, addr), "nobody listens yet");
        let listener = TcpListener::bind(addr).expect("bind");
        assert!(process_listens_on(me, addr));
        // Long-lived and killed below: the check must not depend on how long this test takes.
        let mut other = Command::new("sleep").arg("600").spawn().expect("sleep");
        assert!(
            !process_listens_on(other.id(), addr),
            "another process does not own this listener"
        );
        let _ = other.kill();
        let _ = other.wait();
        // A connected socket on the port is not a listener.
        let client = TcpStream::connect(addr).expect("connect");
        drop(listener);
        assert!(!process_listens_on(me, addr));
        drop(client);
    }

    #[test]
    fn a_child_that_exits_before_listening_is_reported_not_waited_for() {
        let mut child = Command::new("true").spawn().expect("true");
        let status = wait_until_listening(&mut child, free_port(), Duration::from_secs(30), "true");
        assert!(status.is_err_and(|s| s.success()));
    }
}
