//! Hot paths of the metrics layer, side by side with `prometheus`, `prometheus-client` and
//! `metrics` (+ `metrics-exporter-prometheus`) in the same run. `BENCHMARKS.md` holds the
//! figures and the ratios; run with `cargo bench -p rtx-monitoring --bench metrics`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars as PcHistogramWithExemplars;
use prometheus_client::metrics::family::Family as PcFamily;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use rtx_monitoring::metrics::{
    set_exemplar_source, Counter, Dense, Format, Histogram, MetricSpec, Registry, TraceIds,
    LATENCY_BUCKETS,
};

const SYMBOLS: &[&str] = &[
    "EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY",
    "GBPJPY",
];
const LPS: &[&str] = &["OANDA", "LMAX", "CURRENEX"];
const OPERATIONS: &[&str] = &["quote", "order", "heartbeat"];

fn metrics_recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .expect("buckets")
        .build_recorder()
}

fn counter_resolved(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_inc_resolved");
    let ours = Registry::new()
        .counter(MetricSpec::counter("c_total", "c"))
        .expect("counter");
    group.bench_function("rtx-monitoring", |b| b.iter(|| black_box(&ours).inc()));
    let prom = prometheus::IntCounter::new("c_total", "c").expect("counter");
    group.bench_function("prometheus", |b| b.iter(|| black_box(&prom).inc()));
    let pc = PcCounter::<u64>::default();
    group.bench_function("prometheus-client", |b| b.iter(|| black_box(&pc).inc()));
    let recorder = metrics_recorder();
    let m = metrics::with_local_recorder(&recorder, || metrics::counter!("c_total"));
    group.bench_function("metrics", |b| b.iter(|| black_box(&m).increment(1)));
    let bare = AtomicU64::new(0);
    group.bench_function("bare AtomicU64::fetch_add", |b| {
        b.iter(|| black_box(&bare).fetch_add(1, Ordering::Relaxed))
    });
    group.finish();
}

fn counter_two_labels(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_2_labels_per_call");
    let registry = Registry::new();
    let ours: Dense<Counter, 2> = registry
        .dense(
            MetricSpec::counter("q_total", "q").with_labels(&["symbol", "lp"]),
            [SYMBOLS, LPS],
        )
        .expect("family");
    let (sym, lp) = (3usize, 1usize);
    group.bench_function("rtx-monitoring (configured ids)", |b| {
        b.iter(|| ours.get([black_box(sym), black_box(lp)]).inc())
    });
    let symbols = rtx_monitoring::metrics::ConfiguredValues::new(SYMBOLS);
    let lps = rtx_monitoring::metrics::ConfiguredValues::new(LPS);
    group.bench_function("rtx-monitoring (names looked up)", |b| {
        b.iter(|| {
            let s = symbols.id(black_box("USDCHF")).unwrap_or(0);
            let l = lps.id(black_box("LMAX")).unwrap_or(0);
            ours.get([usize::from(s), usize::from(l)]).inc();
        })
    });
    let prom =
        prometheus::IntCounterVec::new(prometheus::Opts::new("q_total", "q"), &["symbol", "lp"])
            .expect("vec");
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            prom.with_label_values(&[black_box("USDCHF"), black_box("LMAX")])
                .inc()
        })
    });
    let pc = PcFamily::<[(&'static str, &'static str); 2], PcCounter>::default();
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            pc.get_or_create(&[("symbol", black_box("USDCHF")), ("lp", black_box("LMAX"))])
                .inc()
        })
    });
    let recorder = metrics_recorder();
    group.bench_function("metrics", |b| {
        metrics::with_local_recorder(&recorder, || {
            b.iter(|| metrics::counter!("q_total", "symbol" => black_box("USDCHF"), "lp" => black_box("LMAX")).increment(1))
        })
    });
    group.finish();
}

