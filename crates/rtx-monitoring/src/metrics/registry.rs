//! The registry: metric families, their series, and what runs before a scrape.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::counter::{Counter, FloatCounter};
use super::gauge::Gauge;
use super::histogram::Histogram;
use super::labels::{is_valid_label_name, is_valid_metric_name, render_label_pairs};
use super::shards::ShardedCells;

/// The value a label folds to once its cap of distinct values is reached.
pub const OTHER_LABEL_VALUE: &str = "__other__";

/// The metric type a family is exposed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic total; the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets, sum and count.
    Histogram,
    /// Constant 1 with informative labels; the name ends in `_info`.
    Info,
}

/// Why a metric could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The metric name breaks the Prometheus grammar.
    #[error("metric name `{0}` is invalid: use [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidName(String),
    /// A label name breaks the grammar or is reserved.
    #[error("label name `{label}` of metric `{metric}` is invalid: use [a-zA-Z_][a-zA-Z0-9_]* not starting with __")]
    InvalidLabel {
        /// The metric.
        metric: String,
        /// The offending label.
        label: String,
    },
    /// A counter name lacks `_total`, or an info name lacks `_info`.
    #[error("metric `{name}` must end in `{suffix}`")]
    MissingSuffix {
        /// The metric.
        name: String,
        /// The suffix its type requires.
        suffix: &'static str,
    },
    /// The unit is not a suffix of the name, as OpenMetrics requires.
    #[error("metric `{name}` declares unit `{unit}` but its name does not end in `_{unit}`")]
    UnitNotInName {
        /// The metric.
        name: String,
        /// The unit.
        unit: String,
    },
    /// The name is taken.
    #[error("metric `{0}` is already registered")]
    Duplicate(String),
    /// Histogram bounds must be finite and strictly increasing.
    #[error("histogram `{0}` needs finite, strictly increasing bucket bounds")]
    InvalidBuckets(String),
    /// The label values given do not match the declared label names.
    #[error("metric `{metric}` has {expected} labels, got {got} value lists")]
    LabelArity {
        /// The metric.
        metric: String,
        /// Declared labels.
        expected: usize,
        /// Value lists given.
        got: usize,
    },
    /// The registry has no room for more series.
    #[error("the registry is full: no room for more series of `{0}`")]
    Full(String),
    /// A fixed value list names a value twice, which would make two series with one label set.
    #[error("metric `{metric}` lists `{value}` twice among the values of label `{label}`: give each value once")]
    DuplicateLabelValue {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
        /// The repeated value.
        value: String,
    },
}

/// What a metric is called and what it means: the one definition its docs, exposition and
/// checks come from.
#[derive(Clone, Debug)]
pub struct MetricSpec {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) unit: Option<&'static str>,
    pub(crate) kind: MetricKind,
    pub(crate) labels: Vec<&'static str>,
    pub(crate) buckets: Option<Arc<[f64]>>,
    pub(crate) exemplars: bool,
}

impl MetricSpec {
    fn new(kind: MetricKind, name: &str, help: &str) -> Self {
        Self {
            name: name.to_owned(),
            help: help.to_owned(),
            unit: None,
            kind,
            labels: Vec::new(),
            buckets: None,
            exemplars: false,
        }
    }

    /// A counter; the name must end in `_total`.
    pub fn counter(name: &str, help: &str) -> Self {
        Self::new(MetricKind::Counter, name, help)
    }

    /// A gauge.
    pub fn gauge(name: &str, help: &str) -> Self {
        Self::new(MetricKind::Gauge, name, help)
    }

    /// A histogram with the given upper bounds (without `+Inf`).
    pub fn histogram(name: &str, help: &str, buckets: &[f64]) -> Self {
        Self {
            buckets: Some(Arc::from(buckets)),
            ..Self::new(MetricKind::Histogram, name, help)
        }
    }

    /// An info metric (value 1, informative labels); the name must end in `_info`.
    pub fn info(name: &str, help: &str) -> Self {
        Self::new(MetricKind::Info, name, help)
    }

