//! `rtx_lp_session_sequence_gaps_total` counts the messages an LP session lost, exactly: with
//! random gaps switched off, a known number of lost messages is injected per LP while quotes,
//! heartbeats, simulated orders and concurrent client orders all number messages on the same
//! sessions at once, and the counter ends at exactly what was injected (and at 0 for the LP
//! that lost nothing).

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtx_testkit::{
    async_client, inject_sequence_gap_async, market_order, metric_sum, post_order_async,
    wait_for_fill_async, Engine, Poll,
};

const TOKEN: &str = "sequence-gap-admin-token";

/// Every order goes to an LP (so each order answer is a sequenced message too), quotes and
/// heartbeats are frequent, and the simulated flow adds orders of its own.
const CONFIG: &str = r#"
sim_order_rate = 200.0

[trading]
abook_groups = []
abook_min_lots = 0.01

[lp]
sequence_gap_probability = 0.0
quote_interval_ms = 5
heartbeat_interval_ms = 20
"#;

async fn gaps(engine: &Engine) -> [f64; 3] {
    let text = engine.scrape();
    ["OANDA", "LMAX", "CURRENEX"]
        .map(|lp| metric_sum(&text, "rtx_lp_session_sequence_gaps_total", &[("lp", lp)]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_gaps_are_counted_exactly_while_orders_and_quotes_race() {
    let (_dir, config) = rtx_testkit::config_file("sequence-gaps", CONFIG);
    let engine = Arc::new(Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &config), ("RTX_ADMIN_TOKEN", TOKEN)],
    ));
    let client = async_client();
    wait_for_fill_async(&client, &engine, "demo-1").await;

    // Client orders from eight connections at once, on top of the simulated flow.
    let running = Arc::new(AtomicBool::new(true));
    let mut traffic = Vec::new();
    for k in 0..8 {
        let (client, engine, running) = (client.clone(), Arc::clone(&engine), Arc::clone(&running));
        traffic.push(tokio::spawn(async move {
            let account = format!("demo-{}", k + 1);
            let mut sent = 0u64;
            while running.load(Ordering::Relaxed) {
                let side = if sent % 2 == 0 { "buy" } else { "sell" };
                let (status, body) = post_order_async(
                    &client,
                    &engine,
                    &market_order(&account, "EURUSD", side, 0.01),
                )
                .await;
                assert_eq!(status, 201, "{body}");
                sent += 1;
            }
            sent
        }));
    }

    // OANDA loses 1 + 2 + 3 + 4 + 5 = 15 messages in five gaps, LMAX 7 in one, CURRENEX none.
    for messages in 1..=5 {
        inject_sequence_gap_async(&client, &engine, TOKEN, "OANDA", messages).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    inject_sequence_gap_async(&client, &engine, TOKEN, "LMAX", 7).await;
    Poll::up_to(Duration::from_secs(20))
        .until_async("every injected gap to reach the engine", async || {
            let [oanda, lmax, _] = gaps(&engine).await;
            oanda >= 15.0 && lmax >= 7.0
        })
        .await;
    // More racing traffic after the last injection: nothing may add a gap that did not happen.
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::Relaxed);
    let mut orders = 0;
    for t in traffic {
        orders += t.await.unwrap();
    }
    assert!(
        orders > 100,
        "the traffic raced for real: {orders} client orders"
    );
    assert_eq!(
        gaps(&engine).await,
        [15.0, 7.0, 0.0],
        "OANDA, LMAX, CURRENEX"
    );
    drop(engine);
}
