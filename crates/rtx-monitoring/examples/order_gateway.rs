//! An order gateway instrumented the way another team would do it: the whole stack from one
//! builder, only the catalogue sections it has, a metric family and a health check of its own,
//! an outgoing call to a venue with the trace context propagated, and a clean SIGTERM drain.
//!
//! Run: `cargo run -p rtx-monitoring --example order_gateway -- 127.0.0.1:8090`, then
//! `curl -XPOST localhost:8090/orders`, `curl localhost:8090/metrics`, `curl localhost:8090/ready`.
//! The venue is simulated on the same port (`POST /venue/fill`) so the example needs nothing
//! else; in a real gateway it is another service, and the call is the same. Set `OTLP_ENDPOINT`
//! (`http://127.0.0.1:4318`) to export spans to a collector.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use rtx_monitoring::catalogue::{OrderType, Outcome, Route, Sections};
use rtx_monitoring::health::{CheckResult, CheckSpec, Probe, Status};
use rtx_monitoring::metrics::{Histogram, LabelValue, MetricSpec};
use rtx_monitoring::trace::RequestBuilderExt;
use rtx_monitoring::Monitoring;
use tracing::Instrument;

/// What the handlers share.
#[derive(Clone)]
struct Gateway {
    monitoring: Arc<Monitoring>,
    /// The gateway's own family: time spent waiting on the venue.
    venue_latency: Histogram,
    client: reqwest::Client,
    venue_url: String,
}

/// `POST /orders`: sends the order to the venue under a client span, and records it.
async fn place_order(State(gateway): State<Gateway>) -> Json<serde_json::Value> {
    let metrics = gateway.monitoring.metrics();
    let started = Instant::now();
    let _in_flight = metrics.orders.in_flight();
    let call = tracing::info_span!("venue.fill", otel.kind = "client", venue = "LMAX");
    let sent = gateway
        .client
        .post(&gateway.venue_url)
        .body(r#"{"symbol":"EURUSD","side":"buy","volume":0.1}"#)
        .trace_context(&call)
        .send()
        .instrument(call.clone())
        .await;
    let venue: serde_json::Value = match sent {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(e) => serde_json::json!({"error": e.to_string()}),
    };
    // Observed inside the client span: the bucket's exemplar names this call's trace.
    call.in_scope(|| gateway.venue_latency.observe_duration(started.elapsed()));
    let outcome = if venue.get("error").is_none() {
        Outcome::Filled
    } else {
        Outcome::Error
    };
    if let Some(eurusd) = metrics.symbol("EURUSD") {
        metrics.orders.record_execution(
            OrderType::Market,
            eurusd,
            Route::ABook,
            outcome,
            started.elapsed(),
        );
    }
    tracing::info!(symbol = "EURUSD", venue = "LMAX", "order sent to the venue");
    Json(serde_json::json!({"status": outcome.as_str(), "venue": venue}))
}

/// `POST /venue/fill`: the simulated venue, which shows the trace context it received.
async fn venue_fill(headers: HeaderMap) -> Json<serde_json::Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    Json(serde_json::json!({
        "filled": true,
        "traceparent": header("traceparent"),
        "tracestate": header("tracestate"),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;

    // The venue's reachability is part of readiness: a gateway that cannot reach it should
    // not get orders.
    let venue_probe = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let venue_health = format!("http://{local}/venue/fill");
    let mut builder = Monitoring::builder("order-gateway", env!("CARGO_PKG_VERSION"));
    if let Ok(endpoint) = std::env::var("OTLP_ENDPOINT") {
        builder = builder.otlp_endpoint(&endpoint);
    }
    let monitoring = builder
        .sections(Sections {
            orders: true,
            lps: true,
            api: true,
            runtime: true,
            ..Sections::NONE
        })
        .symbols(["EURUSD", "GBPUSD", "USDJPY"])
        .venues([("LMAX", "FIX")])
        .check_fn(
            CheckSpec::new("venue", Probe::Readiness).every(Duration::from_secs(2)),
            move || {
                let (client, url) = (venue_probe.clone(), venue_health.clone());
                async move {
                    match client.post(url).send().await {
                        Ok(r) if r.status().is_success() => {
                            CheckResult::new(Status::Healthy, "the venue answers")
                        }
                        Ok(r) => CheckResult::new(
                            Status::Unhealthy,
                            format!("the venue answered {}", r.status()),
                        ),
                        Err(e) => CheckResult::new(Status::Unhealthy, e.to_string()),
                    }
                }
            },
        )
        .start()
        .await?;

    // A family of the gateway's own, in the same registry as the catalogue.
    let venue_latency = monitoring.registry().histogram(
        MetricSpec::histogram(
            "gateway_venue_latency_seconds",
            "Time from sending an order to the venue to its answer, in seconds.",
            &[0.001, 0.005, 0.025, 0.1, 0.5],
        )
        .with_unit("seconds")
        .with_exemplars(),
    )?;
    let monitoring = Arc::new(monitoring);
    let gateway = Gateway {
        monitoring: Arc::clone(&monitoring),
        venue_latency,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?,
        venue_url: format!("http://{local}/venue/fill"),
    };
    let app = monitoring.measure(
        Router::new()
            .route("/orders", post(place_order))
            .route("/venue/fill", post(venue_fill))
            .with_state(gateway),
    );
    tracing::info!(listen_addr = %local, "order gateway listening");

    // SIGTERM: readiness turns 503 at once, requests keep being served for the drain, then the
    // server stops, and the monitoring stack exports and flushes what it holds.
    let draining = Arc::clone(&monitoring);
    let shutdown = async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        draining.begin_drain();
        tracing::info!("draining: /ready answers 503");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("order gateway stopped");
    if let Ok(monitoring) = Arc::try_unwrap(monitoring) {
        monitoring.shutdown(Duration::from_secs(3)).await;
    }
    Ok(())
}
