//! What a metric is: its name, help, unit, type, labels and buckets, and the checks a spec
//! passes before the registry accepts it.

use std::sync::Arc;

use super::histogram::Histogram;
use super::labels::{is_valid_label_name, is_valid_metric_name};
use super::native::{NativeConfig, NativeLayout};
use super::shards::CHUNK_CELLS;

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
    /// Histogram bounds must be finite and strictly increasing, and few enough that one series
    /// (counts, exemplars, native buckets) fits in 512 cells.
    #[error("histogram `{0}` needs finite, strictly increasing bucket bounds, and at most 512 cells per series (about 50 buckets with exemplars and native buckets)")]
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
    pub(crate) native: Option<NativeConfig>,
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
            native: None,
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

    /// Also records the histogram as a native histogram (exponential buckets, see
    /// [`NativeConfig`]), exposed in the protobuf format beside the classic buckets; text and
    /// OpenMetrics scrapers still get the classic buckets alone.
    pub fn with_native(mut self, config: NativeConfig) -> Self {
        self.native = Some(config);
        self
    }

    /// The native bucket layout, for a histogram built with [`MetricSpec::with_native`].
    pub fn native(&self) -> Option<&NativeConfig> {
        self.native.as_ref()
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

    pub(super) fn validate(&self) -> Result<(), RegistryError> {
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
            // One series' cells live in one chunk of every thread's copy.
            let native = self.native.as_ref().map(NativeLayout::new);
            let cells = Histogram::cells_needed(bounds, self.exemplars, native.as_ref());
            if !ok || cells > CHUNK_CELLS {
                return Err(RegistryError::InvalidBuckets(self.name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;

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
}
