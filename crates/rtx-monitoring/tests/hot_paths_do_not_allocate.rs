//! The allocation claims, counted by a real heap profiler (`dhat` in testing mode) rather than
//! argued from the code: recording through the catalogue's domain methods allocates nothing
//! once a thread has recorded once, cloning the catalogue allocates nothing, a JSON log event
//! allocates nothing once the thread's buffers are warm, neither on the recording thread nor on
//! the writer thread, and the HTTP request middleware adds no allocation to a request once its
//! route has been served. And a span allocates the blocks listed in
//! `spans_allocate_a_bounded_number_of_blocks`, no more.
//!
//! A plain `main` (the test is declared with `harness = false`): the profiler counts every
//! thread of the process, so nothing but the code under test may run while it counts. Under
//! libtest, the harness's own thread allocated for its bookkeeping of the running test at a
//! moment that depends on scheduling, which made this test fail about one run in ten on an idle
//! machine.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_monitoring::catalogue::{
    CatalogueConfig, LpOperation, OrderType, Outcome, Route, Side, TradingMetrics,
};
use rtx_monitoring::logging::{layer, LogConfig, LogError, LogGuard, Sink};
use rtx_monitoring::metrics::Registry;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn blocks_allocated() -> u64 {
    dhat::HeapStats::get().total_blocks
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    metric_recording_does_not_allocate_once_warm();
    cloning_the_catalogue_allocates_nothing();
    log_events_do_not_allocate_once_warm();
    the_request_middleware_adds_no_allocation();
    spans_allocate_a_bounded_number_of_blocks();
    println!(
        "hot paths: 600,000 metric recordings, 1,000 clones of the catalogue, 20,000 log \
         events and the request middleware over 20,000 requests allocated nothing; spans \
         allocated only their listed blocks"
    );
}

fn metric_recording_does_not_allocate_once_warm() {
    // Metrics: six domain calls per order, as the router makes them.
    let registry = Registry::new();
    let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default()).unwrap();
    let symbols: Vec<_> = metrics.symbol_ids().collect();
    let lp = metrics.lp_ids().next().unwrap();
    let record = |i: u64| {
        let symbol = symbols[(i % symbols.len() as u64) as usize];
        let latency = Duration::from_micros(200 + i % 5_000);
        metrics.orders.record_execution(
            OrderType::Market,
            symbol,
            Route::ABook,
            Outcome::Filled,
            latency,
        );
        metrics.orders.record_volume(symbol, Side::Buy, 0.1);
        metrics.orders.record_slippage(symbol, 0.2);
        metrics.lp.record_latency(lp, LpOperation::Order, latency);
        metrics.lp.record_quote(lp, symbol, 0.8, 1.7e9);
        metrics.lp.set_connected(lp, i % 2 == 0);
    };
    // The thread's first recording claims its slot in the per-thread arena.
    record(0);
    let before = blocks_allocated();
    for i in 0..100_000u64 {
        record(i);
    }
    assert_eq!(
        blocks_allocated() - before,
        0,
        "600,000 recordings through resolved handles allocated"
    );
}

/// Per-request state holds the catalogue (axum clones a handler's state, and each middleware's,
/// for every request): a clone must be a reference count, not a copy of its sixty handles and
/// configured label sets, which took about thirty heap blocks and 2.6 µs a clone.
fn cloning_the_catalogue_allocates_nothing() {
    let metrics = TradingMetrics::new(&Registry::new(), &CatalogueConfig::default()).unwrap();
    let before = blocks_allocated();
    for _ in 0..1_000 {
        let clone = std::hint::black_box(metrics.clone());
        let api = std::hint::black_box(clone.api.clone());
        drop((clone, api));
    }
    assert_eq!(
        blocks_allocated() - before,
        0,
        "1,000 clones of the catalogue and of its API metrics allocated"
    );
}

