//! 2,000 concurrent market orders, on SQLite and on PostgreSQL: every `201` is counted exactly
//! once in `rtx_orders_total` under its outcome, reads back by id with the same status, and is
//! still there after a restart on the same database.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rtx_testkit::{metric_sum, wait_for_fill_async, Engine, PgCluster};
use tokio::sync::Semaphore;

const ORDERS: usize = 2_000;
const CONCURRENCY: usize = 200;

fn outcome_totals(text: &str) -> BTreeMap<&'static str, f64> {
    ["filled", "rejected", "error"]
        .into_iter()
        .map(|o| {
            (
                o,
                metric_sum(
                    text,
                    "rtx_orders_total",
                    &[("order_type", "market"), ("outcome", o)],
                ),
            )
        })
        .collect()
}

async fn run(database_url: Option<&str>) {
    let mut env = vec![("RTX_SIM_ORDER_RATE", "0")];
    if let Some(url) = database_url {
        env.push(("RTX_DATABASE_URL", url));
    }
    let engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &env);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(rtx_testkit::REQUEST_TIMEOUT)
        .build()
        .unwrap();
    // Orders need prices: wait for the LPs' first quotes.
    wait_for_fill_async(&http, &engine, "demo-10").await;
    let before = outcome_totals(&engine.scrape());

    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let url = Arc::new(engine.url("/api/orders"));
    let tasks: Vec<_> = (0..ORDERS)
        .map(|i| {
            let (http, url, gate) = (http.clone(), Arc::clone(&url), Arc::clone(&gate));
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                // demo-1..3 route to an LP (A-book), the rest fill internally (B-book).
                let symbol = ["EURUSD", "GBPUSD", "USDJPY"][i % 3];
                let body = serde_json::json!({
                    "account_id": format!("demo-{}", 1 + i % 10),
                    "symbol": symbol,
                    "side": if i % 2 == 0 { "buy" } else { "sell" },
                    "order_type": "market",
                    "volume": 0.01,
                    "client_order_id": format!("c-{i}"),
                });
                let response = http
                    .post(url.as_str())
                    .json(&body)
                    .send()
                    .await
                    .expect("order request");
                let status = response.status();
                let order: serde_json::Value = response.json().await.unwrap();
                assert_eq!(
                    status, 201,
                    "every valid order is answered 201, got {order}"
                );
                assert_eq!(order["client_order_id"], format!("c-{i}"));
                (
                    order["id"].as_str().unwrap().to_owned(),
                    order["status"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    let mut answered = Vec::with_capacity(ORDERS);
    for t in tasks {
        answered.push(t.await.unwrap());
    }
    let after = outcome_totals(&engine.scrape());
    for outcome in ["filled", "rejected", "error"] {
        let answered_as = answered.iter().filter(|(_, s)| s == outcome).count() as f64;
        assert_eq!(
            after[outcome] - before[outcome],
            answered_as,
            "orders answered `{outcome}` vs rtx_orders_total"
        );
    }
    assert!(
        answered.iter().filter(|(_, s)| s == "filled").count() > ORDERS * 9 / 10,
        "most orders fill"
    );

    for (id, status) in answered.iter().step_by(7) {
        let order: serde_json::Value = http
            .get(engine.url(&format!("/api/orders/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(order["status"], status.as_str());
    }

    // After a restart on the same database every acknowledged order is still there.
    let engine = tokio::task::block_in_place(|| engine.restart());
    for (id, status) in &answered {
        let response = http
            .get(engine.url(&format!("/api/orders/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "order {id} lost across a restart");
        let order: serde_json::Value = response.json().await.unwrap();
        assert_eq!(order["status"], status.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_on_sqlite_are_stored_and_counted_exactly_once() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_on_postgresql_are_stored_and_counted_exactly_once() {
    let cluster = PgCluster::start();
    run(Some(&cluster.url)).await;
}

/// PostgreSQL fixes a cached statement's parameter types at its first execution, and the
/// `Any` driver binds a NULL float as a 4-byte float: an order row first written without a
/// fill price (a rejection) or a limit price (a market order) made every later row with one
/// fail "incorrect binary data format". Rows with and without each, in every order, all store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_and_without_prices_are_stored_on_postgresql() {
    let cluster = PgCluster::start();
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[
            ("RTX_DATABASE_URL", cluster.url.as_str()),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let client = rtx_testkit::async_client();
    let post = |body: serde_json::Value| {
        let (client, engine) = (&client, &engine);
        async move { rtx_testkit::post_order_async(client, engine, &body.to_string()).await }
    };
    // Rejected first (no fill price, no limit price): each connection's first insert.
    for _ in 0..10 {
        let (status, order) = post(serde_json::json!({
            "account_id": "demo-5", "symbol": "EURUSD", "side": "buy", "volume": 500.0,
        }))
        .await;
        assert_eq!(
            (status, order["status"].as_str()),
            (201, Some("rejected")),
            "{order}"
        );
    }
    wait_for_fill_async(&client, &engine, "demo-5").await;
    for i in 0..10 {
        let (status, order) = post(serde_json::json!({
            "account_id": "demo-6", "symbol": "EURUSD", "side": "buy", "volume": 0.1,
        }))
        .await;
        assert_eq!(
            (status, order["status"].as_str()),
            (201, Some("filled")),
            "{i}: {order}"
        );
        let (status, order) = post(serde_json::json!({
            "account_id": "demo-7", "symbol": "EURUSD", "side": "buy", "order_type": "limit",
            "volume": 0.1, "price": 0.9,
        }))
        .await;
        assert_eq!(
            (status, order["status"].as_str()),
            (201, Some("pending")),
            "{i}: {order}"
        );
    }
}
