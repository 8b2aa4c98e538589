//! The span layer: gives every `tracing` span a W3C trace and span id (inheriting them from its
//! parent span, from a caller's context handed over by
//! [`with_remote_parent`](super::with_remote_parent), or from a `traceparent` field on a root
//! span), decides sampling once per trace (ParentBased(TraceIdRatio)), records attributes,
//! events and status, and hands each sampled span to the exporter when it closes.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::{RngCore, SeedableRng};
use smallvec::SmallVec;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::context::{take_remote_parent, TraceContext};
use super::propagation::{TraceParent, FLAG_RANDOM, FLAG_SAMPLED};
use super::tracestate::TraceState;
use crate::metrics::TraceIds;

/// What kind of span, as OpenTelemetry has it (set with the `otel.kind` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the process.
    Internal,
    /// Serving a request.
    Server,
    /// Calling something else (a database, an LP).
    Client,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

/// A finished span, ready for export.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedSpan {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Parent span id (absent for a root).
    pub parent_span_id: Option<[u8; 8]>,
    /// True when the parent is in another process (a caller's `traceparent`), which OTLP
    /// marks in the span's flags.
    pub parent_is_remote: bool,
    /// W3C flags (sampled, random).
    pub flags: u8,
    /// The trace's `tracestate`, as received from the caller (shared, not copied, by every
    /// span of the request).
    pub trace_state: Option<Arc<TraceState>>,
    /// Name (`otel.name` when given, else the span's name).
    pub name: std::borrow::Cow<'static, str>,
    /// Kind.
    pub kind: SpanKind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Attributes (tags).
    /// Keys are the span's field names, which `tracing` makes `'static`: no allocation per key.
    pub attributes: Vec<(&'static str, AttributeValue)>,
    /// Events (span logs): time, message.
    pub events: Vec<(u64, String)>,
    /// Error message when the span failed (`otel.status_code = "ERROR"`, or an `error` field).
    pub error: Option<String>,
}

/// Receives finished spans; must not block.
pub trait SpanSink: Send + Sync + 'static {
    /// Takes one finished, sampled span.
    fn push(&self, span: FinishedSpan);

    /// Asked when a sampled span opens: whether it should build a record for this sink. A sink
    /// that would drop the span anyway (an exporter pausing while its collector fails) answers
    /// false and counts the span as dropped itself; the span keeps its ids and sampled flag,
    /// and builds nothing. Called on the caller's thread for every sampled span: it must be
    /// cheap. The default takes every span.
    fn accepts(&self) -> bool {
        true
    }
}

/// Who a span is in its trace: fixed when it opens, read by its children, its log lines, the
/// exemplars recorded inside it and the calls it makes.
#[derive(Clone, Debug)]
pub(crate) struct SpanIdentity {
    pub(crate) ids: TraceIds,
    pub(crate) flags: u8,
    /// Passed on to every outgoing call made inside the span and its children.
    pub(crate) trace_state: Option<Arc<TraceState>>,
}

impl Default for SpanIdentity {
    /// All zero: a placeholder for a slot no open span holds, never a real span's ids.
    fn default() -> Self {
        Self {
            ids: TraceIds {
                trace_id: [0; 16],
                span_id: [0; 8],
            },
            flags: 0,
            trace_state: None,
        }
    }
}

