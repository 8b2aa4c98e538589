//! Distributed tracing: W3C Trace Context propagation, the span layer that gives `tracing`
//! spans W3C trace and span ids and samples them, and their export over OTLP/HTTP.
//!
//! Named `trace` rather than `tracing` so that it never shadows the `tracing` crate the rest of
//! the library logs through. Owns trace identity and propagation; it must never fail a request:
//! a malformed header starts a new trace.

#[cfg(feature = "otlp")]
mod export;
mod propagation;
mod span;
pub(crate) use span::ids_in;

#[cfg(feature = "otlp")]
pub use export::{OtlpConfig, OtlpExporter, BATCH};
pub use propagation::{TraceParent, TraceState, FLAG_RANDOM, FLAG_SAMPLED};
pub use span::{
    current_sampled_ids, current_traceparent, AttributeValue, FinishedSpan, SpanKind, SpanLayer,
    SpanSink,
};
