//! The Prometheus protobuf exposition: `io.prometheus.client.MetricFamily` messages, each
//! preceded by its varint length (`encoding=delimited`), the format Prometheus asks for first
//! when native histograms are enabled.
//!
//! The messages are those of `metrics.proto` in prometheus/client_model, written here as prost
//! derives so that no build step (protoc, build.rs) is needed; only the fields this crate fills
//! are declared, with their numbers from the .proto, and a decoder skips the rest as protobuf
//! requires. The field called `created_timestamp` here is `start_timestamp` in the newest .proto:
//! a rename, same number and type, so the bytes are the same.

use std::sync::PoisonError;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::histogram::{Exemplar as BucketExemplar, HistogramSnapshot};
use super::native::NativeBuckets;
use super::registry::{Family, MetricKind, SeriesValue};
use super::shards::CellTotals;

/// `io.prometheus.client.MetricFamily`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct MetricFamily {
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    #[prost(string, tag = "2")]
    pub(crate) help: String,
    #[prost(enumeration = "MetricType", tag = "3")]
    pub(crate) r#type: i32,
    #[prost(message, repeated, tag = "4")]
    pub(crate) metric: Vec<Metric>,
    /// Newer than Prometheus 2.42, which skips it as an unknown field.
    #[prost(string, tag = "5")]
    pub(crate) unit: String,
}

/// `io.prometheus.client.MetricType`, the values this crate exposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 4,
}

/// `io.prometheus.client.Metric`: one series.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub(crate) label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub(crate) gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    pub(crate) counter: Option<Counter>,
    #[prost(message, optional, tag = "7")]
    pub(crate) histogram: Option<Histogram>,
}

/// `io.prometheus.client.LabelPair`.
#[derive(Clone, PartialEq, Eq, Message)]
pub(crate) struct LabelPair {
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    #[prost(string, tag = "2")]
    pub(crate) value: String,
}

/// `io.prometheus.client.Gauge`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Gauge {
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
}

/// `io.prometheus.client.Counter`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Counter {
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
    #[prost(message, optional, tag = "3")]
    pub(crate) created_timestamp: Option<Timestamp>,
}

/// `io.prometheus.client.Histogram`: classic buckets and, when the histogram has them, native
/// ones in the same message (Prometheus keeps the native part when it ingests native
/// histograms, the classic part otherwise).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Histogram {
    #[prost(uint64, tag = "1")]
    pub(crate) sample_count: u64,
    #[prost(double, tag = "2")]
    pub(crate) sample_sum: f64,
    #[prost(message, repeated, tag = "3")]
    pub(crate) bucket: Vec<Bucket>,
    #[prost(sint32, tag = "5")]
    pub(crate) schema: i32,
    #[prost(double, tag = "6")]
    pub(crate) zero_threshold: f64,
    #[prost(uint64, tag = "7")]
    pub(crate) zero_count: u64,
    #[prost(message, repeated, tag = "9")]
    pub(crate) negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "10")]
    pub(crate) negative_delta: Vec<i64>,
    #[prost(message, repeated, tag = "12")]
    pub(crate) positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    pub(crate) positive_delta: Vec<i64>,
    #[prost(message, optional, tag = "15")]
    pub(crate) created_timestamp: Option<Timestamp>,
    /// Native histograms only: their exemplars, each with a timestamp.
    #[prost(message, repeated, tag = "16")]
    pub(crate) exemplars: Vec<Exemplar>,
}

/// `io.prometheus.client.Bucket`: one classic bucket, cumulative.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Bucket {
    #[prost(uint64, tag = "1")]
    pub(crate) cumulative_count: u64,
    #[prost(double, tag = "2")]
    pub(crate) upper_bound: f64,
    #[prost(message, optional, tag = "3")]
    pub(crate) exemplar: Option<Exemplar>,
}

/// `io.prometheus.client.BucketSpan`: `length` consecutive native buckets, `offset` buckets
/// after the end of the previous span (or at index `offset`, for the first).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub(crate) struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub(crate) offset: i32,
    #[prost(uint32, tag = "2")]
    pub(crate) length: u32,
}

