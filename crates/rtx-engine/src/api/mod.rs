//! The REST API, the WebSocket quote stream, and the OpenAPI document that describes them and
//! the monitoring endpoints (`openapi`). Every invalid request gets a 4xx with the error body
//! (`error`) and is never an order.

mod admin;
mod error;
mod extract;
mod limits;
mod openapi;
mod orders;
mod ws;

pub use error::{ApiError, ErrorBody};
pub use limits::{BodyDeadline, WebSocketClients};
pub use openapi::ApiDoc;

use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName};
use axum::middleware::{from_fn_with_state, map_response};
use axum::routing::get;
use axum::Router as AxumRouter;
use bytes::Bytes;
use rtx_monitoring::catalogue::TradingMetrics;
use rtx_monitoring::http::track_requests;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::trading::Router;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share, behind one `Arc`: axum clones a handler's state for every request,
/// so a clone is one reference-count increment (each field cloned on its own was five, on
/// counts that every worker thread writes).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    router: Arc<Router>,
    metrics: TradingMetrics,
    admin_token: Option<Arc<[u8]>>,
    /// The serialized default order list and the version of the list it was made from.
    list_cache: Mutex<Option<(u64, Bytes)>>,
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

/// Builds the application: API, WebSocket, admin, the monitoring `endpoints` (`/metrics`,
/// `/health`, `/ready`, `/alerts`) and the OpenAPI document that describes them all, measured by
/// the API metrics layer, within `limits`. Every error answer carries the error body.
pub fn app(
    router: Arc<Router>,
    metrics: TradingMetrics,
    endpoints: AxumRouter,
    admin_token: Option<&str>,
    limits: ApiLimits,
) -> AxumRouter {
    let (api, document) = api_router(limits.body_timeout, &metrics);
    let symbols: Vec<&str> = router
        .market()
        .instruments()
        .iter()
        .map(|i| &*i.name)
        .collect();
    let document = serve_document(document, &symbols);
    let state = AppState(Arc::new(Shared {
        router,
        metrics: metrics.clone(),
        admin_token: admin_token
            .filter(|t| !t.is_empty())
            .map(|t| Arc::from(t.as_bytes())),
        list_cache: Mutex::new(None),
        websocket_clients: WebSocketClients::new(limits.max_websocket_clients),
    }));
    let app = api
        .with_state(state)
        .route(openapi::PATH, get(move || async move { document }))
        .merge(endpoints)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    measured_with_json_errors(app, &metrics)
}

/// The API and admin routes and the document their annotations make, from one list.
fn api_router(
    body_timeout: std::time::Duration,
    metrics: &TradingMetrics,
) -> (AxumRouter<AppState>, utoipa::openapi::OpenApi) {
    let body_deadline = from_fn_with_state(
        BodyDeadline {
            timeout: body_timeout,
            metrics: metrics.api.clone(),
        },
        limits::cut_slow_bodies,
    );
    // Only the handlers that read a body wait for one: the others never pay for the timer.
    let timed = |routes: UtoipaMethodRouter<AppState>| {
        let layer = body_deadline.clone();
        routes.map(|method_router| method_router.route_layer(layer))
    };
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(timed(routes!(orders::create)))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get_one))
        .routes(routes!(orders::positions))
        .routes(routes!(orders::account))
        .routes(routes!(ws::quotes))
        .routes(routes!(admin::lp_action))
        .routes(timed(routes!(admin::sequence_gap)))
        .routes(timed(routes!(admin::move_price)))
        .split_for_parts()
}

/// The document as served: the configured symbols filled in, rendered once.
fn serve_document(
    mut document: utoipa::openapi::OpenApi,
    symbols: &[&str],
) -> ([(HeaderName, &'static str); 1], Bytes) {
    openapi::finish(&mut document, symbols);
    let mut json = serde_json::to_vec_pretty(&document).unwrap_or_default();
    json.push(b'\n');
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(json),
    )
}

/// The management listener's application: only the monitoring `endpoints`, measured like the
/// main listener's, with the same error body.
pub fn management_app(metrics: &TradingMetrics, endpoints: AxumRouter) -> AxumRouter {
    measured_with_json_errors(endpoints, metrics)
}

/// What both listeners put around their routes: the request metrics and server span on every
/// route and on the 404 fallback, and the JSON error body on every error answer.
fn measured_with_json_errors(app: AxumRouter, metrics: &TradingMetrics) -> AxumRouter {
    let measured = from_fn_with_state(metrics.api.clone(), track_requests);
    app.route_layer(measured.clone())
        .fallback_service(
            // `with_state` turns the handler into a route once; without it axum boxes a clone of
            // the handler on every unmatched request.
            AxumRouter::new()
                .fallback(not_found)
                .layer(measured)
                .with_state(()),
        )
        .layer(map_response(error::json_errors))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}
