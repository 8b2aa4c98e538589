//! The HTTP listeners: our own accept loop around hyper, because `axum::serve` has no header or
//! idle timeout, no connection cap and no backoff on accept errors, and anyone who can reach the
//! port could otherwise hold every descriptor the engine has (and starve its probes).
//!
//! Each connection is tracked from accept to the last use of its socket (a WebSocket keeps it
//! after the HTTP exchange), so `rtx_http_connections_active` is the count of open sockets. A
//! watchdog per connection closes it when its first request's headers are not complete within the
//! header-read timeout, or when it sits idle between requests past the idle timeout. At the cap a
//! new connection takes the place of the oldest one that is waiting for a request (half-open or
//! idle keep-alive: the cheapest to lose, and what a flood is made of); when every connection is
//! busy the new one is closed at once. Nothing is ever queued without bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rtx_monitoring::catalogue::{ApiMetrics, ConnectionCloseReason};
use rtx_monitoring::metrics::InFlight;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// Descriptors kept out of the connection caps for the engine's own use: the database pool, log
/// and trace clients, the Alertmanager client, the listeners themselves.
pub const RESERVED_DESCRIPTORS: usize = 128;

/// The timeouts and the cap of one listener.
#[derive(Clone, Copy, Debug)]
pub struct ListenerLimits {
    /// From accept until the first request's headers are complete.
    pub header_read_timeout: Duration,
    /// From the last answer until the next request's headers are complete.
    pub idle_timeout: Duration,
    /// Most open connections (sockets) at once.
    pub max_connections: usize,
}

/// One accepted connection, as the cap and its watchdog see it.
#[derive(Debug)]
struct Connection {
    opened: Instant,
    /// Requests whose answer is not yet ready.
    in_flight: AtomicU32,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// When the last answer was ready, in milliseconds after `opened`.
    last_answer_ms: AtomicU64,
    /// Switched to another protocol (WebSocket): busy for good, never timed out or evicted here.
    upgraded: AtomicBool,
    /// Chosen to make room at the cap; set once.
    evicting: AtomicBool,
    /// Tells the connection's task to close it for the cap.
    evict: Notify,
}

impl Connection {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            last_answer_ms: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    /// Waiting for a request: half-open, or keep-alive between requests.
    fn is_waiting(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.upgraded.load(Ordering::Acquire)
    }

