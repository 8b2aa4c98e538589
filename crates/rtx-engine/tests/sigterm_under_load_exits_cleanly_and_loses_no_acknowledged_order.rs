//! SIGTERM while orders are arriving: the engine stops taking new ones (503 or a refused
//! connection), finishes those in flight, closes the database, and exits 0; after a restart on
//! the same data, every order it acknowledged with 201 is there.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rtx_testkit::Engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_and_keeps_every_acknowledged_order() {
    let mut engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_SIM_ORDER_RATE", "0")],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // first quotes
    let url = Arc::new(engine.url("/api/orders"));
    let senders: Vec<_> = (0..20)
        .map(|client| {
            let (http, url) = (http.clone(), Arc::clone(&url));
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..200 {
                    let body = format!(
                        r#"{{"account_id":"demo-{}","symbol":"EURUSD","side":"{}","volume":0.01}}"#,
                        1 + (client + i) % 10,
                        if i % 2 == 0 { "buy" } else { "sell" }
                    );
                    match http.post(url.as_str()).body(body).send().await {
                        Ok(r) if r.status() == 201 => {
                            let order: serde_json::Value = r.json().await.unwrap();
                            acknowledged.push(order["id"].as_str().unwrap().to_owned());
                        }
                        Ok(r) => assert_eq!(r.status(), 503, "while draining, refusals are 503"),
                        Err(_) => break, // the listener has closed
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
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
