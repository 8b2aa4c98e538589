//! Native (exponential, sparse) histogram buckets, as Prometheus defines them.
//!
//! A native histogram of schema `s` has the bucket boundaries `base^i` with
//! `base = 2^(2^-s)`: bucket `i` holds the observations `v` with `base^(i-1) < v <= base^i`
//! (negative observations mirror that with `-v`), and the zero bucket those with
//! `|v| <= zero_threshold`. Lowering the schema by one merges each pair of neighbouring buckets
//! into one, which is how a histogram with too many populated buckets is brought under its limit
//! without losing a count.
//!
//! Recording is per thread, like the classic cells: each histogram reserves a dense window of
//! bucket cells at its schema (from the zero threshold to [`WINDOW_TOP`]) next to its classic
//! cells, so an observation is an index computation and one more store in the thread's own slot:
//! no lock, no allocation. The window covers every latency this crate records; a value past it
//! (a wait longer than [`WINDOW_TOP`] seconds, or a negative value) is still counted exactly, in a
//! small map behind a lock that only such values ever take.
//! A scrape sums the cells over the threads, merges the rare out-of-window counts in, and lowers
//! the schema while more buckets are populated than the family's limit allows.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The highest schema Prometheus accepts (finest buckets: factor `2^(1/256)`).
pub const MAX_SCHEMA: i32 = 8;
/// The lowest schema Prometheus accepts (coarsest buckets: factor 65,536).
pub const MIN_SCHEMA: i32 = -4;
/// Values up to this many (seconds, for latencies) land in the per-thread window: 2^12, about 68
/// minutes.
pub const WINDOW_TOP: f64 = 4096.0;

/// How a histogram's native buckets are laid out: what a family chooses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NativeConfig {
    /// The largest growth from one bucket boundary to the next that is acceptable. The schema
    /// is the coarsest whose factor `2^(2^-schema)` is at most this (1.1 gives schema 3, a
    /// factor of 1.0905).
    pub bucket_factor: f64,
    /// Observations with an absolute value at most this go to the zero bucket. It also sets the
    /// bottom of the per-thread window, so it bounds the memory per series and thread.
    pub zero_threshold: f64,
    /// The most populated buckets one scrape exposes; past it the schema is lowered until the
    /// buckets fit (each step halves the resolution).
    pub max_buckets: usize,
}

impl NativeConfig {
    /// For latencies in seconds: factor 1.1 (schema 3), zero bucket up to 2^-24 s (60 ns),
    /// at most 160 buckets: 34 octaves at full resolution from the zero threshold to
    /// [`WINDOW_TOP`], 2.2 KiB per series and recording thread.
    pub const LATENCY: NativeConfig = NativeConfig {
        bucket_factor: 1.1,
        zero_threshold: 1.0 / 16_777_216.0,
        max_buckets: 160,
    };

    /// The schema the bucket factor gives, within what Prometheus accepts.
    pub fn schema(&self) -> i32 {
        schema_for_factor(self.bucket_factor)
    }
}

/// The coarsest schema whose growth factor is at most `factor`, clamped to
/// [`MIN_SCHEMA`]..=[`MAX_SCHEMA`]; a factor at or below 1 (or NaN) gives the finest.
pub fn schema_for_factor(factor: f64) -> i32 {
    if factor.is_nan() || factor <= 1.0 {
        return MAX_SCHEMA;
    }
    let mut schema = MIN_SCHEMA;
    // Finer schemas have smaller factors: take the first one small enough.
    while schema < MAX_SCHEMA && growth_factor(schema) > factor {
        schema += 1;
    }
    schema
}

/// `2^(2^-schema)`: how much each bucket's upper bound exceeds the previous one.
pub fn growth_factor(schema: i32) -> f64 {
    2f64.powf(2f64.powi(-schema))
}

/// The upper bound of bucket `index` at `schema`: `2^(index * 2^-schema)`.
pub fn upper_bound(schema: i32, index: i32) -> f64 {
    if schema >= 0 {
        2f64.powf(f64::from(index) / f64::from(1u32 << schema))
    } else {
        2f64.powf(f64::from(index) * f64::from(1u32 << -schema))
    }
}

