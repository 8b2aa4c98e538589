//! Histograms with cumulative buckets, a sum, and exemplars that link a bucket to a trace.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::shards::ShardedCells;

/// Latency buckets for trading paths, in seconds: 100 µs to 10 s, with exact boundaries at the
/// SLO target (0.1 s) and the alert thresholds (0.25 s, 0.5 s, 1 s, 2 s) so that
/// `histogram_quantile` and the burn-rate rules compare against a real bucket edge.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
    5.0, 10.0,
];

/// Slippage buckets in pips, negative (price improvement) to positive.
pub const SLIPPAGE_BUCKETS: &[f64] = &[
    -5.0, -2.0, -1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// The ids of the span an observation was made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceIds {
    /// W3C trace id (16 bytes, never all zero).
    pub trace_id: [u8; 16],
    /// W3C span id (8 bytes, never all zero).
    pub span_id: [u8; 8],
}

/// The most recent sampled observation of one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The span the observation came from.
    pub ids: TraceIds,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in seconds since the Unix epoch.
    pub timestamp: f64,
}

/// OpenMetrics caps the label names and values of one exemplar at 128 characters together;
/// ours are always `trace_id` (8) + 32 hex + `span_id` (7) + 16 hex.
pub const EXEMPLAR_LABEL_CHARS: usize = 8 + 32 + 7 + 16;
const _: () = assert!(EXEMPLAR_LABEL_CHARS <= 128);

static EXEMPLAR_SOURCE: OnceLock<fn() -> Option<TraceIds>> = OnceLock::new();

/// Installs the function that tells which sampled span, if any, the current thread is in.
/// Histograms built with exemplars ask it on every observation. Creating the tracing module's
/// `SpanLayer` installs it; call this only to take exemplars from another tracer. The first
/// source installed stays: returns false if one was already set.
pub fn set_exemplar_source(source: fn() -> Option<TraceIds>) -> bool {
    EXEMPLAR_SOURCE.set(source).is_ok()
}

#[inline]
fn current_trace() -> Option<TraceIds> {
    EXEMPLAR_SOURCE.get().and_then(|source| source())
}

pub(crate) struct HistogramShape {
    pub(crate) bounds: Arc<[f64]>,
    exemplars: Option<Box<[Mutex<Option<Exemplar>>]>>,
}

/// A histogram handle. Observation is a bucket search plus two cell updates in the calling
/// thread's own slot: no lock, no allocation, no shared cache line.
///
/// ```
/// use rtx_monitoring::metrics::{MetricSpec, Registry, LATENCY_BUCKETS};
/// let registry = Registry::new();
/// let latency = registry
///     .histogram(MetricSpec::histogram("demo_latency_seconds", "Latency.", LATENCY_BUCKETS).with_unit("seconds"))
///     .unwrap();
/// latency.observe(0.042);
/// let snapshot = latency.snapshot();
/// assert_eq!(snapshot.count, 1);
/// assert_eq!(snapshot.cumulative[9], 1); // the 0.1 s bucket
/// ```
#[derive(Clone)]
#[must_use]
pub struct Histogram {
    cells: Option<Arc<ShardedCells>>,
    base: usize,
    shape: Arc<HistogramShape>,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("bounds", &self.shape.bounds)
            .finish_non_exhaustive()
    }
}

/// What a scrape reads from a histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, without `+Inf`.
    pub bounds: Arc<[f64]>,
    /// Cumulative counts, one per bound plus the `+Inf` bucket.
    pub cumulative: Vec<u64>,
    /// Sum of observed values.
    pub sum: f64,
    /// Number of observations (equal to the `+Inf` bucket by construction).
    pub count: u64,
    /// Latest exemplar per bucket, where one was recorded.
    pub exemplars: Vec<Option<Exemplar>>,
}

impl Histogram {
    pub(crate) fn cells_needed(bounds: &[f64]) -> usize {
        bounds.len() + 2
    }

    pub(crate) fn new(
        cells: Arc<ShardedCells>,
        base: usize,
        bounds: Arc<[f64]>,
        exemplars: bool,
    ) -> Self {
        let exemplars = exemplars.then(|| (0..=bounds.len()).map(|_| Mutex::new(None)).collect());
        Self {
            cells: Some(cells),
            base,
            shape: Arc::new(HistogramShape { bounds, exemplars }),
        }
    }

