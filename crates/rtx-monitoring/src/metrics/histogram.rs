//! Histograms with cumulative buckets, a sum, and exemplars that link a bucket to a trace.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::native::{NativeBuckets, NativeCell, NativeLayout};
use super::shards::{CellTable, CellTotals, LocalCells};

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

/// Cells per bucket's exemplar in every slot: a sequence number (odd while the owner writes),
/// the trace id in two halves, the span id, the value, the timestamp, the scrape it was stored
/// after and the sampled observations skipped since. Eight cells: one cache line.
const EXEMPLAR_CELLS: usize = 8;
const SEQ: usize = 0;
const TRACE_HIGH: usize = 1;
const TRACE_LOW: usize = 2;
const SPAN: usize = 3;
const VALUE: usize = 4;
const TIMESTAMP: usize = 5;
const STORED_AFTER: usize = 6;
const SKIPPED: usize = 7;

/// A thread replaces the exemplar it holds for a bucket at the first sampled observation after
/// each scrape, and otherwise once every this many sampled observations of that bucket. Reading
/// the system clock costs about 50 ns on the machine of `BENCHMARKS.md`, several plain
/// observations; pacing the stores keeps it off nearly every sampled observation while every
/// scrape still finds an exemplar newer than the last one it saw, whenever one was sampled.
const STORE_EVERY: u64 = 64;

/// What the scrape shares with the recording threads of a histogram built with exemplars.
#[derive(Debug, Default)]
struct ExemplarPacing {
    /// How many snapshots have read this histogram: a thread whose stored exemplar predates the
    /// latest one stores the next sampled observation.
    snapshots: AtomicU64,
}

/// A histogram handle. Observation is a bucket search plus two cell updates in the calling
/// thread's own slot: no lock, no allocation, no shared cache line. Inside a sampled span it
/// may also write that bucket's exemplar, in the same slot.
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
    cells: Option<CellTable>,
    base: usize,
    // Held by the handle itself rather than behind a shared shape, so that an observation
    // reaches the bounds and the exemplar switch without one more pointer to follow.
    bounds: Arc<[f64]>,
    exemplars: Option<Arc<ExemplarPacing>>,
    native: Option<Arc<NativeCells>>,
}

/// A histogram's native buckets: their layout, and where their cells start in the series.
#[derive(Debug)]
pub(crate) struct NativeCells {
    offset: usize,
    layout: NativeLayout,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("bounds", &self.bounds)
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
    /// The native buckets, for a histogram built with them (see
    /// [`MetricSpec::with_native`](super::MetricSpec::with_native)).
    pub native: Option<NativeBuckets>,
}

impl Histogram {
    /// Cells one series takes in every slot: a count per bucket (with `+Inf`), the sum, and with
    /// exemplars one exemplar record per bucket.
    pub(crate) fn cells_needed(
        bounds: &[f64],
        exemplars: bool,
        native: Option<&NativeLayout>,
    ) -> usize {
        Self::classic_cells(bounds, exemplars) + native.map_or(0, NativeLayout::cells)
    }

    /// The counts, the sum and the exemplar records: the native buckets' cells follow them.
    fn classic_cells(bounds: &[f64], exemplars: bool) -> usize {
        let buckets = bounds.len() + 1;
        buckets
            + 1
            + if exemplars {
                buckets * EXEMPLAR_CELLS
            } else {
                0
            }
    }

    pub(crate) fn new(
        cells: CellTable,
        base: usize,
        bounds: Arc<[f64]>,
        exemplars: bool,
        native: Option<NativeLayout>,
    ) -> Self {
        let native = native.map(|layout| {
            Arc::new(NativeCells {
                offset: Self::classic_cells(&bounds, exemplars),
                layout,
            })
        });
        Self {
            cells: Some(cells),
            base,
            bounds,
            exemplars: exemplars.then(Arc::default),
            native,
        }
    }

    /// A histogram that records nothing.
    pub fn noop() -> Self {
        Self {
            cells: None,
            base: 0,
            bounds: Arc::from([]),
            exemplars: None,
            native: None,
        }
    }

