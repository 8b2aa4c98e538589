//! OTLP/HTTP export (protobuf, `POST {endpoint}/v1/traces`) from a bounded queue: a full queue
//! or an unreachable collector drops spans and counts them, never slows the caller, and memory
//! stays bounded by the queue. While the collector fails, exports pause (see [`Backoff`]), so
//! that an outage costs no encoding per span. Shutdown flushes within a deadline and never
//! hangs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::span::{FinishedSpan, SpanSink};
use super::wire::{export_request, proto_request, Origin};
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
    /// Longest pause of exports after failures in a row (the first pause is `interval`).
    pub max_backoff: Duration,
}

impl OtlpConfig {
    /// Defaults: 8,192 queued spans, export every second, 5 s timeout, pauses of up to 10 s
    /// while the collector fails.
    pub fn new(endpoint: &str, service_name: &str, service_version: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            service_name: service_name.to_owned(),
            service_version: service_version.to_owned(),
            queue_capacity: 8192,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The pause of exports after a failed one. Every batch sent to a collector that is down is
/// encoded for nothing: with one attempt per batch, an unreachable collector cost the engine as
/// much CPU per order as a live one (BENCHMARKS.md, Span export on the order path). So after a
/// failure, batches are dropped and counted without being encoded or sent until the pause ends;
/// the next batch then tries the collector again. The pause starts at the export interval,
/// doubles with each failure in a row up to `max_backoff`, and a success ends it. The spans of
/// a pause would have been lost anyway (a failed batch is not retried); what a pause adds is at
/// most `max_backoff` of spans after the collector is back.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
    /// The length of the next pause.
    next: Duration,
    /// When the current pause ends; `None` while the collector answers.
    until: Option<Instant>,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            next: first,
            until: None,
        }
    }

    /// Whether exports are paused at `now`.
    fn paused(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// An export failed at `now`: pause, for twice as long as last time (up to the maximum).
    fn failed(&mut self, now: Instant) {
        self.until = Some(now + self.next);
        self.next = (self.next * 2).min(self.max);
    }

    /// An export succeeded: no pause, and the next failure pauses for the shortest time again.
    fn succeeded(&mut self) {
        self.until = None;
        self.next = self.first;
    }
}

/// The exporter: a [`SpanSink`] whose queue a background task drains.
pub struct OtlpExporter {
    config: OtlpConfig,
    queue: Mutex<VecDeque<FinishedSpan>>,
    /// False while exports pause after a failure: spans opening then build no record
    /// ([`SpanSink::accepts`]) and are counted as dropped.
    accepting: AtomicBool,
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
    /// False while exports pause after a failure, counting the span as dropped: its record
    /// would be dropped unsent anyway, and building it cost the engine about 5 % of an order's
    /// CPU while its collector was down (`BENCHMARKS.md`, Span export on the order path).
    fn accepts(&self) -> bool {
        if self.accepting.load(Ordering::Relaxed) {
            return true;
        }
        self.dropped.inc();
        false
    }

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

impl OtlpExporter {
    /// An exporter counting into `exported` and `dropped` (`rtx_spans_exported_total`,
    /// `rtx_spans_dropped_total`).
    pub fn new(config: OtlpConfig, exported: Counter, dropped: Counter) -> Arc<Self> {
        Arc::new(Self {
            config,
            queue: Mutex::new(VecDeque::new()),
            accepting: AtomicBool::new(true),
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
                "span export to the OTLP collector failed; spans are dropped (counted in rtx_spans_dropped_total), and exports pause while it fails"
            );
        }
    }

    fn take_batch(&self) -> Vec<FinishedSpan> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let n = queue.len().min(BATCH);
        queue.drain(..n).collect()
    }