/// `io.prometheus.client.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub(crate) label: Vec<LabelPair>,
    #[prost(double, tag = "2")]
    pub(crate) value: f64,
    #[prost(message, optional, tag = "3")]
    pub(crate) timestamp: Option<Timestamp>,
}

/// `google.protobuf.Timestamp`: declared here rather than taken from prost-types, a crate of
/// every well-known type for the sake of this one.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub(crate) struct Timestamp {
    #[prost(int64, tag = "1")]
    pub(crate) seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

impl Timestamp {
    /// A moment of the wall clock; one before the epoch (a clock set wrong) reads as the epoch.
    pub(crate) fn from_system_time(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            // Below 1e9 by construction.
            nanos: since.subsec_nanos() as i32,
        }
    }

    /// From seconds since the Unix epoch; nanoseconds are always in `0..1e9`, as the type
    /// requires, also before the epoch.
    pub(crate) fn from_unix_seconds(seconds: f64) -> Self {
        let whole = seconds.floor();
        let nanos = ((seconds - whole) * 1e9).round().min(999_999_999.0);
        Self {
            seconds: whole as i64,
            nanos: nanos as i32,
        }
    }
}

/// Turns `(index, count)` buckets in ascending index order into the spans and deltas of the
/// protobuf format: each delta is a bucket's count minus the previous bucket's (the first is
/// against zero). A gap of one or two empty buckets is filled with zero counts inside the
/// current span, as client_golang does: two zero deltas cost less than a new span (offset and
/// length). Buckets with a zero count are treated as absent.
pub(crate) fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<BucketSpan>, Vec<i64>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let mut previous_count = 0i64;
    let mut next_index = 0i32;
    let mut push = |spans: &mut Vec<BucketSpan>, deltas: &mut Vec<i64>, count: i64| {
        if let Some(span) = spans.last_mut() {
            span.length += 1;
        }
        deltas.push(count - previous_count);
        previous_count = count;
    };
    for &(index, count) in buckets.iter().filter(|(_, count)| *count > 0) {
        // Counts past i64::MAX cannot happen before the process would have run for centuries.
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let gap = index - next_index;
        if spans.is_empty() || gap > 2 {
            spans.push(BucketSpan {
                offset: gap,
                length: 0,
            });
        } else {
            for _ in 0..gap {
                push(&mut spans, &mut deltas, 0);
            }
        }
        push(&mut spans, &mut deltas, count);
        next_index = index + 1;
    }
    (spans, deltas)
}

/// Adds native buckets (and their exemplars) to a histogram message that has its classic ones.
pub(crate) fn add_native(message: &mut Histogram, native: &NativeBuckets) {
    message.schema = native.schema;
    message.zero_threshold = native.zero_threshold;
    message.zero_count = native.zero_count;
    (message.positive_span, message.positive_delta) = spans_and_deltas(&native.positive);
    (message.negative_span, message.negative_delta) = spans_and_deltas(&native.negative);
    if message.positive_span.is_empty()
        && message.negative_span.is_empty()
        && native.zero_threshold == 0.0
    {
        // The .proto's rule: an empty native histogram with no zero bucket carries one empty
        // span, or it would read as a classic histogram.
        message.positive_span.push(BucketSpan {
            offset: 0,
            length: 0,
        });
    }
    message.exemplars = message
        .bucket
        .iter()
        .filter_map(|bucket| bucket.exemplar.clone())
        .collect();
}

/// What one encoding reuses from series to series and family to family: a scrape then
/// allocates per family (its name and help) rather than per series (labels, message), which
/// made it several times slower (see BENCHMARKS.md, "Exposition formats").
#[derive(Default)]
pub(crate) struct Scratch {
    metric: Metric,
    metrics: Vec<u8>,
}