    #[inline(always)]
    fn bucket_of(&self, value: f64) -> usize {
        // `le` semantics: the first bound that is >= value, which is the number of bounds below
        // it since they increase; NaN lands in +Inf. Counting every bound rather than a binary
        // search: the count compiles to independent vector compares, where the binary search is
        // a chain of dependent load, compare and select steps that took most of an observation
        // (26.9 ns against 17.9 ns for the count on a quiet run, see BENCHMARKS.md).
        if value.is_nan() {
            self.bounds.len()
        } else {
            self.bounds
                .iter()
                .map(|&bound| usize::from(bound < value))
                .sum()
        }
    }

    #[inline(always)]
    fn sum_offset(&self) -> usize {
        self.bounds.len() + 1
    }

    /// Records one observation; on a histogram built with exemplars, also links the bucket to
    /// the sampled span the thread is in, if any. A NaN counts in `+Inf` but is kept out of the
    /// sum, which it would otherwise turn into NaN for the life of the process.
    #[inline]
    pub fn observe(&self, value: f64) {
        self.observe_in_span(value, None);
    }

    /// Records a duration in seconds.
    #[inline]
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// Records one observation made inside the span `ids`. Its bucket's exemplar is replaced
    /// as for [`Histogram::observe`] in a sampled span: at the first such observation after
    /// each scrape, and once every 64 otherwise.
    pub fn observe_with_exemplar(&self, value: f64, ids: TraceIds) {
        self.observe_in_span(value, Some(ids));
    }

    /// An observation in the span `ids`, or in whatever span the exemplar source reports.
    #[inline(always)]
    fn observe_in_span(&self, value: f64, ids: Option<TraceIds>) {
        let Some(cells) = &self.cells else { return };
        // The fast path spelled out rather than through `CellTable::with_local`: as a closure
        // called from both paths, the observation was compiled once, out of line, with the
        // view's exclusivity tested at run time; here it is inlined where the view is known to
        // be a private slot's.
        match cells.private(self.base) {
            Some(local) => self.observe_in(&local, value, ids),
            None => self.observe_slow(cells, value, ids),
        }
    }

    /// A thread's first observation, a new chunk, or a thread on a stripe.
    #[cold]
    #[inline(never)]
    fn observe_slow(&self, cells: &CellTable, value: f64, ids: Option<TraceIds>) {
        self.observe_in(&cells.local(self.base), value, ids);
    }

    #[inline(always)]
    fn observe_in(&self, local: &LocalCells<'_>, value: f64, ids: Option<TraceIds>) {
        let bucket = self.record(local, value);
        if let Some(native) = &self.native {
            Self::record_native(local, native, value);
        }
        if let Some(pacing) = &self.exemplars {
            self.record_exemplar(local, pacing, bucket, value, ids);
        }
    }

    /// The classic bucket and the sum: what every observation writes.
    #[inline(always)]
    fn record(&self, local: &LocalCells<'_>, value: f64) -> usize {
        let bucket = self.bucket_of(value);
        local.add_u64(bucket, 1);
        if !value.is_nan() {
            local.add_f64(self.sum_offset(), value);
        }
        bucket
    }

    /// The native bucket, for a histogram built with them. Out of line, as is
    /// [`Histogram::record_exemplar`]: `observe` is inlined at every call site, and with these
    /// inline a plain histogram's observation saved six registers and kept a stack frame for
    /// them; apart, the exemplar path does not pay for the native one's frame either
    /// (`BENCHMARKS.md`).
    #[inline(never)]
    fn record_native(local: &LocalCells<'_>, native: &NativeCells, value: f64) {
        match native.layout.cell_of(value) {
            NativeCell::Cell(cell) => local.add_u64(native.offset + cell, 1),
            NativeCell::Outside => native.layout.record_outside(value),
            NativeCell::None => {}
        }
    }

    /// The bucket's exemplar, when the observation was made in a sampled span (`ids`, or the
    /// exemplar source's answer).
    #[inline(never)]
    fn record_exemplar(
        &self,
        local: &LocalCells<'_>,
        pacing: &ExemplarPacing,
        bucket: usize,
        value: f64,
        ids: Option<TraceIds>,
    ) {
        if let Some(ids) = ids.or_else(current_trace) {
            self.offer_exemplar(local, pacing, bucket, ids, value);
        }
    }

