//! `/metrics` over real HTTP on a loopback port: the protobuf exposition for the header
//! Prometheus sends with native histograms enabled (read back with the reference types),
//! zstd and gzip bodies that decompress to the uncompressed exposition, `name[]` selection, and
//! concurrent identical scrapes that share one encoding without ever serving an old one; and a
//! real Prometheus 2.42 with native histograms enabled reading that protobuf.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::{
    MetricFamily, MetricType,
};
use prost::Message;
use rtx_monitoring::http::MetricsEndpoint;
use rtx_monitoring::metrics::{Counter, Gauge, MetricSpec, Registry, TraceIds};
use rtx_testkit::{async_client, blocking_client, get_json, Poll, Prometheus, ScrapeMode};

/// The `Accept` header of Prometheus 2.42 with `--enable-feature=native-histograms`, as its
/// binary carries it.
const PROMETHEUS_NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

struct Served {
    addr: SocketAddr,
    endpoint: MetricsEndpoint,
    orders: Counter,
}

/// A registry with a counter (labelled), a gauge and a histogram with an exemplar, served on
/// 127.0.0.1 at a port the system picks.
async fn serve(registry: Registry) -> Served {
    serve_recording(registry, Arc::default()).await
}

/// As [`serve`], also recording the `Content-Type` of every response in `content_types`.
async fn serve_recording(registry: Registry, content_types: Arc<Mutex<Vec<String>>>) -> Served {
    let orders = registry
        .dense::<Counter, 1>(
            MetricSpec::counter("shop_orders_total", "Orders.").with_labels(&["side"]),
            [&["buy", "sell"]],
        )
        .unwrap();
    orders.get([0]).inc_by(3);
    let open: Gauge = registry
        .gauge(MetricSpec::gauge("shop_open_positions", "Open positions."))
        .unwrap();
    open.set(2.0);
    let latency = registry
        .histogram(
            MetricSpec::histogram("shop_latency_seconds", "Latency.", &[0.01, 0.1])
                .with_unit("seconds")
                .with_exemplars(),
        )
        .unwrap();
    latency.observe_with_exemplar(
        0.05,
        TraceIds {
            trace_id: [0x11; 16],
            span_id: [0x22; 8],
        },
    );
    let endpoint = MetricsEndpoint::new(registry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = endpoint.clone().router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let content_types = Arc::clone(&content_types);
            async move {
                let response = next.run(request).await;
                if let Some(value) = response.headers().get("content-type") {
                    let value = value.to_str().unwrap().to_owned();
                    content_types.lock().unwrap().push(value);
                }
                response
            }
        },
    ));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Served {
        addr,
        endpoint,
        orders: orders.get([0]).clone(),
    }
}

/// `GET` with the given headers: status, `Content-Type`, `Content-Encoding` and the raw body
/// (the client decompresses nothing).
async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Option<String>, Vec<u8>) {
    let mut request = async_client().get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    let encoding = header("content-encoding");
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap().to_vec();
    (status, content_type, encoding, body)
}

