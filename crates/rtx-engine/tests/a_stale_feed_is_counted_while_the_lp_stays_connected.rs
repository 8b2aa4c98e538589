//! The stale-feed fault: LPs that stay logged on but stop quoting. The engine must not execute
//! at their old prices (orders are rejected `no_quote`), must count every quote it skipped for
//! its age as `rtx_lp_errors_total{kind="stale_quote"}`, and must still show the LPs connected
//! with a growing quote age: stale is a different failure from disconnected.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rtx_testkit::{metric_sum, Engine};

const CONFIG: &str = r#"
sim_order_rate = 0.0

[trading]
max_quote_age_secs = 0.5

[lp]
quote_interval_ms = 50
stale_after_secs = 2
"#;

#[test]
fn stale_quotes_are_refused_and_counted_per_lp() {
    let (dir, config) = rtx_testkit::config_file("stale-config", CONFIG);
    let engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &[("RTX_CONFIG", &config)]);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let order = || {
        let r = http
            .post(engine.url("/api/orders"))
            .body(r#"{"account_id":"demo-1","symbol":"EURUSD","side":"buy","volume":0.1}"#)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap())
    };

    // While the LPs quote, an order fills and nothing is stale.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = order();
        if status == 201 && body["status"] == "filled" {
            break;
        }
        assert!(Instant::now() < deadline, "no fill while quoting: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Two seconds after logon the feeds stop; half a second later every quote is too old.
    std::thread::sleep(Duration::from_millis(3_000));
    let (status, body) = order();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "rejected", "{body}");
    assert!(
        body["reason"].as_str().unwrap_or("").contains("quote"),
        "{body}"
    );

    let text = engine.scrape();
    for lp in ["OANDA", "LMAX", "CURRENEX"] {
        assert!(
            metric_sum(
                &text,
                "rtx_lp_errors_total",
                &[("lp", lp), ("kind", "stale_quote")]
            ) >= 1.0,
            "{lp}: a skipped stale quote is counted"
        );
        assert_eq!(
            metric_sum(&text, "rtx_lp_connected", &[("lp", lp)]),
            1.0,
            "{lp} is stale, not disconnected"
        );
    }
    assert!(
        metric_sum(
            &text,
            "rtx_order_rejections_total",
            &[("reason", "no_quote")]
        ) >= 1.0
    );

    // A stalled quote counts once, not once per order that looks at it.
    let stale = |text: &str, lp: &str| {
        metric_sum(
            text,
            "rtx_lp_errors_total",
            &[("lp", lp), ("kind", "stale_quote")],
        )
    };
    for _ in 0..3 {
        assert_eq!(order().1["status"], "rejected");
    }
    let again = engine.scrape();
    for lp in ["OANDA", "LMAX", "CURRENEX"] {
        assert_eq!(stale(&again, lp), stale(&text, lp), "{lp}");
        assert_eq!(
            stale(&again, lp),
            1.0,
            "{lp}: one symbol looked at, one stale quote"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
