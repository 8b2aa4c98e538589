//! Faults and hostile input that must leave the engine consistent and bounded: an LP flapping a
//! hundred times (every disconnect counted once, readiness and the gauges agree at the end), and
//! thousands of distinct unknown paths and symbols (the series count stays bounded).

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rtx_testkit::{metric_sum, parse_samples, Engine};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

#[test]
fn an_lp_flapping_a_hundred_times_leaves_metrics_and_readiness_consistent() {
    let (dir, cfg) = rtx_testkit::config_file(
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
    let http = reqwest::blocking::Client::new();
    let admin = |action: &str| {
        let r = http
            .post(engine.url(&format!("/admin/lps/LMAX/{action}")))
            .bearer_auth("t")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    let wait_connected = |want: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while metric_sum(&engine.scrape(), "rtx_lp_connected", &[("lp", "LMAX")]) != want {
            assert!(
                Instant::now() < deadline,
                "LMAX never reached connected={want}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = http.get(engine.url("/ready")).send().unwrap();
        let text = engine.scrape();
        let firing = metric_sum(
            &text,
            "rtx_alerts_firing",
            &[("alertname", "LPDisconnected")],
        );
        if ready.status() == 200 && firing == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the flapping: /ready {} and LPDisconnected firing {firing}",
            ready.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn thousands_of_unknown_paths_and_symbols_leave_the_series_count_bounded() {
    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let http = reqwest::blocking::Client::new();
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