fn log_events_do_not_allocate_once_warm() {
    // Logging: a 5-field INFO event, into a discarding sink through the real writer thread.
    // The buffer holds a whole burst (20,000 lines of about 250 bytes), so no line is dropped
    // however late the writer thread is scheduled: a drop would allocate its report line, and
    // what is counted here must not depend on scheduling.
    let config = LogConfig {
        sink: Sink::Writer(Box::new(std::io::sink())),
        buffer_bytes: 16 * 1024 * 1024,
        ..LogConfig::new("rtx-engine", "0.1.0")
    };
    let (json, guard) = layer(config, None).unwrap();
    let subscriber = tracing_subscriber::registry().with(json);
    tracing::subscriber::with_default(subscriber, || {
        let event = |i: u64| {
            tracing::info!(
                order_id = "01a20c17-63f4-7471",
                symbol = "EURUSD",
                qty = 0.5,
                price = 1.08505,
                latency_us = i,
                "order filled"
            );
        };
        // Warm-up: the thread's line and field buffers reach their working size (the writer's
        // two buffers are allocated at their bound when it starts).
        for i in 0..20_000 {
            event(i);
        }
        assert!(guard.flush(Duration::from_secs(10)));
        const EVENTS: u64 = 20_000;
        let before = blocks_allocated();
        for i in 0..EVENTS {
            event(i);
        }
        assert!(guard.flush(Duration::from_secs(10)));
        let allocated = blocks_allocated() - before;
        assert_eq!(allocated, 0, "allocations for {EVENTS} log events");
    });
}

/// The allocations of serving every request in `requests` through `router`, on this thread.
fn allocations_serving(
    runtime: &tokio::runtime::Runtime,
    router: &axum::Router,
    requests: Vec<axum::extract::Request>,
) -> u64 {
    use tower_service::Service;
    let before = blocks_allocated();
    for request in requests {
        let mut router = router.clone();
        let response = runtime.block_on(router.call(request)).unwrap();
        assert!(response.status().is_success() || response.status().as_u16() == 404);
    }
    blocks_allocated() - before
}

fn the_request_middleware_adds_no_allocation() {
    use axum::extract::State;
    use axum::middleware::{from_fn_with_state, Next};
    use axum::routing::get;
    use rtx_monitoring::catalogue::ApiMetrics;

    // axum allocates per request itself (the boxed future of every `from_fn` middleware, the
    // request's extension map that holds the matched route, the response body's box), so the
    // middleware's share is what a router with it allocates beyond the same router with a
    // middleware of the same shape (the same state) that only passes the request on.
    async fn pass_on(
        State(_): State<ApiMetrics>,
        request: axum::extract::Request,
        next: Next,
    ) -> axum::response::Response {
        next.run(request).await
    }
    let registry = Registry::new();
    let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default()).unwrap();
    // The two layers differ in type, so one macro builds both routers. Both are finished with
    // `with_state`: a router left without it clones and boxes its handlers again on every
    // request (axum's cost, the same with or without the middleware).
    macro_rules! app {
        ($middleware:expr) => {{
            let layer = from_fn_with_state(metrics.api.clone(), $middleware);
            let not_found = axum::Router::new()
                .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no such endpoint") })
                .layer(layer.clone())
                .with_state(());
            axum::Router::new()
                .route("/api/orders/{id}", get(|| async { "{}" }))
                .route(
                    "/api/orders",
                    get(|| async { "[]" }).post(|| async { "{}" }),
                )
                .route_layer(layer)
                .fallback_service(not_found)
                .with_state::<()>(())
        }};
    }
    let request = |i: usize| {
        let (method, uri) = match i % 4 {
            0 => ("GET", format!("/api/orders/o-{i}")),
            1 => ("GET", "/api/orders".to_owned()),
            2 => ("POST", "/api/orders".to_owned()),
            _ => ("GET", format!("/scanner/{i}")),
        };
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(axum::body::Body::empty())
            .unwrap()
    };
    const REQUESTS: usize = 20_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let measured = app!(rtx_monitoring::http::track_requests);
    let baseline = app!(pass_on);
    // Warm-up: each route and method resolves its handles and span name on its first request.
    allocations_serving(&runtime, &measured, (0..8).map(request).collect());
    allocations_serving(&runtime, &baseline, (0..8).map(request).collect());
    let with_middleware =
        allocations_serving(&runtime, &measured, (0..REQUESTS).map(request).collect());
    let without = allocations_serving(&runtime, &baseline, (0..REQUESTS).map(request).collect());
    assert!(
        without > 0,
        "the baseline router allocated nothing: the comparison would prove nothing"
    );
    assert_eq!(
        with_middleware, without,
        "the request middleware allocated over {REQUESTS} requests \
         ({with_middleware} blocks with it, {without} without)"
    );
    let served = metrics
        .api
        .requests(
            rtx_monitoring::catalogue::HttpMethod::Get,
            "/api/orders/{id}",
            200,
        )
        .get();
    assert!(served >= (REQUESTS / 4) as u64, "{served} requests counted");
}

