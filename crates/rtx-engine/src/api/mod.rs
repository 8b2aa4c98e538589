//! The REST API and the WebSocket quote stream. Every invalid request gets a 4xx with the SPEC
//! error body and is never an order.

mod admin;
mod limits;
mod orders;
mod ws;

pub use limits::{BodyDeadline, WebSocketClients};

use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router as AxumRouter};
use bytes::Bytes;
use rtx_monitoring::catalogue::TradingMetrics;
use rtx_monitoring::http::track_requests;
use serde::Serialize;

use crate::trading::Router;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    router: Arc<Router>,
    metrics: TradingMetrics,
    admin_token: Option<Arc<[u8]>>,
    /// The serialized default order list and the version of the list it was made from.
    list_cache: Arc<Mutex<Option<(u64, Bytes)>>>,
    /// The WebSocket client cap.
    websocket_clients: Arc<WebSocketClients>,
}

/// The API's request-level limits (the listener owns the connection-level ones).
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    /// Time allowed for a request's body once its headers are in.
    pub body_timeout: std::time::Duration,
    /// Most WebSocket clients at once.
    pub max_websocket_clients: usize,
}

/// The SPEC error body: `{"error": {"code", "message", "field"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        field: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field,
        }
    }

    fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&'static str>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message, field)
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message, None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// Builds the application: API, WebSocket, admin, and the monitoring `endpoints` (`/metrics`,
/// `/health`, `/ready`), all measured by the API metrics layer, within `limits`.
pub fn app(
    router: Arc<Router>,
    metrics: TradingMetrics,
    endpoints: AxumRouter,
    admin_token: Option<&str>,
    limits: ApiLimits,
) -> AxumRouter {
    let state = AppState {
        router,
        metrics: metrics.clone(),
        admin_token: admin_token
            .filter(|t| !t.is_empty())
            .map(|t| Arc::from(t.as_bytes())),
        list_cache: Arc::new(Mutex::new(None)),
        websocket_clients: WebSocketClients::new(limits.max_websocket_clients),
    };
    let measured = from_fn_with_state(metrics.api.clone(), track_requests);
    let body_deadline = from_fn_with_state(
        BodyDeadline {
            timeout: limits.body_timeout,
            metrics: metrics.api.clone(),
        },
        limits::cut_slow_bodies,
    );
    AxumRouter::new()
        // Only the handlers that read a body wait for one: the others never pay for the timer.
        .route(
            "/api/orders",
            post(orders::create)
                .route_layer(body_deadline.clone())
                .get(orders::list),
        )
        .route("/api/orders/{id}", get(orders::get_one))
        .route("/api/positions", get(orders::positions))
        .route("/api/accounts/{id}", get(orders::account))
        .route("/ws/quotes", get(ws::quotes))
        .route("/admin/lps/{lp}/{action}", post(admin::lp_action))
        .route(
            "/admin/lps/{lp}/sequence-gap",
            post(admin::sequence_gap).route_layer(body_deadline.clone()),
        )
        .route(
            "/admin/symbols/{symbol}/price",
            post(admin::move_price).route_layer(body_deadline),
        )
        .with_state(state)
        .merge(endpoints)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(measured.clone())
        .fallback_service(AxumRouter::new().fallback(not_found).layer(measured))
}

/// The management listener's application: only the monitoring `endpoints`, measured like the
/// main listener's.
pub fn management_app(metrics: &TradingMetrics, endpoints: AxumRouter) -> AxumRouter {
    let measured = from_fn_with_state(metrics.api.clone(), track_requests);
    endpoints
        .route_layer(measured.clone())
        .fallback_service(AxumRouter::new().fallback(not_found).layer(measured))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}