impl SpanIdentity {
    pub(crate) fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

/// Per-span state kept in the span's extensions; `span` only for sampled spans.
pub(super) struct SpanState {
    identity: SpanIdentity,
    span: Option<FinishedSpan>,
}

/// Finds the `traceparent` field of a root span without collecting anything else.
struct TraceparentFinder(Option<String>);

impl Visit for TraceparentFinder {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "traceparent" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// Most events kept per span; more are counted in the attribute `events.dropped`.
const MAX_EVENTS: usize = 32;

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The layer. Build it with [`SpanLayer::new`] and install it beside the log layer.
pub struct SpanLayer {
    sink: Option<Arc<dyn SpanSink>>,
    /// Traces whose id maps below this are sampled (ratio × 2^64).
    threshold: u64,
}

impl std::fmt::Debug for SpanLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanLayer")
            .field("export", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl SpanLayer {
    /// A layer sampling root traces at `ratio` (0.0–1.0) and handing sampled spans to `sink`
    /// (`None`: ids and the sampled flag are still assigned, for logs, exemplars and the
    /// `traceparent` of outgoing calls, but no span keeps a record: nothing is exported).
    ///
    /// It also makes the sampled span the exemplar source of every histogram built
    /// `with_exemplars()`: observations inside a sampled span carry its ids with no further
    /// set-up (an exemplar source installed earlier with
    /// [`set_exemplar_source`](crate::metrics::set_exemplar_source) is kept).
    pub fn new(ratio: f64, sink: Option<Arc<dyn SpanSink>>) -> Self {
        crate::metrics::set_exemplar_source(current_sampled_ids);
        let ratio = ratio.clamp(0.0, 1.0);
        let threshold = if ratio >= 1.0 {
            u64::MAX
        } else {
            (ratio * u64::MAX as f64) as u64
        };
        Self { sink, threshold }
    }

    /// TraceIdRatio: the decision depends only on the trace id, so every service that samples
    /// at the same ratio agrees.
    fn sample_root(&self, trace_id: &[u8; 16]) -> bool {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        self.threshold == u64::MAX || u64::from_be_bytes(low) < self.threshold
    }
}

/// One attribute of a span: its field name and value.
type Attribute = (&'static str, AttributeValue);

/// The fields of one `Span::record` call: nearly always one or two.
type RecordedAttributes = SmallVec<[Attribute; 4]>;

/// A span's list of attributes: its own (a `Vec`), or the few fields of a later record, kept on
/// the stack until they are applied (a `SmallVec`).
trait AttributeList {
    fn as_mut_slice(&mut self) -> &mut [Attribute];
    /// Appends one attribute. Not `Extend`: extending from a one-element array went through
    /// the general path (a reserve, an iterator, a `memcpy` call per element), a tenth of a
    /// sampled span's instructions with `upsert` around it.
    fn push(&mut self, attribute: Attribute);
}

impl AttributeList for Vec<Attribute> {
    fn as_mut_slice(&mut self) -> &mut [Attribute] {
        self
    }
    fn push(&mut self, attribute: Attribute) {
        Vec::push(self, attribute);
    }
}

impl AttributeList for RecordedAttributes {
    fn as_mut_slice(&mut self) -> &mut [Attribute] {
        self
    }
    fn push(&mut self, attribute: Attribute) {
        SmallVec::push(self, attribute);
    }
}

/// Adds an attribute to `list`; a field recorded again (through `Span::record`) replaces its
/// earlier value.
#[inline]
fn upsert(list: &mut impl AttributeList, name: &'static str, value: AttributeValue) {
    match list.as_mut_slice().iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value,
        None => list.push((name, value)),
    }
}

/// Whether a field name has a meaning of its own (`otel.*`, `traceparent`, `error`) rather
/// than being an attribute: tested before any name comparison, so that the common field
/// (`order.symbol`) costs one prefix test, not four failed comparisons (the first test was the
/// initial letter, which every `order.*` field passed).
fn is_special_field(name: &str) -> bool {
    name.starts_with("otel.") || name == "traceparent" || name == "error"
}

struct FieldCollector<'a, L> {
    attributes: &'a mut L,
    kind: Option<SpanKind>,
    name: Option<String>,
    traceparent: Option<String>,
    error: Option<String>,
}

impl<L: AttributeList> FieldCollector<'_, L> {
    /// Inlined into each `record_*`, the special names out of line: as one function, every
    /// attribute paid the special cases' saved registers and a copy of its value.
    #[inline]
    fn put(&mut self, field: &Field, value: AttributeValue) {
        let name = field.name();
        if is_special_field(name) {
            self.put_special(name, value);
        } else {
            upsert(self.attributes, name, value);
        }
    }

