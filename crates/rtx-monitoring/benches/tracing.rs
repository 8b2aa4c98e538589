//! One span: start, three attributes, end, sampled and handed to a discarding exporter. Ours
//! (a `tracing` span through `SpanLogSubscriber`, and through `SpanLayer` on the
//! `tracing-subscriber` registry), the OpenTelemetry SDK used directly with its simple
//! processor, and `tracing` + `tracing-opentelemetry`, in the same run; plus the unsampled
//! spans, the floor of the `tracing` macros (a subscriber that does nothing), and the same span
//! through the engine's whole stack (spans and JSON logs behind their level filter, as
//! `logging::try_init_with_spans` installs them, and as layers on the registry); the span and
//! engine-stack cases again through the global dispatcher, as a service installs them (see
//! `main`); and the body of one OTLP export request of a full batch, ours against the official
//! types with `prost`.
//! Run with `cargo bench -p rtx-monitoring --bench tracing`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::Criterion;
use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use rtx_monitoring::logging::{span_log_subscriber, subscriber_with, LogConfig, Sink};
use rtx_monitoring::metrics::Counter;
use rtx_monitoring::subscriber::SpanLogSubscriber;
use rtx_monitoring::trace::{
    with_remote_parent, AttributeValue, FinishedSpan, OtlpConfig, OtlpExporter, SpanKind,
    SpanLayer, SpanSink, TraceContext, TraceParent, BATCH,
};
use tracing_subscriber::layer::SubscriberExt;

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

fn span_with_three_attributes() {
    let span = tracing::info_span!(
        "order.execute",
        order.symbol = "EURUSD",
        order.side = "buy",
        order.volume = 0.1
    );
    let _entered = span.enter();
}

/// One bench case: the three-attribute span through `subscriber`, installed for the case.
fn through(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
) {
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function(name, |b| b.iter(span_with_three_attributes));
    });
}

/// The same span through the OpenTelemetry SDK's API directly.
fn sdk_span(tracer: &impl Tracer) {
    let mut span = tracer.start("order.execute");
    span.set_attribute(KeyValue::new("order.symbol", "EURUSD"));
    span.set_attribute(KeyValue::new("order.side", "buy"));
    span.set_attribute(KeyValue::new("order.volume", 0.1));
    span.end();
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_start_3_attributes_end");
    for (ratio, case) in [(1.0, "sampled"), (0.0, "unsampled")] {
        through(
            &mut group,
            &format!("rtx-monitoring SpanLayer, {case}"),
            tracing_subscriber::registry().with(discarding_spans(ratio)),
        );
    }
    // The same span layer inside the purpose-built subscriber instead of on the registry.
    for (ratio, case) in [(1.0, "sampled"), (0.0, "unsampled")] {
        through(
            &mut group,
            &format!("rtx-monitoring SpanLogSubscriber, {case}"),
            SpanLogSubscriber::new(discarding_spans(ratio)),
        );
    }
    // The floor of the `tracing` macros themselves: a subscriber that does nothing.
    through(
        &mut group,
        "tracing macros, subscriber that does nothing, for scale",
        Nothing,
    );
    // The floor of any `tracing-subscriber`-based design: the registry alone, no layer.
    through(
        &mut group,
        "tracing registry alone (no layer), for scale",
        tracing_subscriber::registry(),
    );

    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(DiscardOtel)
        .build();
    let tracer = provider.tracer("bench");
    group.bench_function("opentelemetry SDK, simple processor", |b| {
        b.iter(|| sdk_span(&tracer))
    });

    // The SDK's unsampled span, the peer of ours: a sampler that records nothing.
    let unsampled_provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .with_simple_exporter(DiscardOtel)
        .build();
    let unsampled_tracer = unsampled_provider.tracer("bench");
    group.bench_function("opentelemetry SDK, unsampled (AlwaysOff)", |b| {
        b.iter(|| sdk_span(&unsampled_tracer))
    });
    let _ = unsampled_provider.shutdown();

    through(
        &mut group,
        "tracing + tracing-opentelemetry",
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench-tracing"))),
    );
    group.finish();
    let _ = provider.shutdown();
}

/// The JSON log configuration of the engine stack: `info`, into a discarding sink through the
/// real writer thread.
fn engine_logs() -> LogConfig {
    LogConfig {
        sink: Sink::Writer(Box::new(std::io::sink())),
        buffer_bytes: 64 * 1024 * 1024,
        ..LogConfig::new("rtx-engine", "0.1.0")
    }
}

fn discarding_spans(ratio: f64) -> SpanLayer {
    SpanLayer::new(ratio, Some(Arc::new(DiscardOurs) as Arc<dyn SpanSink>))
}

/// The engine's stack both ways: the subscriber it installs (`span_log_subscriber`: spans and
/// JSON logs in one subscriber), and the same two layers on the `tracing-subscriber` registry
/// (`subscriber_with`), for an application that composes its own stack.
fn spans_through_the_engine_stack(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_start_3_attributes_end");
    for (ratio, case) in [(1.0, "sampled"), (0.0, "unsampled")] {
        let (subscriber, guard) =
            span_log_subscriber(engine_logs(), None, discarding_spans(ratio)).expect("subscriber");
        through(
            &mut group,
            &format!("engine stack (SpanLogSubscriber: spans + JSON logs), {case}"),
            subscriber,
        );
        guard.flush(std::time::Duration::from_secs(5));
        let (subscriber, guard) =
            subscriber_with(engine_logs(), None, discarding_spans(ratio)).expect("subscriber");
        through(
            &mut group,
            &format!("engine stack as layers (registry + SpanLayer + JsonLayer), {case}"),
            subscriber,
        );
        guard.flush(std::time::Duration::from_secs(5));
    }
    group.finish();
}

