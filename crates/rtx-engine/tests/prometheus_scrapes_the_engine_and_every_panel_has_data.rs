//! The real Prometheus (Debian's package) scrapes engines on loopback: every dashboard panel's
//! query returns data on a healthy engine, whether Prometheus stores the latency histograms as
//! classic buckets or (with native histograms on) as native histograms, and every rule
//! evaluates in both; with two engines the `instance` variable lists both and the aggregate
//! panels sum them.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use rtx_monitoring::dashboard::{default_rows, resolved_queries};
use rtx_monitoring::metrics::LATENCY_BUCKETS;
use rtx_testkit::{blocking_client, Engine, Poll, Prometheus, ScrapeMode};

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

/// Waits (up to a minute) until every dashboard panel's query returns data from `prometheus`.
fn wait_until_every_panel_has_data(prometheus: &Prometheus) {
    let queries = resolved_queries(&default_rows(), "rtx-engine", "10s");
    Poll::up_to(Duration::from_secs(60))
        .every(EVERY)
        .until_ok("every panel to have data", || {
            let empty: Vec<&(String, String)> = queries
                .iter()
                .filter(|(_, q)| query(prometheus, q).is_empty())
                .collect();
            if empty.is_empty() {
                Ok(())
            } else {
                Err(format!("panels without data: {empty:#?}"))
            }
        });
}

#[test]
fn every_dashboard_panel_has_data_on_a_healthy_engine() {
    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "20")]);
    let prometheus = Prometheus::start(&[engine.addr], Some(&rules()));
    wait_until_every_panel_has_data(&prometheus);
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
            let total = first_value(&prometheus, &balance).unwrap_or(0.0);
            if total == 2_000_000.0 {
                Ok(())
            } else {
                Err(format!("aggregate balance {total}"))
            }
        },
    );
}

/// The value of the first sample of an instant query, if any.
fn first_value(prometheus: &Prometheus, expr: &str) -> Option<f64> {
    query(prometheus, expr)
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .filter(|v: &f64| v.is_finite())
}