    fn start_request(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            connection: Arc::clone(self),
        }
    }

    /// When the watchdog closes this connection, and why; `None` while a request is in flight.
    fn deadline(&self, limits: &ListenerLimits) -> Option<(Instant, ConnectionCloseReason)> {
        if !self.is_waiting() {
            return None;
        }
        Some(if self.requests.load(Ordering::Relaxed) == 0 {
            (
                self.opened + limits.header_read_timeout,
                ConnectionCloseReason::HeaderTimeout,
            )
        } else {
            let last = Duration::from_millis(self.last_answer_ms.load(Ordering::Relaxed));
            (
                self.opened + last + limits.idle_timeout,
                ConnectionCloseReason::IdleTimeout,
            )
        })
    }

    /// Resolves when the connection has waited too long for a request.
    ///
    /// Lazy on purpose: requests do not wake it (that would cost every request a wake-up of its
    /// connection's task). It sleeps until the deadline it last saw, then looks again: busy, it
    /// checks back one timeout later; a request came and went, it sleeps until the new deadline.
    /// A close is therefore late by at most the shorter of the two timeouts.
    async fn watchdog(&self, limits: ListenerLimits) -> ConnectionCloseReason {
        let recheck = limits.header_read_timeout.min(limits.idle_timeout);
        loop {
            let wake = match self.deadline(&limits) {
                Some((deadline, reason)) if deadline <= Instant::now() => return reason,
                // A request may come and go before the deadline and set a nearer one (a short
                // idle timeout after a long header timeout): look again within `recheck`.
                Some((deadline, _)) => deadline.min(Instant::now() + recheck),
                None => Instant::now() + recheck,
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

/// Marks a request in flight on its connection until its answer is ready.
struct RequestGuard {
    connection: Arc<Connection>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let c = &self.connection;
        let elapsed = u64::try_from(c.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        c.last_answer_ms.store(elapsed, Ordering::Relaxed);
        c.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections chosen to make room at the cap whose tasks have not closed them yet. Past this
/// many, the accept loop stops accepting until one has closed: under a flood the evicted
/// connections' tasks can lag behind accepts (a 2-core machine, a busy runtime), and without a
/// bound their sockets pile up past the cap. New connections then wait in the kernel's listen
/// backlog, which is bounded, rather than in descriptors of ours.
const EVICTIONS_IN_FLIGHT: usize = 32;

/// The open connections of one listener, oldest first, and how many of them are being evicted.
#[derive(Debug, Default)]
struct Open {
    connections: BTreeMap<u64, Arc<Connection>>,
    evicting: usize,
}

/// What the accept loop does with a connection it has accepted.
enum Admission {
    /// Served, in this slot.
    Admitted(Arc<Connection>, Slot),
    /// Every connection is busy: closed at once.
    Refused,
    /// Too many evictions are still closing: wait for one, then ask again.
    WaitForEvictions,
}

#[derive(Debug)]
struct Table {
    open: Mutex<Open>,
    /// Signalled each time an evicted connection has closed.
    evicted: Notify,
    next_id: AtomicU64,
    max: usize,
    metrics: ApiMetrics,
}

impl Table {
    /// Admits a new connection, making room at the cap by evicting the oldest connection that is
    /// waiting for a request; refuses it when every connection is busy.
    fn admit(self: &Arc<Self>) -> Admission {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.connections.len() - open.evicting >= self.max {
            if open.evicting >= EVICTIONS_IN_FLIGHT {
                return Admission::WaitForEvictions;
            }
            self.metrics
                .record_connection_closed(ConnectionCloseReason::Limit);
            let Some(victim) = open
                .connections
                .values()
                .find(|c| !c.evicting.load(Ordering::Relaxed) && c.is_waiting())
            else {
                return Admission::Refused;
            };
            victim.evicting.store(true, Ordering::Relaxed);
            // A stored permit: the task sees it even if it is not waiting yet.
            victim.evict.notify_one();
            open.evicting += 1;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new());
        open.connections.insert(id, Arc::clone(&connection));
        let slot = Slot {
            table: Arc::clone(self),
            id,
            _gauge: self.metrics.connection(),
        };
        Admission::Admitted(connection, slot)
    }
}

/// Holds a connection's place in its table and in `rtx_http_connections_active` for as long as
/// its socket is open: it lives inside the socket's wrapper, which a WebSocket takes over.
struct Slot {
    table: Arc<Table>,
    id: u64,
    _gauge: InFlight,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = open.connections.remove(&self.id);
        if removed.is_some_and(|c| c.evicting.load(Ordering::Relaxed)) {
            open.evicting -= 1;
            drop(open);
            // A stored permit: the accept loop sees it even if it is not waiting yet.
            self.table.evicted.notify_one();
        }
    }
}

/// A TCP stream that gives its slot back when it closes.
struct CountedStream {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// How the accept loop answers errors from `accept`: a client that went away before it was
/// accepted is no error of ours; running out of descriptors or memory is, and retrying at once
/// would spin a core, so the loop backs off (doubling up to a second) and logs at most once per
/// interval, with the count of errors it did not log.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    log_every: Duration,
    last_logged: Option<Instant>,
    unlogged: u64,
}

/// What to do after an accept error.
#[derive(Debug, PartialEq, Eq)]
pub struct AcceptErrorAction {
    /// Wait this long before accepting again; `None` to go on at once.
    pub pause: Option<Duration>,
    /// Log now, with this many earlier errors that were not logged; `None` to stay quiet.
    pub log_with_unlogged: Option<u64>,
}

impl AcceptBackoff {
    /// The first pause after an error.
    pub const FIRST: Duration = Duration::from_millis(5);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// Logs at most once per `log_every`.
    pub fn new(log_every: Duration) -> Self {
        Self {
            delay: Self::FIRST,
            log_every,
            last_logged: None,
            unlogged: 0,
        }
    }

    /// A connection was accepted: the next error pauses briefly again.
    pub fn on_success(&mut self) {
        self.delay = Self::FIRST;
    }

    /// Decides what to do about `error`, at `now`.
    pub fn on_error(&mut self, error: &io::Error, now: Instant) -> AcceptErrorAction {
        use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
        ) {
            return AcceptErrorAction {
                pause: None,
                log_with_unlogged: None,
            };
        }
        let pause = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= self.log_every);
        let log_with_unlogged = if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.unlogged))
        } else {
            self.unlogged += 1;
            None
        };
        AcceptErrorAction {
            pause: Some(pause),
            log_with_unlogged,
        }
    }
}