    #[inline(never)]
    fn put_special(&mut self, name: &'static str, value: AttributeValue) {
        match (name, &value) {
            ("otel.kind", AttributeValue::Str(k)) => {
                self.kind = Some(match k.to_ascii_lowercase().as_str() {
                    "server" => SpanKind::Server,
                    "client" => SpanKind::Client,
                    _ => SpanKind::Internal,
                })
            }
            ("otel.name", AttributeValue::Str(n)) => self.name = Some(n.clone()),
            ("traceparent", AttributeValue::Str(t)) => self.traceparent = Some(t.clone()),
            ("otel.status_code", AttributeValue::Str(s)) if s.eq_ignore_ascii_case("error") => {
                self.error.get_or_insert_with(|| "error".to_owned());
            }
            ("error" | "otel.status_message", AttributeValue::Str(e)) => {
                self.error = Some(e.clone())
            }
            _ => upsert(self.attributes, name, value),
        }
    }
}

impl<L: AttributeList> Visit for FieldCollector<'_, L> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, AttributeValue::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttributeValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(
            field,
            AttributeValue::Int(i64::try_from(value).unwrap_or(i64::MAX)),
        );
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttributeValue::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AttributeValue::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, AttributeValue::Str(format!("{value:?}")));
    }
}

/// Fields of a `Span::record` call on a sampled span, collected ([`SpanLayer::collect`]) and
/// not yet applied ([`SpanLayer::apply`]).
pub(crate) struct RecordedFields {
    attributes: RecordedAttributes,
    kind: Option<SpanKind>,
    name: Option<String>,
    error: Option<String>,
}

struct MessageCollector(String);

impl Visit for MessageCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }
}

thread_local! {
    /// The state of this thread's id generator; 0 until its first id. A plain `Cell` needs no
    /// lazy initialisation or borrow flag on each access.
    static ID_STATE: Cell<u64> = const { Cell::new(0) };
}

/// An id generator (wyrand: one add and one multiply per word), its state copied out of and
/// back into the thread's [`ID_STATE`].
///
/// Ids need uniqueness, not secrecy: a fast generator per thread, seeded from the OS on the
/// thread's first id. It replaced `rand`'s `SmallRng` behind a `RefCell`, which with its lazy
/// thread-local and borrow flag took 80 instructions per span for three words. The state is
/// read and written with `Cell::get`/`set` on the key, which inline to one load and one store;
/// `LocalKey::with` around the whole draw was compiled as a call through the key's accessor.
struct IdWords(u64);

impl IdWords {
    fn take() -> Self {
        let state = ID_STATE.get();
        Self(if state == 0 {
            rand::rngs::SmallRng::from_entropy().next_u64() | 1
        } else {
            state
        })
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let product = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (product >> 64) as u64 ^ product as u64
    }

    /// A word that is not zero (an all-zero trace or span id is invalid).
    fn nonzero(&mut self) -> u64 {
        loop {
            let word = self.next();
            if word != 0 {
                return word;
            }
        }
    }

    fn put_back(self) {
        ID_STATE.set(self.0);
    }
}

/// A new span id, and a new trace id when the span starts a trace, drawn a whole word at a
/// time. Each id is non-zero: one of its words is. Forced inline into the span's opening: an
/// unrelated change once left it out of line, a call and a frame of its own, 30 instructions
/// more per unsampled span.
#[inline(always)]
fn random_ids(new_trace: bool) -> (Option<[u8; 16]>, [u8; 8]) {
    let mut words = IdWords::take();
    let trace_id = new_trace.then(|| {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&words.next().to_ne_bytes());
        id[8..].copy_from_slice(&words.nonzero().to_ne_bytes());
        id
    });
    let span_id = words.nonzero().to_ne_bytes();
    words.put_back();
    (trace_id, span_id)
}

