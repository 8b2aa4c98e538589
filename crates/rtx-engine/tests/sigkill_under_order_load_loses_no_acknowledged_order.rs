//! A crash loses nothing that was acknowledged: while eight clients post market and resting
//! orders, the engine is killed with SIGKILL (no drain, no flush); the engine started again on
//! the same database has every order it answered 201, with the status it was answered with,
//! and the resting ones rest again.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtx_testkit::{async_client, get_json_async, metric_sum, wait_for_fill_async, Engine, Poll};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_answered_before_a_sigkill_is_there_after_the_restart() {
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_SIM_ORDER_RATE", "0")],
    );
    let client = async_client();
    wait_for_fill_async(&client, &engine, "demo-10").await;

    let url = engine.url("/api/orders");
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|k| {
            let (client, url, answered) = (client.clone(), url.clone(), Arc::clone(&answered));
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0u32.. {
                    // Every fourth order rests (a limit buy far below the market).
                    let body = if n % 4 == 0 {
                        json!({"account_id": format!("demo-{}", 4 + k % 7), "symbol": "EURUSD",
                               "side": "buy", "order_type": "limit", "volume": 0.01, "price": 0.5})
                    } else {
                        json!({"account_id": format!("demo-{}", 4 + k % 7), "symbol": "GBPUSD",
                               "side": if n % 2 == 0 { "buy" } else { "sell" }, "volume": 0.01})
                    };
                    // Once the engine is gone, requests fail: the client stops.
                    let Ok(response) = client.post(&url).json(&body).send().await else {
                        break;
                    };
                    if response.status() != 201 {
                        break;
                    }
                    let Ok(order) = response.json::<serde_json::Value>().await else {
                        break;
                    };
                    acknowledged.push((
                        order["id"].as_str().unwrap().to_owned(),
                        order["status"].as_str().unwrap().to_owned(),
                    ));
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                acknowledged
            })
        })
        .collect();
    Poll::up_to(Duration::from_secs(30))
        .until_async("300 orders answered under load", async || {
            answered.load(Ordering::Relaxed) >= 300
        })
        .await;
    // SIGKILL mid-load, then the same engine again on the same database.
    let engine = tokio::task::block_in_place(|| engine.restart());
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(acknowledged.len() >= 300, "{}", acknowledged.len());

    let mut resting = 0;
    for (id, status) in &acknowledged {
        let (code, order) =
            get_json_async(&client, &engine.url(&format!("/api/orders/{id}"))).await;
        assert_eq!(
            code, 200,
            "order {id}, answered {status}, lost in the crash"
        );
        assert_eq!(
            order["status"],
            status.as_str(),
            "order {id} changed status: {order}"
        );
        resting += usize::from(status == "pending");
    }
    assert!(resting > 0, "resting orders were part of the load");
    let text = engine.scrape();
    assert!(
        metric_sum(&text, "rtx_orders_resting", &[("symbol", "EURUSD")]) >= resting as f64,
        "every acknowledged resting order rests again after the restart"
    );
}
