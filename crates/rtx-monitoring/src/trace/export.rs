//! OTLP/HTTP export (protobuf, `POST {endpoint}/v1/traces`) from a bounded queue: a full queue
//! or an unreachable collector drops spans and counts them, never slows the caller, and memory
//! stays bounded by the queue. Shutdown flushes within a deadline and never hangs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, SpanFlags, Status,
};
use prost::Message;

use super::span::{AttributeValue, FinishedSpan, SpanKind, SpanSink};
use crate::metrics::Counter;

/// Spans sent in one request at most.
pub const BATCH: usize = 512;

/// Where and how to export.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// Base URL, e.g. `http://127.0.0.1:4318`; `/v1/traces` is appended.
    pub endpoint: String,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// `service.version` resource attribute.
    pub service_version: String,
    /// Spans held at most while waiting for export.
    pub queue_capacity: usize,
    /// Longest wait between exports.
    pub interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// Defaults: 8,192 queued spans, export every second, 5 s timeout.
    pub fn new(endpoint: &str, service_name: &str, service_version: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            service_name: service_name.to_owned(),
            service_version: service_version.to_owned(),
            queue_capacity: 8192,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The exporter: a [`SpanSink`] whose queue a background task drains.
pub struct OtlpExporter {
    config: OtlpConfig,
    queue: Mutex<VecDeque<FinishedSpan>>,
    wake: tokio::sync::Notify,
    exported: Counter,
    dropped: Counter,
    failures: Mutex<FailureLog>,
}

/// How often a failing export is logged: a dead collector must be visible in the logs, without
/// a line per batch.
pub const EXPORT_WARN_INTERVAL: Duration = Duration::from_secs(30);

/// Rate-limits the WARN lines of failed exports, counting what it did not log.
#[derive(Debug, Default)]
struct FailureLog {
    last_logged: Option<std::time::Instant>,
    unlogged_batches: u64,
    unlogged_spans: u64,
}

impl FailureLog {
    /// Counts a failed batch; returns the batches and spans to report (this one included) when a
    /// line is due, and `None` while the last one is less than `EXPORT_WARN_INTERVAL` old.
    fn failed(&mut self, spans: u64, now: std::time::Instant) -> Option<(u64, u64)> {
        self.unlogged_batches += 1;
        self.unlogged_spans += spans;
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < EXPORT_WARN_INTERVAL)
        {
            return None;
        }
        self.last_logged = Some(now);
        Some((
            std::mem::take(&mut self.unlogged_batches),
            std::mem::take(&mut self.unlogged_spans),
        ))
    }
}

/// The endpoint as it may be logged: without any `user:password@`.
fn loggable(endpoint: &str) -> &str {
    match endpoint.split_once("://") {
        Some((_, rest))
            if rest
                .split('/')
                .next()
                .is_some_and(|auth| auth.contains('@')) =>
        {
            // Credentials are in the URL: log only what follows them.
            rest.rsplit_once('@').map_or(endpoint, |(_, host)| host)
        }
        _ => endpoint,
    }
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.config.endpoint)
            .finish_non_exhaustive()
    }
}

impl SpanSink for OtlpExporter {
    fn push(&self, span: FinishedSpan) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= self.config.queue_capacity {
            drop(queue);
            self.dropped.inc();
            return;
        }
        queue.push_back(span);
        let full_batch = queue.len() >= BATCH;
        drop(queue);
        if full_batch {
            self.wake.notify_one();
        }
    }
}

