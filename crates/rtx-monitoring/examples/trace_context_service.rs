//! A service that calls other services, written the way the W3C Trace Context test harness
//! drives a vendor's service: `POST /test` with a JSON list of `{"url", "arguments"}`, each
//! forwarded as a `POST` of its `arguments` to its `url`, with the trace context propagated.
//! The request layer opens the server span from the incoming headers; every outgoing call has
//! its own client span, whose context goes on the call.
//!
//! Run: `cargo run -p rtx-monitoring --example trace_context_service -- 127.0.0.1:5000`, then
//! point the harness (`python test.py http://127.0.0.1:5000/test`) at it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::{Json, Router};
use rtx_monitoring::catalogue::ApiMetrics;
use rtx_monitoring::http::track_requests;
use rtx_monitoring::trace::RequestBuilderExt;
use tracing::Instrument;

/// The service's routes: `POST /test` inside the library's request layer.
pub fn router(api: ApiMetrics) -> Router {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
    Router::new()
        .route("/test", post(forward))
        .with_state(client)
        .route_layer(from_fn_with_state(api, track_requests))
}

/// Forwards each call in order, each under its own client span.
async fn forward(
    State(client): State<reqwest::Client>,
    Json(calls): Json<Vec<serde_json::Value>>,
) -> StatusCode {
    for call in calls {
        let Some(url) = call["url"].as_str() else {
            return StatusCode::BAD_REQUEST;
        };
        let span = tracing::info_span!("POST", otel.kind = "client", url.full = url);
        let request = client
            .post(url)
            .json(&call["arguments"])
            .trace_context(&span);
        // A callee that fails does not stop the calls after it: the harness checks each one.
        let _ = request.send().instrument(span).await;
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use rtx_monitoring::catalogue::{CatalogueConfig, TradingMetrics};
    use rtx_monitoring::metrics::Registry;
    use rtx_monitoring::trace::SpanLayer;
    use tracing_subscriber::layer::SubscriberExt;

    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());
    // Ids and propagation need the span layer; nothing is exported.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(SpanLayer::new(1.0, None)),
    )?;
    let api = TradingMetrics::new(&Registry::new(), &CatalogueConfig::default())?
        .api
        .clone();
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{address}/test");
    axum::serve(listener, router(api)).await?;
    Ok(())
}
