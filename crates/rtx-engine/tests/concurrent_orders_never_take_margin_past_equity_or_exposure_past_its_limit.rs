//! The risk limits hold under concurrency: an order's check and what it reserves are one step,
//! so hundreds of orders racing on one account never take its margin used above its equity,
//! and hundreds racing on one symbol never take its net exposure above the limit, whether the
//! orders go to an LP (A-book, where the answer takes milliseconds) or fill internally.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rtx_testkit::{
    async_client, get_json_async, market_order, metric_sum, post_order_async, wait_for_fill_async,
    Engine,
};
use serde_json::Value;

/// LPs that always fill, so that every order the checks let through becomes a position.
const LPS_ALWAYS_FILL: &str = r#"
[lp]
reject_probability = 0.0
timeout_probability = 0.0
"#;

/// Posts `count` copies of `body` at once and returns the answers.
async fn burst(
    engine: &Arc<Engine>,
    client: &reqwest::Client,
    body: String,
    count: usize,
) -> Vec<Value> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (engine, client, body) = (Arc::clone(engine), client.clone(), body.clone());
            tokio::spawn(async move {
                let (status, order) = post_order_async(&client, &engine, &body).await;
                assert_eq!(status, 201, "{order}");
                order
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

fn filled(answers: &[Value]) -> usize {
    answers.iter().filter(|o| o["status"] == "filled").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_orders_never_use_more_margin_than_the_account_has() {
    let config = format!("sim_order_rate = 0.0\n{LPS_ALWAYS_FILL}");
    let (_dir, config) = rtx_testkit::config_file("margin-race", &config);
    let engine = Arc::new(Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &config)],
    ));
    let client = async_client();
    wait_for_fill_async(&client, &engine, "demo-10").await;

    // demo-1 is a professional account (A-book): 10 lots need ~10,850 USD of margin each, so
    // about 9 fit in 100,000 USD. demo-5 is retail: 4-lot orders fill B-book, ~23 fit.
    let (a_book, b_book) = tokio::join!(
        burst(
            &engine,
            &client,
            market_order("demo-1", "EURUSD", "buy", 10.0),
            150
        ),
        burst(
            &engine,
            &client,
            market_order("demo-5", "EURUSD", "buy", 4.0),
            150
        ),
    );
    for (account, answers, lots) in [("demo-1", &a_book, 10.0), ("demo-5", &b_book, 4.0)] {
        let fills = filled(answers);
        assert!(fills >= 1, "{account}: some orders fit");
        for o in answers.iter().filter(|o| o["status"] != "filled") {
            assert_eq!(o["status"], "rejected", "{o}");
            assert!(o["reason"].as_str().unwrap().contains("margin"), "{o}");
        }
        let (_, a) =
            get_json_async(&client, &engine.url(&format!("/api/accounts/{account}"))).await;
        let (margin, equity) = (
            a["margin_used"].as_f64().unwrap(),
            a["equity"].as_f64().unwrap(),
        );
        assert!(
            margin <= equity,
            "{account}: {fills} fills, margin {margin} above equity {equity}: {a}"
        );
        assert_eq!(
            a["reserved_margin"], 0.0,
            "nothing is held once every order answered: {a}"
        );
        assert!(
            (margin - fills as f64 * lots * 1_085.0).abs() < fills as f64 * lots * 20.0,
            "{account}: margin used {margin} is that of {fills} fills of {lots} lots"
        );
    }
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_orders_never_take_net_exposure_past_its_limit() {
    // Margin never binds (10M USD per account); the symbol's limit does: 3M USD of EURUSD is
    // about 27 lots.
    let config = format!(
        "sim_order_rate = 0.0\n\n[trading]\ndemo_balance = 10000000.0\nmax_net_exposure_usd = 3000000.0\n{LPS_ALWAYS_FILL}"
    );
    let (_dir, config) = rtx_testkit::config_file("exposure-race", &config);
    let engine = Arc::new(Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &config)],
    ));
    let client = async_client();
    let probe = wait_for_fill_async(&client, &engine, "demo-10").await;
    assert_eq!(probe["volume"], 0.01);

    // Ten accounts, A-book (demo-1..3) and B-book, 30 one-lot buys each, all at once.
    let bursts: Vec<_> = (1..=10)
        .map(|k| {
            let (engine, client) = (Arc::clone(&engine), client.clone());
            tokio::spawn(async move {
                burst(
                    &engine,
                    &client,
                    market_order(&format!("demo-{k}"), "EURUSD", "buy", 1.0),
                    30,
                )
                .await
            })
        })
        .collect();
    let mut fills = 0;
    for b in bursts {
        fills += filled(&b.await.unwrap());
    }
    let (_, positions) = get_json_async(&client, &engine.url("/api/positions")).await;
    let net: f64 = positions
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["symbol"] == "EURUSD")
        .map(|p| p["volume"].as_f64().unwrap() * if p["side"] == "buy" { 1.0 } else { -1.0 })
        .sum();
    assert!(
        (net - (fills as f64 + 0.01)).abs() < 1e-6,
        "{fills} fills, net {net}"
    );
    assert!(
        net * 100_000.0 * 1.0850 <= 3_000_000.0 * 1.01,
        "net {net} lots is past the limit"
    );
    assert!(
        fills >= 20,
        "the limit, not something else, stopped the burst: {fills} fills"
    );
    let text = engine.scrape();
    assert_eq!(
        metric_sum(
            &text,
            "rtx_order_rejections_total",
            &[("reason", "exposure_limit")]
        ),
        (300 - fills) as f64
    );
    drop(engine);
}
