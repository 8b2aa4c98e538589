//! Dynamic families: label values that arrive at run time, bounded by the cardinality guard.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::counter::Counter;
use super::family::{Family, Metric};
use super::labels::render_label_pairs;
use super::shards::ShardedCells;

/// The value a label folds to once its cap of distinct values is reached.
pub const OTHER_LABEL_VALUE: &str = "__other__";

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

    /// A family over `family`'s series, with one cap per label and `folded` counting the values
    /// folded into `__other__`.
    pub(super) fn new(
        family: Arc<Family>,
        cells: Arc<ShardedCells>,
        caps: &[Option<usize>],
        folded: Counter,
    ) -> Self {
        Self {
            inner: Some(Arc::new(DynamicInner {
                family,
                cells,
                caps: caps.to_vec(),
                seen: caps.iter().map(|_| Mutex::new(Vec::new())).collect(),
                index: RwLock::new(HashMap::new()),
                hasher: RandomState::new(),
                folded,
            })),
        }
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
    use crate::metrics::{MetricSpec, Registry};

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
}