/// Connections the kernel may hold for us before `accept` (it caps this at `net.core.somaxconn`,
/// 4096 on current Linux). tokio's default is 1024: in a connect storm, a full queue drops SYNs,
/// and a probe whose SYN was dropped waits a whole retransmission timeout (1 s) before it is
/// even seen.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Binds `addr` for listening with [`ACCEPT_BACKLOG`].
///
/// # Errors
/// When the address is taken or not ours.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std and tokio do for listeners: a restart need not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// The soft limit on open descriptors of this process, where the platform says (Linux).
pub fn descriptor_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Serves `app` on `listener` within `limits` until `shutdown` turns true, then stops accepting,
/// lets requests in flight finish and closes idle connections (WebSocket streams end on their
/// own signal).
///
/// # Errors
/// Only when the listener itself fails for good; accept errors are retried with backoff.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    app: axum::Router,
    limits: ListenerLimits,
    metrics: ApiMetrics,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let table = Arc::new(Table {
        open: Mutex::new(Open::default()),
        evicted: Notify::new(),
        next_id: AtomicU64::new(0),
        max: limits.max_connections,
        metrics: metrics.clone(),
    });
    // Each connection task holds a receiver; when all are gone, every connection has closed.
    let (tasks, _) = watch::channel(());
    let mut backoff = AcceptBackoff::new(Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => {
                backoff.on_success();
                accepted
            }
            Err(error) => {
                let action = backoff.on_error(&error, Instant::now());
                if let Some(unlogged) = action.log_with_unlogged {
                    tracing::error!(listener = name, error = %error, unlogged_errors = unlogged, "cannot accept connections; backing off");
                }
                if let Some(pause) = action.pause {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                }
                continue;
            }
        };
        let admitted = loop {
            match table.admit() {
                Admission::Admitted(connection, slot) => break Some((connection, slot)),
                // Every connection is busy: refuse this one now rather than queue it.
                Admission::Refused => break None,
                Admission::WaitForEvictions => tokio::select! {
                    () = table.evicted.notified() => {}
                    _ = shutdown.wait_for(|stop| *stop) => break None,
                },
            }
        };
        let Some((connection, slot)) = admitted else {
            drop(stream);
            continue;
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(CountedStream {
            stream,
            _slot: slot,
        });
        let service = RequestService {
            app: app.clone(),
            remote,
            connection: Arc::clone(&connection),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .with_upgrades();
        let metrics = metrics.clone();
        let mut stopping = shutdown.clone();
        let task = tasks.subscribe();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let mut draining = false;
            let closed_for = loop {
                tokio::select! {
                    result = &mut conn => {
                        if let Err(error) = result {
                            tracing::debug!(%remote, error = %error, "connection ended with an error");
                        }
                        break None;
                    }
                    reason = connection.watchdog(limits) => break Some(reason),
                    // Counted when it was chosen.
                    () = connection.evict.notified() => break None,
                    // Finish the request in flight, if any, then close.
                    _ = stopping.wait_for(|stop| *stop), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            };
            if let Some(reason) = closed_for {
                metrics.record_connection_closed(reason);
            }
            drop(task);
        });
    }
    drop(listener);
    tasks.closed().await;
    Ok(())
}

/// Hands each request to the router with the peer's address, and marks it in flight on its
/// connection until the answer is ready.
#[derive(Clone)]
struct RequestService {
    app: axum::Router,
    remote: SocketAddr,
    connection: Arc<Connection>,
}

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = TrackedResponse;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let guard = self.connection.start_request();
        let mut app = self.app.clone();
        TrackedResponse {
            inner: tower_service::Service::call(&mut app, request),
            guard: Some(guard),
        }
    }
}

/// The router's answer, with the request marked in flight on its connection until it is ready.
/// A named future rather than a boxed one: no allocation per request beyond the router's own.
struct TrackedResponse {
    inner: axum::routing::future::RouteFuture<std::convert::Infallible>,
    guard: Option<RequestGuard>,
}

impl Future for TrackedResponse {
    type Output = Result<axum::response::Response, std::convert::Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let response = std::task::ready!(Pin::new(&mut this.inner).poll(cx));
        if let Some(guard) = this.guard.take() {
            if response
                .as_ref()
                .is_ok_and(|r| r.status() == StatusCode::SWITCHING_PROTOCOLS)
            {
                guard.connection.upgraded.store(true, Ordering::Release);
            }
        }
        Poll::Ready(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(24)
    }