/// A span as the engine exports an order's `order.execute`: five attributes (one a UUID), an
/// event, a parent.
fn engine_like_span() -> FinishedSpan {
    FinishedSpan {
        trace_id: [0x4b; 16],
        span_id: [0xf0; 8],
        parent_span_id: Some([0x67; 8]),
        parent_is_remote: false,
        flags: 3,
        trace_state: None,
        name: "order.execute".into(),
        kind: SpanKind::Internal,
        start_unix_nanos: 1_764_518_400_000_000_000,
        end_unix_nanos: 1_764_518_400_000_420_000,
        attributes: vec![
            ("order.symbol", AttributeValue::Str("EURUSD".into())),
            ("order.side", AttributeValue::Str("buy".into())),
            ("order.volume", AttributeValue::Float(0.01)),
            ("account.id", AttributeValue::Str("demo-4".into())),
            (
                "order.id",
                AttributeValue::Str("3f2a1c9e-8b7d-4e6f-a5c4-1d2e3f4a5b6c".into()),
            ),
        ],
        events: vec![(1_764_518_400_000_300_000, "order filled".into())],
        error: None,
    }
}

/// The body of one OTLP export request of a full batch: ours, written straight from the spans,
/// against the official `opentelemetry-proto` types built from the same spans and encoded by
/// `prost` (what the exporter did before). Each consumes its batch, as the exporter does.
fn otlp_export_request(c: &mut Criterion) {
    use criterion::BatchSize;
    use prost::Message;

    let mut group = c.benchmark_group(format!("otlp_export_request_{BATCH}_spans"));
    let batch = || vec![engine_like_span(); BATCH];
    let exporter = OtlpExporter::new(
        OtlpConfig::new("http://127.0.0.1:4318", "rtx-engine", "0.1.0"),
        Counter::noop(),
        Counter::noop(),
    );
    group.bench_function("rtx-monitoring, written from the spans", |b| {
        b.iter_batched(
            batch,
            |spans| black_box(exporter.encode(&spans)).len(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("opentelemetry-proto types, prost encode", |b| {
        b.iter_batched(
            batch,
            |spans| black_box(exporter.proto_request(spans).encode_to_vec()).len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The environment variable that tells a re-run of this bench which subscriber to install as
/// the global default.
const GLOBAL_CASE: &str = "RTX_BENCH_GLOBAL";

/// The subscribers measured as the global default, each in a process of its own.
const GLOBAL_CASES: [&str; 3] = ["macros", "spans", "engine"];

/// A sampled caller's context, as a request's `traceparent` header carries it.
fn sampled_caller() -> TraceContext {
    TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .expect("a valid traceparent")
        .into()
}

/// The unsampled span (no parent, root ratio 0) and the sampled one (inside a request span
/// opened for a sampled caller, as the engine's spans are) through the global default.
fn spans_through_global(c: &mut Criterion, subscriber: &str) {
    let mut group = c.benchmark_group("span_3_attributes_global_dispatcher");
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

/// Installs the case's subscriber as the global default and measures it. Roots are never
/// sampled (ratio 0): the sampled case is a child of a sampled caller.
fn global_case(c: &mut Criterion, case: &str) {
    match case {
        "macros" => {
            tracing::subscriber::set_global_default(Nothing).expect("the only global default");
            let mut group = c.benchmark_group("span_3_attributes_global_dispatcher");
            group.bench_function("tracing macros alone (no-op subscriber)", |b| {
                b.iter(span_with_three_attributes)
            });
            group.finish();
        }
        "spans" => {
            tracing::subscriber::set_global_default(SpanLogSubscriber::new(discarding_spans(0.0)))
                .expect("the only global default");
            spans_through_global(c, "SpanLogSubscriber");
        }
        "engine" => {
            let (subscriber, guard) =
                span_log_subscriber(engine_logs(), None, discarding_spans(0.0))
                    .expect("subscriber");
            tracing::subscriber::set_global_default(subscriber).expect("the only global default");
            spans_through_global(c, "engine stack");
            guard.flush(std::time::Duration::from_secs(5));
        }
        other => panic!("{GLOBAL_CASE}={other}: not one of {GLOBAL_CASES:?}"),
    }
}

/// The cases above install each subscriber as a scoped default (`with_default`), so that one
/// process measures several; a service installs one as the global default
/// (`logging::try_init_with_spans`), which a process can do once. With a scoped default every
/// span operation first looks up the thread's dispatcher, and the span keeps a
/// reference-counted clone of it: 34 more instructions per unsampled span than through the
/// global default (in time, a tie on the machine of `BENCHMARKS.md`). So the bench also runs
/// itself once per subscriber with `RTX_BENCH_GLOBAL` naming it, in the same `cargo bench` run.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    match std::env::var(GLOBAL_CASE) {
        Ok(case) => global_case(&mut criterion, &case),
        Err(_) => {
            spans(&mut criterion);
            spans_through_the_engine_stack(&mut criterion);
            otlp_export_request(&mut criterion);
            let me = std::env::current_exe().expect("the bench's own executable");
            for case in GLOBAL_CASES {
                let status = std::process::Command::new(&me)
                    .args(std::env::args_os().skip(1))
                    .env(GLOBAL_CASE, case)
                    .status()
                    .expect("the bench re-runs itself");
                assert!(status.success(), "{GLOBAL_CASE}={case} failed: {status}");
            }
        }
    }
    criterion.final_summary();
}
