//! The registry: metric families, their series, and what runs before a scrape.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::counter::{Counter, FloatCounter};
use super::dense::Dense;
use super::dynamic::Dynamic;
use super::family::{Metric, Series};
use super::gauge::Gauge;
use super::histogram::Histogram;
use super::labels::render_label_pairs;
use super::shards::{CellTotals, ShardedCells};

// The encoder and the process collector reach the spec and the series through the registry.
pub(crate) use super::family::{Family, SeriesValue};
pub(crate) use super::spec::{MetricKind, MetricSpec, RegistryError};

type CollectHook = Box<dyn Fn() + Send + Sync>;

struct Inner {
    enabled: bool,
    cells: Arc<ShardedCells>,
    families: RwLock<Vec<Arc<Family>>>,
    hooks: RwLock<Vec<CollectHook>>,
    folded: Mutex<Option<Dynamic<Counter>>>,
    /// Whether OpenMetrics carries `_created` samples (see [`Registry::set_openmetrics_created`]).
    openmetrics_created: AtomicBool,
}

/// A set of metric families and the storage behind them. Clones share the same registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("enabled", &self.inner.enabled)
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry that records.
    pub fn new() -> Self {
        Self::with_enabled(true)
    }

    /// A registry whose every handle is a no-op and whose exposition is empty: the engine's
    /// `RTX_MONITORING=off`, so that the cost of monitoring can be measured against nothing.
    pub fn disabled() -> Self {
        Self::with_enabled(false)
    }

    fn with_enabled(enabled: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled,
                cells: Arc::new(ShardedCells::new()),
                families: RwLock::new(Vec::new()),
                hooks: RwLock::new(Vec::new()),
                folded: Mutex::new(None),
                openmetrics_created: AtomicBool::new(true),
            }),
        }
    }

    /// Whether the OpenMetrics exposition writes a `_created` sample after each counter and
    /// histogram series (on by default). Prometheus 2.x stores every `_created` sample as a
    /// series of its own when it scrapes OpenMetrics, its default, so with it on a counter
    /// costs two stored series; client_golang leaves them off for that reason. Off, the
    /// creation time still travels in protobuf, where it is a field and costs no series.
    pub fn set_openmetrics_created(&self, on: bool) {
        self.inner.openmetrics_created.store(on, Ordering::Relaxed);
    }

    pub(crate) fn openmetrics_created(&self) -> bool {
        self.inner.openmetrics_created.load(Ordering::Relaxed)
    }

    /// False for [`Registry::disabled`].
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    fn add_family(&self, spec: MetricSpec) -> Result<Arc<Family>, RegistryError> {
        spec.validate()?;
        let mut families = self
            .inner
            .families
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if families.iter().any(|f| f.spec.name == spec.name) {
            return Err(RegistryError::Duplicate(spec.name));
        }
        let family = Arc::new(Family {
            spec,
            series: RwLock::new(Vec::new()),
        });
        families.push(Arc::clone(&family));
        Ok(family)
    }

    fn single<M: Metric>(&self, spec: MetricSpec) -> Result<M, RegistryError> {
        if !self.inner.enabled {
            spec.validate()?;
            return Ok(M::noop_handle());
        }
        let family = self.add_family(spec)?;
        let (handle, value) = M::create(&self.inner.cells, &family.spec)
            .ok_or_else(|| RegistryError::Full(family.spec.name.clone()))?;
        family.push("".into(), value);
        Ok(handle)
    }

    /// Registers an unlabelled counter.
    ///
    /// # Errors
    /// When the spec is invalid or the name is taken.
    pub fn counter(&self, spec: MetricSpec) -> Result<Counter, RegistryError> {
        self.single(spec)
    }

    /// Registers an unlabelled floating-point counter.
    ///
    /// # Errors
    /// When the spec is invalid or the name is taken.
    pub fn float_counter(&self, spec: MetricSpec) -> Result<FloatCounter, RegistryError> {
        self.single(spec)
    }

    /// Registers an unlabelled gauge.
    ///
    /// # Errors
    /// When the spec is invalid or the name is taken.
    pub fn gauge(&self, spec: MetricSpec) -> Result<Gauge, RegistryError> {
        self.single(spec)
    }

    /// Registers a counter whose total is kept elsewhere (the kernel, a runtime) and copied in
    /// with [`Gauge::set`]: exposed as a counter, stored as a settable cell.
    ///
    /// # Errors
    /// When the spec is invalid, is not a counter, or the name is taken.
    pub fn external_counter(&self, spec: MetricSpec) -> Result<Gauge, RegistryError> {
        if spec.kind != MetricKind::Counter {
            return Err(RegistryError::MissingSuffix {
                name: spec.name,
                suffix: "_total",
            });
        }
        self.single(spec)
    }

    /// Registers an unlabelled histogram.
    ///
    /// # Errors
    /// When the spec is invalid or the name is taken.
    pub fn histogram(&self, spec: MetricSpec) -> Result<Histogram, RegistryError> {
        self.single(spec)
    }

    /// Registers an info metric: a single series with value 1 and the given label values.
    ///
    /// # Errors
    /// When the spec is invalid, the name is taken, or the values do not match the labels.
    pub fn info(&self, spec: MetricSpec, values: &[&str]) -> Result<(), RegistryError> {
        if spec.labels.len() != values.len() {
            return Err(RegistryError::LabelArity {
                metric: spec.name,
                expected: spec.labels.len(),
                got: values.len(),
            });
        }
        if !self.inner.enabled {
            return spec.validate();
        }
        let family = self.add_family(spec)?;
        let gauge = Gauge::new();
        gauge.set(1.0);
        family.push(
            render_label_pairs(&family.spec.labels, values),
            SeriesValue::Gauge(gauge),
        );
        Ok(())
    }

    /// Registers a family whose every label takes values from a fixed list, and creates every
    /// combination up front so that each series is visible (at zero) from the first scrape and
    /// is reached by index arithmetic alone.
    ///
    /// # Errors
    /// When the spec is invalid, the name is taken, `values` does not give one list per label,
    /// or a list names a value twice.
    pub fn dense<M: Metric, const N: usize>(
        &self,
        spec: MetricSpec,
        values: [&[&str]; N],
    ) -> Result<Dense<M, N>, RegistryError> {
        if spec.labels.len() != N {
            return Err(RegistryError::LabelArity {
                metric: spec.name,
                expected: spec.labels.len(),
                got: N,
            });
        }
        for (label, list) in spec.labels.iter().zip(values) {
            let mut seen = std::collections::HashSet::with_capacity(list.len());
            if let Some(value) = list.iter().find(|v| !seen.insert(**v)) {
                return Err(RegistryError::DuplicateLabelValue {
                    metric: spec.name.clone(),
                    label: (*label).to_owned(),
                    value: (*value).to_owned(),
                });
            }
        }
        let mut strides = [0usize; N];
        let mut total = 1usize;
        for i in (0..N).rev() {
            strides[i] = total;
            total *= values[i].len();
        }
        if !self.inner.enabled {
            spec.validate()?;
            return Ok(Dense {
                series: vec![M::noop_handle(); total].into(),
                strides,
            });
        }
        let family = self.add_family(spec)?;
        let mut series = Vec::with_capacity(total);
        let mut rendered = Vec::with_capacity(total);
        for flat in 0..total {
            let combo: Vec<&str> = (0..N)
                .map(|i| values[i][(flat / strides[i]) % values[i].len()])
                .collect();
            let (handle, value) = M::create(&self.inner.cells, &family.spec)
                .ok_or_else(|| RegistryError::Full(family.spec.name.clone()))?;
            series.push(handle);
            rendered.push(Series {
                labels: render_label_pairs(&family.spec.labels, &combo),
                value,
                created: std::time::SystemTime::now(),
            });
        }
        family
            .series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(rendered);
        Ok(Dense {
            series: series.into(),
            strides,
        })
    }

    /// Registers a family whose label values arrive at run time. Each label may carry a cap on
    /// distinct values (`None` for values the program itself bounds); a value past its cap folds
    /// into `__other__` and counts in `rtx_metric_label_values_folded_total{metric}`.
    ///
    /// # Errors
    /// When the spec is invalid, the name is taken, or `caps` does not give one cap per label.
    pub fn dynamic<M: Metric>(
        &self,
        spec: MetricSpec,
        caps: &[Option<usize>],
    ) -> Result<Dynamic<M>, RegistryError> {
        if spec.labels.len() != caps.len() {
            return Err(RegistryError::LabelArity {
                metric: spec.name,
                expected: spec.labels.len(),
                got: caps.len(),
            });
        }
        if !self.inner.enabled {
            spec.validate()?;
            return Ok(Dynamic::noop());
        }
        let guarded = caps.iter().any(Option::is_some);
        let folded = if guarded {
            self.folded_counter(&spec.name)?
        } else {
            Counter::noop()
        };
        let family = self.add_family(spec)?;
        Ok(Dynamic::new(
            family,
            Arc::clone(&self.inner.cells),
            caps,
            folded,
        ))
    }

    pub(super) fn folded_counter(&self, metric: &str) -> Result<Counter, RegistryError> {
        let mut folded = self
            .inner
            .folded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if folded.is_none() {
            let spec = MetricSpec::counter(
                "rtx_metric_label_values_folded_total",
                "Label values folded into __other__ because their metric reached its cardinality cap.",
            )
            .with_labels(&["metric"]);
            *folded = Some(self.dynamic(spec, &[None])?);
        }
        Ok(folded
            .as_ref()
            .map_or_else(Counter::noop, |f| f.get(&[metric])))
    }

    /// Runs `hook` before every scrape: for values read from elsewhere (the process, the
    /// runtime, a rolling window).
    pub fn on_collect(&self, hook: impl Fn() + Send + Sync + 'static) {
        if self.inner.enabled {
            self.inner
                .hooks
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Box::new(hook));
        }
    }

    pub(crate) fn run_hooks(&self) {
        for hook in self
            .inner
            .hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            hook();
        }
    }

    pub(crate) fn families(&self) -> Vec<Arc<Family>> {
        self.inner
            .families
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The specs of every registered family, in exposition order.
    pub fn specs(&self) -> Vec<MetricSpec> {
        self.families().iter().map(|f| f.spec.clone()).collect()
    }

    /// Number of series across every family.
    pub fn series_count(&self) -> usize {
        self.families()
            .iter()
            .map(|f| {
                f.series
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// Heap bytes held by counter and histogram cells (the bulk of the registry's memory).
    pub fn cell_bytes(&self) -> usize {
        self.inner.cells.heap_bytes()
    }

    /// Every integer cell summed over every thread's copy, for a scrape.
    pub(crate) fn cell_totals(&self) -> CellTotals<'_> {
        self.inner.cells.totals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricSpec;

    #[test]
    fn a_disabled_registry_hands_out_noops_and_exposes_nothing() {
        let r = Registry::disabled();
        let c = r.counter(MetricSpec::counter("c_total", "x")).unwrap();
        c.inc();
        assert_eq!(c.get(), 0);
        assert_eq!(r.series_count(), 0);
    }
}
