//! The full catalogue with 10,000 live series (every one recorded into, so every cell and
//! exemplar slot that recording touches is allocated) stays under 5 MB of resident memory.
//! Alone in its own test binary so that nothing else allocates while it measures.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_monitoring::catalogue::{
    CatalogueConfig, HttpMethod, LpOperation, LpSpec, OrderType, Outcome, Route, Side,
    TradingMetrics,
};
use rtx_monitoring::metrics::{LabelValue, ProcessSample, Registry};

#[test]
fn ten_thousand_live_series_fit_in_five_megabytes() {
    let before = ProcessSample::read().expect("procfs").resident_bytes;
    let config = CatalogueConfig {
        symbols: (0..100).map(|i| format!("SYM{i:03}")).collect(),
        lps: (0..10)
            .map(|i| LpSpec {
                name: format!("LP{i}"),
                protocol: "FIX".into(),
            })
            .collect(),
        ..CatalogueConfig::default()
    };
    let registry = Registry::new();
    let metrics = TradingMetrics::new(&registry, &config).expect("catalogue");
    for (i, symbol) in config.symbols.iter().enumerate() {
        let symbol = metrics.symbol(symbol).expect("configured");
        for &order_type in OrderType::ALL {
            for &route in Route::ALL {
                metrics.orders.record_execution(
                    order_type,
                    symbol,
                    route,
                    Outcome::Filled,
                    Duration::from_micros(i as u64),
                );
            }
        }
        metrics.orders.record_volume(symbol, Side::Buy, 0.1);
        for lp in config
            .lps
            .iter()
            .map(|l| metrics.lp(&l.name).expect("configured"))
        {
            metrics.lp.record_quote(lp, symbol, 0.7, 1.7e9);
            metrics
                .lp
                .record_latency(lp, LpOperation::Quote, Duration::from_micros(200));
        }
    }
    for account in 0..1000 {
        metrics
            .accounts
            .account(&format!("acct-{account}"))
            .set(10_000.0, 10_100.0, 500.0);
    }
    for route in 0..60 {
        metrics.api.record_request(
            HttpMethod::Get,
            &format!("/api/r{route}"),
            200,
            Duration::from_micros(90),
        );
    }
    let series = registry.series_count();
    let after = ProcessSample::read().expect("procfs").resident_bytes;
    let grown = (after - before) / 1e6;
    eprintln!(
        "{series} series, resident memory grew by {grown:.2} MB, cells hold {} KB",
        registry.cell_bytes() / 1024
    );
    assert!(series >= 10_000, "only {series} series registered");
    assert!(grown < 5.0, "{series} series took {grown:.2} MB");
}