/// Appends one family, length-delimited, to `out`; a family with no series is left out, as
/// client_golang does, since a `MetricFamily` without a metric is invalid for Prometheus.
pub(crate) fn encode_family(
    family: &Family,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    totals: &CellTotals<'_>,
) {
    let spec = &family.spec;
    let series = family.series.read().unwrap_or_else(PoisonError::into_inner);
    if series.is_empty() {
        return;
    }
    let metric_type = match spec.kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge | MetricKind::Info => MetricType::Gauge,
        MetricKind::Histogram => MetricType::Histogram,
    };
    let metric = &mut scratch.metric;
    metric.counter = None;
    metric.gauge = None;
    scratch.metrics.clear();
    for s in series.iter() {
        fill_label_pairs(&s.labels, &mut metric.label);
        let created = Some(Timestamp::from_system_time(s.created));
        let value = match &s.value {
            SeriesValue::Counter(c) => c.get_in(totals) as f64,
            SeriesValue::FloatCounter(c) => c.get(),
            SeriesValue::Gauge(g) => g.get(),
            SeriesValue::Histogram(h) => {
                let message = metric.histogram.get_or_insert_with(Histogram::default);
                let snapshot = h.snapshot_in(totals);
                fill_classic_histogram(message, &snapshot);
                match &snapshot.native {
                    Some(native) => add_native(message, native),
                    None => clear_native(message),
                }
                message.created_timestamp = created;
                prost::encoding::message::encode(4, &*metric, &mut scratch.metrics);
                continue;
            }
        };
        metric.histogram = None;
        if metric_type == MetricType::Counter {
            metric.counter = Some(Counter {
                value,
                created_timestamp: created,
            });
        } else {
            metric.gauge = Some(Gauge { value });
        }
        prost::encoding::message::encode(4, &*metric, &mut scratch.metrics);
    }
    // The family's own fields, then its metrics as encoded above: protobuf lets fields come in
    // any order, so the metrics need not be collected into the message first.
    let header = MetricFamily {
        name: spec.name.clone(),
        help: spec.help.clone(),
        r#type: metric_type as i32,
        metric: Vec::new(),
        unit: spec.unit.unwrap_or_default().to_owned(),
    };
    let length = header.encoded_len() + scratch.metrics.len();
    prost::encoding::encode_varint(length as u64, out);
    // Writing to a Vec cannot run out of room, the only way encoding fails.
    let _ = header.encode(out);
    out.extend_from_slice(&scratch.metrics);
}

/// Leaves no native field of an earlier series in the reused message.
fn clear_native(message: &mut Histogram) {
    message.schema = 0;
    message.zero_threshold = 0.0;
    message.zero_count = 0;
    message.positive_span.clear();
    message.positive_delta.clear();
    message.negative_span.clear();
    message.negative_delta.clear();
    message.exemplars.clear();
}

/// Sets `message` to the classic part of a histogram: every bucket including `+Inf`
/// (optional in the format, kept so that its exemplar is not lost), the sum and the count.
fn fill_classic_histogram(message: &mut Histogram, snapshot: &HistogramSnapshot) {
    message.sample_count = snapshot.count;
    message.sample_sum = snapshot.sum;
    message.bucket.clear();
    message.bucket.extend(
        snapshot
            .cumulative
            .iter()
            .enumerate()
            .map(|(i, &cumulative_count)| Bucket {
                cumulative_count,
                upper_bound: snapshot.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                exemplar: snapshot.exemplars.get(i).copied().flatten().map(exemplar),
            }),
    );
}

