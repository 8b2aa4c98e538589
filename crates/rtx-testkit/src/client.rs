//! HTTP clients for talking to the engine's API, sync and async, and the JSON calls every test
//! makes the same way (a JSON `GET`, the admin fault injections). Orders are in `orders`, probes in
//! `probes`.

use std::time::Duration;

use crate::engine::Engine;

/// The timeout of [`blocking_client`] and [`async_client`]: generous, since a loaded machine
/// can be slow, but finite, so a request that hangs fails its test instead of hanging it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking client with [`REQUEST_TIMEOUT`]. Not for async tests: it runs its own runtime.
///
/// # Panics
/// When the client cannot be built.
pub fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build a blocking HTTP client")
}

/// An async client with [`REQUEST_TIMEOUT`].
///
/// # Panics
/// When the client cannot be built.
pub fn async_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build an HTTP client")
}

/// `GET url`: the status and the JSON body.
///
/// # Panics
/// When nothing answers or the body is not JSON.
pub fn get_json(client: &reqwest::blocking::Client, url: &str) -> (u16, serde_json::Value) {
    let response = client
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (status, json(&text, url, status))
}

/// [`get_json`] for async tests.
///
/// # Panics
/// When nothing answers or the body is not JSON.
pub async fn get_json_async(client: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (status, json(&text, url, status))
}

/// `POST path` with the admin `token` and an optional JSON body.
///
/// # Panics
/// When the engine does not answer 200.
fn admin_post(
    client: &reqwest::blocking::Client,
    engine: &Engine,
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
) {
    let url = engine.url(path);
    let mut request = client.post(&url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(response.status(), 200, "POST {url}");
}

/// [`admin_post`] for async tests.
async fn admin_post_async(
    client: &reqwest::Client,
    engine: &Engine,
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
) {
    let url = engine.url(path);
    let mut request = client.post(&url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(response.status(), 200, "POST {url}");
}

/// `POST /admin/lps/{lp}/{action}` (`connect` or `disconnect`) with the admin `token`.
///
/// # Panics
/// When the engine does not answer 200.
pub fn lp_admin(
    client: &reqwest::blocking::Client,
    engine: &Engine,
    token: &str,
    lp: &str,
    action: &str,
) {
    admin_post(
        client,
        engine,
        token,
        &format!("/admin/lps/{lp}/{action}"),
        None,
    );
}

/// [`lp_admin`] for async tests.
///
/// # Panics
/// When the engine does not answer 200.
pub async fn lp_admin_async(
    client: &reqwest::Client,
    engine: &Engine,
    token: &str,
    lp: &str,
    action: &str,
) {
    let path = format!("/admin/lps/{lp}/{action}");
    admin_post_async(client, engine, token, &path, None).await;
}

/// `POST /admin/symbols/{symbol}/price`: moves every LP's simulated price of `symbol` to `mid`
/// (their next quotes carry it), with the admin `token`.
///
/// # Panics
/// When the engine does not answer 200.
pub fn move_price(
    client: &reqwest::blocking::Client,
    engine: &Engine,
    token: &str,
    symbol: &str,
    mid: f64,
) {
    let path = format!("/admin/symbols/{symbol}/price");
    admin_post(
        client,
        engine,
        token,
        &path,
        Some(serde_json::json!({ "mid": mid })),
    );
}

/// `POST /admin/lps/{lp}/sequence-gap`: the LP loses its next `messages` messages, with the
/// admin `token`.
///
/// # Panics
/// When the engine does not answer 200.
pub async fn inject_sequence_gap_async(
    client: &reqwest::Client,
    engine: &Engine,
    token: &str,
    lp: &str,
    messages: u64,
) {
    let path = format!("/admin/lps/{lp}/sequence-gap");
    let body = serde_json::json!({ "messages": messages });
    admin_post_async(client, engine, token, &path, Some(body)).await;
}

/// Parses a response body that must be JSON, saying whose it was when it is not.
pub(crate) fn json(text: &str, what: &str, status: u16) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| {
        panic!("{what} answered {status} with a body that is not JSON ({e}): {text}")
    })
}
