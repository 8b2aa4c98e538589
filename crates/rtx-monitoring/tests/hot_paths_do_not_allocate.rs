//! The allocation claims, counted by a real heap profiler (`dhat` in testing mode) rather than
//! argued from the code: recording through the catalogue's domain methods allocates nothing
//! once a thread has recorded once, and a JSON log event allocates nothing once the thread's
//! buffers and the writer's batch have grown (the logging issue allows at most one).
//!
//! One test function: the profiler counts the whole process and only one may run at a time.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_monitoring::catalogue::{
    CatalogueConfig, LpOperation, OrderType, Outcome, Route, Side, TradingMetrics,
};
use rtx_monitoring::logging::{layer, LogConfig, Sink};
use rtx_monitoring::metrics::Registry;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn blocks_allocated() -> u64 {
    dhat::HeapStats::get().total_blocks
}

#[test]
fn metric_recording_and_log_events_do_not_allocate_once_warm() {
    let _profiler = dhat::Profiler::builder().testing().build();

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

    // Logging: a 5-field INFO event, into a discarding sink through the real writer thread.
    let config = LogConfig {
        sink: Sink::Writer(Box::new(std::io::sink())),
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
        // Warm-up: the thread's line buffers and both halves of the writer's double buffer
        // reach their working size.
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
        // A buffer that has to grow past its warm-up size may reallocate a few times; one
        // allocation per event would be 20,000.
        assert!(
            allocated <= 8,
            "{allocated} allocations for {EVENTS} log events"
        );
    });
}