    /// Declares the base unit (`seconds`, `bytes`, …); the name must end in it.
    pub fn with_unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Declares the label names.
    pub fn with_labels(mut self, labels: &[&'static str]) -> Self {
        self.labels = labels.to_vec();
        self
    }

    /// Links histogram buckets to the sampled trace of the observation (OpenMetrics only).
    pub fn with_exemplars(mut self) -> Self {
        self.exemplars = true;
        self
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// The metric type.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The declared unit.
    pub fn unit(&self) -> Option<&'static str> {
        self.unit
    }

    /// The declared label names.
    pub fn labels(&self) -> &[&'static str] {
        &self.labels
    }

    fn validate(&self) -> Result<(), RegistryError> {
        if !is_valid_metric_name(&self.name) {
            return Err(RegistryError::InvalidName(self.name.clone()));
        }
        if let Some(label) = self
            .labels
            .iter()
            .find(|l| !is_valid_label_name(l) || **l == "le")
        {
            return Err(RegistryError::InvalidLabel {
                metric: self.name.clone(),
                label: (*label).to_owned(),
            });
        }
        let suffix = match self.kind {
            MetricKind::Counter => Some("_total"),
            MetricKind::Info => Some("_info"),
            _ => None,
        };
        if let Some(suffix) = suffix.filter(|s| !self.name.ends_with(s)) {
            return Err(RegistryError::MissingSuffix {
                name: self.name.clone(),
                suffix,
            });
        }
        if let Some(unit) = self.unit {
            let base = self.name.strip_suffix("_total").unwrap_or(&self.name);
            if !base.ends_with(&format!("_{unit}")) {
                return Err(RegistryError::UnitNotInName {
                    name: self.name.clone(),
                    unit: unit.to_owned(),
                });
            }
        }
        if let Some(bounds) = &self.buckets {
            let ok = bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]);
            if !ok {
                return Err(RegistryError::InvalidBuckets(self.name.clone()));
            }
        }
        Ok(())
    }
}

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
}

#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) spec: MetricSpec,
    pub(crate) series: RwLock<Vec<Series>>,
}

impl Family {
    fn push(&self, labels: Box<str>, value: SeriesValue) {
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Series { labels, value });
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
        let c = Counter::new(Arc::clone(cells), cells.allocate(1)?);
        Some((c.clone(), SeriesValue::Counter(c)))
    }
}

impl Metric for FloatCounter {
    fn noop_handle() -> Self {
        FloatCounter::noop()
    }
    fn create(cells: &Arc<ShardedCells>, _: &MetricSpec) -> Option<(Self, SeriesValue)> {
        let c = FloatCounter::new(Arc::clone(cells), cells.allocate(1)?);
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
        let base = cells.allocate(Histogram::cells_needed(&bounds))?;
        let h = Histogram::new(Arc::clone(cells), base, bounds, spec.exemplars);
        Some((h.clone(), SeriesValue::Histogram(h)))
    }
}

type CollectHook = Box<dyn Fn() + Send + Sync>;

struct Inner {
    enabled: bool,
    cells: Arc<ShardedCells>,
    families: RwLock<Vec<Arc<Family>>>,
    hooks: RwLock<Vec<CollectHook>>,
    folded: Mutex<Option<Dynamic<Counter>>>,
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
            }),
        }
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
            return Ok(Dynamic { inner: None });
        }
        let guarded = caps.iter().any(Option::is_some);
        let folded = if guarded {
            self.folded_counter(&spec.name)?
        } else {
            Counter::noop()
        };
        let family = self.add_family(spec)?;
        Ok(Dynamic {
            inner: Some(Arc::new(DynamicInner {
                family,
                cells: Arc::clone(&self.inner.cells),
                caps: caps.to_vec(),
                seen: caps.iter().map(|_| Mutex::new(Vec::new())).collect(),
                index: RwLock::new(HashMap::new()),
                hasher: RandomState::new(),
                folded,
            })),
        })
    }

    fn folded_counter(&self, metric: &str) -> Result<Counter, RegistryError> {
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
}

