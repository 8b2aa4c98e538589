//! Fault injection: `POST /admin/lps/{lp}/disconnect|connect` drops or restores a simulated
//! LP session, `POST /admin/lps/{lp}/sequence-gap` makes it lose messages, and
//! `POST /admin/symbols/{symbol}/price` moves a symbol's simulated market, so that tests and
//! game days can trigger resting orders, margin calls and stop-outs on demand instead of
//! waiting for the random walk. Off unless `RTX_ADMIN_TOKEN` is set; then the bearer token is
//! required, compared in constant time, and every request is reported as a security event with
//! the caller's address, never the credential.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rtx_monitoring::http::bearer_matches;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};
use crate::market::lp::LpSession;

/// Largest injected sequence gap: a real session that lost more would be reset, not resent.
const MAX_INJECTED_GAP: u64 = 1_000_000;

/// Lets the request through when admin endpoints are on and the bearer token matches;
/// otherwise the answer to send. Both outcomes are logged as security events.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    action: &str,
) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::not_found(
            "not_found",
            "admin endpoints are disabled (set RTX_ADMIN_TOKEN to enable them)",
        ));
    };
    if !bearer_matches(headers, token) {
        rtx_monitoring::logging::events::security(
            action,
            "refused",
            Some(peer),
            "missing or wrong credential",
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
            None,
        ));
    }
    rtx_monitoring::logging::events::security(action, "allowed", Some(peer), "valid bearer token");
    Ok(())
}

fn session<'a>(state: &'a AppState, lp: &str) -> Result<&'a LpSession, ApiError> {
    state
        .router
        .lps()
        .iter()
        .find(|s| s.name() == lp)
        .map(AsRef::as_ref)
        .ok_or_else(|| {
            ApiError::not_found("unknown_lp", format!("no liquidity provider named `{lp}`"))
        })
}

/// A JSON body, or the SPEC error body naming what is wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload
        .map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_body", e.body_text(), None))
}

/// `POST /admin/lps/{lp}/{action}`: `disconnect` or `connect`.
pub async fn lp_action(
    State(state): State<AppState>,
    Path((lp, action)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, peer, &format!("admin {action} {lp}")) {
        return refused.into_response();
    }
    let session = match session(&state, &lp) {
        Ok(s) => s,
        Err(unknown) => return unknown.into_response(),
    };
    match action.as_str() {
        "disconnect" => session.disconnect(),
        "connect" => session.connect(),
        _ => {
            return ApiError::not_found("not_found", "the action must be `disconnect` or `connect`")
                .into_response()
        }
    }
    Json(json!({ "lp": session.name(), "action": action })).into_response()
}

/// Body of `POST /admin/lps/{lp}/sequence-gap`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceGap {
    /// How many messages the LP loses before its next one.
    messages: u64,
}

/// `POST /admin/lps/{lp}/sequence-gap` with `{"messages": N}`: the LP loses its next N
/// messages, so `rtx_lp_session_sequence_gaps_total` grows by exactly N.
pub async fn sequence_gap(
    State(state): State<AppState>,
    Path(lp): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    payload: Result<Json<SequenceGap>, JsonRejection>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, peer, &format!("admin sequence-gap {lp}")) {
        return refused.into_response();
    }
    let session = match session(&state, &lp) {
        Ok(s) => s,
        Err(unknown) => return unknown.into_response(),
    };
    let gap = match body(payload) {
        Ok(gap) => gap,
        Err(bad) => return bad.into_response(),
    };
    if !(1..=MAX_INJECTED_GAP).contains(&gap.messages) {
        return ApiError::bad_request(
            "invalid_messages",
            format!("messages must be between 1 and {MAX_INJECTED_GAP}"),
            Some("messages"),
        )
        .into_response();
    }
    session.inject_sequence_gap(gap.messages);
    Json(json!({ "lp": session.name(), "sequence_gap": gap.messages })).into_response()
}

/// Body of `POST /admin/symbols/{symbol}/price`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceMove {
    /// The new mid price every LP quotes around.
    mid: f64,
}

/// `POST /admin/symbols/{symbol}/price` with `{"mid": 1.0712}`: every LP's simulated price of
/// the symbol moves there and stays around it; their next quotes (within one quote interval)
/// carry it to resting orders, account valuation, margin calls and stop-outs.
pub async fn move_price(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    payload: Result<Json<PriceMove>, JsonRejection>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, peer, &format!("admin price {symbol}")) {
        return refused.into_response();
    }
    let Some(id) = state.router.market().symbol(&symbol) else {
        return ApiError::not_found(
            "unknown_symbol",
            format!("symbol `{symbol}` is not traded here"),
        )
        .into_response();
    };
    let price = match body(payload) {
        Ok(price) => price,
        Err(bad) => return bad.into_response(),
    };
    if !(price.mid.is_finite() && price.mid > 0.0) {
        return ApiError::bad_request(
            "invalid_price",
            "mid must be a positive finite number",
            Some("mid"),
        )
        .into_response();
    }
    for lp in state.router.lps() {
        lp.move_price(id, price.mid);
    }
    Json(json!({ "symbol": symbol, "mid": price.mid })).into_response()
}