fn histogram_resolved(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram_observe_resolved");
    let ours = Registry::new()
        .histogram(MetricSpec::histogram("h_seconds", "h", LATENCY_BUCKETS))
        .expect("histogram");
    let mut v = 0.0f64;
    let mut next = move || {
        v = if v > 2.0 { 0.0001 } else { v * 1.7 + 0.0001 };
        v
    };
    group.bench_function("rtx-monitoring", |b| {
        b.iter(|| ours.observe(black_box(next())))
    });
    let prom = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h_seconds", "h").buckets(LATENCY_BUCKETS.to_vec()),
    )
    .expect("histogram");
    group.bench_function("prometheus", |b| b.iter(|| prom.observe(black_box(next()))));
    let pc = PcHistogram::new(LATENCY_BUCKETS.iter().copied());
    group.bench_function("prometheus-client", |b| {
        b.iter(|| pc.observe(black_box(next())))
    });
    let recorder = metrics_recorder();
    let m = metrics::with_local_recorder(&recorder, || metrics::histogram!("h_seconds"));
    group.bench_function("metrics", |b| b.iter(|| m.record(black_box(next()))));
    group.finish();
}

fn histogram_three_labels(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram_3_labels_per_call");
    let registry = Registry::new();
    let ours: Dense<Histogram, 3> = registry
        .dense(
            MetricSpec::histogram("l_seconds", "l", LATENCY_BUCKETS).with_labels(&[
                "lp",
                "operation",
                "symbol",
            ]),
            [LPS, OPERATIONS, SYMBOLS],
        )
        .expect("family");
    group.bench_function("rtx-monitoring (configured ids)", |b| {
        b.iter(|| {
            ours.get([black_box(1), black_box(1), black_box(3)])
                .observe(black_box(0.0042))
        })
    });
    let prom = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("l_seconds", "l").buckets(LATENCY_BUCKETS.to_vec()),
        &["lp", "operation", "symbol"],
    )
    .expect("vec");
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            prom.with_label_values(&[black_box("LMAX"), black_box("order"), black_box("USDCHF")])
                .observe(black_box(0.0042))
        })
    });
    let pc =
        PcFamily::<[(&'static str, &'static str); 3], PcHistogram>::new_with_constructor(|| {
            PcHistogram::new(LATENCY_BUCKETS.iter().copied())
        });
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            pc.get_or_create(&[
                ("lp", black_box("LMAX")),
                ("operation", black_box("order")),
                ("symbol", black_box("USDCHF")),
            ])
            .observe(black_box(0.0042))
        })
    });
    let recorder = metrics_recorder();
    group.bench_function("metrics", |b| {
        metrics::with_local_recorder(&recorder, || {
            b.iter(|| {
                metrics::histogram!("l_seconds", "lp" => black_box("LMAX"), "operation" => black_box("order"), "symbol" => black_box("USDCHF"))
                    .record(black_box(0.0042))
            })
        })
    });
    group.finish();
}

/// Runs `op` `iters` times on each of `threads` threads at once; returns the wall time.
fn contended<F: Fn() + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    op();
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

