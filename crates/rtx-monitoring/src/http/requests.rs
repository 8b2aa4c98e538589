//! The middleware that records the API's request metrics and opens each request's server span.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::catalogue::{ApiMetrics, HttpMethod, UNMATCHED_ROUTE};
use crate::metrics::LabelValue;

/// Axum middleware recording `rtx_http_requests_total`, `rtx_http_request_duration_seconds` and
/// `rtx_http_requests_in_flight`, labelled by the route template (`/api/orders/{id}`), never the
/// raw path. Each request runs in an HTTP server span, the child of the caller's span when the
/// request carries a valid W3C trace context (see [`crate::trace::extract`]). Install it with
/// `Router::route_layer` so the matched route is known, and on the fallback as well, where
/// requests count under `route="unmatched"`:
///
/// ```
/// # use axum::{Router, routing::get, middleware::from_fn_with_state};
/// # use rtx_monitoring::{catalogue::{CatalogueConfig, TradingMetrics}, metrics::Registry, http::track_requests};
/// let metrics = TradingMetrics::new(&Registry::new(), &CatalogueConfig::default()).unwrap();
/// let layer = from_fn_with_state(metrics.api.clone(), track_requests);
/// let app: Router = Router::new()
///     .route("/api/orders", get(|| async { "[]" }))
///     .route_layer(layer.clone())
///     .fallback_service(Router::new().fallback(|| async { "not found" }).layer(layer));
/// ```
///
/// Per request it allocates nothing and takes no lock: the route's handles and span name are
/// resolved on the route's first request and found afterwards by the template
/// (`tests/hot_paths_do_not_allocate.rs` counts it).
pub async fn track_requests(
    State(api): State<ApiMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let method = HttpMethod::from_name(request.method().as_str());
    // The template is shared with the router (a reference count, not a copy), and outlives the
    // request handed on below.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched
        .as_ref()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let handles = api.route(method, route);
    // The HTTP server span (OpenTelemetry HTTP conventions). The caller's trace context makes
    // it a child of the caller's span and gives its trace the caller's tracestate; a missing,
    // repeated or malformed traceparent starts a new trace, never an error.
    let remote = crate::trace::extract(request.headers());
    let span = crate::trace::with_remote_parent(remote, || {
        tracing::info_span!(
            "HTTP",
            otel.kind = "server",
            otel.name = handles.span_name(),
            http.request.method = method.as_str(),
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        )
    });
    let _in_flight = api.in_flight();
    let start = Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    // Recorded inside the span, so the duration histogram's exemplar names this request.
    span.in_scope(|| handles.record(status, start.elapsed()));
    response
}