impl SpanLayer {
    /// The identity of a span opening now, and its record for export when it is sampled.
    ///
    /// A remote context handed over for this span ([`with_remote_parent`](super::with_remote_parent))
    /// wins over the local parent: a server span belongs to its caller's trace whatever span was
    /// current when it opened. `local_parent` (the identity of the span it opens inside) is
    /// asked only when there is none. Shared by this layer and
    /// [`SpanLogSubscriber`](crate::subscriber::SpanLogSubscriber), which find the parent each
    /// in their own span store.
    ///
    /// The identity is written into `identity` and the record into `finished` (which must be
    /// `None` on entry and is left so for an unsampled span) rather than returned, so that a
    /// caller with a place for them already (the subscriber's pooled span records) does not
    /// move them through the stack: the moves were the largest items in profiles of an
    /// unsampled span.
    pub(crate) fn open(
        &self,
        attrs: &Attributes<'_>,
        local_parent: impl FnOnce() -> Option<SpanIdentity>,
        identity: &mut SpanIdentity,
        finished: &mut Option<FinishedSpan>,
    ) {
        let remote = take_remote_parent();
        let local_parent = if remote.is_none() {
            local_parent()
        } else {
            None
        };
        let (trace_id, parent_span_id, flags, trace_state, parent_is_remote) = match local_parent {
            Some(p) => (
                Some(p.ids.trace_id),
                Some(p.ids.span_id),
                p.flags,
                p.trace_state,
                false,
            ),
            None => {
                // Only a root span with a traceparent field looks at its value. A malformed one
                // is never an error: the span starts a new trace.
                let remote = remote.flatten().or_else(|| {
                    attrs.metadata().fields().field("traceparent")?;
                    let mut finder = TraceparentFinder(None);
                    attrs.record(&mut finder);
                    finder
                        .0
                        .as_deref()
                        .and_then(TraceParent::parse)
                        .map(TraceContext::from)
                });
                match remote {
                    Some(TraceContext {
                        traceparent: r,
                        tracestate,
                    }) => {
                        let state = (!tracestate.is_empty()).then(|| Arc::new(tracestate));
                        (Some(r.trace_id), Some(r.parent_id), r.flags, state, true)
                    }
                    // A new trace: its id is drawn with the span's, below.
                    None => (None, None, FLAG_RANDOM, None, false),
                }
            }
        };
        let (new_trace_id, span_id) = random_ids(trace_id.is_none());
        let (trace_id, flags) = match (trace_id, new_trace_id) {
            (Some(trace_id), _) => (trace_id, flags),
            (None, new_trace_id) => {
                let trace_id = new_trace_id.unwrap_or_default();
                let sampled = if self.sample_root(&trace_id) {
                    FLAG_SAMPLED
                } else {
                    0
                };
                (trace_id, flags | sampled)
            }
        };
        let ids = TraceIds { trace_id, span_id };
        // Unsampled spans keep their ids (for logs) and nothing else: no attributes, no clock,
        // and no write to `finished` (clearing it costs a check and a drop the profile showed).
        // Nor does a sampled span when nothing exports, or when the sink would drop it: it keeps
        // its sampled flag (passed on in `traceparent`, and what exemplars look for), but a
        // record that no sink takes would cost its attributes, clock reads and event messages
        // for nothing. The engine runs so by default (no collector configured), every span
        // sampled; and so while its collector is down.
        identity.ids = ids;
        identity.flags = flags;
        if flags & FLAG_SAMPLED == 0 || !self.sink.as_ref().is_some_and(|sink| sink.accepts()) {
            identity.trace_state = trace_state;
            return;
        }
        *finished = Some({
            let mut attributes = Vec::with_capacity(attrs.metadata().fields().len());
            let mut fields = FieldCollector {
                attributes: &mut attributes,
                kind: None,
                name: None,
                traceparent: None,
                error: None,
            };
            attrs.record(&mut fields);
            FinishedSpan {
                trace_id,
                span_id: ids.span_id,
                parent_span_id,
                parent_is_remote,
                flags,
                trace_state: trace_state.clone(),
                name: fields.name.take().map_or(
                    std::borrow::Cow::Borrowed(attrs.metadata().name()),
                    std::borrow::Cow::Owned,
                ),
                kind: fields.kind.unwrap_or(SpanKind::Internal),
                start_unix_nanos: now_nanos(),
                end_unix_nanos: 0,
                error: fields.error.take(),
                attributes,
                events: Vec::new(),
            }
        });
        identity.trace_state = trace_state;
    }

