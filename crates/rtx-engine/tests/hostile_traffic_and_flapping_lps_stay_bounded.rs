//! Faults and hostile input that must leave the engine consistent and bounded: an LP flapping a
//! hundred times (every disconnect counted once, readiness and the gauges agree at the end), and
//! thousands of distinct unknown paths and symbols (the series count stays bounded).

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_testkit::{
    blocking_client, get_json, lp_admin, metric_sum, parse_samples, wait_for, Engine, Poll,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

#[test]
fn an_lp_flapping_a_hundred_times_leaves_metrics_and_readiness_consistent() {
    let (_dir, cfg) = rtx_testkit::config_file(
        "flap",
        "alert_eval_interval = \"200ms\"\n[health]\nlp_interval_ms = 100\n",
    );
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_CONFIG", &cfg),
            ("RTX_ADMIN_TOKEN", "t"),
            ("RTX_SIM_ORDER_RATE", "20"),
        ],
    );
    let http = blocking_client();
    let admin = |action: &str| lp_admin(&http, &engine, "t", "LMAX", action);
    let wait_connected = |want: f64| {
        Poll::up_to(Duration::from_secs(10))
            .every(Duration::from_millis(5))
            .until(&format!("LMAX to reach connected={want}"), || {
                metric_sum(&engine.scrape(), "rtx_lp_connected", &[("lp", "LMAX")]) == want
            });
    };
    wait_connected(1.0);
    for _ in 0..100 {
        admin("disconnect");
        wait_connected(0.0);
        admin("connect");
        wait_connected(1.0);
    }
    let text = engine.scrape();
    assert_eq!(
        metric_sum(&text, "rtx_lp_disconnects_total", &[("lp", "LMAX")]),
        100.0,
        "every drop counted once"
    );
    assert_eq!(
        metric_sum(&text, "rtx_lp_disconnects_total", &[("lp", "OANDA")]),
        0.0
    );
    wait_for(
        Duration::from_secs(20),
        "/ready 200 and no LPDisconnected firing after the flapping",
        || {
            let (ready, _) = get_json(&http, &engine.url("/ready"));
            let firing = metric_sum(
                &engine.scrape(),
                "rtx_alerts_firing",
                &[("alertname", "LPDisconnected")],
            );
            if ready == 200 && firing == 0.0 {
                Ok(())
            } else {
                Err(format!("/ready {ready}, LPDisconnected firing {firing}"))
            }
        },
    );
}

#[test]
fn thousands_of_unknown_paths_and_symbols_leave_the_series_count_bounded() {
    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let http = blocking_client();
    let series = |text: &str| parse_samples(text).len();
    let hostile = |range: std::ops::Range<usize>| {
        for i in range {
            let r = http
                .get(engine.url(&format!("/probe/{i}/wp-login.php?x={i}")))
                .send()
                .unwrap();
            assert_eq!(r.status(), 404);
            let body = format!(
                r#"{{"account_id":"demo-4","symbol":"FAKE{i}","side":"buy","volume":0.1}}"#
            );
            let r = http
                .post(engine.url("/api/orders"))
                .body(body)
                .send()
                .unwrap();
            assert_eq!(r.status(), 400);
        }
    };
    // The first hostile requests create their (bounded) series: one route label for every
    // unknown path, one for the refused orders. Then 1,900 more must add nothing.
    hostile(0..100);
    let _ = engine.scrape(); // the scrape's own series exist from here on
    let first = series(&engine.scrape());
    hostile(100..2000);
    let text = engine.scrape();
    let after = series(&text);
    assert_eq!(
        after, first,
        "1,900 more distinct paths and symbols grew the exposition from {first} to {after} samples"
    );
    assert_eq!(
        metric_sum(
            &text,
            "rtx_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        2000.0
    );
    assert!(
        !text.contains("FAKE1") && !text.contains("wp-login"),
        "outside values never become labels"
    );
}
