//! HTTP for axum: `/metrics` (content negotiation, gzip, bearer auth), `/health` and `/ready`,
//! `/alerts`, and the middleware that records the API's request metrics.
//!
//! The only module that knows about axum. It renders what the registry, the health checks and
//! the alert evaluator hold, and decides nothing of its own.

use std::io::Write;
use std::sync::Arc;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY,
    WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

use crate::catalogue::{ApiMetrics, HttpMethod, UNMATCHED_ROUTE};
use crate::metrics::exposition::parse_header_list;
use crate::metrics::LabelValue;
use crate::metrics::{Format, Registry};

/// Serves a registry at `/metrics`.
#[derive(Clone)]
pub struct MetricsEndpoint {
    registry: Registry,
    token: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token itself never appears in debug output.
        f.debug_struct("MetricsEndpoint")
            .field("auth", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsEndpoint {
    /// An open endpoint.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            token: None,
        }
    }

    /// Requires `Authorization: Bearer <token>`; an empty token leaves the endpoint open.
    pub fn with_bearer_token(mut self, token: Option<&str>) -> Self {
        self.token = token
            .filter(|t| !t.is_empty())
            .map(|t| Arc::from(t.as_bytes()));
        self
    }

    /// A router serving `GET /metrics`, to merge into the application's router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(self)
    }

    /// True when no token is required or `headers` carry it (see [`bearer_matches`]).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        self.token
            .as_deref()
            .is_none_or(|expected| bearer_matches(headers, expected))
    }

    /// Renders the exposition a request asks for: format from `Accept`, gzip from
    /// `Accept-Encoding`.
    pub fn render(&self, headers: &HeaderMap) -> Response {
        let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
        let mut body = Vec::with_capacity(64 * 1024);
        self.registry.encode(format, &mut body);
        let mut response_headers = HeaderMap::new();
        response_headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        response_headers.insert(VARY, HeaderValue::from_static("accept, accept-encoding"));
        if accepts_gzip(headers) {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            if encoder.write_all(&body).is_ok() {
                if let Ok(compressed) = encoder.finish() {
                    response_headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    return (StatusCode::OK, response_headers, compressed).into_response();
                }
            }
        }
        (StatusCode::OK, response_headers, body).into_response()
    }
}

/// Serves `/health` (liveness) and `/ready` (readiness) from the latest check results: a probe
/// never waits on a check. 200 for healthy or degraded, 503 for unhealthy; the IETF
/// health-check draft format when `Accept` asks for `application/health+json`.
#[derive(Clone, Debug)]
pub struct HealthEndpoint {
    health: crate::health::Health,
    service_id: Arc<str>,
    /// Rendered bodies by (readiness, IETF format), with the key they were rendered for.
    cache: Arc<[std::sync::Mutex<Option<Rendered>>; 4]>,
}

/// A rendering stays valid while no result or phase changed and the uptime it shows is within
/// 100 ms; probes then cost a lookup instead of a JSON rendering.
type RenderKey = (u64, u128);

impl HealthEndpoint {
    /// Serves `health` for the service `service_id`.
    pub fn new(health: crate::health::Health, service_id: &str) -> Self {
        Self {
            health,
            service_id: Arc::from(service_id),
            cache: Arc::new(Default::default()),
        }
    }

