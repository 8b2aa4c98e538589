//! The stale-feed fault: LPs that stay logged on but stop quoting. The engine must not execute
//! at their old prices (orders are rejected `no_quote`), must count every quote it skipped for
//! its age as `rtx_lp_errors_total{kind="stale_quote"}`, and must still show the LPs connected
//! with a growing quote age: stale is a different failure from disconnected.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_testkit::{
    blocking_client, market_order, metric_sum, post_order, wait_for, wait_for_fill, Engine,
};

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
    let (_dir, config) = rtx_testkit::config_file("stale-config", CONFIG);
    let engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &[("RTX_CONFIG", &config)]);
    let http = blocking_client();
    let body = market_order("demo-1", "EURUSD", "buy", 0.1);
    let order = || post_order(&http, &engine, &body);

    // While the LPs quote, an order fills.
    wait_for_fill(&http, &engine, "demo-1");

    // Two seconds after logon the feeds stop; half a second later every quote is too old and
    // orders are refused for want of one. Until then they fill (or, rarely, an LP rejects one).
    let body = wait_for(
        Duration::from_secs(20),
        "an order refused for a stale quote",
        || {
            let (status, body) = order();
            assert_eq!(status, 201, "{body}");
            let no_quote = body["reason"].as_str().unwrap_or("").contains("quote");
            if no_quote {
                Ok(body)
            } else {
                Err(body)
            }
        },
    );
    assert_eq!(body["status"], "rejected", "{body}");

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
}
