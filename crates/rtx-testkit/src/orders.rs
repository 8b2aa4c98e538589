//! Orders as tests send them: the body of a market order, posting one and reading its answer,
//! and waiting until the engine can fill (its LPs' first quotes have arrived).

use std::time::Duration;

use crate::client::json;
use crate::engine::Engine;
use crate::wait::Poll;

/// How long [`wait_for_fill`] waits for the first quotes.
const FIRST_FILL: Duration = Duration::from_secs(30);

/// The JSON body of a market order.
pub fn market_order(account: &str, symbol: &str, side: &str, volume: f64) -> String {
    serde_json::json!({
        "account_id": account,
        "symbol": symbol,
        "side": side,
        "volume": volume,
    })
    .to_string()
}

/// `POST /api/orders` with `body` (any text, so that invalid bodies can be sent too): the status
/// and the JSON answer (the order, or the error body).
///
/// # Panics
/// When nothing answers or the answer is not JSON.
pub fn post_order(
    client: &reqwest::blocking::Client,
    engine: &Engine,
    body: &str,
) -> (u16, serde_json::Value) {
    let url = engine.url("/api/orders");
    let response = client
        .post(&url)
        .body(body.to_owned())
        .send()
        .unwrap_or_else(|e| panic!("POST {url} {body}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .unwrap_or_else(|e| panic!("POST {url} {body}: answer: {e}"));
    (status, json(&text, &format!("POST {url} {body}"), status))
}

/// [`post_order`] for async tests.
///
/// # Panics
/// When nothing answers or the answer is not JSON.
pub async fn post_order_async(
    client: &reqwest::Client,
    engine: &Engine,
    body: &str,
) -> (u16, serde_json::Value) {
    let url = engine.url("/api/orders");
    let response = client
        .post(&url)
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url} {body}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("POST {url} {body}: answer: {e}"));
    (status, json(&text, &format!("POST {url} {body}"), status))
}

/// Posts small EURUSD market orders from `account` until one fills, and returns it: the LPs'
/// first quotes have arrived (an order before them is rejected `no_quote`). Note that it places
/// orders: count from after it.
///
/// # Panics
/// When no order fills within 30 s.
pub fn wait_for_fill(
    client: &reqwest::blocking::Client,
    engine: &Engine,
    account: &str,
) -> serde_json::Value {
    let body = market_order(account, "EURUSD", "buy", 0.01);
    Poll::up_to(FIRST_FILL)
        .every(Duration::from_millis(100))
        .until_ok(&format!("an order from {account} to fill"), || {
            filled(post_order(client, engine, &body))
        })
}

/// [`wait_for_fill`] for async tests.
///
/// # Panics
/// When no order fills within 30 s.
pub async fn wait_for_fill_async(
    client: &reqwest::Client,
    engine: &Engine,
    account: &str,
) -> serde_json::Value {
    let body = market_order(account, "EURUSD", "buy", 0.01);
    Poll::up_to(FIRST_FILL)
        .every(Duration::from_millis(100))
        .until_ok_async(&format!("an order from {account} to fill"), async || {
            filled(post_order_async(client, engine, &body).await)
        })
        .await
}

fn filled((status, order): (u16, serde_json::Value)) -> Result<serde_json::Value, String> {
    if status == 201 && order["status"] == "filled" {
        Ok(order)
    } else {
        Err(format!("{status} {order}"))
    }
}
