//! 10,000 `GET /api/orders` from 100 concurrent clients: no failure, and
//! `rtx_http_requests_total{route="/api/orders"}` rises by exactly the number served.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rtx_testkit::{metric_sum, Engine};

const CLIENTS: usize = 100;
const REQUESTS_EACH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_gets_from_a_hundred_clients_are_all_counted() {
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_SIM_ORDER_RATE", "0")],
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(rtx_testkit::REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let labels = [
        ("method", "GET"),
        ("route", "/api/orders"),
        ("status", "200"),
    ];
    let before = metric_sum(&engine.scrape(), "rtx_http_requests_total", &labels);

    let url = Arc::new(engine.url("/api/orders"));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, url) = (http.clone(), Arc::clone(&url));
            tokio::spawn(async move {
                let mut ok = 0usize;
                for _ in 0..REQUESTS_EACH {
                    let response = http.get(url.as_str()).send().await.expect("request");
                    assert_eq!(response.status(), 200);
                    let body: serde_json::Value = response.json().await.expect("JSON list");
                    assert!(body.is_array());
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let mut served = 0;
    for c in clients {
        served += c.await.expect("client task");
    }
    assert_eq!(served, CLIENTS * REQUESTS_EACH);
    let after = metric_sum(&engine.scrape(), "rtx_http_requests_total", &labels);
    assert_eq!(
        after - before,
        served as f64,
        "every GET counted exactly once"
    );
}
