//! The real Prometheus (Debian's package) scrapes engines on loopback: every dashboard panel's
//! query returns data on a healthy engine, and with two engines the `instance` variable lists
//! both and the aggregate panels sum them.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use rtx_monitoring::dashboard::{default_rows, resolved_queries};
use rtx_testkit::{blocking_client, Engine, Poll, Prometheus};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

/// Prometheus scrapes and evaluates every second: looking more often only adds load.
const EVERY: Duration = Duration::from_millis(500);

fn query(prometheus: &Prometheus, expr: &str) -> Vec<serde_json::Value> {
    let body: serde_json::Value = blocking_client()
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
    Poll::up_to(Duration::from_secs(60))
        .every(EVERY)
        .until_ok("every panel to have data", || {
            let empty: Vec<&(String, String)> = queries
                .iter()
                .filter(|(_, q)| query(&prometheus, q).is_empty())
                .collect();
            if empty.is_empty() {
                Ok(())
            } else {
                Err(format!("panels without data: {empty:#?}"))
            }
        });
}

#[test]
fn two_engines_show_up_as_two_instances_and_aggregates_sum_them() {
    let a = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let b = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let prometheus = Prometheus::start(&[a.addr, b.addr], None);
    let http = blocking_client();
    Poll::up_to(Duration::from_secs(30)).every(EVERY).until_ok(
        "both engines in the instance variable",
        || {
            let body: serde_json::Value = http
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
                Ok(())
            } else {
                Err(format!("instance variable lists {instances:?}"))
            }
        },
    );
    // "Balance and equity": each engine has 10 demo accounts of 100,000 USD and no trades.
    let balance = resolved_queries(&default_rows(), "rtx-engine", "10s")
        .into_iter()
        .find(|(title, q)| title == "Balance and equity" && q.contains("total_balance"))
        .unwrap()
        .1;
    Poll::up_to(Duration::from_secs(30)).every(EVERY).until_ok(
        "the two engines' aggregate balance of 2,000,000",
        || {
            let result = query(&prometheus, &balance);
            let total: f64 = result
                .first()
                .and_then(|r| r["value"][1].as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            if total == 2_000_000.0 {
                Ok(())
            } else {
                Err(format!("aggregate balance {total}"))
            }
        },
    );
}