    /// Stores `ids` and `value` as the bucket's exemplar in the calling thread's slot when it is
    /// due (see [`STORE_EVERY`]), under the record's sequence number so that a scrape never
    /// reads half of one exemplar and half of another.
    #[inline(always)]
    fn offer_exemplar(
        &self,
        local: &LocalCells<'_>,
        pacing: &ExemplarPacing,
        bucket: usize,
        ids: TraceIds,
        value: f64,
    ) {
        let record = self.sum_offset() + 1 + bucket * EXEMPLAR_CELLS;
        let cell = |field: usize| local.cell(record + field);
        // Plus one, so that a record never written (all zero) is always due.
        let scrapes = pacing.snapshots.load(Relaxed) + 1;
        let skipped = cell(SKIPPED).load(Relaxed);
        if cell(STORED_AFTER).load(Relaxed) == scrapes && skipped + 1 < STORE_EVERY {
            // On a stripe two threads may race here and skip one store too many or too few:
            // the count only paces the stores, it is never exposed.
            cell(SKIPPED).store(skipped + 1, Relaxed);
            return;
        }
        Self::store_exemplar(local, record, scrapes, ids, value);
    }

    /// Writes the exemplar record that starts at cell `record`.
    // Out of line: most sampled observations are paced out before this, so the clock read and
    // the sequenced writes stay off their path.
    #[inline(never)]
    fn store_exemplar(
        local: &LocalCells<'_>,
        record: usize,
        scrapes: u64,
        ids: TraceIds,
        value: f64,
    ) {
        let cell = |field: usize| local.cell(record + field);
        let seq = cell(SEQ);
        let start = seq.load(Relaxed);
        if local.is_exclusive() {
            seq.store(start + 1, Relaxed);
        } else if start & 1 == 1
            || seq
                .compare_exchange(start, start + 1, Acquire, Relaxed)
                .is_err()
        {
            // Another thread of this stripe is writing it: never wait, skip this one.
            return;
        }
        fence(Release);
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15] = ids.trace_id;
        cell(TRACE_HIGH).store(
            u64::from_ne_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
            Relaxed,
        );
        cell(TRACE_LOW).store(
            u64::from_ne_bytes([t8, t9, t10, t11, t12, t13, t14, t15]),
            Relaxed,
        );
        cell(SPAN).store(u64::from_ne_bytes(ids.span_id), Relaxed);
        cell(VALUE).store(value.to_bits(), Relaxed);
        cell(TIMESTAMP).store(timestamp.to_bits(), Relaxed);
        cell(STORED_AFTER).store(scrapes, Relaxed);
        cell(SKIPPED).store(0, Relaxed);
        seq.store(start + 2, Release);
    }

    /// Reads the histogram as a scrape does, with its counts taken from `totals` (the sums of
    /// every integer cell of its registry) instead of from every thread's copy: the sum and the
    /// exemplars are still read from the copies.
    pub(crate) fn snapshot_in(&self, totals: &CellTotals<'_>) -> HistogramSnapshot {
        let mut snapshot = self.read_copies(false);
        if self.cells.is_some() {
            let mut running = 0u64;
            for (i, cumulative) in snapshot.cumulative.iter_mut().enumerate() {
                running = running.wrapping_add(totals.u64(self.base + i));
                *cumulative = running;
            }
            snapshot.count = running;
            snapshot.sum = totals.cells().read_f64(self.base + self.sum_offset());
            if let Some(native) = &self.native {
                let first = self.base + native.offset;
                snapshot.native = Some(native.layout.snapshot(|cell| totals.u64(first + cell)));
            }
        }
        snapshot
    }

    /// Reads the histogram as a scrape does: each slot's copy of the counts and sum in turn,
    /// and each bucket's latest exemplar over every slot.
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.read_copies(true)
    }

    /// Reads every copy: the exemplars always, the counts and the sum when `counts` is set.
    fn read_copies(&self, counts: bool) -> HistogramSnapshot {
        let bounds = Arc::clone(&self.bounds);
        let buckets = bounds.len() + 1;
        let mut sum = 0.0;
        let mut exemplars = vec![None; buckets];
        let read_counts = counts;
        let mut counts = vec![0u64; buckets];
        let mut native_counts = match &self.native {
            Some(native) if read_counts => vec![0u64; native.layout.cells()],
            _ => Vec::new(),
        };
        match &self.cells {
            Some(cells) if read_counts || self.exemplars.is_some() => {
                let len = Self::cells_needed(
                    &bounds,
                    self.exemplars.is_some(),
                    self.native.as_ref().map(|n| &n.layout),
                );
                let native_offset = self.native.as_ref().map_or(len, |n| n.offset);
                cells.for_each_copy(self.base, len, |copy, _| {
                    if read_counts {
                        for (count, cell) in counts.iter_mut().zip(copy) {
                            *count = count.wrapping_add(cell.load(Relaxed));
                        }
                        sum += f64::from_bits(copy[buckets].load(Relaxed));
                        for (count, cell) in native_counts.iter_mut().zip(&copy[native_offset..]) {
                            *count = count.wrapping_add(cell.load(Relaxed));
                        }
                    }
                    let records = copy[buckets + 1..].chunks_exact(EXEMPLAR_CELLS);
                    for (latest, record) in exemplars.iter_mut().zip(records) {
                        if let Some(found) = read_exemplar(record) {
                            if latest.is_none_or(|l: Exemplar| found.timestamp > l.timestamp) {
                                *latest = Some(found);
                            }
                        }
                    }
                });
            }
            _ => {}
        }
        if let Some(pacing) = &self.exemplars {
            pacing.snapshots.fetch_add(1, Relaxed);
        }
        let mut running = 0u64;
        let cumulative: Vec<u64> = counts
            .iter()
            .map(|&c| {
                running = running.wrapping_add(c);
                running
            })
            .collect();
        let native = match &self.native {
            Some(native) if read_counts => Some(native.layout.snapshot(|cell| native_counts[cell])),
            // Filled in from the totals by the caller.
            _ => None,
        };
        HistogramSnapshot {
            sum,
            count: running,
            cumulative,
            bounds,
            exemplars,
            native,
        }
    }
}