fn exemplar(e: BucketExemplar) -> Exemplar {
    Exemplar {
        label: vec![
            LabelPair {
                name: "trace_id".to_owned(),
                value: hex(&e.ids.trace_id),
            },
            LabelPair {
                name: "span_id".to_owned(),
                value: hex(&e.ids.span_id),
            },
        ],
        value: e.value,
        timestamp: Some(Timestamp::from_unix_seconds(e.timestamp)),
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Reads back a series' label string, `name="value",…` as the text formats escape it
/// (`\\`, `\"`, `\n`), into `pairs`, reusing their strings: the registry keeps only that
/// form, rendered once when the series is created, since it is what the text scrapes (the
/// common case) write out as is.
pub(crate) fn fill_label_pairs(rendered: &str, pairs: &mut Vec<LabelPair>) {
    let mut count = 0;
    let mut rest = rendered;
    // A label name has no `=`, so the first one ends it; a one-byte search, where a two-byte
    // pattern would take the general substring searcher, the costliest step in a profile.
    while let Some((name, after)) = rest.split_once('=') {
        let after = after.strip_prefix('"').unwrap_or(after);
        if count == pairs.len() {
            pairs.push(LabelPair::default());
        }
        let pair = &mut pairs[count];
        count += 1;
        pair.name.clear();
        pair.name.push_str(name.trim_start_matches(','));
        pair.value.clear();
        // Copy the runs between escapes whole; every escape is two ASCII bytes, so each cut
        // falls on a character boundary.
        let bytes = after.as_bytes();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' {
                pair.value.push_str(after.get(start..i).unwrap_or_default());
                match bytes.get(i + 1) {
                    Some(b'n') => pair.value.push('\n'),
                    Some(&escaped) => pair.value.push(char::from(escaped)),
                    None => {}
                }
                i += 2;
                start = i;
            } else {
                i += 1;
            }
        }
        pair.value.push_str(after.get(start..i).unwrap_or_default());
        rest = after.get(i + 1..).unwrap_or_default();
    }
    pairs.truncate(count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, MetricSpec, Registry, TraceIds};
    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model as reference;
    use proptest::prelude::*;

    /// Decodes an exposition with the reference types (prometheus-client's, generated from the
    /// upstream .proto), one length-delimited family after another.
    fn decode(mut bytes: &[u8]) -> Vec<reference::MetricFamily> {
        let mut families = Vec::new();
        while !bytes.is_empty() {
            families.push(
                reference::MetricFamily::decode_length_delimited(&mut bytes)
                    .expect("a length-delimited MetricFamily"),
            );
        }
        families
    }

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    #[test]
    fn adjacent_buckets_make_one_span_of_deltas() {
        let (spans, deltas) = spans_and_deltas(&[(-2, 3), (-1, 5), (0, 1)]);
        assert_eq!(spans, vec![span(-2, 3)]);
        assert_eq!(deltas, vec![3, 2, -4]);
    }

    #[test]
    fn gaps_of_one_or_two_are_filled_and_longer_gaps_open_a_span() {
        // One empty bucket (index 1) and two (4, 5) are filled with zero counts.
        let (spans, deltas) = spans_and_deltas(&[(0, 2), (2, 2), (3, 1), (6, 4)]);
        assert_eq!(spans, vec![span(0, 7)]);
        assert_eq!(deltas, vec![2, -2, 2, -1, -1, 0, 4]);
        // Three empty buckets (11..=13) cost a new span, its offset counted from 11.
        let (spans, deltas) = spans_and_deltas(&[(10, 1), (14, 1)]);
        assert_eq!(spans, vec![span(10, 1), span(3, 1)]);
        assert_eq!(deltas, vec![1, 0]);
    }

    #[test]
    fn zero_counts_are_gaps_and_nothing_makes_no_span() {
        assert_eq!(spans_and_deltas(&[]), (vec![], vec![]));
        assert_eq!(
            spans_and_deltas(&[(5, 0), (7, 3)]),
            (vec![span(7, 1)], vec![3])
        );
    }

    #[test]
    fn timestamps_keep_nanoseconds_in_range() {
        let t = Timestamp::from_unix_seconds(1_700_000_000.25);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 250_000_000));
        let t = Timestamp::from_unix_seconds(-0.5);
        assert_eq!((t.seconds, t.nanos), (-1, 500_000_000));
        let t = Timestamp::from_system_time(UNIX_EPOCH + std::time::Duration::new(7, 42));
        assert_eq!((t.seconds, t.nanos), (7, 42));
    }

    #[test]
    fn native_buckets_and_exemplars_reach_the_reference_decoder() {
        let mut message = Histogram::default();
        fill_classic_histogram(
            &mut message,
            &HistogramSnapshot {
                bounds: std::sync::Arc::from([0.1]),
                cumulative: vec![1, 3],
                sum: 2.05,
                count: 3,
                exemplars: vec![
                    Some(BucketExemplar {
                        ids: TraceIds {
                            trace_id: [1; 16],
                            span_id: [2; 8],
                        },
                        value: 0.05,
                        timestamp: 1_700_000_000.5,
                    }),
                    None,
                ],
                native: None,
            },
        );
        add_native(
            &mut message,
            &NativeBuckets {
                schema: 3,
                zero_threshold: 1e-9,
                zero_count: 1,
                positive: vec![(-27, 1), (8, 1), (9, 0), (10, 2)],
                negative: vec![(4, 7)],
            },
        );
        let decoded =
            reference::Histogram::decode(message.encode_to_vec().as_slice()).expect("a Histogram");
        assert_eq!(decoded.schema, 3);
        assert_eq!(decoded.zero_threshold, 1e-9);
        assert_eq!(decoded.zero_count, 1);
        let spans = |s: &[reference::BucketSpan]| {
            s.iter().map(|s| (s.offset, s.length)).collect::<Vec<_>>()
        };
        assert_eq!(spans(&decoded.positive_span), vec![(-27, 1), (34, 3)]);
        assert_eq!(decoded.positive_delta, vec![1, 0, -1, 2]);
        assert_eq!(spans(&decoded.negative_span), vec![(4, 1)]);
        assert_eq!(decoded.negative_delta, vec![7]);
        assert_eq!(decoded.bucket.len(), 2, "classic buckets stay");
        assert_eq!(decoded.exemplars.len(), 1);
        let ts = decoded.exemplars[0]
            .timestamp
            .expect("native exemplars have one");
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 500_000_000));
    }

    #[test]
    fn an_empty_native_histogram_without_zero_bucket_still_reads_as_native() {
        let mut message = Histogram::default();
        add_native(&mut message, &NativeBuckets::default());
        assert_eq!(message.positive_span, vec![span(0, 0)]);
        let mut message = Histogram::default();
        add_native(
            &mut message,
            &NativeBuckets {
                zero_threshold: 1e-9,
                ..NativeBuckets::default()
            },
        );
        assert!(message.positive_span.is_empty());
    }

    #[test]
    fn label_strings_read_back_into_pairs() {
        let mut rendered = Vec::new();
        rendered.extend_from_slice(b"a=\"");
        crate::metrics::escape_label_value(&mut rendered, "x\"y\\z\n,b=\"é");
        rendered.extend_from_slice(b"\",b=\"\"");
        // Strings left from a longer label set are reused, and the surplus dropped.
        let mut pairs = vec![LabelPair::default(); 3];
        fill_label_pairs(std::str::from_utf8(&rendered).expect("utf-8"), &mut pairs);
        let read: Vec<_> = pairs.iter().map(|p| (&*p.name, &*p.value)).collect();
        assert_eq!(read, vec![("a", "x\"y\\z\n,b=\"é"), ("b", "")]);
        fill_label_pairs("", &mut pairs);
        assert!(pairs.is_empty());
    }

    /// One series of a generated registry, and what the decoder must find for it.
    #[derive(Clone, Debug)]
    enum Generated {
        Counter(u64),
        Gauge(f64),
        Histogram(Vec<f64>, Option<([u8; 16], [u8; 8])>),
    }

    fn generated() -> impl Strategy<Value = Generated> {
        prop_oneof![
            any::<u32>().prop_map(|v| Generated::Counter(u64::from(v))),
            any::<f64>().prop_map(Generated::Gauge),
            (
                prop::collection::vec(-10.0f64..10.0, 0..20),
                prop::option::of((any::<[u8; 16]>(), any::<[u8; 8]>())),
            )
                .prop_map(|(values, ids)| Generated::Histogram(values, ids)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary families, label values and exemplars come back from the reference decoder
        /// as they were recorded.
        #[test]
        fn the_exposition_round_trips_through_the_reference_decoder(
            families in prop::collection::vec(
                (generated(), prop::collection::vec("\\PC{0,12}", 1..4)),
                1..6,
            )
        ) {
            let registry = Registry::new();
            let bounds = [-1.0, 0.0, 0.5, 2.0];
            let before = Timestamp::from_system_time(SystemTime::now());
            for (i, (series, values)) in families.iter().enumerate() {
                let labels: Vec<&'static str> = vec!["value"];
                let name = format!("gen_{i}");
                match series {
                    Generated::Counter(v) => {
                        let family = registry
                            .dynamic::<crate::metrics::Counter>(
                                MetricSpec::counter(&format!("{name}_total"), "Generated.")
                                    .with_labels(&labels),
                                &[None],
                            )
                            .expect("valid spec");
                        for value in values {
                            family.get(&[value.as_str()]).inc_by(*v);
                        }
                    }
                    Generated::Gauge(v) => {
                        let family = registry
                            .dynamic::<crate::metrics::Gauge>(
                                MetricSpec::gauge(&name, "Generated.").with_labels(&labels),
                                &[None],
                            )
                            .expect("valid spec");
                        for value in values {
                            family.get(&[value.as_str()]).set(*v);
                        }
                    }
                    Generated::Histogram(observations, ids) => {
                        let family = registry
                            .dynamic::<crate::metrics::Histogram>(
                                MetricSpec::histogram(&name, "Generated.", &bounds)
                                    .with_labels(&labels)
                                    .with_exemplars(),
                                &[None],
                            )
                            .expect("valid spec");
                        for value in values {
                            let h = family.get(&[value.as_str()]);
                            for &o in observations {
                                match ids {
                                    Some((trace_id, span_id)) => h.observe_with_exemplar(
                                        o,
                                        TraceIds { trace_id: *trace_id, span_id: *span_id },
                                    ),
                                    None => h.observe(o),
                                }
                            }
                        }
                    }
                }
            }
            let mut out = Vec::new();
            registry.encode(Format::Protobuf, &mut out);
            let decoded = decode(&out);
            for (i, (series, values)) in families.iter().enumerate() {
                let name = match series {
                    Generated::Counter(_) => format!("gen_{i}_total"),
                    _ => format!("gen_{i}"),
                };
                let family = decoded
                    .iter()
                    .find(|f| f.name == name)
                    .unwrap_or_else(|| panic!("{name} missing"));
                prop_assert_eq!(&family.help, "Generated.");
                let mut distinct: Vec<&String> = values.iter().collect();
                distinct.sort();
                distinct.dedup();
                prop_assert_eq!(family.metric.len(), distinct.len());
                for metric in &family.metric {
                    prop_assert_eq!(metric.label.len(), 1);
                    prop_assert_eq!(&metric.label[0].name, "value");
                    prop_assert!(distinct.contains(&&metric.label[0].value));
                    let repeats = values.iter().filter(|v| **v == metric.label[0].value).count();
                    match series {
                        Generated::Counter(v) => {
                            prop_assert_eq!(family.r#type, reference::MetricType::Counter as i32);
                            let counter = metric.counter.as_ref().expect("counter");
                            prop_assert_eq!(counter.value, (*v * repeats as u64) as f64);
                            let created = counter.start_timestamp.expect("created");
                            prop_assert!(created.seconds >= before.seconds);
                        }
                        Generated::Gauge(v) => {
                            prop_assert_eq!(family.r#type, reference::MetricType::Gauge as i32);
                            let got = metric.gauge.as_ref().expect("gauge").value;
                            prop_assert!(got == *v || (got.is_nan() && v.is_nan()));
                        }
                        Generated::Histogram(observations, ids) => {
                            prop_assert_eq!(family.r#type, reference::MetricType::Histogram as i32);
                            let h = metric.histogram.as_ref().expect("histogram");
                            let count = (observations.len() * repeats) as u64;
                            prop_assert_eq!(h.sample_count, count);
                            prop_assert!(h.start_timestamp.is_some());
                            let uppers: Vec<f64> = h.bucket.iter().map(|b| b.upper_bound).collect();
                            prop_assert_eq!(uppers, vec![-1.0, 0.0, 0.5, 2.0, f64::INFINITY]);
                            for (b, &bound) in h.bucket.iter().zip(&bounds) {
                                let expected = observations.iter().filter(|&&o| o <= bound).count() * repeats;
                                prop_assert_eq!(b.cumulative_count, expected as u64);
                            }
                            prop_assert_eq!(h.bucket[4].cumulative_count, count);
                            let exemplars: Vec<_> = h.bucket.iter().filter_map(|b| b.exemplar.as_ref()).collect();
                            match ids {
                                Some((trace_id, span_id)) if !observations.is_empty() => {
                                    prop_assert!(!exemplars.is_empty());
                                    for e in exemplars {
                                        prop_assert_eq!(&e.label[0].value, &hex(trace_id));
                                        prop_assert_eq!(&e.label[1].value, &hex(span_id));
                                        prop_assert!(observations.contains(&e.value));
                                        prop_assert!(e.timestamp.is_some());
                                    }
                                }
                                _ => prop_assert!(exemplars.is_empty()),
                            }
                        }
                    }
                }
            }
        }
    }

    /// Expands spans and deltas back into `(index, count)` buckets, as Prometheus reads them.
    fn expand(spans: &[reference::BucketSpan], deltas: &[i64]) -> Vec<(i32, u64)> {
        let mut buckets = Vec::new();
        let (mut index, mut count, mut deltas) = (0i32, 0i64, deltas.iter());
        for span in spans {
            index += span.offset;
            for _ in 0..span.length {
                count += deltas.next().expect("a delta per bucket");
                if count > 0 {
                    buckets.push((index, count as u64));
                }
                index += 1;
            }
        }
        buckets
    }

    proptest! {
        #[test]
        fn a_native_histogram_round_trips_through_the_reference_decoder_with_its_exemplars(
            values in prop::collection::vec(prop_oneof![0.0f64..1e-7, 1e-6f64..2.0, 1e3f64..1e5], 1..300),
            traced in 0usize..300,
        ) {
            let registry = Registry::new();
            let latency = registry
                .histogram(
                    MetricSpec::histogram("demo_latency_seconds", "Latency.", crate::metrics::LATENCY_BUCKETS)
                        .with_unit("seconds")
                        .with_exemplars()
                        .with_native(crate::metrics::NativeConfig::LATENCY),
                )
                .unwrap();
            let ids = TraceIds { trace_id: [3; 16], span_id: [4; 8] };
            for (i, &v) in values.iter().enumerate() {
                if i == traced % values.len() {
                    latency.observe_with_exemplar(v, ids);
                } else {
                    latency.observe(v);
                }
            }
            let mut bytes = Vec::new();
            registry.encode(Format::Protobuf, &mut bytes);
            let families = decode(&bytes);
            let h = families[0].metric[0].histogram.as_ref().expect("a histogram");
            // The expected buckets: each value's index by the formula, reduced as the layout does.
            let config = crate::metrics::NativeConfig::LATENCY;
            let mut expected = crate::metrics::NativeBuckets {
                schema: 3,
                zero_threshold: config.zero_threshold,
                ..Default::default()
            };
            let mut positive = std::collections::BTreeMap::new();
            for &v in &values {
                if v <= config.zero_threshold {
                    expected.zero_count += 1;
                } else {
                    *positive.entry(crate::metrics::bucket_index(v, 3)).or_insert(0u64) += 1;
                }
            }
            expected.positive = positive.into_iter().collect();
            crate::metrics::reduce_resolution(&mut expected, config.max_buckets);
            prop_assert_eq!(h.schema, expected.schema);
            prop_assert_eq!(h.zero_threshold, config.zero_threshold);
            prop_assert_eq!(h.zero_count, expected.zero_count);
            prop_assert_eq!(expand(&h.positive_span, &h.positive_delta), expected.positive);
            prop_assert!(h.negative_span.is_empty());
            prop_assert_eq!(h.sample_count, values.len() as u64);
            // The classic buckets are still there, for scrapers that keep both.
            prop_assert_eq!(h.bucket.len(), crate::metrics::LATENCY_BUCKETS.len() + 1);
            // The traced observation's exemplar survives, on the native side too.
            let traced_value = values[traced % values.len()];
            prop_assert!(h.exemplars.iter().any(|e| e.value == traced_value), "{:?}", h.exemplars);
            let e = &h.exemplars[0];
            prop_assert!(e.timestamp.is_some());
            prop_assert!(e.label.iter().any(|l| l.name == "trace_id" && l.value == "03030303030303030303030303030303"));
        }
    }
}
