//! Fault injection for the simulated LPs: `POST /admin/lps/{lp}/disconnect|connect`. Off
//! unless `RTX_ADMIN_TOKEN` is set; then the bearer token is required, compared in constant
//! time, and every refusal is reported with the caller's address, never the credential.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rtx_monitoring::http::bearer_matches;
use serde_json::json;

use super::{ApiError, AppState};

/// `POST /admin/lps/{lp}/{action}`.
pub async fn lp_action(
    State(state): State<AppState>,
    Path((lp, action)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = &state.admin_token else {
        return ApiError::not_found(
            "not_found",
            "admin endpoints are disabled (set RTX_ADMIN_TOKEN to enable them)",
        )
        .into_response();
    };
    if !bearer_matches(&headers, token) {
        rtx_monitoring::logging::events::security(
            &format!("admin {action} {lp}"),
            "refused",
            Some(peer),
            "missing or wrong bearer token",
        );
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
            None,
        )
        .into_response();
    }
    let Some(session) = state.router.lps().iter().find(|s| s.name() == lp) else {
        return ApiError::not_found("unknown_lp", format!("no liquidity provider named `{lp}`"))
            .into_response();
    };
    match action.as_str() {
        "disconnect" => session.disconnect(),
        "connect" => session.connect(),
        _ => {
            return ApiError::not_found("not_found", "the action must be `disconnect` or `connect`")
                .into_response()
        }
    }
    rtx_monitoring::logging::events::security(
        &format!("admin {action} {lp}"),
        "allowed",
        Some(peer),
        "valid bearer token",
    );
    Json(json!({ "lp": session.name(), "action": action })).into_response()
}