    /// A histogram that records nothing.
    pub fn noop() -> Self {
        Self {
            cells: None,
            base: 0,
            shape: Arc::new(HistogramShape {
                bounds: Arc::from([]),
                exemplars: None,
            }),
        }
    }

    #[inline]
    fn bucket_of(&self, value: f64) -> usize {
        // `le` semantics: the first bound that is >= value; NaN lands in +Inf.
        if value.is_nan() {
            self.shape.bounds.len()
        } else {
            self.shape.bounds.partition_point(|&bound| bound < value)
        }
    }

    /// Records one observation; on a histogram built with exemplars, also links the bucket to
    /// the sampled span the thread is in, if any. A NaN counts in `+Inf` but is kept out of the
    /// sum, which it would otherwise turn into NaN for the life of the process.
    #[inline]
    pub fn observe(&self, value: f64) {
        let Some(cells) = &self.cells else { return };
        let bucket = self.record(cells, value);
        if self.shape.exemplars.is_some() {
            if let Some(ids) = current_trace() {
                self.store_exemplar(bucket, ids, value);
            }
        }
    }

    /// Records a duration in seconds.
    #[inline]
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// Records one observation made inside the span `ids`.
    pub fn observe_with_exemplar(&self, value: f64, ids: TraceIds) {
        let Some(cells) = &self.cells else { return };
        let bucket = self.record(cells, value);
        self.store_exemplar(bucket, ids, value);
    }

    #[inline(always)]
    fn record(&self, cells: &ShardedCells, value: f64) -> usize {
        let bucket = self.bucket_of(value);
        let local = cells.local(self.base);
        local.add_u64(bucket, 1);
        if !value.is_nan() {
            local.add_f64(self.shape.bounds.len() + 1, value);
        }
        bucket
    }

    fn store_exemplar(&self, bucket: usize, ids: TraceIds, value: f64) {
        let Some(slots) = &self.shape.exemplars else {
            return;
        };
        // Never wait: if a scrape or another thread holds this bucket's slot, skip this one.
        if let Ok(mut slot) = slots[bucket].try_lock() {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            *slot = Some(Exemplar {
                ids,
                value,
                timestamp,
            });
        }
    }

    /// Reads the histogram as a scrape does.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = Arc::clone(&self.shape.bounds);
        let Some(cells) = &self.cells else {
            return HistogramSnapshot {
                bounds,
                cumulative: vec![0],
                sum: 0.0,
                count: 0,
                exemplars: vec![None],
            };
        };
        let mut running = 0u64;
        let cumulative: Vec<u64> = (0..=bounds.len())
            .map(|i| {
                running = running.wrapping_add(cells.read_u64(self.base + i));
                running
            })
            .collect();
        let exemplars = match &self.shape.exemplars {
            Some(slots) => slots
                .iter()
                .map(|s| s.lock().map_or(None, |e| *e))
                .collect(),
            None => vec![None; bounds.len() + 1],
        };
        HistogramSnapshot {
            sum: cells.read_f64(self.base + bounds.len() + 1),
            count: running,
            cumulative,
            bounds,
            exemplars,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(bounds: &[f64]) -> Histogram {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(Histogram::cells_needed(bounds)).unwrap();
        Histogram::new(cells, base, Arc::from(bounds), true)
    }

    #[test]
    fn a_value_on_a_bucket_edge_counts_in_that_bucket() {
        let h = histogram(LATENCY_BUCKETS);
        h.observe(0.1);
        h.observe(0.100_000_1);
        let s = h.snapshot();
        let edge = LATENCY_BUCKETS.iter().position(|&b| b == 0.1).unwrap();
        assert_eq!(s.cumulative[edge], 1);
        assert_eq!(s.cumulative[edge + 1], 2);
        assert_eq!(s.count, 2);
    }

    #[test]
    fn nan_and_huge_values_land_in_the_inf_bucket() {
        let h = histogram(&[1.0]);
        h.observe(f64::NAN);
        h.observe(1e300);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![0, 2]);
    }

    #[test]
    fn an_exemplar_sticks_to_its_bucket() {
        let h = histogram(&[0.1, 1.0]);
        let ids = TraceIds {
            trace_id: [7; 16],
            span_id: [9; 8],
        };
        h.observe_with_exemplar(0.5, ids);
        let s = h.snapshot();
        assert_eq!(s.exemplars[1].map(|e| e.ids), Some(ids));
        assert!(s.exemplars[0].is_none());
    }
}