struct DiscardSpans;

impl rtx_monitoring::trace::SpanSink for DiscardSpans {
    fn push(&self, span: rtx_monitoring::trace::FinishedSpan) {
        std::hint::black_box(span);
    }
}

/// [`blocks_per_span`] through a subscriber that also logs, its log writer kept running
/// until the count is taken.
fn blocks_per_logged_span(
    built: Result<(impl tracing::Subscriber + Send + Sync + 'static, LogGuard), LogError>,
) -> u64 {
    let (subscriber, guard) = built.unwrap();
    let blocks = blocks_per_span(subscriber);
    drop(guard);
    blocks
}

/// Heap blocks per span (three attributes, opened, entered, closed) through `subscriber`.
fn blocks_per_span(subscriber: impl tracing::Subscriber + Send + Sync + 'static) -> u64 {
    const SPANS: u64 = 1_000;
    let span = || {
        let _entered = tracing::info_span!(
            "order.execute",
            order.symbol = "EURUSD",
            order.side = "buy",
            order.volume = 0.1
        )
        .entered();
    };
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..SPANS {
            span();
        }
        let before = blocks_allocated();
        for _ in 0..SPANS {
            span();
        }
        (blocks_allocated() - before) / SPANS
    })
}

fn spans_allocate_a_bounded_number_of_blocks() {
    use rtx_monitoring::trace::{SpanLayer, SpanSink};
    use std::sync::Arc;
    let config = || LogConfig {
        sink: Sink::Writer(Box::new(std::io::sink())),
        ..LogConfig::new("rtx-engine", "0.1.0")
    };
    let spans =
        |ratio: f64| SpanLayer::new(ratio, Some(Arc::new(DiscardSpans) as Arc<dyn SpanSink>));
    // The span and JSON layers on the registry, as an application composing its own stack.
    let as_layers = |ratio: f64| {
        blocks_per_logged_span(rtx_monitoring::logging::subscriber_with(
            config(),
            None,
            spans(ratio),
        ))
    };
    // The engine's own subscriber: both layers' work in reused span records.
    let ours = |ratio: f64| {
        blocks_per_logged_span(rtx_monitoring::logging::span_log_subscriber(
            config(),
            None,
            spans(ratio),
        ))
    };
    let (engine_sampled, engine_unsampled) = (as_layers(1.0), as_layers(0.0));
    let sampled = blocks_per_span(tracing_subscriber::registry().with(spans(1.0)));
    let unsampled = blocks_per_span(tracing_subscriber::registry().with(spans(0.0)));
    let (ours_sampled, ours_unsampled) = (ours(1.0), ours(0.0));
    // The engine with no collector configured: every span sampled, nothing exported.
    let ours_sampled_no_sink = blocks_per_logged_span(
        rtx_monitoring::logging::span_log_subscriber(config(), None, SpanLayer::new(1.0, None)),
    );
    println!(
        "blocks per span: span layer {sampled} sampled, {unsampled} unsampled; \
         engine stack as layers {engine_sampled} sampled, {engine_unsampled} unsampled; \
         SpanLogSubscriber {ours_sampled} sampled, {ours_unsampled} unsampled, \
         {ours_sampled_no_sink} sampled with nothing to export to"
    );
    // The pooled record is reused: an unsampled span allocates nothing, a sampled one only
    // what it hands to the exporter (its attribute vector and its two string values), and a
    // sampled one with no exporter builds no record to hand over.
    assert_eq!(ours_unsampled, 0, "SpanLogSubscriber, unsampled");
    assert_eq!(ours_sampled, 3, "SpanLogSubscriber, sampled");
    assert_eq!(
        ours_sampled_no_sink, 0,
        "SpanLogSubscriber, sampled with no sink"
    );
    // What each block is, so that a new one is a decision, not an accident: the span layer's
    // state (a boxed registry extension) for every span; for a sampled span also its attribute
    // vector and one copy per string attribute (two here: string values come without a
    // lifetime); the JSON layer's rendered fields, held inline in its one boxed extension.
    assert_eq!(unsampled, 1, "span layer, unsampled");
    assert_eq!(sampled, 4, "span layer, sampled");
    assert_eq!(engine_unsampled, unsampled + 1, "engine stack, unsampled");
    assert_eq!(engine_sampled, sampled + 1, "engine stack, sampled");
}