    #[test]
    fn a_client_gone_before_accept_is_retried_at_once_and_not_logged() {
        let mut backoff = AcceptBackoff::new(Duration::from_secs(10));
        let gone = io::Error::from(io::ErrorKind::ConnectionAborted);
        let action = backoff.on_error(&gone, Instant::now());
        assert_eq!(
            action,
            AcceptErrorAction {
                pause: None,
                log_with_unlogged: None
            }
        );
    }

    #[test]
    fn running_out_of_descriptors_backs_off_doubling_and_logs_once_per_interval() {
        let mut backoff = AcceptBackoff::new(Duration::from_secs(10));
        let start = Instant::now();
        let mut pauses = Vec::new();
        let mut logged = Vec::new();
        for i in 0..12 {
            let action = backoff.on_error(&emfile(), start + Duration::from_millis(i * 100));
            pauses.push(action.pause.expect("EMFILE pauses"));
            logged.extend(action.log_with_unlogged);
        }
        assert_eq!(pauses[0], AcceptBackoff::FIRST);
        assert_eq!(pauses[1], AcceptBackoff::FIRST * 2);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(
            *pauses.last().unwrap_or(&Duration::ZERO),
            AcceptBackoff::MAX
        );
        assert_eq!(logged, vec![0], "one line in the first ten seconds");
        let later = backoff.on_error(&emfile(), start + Duration::from_secs(11));
        assert_eq!(
            later.log_with_unlogged,
            Some(11),
            "the next line counts the errors it did not log"
        );
        backoff.on_success();
        let after = backoff.on_error(&emfile(), start + Duration::from_secs(12));
        assert_eq!(after.pause, Some(AcceptBackoff::FIRST));
    }

    #[test]
    fn the_descriptor_limit_is_read_where_the_platform_has_it() {
        if cfg!(target_os = "linux") {
            assert!(descriptor_limit().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn a_waiting_connection_times_out_for_headers_first_and_for_idleness_after_a_request() {
        let limits = ListenerLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            max_connections: 1,
        };
        let c = Arc::new(Connection::new());
        let (deadline, reason) = c.deadline(&limits).expect("waiting");
        assert_eq!(reason, ConnectionCloseReason::HeaderTimeout);
        assert_eq!(deadline, c.opened + Duration::from_secs(1));
        let guard = c.start_request();
        assert!(c.deadline(&limits).is_none(), "no deadline while busy");
        drop(guard);
        let (deadline, reason) = c.deadline(&limits).expect("waiting again");
        assert_eq!(reason, ConnectionCloseReason::IdleTimeout);
        assert!(deadline >= c.opened + Duration::from_secs(5));
        c.upgraded.store(true, Ordering::Release);
        assert!(
            c.deadline(&limits).is_none(),
            "a WebSocket is never idle-closed here"
        );
    }

    #[test]
    fn past_the_cap_evictions_still_closing_are_bounded_and_the_loop_waits_for_one() {
        let registry = rtx_monitoring::Registry::new();
        let catalogue = rtx_monitoring::catalogue::TradingMetrics::new(
            &registry,
            &rtx_monitoring::catalogue::CatalogueConfig::default(),
        )
        .unwrap();
        let table = Arc::new(Table {
            open: Mutex::new(Open::default()),
            evicted: Notify::new(),
            next_id: AtomicU64::new(0),
            max: 4,
            metrics: catalogue.api.clone(),
        });
        let admit = |table: &Arc<Table>| match table.admit() {
            Admission::Admitted(connection, slot) => Some((connection, slot)),
            Admission::Refused => panic!("refused while connections were waiting"),
            Admission::WaitForEvictions => None,
        };
        // Their tasks never run: every admission past the cap evicts one that stays open.
        let mut held = Vec::new();
        while let Some(admitted) = admit(&table) {
            held.push(admitted);
            assert!(held.len() <= 4 + EVICTIONS_IN_FLIGHT, "no bound");
        }
        assert_eq!(held.len(), 4 + EVICTIONS_IN_FLIGHT);
        // One evicted connection closes: room for exactly one more, and the loop is told.
        let evicted = held
            .iter()
            .position(|(c, _)| c.evicting.load(Ordering::Relaxed));
        drop(held.remove(evicted.unwrap()));
        let told = table.evicted.notified();
        tokio::pin!(told);
        assert!(told.as_mut().enable(), "the accept loop is not woken");
        held.push(admit(&table).expect("room after an eviction closed"));
        assert!(admit(&table).is_none());
    }
}
