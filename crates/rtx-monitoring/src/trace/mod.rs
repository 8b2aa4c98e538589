//! Distributed tracing: W3C Trace Context (Level 2) propagation between services, the span
//! layer that gives `tracing` spans W3C trace and span ids and samples them, and their export
//! over OTLP/HTTP.
//!
//! Named `trace` rather than `tracing` so that it never shadows the `tracing` crate the rest of
//! the library logs through. Owns trace identity and propagation; it must never fail a request:
//! a malformed header starts a new trace.

mod context;
#[cfg(feature = "otlp")]
mod export;
mod propagation;
mod span;
mod tracestate;
#[cfg(feature = "otlp")]
mod wire;
pub(crate) use span::{ids_in, SpanIdentity};

#[cfg(feature = "reqwest")]
pub use context::RequestBuilderExt;
pub use context::{extract, inject, with_remote_parent, TraceContext, TRACEPARENT, TRACESTATE};
#[cfg(feature = "otlp")]
pub use export::{OtlpConfig, OtlpExporter, BATCH};
pub use propagation::{TraceParent, FLAG_RANDOM, FLAG_SAMPLED, KNOWN_FLAGS};
pub use span::{
    current_sampled_ids, current_traceparent, AttributeValue, FinishedSpan, SpanKind, SpanLayer,
    SpanSink,
};
pub use tracestate::{TraceState, TraceStateError, MAX_MEMBERS};
