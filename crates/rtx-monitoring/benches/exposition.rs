//! The exposition formats and compressions of a 10,000-series scrape, in the same run:
//! protobuf against the text formats (ours, and `prometheus-client`'s protobuf encoder as the
//! peer), and zstd against gzip on the bodies `/metrics` serves. Sizes are printed once per
//! case. `BENCHMARKS.md` ("Exposition formats") holds the figures; run with
//! `cargo bench -p rtx-monitoring --bench exposition`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family as PcFamily;
use prost::Message;
use rtx_monitoring::metrics::{Counter, Dense, Format, MetricSpec, Registry};

/// The shape of the `metrics` bench's scrape: 40 counter families of 250 series each (label
/// `a` × `b`, 25 × 10), every series non-zero.
const FAMILIES: usize = 40;
const A_VALUES: usize = 25;
const B_VALUES: usize = 10;

fn label_values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

fn family_names() -> Vec<String> {
    (0..FAMILIES)
        .map(|f| format!("bench_family_{f:02}_total"))
        .collect()
}

fn ours() -> Registry {
    let a = label_values("alpha-", A_VALUES);
    let b = label_values("beta-", B_VALUES);
    let a_ref: Vec<&str> = a.iter().map(String::as_str).collect();
    let b_ref: Vec<&str> = b.iter().map(String::as_str).collect();
    let registry = Registry::new();
    for name in family_names() {
        let family: Dense<Counter, 2> = registry
            .dense(
                MetricSpec::counter(&name, "A benchmark family.").with_labels(&["a", "b"]),
                [&a_ref, &b_ref],
            )
            .expect("family");
        for i in 0..A_VALUES {
            for j in 0..B_VALUES {
                family.get([i, j]).inc_by((i * j + 1) as u64);
            }
        }
    }
    registry
}

fn prometheus_client_registry() -> prometheus_client::registry::Registry {
    let a = label_values("alpha-", A_VALUES);
    let b = label_values("beta-", B_VALUES);
    let mut registry = prometheus_client::registry::Registry::default();
    for name in family_names() {
        let family = PcFamily::<Vec<(String, String)>, PcCounter>::default();
        for (i, av) in a.iter().enumerate() {
            for (j, bv) in b.iter().enumerate() {
                family
                    .get_or_create(&vec![
                        ("a".to_owned(), av.clone()),
                        ("b".to_owned(), bv.clone()),
                    ])
                    .inc_by((i * j + 1) as u64);
            }
        }
        registry.register(
            name.trim_end_matches("_total"),
            "A benchmark family.",
            family,
        );
    }
    registry
}

fn encode(registry: &Registry, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    registry.encode(format, &mut out);
    out
}

fn formats(c: &mut Criterion) {
    let mut group = c.benchmark_group("exposition_10000_series");
    let registry = ours();
    for (case, format) in [
        ("text", Format::PrometheusText),
        ("openmetrics", Format::OpenMetrics),
        ("protobuf", Format::Protobuf),
    ] {
        println!("bytes: {case}: {}", encode(&registry, format).len());
        let mut out = Vec::new();
        group.bench_function(case, |b| {
            b.iter(|| {
                out.clear();
                registry.encode(format, &mut out);
                black_box(out.len())
            })
        });
    }

    // The peer's protobuf: its `MetricFamily` messages, written length-delimited as a
    // scrape would be.
    let peer = prometheus_client_registry();
    let peer_protobuf = |out: &mut Vec<u8>| {
        let families =
            prometheus_client::encoding::prometheus_protobuf::encode(&peer).expect("encode");
        for family in families {
            family.encode_length_delimited(out).expect("a Vec grows");
        }
    };
    let mut out = Vec::new();
    peer_protobuf(&mut out);
    println!("bytes: prometheus-client protobuf: {}", out.len());
    group.bench_function("prometheus-client protobuf", |b| {
        b.iter(|| {
            out.clear();
            peer_protobuf(&mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

/// The calls the endpoint makes for each coding, at the level it uses (the fastest of each).
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(body).expect("a Vec grows");
    encoder.finish().expect("a Vec grows")
}

fn zstd(body: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(body, 1).expect("a Vec grows")
}

fn compression(c: &mut Criterion) {
    let mut group = c.benchmark_group("compression_10000_series");
    let registry = ours();
    for (case, format) in [
        ("text", Format::PrometheusText),
        ("protobuf", Format::Protobuf),
    ] {
        let body = encode(&registry, format);
        type Compress = fn(&[u8]) -> Vec<u8>;
        for (coding, compress) in [("gzip", gzip as Compress), ("zstd", zstd as Compress)] {
            println!(
                "bytes: {case} {coding}: {} of {}",
                compress(&body).len(),
                body.len()
            );
            group.bench_function(format!("{case}/{coding}"), |b| {
                b.iter(|| black_box(compress(black_box(&body)).len()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, formats, compression);
criterion_main!(benches);
