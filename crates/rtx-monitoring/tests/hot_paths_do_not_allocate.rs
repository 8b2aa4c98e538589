//! The allocation claims, counted by a real heap profiler (`dhat` in testing mode) rather than
//! argued from the code: recording through the catalogue's domain methods allocates nothing
//! once a thread has recorded once, and a JSON log event allocates nothing once the thread's
//! buffers are warm, neither on the recording thread nor on the writer thread.
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
use rtx_monitoring::logging::{layer, LogConfig, Sink};
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
    log_events_do_not_allocate_once_warm();
    println!("hot paths: 600,000 metric recordings and 20,000 log events allocated nothing");
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
