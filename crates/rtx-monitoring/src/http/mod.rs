//! HTTP for axum: `/metrics` (content negotiation, zstd and gzip, `name[]`, bearer auth),
//! `/health` and `/ready`, `/alerts`, and the middleware that records the API's request metrics.
//!
//! The only module that knows about axum. It renders what the registry, the health checks and
//! the alert evaluator hold, and decides nothing of its own.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

use crate::metrics::exposition::parse_header_list;

mod metrics;
mod requests;

pub use metrics::MetricsEndpoint;
pub use requests::track_requests;

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
