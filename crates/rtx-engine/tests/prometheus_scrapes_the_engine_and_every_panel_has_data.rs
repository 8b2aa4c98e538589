//! The real Prometheus (Debian's package) scrapes engines on loopback: every dashboard panel's
//! query returns data on a healthy engine, and with two engines the `instance` variable lists
//! both and the aggregate panels sum them.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rtx_monitoring::dashboard::{default_rows, resolved_queries};
use rtx_testkit::{Engine, Prometheus};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

fn query(prometheus: &Prometheus, expr: &str) -> Vec<serde_json::Value> {
    let body: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/query", prometheus.url))
        .query(&[("query", expr)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/prometheus/prometheus_alerts.yml")
        .canonicalize()
        .unwrap()
}

#[test]
fn every_dashboard_panel_has_data_on_a_healthy_engine() {
    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "20")]);
    let prometheus = Prometheus::start(&[engine.addr], Some(&rules()));
    let queries = resolved_queries(&default_rows(), "rtx-engine", "10s");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let empty: Vec<&(String, String)> = queries
            .iter()
            .filter(|(_, q)| query(&prometheus, q).is_empty())
            .collect();
        if empty.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "panels without data after 60 s: {empty:#?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn two_engines_show_up_as_two_instances_and_aggregates_sum_them() {
    let a = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let b = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let prometheus = Prometheus::start(&[a.addr, b.addr], None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/label/instance/values", prometheus.url))
            .query(&[("match[]", "rtx_build_info{job=\"rtx-engine\"}")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        let instances: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        if instances.contains(&a.addr.to_string()) && instances.contains(&b.addr.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance variable lists {instances:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // "Balance and equity": each engine has 10 demo accounts of 100,000 USD and no trades.
    let balance = resolved_queries(&default_rows(), "rtx-engine", "10s")
        .into_iter()
        .find(|(title, q)| title == "Balance and equity" && q.contains("total_balance"))
        .unwrap()
        .1;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = query(&prometheus, &balance);
        let total: f64 = result
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if total == 2_000_000.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "aggregate balance {total}, want the two engines' 2,000,000"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
