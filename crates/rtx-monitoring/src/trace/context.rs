//! Propagation between services: [`extract`] a caller's trace context from incoming HTTP
//! headers, open the serving span as its child ([`with_remote_parent`]), and [`inject`] the
//! context of a client span into the headers of each outgoing call.
//!
//! Extraction follows the W3C processing model: every `traceparent` field is considered (more
//! than one, or one malformed, means no valid parent: a new trace), `tracestate` is read only
//! beside a valid `traceparent`, and its fields are combined in order. It never fails.

use std::cell::{Cell, RefCell};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::propagation::TraceParent;
use super::span::with_state;
use super::tracestate::TraceState;

/// The `traceparent` header name.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A trace context as it travels between services: the `traceparent` (trace id, the sender's
/// span id, flags) and the `tracestate` vendor list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// Trace id, the sending span's id and the trace flags.
    pub traceparent: TraceParent,
    /// Vendor entries, passed on unchanged unless this service adds its own.
    pub tracestate: TraceState,
}

impl From<TraceParent> for TraceContext {
    fn from(traceparent: TraceParent) -> Self {
        Self {
            traceparent,
            tracestate: TraceState::default(),
        }
    }
}

impl TraceContext {
    /// The caller's context from incoming headers, or `None` for a new trace: no
    /// `traceparent`, more than one, or one that is malformed. A malformed or oversized
    /// `tracestate` is dropped and leaves the `traceparent` valid.
    pub fn extract(headers: &HeaderMap) -> Option<Self> {
        let mut traceparents = headers.get_all(TRACEPARENT).iter();
        let (Some(only), None) = (traceparents.next(), traceparents.next()) else {
            return None;
        };
        let traceparent = TraceParent::parse(only.to_str().ok()?)?;
        let fields: Option<Vec<&str>> = headers
            .get_all(TRACESTATE)
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        let tracestate = fields
            .and_then(TraceState::parse_fields)
            .unwrap_or_default();
        Some(Self {
            traceparent,
            tracestate,
        })
    }

    /// The context to send on a call made inside `span`: its trace id and flags, the span's
    /// own id as the parent id, and the `tracestate` its trace received. `None` when `span` is
    /// disabled or [`SpanLayer`](super::SpanLayer) does not see it.
    pub fn of(span: &tracing::Span) -> Option<Self> {
        with_state(span, |state| {
            Some(Self {
                traceparent: TraceParent {
                    trace_id: state.ids.trace_id,
                    parent_id: state.ids.span_id,
                    flags: state.flags,
                },
                tracestate: state.trace_state.as_deref().cloned().unwrap_or_default(),
            })
        })
    }

    /// [`TraceContext::of`] the current span.
    pub fn current() -> Option<Self> {
        Self::of(&tracing::Span::current())
    }

    /// Writes `traceparent` and, when it has entries, `tracestate` into `headers`, replacing
    /// any already there (an empty `tracestate` is not sent, as the specification advises).
    pub fn inject(&self, headers: &mut HeaderMap) {
        // Both values are ASCII by construction: hex digits, and tracestate entries that
        // passed the grammar.
        if let Ok(value) = HeaderValue::from_str(&self.traceparent.to_string()) {
            headers.insert(TRACEPARENT, value);
        }
        headers.remove(TRACESTATE);
        if !self.tracestate.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&self.tracestate.to_string()) {
                headers.insert(TRACESTATE, value);
            }
        }
    }
}

/// The caller's context from incoming headers; see [`TraceContext::extract`].
pub fn extract(headers: &HeaderMap) -> Option<TraceContext> {
    TraceContext::extract(headers)
}

/// Writes the context of a call made inside `span` into `headers`; false when `span` has
/// none (see [`TraceContext::of`]). Open one client span per outgoing call and inject inside
/// it: each call then carries its own parent id.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) -> bool {
    TraceContext::of(span).map(|c| c.inject(headers)).is_some()
}

