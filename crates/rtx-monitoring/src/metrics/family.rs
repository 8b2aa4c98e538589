//! A family and its series as the encoder reads them, and the [`Metric`] kinds the registry
//! can create series of.

use std::sync::{Arc, PoisonError, RwLock};

use super::counter::{Counter, FloatCounter};
use super::gauge::Gauge;
use super::histogram::Histogram;
use super::native::NativeLayout;
use super::shards::ShardedCells;
use super::spec::MetricSpec;

/// The storage behind one series, as the encoder reads it.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub enum SeriesValue {
    #[doc(hidden)]
    Counter(Counter),
    #[doc(hidden)]
    FloatCounter(FloatCounter),
    #[doc(hidden)]
    Gauge(Gauge),
    #[doc(hidden)]
    Histogram(Histogram),
}

#[derive(Debug)]
pub(crate) struct Series {
    /// `name="value",…` without braces, escaped once at creation.
    pub(crate) labels: Box<str>,
    pub(crate) value: SeriesValue,
    /// When the series was registered: the `_created` sample and protobuf `created_timestamp`,
    /// which tell a reader the series started from zero then.
    pub(crate) created: std::time::SystemTime,
}

#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) spec: MetricSpec,
    pub(crate) series: RwLock<Vec<Series>>,
}

impl Family {
    pub(super) fn push(&self, labels: Box<str>, value: SeriesValue) {
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Series {
                labels,
                value,
                created: std::time::SystemTime::now(),
            });
    }
}

/// A kind of series the registry can create: counters, gauges and histograms.
pub trait Metric: Clone + Send + Sync + 'static {
    /// The handle that records nothing.
    fn noop_handle() -> Self;
    #[doc(hidden)]
    fn create(cells: &Arc<ShardedCells>, spec: &MetricSpec) -> Option<(Self, SeriesValue)>;
}

impl Metric for Counter {
    fn noop_handle() -> Self {
        Counter::noop()
    }
    fn create(cells: &Arc<ShardedCells>, _: &MetricSpec) -> Option<(Self, SeriesValue)> {
        let c = Counter::new(cells.table(), cells.allocate(1)?);
        Some((c.clone(), SeriesValue::Counter(c)))
    }
}

impl Metric for FloatCounter {
    fn noop_handle() -> Self {
        FloatCounter::noop()
    }
    fn create(cells: &Arc<ShardedCells>, _: &MetricSpec) -> Option<(Self, SeriesValue)> {
        let c = FloatCounter::new(cells.table(), cells.allocate(1)?);
        Some((c.clone(), SeriesValue::FloatCounter(c)))
    }
}

impl Metric for Gauge {
    fn noop_handle() -> Self {
        Gauge::noop()
    }
    fn create(_: &Arc<ShardedCells>, _: &MetricSpec) -> Option<(Self, SeriesValue)> {
        let g = Gauge::new();
        Some((g.clone(), SeriesValue::Gauge(g)))
    }
}

impl Metric for Histogram {
    fn noop_handle() -> Self {
        Histogram::noop()
    }
    fn create(cells: &Arc<ShardedCells>, spec: &MetricSpec) -> Option<(Self, SeriesValue)> {
        let bounds = spec
            .buckets
            .clone()
            .unwrap_or_else(|| Arc::from(super::histogram::LATENCY_BUCKETS));
        let native = spec.native.as_ref().map(NativeLayout::new);
        let base = cells.allocate(Histogram::cells_needed(
            &bounds,
            spec.exemplars,
            native.as_ref(),
        ))?;
        let h = Histogram::new(cells.table(), base, bounds, spec.exemplars, native);
        Some((h.clone(), SeriesValue::Histogram(h)))
    }
}
