//! SIGTERM while orders are arriving: the engine stops taking new ones (503 or a refused
//! connection), finishes those in flight, closes the database, and exits 0; after a restart on
//! the same data, every order it acknowledged with 201 is there.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtx_testkit::{async_client, market_order, wait_for_fill_async, wait_until_async, Engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_and_keeps_every_acknowledged_order() {
    let mut engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_SIM_ORDER_RATE", "0")],
    );
    let http = async_client();
    wait_for_fill_async(&http, &engine, "demo-4").await; // first quotes
    let url = Arc::new(engine.url("/api/orders"));
    // How many orders have been acknowledged so far, so the signal comes under load.
    let count = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..20)
        .map(|client| {
            let (http, url, count) = (http.clone(), Arc::clone(&url), Arc::clone(&count));
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..200 {
                    let body = market_order(
                        &format!("demo-{}", 1 + (client + i) % 10),
                        "EURUSD",
                        if i % 2 == 0 { "buy" } else { "sell" },
                        0.01,
                    );
                    match http.post(url.as_str()).body(body).send().await {
                        Ok(r) if r.status() == 201 => {
                            let order: serde_json::Value = r.json().await.unwrap();
                            acknowledged.push(order["id"].as_str().unwrap().to_owned());
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => assert_eq!(r.status(), 503, "while draining, refusals are 503"),
                        Err(_) => break, // the listener has closed
                    }
                }
                acknowledged
            })
        })
        .collect();
    wait_until_async(
        Duration::from_secs(20),
        "orders acknowledged before the signal",
        async || count.load(Ordering::Relaxed) >= 40,
    )
    .await;
    let code = tokio::task::block_in_place(|| engine.terminate(Duration::from_secs(15)));
    assert_eq!(code, Some(0), "exit code after SIGTERM");
    let mut acknowledged = Vec::new();
    for s in senders {
        acknowledged.extend(s.await.unwrap());
    }
    assert!(
        !acknowledged.is_empty(),
        "some orders were acknowledged before the signal"
    );

    let engine = tokio::task::block_in_place(|| engine.restart());
    for id in &acknowledged {
        let r = http
            .get(engine.url(&format!("/api/orders/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "acknowledged order {id} missing after restart"
        );
    }
}