    /// A router serving `GET /health` and `GET /ready`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/health", get(|State(e): State<HealthEndpoint>, h: HeaderMap| async move { e.render(false, &h) }))
            .route("/ready", get(|State(e): State<HealthEndpoint>, h: HeaderMap| async move { e.render(true, &h) }))
            .with_state(self)
    }

    fn render(&self, readiness: bool, headers: &HeaderMap) -> Response {
        let ietf = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_header_list)
            .any(|item| item.value == "application/health+json" && item.quality > 0.0);
        let key = (
            self.health.generation(),
            self.health.uptime().as_millis() / 100,
        );
        let slot = &self.cache[usize::from(readiness) * 2 + usize::from(ietf)];
        let cached = slot
            .lock()
            .ok()
            .and_then(|c| c.as_ref().filter(|r| r.key == key).cloned());
        let rendered = cached.unwrap_or_else(|| {
            let report = if readiness {
                self.health.readiness()
            } else {
                self.health.liveness()
            };
            let json = if ietf {
                report.to_health_json(&self.service_id)
            } else {
                report.to_json()
            };
            let status = StatusCode::from_u16(report.http_status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let rendered = Rendered {
                key,
                status,
                body: Bytes::from(json.to_string()),
            };
            if let Ok(mut c) = slot.lock() {
                *c = Some(rendered.clone());
            }
            rendered
        });
        let content_type = if ietf {
            "application/health+json"
        } else {
            "application/json"
        };
        let mut response_headers = HeaderMap::new();
        response_headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        (rendered.status, response_headers, rendered.body).into_response()
    }
}

/// One rendered verdict.
#[derive(Clone, Debug)]
struct Rendered {
    key: RenderKey,
    status: StatusCode,
    body: Bytes,
}

/// Serves `GET /alerts`: active alerts and the history, newest first.
#[cfg(feature = "tokio-runtime")]
pub fn alerts_router(evaluator: crate::alerts::Evaluator) -> Router {
    Router::new()
        .route(
            "/alerts",
            get(|State(e): State<crate::alerts::Evaluator>| async move {
                (
                    [(CONTENT_TYPE, "application/json")],
                    e.to_json().to_string(),
                )
            }),
        )
        .with_state(evaluator)
}

/// True when `headers` carry `Authorization: Bearer <expected>`. The comparison takes the same
/// time wherever the presented token first differs, so timing reveals nothing of the token.
pub fn bearer_matches(headers: &HeaderMap, expected: &[u8]) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, token)| bool::from(token.trim().as_bytes().ct_eq(expected)))
}

async fn serve_metrics(State(endpoint): State<MetricsEndpoint>, request: Request) -> Response {
    let headers = request.headers();
    if !endpoint.authorized(headers) {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let reason = if headers.contains_key(AUTHORIZATION) {
            "the presented credential does not match"
        } else {
            "no Authorization header"
        };
        crate::logging::events::security("scrape /metrics", "refused", peer, reason);
        return unauthorized();
    }
    endpoint.render(headers)
}

fn unauthorized() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    );
    (
        StatusCode::UNAUTHORIZED,
        headers,
        "a valid bearer token is required for /metrics\n",
    )
        .into_response()
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_header_list)
        .any(|item| (item.value == "gzip" || item.value == "*") && item.quality > 0.0)
}

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
pub async fn track_requests(
    State(api): State<ApiMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let method = HttpMethod::from_name(request.method().as_str());
    let route: std::borrow::Cow<'static, str> = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned().into(),
        None => UNMATCHED_ROUTE.into(),
    };
    // The HTTP server span (OpenTelemetry HTTP conventions). The caller's trace context makes
    // it a child of the caller's span and gives its trace the caller's tracestate; a missing,
    // repeated or malformed traceparent starts a new trace, never an error.
    let remote = crate::trace::extract(request.headers());
    let span = crate::trace::with_remote_parent(remote, || {
        tracing::info_span!(
            "HTTP",
            otel.kind = "server",
            otel.name = %format_args!("{} {}", method.as_str(), route),
            http.request.method = method.as_str(),
            http.route = %route,
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
    span.in_scope(|| api.record_request(method, &route, status, start.elapsed()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_is_used_only_when_acceptable() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip; q=0.000"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn bearer_auth_accepts_only_the_token() {
        let e = MetricsEndpoint::new(Registry::new()).with_bearer_token(Some("s3cret"));
        assert!(e.authorized(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(e.authorized(&headers(&[("authorization", "bearer s3cret")])));
        assert!(!e.authorized(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!e.authorized(&headers(&[("authorization", "Basic s3cret")])));
        assert!(!e.authorized(&HeaderMap::new()));
        assert!(MetricsEndpoint::new(Registry::new()).authorized(&HeaderMap::new()));
    }
}