/// The index of the bucket holding the positive, finite value `v` at `schema`: the `i` with
/// `2^((i-1) * 2^-schema) < v <= 2^(i * 2^-schema)`.
///
/// Exact at every boundary: the value's binary exponent is read from its bits (a power of two
/// is the top of its bucket), and within an octave the mantissa is compared with the
/// boundaries `2^(k / 2^schema)` computed once per schema, as the Prometheus clients do.
#[inline]
pub fn bucket_index(v: f64, schema: i32) -> i32 {
    let (fraction, exponent) = frexp(v);
    if schema > 0 {
        let bounds = octave_bounds(schema);
        // The first boundary at or above the fraction (bounds[0] is 0.5, the octave's bottom).
        let within = bounds.partition_point(|&b| b < fraction) as i32;
        within + (exponent - 1) * bounds.len() as i32
    } else {
        // A power of two (fraction exactly 0.5) is the top of the bucket below.
        let mut key = exponent;
        if fraction == 0.5 {
            key -= 1;
        }
        let shift = -schema;
        let offset = (1 << shift) - 1;
        (key + offset) >> shift
    }
}

/// `v = fraction * 2^exponent` with `fraction` in `[0.5, 1)`, for positive finite `v`
/// (subnormals included).
#[inline]
fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (fraction, exponent) = frexp(v * 2f64.powi(64));
        return (fraction, exponent - 64);
    }
    let fraction = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (fraction, biased - 1022)
}

/// `2^(k / 2^schema - 1)` for `k` in `0..2^schema`: the boundaries inside one octave,
/// expressed as fractions in `[0.5, 1)`.
fn octave_bounds(schema: i32) -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<Vec<f64>>> = std::sync::OnceLock::new();
    let all = BOUNDS.get_or_init(|| {
        (1..=MAX_SCHEMA)
            .map(|s| {
                let n = 1u32 << s;
                (0..n)
                    .map(|k| 2f64.powf(f64::from(k) / f64::from(n) - 1.0))
                    .collect()
            })
            .collect()
    });
    &all[(schema - 1) as usize]
}

/// The per-thread layout of one histogram's native buckets: the zero bucket's cell, then one
/// cell per bucket of the window, lowest index first.
#[derive(Debug)]
pub(crate) struct NativeLayout {
    schema: i32,
    zero_threshold: f64,
    max_buckets: usize,
    /// The index of the window's first bucket (the one just above the zero threshold).
    lowest: i32,
    /// Buckets in the window.
    width: usize,
    /// Counts outside the window: index (at `schema`) to count, positive and negative.
    outside: Mutex<Outside>,
}

#[derive(Debug, Default)]
struct Outside {
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
}

/// Where an observation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NativeCell {
    /// This cell of the layout (0 is the zero bucket).
    Cell(usize),
    /// Outside the window: counted by [`NativeLayout::record_outside`].
    Outside,
    /// NaN: in the count and the classic `+Inf` bucket, in no native bucket.
    None,
}

/// What a scrape reads from a histogram's native buckets, after resolution reduction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NativeBuckets {
    /// The schema of the buckets below (at most the configured one).
    pub schema: i32,
    /// The zero bucket's upper bound.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Populated positive buckets, `(index, count)`, ascending index.
    pub positive: Vec<(i32, u64)>,
    /// Populated negative buckets, `(index, count)`, ascending index (of `-v`).
    pub negative: Vec<(i32, u64)>,
}

impl NativeBuckets {
    /// Observations in a bucket (NaN excluded).
    pub fn bucketed_count(&self) -> u64 {
        self.zero_count
            + self.positive.iter().map(|(_, c)| c).sum::<u64>()
            + self.negative.iter().map(|(_, c)| c).sum::<u64>()
    }
}

impl NativeLayout {
    /// The layout for `config`. The window runs from just above the zero threshold to the
    /// bucket holding [`WINDOW_TOP`].
    pub(crate) fn new(config: &NativeConfig) -> Self {
        let schema = config.schema();
        let zero_threshold = if config.zero_threshold.is_finite() && config.zero_threshold > 0.0 {
            config.zero_threshold.min(WINDOW_TOP / 2.0)
        } else {
            // Prometheus clients' default: the smallest normal power of two they use.
            2f64.powi(-128)
        };
        // The zero threshold's own bucket holds values just above it too.
        let lowest = bucket_index(zero_threshold, schema);
        let highest = bucket_index(WINDOW_TOP, schema);
        Self {
            schema,
            zero_threshold,
            max_buckets: config.max_buckets.max(1),
            lowest,
            width: (highest - lowest + 1) as usize,
            outside: Mutex::new(Outside::default()),
        }
    }

    /// Cells this layout needs per thread.
    pub(crate) fn cells(&self) -> usize {
        self.width + 1
    }

    /// The cell an observation goes to.
    #[inline]
    pub(crate) fn cell_of(&self, v: f64) -> NativeCell {
        if v.is_nan() {
            return NativeCell::None;
        }
        if v.abs() <= self.zero_threshold {
            return NativeCell::Cell(0);
        }
        if !(0.0..=WINDOW_TOP).contains(&v) {
            return NativeCell::Outside;
        }
        let offset = bucket_index(v, self.schema) - self.lowest;
        // The zero threshold's bucket straddles it, so offset 0 is a real bucket above it.
        NativeCell::Cell(offset as usize + 1)
    }

