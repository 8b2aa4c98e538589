//! The three exposition formats: Prometheus text 0.0.4, OpenMetrics 1.0.0 and the Prometheus
//! protobuf format, and choosing between them from an `Accept` header.

use std::sync::PoisonError;
use std::time::UNIX_EPOCH;

use super::histogram::{Exemplar, HistogramSnapshot};
use super::labels::{escape_help_openmetrics, escape_help_text};
use super::protobuf;
use super::registry::{Family, MetricKind, Registry, SeriesValue};
use super::shards::CellTotals;

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what every Prometheus understands; no exemplars.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`: units, `# EOF`, exemplars, `_created`.
    OpenMetrics,
    /// `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
    /// encoding=delimited`: what Prometheus asks for first when it ingests native histograms;
    /// exemplars and created timestamps.
    Protobuf,
}

impl Format {
    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// Picks the format an `Accept` header gives the highest quality; on a tie the richer one
    /// (protobuf, then OpenMetrics, then plain text). Protobuf only when asked for by name with
    /// `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`, as Prometheus does
    /// (`*/*` means a reader of text); plain text when the header is missing or unparsable,
    /// since every scraper reads plain text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let mut protobuf_q = 0.0f32;
        let mut openmetrics_q = 0.0f32;
        let mut text_q = 0.0f32;
        for item in parse_header_list(accept) {
            if item.value == "application/vnd.google.protobuf" {
                let ours = item.param("proto") == Some("io.prometheus.client.MetricFamily")
                    && item.param("encoding") == Some("delimited");
                if ours {
                    protobuf_q = protobuf_q.max(item.quality);
                }
                continue;
            }
            // 0.0.1 is the draft Prometheus still advertises; its text is the same.
            let version_ok = item
                .param("version")
                .is_none_or(|v| matches!(v, "1.0.0" | "0.0.1"));
            match item.value.as_str() {
                "application/openmetrics-text" if version_ok => {
                    openmetrics_q = openmetrics_q.max(item.quality)
                }
                "text/plain" | "text/*" | "*/*" => text_q = text_q.max(item.quality),
                _ => {}
            }
        }
        if protobuf_q > 0.0 && protobuf_q >= openmetrics_q && protobuf_q >= text_q {
            Format::Protobuf
        } else if openmetrics_q > 0.0 && openmetrics_q >= text_q {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// One element of an `Accept` or `Accept-Encoding` list.
#[derive(Debug)]
pub(crate) struct HeaderItem {
    /// Lower-cased media type or coding.
    pub(crate) value: String,
    /// `q`, 1 when absent, 0 when malformed.
    pub(crate) quality: f32,
    params: Vec<(String, String)>,
}

impl HeaderItem {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a comma-separated header into items with their quality; never fails.
pub(crate) fn parse_header_list(header: &str) -> impl Iterator<Item = HeaderItem> + '_ {
    header.split(',').map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let value = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut quality = 1.0f32;
        let mut params = Vec::new();
        for param in parts {
            let Some((key, raw)) = param.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let raw = raw.trim().trim_matches('"');
            if key == "q" {
                quality = raw
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            } else {
                params.push((key, raw.to_owned()));
            }
        }
        HeaderItem {
            value,
            quality,
            params,
        }
    })
}

impl Registry {
    /// Encodes every family into `out`, after running the collect hooks.
    pub fn encode(&self, format: Format, out: &mut Vec<u8>) {
        self.encode_selected(format, &[], out);
    }

