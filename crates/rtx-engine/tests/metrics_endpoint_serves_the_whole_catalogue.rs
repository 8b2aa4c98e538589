//! The engine's `/metrics` serves every SPEC §3 family, passes `promtool check metrics`,
//! negotiates OpenMetrics, compresses when asked, and enforces its bearer token.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use rtx_testkit::{blocking_client, promtool_check_metrics};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

fn start(env: &[(&str, &str)]) -> rtx_testkit::Engine {
    rtx_testkit::Engine::start(ENGINE, env)
}

/// Every family named in SPEC §3, one per line.
const SPEC_FAMILIES: &str = include_str!("spec_families.txt");

#[test]
fn every_spec_family_is_exposed_and_promtool_accepts_the_scrape() {
    let engine = start(&[]);
    let response = blocking_client()
        .get(engine.url("/metrics"))
        .send()
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.text().expect("body");
    let missing: Vec<_> = SPEC_FAMILIES
        .lines()
        .filter(|f| !body.contains(&format!("# TYPE {f} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "families missing from /metrics: {missing:?}"
    );
    let (ok, report) = promtool_check_metrics(body.as_bytes());
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics reported:\n{report}"
    );
    assert!(
        body.contains("rtx_build_info{version=\"0.1.0\""),
        "build info"
    );
}

#[test]
fn openmetrics_is_served_when_the_accept_header_asks_for_it() {
    let engine = start(&[]);
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response = blocking_client()
        .get(engine.url("/metrics"))
        .header("accept", accept)
        .send()
        .expect("scrape");
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = response.text().expect("body");
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE rtx_orders counter\n"));
    assert!(body.contains("# UNIT rtx_order_execution_latency_seconds seconds\n"));
}

#[test]
fn gzip_round_trips_to_the_same_exposition() {
    let engine = start(&[]);
    let response = blocking_client()
        .get(engine.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .expect("scrape");
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert!(
        text.len() > compressed.len() * 3,
        "compression should pay off on an exposition"
    );
    for family in SPEC_FAMILIES.lines() {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing after gunzip"
        );
    }
    let (ok, report) = promtool_check_metrics(text.as_bytes());
    assert!(ok, "promtool on the decompressed scrape:\n{report}");
}

#[test]
fn a_metrics_token_is_required_when_configured() {
    let engine = start(&[("RTX_METRICS_TOKEN", "scrape-secret")]);
    let c = blocking_client();
    let none = c.get(engine.url("/metrics")).send().expect("scrape");
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let wrong = c
        .get(engine.url("/metrics"))
        .bearer_auth("scrape-secreT")
        .send()
        .expect("scrape");
    assert_eq!(wrong.status(), 401);
    assert!(
        !wrong.text().unwrap().contains("scrape-secret"),
        "a refusal never echoes the token"
    );
    let right = c
        .get(engine.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .expect("scrape");
    assert_eq!(right.status(), 200);
    assert!(right
        .text()
        .unwrap()
        .contains("# TYPE rtx_orders_total counter"));
}

#[test]
fn monitoring_off_serves_an_empty_exposition() {
    let engine = start(&[("RTX_MONITORING", "off")]);
    let body = blocking_client()
        .get(engine.url("/metrics"))
        .send()
        .expect("scrape")
        .text()
        .expect("body");
    assert!(
        body.is_empty(),
        "with RTX_MONITORING=off nothing is registered, got:\n{body}"
    );
}

#[test]
fn bad_configuration_fails_at_start_naming_the_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtx-engine"))
        .arg("check-config")
        .env("RTX_MONITORING", "sometimes")
        .output()
        .expect("run check-config");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`monitoring`") && stderr.contains("sometimes"),
        "{stderr}"
    );
}