thread_local! {
    /// The context handed to the next span this thread opens: `Some(None)` for "a new trace,
    /// whatever span is current".
    static REMOTE_PARENT: RefCell<Option<Option<TraceContext>>> = const { RefCell::new(None) };
    /// Whether `REMOTE_PARENT` holds a context: every span opening reads this, and a `Cell`
    /// of a type without `Drop` is one load, where the `RefCell` is a check of its lazily
    /// registered destructor, then of its borrow flag.
    static REMOTE_PARENT_SET: Cell<bool> = const { Cell::new(false) };
}

/// Puts `remote` where the next span opened on this thread takes it, returning what was there.
fn replace_remote_parent(remote: Option<Option<TraceContext>>) -> Option<Option<TraceContext>> {
    REMOTE_PARENT_SET.with(|set| set.set(remote.is_some()));
    REMOTE_PARENT.with(|slot| slot.replace(remote))
}

/// Runs `make` (which opens a span) so that the first span it opens is the child of `remote`,
/// the caller's context, or the root of a new trace when `remote` is `None`, whatever span is
/// current. The span keeps the caller's `tracestate` for every outgoing call made inside it.
///
/// ```
/// # use http::HeaderMap;
/// use rtx_monitoring::trace::{extract, with_remote_parent};
/// # let incoming = HeaderMap::new();
/// let span = with_remote_parent(extract(&incoming), || {
///     tracing::info_span!("GET /quote", otel.kind = "server")
/// });
/// ```
pub fn with_remote_parent<T>(remote: Option<TraceContext>, make: impl FnOnce() -> T) -> T {
    let previous = replace_remote_parent(Some(remote));
    // Put back what was there, so that a nested call (or a `make` that opened no span) leaves
    // no context behind for an unrelated span.
    struct Restore(Option<Option<TraceContext>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            replace_remote_parent(self.0.take());
        }
    }
    let _restore = Restore(previous);
    make()
}

/// Takes the context [`with_remote_parent`] left for the span being opened.
pub(super) fn take_remote_parent() -> Option<Option<TraceContext>> {
    // Nearly every span finds nothing here, and learns so from the flag alone.
    if !REMOTE_PARENT_SET.with(Cell::get) {
        return None;
    }
    replace_remote_parent(None)
}

/// Trace context on `reqwest` requests.
#[cfg(feature = "reqwest")]
pub trait RequestBuilderExt {
    /// Adds the `traceparent` and `tracestate` of a call made inside `span` (one client span
    /// per call); the request is unchanged when `span` has no context.
    #[must_use]
    fn trace_context(self, span: &tracing::Span) -> Self;
}