/// Per-iteration time where one iteration is one operation on *each* thread: two threads that
/// scale perfectly show the same time as one.
fn scaling<F: Fn() + Sync>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    op: F,
) {
    for threads in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new(name, format!("{threads} thread(s)")),
            &threads,
            |b, &t| b.iter_custom(|iters| contended(t, iters, &op)),
        );
    }
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("same_metric_from_2_threads");
    group.measurement_time(Duration::from_secs(3));
    let ours = Registry::new()
        .counter(MetricSpec::counter("c_total", "c"))
        .expect("counter");
    scaling(&mut group, "counter/rtx-monitoring", || ours.inc());
    let prom = prometheus::IntCounter::new("c_total", "c").expect("counter");
    scaling(&mut group, "counter/prometheus", || prom.inc());
    let pc = PcCounter::<u64>::default();
    scaling(&mut group, "counter/prometheus-client", || {
        pc.inc();
    });
    let recorder = metrics_recorder();
    let m = metrics::with_local_recorder(&recorder, || metrics::counter!("c_total"));
    scaling(&mut group, "counter/metrics", || m.increment(1));
    let hist = Registry::new()
        .histogram(MetricSpec::histogram("h_seconds", "h", LATENCY_BUCKETS))
        .expect("histogram");
    scaling(&mut group, "histogram/rtx-monitoring", || {
        hist.observe(0.0042)
    });
    let prom_h = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h_seconds", "h").buckets(LATENCY_BUCKETS.to_vec()),
    )
    .expect("histogram");
    scaling(&mut group, "histogram/prometheus", || {
        prom_h.observe(0.0042)
    });
    let pc_h = PcHistogram::new(LATENCY_BUCKETS.iter().copied());
    scaling(&mut group, "histogram/prometheus-client", || {
        pc_h.observe(0.0042)
    });
    let m_h = metrics::with_local_recorder(&recorder, || metrics::histogram!("h_seconds"));
    scaling(&mut group, "histogram/metrics", || m_h.record(0.0042));
    group.finish();
}

/// Operations each spawned thread makes in `spawned_threads`.
const OPS_PER_THREAD: u64 = 1_000_000;

/// Spawns `threads` threads that each run `op` `OPS_PER_THREAD` times on their own clone of
/// `handle` (an `Arc`, as an application shares a handle with the threads it spawns); returns
/// the wall time from the first spawn to the last join.
fn spawned<H: Send + Sync + 'static>(threads: usize, handle: &Arc<H>, op: fn(&H)) -> Duration {
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let handle = Arc::clone(handle);
            std::thread::spawn(move || {
                for _ in 0..OPS_PER_THREAD {
                    op(black_box(&handle));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    start.elapsed()
}

fn spawned_case<H: Send + Sync + 'static>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    handle: H,
    op: fn(&H),
) {
    let handle = Arc::new(handle);
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64 * OPS_PER_THREAD));
        group.bench_with_input(
            BenchmarkId::new(name, format!("{threads} thread(s)")),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| (0..iters).map(|_| spawned(t, &handle, op)).sum());
            },
        );
    }
}

/// Handles shared through an `Arc` with threads spawned for the run, a fixed number of
/// operations per thread: throughput, where `same_metric_from_2_threads` times one operation
/// per thread through a closure in threads that already run.
fn spawned_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawned_threads_1m_ops_each");
    group.sample_size(10);
    let ours = Registry::new()
        .counter(MetricSpec::counter("c_total", "c"))
        .expect("counter");
    spawned_case(&mut group, "counter/rtx-monitoring", ours, Counter::inc);
    let prom = prometheus::IntCounter::new("c_total", "c").expect("counter");
    spawned_case(&mut group, "counter/prometheus", prom, |c| c.inc());
    spawned_case(
        &mut group,
        "counter/prometheus-client",
        PcCounter::<u64>::default(),
        |c| {
            c.inc();
        },
    );
    let recorder = metrics_recorder();
    let m = metrics::with_local_recorder(&recorder, || metrics::counter!("c_total"));
    spawned_case(&mut group, "counter/metrics", m, |c| c.increment(1));
    let hist = Registry::new()
        .histogram(MetricSpec::histogram("h_seconds", "h", LATENCY_BUCKETS))
        .expect("histogram");
    spawned_case(&mut group, "histogram/rtx-monitoring", hist, |h| {
        h.observe(0.0042)
    });
    let prom_h = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h_seconds", "h").buckets(LATENCY_BUCKETS.to_vec()),
    )
    .expect("histogram");
    spawned_case(&mut group, "histogram/prometheus", prom_h, |h| {
        h.observe(0.0042)
    });
    let pc_h = PcHistogram::new(LATENCY_BUCKETS.iter().copied());
    spawned_case(&mut group, "histogram/prometheus-client", pc_h, |h| {
        h.observe(0.0042)
    });
    let m_h = metrics::with_local_recorder(&recorder, || metrics::histogram!("h_seconds"));
    spawned_case(&mut group, "histogram/metrics", m_h, |h| h.record(0.0042));
    group.finish();
}

