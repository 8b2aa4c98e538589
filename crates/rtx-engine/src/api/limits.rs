//! Request-level limits: the time a request's body may take to arrive, and the number of
//! WebSocket clients. Connection-level limits (header and idle timeouts, the connection cap) are
//! the listener's.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use rtx_monitoring::catalogue::{ApiMetrics, ConnectionCloseReason};
use tokio::time::{Instant, Sleep};

use super::ApiError;

/// What the request-timeout middleware needs.
#[derive(Clone, Debug)]
pub struct BodyDeadline {
    /// Time allowed for a request's body once its headers are in.
    pub timeout: Duration,
    /// Where the closed connection is counted.
    pub metrics: ApiMetrics,
}

/// Gives each request's body `timeout` to arrive. A body still incomplete then ends in an error
/// for whoever reads it, and the answer becomes 408 with the error body and `Connection: close`,
/// counted as `request_timeout`. Only the upload is timed: a request fully received is answered
/// whatever its execution takes, because an order the engine has accepted must be answered with
/// its outcome, not abandoned half way (the LP and the database have their own deadlines).
pub async fn cut_slow_bodies(
    State(limit): State<BodyDeadline>,
    request: Request,
    next: Next,
) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limit.timeout;
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline,
            timer: None,
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    // The rest of the body may still be on its way: the connection cannot be reused.
    answer_and_close(
        &limit.metrics,
        ConnectionCloseReason::RequestTimeout,
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} ms",
                limit.timeout.as_millis()
            ),
            None,
        ),
    )
}

/// Answers `error` with `Connection: close`, so the server closes the connection after it,
/// and counts that close as `reason`: the one way a request-level limit refuses.
pub fn answer_and_close(
    metrics: &ApiMetrics,
    reason: ConnectionCloseReason,
    error: ApiError,
) -> Response {
    metrics.record_connection_closed(reason);
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A body that fails once its deadline has passed. The timer is armed only when the body is
/// actually waited for, so a request whose body is already in (or empty) costs nothing.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

/// The error a reader of a body that arrived too slowly gets.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        this.expired.store(true, Ordering::Release);
                        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The WebSocket client cap: a permit per client, given back when its stream ends.
#[derive(Debug)]
pub struct WebSocketClients {
    open: AtomicUsize,
    max: usize,
}

/// One WebSocket client's place under the cap.
#[derive(Debug)]
pub struct WebSocketPermit {
    clients: Arc<WebSocketClients>,
}

impl WebSocketClients {
    /// At most `max` clients at once.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// A place for one more client, or `None` at the cap.
    pub fn try_acquire(self: &Arc<Self>) -> Option<WebSocketPermit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| WebSocketPermit {
                clients: Arc::clone(self),
            })
    }
}

impl Drop for WebSocketPermit {
    fn drop(&mut self) {
        self.clients.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_cap_admits_up_to_its_maximum_and_frees_a_place_on_drop() {
        let clients = WebSocketClients::new(2);
        let a = clients.try_acquire().expect("first");
        let _b = clients.try_acquire().expect("second");
        assert!(clients.try_acquire().is_none(), "third is over the cap");
        drop(a);
        assert!(clients.try_acquire().is_some(), "a place was freed");
    }
}