#[test]
fn with_native_histograms_on_the_latency_is_stored_native_and_every_panel_and_rule_still_works() {
    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "50")]);
    let native = Prometheus::start_in(ScrapeMode::Native, &[engine.addr], Some(&rules()));
    let classic = Prometheus::start_in(ScrapeMode::Classic, &[engine.addr], Some(&rules()));
    let latency = "rtx_order_execution_latency_seconds";

    // Stored as one native series, without the classic buckets (Prometheus 2.x keeps only the
    // native part of a histogram scraped as protobuf).
    Poll::up_to(Duration::from_secs(60)).every(EVERY).until_ok(
        "the order latency stored as a native histogram",
        || {
            let series = query(&native, latency);
            match series.first() {
                Some(s) if s.get("histogram").is_some() => Ok(()),
                Some(s) => Err(format!("not a native histogram: {s}")),
                None => Err("no series yet".to_owned()),
            }
        },
    );
    assert!(
        query(&native, &format!("{latency}_bucket")).is_empty(),
        "classic buckets were stored beside the native histogram"
    );

    // Every panel has data in this mode too.
    wait_until_every_panel_has_data(&native);

    // Every rule evaluates without an error in both modes (a rule reading `_bucket` alone would
    // still evaluate, to nothing: the quantile rules' own data is checked below).
    for prometheus in [&native, &classic] {
        Poll::up_to(Duration::from_secs(30)).every(EVERY).until_ok(
            "every rule evaluated without error",
            || {
                let body: serde_json::Value = blocking_client()
                    .get(format!("{}/api/v1/rules", prometheus.url))
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                let rules: Vec<&serde_json::Value> = body["data"]["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|g| g["rules"].as_array().unwrap())
                    .collect();
                let unhealthy: Vec<String> = rules
                    .iter()
                    .filter(|r| r["health"] != "ok")
                    .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
                    .collect();
                if rules.is_empty() || !unhealthy.is_empty() {
                    Err(format!("{} rules, unhealthy: {unhealthy:?}", rules.len()))
                } else {
                    Ok(())
                }
            },
        );
    }
    // The latency rules' quantile, as the rules write it, has data in both modes.
    let rule_quantile =
        rtx_monitoring::alerts::quantile_either_scrape(0.95, latency, "", &["instance"], "1m");
    for (mode, prometheus) in [("native", &native), ("classic", &classic)] {
        assert!(
            first_value(prometheus, &rule_quantile).is_some(),
            "{mode}: no data for {rule_quantile}"
        );
    }

    // The native p99 agrees with the classic one within the resolution of the buckets: the
    // classic estimate lies in one classic bucket, and the native estimate must lie in that
    // bucket too, widened by one native bucket (a factor of 2^(1/8)) on each side.
    let native_p99 = format!("histogram_quantile(0.99, sum(rate({latency}[1m])))");
    let classic_p99 = format!("histogram_quantile(0.99, sum by (le) (rate({latency}_bucket[1m])))");
    let factor = 2f64.powf(0.125);
    Poll::up_to(Duration::from_secs(30))
        .every(EVERY)
        .until_ok("the native and classic p99 to agree", || {
            let (Some(n), Some(c)) = (
                first_value(&native, &native_p99),
                first_value(&classic, &classic_p99),
            ) else {
                return Err("no quantile yet".to_owned());
            };
            let upper = LATENCY_BUCKETS.iter().copied().find(|&b| c <= b).unwrap_or(f64::INFINITY);
            let lower = LATENCY_BUCKETS.iter().copied().rev().find(|&b| b < c).unwrap_or(0.0);
            if lower / factor <= n && n <= upper * factor {
                eprintln!("p99: native {n:.6} s, classic {c:.6} s (classic bucket {lower}..{upper})");
                Ok(())
            } else {
                Err(format!(
                    "native p99 {n} outside the classic bucket {lower}..{upper} of the classic p99 {c}"
                ))
            }
        });
}

#[test]
fn with_native_histograms_on_every_latency_alert_fires_past_its_threshold() {
    // The latency rules as generated, with thresholds of zero and no `for`: each fires as soon
    // as its quantile has data, which shows its PromQL reads the native histograms (promtool
    // 2.42 cannot write native series in a rule unit test, so this is where it is shown).
    let mut rules = rtx_monitoring::alerts::default_rules();
    rules.retain(|r| matches!(r.signal, rtx_monitoring::alerts::Signal::Quantile { .. }));
    for rule in &mut rules {
        rule.threshold = 0.0;
        rule.for_duration = Duration::ZERO;
    }
    let names: Vec<&str> = rules.iter().map(|r| r.name).collect();
    assert!(names.len() >= 4, "latency rules: {names:?}");
    let dir = rtx_testkit::ScratchDir::new("native-rules");
    let rule_file = dir.join("latency_rules.yml");
    std::fs::write(
        &rule_file,
        rtx_monitoring::alerts::render_rules(&rules, "https://example.invalid/runbooks"),
    )
    .unwrap();

    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "50")]);
    let native = Prometheus::start_in(ScrapeMode::Native, &[engine.addr], Some(&rule_file));
    Poll::up_to(Duration::from_secs(60)).every(EVERY).until_ok(
        "every latency alert to fire",
        || {
            // API requests, so that the HTTP latency histogram has data besides the scrapes.
            let _ = rtx_testkit::http_get(engine.addr, "/api/orders?limit=1");
            let body: serde_json::Value = blocking_client()
                .get(format!("{}/api/v1/alerts", native.url))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let firing: Vec<&str> = body["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["state"] == "firing")
                .filter_map(|a| a["labels"]["alertname"].as_str())
                .collect();
            let silent: Vec<&&str> = names.iter().filter(|n| !firing.contains(n)).collect();
            if silent.is_empty() {
                Ok(())
            } else {
                Err(format!("not firing: {silent:?}; firing: {firing:?}"))
            }
        },
    );
}