/// A family with every label combination created up front, reached by index.
#[derive(Clone, Debug)]
pub struct Dense<M, const N: usize> {
    series: Arc<[M]>,
    strides: [usize; N],
}

impl<M: Metric, const N: usize> Dense<M, N> {
    /// The series at the given position of each label's value list.
    ///
    /// # Panics
    /// When an index is past its label's value list: label ids come from the same lists the
    /// family was built from, so this is a programming error.
    #[inline]
    pub fn get(&self, index: [usize; N]) -> &M {
        let flat: usize = index
            .iter()
            .zip(&self.strides)
            .map(|(i, stride)| i * stride)
            .sum();
        &self.series[flat]
    }
}

/// Label values (after folding) and the handle of their series.
type LabelledSeries<M> = (Box<[Box<str>]>, M);

struct DynamicInner<M> {
    family: Arc<Family>,
    cells: Arc<ShardedCells>,
    caps: Vec<Option<usize>>,
    seen: Vec<Mutex<Vec<Box<str>>>>,
    /// Series by the hash of their label values; a bucket holds every series with that hash and
    /// lookups compare the values, so two label sets can never merge into one series.
    index: RwLock<HashMap<u64, Vec<LabelledSeries<M>>>>,
    hasher: RandomState,
    folded: Counter,
}

/// A family whose label values arrive at run time, bounded by the cardinality guard. Resolve a
/// handle once where you can; [`Dynamic::get`] hashes the values and takes a read lock.
#[derive(Clone)]
pub struct Dynamic<M> {
    inner: Option<Arc<DynamicInner<M>>>,
}

impl<M> std::fmt::Debug for Dynamic<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dynamic").finish_non_exhaustive()
    }
}

impl<M: Metric> Dynamic<M> {
    /// A family whose every handle records nothing.
    pub fn noop() -> Self {
        Self { inner: None }
    }

    fn hash(inner: &DynamicInner<M>, values: &[&str]) -> u64 {
        let mut h = inner.hasher.build_hasher();
        for v in values {
            v.hash(&mut h);
        }
        h.finish()
    }

    fn lookup(inner: &DynamicInner<M>, hash: u64, values: &[&str]) -> Option<M> {
        let index = inner.index.read().unwrap_or_else(PoisonError::into_inner);
        index
            .get(&hash)?
            .iter()
            .find(|(k, _)| k.iter().map(|s| &**s).eq(values.iter().copied()))
            .map(|(_, m)| m.clone())
    }

    /// The series for `values` (one per declared label), created on first use. Values past
    /// their label's cap fold into `__other__`; a wrong number of values folds every label.
    pub fn get(&self, values: &[&str]) -> M {
        let Some(inner) = &self.inner else {
            return M::noop_handle();
        };
        let hash = Self::hash(inner, values);
        if values.len() == inner.caps.len() {
            if let Some(hit) = Self::lookup(inner, hash, values) {
                return hit;
            }
        }
        self.create(inner, values)
    }

    #[cold]
    fn create(&self, inner: &DynamicInner<M>, values: &[&str]) -> M {
        let mut folded_any = values.len() != inner.caps.len();
        let guarded: Vec<&str> = (0..inner.caps.len())
            .map(|i| {
                let Some(&value) = values.get(i) else {
                    return OTHER_LABEL_VALUE;
                };
                let Some(cap) = inner.caps[i] else {
                    return value;
                };
                let mut seen = inner.seen[i].lock().unwrap_or_else(PoisonError::into_inner);
                if seen.iter().any(|s| &**s == value) {
                    value
                } else if seen.len() < cap {
                    seen.push(value.into());
                    value
                } else {
                    folded_any = true;
                    OTHER_LABEL_VALUE
                }
            })
            .collect();
        if folded_any {
            inner.folded.inc();
        }
        let hash = Self::hash(inner, &guarded);
        let mut index = inner.index.write().unwrap_or_else(PoisonError::into_inner);
        let bucket = index.entry(hash).or_default();
        if let Some((_, m)) = bucket
            .iter()
            .find(|(k, _)| k.iter().map(|s| &**s).eq(guarded.iter().copied()))
        {
            return m.clone();
        }
        let Some((handle, value)) = M::create(&inner.cells, &inner.family.spec) else {
            return M::noop_handle();
        };
        inner.family.push(
            render_label_pairs(&inner.family.spec.labels, &guarded),
            value,
        );
        bucket.push((
            guarded.iter().map(|s| Box::from(*s)).collect(),
            handle.clone(),
        ));
        handle
    }