/// Whether the benchmark's exemplar source reports a sampled span: the tracing layer's source
/// answers from the current span, this one from a switch the cases set.
static IN_SAMPLED_SPAN: AtomicBool = AtomicBool::new(false);

fn fixed_trace() -> Option<TraceIds> {
    IN_SAMPLED_SPAN.load(Ordering::Relaxed).then_some(TraceIds {
        trace_id: [
            0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80,
            0x31, 0x9c,
        ],
        span_id: [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31],
    })
}

/// A histogram observation inside a sampled span (so with an exemplar offered every time)
/// against a plain one, on one and two threads.
fn observe_in_sampled_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram_observe_in_sampled_span");
    group.measurement_time(Duration::from_secs(3));
    set_exemplar_source(fixed_trace);
    let registry = Registry::new();
    let plain = registry
        .histogram(MetricSpec::histogram("p_seconds", "p", LATENCY_BUCKETS))
        .expect("histogram");
    let linked = registry
        .histogram(MetricSpec::histogram("e_seconds", "e", LATENCY_BUCKETS).with_exemplars())
        .expect("histogram");
    IN_SAMPLED_SPAN.store(false, Ordering::Relaxed);
    scaling(&mut group, "rtx-monitoring/plain", || plain.observe(0.0042));
    scaling(&mut group, "rtx-monitoring/exemplars, no span", || {
        linked.observe(0.0042)
    });
    IN_SAMPLED_SPAN.store(true, Ordering::Relaxed);
    scaling(&mut group, "rtx-monitoring/exemplars, sampled span", || {
        linked.observe(0.0042)
    });
    IN_SAMPLED_SPAN.store(false, Ordering::Relaxed);
    // The peer takes the exemplar's labels from the caller; a fixed label set (no formatting of
    // the ids) and no timestamp is the least it can be asked to do.
    type Ids = [(&'static str, &'static str); 2];
    let pc_plain = PcHistogram::new(LATENCY_BUCKETS.iter().copied());
    scaling(&mut group, "prometheus-client/plain", || {
        pc_plain.observe(0.0042)
    });
    let pc = PcHistogramWithExemplars::<Ids>::new(LATENCY_BUCKETS.iter().copied());
    scaling(
        &mut group,
        "prometheus-client/exemplars, sampled span",
        || {
            pc.observe(
                0.0042,
                Some([
                    ("trace_id", "0af7651916cd43dd8448eb211c80319c"),
                    ("span_id", "b7ad6b7169203331"),
                ]),
                None,
            )
        },
    );
    group.finish();
}

/// 40 counter families of 250 series each (label `a` × `b`, 25 × 10), every series non-zero.
const FAMILIES: usize = 40;
const A_VALUES: usize = 25;
const B_VALUES: usize = 10;

fn label_values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