#[cfg(feature = "reqwest")]
impl RequestBuilderExt for reqwest::RequestBuilder {
    fn trace_context(self, span: &tracing::Span) -> Self {
        let mut headers = HeaderMap::new();
        if inject(span, &mut headers) {
            self.headers(headers)
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::span::{FinishedSpan, SpanLayer, SpanSink};
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    const CALLER: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn one_valid_traceparent_is_a_parent_and_anything_else_is_a_new_trace() {
        let ctx = extract(&headers(&[("TraceParent", CALLER.as_bytes())])).unwrap();
        assert_eq!(ctx.traceparent.to_string(), CALLER);
        assert_eq!(
            extract(&headers(&[
                ("traceparent", CALLER.as_bytes()),
                ("traceparent", CALLER.as_bytes())
            ])),
            None,
            "two traceparent fields, even equal ones"
        );
        assert_eq!(
            extract(&headers(&[("trace-parent", CALLER.as_bytes())])),
            None
        );
        assert_eq!(
            extract(&headers(&[(
                "traceparent",
                b"00-12345678901234567890123456789012-1234567890123456-0\xe9"
            )])),
            None,
            "bytes that are not ASCII"
        );
        assert_eq!(extract(&HeaderMap::new()), None);
    }

    #[test]
    fn tracestate_fields_combine_in_order_and_need_a_valid_traceparent() {
        let ctx = extract(&headers(&[
            ("traceparent", CALLER.as_bytes()),
            ("tracestate", b"foo=1,bar=2"),
            ("TRACESTATE", b""),
            ("tracestate", b"rojo=1"),
        ]))
        .unwrap();
        assert_eq!(ctx.tracestate.to_string(), "foo=1,bar=2,rojo=1");
        let broken = extract(&headers(&[
            ("traceparent", CALLER.as_bytes()),
            ("tracestate", b"foo=1"),
            ("tracestate", b"bar=\xe9"),
        ]))
        .unwrap();
        assert!(
            broken.tracestate.is_empty(),
            "a bad tracestate is dropped, the traceparent kept"
        );
        assert_eq!(
            extract(&headers(&[("tracestate", b"foo=1")])),
            None,
            "no tracestate without a traceparent"
        );
    }

    #[test]
    fn inject_replaces_and_leaves_out_an_empty_tracestate() {
        let mut h = headers(&[("tracestate", b"stale=1"), ("traceparent", b"x")]);
        let ctx = TraceContext::from(TraceParent::parse(CALLER).unwrap());
        ctx.inject(&mut h);
        assert_eq!(h.get_all(TRACEPARENT).iter().count(), 1);
        assert_eq!(h[TRACEPARENT], CALLER);
        assert!(h.get(TRACESTATE).is_none());
    }

    #[derive(Default)]
    struct Collect(Mutex<Vec<FinishedSpan>>);

    impl SpanSink for Collect {
        fn push(&self, span: FinishedSpan) {
            self.0.lock().unwrap().push(span);
        }
    }

    #[test]
    fn each_client_span_sends_its_own_id_with_the_callers_trace_and_tracestate() {
        let sink = Arc::new(Collect::default());
        let subscriber = tracing_subscriber::registry()
            .with(SpanLayer::new(1.0, Some(sink.clone() as Arc<dyn SpanSink>)));
        let incoming = headers(&[
            ("traceparent", CALLER.as_bytes()),
            ("tracestate", b"congo=t61rcWkgMzE"),
        ]);
        let sent: Vec<HeaderMap> = tracing::subscriber::with_default(subscriber, || {
            // Even under an unrelated current span, the server span joins the caller's trace.
            let _unrelated = tracing::info_span!("connection").entered();
            let server = with_remote_parent(extract(&incoming), || {
                tracing::info_span!("server", otel.kind = "server")
            });
            let _s = server.enter();
            (0..3)
                .map(|_| {
                    let client = tracing::info_span!("call", otel.kind = "client");
                    let mut out = HeaderMap::new();
                    assert!(inject(&client, &mut out));
                    out
                })
                .collect()
        });
        let spans = sink.0.lock().unwrap().clone();
        let server = spans.iter().find(|s| s.name == "server").unwrap();
        assert_eq!(
            server.parent_span_id,
            Some(*b"\x12\x34\x56\x78\x90\x12\x34\x56")
        );
        assert!(server.parent_is_remote);
        let calls: Vec<&FinishedSpan> = spans.iter().filter(|s| s.name == "call").collect();
        assert_eq!(calls.len(), 3);
        for (out, call) in sent.iter().zip(&calls) {
            let tp = TraceParent::parse(out[TRACEPARENT].to_str().unwrap()).unwrap();
            assert_eq!(tp.trace_id, server.trace_id, "the caller's trace id");
            assert_eq!(tp.parent_id, call.span_id, "the client span's own id");
            assert_eq!(call.parent_span_id, Some(server.span_id));
            assert!(!call.parent_is_remote);
            assert_eq!(out[TRACESTATE], "congo=t61rcWkgMzE");
        }
        let ids: std::collections::HashSet<_> = calls.iter().map(|c| c.span_id).collect();
        assert_eq!(ids.len(), 3, "a new span id per call");
    }
}
