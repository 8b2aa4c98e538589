//! Native histograms: one observation into a latency histogram kept with both classic and
//! native buckets, ours against `prometheus-client`'s (`Histogram::new_classic_and_native`, the
//! one Rust peer with native histograms) in the same run, at one and two threads; and the
//! protobuf scrape of a registry of native histograms.
//!
//! `cargo bench -p rtx-monitoring --bench native -- --warm-up-time 1 --measurement-time 3`

// A bench's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prometheus_client::metrics::histogram::{
    Histogram as PcHistogram, NativeHistogramConfig as PcNativeConfig,
};
use rtx_monitoring::metrics::{Format, MetricSpec, NativeConfig, Registry, LATENCY_BUCKETS};

/// Latencies from 50 µs to about 200 ms, spread over many native buckets: a step through 256
/// values so that the bucket search sees varied input, as an order flow gives it.
fn latency(i: u64) -> f64 {
    5e-5 * (1.0 + (i % 256) as f64 * 16.0)
}

fn ours() -> rtx_monitoring::metrics::Histogram {
    Registry::new()
        .histogram(
            MetricSpec::histogram("h_seconds", "h", LATENCY_BUCKETS)
                .with_unit("seconds")
                .with_native(NativeConfig::LATENCY),
        )
        .unwrap()
}

fn peer() -> PcHistogram {
    PcHistogram::new_classic_and_native(
        LATENCY_BUCKETS.iter().copied(),
        PcNativeConfig::new(1.1).max_buckets(160),
    )
}

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("native_histogram_observe");
    let classic = Registry::new()
        .histogram(MetricSpec::histogram("h_seconds", "h", LATENCY_BUCKETS).with_unit("seconds"))
        .unwrap();
    let ours = ours();
    let peer = peer();
    let mut i = 0u64;
    group.bench_function("rtx-monitoring, classic only (for scale)", |b| {
        b.iter(|| {
            i += 1;
            classic.observe(black_box(latency(i)));
        })
    });
    group.bench_function("rtx-monitoring, classic + native", |b| {
        b.iter(|| {
            i += 1;
            ours.observe(black_box(latency(i)));
        })
    });
    group.bench_function("prometheus-client, classic + native", |b| {
        b.iter(|| {
            i += 1;
            peer.observe(black_box(latency(i)));
        })
    });
    group.finish();
}

/// Operations each thread makes per run.
const OPS_PER_THREAD: u64 = 500_000;

/// `threads` threads, started together, each observing `OPS_PER_THREAD` values into the same
/// histogram; returns the wall time of the slowest.
fn run<H: Sync>(threads: usize, handle: &H, observe: fn(&H, f64)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..OPS_PER_THREAD {
                    observe(black_box(handle), latency(i + t as u64 * 7));
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("native_histogram_threads");
    group.sample_size(10);
    let ours = Arc::new(ours());
    let peer = Arc::new(peer());
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64 * OPS_PER_THREAD));
        group.bench_with_input(
            BenchmarkId::new("rtx-monitoring", format!("{threads} thread(s)")),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| run(t, &*ours, |h, v| h.observe(v)))
                        .sum()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("prometheus-client", format!("{threads} thread(s)")),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| run(t, &*peer, |h, v| h.observe(v)))
                        .sum()
                })
            },
        );
    }
    group.finish();
}

/// A scrape of 200 native latency histograms (every one observed 1,000 times) as protobuf,
/// and the same registry as text (classic buckets only), for the cost of the native part.
fn scrape(c: &mut Criterion) {
    let registry = Registry::new();
    for f in 0..20 {
        let family: rtx_monitoring::metrics::Dynamic<rtx_monitoring::metrics::Histogram> = registry
            .dynamic(
                MetricSpec::histogram(&format!("h{f}_seconds"), "h", LATENCY_BUCKETS)
                    .with_unit("seconds")
                    .with_labels(&["series"])
                    .with_native(NativeConfig::LATENCY),
                &[None],
            )
            .unwrap();
        for s in 0..10 {
            let h = family.get(&[&format!("s{s}")]);
            for i in 0..1_000 {
                h.observe(latency(i));
            }
        }
    }
    let mut group = c.benchmark_group("native_histogram_scrape_200_series");
    let mut out = Vec::with_capacity(1 << 20);
    for (name, format) in [
        ("protobuf (classic + native)", Format::Protobuf),
        ("text (classic)", Format::PrometheusText),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                registry.encode(format, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, one_thread, scaling, scrape);
criterion_main!(benches);
