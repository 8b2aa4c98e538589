//! One INFO event with a message and five fields, formatted to JSON into a discarding writer:
//! our layer against `tracing-subscriber`'s JSON formatter, in the same run. Also a disabled
//! event and the whole pipeline (format, buffer, writer thread) to `/dev/null`.
//! And the same event through the engine's whole subscriber (`SpanLogSubscriber`, as
//! `logging::try_init_with_spans` installs it) and through the same span and JSON layers on the
//! `tracing-subscriber` registry, outside any span and inside a sampled one.
//! Run with `cargo bench -p rtx-monitoring --bench logging`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rtx_monitoring::logging::{
    layer, parse_filter, span_log_subscriber, subscriber_with, LogConfig, Sink,
};
use rtx_monitoring::trace::{FinishedSpan, SpanLayer, SpanSink};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

fn event() {
    tracing::info!(
        order_id = "01a20c17-63f4-7471",
        symbol = "EURUSD",
        qty = 0.5,
        price = 1.08505,
        latency_us = 842u64,
        "order filled"
    );
}

fn ours(
    sink: Sink,
) -> (
    impl tracing::Subscriber + Send + Sync,
    rtx_monitoring::logging::LogGuard,
) {
    let config = LogConfig {
        sink,
        buffer_bytes: 64 * 1024 * 1024,
        ..LogConfig::new("rtx-engine", "0.1.0")
    };
    let (json, guard) = layer(config, None).expect("layer");
    (
        tracing_subscriber::registry()
            .with(json.with_filter(parse_filter("info").expect("filter"))),
        guard,
    )
}

fn format_one_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_info_event_5_fields");
    let (subscriber, guard) = ours(Sink::Writer(Box::new(std::io::sink())));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("rtx-monitoring JsonLayer", |b| b.iter(event));
        // Engine events usually sit inside a span whose fields are copied into each line.
        let span = tracing::info_span!("order", account = "demo-4", route = "a_book");
        span.in_scope(|| {
            group.bench_function(
                "rtx-monitoring JsonLayer, inside a span with 2 fields",
                |b| b.iter(event),
            );
        });
        group.bench_function("rtx-monitoring, disabled level (debug!)", |b| {
            b.iter(|| tracing::debug!(order_id = black_box("o-1"), "not written"))
        });
    });
    guard.flush(Duration::from_secs(5));
    let config = LogConfig {
        sink: Sink::Writer(Box::new(std::io::sink())),
        buffer_bytes: 64 * 1024 * 1024,
        ..LogConfig::new("rtx-engine", "0.1.0")
    };
    let (json, guard) = layer(config, None).expect("layer");
    let unfiltered = tracing_subscriber::registry().with(json);
    tracing::subscriber::with_default(unfiltered, || {
        group.bench_function("rtx-monitoring JsonLayer, no per-layer filter", |b| {
            b.iter(event)
        });
    });
    guard.flush(Duration::from_secs(5));
    let peer = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(peer, || {
        group.bench_function("tracing-subscriber fmt().json()", |b| b.iter(event));
    });
    group.finish();
}

struct DiscardSpans;

impl SpanSink for DiscardSpans {
    fn push(&self, span: FinishedSpan) {
        black_box(span);
    }
}

/// One event outside any span, then inside the request span as the HTTP middleware opens it,
/// sampled: the line carries its trace_id, span_id and fields, and the span keeps the event as
/// a span event (up to 32 per span, so the span is reopened every 32 events).
fn engine_stack_cases(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    stack: &str,
) {
    group.bench_function(format!("{stack}, outside any span"), |b| b.iter(event));
    group.bench_function(
        format!("{stack}, inside a sampled span with 2 fields"),
        |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let span = tracing::info_span!("order", account = "demo-4", route = "a_book");
                    let _entered = span.enter();
                    let batch = (iters - done).min(32);
                    let start = Instant::now();
                    for _ in 0..batch {
                        event();
                    }
                    elapsed += start.elapsed();
                    done += batch;
                }
                elapsed
            })
        },
    );
}

fn engine_logs() -> LogConfig {
    LogConfig {
        sink: Sink::Writer(Box::new(std::io::sink())),
        buffer_bytes: 64 * 1024 * 1024,
        ..LogConfig::new("rtx-engine", "0.1.0")
    }
}

/// The engine's stack both ways: the subscriber it installs (`span_log_subscriber`), and the
/// same span and JSON layers on the `tracing-subscriber` registry (`subscriber_with`).
fn through_the_engine_stack(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_info_event_5_fields");
    let spans = || SpanLayer::new(1.0, Some(std::sync::Arc::new(DiscardSpans) as _));
    let (subscriber, guard) =
        span_log_subscriber(engine_logs(), None, spans()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        engine_stack_cases(&mut group, "engine stack (SpanLogSubscriber)");
    });
    guard.flush(Duration::from_secs(5));
    let (subscriber, guard) = subscriber_with(engine_logs(), None, spans()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        engine_stack_cases(
            &mut group,
            "engine stack as layers (registry + SpanLayer + JsonLayer)",
        );
    });
    guard.flush(Duration::from_secs(5));
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_pipeline_to_dev_null");
    group.throughput(criterion::Throughput::Elements(1));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let (subscriber, guard) = ours(Sink::Writer(Box::new(std::io::BufWriter::with_capacity(
        1 << 20,
        file,
    ))));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("rtx-monitoring, formatted and written", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    event();
                }
                // Count the time until the writer thread has written every line.
                guard.flush(Duration::from_secs(60));
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    format_one_event,
    through_the_engine_stack,
    pipeline
);
criterion_main!(benches);
