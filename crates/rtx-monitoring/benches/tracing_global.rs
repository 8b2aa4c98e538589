//! The spans of the `tracing` bench through the dispatcher a service really uses: the global
//! default, which `logging::try_init_with_spans` installs. The `tracing` bench installs each
//! subscriber as a scoped default (`with_default`), so that one process can measure several;
//! there every span operation first looks up the thread's dispatcher and the span keeps a
//! reference-counted clone of it, two atomic read-modify-writes per span that the global
//! default does not pay (34 fewer instructions per unsampled span; in time, a tie on the
//! machine of `BENCHMARKS.md`).
//!
//! A global default is set once per process, so this bench runs itself once per subscriber
//! (the process re-runs its own executable with `RTX_BENCH_GLOBAL` naming the case); the
//! OpenTelemetry SDK's spans, which do not go through `tracing`, run in the first process, in
//! the same `cargo bench` run. The sampled case is the engine's: a child span of a request
//! whose caller sent a sampled `traceparent`, under a root sampling ratio of 0, so that the
//! unsampled case (a span with no parent) runs in the same process.
//! Run with `cargo bench -p rtx-monitoring --bench tracing_global`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;

use criterion::Criterion;
use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use rtx_monitoring::logging::{span_log_subscriber, LogConfig, Sink};
use rtx_monitoring::subscriber::SpanLogSubscriber;
use rtx_monitoring::trace::{
    with_remote_parent, FinishedSpan, SpanLayer, SpanSink, TraceContext, TraceParent,
};

/// The environment variable that tells a re-run process which subscriber to install.
const CASE_VARIABLE: &str = "RTX_BENCH_GLOBAL";

/// The criterion group of every case, in this process and the re-run ones.
const GROUP: &str = "span_3_attributes_global_dispatcher";

/// The subscribers measured, each in a process of its own.
const CASES: [&str; 3] = ["macros", "spans", "engine"];

#[derive(Debug)]
struct DiscardOtel;

impl SpanExporter for DiscardOtel {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

struct DiscardOurs;

impl SpanSink for DiscardOurs {
    fn push(&self, span: FinishedSpan) {
        black_box(span);
    }
}

/// A subscriber that keeps nothing: what the `tracing` macros cost by themselves.
struct Nothing;

impl tracing::Subscriber for Nothing {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The span of the `tracing` bench: three attributes, entered and left, closed.
fn span_with_three_attributes() {
    let span = tracing::info_span!(
        "order.execute",
        order.symbol = "EURUSD",
        order.side = "buy",
        order.volume = 0.1
    );
    let _entered = span.enter();
}

/// Spans sampled only under a sampled caller: a root span is never sampled.
fn discarding_spans() -> SpanLayer {
    SpanLayer::new(0.0, Some(Arc::new(DiscardOurs) as Arc<dyn SpanSink>))
}

/// A sampled caller's context, as a request's `traceparent` header carries it.
fn sampled_caller() -> TraceContext {
    TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .expect("a valid traceparent")
        .into()
}

/// The unsampled span (no parent, root ratio 0) and the sampled one (inside a request span
/// opened for a sampled caller) through whatever subscriber is the global default.
fn spans_through_global(c: &mut Criterion, subscriber: &str) {
    let mut group = c.benchmark_group(GROUP);
    group.bench_function(format!("{subscriber}, unsampled"), |b| {
        b.iter(span_with_three_attributes)
    });
    let request = with_remote_parent(Some(sampled_caller()), || {
        tracing::info_span!("POST /v1/orders", otel.kind = "server")
    });
    request.in_scope(|| {
        group.bench_function(format!("{subscriber}, sampled child"), |b| {
            b.iter(span_with_three_attributes)
        });
    });
    group.finish();
}

/// The same span through the OpenTelemetry SDK's API directly, sampled and unsampled.
fn sdk_spans(c: &mut Criterion) {
    fn sdk_span(tracer: &impl Tracer) {
        let mut span = tracer.start("order.execute");
        span.set_attribute(KeyValue::new("order.symbol", "EURUSD"));
        span.set_attribute(KeyValue::new("order.side", "buy"));
        span.set_attribute(KeyValue::new("order.volume", 0.1));
        span.end();
    }
    let mut group = c.benchmark_group(GROUP);
    for (sampler, case) in [
        (Sampler::AlwaysOn, "sampled"),
        (Sampler::AlwaysOff, "unsampled"),
    ] {
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(DiscardOtel)
            .build();
        let tracer = provider.tracer("bench");
        group.bench_function(format!("opentelemetry SDK, {case}"), |b| {
            b.iter(|| sdk_span(&tracer))
        });
        let _ = provider.shutdown();
    }
    group.finish();
}

/// Installs the case's subscriber as the global default and measures it.
fn run_case(c: &mut Criterion, case: &str) {
    match case {
        "macros" => {
            tracing::subscriber::set_global_default(Nothing).expect("the only global default");
            let mut group = c.benchmark_group(GROUP);
            group.bench_function("tracing macros alone (no-op subscriber)", |b| {
                b.iter(span_with_three_attributes)
            });
            group.finish();
        }
        "spans" => {
            tracing::subscriber::set_global_default(SpanLogSubscriber::new(discarding_spans()))
                .expect("the only global default");
            spans_through_global(c, "SpanLogSubscriber");
        }
        "engine" => {
            // The engine's configuration: `info` JSON lines through the real writer thread
            // into a sink that discards them.
            let config = LogConfig {
                sink: Sink::Writer(Box::new(std::io::sink())),
                buffer_bytes: 64 * 1024 * 1024,
                ..LogConfig::new("rtx-engine", "0.1.0")
            };
            let (subscriber, guard) =
                span_log_subscriber(config, None, discarding_spans()).expect("subscriber");
            tracing::subscriber::set_global_default(subscriber).expect("the only global default");
            // Spans and JSON logs in one `SpanLogSubscriber`, as the engine installs them.
            spans_through_global(c, "engine stack");
            guard.flush(std::time::Duration::from_secs(5));
        }
        other => panic!("{CASE_VARIABLE}={other}: not one of {CASES:?}"),
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    match std::env::var(CASE_VARIABLE) {
        Ok(case) => run_case(&mut criterion, &case),
        Err(_) => {
            sdk_spans(&mut criterion);
            let me = std::env::current_exe().expect("the bench's own executable");
            for case in CASES {
                let status = Command::new(&me)
                    .args(std::env::args_os().skip(1))
                    .env(CASE_VARIABLE, case)
                    .status()
                    .expect("the bench re-runs itself");
                assert!(status.success(), "{CASE_VARIABLE}={case} failed: {status}");
            }
        }
    }
    criterion.final_summary();
}