    /// Counts an observation outside the window: the rare path, and the only one with a lock.
    #[cold]
    pub(crate) fn record_outside(&self, v: f64) {
        let mut outside = self.outside.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, magnitude) = if v < 0.0 {
            (&mut outside.negative, -v)
        } else {
            (&mut outside.positive, v)
        };
        // Infinity has no bucket of its own: it counts in the highest finite one.
        let magnitude = magnitude.min(f64::MAX);
        *map.entry(bucket_index(magnitude, self.schema)).or_insert(0) += 1;
    }

    /// The buckets as a scrape exposes them: `read(cell)` is a cell's sum over every thread.
    pub(crate) fn snapshot(&self, read: impl Fn(usize) -> u64) -> NativeBuckets {
        let mut positive: Vec<(i32, u64)> = (0..self.width)
            .filter_map(|offset| {
                let count = read(offset + 1);
                (count > 0).then_some((self.lowest + offset as i32, count))
            })
            .collect();
        let negative;
        {
            let outside = self.outside.lock().unwrap_or_else(PoisonError::into_inner);
            if !outside.positive.is_empty() {
                // Out-of-window indices are all above the window's: appending keeps the order.
                positive.extend(outside.positive.iter().map(|(&i, &c)| (i, c)));
            }
            negative = outside.negative.iter().map(|(&i, &c)| (i, c)).collect();
        }
        let mut buckets = NativeBuckets {
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: read(0),
            positive,
            negative,
        };
        reduce_resolution(&mut buckets, self.max_buckets);
        buckets
    }
}

/// Lowers the schema, one step at a time, until at most `max_buckets` buckets are populated
/// (or the schema is already the lowest). Each step merges bucket `i` into `ceil(i / 2)`:
/// the bucket `(b^(2j-2), b^(2j)]` of the coarser schema is exactly the union of the finer
/// buckets `2j-1` and `2j`, so no observation changes bucket boundaries it falls between.
pub fn reduce_resolution(buckets: &mut NativeBuckets, max_buckets: usize) {
    while buckets.positive.len() + buckets.negative.len() > max_buckets
        && buckets.schema > MIN_SCHEMA
    {
        merge_pairs(&mut buckets.positive);
        merge_pairs(&mut buckets.negative);
        buckets.schema -= 1;
    }
}