fn scrape(c: &mut Criterion) {
    let mut group = c.benchmark_group("scrape_40_families_10000_series_text");
    let a = label_values("alpha-", A_VALUES);
    let b_vals = label_values("beta-", B_VALUES);
    let a_ref: Vec<&str> = a.iter().map(String::as_str).collect();
    let b_ref: Vec<&str> = b_vals.iter().map(String::as_str).collect();
    let names: Vec<String> = (0..FAMILIES)
        .map(|f| format!("bench_family_{f:02}_total"))
        .collect();

    let ours = Registry::new();
    for name in &names {
        let family: Dense<Counter, 2> = ours
            .dense(
                MetricSpec::counter(name, "A benchmark family.").with_labels(&["a", "b"]),
                [&a_ref, &b_ref],
            )
            .expect("family");
        for i in 0..A_VALUES {
            for j in 0..B_VALUES {
                family.get([i, j]).inc_by((i * j + 1) as u64);
            }
        }
    }
    let mut out = Vec::new();
    ours.encode(Format::PrometheusText, &mut out);
    let ours_bytes = out.len();
    group.bench_function("rtx-monitoring", |b| {
        b.iter(|| {
            out.clear();
            ours.encode(Format::PrometheusText, &mut out);
            black_box(out.len())
        })
    });

    let prom_registry = prometheus::Registry::new();
    for name in &names {
        let vec = prometheus::IntCounterVec::new(
            prometheus::Opts::new(name.as_str(), "A benchmark family."),
            &["a", "b"],
        )
        .expect("vec");
        for (i, av) in a.iter().enumerate() {
            for (j, bv) in b_vals.iter().enumerate() {
                vec.with_label_values(&[av.as_str(), bv.as_str()])
                    .inc_by((i * j + 1) as u64);
            }
        }
        prom_registry.register(Box::new(vec)).expect("register");
    }
    let mut prom_out = Vec::new();
    use prometheus::Encoder;
    prometheus::TextEncoder::new()
        .encode(&prom_registry.gather(), &mut prom_out)
        .expect("encode");
    let prom_bytes = prom_out.len();
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            prom_out.clear();
            prometheus::TextEncoder::new()
                .encode(&prom_registry.gather(), &mut prom_out)
                .expect("encode");
            black_box(prom_out.len())
        })
    });

    let mut pc_registry = prometheus_client::registry::Registry::default();
    for name in &names {
        let family = PcFamily::<Vec<(String, String)>, PcCounter>::default();
        for (i, av) in a.iter().enumerate() {
            for (j, bv) in b_vals.iter().enumerate() {
                family
                    .get_or_create(&vec![
                        ("a".to_owned(), av.clone()),
                        ("b".to_owned(), bv.clone()),
                    ])
                    .inc_by((i * j + 1) as u64);
            }
        }
        pc_registry.register(
            name.trim_end_matches("_total"),
            "A benchmark family.",
            family,
        );
    }
    let mut pc_out = String::new();
    prometheus_client::encoding::text::encode(&mut pc_out, &pc_registry).expect("encode");
    let pc_bytes = pc_out.len();
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            pc_out.clear();
            prometheus_client::encoding::text::encode(&mut pc_out, &pc_registry).expect("encode");
            black_box(pc_out.len())
        })
    });

    let recorder = metrics_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for name in &names {
            for (i, av) in a.iter().enumerate() {
                for (j, bv) in b_vals.iter().enumerate() {
                    metrics::counter!(name.clone(), "a" => av.clone(), "b" => bv.clone())
                        .increment((i * j + 1) as u64);
                }
            }
        }
    });
    let metrics_bytes = handle.render().len();
    group.bench_function("metrics", |b| b.iter(|| black_box(handle.render().len())));
    group.finish();
    println!(
        "exposition bytes: rtx-monitoring {ours_bytes}, prometheus {prom_bytes}, prometheus-client {pc_bytes}, metrics {metrics_bytes}"
    );
}

/// Registers the scrape case's 40 families in `registry`; returns their handles.
fn scrape_families(registry: &Registry, a: &[&str], b: &[&str]) -> Vec<Dense<Counter, 2>> {
    (0..FAMILIES)
        .map(|f| {
            registry
                .dense(
                    MetricSpec::counter(
                        &format!("bench_family_{f:02}_total"),
                        "A benchmark family.",
                    )
                    .with_labels(&["a", "b"]),
                    [a, b],
                )
                .expect("family")
        })
        .collect()
}