fn kv(key: &str, value: AttributeValue) -> KeyValue {
    let value = match value {
        AttributeValue::Str(s) => any_value::Value::StringValue(s),
        AttributeValue::Int(i) => any_value::Value::IntValue(i),
        AttributeValue::Float(f) => any_value::Value::DoubleValue(f),
        AttributeValue::Bool(b) => any_value::Value::BoolValue(b),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn to_proto(s: FinishedSpan) -> Span {
    let kind = match s.kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
    };
    let status = match &s.error {
        Some(message) => Status {
            message: message.clone(),
            code: status::StatusCode::Error as i32,
        },
        None => Status {
            message: String::new(),
            code: status::StatusCode::Unset as i32,
        },
    };
    // Low byte: the W3C trace flags. Bit 8 says whether the parent is remote is known (always,
    // here); bit 9 that it is: the parent came from a caller's traceparent.
    let remote = if s.parent_is_remote {
        SpanFlags::ContextIsRemoteMask as u32
    } else {
        0
    };
    Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state.map(|t| t.to_string()).unwrap_or_default(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: u32::from(s.flags) | SpanFlags::ContextHasIsRemoteMask as u32 | remote,
        name: s.name.into_owned(),
        kind: kind as i32,
        start_time_unix_nano: s.start_unix_nanos,
        end_time_unix_nano: s.end_unix_nanos,
        attributes: s.attributes.into_iter().map(|(k, v)| kv(k, v)).collect(),
        events: s
            .events
            .into_iter()
            .map(|(time, name)| span::Event {
                time_unix_nano: time,
                name,
                ..Default::default()
            })
            .collect(),
        status: Some(status),
        ..Default::default()
    }
}

impl OtlpExporter {
    /// An exporter counting into `exported` and `dropped` (`rtx_spans_exported_total`,
    /// `rtx_spans_dropped_total`).
    pub fn new(config: OtlpConfig, exported: Counter, dropped: Counter) -> Arc<Self> {
        Arc::new(Self {
            config,
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            exported,
            dropped,
            failures: Mutex::new(FailureLog::default()),
        })
    }

    /// Counts a failed batch as dropped, and logs a WARN naming the endpoint and the error at
    /// most once per [`EXPORT_WARN_INTERVAL`].
    fn export_failed(&self, spans: u64, error: &dyn std::fmt::Display) {
        self.dropped.inc_by(spans);
        let due = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed(spans, std::time::Instant::now());
        if let Some((batches, dropped)) = due {
            tracing::warn!(
                endpoint = loggable(&self.config.endpoint),
                error = %error,
                failed_batches = batches,
                dropped_spans = dropped,
                "span export to the OTLP collector failed; spans are dropped (counted in rtx_spans_dropped_total)"
            );
        }
    }

    fn take_batch(&self) -> Vec<FinishedSpan> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let n = queue.len().min(BATCH);
        queue.drain(..n).collect()
    }

    fn encode(&self, spans: Vec<FinishedSpan>) -> Vec<u8> {
        let resource = Resource {
            attributes: vec![
                kv(
                    "service.name",
                    AttributeValue::Str(self.config.service_name.clone()),
                ),
                kv(
                    "service.version",
                    AttributeValue::Str(self.config.service_version.clone()),
                ),
            ],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "rtx-monitoring".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    spans: spans.into_iter().map(to_proto).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        request.encode_to_vec()
    }

    async fn send(&self, client: &reqwest::Client, spans: Vec<FinishedSpan>) {
        let n = spans.len() as u64;
        if n == 0 {
            return;
        }
        let body = self.encode(spans);
        let result = client
            .post(format!("{}/v1/traces", self.config.endpoint))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => self.exported.inc_by(n),
            Ok(r) => self.export_failed(n, &format_args!("the collector answered {}", r.status())),
            // The URL is logged once, without credentials, as `endpoint`.
            Err(e) => self.export_failed(n, &e.without_url()),
        }
    }

    /// Exports until `shutdown` flips, then flushes what is queued within `deadline`.
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        deadline: Duration,
    ) {
        let client = match reqwest::Client::builder()
            .timeout(self.config.timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the OTLP client; spans are dropped");
                return;
            }
        };
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => break,
            }
            loop {
                let batch = self.take_batch();
                let more = batch.len() == BATCH;
                self.send(&client, batch).await;
                if !more {
                    break;
                }
            }
        }
        // Flush, bounded: whatever cannot be sent in time is counted as dropped.
        let flush = async {
            loop {
                let batch = self.take_batch();
                if batch.is_empty() {
                    break;
                }
                self.send(&client, batch).await;
            }
        };
        if tokio::time::timeout(deadline, flush).await.is_err() {
            let left = self
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
                .count() as u64;
            self.dropped.inc_by(left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_exports_are_logged_at_most_once_per_interval_with_what_was_not() {
        let mut log = FailureLog::default();
        let start = std::time::Instant::now();
        assert_eq!(
            log.failed(10, start),
            Some((1, 10)),
            "the first failure is logged"
        );
        assert_eq!(log.failed(5, start + Duration::from_secs(1)), None);
        assert_eq!(log.failed(7, start + Duration::from_secs(29)), None);
        assert_eq!(
            log.failed(1, start + EXPORT_WARN_INTERVAL),
            Some((3, 13)),
            "the next line counts the batches and spans since the last"
        );
    }

    #[test]
    fn an_endpoint_is_logged_without_credentials() {
        assert_eq!(loggable("http://127.0.0.1:4318"), "http://127.0.0.1:4318");
        assert_eq!(loggable("https://user:s3cret@otel:4318/x"), "otel:4318/x");
        assert!(!loggable("https://user:s3cret@otel:4318").contains("s3cret"));
    }

    fn span(name: &str) -> FinishedSpan {
        FinishedSpan {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            parent_is_remote: false,
            flags: 1,
            trace_state: None,
            name: name.to_owned().into(),
            kind: SpanKind::Server,
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            attributes: vec![("http.route", AttributeValue::Str("/api/orders".to_owned()))],
            events: vec![],
            error: Some("boom".to_owned()),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let registry = crate::metrics::Registry::new();
        let dropped = registry
            .counter(crate::metrics::MetricSpec::counter("d_total", "d"))
            .unwrap();
        let mut config = OtlpConfig::new("http://127.0.0.1:1", "svc", "1");
        config.queue_capacity = 3;
        let exporter = OtlpExporter::new(config, Counter::noop(), dropped.clone());
        for i in 0..5 {
            exporter.push(span(&format!("s{i}")));
        }
        assert_eq!(dropped.get(), 2);
        assert_eq!(exporter.take_batch().len(), 3);
    }

    #[test]
    fn spans_encode_as_the_official_protobuf() {
        let exporter = OtlpExporter::new(
            OtlpConfig::new("http://x", "svc", "1.2"),
            Counter::noop(),
            Counter::noop(),
        );
        let server = FinishedSpan {
            parent_is_remote: true,
            trace_state: crate::trace::TraceState::parse("congo=t61rcWkgMzE").map(Arc::new),
            flags: 3,
            ..span("HTTP POST /api/orders")
        };
        let bytes = exporter.encode(vec![server, span("order.execute")]);
        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let rs = &decoded.resource_spans[0];
        let service = rs
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .find(|a| a.key == "service.name")
            .unwrap();
        assert_eq!(
            service.value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue("svc".into()))
        );
        let s = &rs.scope_spans[0].spans[0];
        assert_eq!(s.trace_id, vec![1; 16]);
        assert_eq!(s.parent_span_id, vec![3; 8]);
        assert_eq!(s.kind, span::SpanKind::Server as i32);
        assert_eq!(
            s.status.as_ref().unwrap().code,
            status::StatusCode::Error as i32
        );
        assert_eq!(
            s.flags, 0x303,
            "W3C flags 03, the parent's locality known (0x100) and remote (0x200)"
        );
        assert_eq!(s.trace_state, "congo=t61rcWkgMzE");
        let local = &rs.scope_spans[0].spans[1];
        assert_eq!(local.flags, 0x101, "known, and not remote");
        assert_eq!(local.trace_state, "");
    }
}