fn decode_families(mut bytes: &[u8]) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    while !bytes.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut bytes).unwrap());
    }
    families
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_with_native_histograms_gets_protobuf_it_can_read() {
    let served = serve(Registry::new()).await;
    let (status, content_type, _, body) = get(
        served.addr,
        "/metrics",
        &[("accept", PROMETHEUS_NATIVE_ACCEPT)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    );
    let families = decode_families(&body);
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "shop_orders_total",
            "shop_open_positions",
            "shop_latency_seconds"
        ]
    );

    let orders = &families[0];
    assert_eq!(orders.r#type, MetricType::Counter as i32);
    assert_eq!(orders.help, "Orders.");
    let buy = &orders.metric[0];
    assert_eq!(
        (buy.label[0].name.as_str(), buy.label[0].value.as_str()),
        ("side", "buy")
    );
    let counter = buy.counter.as_ref().unwrap();
    assert_eq!(counter.value, 3.0);
    let created = counter.start_timestamp.expect("a created timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - created.seconds).abs() < 60,
        "created {created:?}, now {now}"
    );

    assert_eq!(families[1].r#type, MetricType::Gauge as i32);
    assert_eq!(families[1].metric[0].gauge.as_ref().unwrap().value, 2.0);

    let latency = &families[2];
    assert_eq!(latency.r#type, MetricType::Histogram as i32);
    assert_eq!(latency.unit, "seconds");
    let histogram = latency.metric[0].histogram.as_ref().unwrap();
    assert_eq!(histogram.sample_count, 1);
    assert_eq!(histogram.sample_sum, 0.05);
    let buckets: Vec<(f64, u64)> = histogram
        .bucket
        .iter()
        .map(|b| (b.upper_bound, b.cumulative_count))
        .collect();
    assert_eq!(buckets, [(0.01, 0), (0.1, 1), (f64::INFINITY, 1)]);
    let exemplar = histogram.bucket[1].exemplar.as_ref().expect("the exemplar");
    assert_eq!(exemplar.label[0].value, "11".repeat(16));
    assert_eq!(exemplar.label[1].value, "22".repeat(8));
    assert_eq!(exemplar.value, 0.05);
    assert!(histogram.start_timestamp.is_some());

    // Without protobuf in the header, the text formats as before.
    let (_, content_type, _, _) = get(
        served.addr,
        "/metrics",
        &[(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )],
    )
    .await;
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"));
    let (_, content_type, _, _) = get(served.addr, "/metrics", &[]).await;
    assert!(content_type.starts_with("text/plain; version=0.0.4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_and_gzip_bodies_decompress_to_the_plain_exposition() {
    let served = serve(Registry::new()).await;
    for accept in [
        "text/plain",
        "application/openmetrics-text",
        PROMETHEUS_NATIVE_ACCEPT,
    ] {
        let (_, _, encoding, plain) = get(served.addr, "/metrics", &[("accept", accept)]).await;
        assert_eq!(encoding, None);
        assert!(!plain.is_empty());

        let (_, _, encoding, zstd_body) = get(
            served.addr,
            "/metrics",
            &[("accept", accept), ("accept-encoding", "gzip, zstd")],
        )
        .await;
        assert_eq!(encoding.as_deref(), Some("zstd"), "a tie goes to zstd");
        assert_eq!(zstd::decode_all(zstd_body.as_slice()).unwrap(), plain);

        let (_, _, encoding, gzip_body) = get(
            served.addr,
            "/metrics",
            &[("accept", accept), ("accept-encoding", "zstd;q=0.5, gzip")],
        )
        .await;
        assert_eq!(encoding.as_deref(), Some("gzip"));
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(gzip_body.as_slice())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_parameters_select_the_families_served() {
    let served = serve(Registry::new()).await;
    let text = |body: Vec<u8>| String::from_utf8(body).unwrap();
    let (status, _, _, body) = get(
        served.addr,
        "/metrics?name[]=shop_open_positions&name%5B%5D=shop_orders_total",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let body = text(body);
    assert!(
        body.contains("shop_orders_total{side=\"buy\"} 3\n"),
        "{body}"
    );
    assert!(body.contains("shop_open_positions 2\n"), "{body}");
    assert!(!body.contains("shop_latency_seconds"), "{body}");

    let (status, _, _, body) = get(served.addr, "/metrics?name[]=no_such_family", &[]).await;
    assert_eq!(status, 200);
    assert!(body.is_empty(), "{}", text(body));

    let (_, _, _, body) = get(
        served.addr,
        "/metrics?name[]=shop_latency_seconds",
        &[("accept", PROMETHEUS_NATIVE_ACCEPT)],
    )
    .await;
    let families = decode_families(&body);
    assert_eq!(families.len(), 1);
    assert_eq!(families[0].name, "shop_latency_seconds");

    let (_, _, _, body) = get(
        served.addr,
        "/metrics?name[]=no_such_family",
        &[("accept", "application/openmetrics-text")],
    )
    .await;
    assert_eq!(
        text(body),
        "# EOF\n",
        "OpenMetrics still ends its (empty) exposition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_scrapes_share_an_encoding_and_later_ones_see_new_values() {
    let registry = Registry::new();
    // Each encoding runs the collect hooks first: this one makes an encoding last long enough
    // for every concurrent scrape below to arrive while it runs, however busy the machine.
    registry.on_collect(|| std::thread::sleep(Duration::from_millis(300)));
    let served = Arc::new(serve(registry).await);
    const SCRAPES: u64 = 8;
    let before = served.endpoint.encodes();
    let scrapes: Vec<_> = (0..SCRAPES)
        .map(|_| {
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                get(served.addr, "/metrics", &[("accept-encoding", "zstd")]).await
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for scrape in scrapes {
        let (status, _, encoding, body) = scrape.await.unwrap();
        assert_eq!((status, encoding.as_deref()), (200, Some("zstd")));
        bodies.push(zstd::decode_all(body.as_slice()).unwrap());
    }
    let encodes = served.endpoint.encodes() - before;
    assert!(
        encodes < SCRAPES,
        "{SCRAPES} concurrent scrapes made {encodes} encodings"
    );
    assert!(bodies.iter().all(|b| b == &bodies[0]));
    assert!(String::from_utf8_lossy(&bodies[0]).contains("shop_orders_total{side=\"buy\"} 3\n"));

    // A scrape after those finished encodes again and sees what changed since.
    served.orders.inc();
    let (_, _, _, body) = get(served.addr, "/metrics", &[("accept-encoding", "zstd")]).await;
    let body = String::from_utf8(zstd::decode_all(body.as_slice()).unwrap()).unwrap();
    assert!(
        body.contains("shop_orders_total{side=\"buy\"} 4\n"),
        "{body}"
    );
    assert_eq!(served.endpoint.encodes() - before, encodes + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_with_native_histograms_scrapes_the_protobuf_exposition() {
    let content_types = Arc::new(Mutex::new(Vec::new()));
    let served = serve_recording(Registry::new(), Arc::clone(&content_types)).await;
    let addr = served.addr;
    tokio::task::spawn_blocking(move || {
        let prometheus = Prometheus::start_in(ScrapeMode::Native, &[addr], None);
        let client = blocking_client();
        let value = |query: &str| {
            let url = format!("{}/api/v1/query?query={query}", prometheus.url);
            let (_, body) = get_json(&client, &url);
            body["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_owned)
        };
        Poll::up_to(Duration::from_secs(30))
            .every(Duration::from_millis(200))
            .until("the counter stored", || {
                value("shop_orders_total{side=%22buy%22}").as_deref() == Some("3")
            });
        assert_eq!(value("shop_open_positions").as_deref(), Some("2"));
        assert_eq!(value("shop_latency_seconds_count").as_deref(), Some("1"));
        assert_eq!(
            value("shop_latency_seconds_bucket{le=%220.1%22}").as_deref(),
            Some("1")
        );
    })
    .await
    .unwrap();
    let content_types = content_types.lock().unwrap();
    assert!(
        !content_types.is_empty()
            && content_types
                .iter()
                .all(|c| c.starts_with("application/vnd.google.protobuf;")),
        "Prometheus was served {content_types:?}"
    );
}