    /// Fields recorded on an open sampled span (`Span::record`), collected before the span's
    /// record is locked and [applied](Self::apply) after: collecting formats the values, whose
    /// `Debug` may log a line, which reads the span.
    pub(crate) fn collect(values: &Record<'_>) -> RecordedFields {
        let mut attributes = RecordedAttributes::new();
        let mut fields = FieldCollector {
            attributes: &mut attributes,
            kind: None,
            name: None,
            traceparent: None,
            error: None,
        };
        values.record(&mut fields);
        RecordedFields {
            kind: fields.kind,
            name: fields.name.take(),
            error: fields.error.take(),
            attributes,
        }
    }

    /// Applies fields [collected](Self::collect) from a record: a field recorded again
    /// replaces its earlier value.
    pub(crate) fn apply(finished: &mut FinishedSpan, recorded: RecordedFields) {
        for (name, value) in recorded.attributes {
            upsert(&mut finished.attributes, name, value);
        }
        if let Some(kind) = recorded.kind {
            finished.kind = kind;
        }
        if let Some(name) = recorded.name {
            finished.name = name.into();
        }
        if let Some(error) = recorded.error {
            finished.error = Some(error);
        }
    }

    /// Whether an open sampled span keeps another event (up to [`MAX_EVENTS`]).
    pub(crate) fn keeps_events(finished: &FinishedSpan) -> bool {
        finished.events.len() < MAX_EVENTS
    }

    /// The message of an event, formatted before the span that keeps it is locked (its
    /// `Display` may log a line, which reads the span).
    pub(crate) fn event_message(event: &Event<'_>) -> String {
        let mut message = MessageCollector(String::new());
        event.record(&mut message);
        message.0
    }

    /// Keeps an event of an open sampled span, as its message, while it keeps events.
    pub(crate) fn push_event(finished: &mut FinishedSpan, message: String) {
        if Self::keeps_events(finished) {
            finished.events.push((now_nanos(), message));
        }
    }

    /// Ends a sampled span and hands it to the sink, if there is one. Inlined into the
    /// closing of the span: 16 instructions fewer per sampled span. The record is still copied
    /// three times on its way from the span's slot to the sink (a `memcpy` call each, about 150
    /// instructions together), which inlining was meant to remove and did not.
    #[inline]
    pub(crate) fn finish(&self, mut finished: FinishedSpan) {
        if let Some(sink) = &self.sink {
            finished.end_unix_nanos = now_nanos();
            sink.push(finished);
        }
    }

