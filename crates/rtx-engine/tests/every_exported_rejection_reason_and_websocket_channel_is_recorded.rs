//! Every label value the engine exports for `rtx_order_rejections_total{reason}` and
//! `rtx_websocket_messages_sent_total{channel}` is one some path records: each reason is
//! provoked through the API and each channel gets a message, and then every exported series of
//! the two families has moved off zero. A value no path can reach would stay at zero for ever,
//! a dead series that dashboards and alerts would read as "never happens".

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use rtx_testkit::{
    async_client, lp_admin_async, market_order, metric_sum, parse_samples, post_order_async,
    wait_for_fill_async, wait_until_async, Engine,
};

/// Reasons no fault injection can reach on demand, with why.
const UNREACHABLE_ON_DEMAND: &[&str] = &[
    // The last LP must drop between an A-book order's risk check (which needs a quote, and a
    // disconnect clears the LP's quotes) and the order's send.
    "no_liquidity",
];

const ADMIN_TOKEN: &str = "reasons-test";

/// demo-1 to demo-3 are A-book (the `professional` group) and every LP rejects their orders;
/// the others are B-book. Leverage 1 puts a one-lot order past a demo account's free margin
/// while a ten-lot one is past the exposure limit first.
const CONFIG: &str = r#"
sim_order_rate = 0.0

[trading]
leverage = 1.0
max_order_lots = 20.0
max_net_exposure_usd = 1000000.0
abook_groups = ["professional"]
abook_min_lots = 1000.0
max_resting_orders_per_account = 1

[lp]
reject_probability = 1.0
"#;

fn limit_order(account: &str, price: f64) -> String {
    serde_json::json!({
        "account_id": account,
        "symbol": "EURUSD",
        "side": "buy",
        "order_type": "limit",
        "volume": 0.01,
        "price": price,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reason_and_channel_the_engine_exports_is_one_it_records() {
    let (_dir, config) = rtx_testkit::config_file("reasons-config", CONFIG);
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &config), ("RTX_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let http = async_client();
    let first = wait_for_fill_async(&http, &engine, "demo-4").await;
    let price = first["fill_price"].as_f64().unwrap();

    // A WebSocket client reads a quote.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/quotes", engine.addr))
        .await
        .expect("websocket");
    let quote = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a quote within 10 s");
    assert!(matches!(quote, Some(Ok(_))), "{quote:?}");
    drop(ws);

    // The refusals the engine can be asked for while its LPs quote.
    let refusals = [
        market_order("demo-1", "EURUSD", "buy", 0.01), // lp_rejected
        market_order("demo-4", "EURUSD", "buy", 30.0), // max_volume
        market_order("demo-4", "EURUSD", "buy", 10.0), // exposure_limit
        market_order("demo-5", "EURUSD", "buy", 1.0),  // insufficient_margin
    ];
    for body in &refusals {
        let (status, order) = post_order_async(&http, &engine, body).await;
        assert_eq!(status, 201, "{order}");
        assert_eq!(order["status"], "rejected", "{body}: {order}");
    }
    // resting_limit: the account's one resting order, then one more.
    for (i, want) in ["pending", "rejected"].iter().enumerate() {
        let body = limit_order("demo-6", price * 0.9 - i as f64 * 0.0001);
        let (status, order) = post_order_async(&http, &engine, &body).await;
        assert_eq!(status, 201, "{order}");
        assert_eq!(order["status"], *want, "{order}");
    }
    // no_quote: with every LP down, their quotes are gone.
    for lp in ["OANDA", "LMAX", "CURRENEX"] {
        lp_admin_async(&http, &engine, ADMIN_TOKEN, lp, "disconnect").await;
    }
    wait_until_async(
        Duration::from_secs(10),
        "every LP disconnected",
        async || metric_sum(&engine.scrape(), "rtx_lp_connected", &[]) == 0.0,
    )
    .await;
    let (status, order) = post_order_async(
        &http,
        &engine,
        &market_order("demo-4", "EURUSD", "buy", 0.01),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "rejected", "{order}");

    let text = engine.scrape();
    let samples = parse_samples(&text);
    for (family, label) in [
        ("rtx_order_rejections_total", "reason"),
        ("rtx_websocket_messages_sent_total", "channel"),
    ] {
        let values: Vec<(&str, f64)> = samples
            .iter()
            .filter(|s| s.name == family)
            .filter_map(|s| {
                let (_, value) = s.labels.iter().find(|(k, _)| k == label)?;
                Some((value.as_str(), s.value))
            })
            .collect();
        assert!(!values.is_empty(), "{family} is exported:\n{text}");
        let dead: Vec<&str> = values
            .iter()
            .filter(|(value, n)| *n == 0.0 && !UNREACHABLE_ON_DEMAND.contains(value))
            .map(|(value, _)| *value)
            .collect();
        assert!(
            dead.is_empty(),
            "{family} exports {label} values no path recorded: {dead:?}\n{values:?}"
        );
    }
}