/// One slot's exemplar record, if it holds one that was not being written while it was read
/// (a record caught mid-write is skipped: the slot's next one arrives by the next scrape).
fn read_exemplar(record: &[AtomicU64]) -> Option<Exemplar> {
    let before = record[SEQ].load(Acquire);
    if before == 0 || before & 1 == 1 {
        return None;
    }
    let field = |i: usize| record[i].load(Relaxed);
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&field(TRACE_HIGH).to_ne_bytes());
    trace_id[8..].copy_from_slice(&field(TRACE_LOW).to_ne_bytes());
    let exemplar = Exemplar {
        ids: TraceIds {
            trace_id,
            span_id: field(SPAN).to_ne_bytes(),
        },
        value: f64::from_bits(field(VALUE)),
        timestamp: f64::from_bits(field(TIMESTAMP)),
    };
    fence(Acquire);
    (record[SEQ].load(Relaxed) == before).then_some(exemplar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::shards::ShardedCells;

    fn histogram(bounds: &[f64]) -> Histogram {
        let cells = Arc::new(ShardedCells::new());
        let base = cells
            .allocate(Histogram::cells_needed(bounds, true, None))
            .unwrap();
        Histogram::new(cells.table(), base, Arc::from(bounds), true, None)
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

    fn ids(n: u8) -> TraceIds {
        TraceIds {
            trace_id: [n; 16],
            span_id: [n; 8],
        }
    }

    #[test]
    fn a_thread_replaces_its_exemplar_after_each_scrape_and_every_64_observations() {
        let h = histogram(&[1.0]);
        h.observe_with_exemplar(0.5, ids(1));
        h.observe_with_exemplar(0.5, ids(2));
        assert_eq!(h.snapshot().exemplars[0].map(|e| e.ids), Some(ids(1)));
        // The first sampled observation after a scrape is stored...
        h.observe_with_exemplar(0.5, ids(3));
        assert_eq!(h.snapshot().exemplars[0].map(|e| e.ids), Some(ids(3)));
        h.observe_with_exemplar(0.5, ids(4));
        // ...then the next STORE_EVERY - 1 are skipped, and the one after is stored.
        for _ in 0..STORE_EVERY - 1 {
            h.observe_with_exemplar(0.5, ids(5));
        }
        h.observe_with_exemplar(0.7, ids(6));
        let s = h.snapshot();
        assert_eq!(
            s.exemplars[0].map(|e| (e.ids, e.value)),
            Some((ids(6), 0.7))
        );
        assert_eq!(s.count, STORE_EVERY + 4);
    }

    #[test]
    fn the_latest_exemplar_over_every_thread_wins_and_counts_add_up() {
        let h = histogram(&[1.0]);
        // Three threads alive together, so that each writes its own copy; each records once, in
        // turn, right after a scrape (so that its exemplar is due).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let turns: Vec<_> = (1..=3u8)
            .map(|n| {
                let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
                let (h, done_tx) = (h.clone(), done_tx.clone());
                let thread = std::thread::spawn(move || {
                    go_rx.recv().unwrap();
                    h.observe_with_exemplar(f64::from(n) / 10.0, ids(n));
                    done_tx.send(()).unwrap();
                    // Stay alive until every turn is over.
                    go_rx.recv().ok();
                });
                (go_tx, thread)
            })
            .collect();
        for (go, _) in &turns {
            let _ = h.snapshot();
            go.send(()).unwrap();
            done_rx.recv().unwrap();
            // Timestamps are wall-clock seconds: keep the threads' exemplars apart.
            std::thread::sleep(Duration::from_millis(2));
        }
        let s = h.snapshot();
        for (go, thread) in turns {
            drop(go);
            thread.join().unwrap();
        }
        assert_eq!(s.count, 3);
        assert!((s.sum - 0.6).abs() < 1e-12);
        let latest = s.exemplars[0].unwrap();
        assert_eq!((latest.ids, latest.value), (ids(3), 0.3));
    }

    #[test]
    fn threads_past_the_slot_cap_share_exemplars_without_tearing_them() {
        use crate::metrics::shards::{private_slots, stripes};
        let h = histogram(&[1.0]);
        let threads = private_slots() + 2 * stripes() + 2;
        let all_claimed = Arc::new(std::sync::Barrier::new(threads));
        let workers: Vec<_> = (1..=threads)
            .map(|n| {
                let (h, all_claimed) = (h.clone(), Arc::clone(&all_claimed));
                std::thread::spawn(move || {
                    // Hold a slot or stripe until every thread has one, so that some share.
                    h.observe(0.0);
                    all_claimed.wait();
                    let n = u8::try_from(n).unwrap();
                    for _ in 0..2_000 {
                        // The value names the ids it came with: a torn exemplar would not match.
                        h.observe_with_exemplar(f64::from(n) / 1000.0, ids(n));
                    }
                })
            })
            .collect();
        let mut seen = 0;
        while !workers.iter().all(std::thread::JoinHandle::is_finished) {
            if let Some(e) = h.snapshot().exemplars[0] {
                assert_eq!(f64::from(e.ids.span_id[0]) / 1000.0, e.value, "{e:?}");
                assert_eq!(e.ids, ids(e.ids.span_id[0]), "{e:?}");
                seen += 1;
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count, threads as u64 * 2_001);
        let last = s.exemplars[0].expect("an exemplar was stored");
        assert_eq!(f64::from(last.ids.span_id[0]) / 1000.0, last.value);
        eprintln!("{seen} exemplars read while the threads wrote");
    }

    #[test]
    fn native_buckets_from_many_threads_lose_no_observation() {
        use crate::metrics::{bucket_index, NativeConfig};
        let cells = Arc::new(ShardedCells::new());
        let layout = NativeLayout::new(&NativeConfig::LATENCY);
        let base = cells
            .allocate(Histogram::cells_needed(
                LATENCY_BUCKETS,
                true,
                Some(&layout),
            ))
            .unwrap();
        let h = Histogram::new(
            cells.table(),
            base,
            Arc::from(LATENCY_BUCKETS),
            true,
            Some(layout),
        );
        // More threads than private slots on a small machine, so shared copies are used too.
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        h.observe(f64::from(t * 1_000 + i) * 1e-5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        h.observe(9_000.0); // past the per-thread window
        h.observe(f64::NAN); // in the count, in no native bucket
        let native = h.snapshot().native.expect("native buckets");
        assert_eq!(native.schema, 3);
        assert_eq!(native.zero_count, 1, "only the exact zero");
        assert_eq!(native.bucketed_count(), 12_001);
        let mut expected = std::collections::BTreeMap::new();
        for v in (1..12_000).map(|n| f64::from(n) * 1e-5).chain([9_000.0]) {
            *expected.entry(bucket_index(v, 3)).or_insert(0u64) += 1;
        }
        assert_eq!(native.positive, expected.into_iter().collect::<Vec<_>>());
        assert_eq!(h.snapshot().count, 12_002);
    }
}