    /// Number of series created so far.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| {
            i.family
                .series
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
        })
    }

    /// True when no series exists yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked_before_registration() {
        let r = Registry::new();
        assert!(matches!(
            r.counter(MetricSpec::counter("orders", "x")),
            Err(RegistryError::MissingSuffix { .. })
        ));
        assert!(matches!(
            r.gauge(MetricSpec::gauge("1bad", "x")),
            Err(RegistryError::InvalidName(_))
        ));
        assert!(matches!(
            r.gauge(MetricSpec::gauge("queue_depth", "x").with_unit("seconds")),
            Err(RegistryError::UnitNotInName { .. })
        ));
        assert!(matches!(
            r.histogram(MetricSpec::histogram("h_seconds", "x", &[1.0, 0.5])),
            Err(RegistryError::InvalidBuckets(_))
        ));
        let _gauge = r.gauge(MetricSpec::gauge("g", "x")).unwrap();
        assert_eq!(
            r.gauge(MetricSpec::gauge("g", "x")).unwrap_err(),
            RegistryError::Duplicate("g".into())
        );
    }

    #[test]
    fn a_dense_value_list_naming_a_value_twice_is_refused() {
        let r = Registry::new();
        let err = r
            .dense::<Counter, 2>(
                MetricSpec::counter("lp_quotes_total", "x").with_labels(&["lp", "symbol"]),
                [&["OANDA", "LMAX", "OANDA"], &["EURUSD"]],
            )
            .unwrap_err();
        assert_eq!(
            err,
            RegistryError::DuplicateLabelValue {
                metric: "lp_quotes_total".into(),
                label: "lp".into(),
                value: "OANDA".into(),
            }
        );
        assert_eq!(r.series_count(), 0, "nothing is registered");
    }

    #[test]
    fn dense_index_reaches_the_series_with_those_labels() {
        let r = Registry::new();
        let fam: Dense<Counter, 2> = r
            .dense(
                MetricSpec::counter("t_total", "x").with_labels(&["a", "b"]),
                [&["x", "y"], &["1", "2", "3"]],
            )
            .unwrap();
        fam.get([1, 2]).inc_by(5);
        let families = r.families();
        let series = families[0].series.read().unwrap();
        assert_eq!(series.len(), 6);
        let hit = series
            .iter()
            .find(|s| &*s.labels == "a=\"y\",b=\"3\"")
            .unwrap();
        assert!(matches!(&hit.value, SeriesValue::Counter(c) if c.get() == 5));
    }

    #[test]
    fn the_guard_folds_values_past_the_cap_and_counts_them() {
        let r = Registry::new();
        let fam: Dynamic<Counter> = r
            .dynamic(
                MetricSpec::counter("p_total", "x").with_labels(&["path", "method"]),
                &[Some(2), None],
            )
            .unwrap();
        for path in ["/a", "/b", "/c", "/d", "/a"] {
            fam.get(&[path, "GET"]).inc();
        }
        assert_eq!(fam.len(), 3);
        assert_eq!(fam.get(&[OTHER_LABEL_VALUE, "GET"]).get(), 2);
        assert_eq!(fam.get(&["/a", "GET"]).get(), 2);
        let folded = r.folded_counter("p_total").unwrap();
        assert_eq!(folded.get(), 2);
    }

    #[test]
    fn a_disabled_registry_hands_out_noops_and_exposes_nothing() {
        let r = Registry::disabled();
        let c = r.counter(MetricSpec::counter("c_total", "x")).unwrap();
        c.inc();
        assert_eq!(c.get(), 0);
        assert_eq!(r.series_count(), 0);
    }
}
