//! A minimal service instrumented with rtx-monitoring: metrics, JSON logs, health probes and the
//! API layer on one axum app.
//!
//! Run: `cargo run -p rtx-monitoring --example minimal_service`, then
//! `curl localhost:8080/metrics`, `curl localhost:8080/health`, `curl -XPOST localhost:8080/orders`.

use std::time::{Duration, Instant};

use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::Router;
use rtx_monitoring::catalogue::{CatalogueConfig, OrderType, Outcome, Route, TradingMetrics};
use rtx_monitoring::health::{CheckSpec, Health, MemoryCheck, Probe, TaskCheck};
use rtx_monitoring::http::{track_requests, HealthEndpoint, MetricsEndpoint};
use rtx_monitoring::logging::{try_init, LogConfig};
use rtx_monitoring::metrics::Registry;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // InitializeMonitoring: the catalogue, JSON logs, health checks.
    let registry = Registry::new();
    let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default())?;
    let _logs = try_init(
        LogConfig::new("minimal-service", "1.0.0"),
        Some(metrics.monitoring.clone()),
    )?;
    let health = Health::new("1.0.0", Some(metrics.monitoring.clone()));
    health.add(
        CheckSpec::new("memory", Probe::Both),
        MemoryCheck::default(),
    );
    health.add(CheckSpec::new("tasks", Probe::Both), TaskCheck::current());
    let _checks = health.start().await;
    health.set_ready();

    // An order handler that records its execution: outcome, latency, route and volume.
    let order_metrics = metrics.clone();
    let place_order = move || {
        let metrics = order_metrics.clone();
        async move {
            let started = Instant::now();
            let _in_flight = metrics.orders.in_flight();
            tokio::time::sleep(Duration::from_millis(2)).await; // the actual work
            let symbol = metrics
                .symbol("EURUSD")
                .unwrap_or_else(|| unreachable!("EURUSD is a default symbol"));
            metrics.orders.record_execution(
                OrderType::Market,
                symbol,
                Route::BBook,
                Outcome::Filled,
                started.elapsed(),
            );
            tracing::info!(
                symbol = "EURUSD",
                latency_us = started.elapsed().as_micros() as u64,
                "order filled"
            );
            "filled\n"
        }
    };

    let measured = from_fn_with_state(metrics.api.clone(), track_requests);
    let app = Router::new()
        .route("/orders", post(place_order))
        .merge(MetricsEndpoint::new(registry).router())
        .merge(HealthEndpoint::new(health, "minimal-service").router())
        .route_layer(measured);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app).await?;
    Ok(())
}
