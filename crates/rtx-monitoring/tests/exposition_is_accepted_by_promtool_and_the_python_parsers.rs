//! The exposition, with hostile label values and exemplars, is read correctly by the real
//! consumers: `promtool check metrics` and the official Python client's Prometheus and
//! OpenMetrics parsers. Exemplars and `_created` samples appear only in OpenMetrics.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_monitoring::catalogue::{
    CatalogueConfig, HttpMethod, LpOperation, OrderType, Outcome, Route, Side, TradingMetrics,
};
use rtx_monitoring::metrics::{Format, Registry, TraceIds};
use rtx_testkit::{promtool_check_metrics, python_parse};

const HOSTILE_ACCOUNT: &str = "acc\"quote\\back\nline-é";

fn populated() -> (Registry, TraceIds) {
    let registry = Registry::new();
    let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default()).expect("catalogue");
    let eurusd = metrics.symbol("EURUSD").expect("configured");
    let oanda = metrics.lp("OANDA").expect("configured");
    let ids = TraceIds {
        trace_id: *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36",
        span_id: [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
    };
    for ms in [1, 3, 40, 120, 900, 2500] {
        metrics.orders.record_execution(
            OrderType::Market,
            eurusd,
            Route::ABook,
            Outcome::Filled,
            Duration::from_millis(ms),
        );
    }
    metrics
        .orders
        .latency(OrderType::Limit, Route::BBook)
        .observe_with_exemplar(0.042, ids);
    metrics.orders.record_volume(eurusd, Side::Buy, 0.1);
    metrics.orders.record_slippage(eurusd, -0.3);
    metrics.lp.set_connected(oanda, true);
    metrics.lp.record_quote(oanda, eurusd, 0.8, 1.7e9);
    metrics
        .lp
        .record_latency(oanda, LpOperation::Order, Duration::from_micros(850));
    metrics.api.record_request(
        HttpMethod::Get,
        "/api/orders/{id}",
        200,
        Duration::from_micros(300),
    );
    metrics
        .accounts
        .account(HOSTILE_ACCOUNT)
        .set(10_000.0, 10_250.5, 1_000.0);
    (registry, ids)
}

#[test]
fn promtool_reports_nothing_on_the_text_exposition() {
    let (registry, _) = populated();
    let text = registry.encode_to_string(Format::PrometheusText);
    let (ok, report) = promtool_check_metrics(text.as_bytes());
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

#[test]
fn the_python_text_parser_reads_every_sample_and_label_back() {
    let (registry, _) = populated();
    let text = registry.encode_to_string(Format::PrometheusText);
    let (ok, parsed) = python_parse("text", text.as_bytes());
    assert!(ok, "python text parser failed:\n{parsed}");
    assert!(
        parsed.contains("('account', 'acc\"quote\\\\back\\nline-é')"),
        "hostile label value did not round-trip:\n{parsed}"
    );
    assert!(parsed.contains("rtx_orders_total [('order_type', 'market'), ('outcome', 'filled'), ('route', 'ABOOK'), ('symbol', 'EURUSD')] 6.0"));
    assert!(
        !parsed.contains("exemplar="),
        "the text format carries no exemplars"
    );
}

#[test]
fn the_python_openmetrics_parser_accepts_the_exposition_and_its_exemplars() {
    let (registry, ids) = populated();
    let om = registry.encode_to_string(Format::OpenMetrics);
    let (ok, parsed) = python_parse("openmetrics", om.as_bytes());
    assert!(
        ok,
        "python OpenMetrics parser failed:\n{parsed}\n--- exposition ---\n{om}"
    );
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let expected = format!("exemplar={}/{}", hex(&ids.trace_id), hex(&ids.span_id));
    let line = parsed
        .lines()
        .find(|l| l.contains(&expected))
        .unwrap_or_else(|| panic!("no exemplar in:\n{parsed}"));
    assert!(
        line.contains("rtx_order_execution_latency_seconds_bucket")
            && line.contains("('le', '0.05')"),
        "{line}"
    );
    assert!(
        parsed.contains("info rtx_build_info"),
        "build info is an OpenMetrics info family"
    );
    // Counters and histograms carry `_created`, which the parser reads as part of the family.
    for created in [
        "counter rtx_orders_created [('order_type', 'market'), ('outcome', 'filled'), ('route', 'ABOOK'), ('symbol', 'EURUSD')]",
        "histogram rtx_order_execution_latency_seconds_created ",
    ] {
        assert!(parsed.contains(created), "no {created} in:\n{parsed}");
    }
}