    /// Whether closing spans go anywhere: without a sink there is nothing to take out.
    pub(crate) fn exports(&self) -> bool {
        self.sink.is_some()
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let (mut identity, mut finished) = (SpanIdentity::default(), None);
        self.open(
            attrs,
            || {
                span.parent().and_then(|p| {
                    p.extensions()
                        .get::<SpanState>()
                        .map(|s| s.identity.clone())
                })
            },
            &mut identity,
            &mut finished,
        );
        // One extension per span (each is a boxed allocation): log lines find the ids in it
        // through `ids_in`.
        span.extensions_mut().insert(SpanState {
            identity,
            span: finished,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let sampled = span
            .extensions()
            .get::<SpanState>()
            .is_some_and(|s| s.span.is_some());
        if !sampled {
            return;
        }
        // Collected before the extensions are locked: formatting a value may log a line.
        let recorded = Self::collect(values);
        let mut extensions = span.extensions_mut();
        if let Some(finished) = extensions
            .get_mut::<SpanState>()
            .and_then(|s| s.span.as_mut())
        {
            Self::apply(finished, recorded);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let keeps = span
            .extensions()
            .get::<SpanState>()
            .and_then(|s| s.span.as_ref())
            .is_some_and(Self::keeps_events);
        if !keeps {
            return;
        }
        // Formatted before the extensions are locked: a message's `Display` may log a line.
        let message = Self::event_message(event);
        let mut extensions = span.extensions_mut();
        if let Some(finished) = extensions
            .get_mut::<SpanState>()
            .and_then(|s| s.span.as_mut())
        {
            Self::push_event(finished, message);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.exports() {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        // Taken out of the state in place: the finished span is moved once, into the sink,
        // rather than with the whole state out of its box first (the moves showed in a profile).
        let finished = span
            .extensions_mut()
            .get_mut::<SpanState>()
            .and_then(|s| s.span.take());
        if let Some(finished) = finished {
            self.finish(finished);
        }
    }
}

/// The W3C ids of a span from its extensions: this layer's state, or a [`TraceIds`] extension
/// that another layer inserted.
pub(crate) fn ids_in(
    extensions: &tracing_subscriber::registry::Extensions<'_>,
) -> Option<TraceIds> {
    extensions
        .get::<SpanState>()
        .map(|state| state.identity.ids)
        .or_else(|| extensions.get::<TraceIds>().copied())
}

/// Runs `f` on the identity of `span`, when the subscriber and the span layer know the span:
/// [`SpanLogSubscriber`](crate::subscriber::SpanLogSubscriber), or a `tracing-subscriber`
/// registry with [`SpanLayer`].
pub(super) fn with_state<T>(
    span: &tracing::Span,
    f: impl FnOnce(&SpanIdentity) -> Option<T>,
) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(ours) = dispatch.downcast_ref::<crate::subscriber::SpanLogSubscriber>() {
            return ours.with_identity(id, f);
        }
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let extensions = span.extensions();
        f(&extensions.get::<SpanState>()?.identity)
    })
    .flatten()
}

/// The ids of the current span when it is sampled: what histograms attach as exemplars.
///
/// Under [`SpanLogSubscriber`](crate::subscriber::SpanLogSubscriber) this reads the thread's
/// innermost entered span directly; under a registry it goes through `Span::current()`.
pub fn current_sampled_ids() -> Option<TraceIds> {
    // Asked and answered inside one `get_default`: a `Span::current()` inside it would see no
    // subscriber, since `tracing` does not let a thread re-enter its dispatcher there.
    let ours = tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .downcast_ref::<crate::subscriber::SpanLogSubscriber>()
            .map(crate::subscriber::SpanLogSubscriber::current_sampled_ids)
    });
    match ours {
        Some(ids) => ids,
        None => with_state(&tracing::Span::current(), |identity| {
            identity.sampled().then_some(identity.ids)
        }),
    }
}

