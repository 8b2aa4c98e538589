//! Dense families: every label combination created up front and reached by index arithmetic.

use std::sync::Arc;

use super::family::Metric;

/// A family with every label combination created up front, reached by index.
#[derive(Clone, Debug)]
pub struct Dense<M, const N: usize> {
    pub(super) series: Arc<[M]>,
    pub(super) strides: [usize; N],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::registry::{RegistryError, SeriesValue};
    use crate::metrics::{Counter, MetricSpec, Registry};

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
}
