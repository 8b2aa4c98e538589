//! Metrics: the registry, the counter, gauge and histogram handles, the cardinality guard, and
//! the Prometheus and OpenMetrics exposition.
//!
//! Owns storage and encoding only. It knows nothing of trading (that is `catalogue`) nor of
//! HTTP (that is `http`), so it can be used and benchmarked on its own.

mod counter;
mod dense;
mod dynamic;
pub(crate) mod exposition;
mod family;
mod gauge;
mod histogram;
mod labels;
mod native;
mod process;
mod protobuf;
mod read;
mod registry;
mod shards;
mod spec;

pub use counter::{Counter, FloatCounter};
pub use dense::Dense;
pub use dynamic::{Dynamic, OTHER_LABEL_VALUE};
pub use exposition::Format;
pub use family::Metric;
pub use gauge::{Gauge, InFlight};
pub use histogram::{
    set_exemplar_source, Exemplar, Histogram, HistogramSnapshot, TraceIds, EXEMPLAR_LABEL_CHARS,
    LATENCY_BUCKETS, SLIPPAGE_BUCKETS,
};
pub(crate) use labels::label_enum;
pub use labels::{
    escape_label_value, is_valid_label_name, is_valid_metric_name, ConfiguredValues, LabelValue,
};
pub use native::{
    bucket_index, growth_factor, reduce_resolution, schema_for_factor, upper_bound, NativeBuckets,
    NativeConfig, MAX_SCHEMA, MIN_SCHEMA, WINDOW_TOP,
};
pub use process::{register_process_collector, ProcessSample};
pub use read::{Reading, ReadingValue};
pub use registry::Registry;
pub use spec::{MetricKind, MetricSpec, RegistryError};