/// Keeps `threads` threads alive that have each run `record` once, until the returned guard is
/// dropped: the scrape is measured while they hold their slots, as a server's workers do.
struct LiveThreads {
    release: Arc<Barrier>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LiveThreads {
    fn start(threads: usize, record: Arc<dyn Fn() + Send + Sync>) -> Self {
        let recorded = Arc::new(Barrier::new(threads + 1));
        let release = Arc::new(Barrier::new(threads + 1));
        let handles = (0..threads)
            .map(|_| {
                let (record, recorded, release) = (
                    Arc::clone(&record),
                    Arc::clone(&recorded),
                    Arc::clone(&release),
                );
                std::thread::spawn(move || {
                    record();
                    recorded.wait();
                    release.wait();
                })
            })
            .collect();
        recorded.wait();
        Self {
            release,
            threads: handles,
        }
    }
}

impl Drop for LiveThreads {
    fn drop(&mut self) {
        self.release.wait();
        for t in self.threads.drain(..) {
            t.join().expect("thread");
        }
    }
}

/// The scrape after N live threads have each recorded into every series (threads may outnumber
/// the cores: they record, then wait), against prometheus-client, the fastest peer to scrape.
fn scrape_after_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("scrape_40_families_10000_series_text_after_live_threads");
    let a = label_values("alpha-", A_VALUES);
    let b_vals = label_values("beta-", B_VALUES);
    let a_ref: Vec<&str> = a.iter().map(String::as_str).collect();
    let b_ref: Vec<&str> = b_vals.iter().map(String::as_str).collect();
    for threads in [1usize, 32, 64, 128] {
        let ours = Registry::new();
        let families = Arc::new(scrape_families(&ours, &a_ref, &b_ref));
        let live = LiveThreads::start(
            threads,
            Arc::new(move || {
                for family in families.iter() {
                    for i in 0..A_VALUES {
                        for j in 0..B_VALUES {
                            family.get([i, j]).inc_by((i * j + 1) as u64);
                        }
                    }
                }
            }),
        );
        println!(
            "after {threads} live thread(s): cells hold {} KiB",
            ours.cell_bytes() / 1024
        );
        let mut out = Vec::new();
        group.bench_function(BenchmarkId::new("rtx-monitoring", threads), |b| {
            b.iter(|| {
                out.clear();
                ours.encode(Format::PrometheusText, &mut out);
                black_box(out.len())
            })
        });
        drop(live);

        let mut pc_registry = prometheus_client::registry::Registry::default();
        let mut pc_families = Vec::new();
        for f in 0..FAMILIES {
            let family = PcFamily::<Vec<(String, String)>, PcCounter>::default();
            pc_registry.register(
                format!("bench_family_{f:02}"),
                "A benchmark family.",
                family.clone(),
            );
            pc_families.push(family);
        }
        let labels: Arc<Vec<Vec<(String, String)>>> = Arc::new(
            a.iter()
                .flat_map(|av| {
                    b_vals.iter().map(move |bv| {
                        vec![("a".to_owned(), av.clone()), ("b".to_owned(), bv.clone())]
                    })
                })
                .collect(),
        );
        let pc_families = Arc::new(pc_families);
        let live = LiveThreads::start(
            threads,
            Arc::new(move || {
                for family in pc_families.iter() {
                    for (k, set) in labels.iter().enumerate() {
                        family.get_or_create(set).inc_by(k as u64 + 1);
                    }
                }
            }),
        );
        let mut pc_out = String::new();
        group.bench_function(BenchmarkId::new("prometheus-client", threads), |b| {
            b.iter(|| {
                pc_out.clear();
                prometheus_client::encoding::text::encode(&mut pc_out, &pc_registry)
                    .expect("encode");
                black_box(pc_out.len())
            })
        });
        drop(live);
    }
    group.finish();
}

criterion_group!(
    benches,
    counter_resolved,
    counter_two_labels,
    histogram_resolved,
    histogram_three_labels,
    two_threads,
    spawned_threads,
    observe_in_sampled_span,
    scrape,
    scrape_after_threads
);
criterion_main!(benches);