    /// Encodes the families named in `names` (every family when it is empty) into `out`,
    /// after running the collect hooks. A family is named as the text format names it (a
    /// counter with its `_total`), the way client_golang filters on `name[]`; a name no family
    /// has selects nothing.
    pub fn encode_selected(&self, format: Format, names: &[&str], out: &mut Vec<u8>) {
        self.run_hooks();
        let selected = |family: &Family| names.is_empty() || names.contains(&family.spec.name());
        let mut scratch = protobuf::Scratch::default();
        // Every thread's copies summed once, copy by copy, rather than once per series.
        let totals = self.cell_totals();
        let created = format == Format::OpenMetrics && self.openmetrics_created();
        for family in self.families().iter().filter(|f| selected(f)) {
            match format {
                Format::Protobuf => protobuf::encode_family(family, out, &mut scratch, &totals),
                Format::PrometheusText | Format::OpenMetrics => {
                    encode_family(family, format, created, out, &totals)
                }
            }
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
    }

    /// Encodes a text format into a new string (for tests and tools); protobuf is binary, read
    /// it with [`Registry::encode`].
    pub fn encode_to_string(&self, format: Format) -> String {
        let mut out = Vec::with_capacity(64 * 1024);
        self.encode(format, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `created`: whether to write `_created` samples (OpenMetrics only).
fn encode_family(
    family: &Family,
    format: Format,
    created: bool,
    out: &mut Vec<u8>,
    totals: &CellTotals<'_>,
) {
    let spec = &family.spec;
    let name = spec.name.as_str();
    let openmetrics = format == Format::OpenMetrics;
    // OpenMetrics names the family without the sample suffix its type adds.
    let family_name = match (openmetrics, spec.kind) {
        (true, MetricKind::Counter) => name.strip_suffix("_total").unwrap_or(name),
        (true, MetricKind::Info) => name.strip_suffix("_info").unwrap_or(name),
        _ => name,
    };
    let type_name = match (spec.kind, openmetrics) {
        (MetricKind::Counter, _) => "counter",
        (MetricKind::Gauge, _) | (MetricKind::Info, false) => "gauge",
        (MetricKind::Histogram, _) => "histogram",
        (MetricKind::Info, true) => "info",
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(family_name.as_bytes());
    out.push(b' ');
    if openmetrics {
        escape_help_openmetrics(out, &spec.help);
    } else {
        escape_help_text(out, &spec.help);
    }
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(family_name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(type_name.as_bytes());
    out.push(b'\n');
    if let (true, Some(unit)) = (openmetrics, spec.unit) {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(family_name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        out.push(b'\n');
    }
    // OpenMetrics gives counters and histograms a `_created` sample: the moment the series
    // started from zero, so a reader can tell a fresh series from one it missed the start of.
    let created = created && matches!(spec.kind, MetricKind::Counter | MetricKind::Histogram);
    let series = family.series.read().unwrap_or_else(PoisonError::into_inner);
    for s in series.iter() {
        match &s.value {
            SeriesValue::Counter(c) => sample(out, name, "", &s.labels, None, |o| {
                write_u64(o, c.get_in(totals))
            }),
            SeriesValue::FloatCounter(c) => {
                sample(out, name, "", &s.labels, None, |o| write_f64(o, c.get()))
            }
            SeriesValue::Gauge(g) => {
                sample(out, name, "", &s.labels, None, |o| write_f64(o, g.get()))
            }
            SeriesValue::Histogram(h) => {
                encode_histogram(out, name, &s.labels, &h.snapshot_in(totals), openmetrics)
            }
        }
        if created {
            sample(out, family_name, "_created", &s.labels, None, |o| {
                let seconds = s.created.duration_since(UNIX_EPOCH).unwrap_or_default();
                write_f64(o, seconds.as_secs_f64())
            });
        }
    }
}

fn encode_histogram(
    out: &mut Vec<u8>,
    name: &str,
    labels: &str,
    snap: &HistogramSnapshot,
    openmetrics: bool,
) {
    let mut le_buf = ryu::Buffer::new();
    for (i, &count) in snap.cumulative.iter().enumerate() {
        let le = match snap.bounds.get(i) {
            Some(&bound) => le_buf.format(bound),
            None => "+Inf",
        };
        let exemplar = if openmetrics {
            snap.exemplars.get(i).copied().flatten()
        } else {
            None
        };
        sample(out, name, "_bucket", labels, Some(le), |o| {
            write_u64(o, count)
        });
        if let Some(e) = exemplar {
            // Replace the line feed `sample` wrote with the exemplar, then end the line.
            out.pop();
            write_exemplar(out, &e);
            out.push(b'\n');
        }
    }
    // OpenMetrics forbids a sum on histograms with negative buckets (it could go down, which
    // breaks rate()) and a count without a sum; the count is the +Inf bucket anyway. The text
    // format has no such rule.
    let negative_buckets = snap.bounds.first().is_some_and(|&b| b < 0.0);
    if !(openmetrics && negative_buckets) {
        sample(out, name, "_sum", labels, None, |o| write_f64(o, snap.sum));
        sample(out, name, "_count", labels, None, |o| {
            write_u64(o, snap.count)
        });
    }
}

fn sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    labels: &str,
    le: Option<&str>,
    value: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || le.is_some() {
        out.push(b'{');
        out.extend_from_slice(labels.as_bytes());
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"le=\"");
            out.extend_from_slice(le.as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    value(out);
    out.push(b'\n');
}

fn write_exemplar(out: &mut Vec<u8>, e: &Exemplar) {
    out.extend_from_slice(b" # {trace_id=\"");
    write_hex(out, &e.ids.trace_id);
    out.extend_from_slice(b"\",span_id=\"");
    write_hex(out, &e.ids.span_id);
    out.extend_from_slice(b"\"} ");
    write_f64(out, e.value);
    out.push(b' ');
    let mut buf = ryu::Buffer::new();
    out.extend_from_slice(buf.format(e.timestamp).as_bytes());
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes a float the way both formats accept: integers without a fraction, `NaN`, `+Inf`.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Exact for |v| < 2^53, and shorter and faster than the float form.
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Dense, MetricSpec, TraceIds};

    #[test]
    fn negotiation_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some("text/plain,application/openmetrics-text;q=0.5")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::PrometheusText
        );
        assert_eq!(Format::negotiate(Some(";;;,,q=x")), Format::PrometheusText);
        // Prometheus 2.42 with native histograms enabled, as its binary sends it.
        let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(native)), Format::Protobuf);
        let proto = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
        assert_eq!(
            Format::negotiate(Some(&format!("{proto};q=0.4,text/plain;q=0.5"))),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some(&format!(
                "{proto};q=0.5,application/openmetrics-text;q=0.5"
            ))),
            Format::Protobuf,
            "a tie goes to the richer format"
        );
        for other in [
            "application/vnd.google.protobuf",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
            "*/*",
        ] {
            assert_eq!(
                Format::negotiate(Some(other)),
                Format::PrometheusText,
                "{other}"
            );
        }
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
    }

    #[test]
    fn floats_are_written_in_a_form_both_parsers_read() {
        for (v, s) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (-3.0, "-3"),
            (1e20, "1e20"),
        ] {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), s);
        }
    }

    #[test]
    fn openmetrics_names_families_without_suffix_and_carries_exemplars() {
        let r = Registry::new();
        let c: Dense<Counter, 1> = r
            .dense(
                MetricSpec::counter("x_requests_total", "Requests \"quoted\".")
                    .with_labels(&["code"]),
                [&["200"]],
            )
            .unwrap();
        c.get([0]).inc();
        let h = r
            .histogram(
                MetricSpec::histogram("x_latency_seconds", "L.", &[0.1])
                    .with_unit("seconds")
                    .with_exemplars(),
            )
            .unwrap();
        h.observe_with_exemplar(
            0.05,
            TraceIds {
                trace_id: [0xab; 16],
                span_id: [0x01; 8],
            },
        );
        let om = r.encode_to_string(Format::OpenMetrics);
        assert!(om.contains("# TYPE x_requests counter\n"));
        assert!(om.contains("# HELP x_requests Requests \\\"quoted\\\".\n"));
        assert!(om.contains("x_requests_total{code=\"200\"} 1\n"));
        assert!(om.contains("# UNIT x_latency_seconds seconds\n"));
        assert!(om.contains(&format!(
            "x_latency_seconds_bucket{{le=\"0.1\"}} 1 # {{trace_id=\"{}\",span_id=\"{}\"}} 0.05 ",
            "ab".repeat(16),
            "01".repeat(8)
        )));
        assert!(om.ends_with("# EOF\n"));
        let created = om
            .lines()
            .find_map(|l| l.strip_prefix("x_requests_created{code=\"200\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a _created sample after the counter");
        assert!(
            (created - UNIX_EPOCH.elapsed().expect("after 1970").as_secs_f64()).abs() < 60.0,
            "{created}"
        );
        assert!(om.contains("x_latency_seconds_count 1\nx_latency_seconds_created "));
        let text = r.encode_to_string(Format::PrometheusText);
        assert!(text.contains("# TYPE x_requests_total counter\n"));
        assert!(text.contains("# HELP x_requests_total Requests \"quoted\".\n"));
        assert!(!text.contains("trace_id"));
        assert!(!text.contains("# EOF"));
        assert!(
            !text.contains("_created"),
            "the text format has no created samples"
        );
        // Switched off, OpenMetrics leaves them out and is otherwise the same.
        r.set_openmetrics_created(false);
        let without = r.encode_to_string(Format::OpenMetrics);
        assert!(!without.contains("_created"), "{without}");
        let kept: Vec<&str> = om
            .lines()
            .filter(|l| {
                !l.split(['{', ' '])
                    .next()
                    .is_some_and(|n| n.ends_with("_created"))
            })
            .collect();
        assert_eq!(without.lines().collect::<Vec<_>>(), kept);
    }
}