    /// The resource and scope of this exporter's requests.
    fn origin(&self) -> Origin<'_> {
        Origin {
            service_name: &self.config.service_name,
            service_version: &self.config.service_version,
            scope_name: "rtx-monitoring",
            scope_version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// The body of one export request (`ExportTraceServiceRequest`, protobuf) for `spans`,
    /// under this exporter's service name and version.
    pub fn encode(&self, spans: &[FinishedSpan]) -> Vec<u8> {
        export_request(&self.origin(), spans)
    }

    /// The same request as [`encode`](Self::encode) writes, as the official `opentelemetry-proto`
    /// message (which `prost` encodes to the same bytes), for callers who want those types.
    pub fn proto_request(
        &self,
        spans: Vec<FinishedSpan>,
    ) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        proto_request(&self.origin(), spans)
    }

    /// Sends `spans` (never empty: [`send_or_drop`](Self::send_or_drop) sends no empty batch)
    /// and answers whether the collector took them.
    async fn send(&self, client: &reqwest::Client, spans: Vec<FinishedSpan>) -> bool {
        let n = spans.len() as u64;
        let body = self.encode(&spans);
        drop(spans);
        let result = client
            .post(format!("{}/v1/traces", self.config.endpoint))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                self.exported.inc_by(n);
                return true;
            }
            Ok(r) => self.export_failed(n, &format_args!("the collector answered {}", r.status())),
            // The URL is logged once, without credentials, as `endpoint`.
            Err(e) => self.export_failed(n, &e.without_url()),
        }
        false
    }

    /// Sends `batch`, or drops and counts it unsent while exports pause after a failure.
    async fn send_or_drop(
        &self,
        client: &reqwest::Client,
        batch: Vec<FinishedSpan>,
        backoff: &mut Backoff,
    ) {
        if batch.is_empty() {
            // Nothing to learn about the collector: the pause, if any, goes on.
        } else if backoff.paused(Instant::now()) {
            self.dropped.inc_by(batch.len() as u64);
        } else if self.send(client, batch).await {
            backoff.succeeded();
        } else {
            backoff.failed(Instant::now());
        }
        self.accepting
            .store(!backoff.paused(Instant::now()), Ordering::Relaxed);
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
        let mut backoff = Backoff::new(self.config.interval, self.config.max_backoff);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => break,
            }
            // A pause that is over lets spans build records again; the next batch tries the
            // collector.
            if !backoff.paused(Instant::now()) {
                self.accepting.store(true, Ordering::Relaxed);
            }
            loop {
                let batch = self.take_batch();
                let more = batch.len() == BATCH;
                self.send_or_drop(&client, batch, &mut backoff).await;
                if !more {
                    break;
                }
            }
        }
        // Flush, bounded: whatever cannot be sent in time is counted as dropped. The collector
        // gets one more try whatever the pause; if it fails, the rest is dropped unsent.
        let flush = async {
            let mut backoff = Backoff::new(self.config.interval, self.config.max_backoff);
            loop {
                let batch = self.take_batch();
                if batch.is_empty() {
                    break;
                }
                self.send_or_drop(&client, batch, &mut backoff).await;
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
    use crate::trace::{AttributeValue, SpanKind};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::trace::v1::{span, status};
    use prost::Message;

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
    fn exports_pause_after_a_failure_for_twice_as_long_each_time_up_to_the_maximum() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(350));
        assert!(!backoff.paused(start), "no pause before a failure");
        let mut now = start;
        for expected in [100, 200, 350, 350] {
            backoff.failed(now);
            assert!(
                backoff.paused(now + ms(expected - 1)),
                "paused for {expected} ms"
            );
            now += ms(expected);
            assert!(!backoff.paused(now), "and no longer");
        }
        backoff.succeeded();
        assert!(!backoff.paused(now));
        backoff.failed(now);
        assert!(
            !backoff.paused(now + ms(100)),
            "a success resets the pause to the shortest"
        );
    }

    /// The collector of [`a_failing_collector_is_tried_again_after_pauses_and_no_span_goes_uncounted`]:
    /// answers every export with the status in `status`, and keeps the spans it took.
    #[derive(Default)]
    struct Collector {
        status: std::sync::atomic::AtomicU16,
        requests: std::sync::atomic::AtomicUsize,
        taken: std::sync::atomic::AtomicUsize,
    }

    async fn serve(collector: Arc<Collector>) -> std::net::SocketAddr {
        use axum::{body::Bytes, extract::State, http::StatusCode, routing::post, Router};
        use std::sync::atomic::Ordering::Relaxed;
        async fn export(State(c): State<Arc<Collector>>, body: Bytes) -> StatusCode {
            c.requests.fetch_add(1, Relaxed);
            let status = StatusCode::from_u16(c.status.load(Relaxed)).unwrap();
            if status.is_success() {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let spans = request.resource_spans[0].scope_spans[0].spans.len();
                c.taken.fetch_add(spans, Relaxed);
            }
            status
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(collector);
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    /// Before the pause, every batch sent to a failing collector was encoded and sent: as many
    /// requests as batches. Now a failing collector gets a handful of tries over the same time,
    /// spans flow again within the longest pause once it answers, and every span pushed is
    /// either exported or counted as dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_collector_is_tried_again_after_pauses_and_no_span_goes_uncounted() {
        use std::sync::atomic::Ordering::Relaxed;
        let collector = Arc::new(Collector::default());
        collector.status.store(503, Relaxed);
        let address = serve(Arc::clone(&collector)).await;
        let registry = crate::metrics::Registry::new();
        let counter = |name: &str| {
            registry
                .counter(crate::metrics::MetricSpec::counter(name, "spans"))
                .unwrap()
        };
        let (exported, dropped) = (counter("exported_total"), counter("dropped_total"));
        let mut config = OtlpConfig::new(&format!("http://{address}"), "svc", "1");
        config.interval = Duration::from_millis(50);
        config.max_backoff = Duration::from_millis(400);
        let exporter = OtlpExporter::new(config, exported.clone(), dropped.clone());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(Arc::clone(&exporter).run(stopped, Duration::from_secs(5)));

        // 100 spans every 5 ms, as the span layer hands them over: asked first when they open
        // (a refused span builds no record and is counted as dropped), pushed when they close.
        // A full batch about every 25 ms.
        let (pushed, refused) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
        let push_for = async |time: Duration| {
            let until = Instant::now() + time;
            while Instant::now() < until {
                for _ in 0..100 {
                    if exporter.accepts() {
                        exporter.push(span("order.execute"));
                    } else {
                        refused.set(refused.get() + 1);
                    }
                }
                pushed.set(pushed.get() + 100);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        push_for(Duration::from_millis(1500)).await;
        let failing_requests = collector.requests.load(Relaxed);
        let (refused, pushed_so_far) = (refused.get(), pushed.get());
        assert!(
            refused > pushed_so_far / 2,
            "{refused} of {pushed_so_far} spans refused at open: while exports pause, spans \
             should build no record"
        );
        let batches = dropped.get() / BATCH as u64;
        assert!(
            batches >= 5,
            "{batches} batches dropped: the test pushed too few spans to show anything"
        );
        assert!(
            (1..=10).contains(&failing_requests),
            "{failing_requests} requests to a failing collector for {batches} dropped batches"
        );
        assert_eq!(exported.get(), 0);

        collector.status.store(200, Relaxed);
        let recovered = Instant::now();
        while exported.get() == 0 && recovered.elapsed() < Duration::from_secs(10) {
            push_for(Duration::from_millis(100)).await;
        }
        assert!(
            exported.get() > 0,
            "nothing exported within 10 s of the collector's recovery (longest pause 400 ms)"
        );
        stop.send(true).unwrap();
        run.await.unwrap();
        assert_eq!(
            exported.get() + dropped.get(),
            pushed.get(),
            "every span pushed is exported or counted as dropped"
        );
        assert_eq!(collector.taken.load(Relaxed) as u64, exported.get());
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
        let bytes = exporter.encode(&[server, span("order.execute")]);
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