/// The `traceparent` of the current span, to put on an outgoing call. Use
/// [`TraceContext::of`] or [`inject`](super::inject) to send the `tracestate` with it.
pub fn current_traceparent() -> Option<String> {
    TraceContext::current().map(|c| c.traceparent.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Default)]
    struct Collect(Mutex<Vec<FinishedSpan>>);

    impl SpanSink for Collect {
        fn push(&self, span: FinishedSpan) {
            self.0.lock().unwrap().push(span);
        }
    }

    fn run(ratio: f64, f: impl FnOnce()) -> Vec<FinishedSpan> {
        let sink = Arc::new(Collect::default());
        let subscriber = tracing_subscriber::registry().with(SpanLayer::new(
            ratio,
            Some(sink.clone() as Arc<dyn SpanSink>),
        ));
        tracing::subscriber::with_default(subscriber, f);
        let spans = sink.0.lock().unwrap().clone();
        spans
    }

    /// Takes spans only while `open` is set, as an exporter does outside its pauses, and
    /// counts what it takes and what it refuses.
    #[derive(Default)]
    struct Gate {
        open: std::sync::atomic::AtomicBool,
        refused: std::sync::atomic::AtomicUsize,
        pushed: std::sync::atomic::AtomicUsize,
    }

    impl SpanSink for Gate {
        fn push(&self, _: FinishedSpan) {
            self.pushed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn accepts(&self) -> bool {
            let open = self.open.load(std::sync::atomic::Ordering::Relaxed);
            if !open {
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            open
        }
    }

    #[test]
    fn a_span_the_sink_refuses_at_open_keeps_its_sampled_ids_and_builds_no_record() {
        use std::sync::atomic::Ordering::Relaxed;
        let gate = Arc::new(Gate::default());
        let subscriber = crate::subscriber::SpanLogSubscriber::new(SpanLayer::new(
            1.0,
            Some(gate.clone() as Arc<dyn SpanSink>),
        ));
        tracing::subscriber::with_default(subscriber, || {
            let refused = tracing::info_span!("order.execute", order.symbol = "EURUSD");
            let _entered = refused.enter();
            assert!(
                current_traceparent().is_some_and(|t| t.ends_with("-03")),
                "still sampled, for traceparent: {:?}",
                current_traceparent()
            );
            assert!(
                current_sampled_ids().is_some(),
                "still sampled, for exemplars"
            );
            tracing::info!("an event the refused span does not keep");
            gate.open.store(true, Relaxed);
            let _taken = tracing::info_span!("risk.check").entered();
        });
        assert_eq!(gate.refused.load(Relaxed), 1, "asked once, at open");
        assert_eq!(gate.pushed.load(Relaxed), 1, "only the span opened after");
    }

    #[test]
    fn children_join_the_callers_trace_through_traceparent() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        let spans = run(1.0, || {
            let server = tracing::info_span!(
                "HTTP",
                otel.kind = "server",
                traceparent = header,
                http.route = "/api/orders"
            );
            let _s = server.enter();
            let order = tracing::info_span!("order.execute", order.id = tracing::field::Empty);
            order.record("order.id", "o-1");
            let _o = order.enter();
            assert!(
                current_sampled_ids().is_some(),
                "exemplars see the sampled span"
            );
            assert!(current_traceparent()
                .unwrap()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
            tracing::warn!("risk check slow");
        });
        let server = spans.iter().find(|s| s.name == "HTTP").unwrap();
        let order = spans.iter().find(|s| s.name == "order.execute").unwrap();
        assert_eq!(
            server.trace_id,
            *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36"
        );
        assert_eq!(
            server.parent_span_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!(server.flags, 0x03, "the random flag is kept");
        assert_eq!(server.kind, SpanKind::Server);
        assert_eq!(order.trace_id, server.trace_id);
        assert_eq!(order.parent_span_id, Some(server.span_id));
        assert!(order
            .attributes
            .contains(&("order.id", AttributeValue::Str("o-1".to_owned()))));
        assert_eq!(order.events.len(), 1);
    }

    #[test]
    fn only_the_special_field_names_leave_the_attributes_and_a_field_recorded_again_is_replaced() {
        let spans = run(1.0, || {
            let span = tracing::info_span!(
                "order.execute",
                otel.name = "order EURUSD",
                otel.kind = "client",
                order.symbol = "EURUSD",
                otel = "kept",
                errors = 2_i64,
                tracestate = "kept",
                order.status = tracing::field::Empty,
                error = tracing::field::Empty,
            );
            span.record("order.status", "new");
            span.record("order.status", "filled");
            span.record("error", "rejected by LP");
        });
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.name, "order EURUSD");
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.error.as_deref(), Some("rejected by LP"));
        assert_eq!(
            span.attributes,
            [
                ("order.symbol", AttributeValue::Str("EURUSD".to_owned())),
                ("otel", AttributeValue::Str("kept".to_owned())),
                ("errors", AttributeValue::Int(2)),
                ("tracestate", AttributeValue::Str("kept".to_owned())),
                ("order.status", AttributeValue::Str("filled".to_owned())),
            ]
        );
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_sampled_trace() {
        let spans = run(1.0, || {
            let _s = tracing::info_span!("HTTP", traceparent = "00-zz-nonsense-01").entered();
        });
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(spans[0].flags, FLAG_SAMPLED | FLAG_RANDOM);
    }

    #[test]
    fn ratio_zero_exports_nothing_and_unsampled_parents_are_respected() {
        assert!(run(0.0, || {
            let _s = tracing::info_span!("root").entered();
        })
        .is_empty());
        let spans = run(1.0, || {
            let _s = tracing::info_span!(
                "HTTP",
                traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
            )
            .entered();
            let _c = tracing::info_span!("child").entered();
        });
        assert!(
            spans.is_empty(),
            "ParentBased: an unsampled caller is not sampled here"
        );
    }

    #[test]
    fn sampling_at_a_ratio_is_close_to_it() {
        let spans = run(0.25, || {
            for _ in 0..4000 {
                let _s = tracing::info_span!("root").entered();
            }
        });
        assert!(
            (800..1200).contains(&spans.len()),
            "{} of 4000 sampled at 0.25",
            spans.len()
        );
    }
}
