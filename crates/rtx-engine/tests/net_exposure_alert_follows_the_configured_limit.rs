//! `NetExposureHigh` warns at a share of the configured per-symbol exposure limit, whatever that
//! limit is: with a small `trading.max_net_exposure_usd`, B-book orders that build exposure past
//! the warning share but under the limit fill and make the alert fire in the engine, an order
//! past the limit is refused, and `rtx-engine rules` renders the same threshold for Prometheus.
//! The alert's `rtx_alerts_fired_total` series is exported at 0 before it fires, so that
//! `increase()` sees the first firing.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use rtx_testkit::{
    blocking_client, get_json, market_order, metric_sum, post_order, wait_for_fill, Engine, Poll,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

/// `trading.max_net_exposure_usd` in [`CONFIG`].
const LIMIT: f64 = 1_000_000.0;
/// Where `NetExposureHigh` warns for [`LIMIT`].
const THRESHOLD: f64 = LIMIT * rtx_monitoring::alerts::NET_EXPOSURE_WARN_SHARE;
/// One lot in units of the base currency.
const CONTRACT_SIZE: f64 = 100_000.0;

/// Every order B-book, so that fills build the book's own exposure; no simulated flow, so that
/// only this test's orders move it; an alert that fires one evaluation after its condition holds.
const CONFIG: &str = r#"
sim_order_rate = 0.0
alert_eval_interval = "250ms"

[trading]
max_net_exposure_usd = 1000000.0
abook_groups = []
abook_min_lots = 1000.0

[alerts.for_secs]
NetExposureHigh = 1
"#;

fn firing(engine: &Engine) -> Vec<serde_json::Value> {
    let (status, alerts) = get_json(&blocking_client(), &engine.url("/alerts"));
    assert_eq!(status, 200, "{alerts}");
    alerts["active"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["alertname"] == "NetExposureHigh" && a["state"] == "firing")
        .cloned()
        .collect()
}

#[test]
fn exposure_past_the_warning_share_of_a_small_limit_fires_net_exposure_high() {
    let (_dir, config) = rtx_testkit::config_file("exposure-config", CONFIG);
    let engine = Engine::start(ENGINE, &[("RTX_CONFIG", &config)]);
    let http = blocking_client();
    let fired = "rtx_alerts_fired_total{alertname=\"NetExposureHigh\",severity=\"warning\"}";
    let before = engine.scrape();
    assert!(
        before.contains(&format!("{fired} 0\n")),
        "{fired} is exported at 0 before the alert ever fires:\n{before}"
    );

    // A first small fill gives the price; the rest of the position takes the book's EURUSD
    // exposure to about 90% of the limit: past the warning, short of the refusal.
    let first = wait_for_fill(&http, &engine, "demo-1");
    let price = first["fill_price"].as_f64().unwrap();
    let lot_usd = CONTRACT_SIZE * price;
    let lots = ((0.9 * LIMIT / lot_usd - 0.01) * 100.0).floor() / 100.0;
    let (status, order) = post_order(
        &http,
        &engine,
        &market_order("demo-1", "EURUSD", "buy", lots),
    );
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "filled", "under the limit: {order}");
    let exposure = (lots + 0.01) * lot_usd;
    assert!(
        THRESHOLD < exposure && exposure < LIMIT,
        "{exposure} must lie between the warning {THRESHOLD} and the limit {LIMIT}"
    );

    let alert = Poll::up_to(Duration::from_secs(20))
        .every(Duration::from_millis(100))
        .until_ok("NetExposureHigh to fire for EURUSD", || {
            let alerts = firing(&engine);
            alerts
                .iter()
                .find(|a| a["labels"]["symbol"] == "EURUSD")
                .cloned()
                .ok_or_else(|| format!("firing: {alerts:?}"))
        });
    let value = alert["value"].as_f64().unwrap();
    assert!(
        THRESHOLD < value && value < LIMIT,
        "the alert reads the exposure: {alert}"
    );
    let after = engine.scrape();
    assert_eq!(
        metric_sum(
            &after,
            "rtx_alerts_firing",
            &[("alertname", "NetExposureHigh")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &after,
            "rtx_alerts_fired_total",
            &[("alertname", "NetExposureHigh")]
        ),
        1.0,
        "the first firing is one increase of a series that was already there"
    );

    // The limit itself still refuses what would cross it.
    let (status, refused) = post_order(
        &http,
        &engine,
        &market_order("demo-2", "EURUSD", "buy", (0.2 * LIMIT / lot_usd).ceil()),
    );
    assert_eq!(status, 201, "{refused}");
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or("")
            .contains("exposure"),
        "{refused}"
    );

    // Prometheus gets the same threshold from `rtx-engine rules` with this configuration.
    let out = Command::new(ENGINE)
        .arg("rules")
        .env_clear()
        .env("RTX_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = String::from_utf8(out.stdout).unwrap();
    assert!(
        rules.contains(&format!("abs(rtx_net_exposure) > {THRESHOLD}")),
        "NetExposureHigh renders the configured limit's threshold:\n{rules}"
    );
}