fn merge_pairs(buckets: &mut Vec<(i32, u64)>) {
    let mut merged: Vec<(i32, u64)> = Vec::with_capacity(buckets.len());
    for &(index, count) in buckets.iter() {
        // ceil(i / 2), for negative indices too (an arithmetic shift floors).
        let coarser = (index + 1) >> 1;
        match merged.last_mut() {
            Some((last, total)) if *last == coarser => *total += count,
            _ => merged.push((coarser, count)),
        }
    }
    *buckets = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The specification's definition, evaluated in exact rational arithmetic where it can be:
    /// `v` is in bucket `i` when `base^(i-1) < v <= base^i`.
    fn is_in_bucket(v: f64, schema: i32, index: i32) -> bool {
        let below = upper_bound(schema, index - 1);
        let top = upper_bound(schema, index);
        below < v && v <= top
    }

    #[test]
    fn the_factor_picks_the_coarsest_schema_fine_enough() {
        assert_eq!(schema_for_factor(1.1), 3);
        assert_eq!(schema_for_factor(2.0), 0);
        assert_eq!(schema_for_factor(1.5), 1);
        assert_eq!(schema_for_factor(4.0), -1);
        assert_eq!(schema_for_factor(1e9), -4);
        assert_eq!(schema_for_factor(1.0), 8);
        assert_eq!(schema_for_factor(1.001), 8);
        assert_eq!(NativeConfig::LATENCY.schema(), 3);
        assert!(growth_factor(3) <= 1.1 && growth_factor(2) > 1.1);
    }

    #[test]
    fn powers_of_two_are_the_top_of_their_bucket_at_every_schema() {
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            for exponent in -40..40 {
                let v = 2f64.powi(exponent);
                let index = bucket_index(v, schema);
                // 2^e is the upper bound of bucket e * 2^schema (for schema >= 0) and of
                // bucket e / 2^-schema when that divides (for negative schemas).
                let is_top = if schema >= 0 {
                    assert_eq!(index, exponent << schema, "2^{exponent} at schema {schema}");
                    true
                } else if exponent % (1 << -schema) == 0 {
                    assert_eq!(
                        index,
                        exponent >> -schema,
                        "2^{exponent} at schema {schema}"
                    );
                    true
                } else {
                    false
                };
                assert!(
                    is_in_bucket(v, schema, index),
                    "2^{exponent} at schema {schema}"
                );
                if is_top {
                    // The next double up is in the next bucket.
                    let above = f64::from_bits(v.to_bits() + 1);
                    assert_eq!(bucket_index(above, schema), index + 1);
                }
            }
        }
    }

    #[test]
    fn the_known_boundaries_of_schema_3_land_where_the_specification_says() {
        // Bucket 1 of schema 3 is (1, 2^(1/8)].
        let top = 2f64.powf(0.125);
        assert_eq!(bucket_index(1.0, 3), 0);
        assert_eq!(bucket_index(1.000_000_1, 3), 1);
        assert_eq!(bucket_index(top, 3), 1);
        assert_eq!(bucket_index(f64::from_bits(top.to_bits() + 1), 3), 2);
        // 100 ms: 2^-3.32 -> ceil(-3.32 * 8) = -26.
        assert_eq!(bucket_index(0.1, 3), -26);
        assert_eq!(bucket_index(f64::MIN_POSITIVE / 4.0, 0), -1023 - 1);
    }

    proptest! {
        #[test]
        fn every_positive_value_is_in_the_bucket_the_formula_gives(
            v in prop_oneof![1e-9f64..1e4, 1e-300f64..1e300, any::<u64>().prop_map(|b| f64::from_bits(b >> 2))],
            schema in MIN_SCHEMA..=MAX_SCHEMA,
        ) {
            prop_assume!(v > 0.0 && v.is_finite());
            let index = bucket_index(v, schema);
            // Compared in the log domain with a margin of one ulp-scale: the exact check
            // near boundaries is the test above.
            let log = v.log2() * 2f64.powi(schema);
            prop_assert!((f64::from(index) - log.ceil()).abs() <= 1.0, "{v} -> {index}, ceil(log) {}", log.ceil());
            if (log - log.round()).abs() > 1e-6 {
                prop_assert_eq!(index, log.ceil() as i32, "{} at schema {}", v, schema);
            }
        }

        #[test]
        fn lowering_the_schema_keeps_every_count_and_the_bucket_of_every_value(
            values in prop::collection::vec(1e-6f64..1e3, 1..400),
            limit in 1usize..40,
        ) {
            let schema = 3;
            let mut counts = BTreeMap::new();
            for &v in &values {
                *counts.entry(bucket_index(v, schema)).or_insert(0u64) += 1;
            }
            let mut buckets = NativeBuckets {
                schema,
                zero_threshold: 0.0,
                zero_count: 0,
                positive: counts.into_iter().collect(),
                negative: Vec::new(),
            };
            reduce_resolution(&mut buckets, limit);
            prop_assert!(buckets.positive.len() <= limit || buckets.schema == MIN_SCHEMA);
            prop_assert_eq!(buckets.bucketed_count(), values.len() as u64);
            // Each value is counted in the bucket its own index gives at the reduced schema.
            let mut expected = BTreeMap::new();
            for &v in &values {
                *expected.entry(bucket_index(v, buckets.schema)).or_insert(0u64) += 1;
            }
            prop_assert_eq!(buckets.positive, expected.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_latency_layout_takes_small_and_huge_values_without_losing_one() {
        let layout = NativeLayout::new(&NativeConfig::LATENCY);
        assert_eq!(layout.schema, 3);
        assert!(layout.cells() <= 300, "{} cells", layout.cells());
        let mut cells = vec![0u64; layout.cells()];
        let values = [
            0.0,
            1e-9,
            5e-8,
            1e-7,
            0.000_1,
            0.042,
            0.1,
            1.0,
            4096.0,
            5000.0,
            f64::INFINITY,
            -1.0,
            f64::NAN,
        ];
        for v in values {
            match layout.cell_of(v) {
                NativeCell::Cell(c) => cells[c] += 1,
                NativeCell::Outside => layout.record_outside(v),
                NativeCell::None => {}
            }
        }
        let snapshot = layout.snapshot(|c| cells[c]);
        // Everything but the NaN is in a bucket.
        assert_eq!(snapshot.bucketed_count(), values.len() as u64 - 1);
        assert_eq!(snapshot.zero_count, 3, "0, 1 ns and 50 ns are within 60 ns");
        assert_eq!(snapshot.negative, vec![(0, 1)]);
        for (index, _) in &snapshot.positive {
            assert!(*index >= layout.lowest);
        }
        // 100 µs and 42 ms are where the formula puts them.
        assert!(snapshot.positive.contains(&(bucket_index(0.000_1, 3), 1)));
        assert!(snapshot.positive.contains(&(bucket_index(0.042, 3), 1)));
        assert!(snapshot.positive.contains(&(bucket_index(5000.0, 3), 1)));
    }
}
