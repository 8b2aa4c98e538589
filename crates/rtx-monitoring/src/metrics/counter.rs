//! Counters: monotonically increasing totals, integer or floating point.

use super::shards::{CellTable, CellTotals};

/// An integer counter handle: cheap to clone, recording takes no lock and allocates nothing.
///
/// ```
/// use rtx_monitoring::metrics::{MetricSpec, Registry};
/// let registry = Registry::new();
/// let orders = registry.counter(MetricSpec::counter("demo_orders_total", "Orders seen.")).unwrap();
/// orders.inc();
/// orders.inc_by(2);
/// assert_eq!(orders.get(), 3);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Counter {
    cells: Option<CellTable>,
    cell: usize,
}

impl Counter {
    pub(crate) fn new(cells: CellTable, cell: usize) -> Self {
        Self {
            cells: Some(cells),
            cell,
        }
    }

    /// A counter that records nothing (for `RTX_MONITORING=off`).
    pub fn noop() -> Self {
        Self {
            cells: None,
            cell: 0,
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `value`.
    #[inline]
    pub fn inc_by(&self, value: u64) {
        if let Some(cells) = &self.cells {
            cells.with_local(self.cell, move |local| local.add_u64(0, value));
        }
    }

    /// The current total over every thread.
    pub fn get(&self) -> u64 {
        self.cells.as_ref().map_or(0, |c| c.read_u64(self.cell))
    }

    /// The total as of `totals`, taken from this counter's registry: what a scrape reads, so
    /// that it sums every thread's copies once for all series rather than once per series.
    pub(crate) fn get_in(&self, totals: &CellTotals<'_>) -> u64 {
        self.cells.as_ref().map_or(0, |_| totals.u64(self.cell))
    }
}

/// A floating-point counter (traded lots, notional): same guarantees as [`Counter`].
#[derive(Clone, Debug)]
#[must_use]
pub struct FloatCounter {
    cells: Option<CellTable>,
    cell: usize,
}

impl FloatCounter {
    pub(crate) fn new(cells: CellTable, cell: usize) -> Self {
        Self {
            cells: Some(cells),
            cell,
        }
    }

    /// A counter that records nothing.
    pub fn noop() -> Self {
        Self {
            cells: None,
            cell: 0,
        }
    }

    /// Adds `value`. Negative, NaN and infinite values are ignored: a counter only goes up, and
    /// one bad input must not poison the total forever.
    #[inline]
    pub fn inc_by(&self, value: f64) {
        if let Some(cells) = &self.cells {
            if value.is_finite() && value > 0.0 {
                cells.with_local(self.cell, move |local| local.add_f64(0, value));
            }
        }
    }

    /// The current total over every thread.
    pub fn get(&self) -> f64 {
        self.cells.as_ref().map_or(0.0, |c| c.read_f64(self.cell))
    }
}
