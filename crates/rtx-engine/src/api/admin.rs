//! Fault injection: `POST /admin/lps/{lp}/disconnect|connect` drops or restores a simulated
//! LP session, `POST /admin/lps/{lp}/sequence-gap` makes it lose messages, and
//! `POST /admin/symbols/{symbol}/price` moves a symbol's simulated market, so that tests and
//! game days can trigger resting orders, margin calls and stop-outs on demand instead of
//! waiting for the random walk. Off unless `RTX_ADMIN_TOKEN` is set; then the bearer token is
//! required, compared in constant time, and every request is reported as a security event with
//! the caller's address, never the credential.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rtx_monitoring::http::bearer_matches;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::ApiPath;
use super::{ApiError, AppState, ErrorBody};
use crate::market::lp::LpSession;

/// Largest injected sequence gap: a real session that lost more would be reset, not resent.
const MAX_INJECTED_GAP: u64 = 1_000_000;

/// Highest mid price a move may set. Far above any traded price, and low enough that every
/// notional, margin and P&L derived from it stays finite (a mid near `f64::MAX` made them
/// infinite, which JSON cannot carry).
const MAX_MID: f64 = 1e9;

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
        return Err(ApiError::unauthorized(
            "a valid bearer token is required",
            "Bearer realm=\"admin\"",
        ));
    }
    rtx_monitoring::logging::events::security(action, "allowed", Some(peer), "valid credential");
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

/// A JSON body, or the error body naming what is wrong with it: 413 for a body over the
/// limit, 400 for anything else (not JSON, wrong fields, no JSON content type).
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(e.status(), "payload_too_large", e.body_text(), None)
        } else {
            ApiError::bad_request("invalid_body", e.body_text(), None)
        }
    })
}

/// What an LP action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LpActionDone {
    /// The LP.
    lp: String,
    /// `disconnect` or `connect`.
    #[schema(value_type = LpAction)]
    action: String,
}

/// An LP action.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the `{action}` path parameter, read as a string.
#[schema(rename_all = "lowercase")]
enum LpAction {
    Disconnect,
    Connect,
}

/// What a sequence-gap injection did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SequenceGapDone {
    /// The LP.
    lp: String,
    /// Messages it will lose.
    sequence_gap: u64,
}

/// What a price move did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceMoved {
    /// The symbol.
    symbol: String,
    /// Its new mid price.
    mid: f64,
}

/// `POST /admin/lps/{lp}/{action}`: `disconnect` or `connect`.
#[utoipa::path(
    post,
    path = "/admin/lps/{lp}/{action}",
    operation_id = "lp_action",
    tag = "admin",
    security(("admin_token" = [])),
    params(
        ("lp" = String, Path, description = "The LP's configured name.", example = "OANDA"),
        ("action" = LpAction, Path, description = "What to do to its session."),
    ),
    responses(
        (status = 200, description = "Done.", body = LpActionDone),
        (status = 400, description = "A path parameter is not UTF-8 (`invalid_path`).", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`).", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"admin\"`"))),
        (status = 404, description = "Admin endpoints are off (`not_found`), no such LP (`unknown_lp`) or action (`not_found`).", body = ErrorBody),
    )
)]
pub async fn lp_action(
    State(state): State<AppState>,
    ApiPath((lp, action)): ApiPath<(String, String)>,
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
    Json(LpActionDone {
        lp: session.name().to_owned(),
        action,
    })
    .into_response()
}

/// Body of `POST /admin/lps/{lp}/sequence-gap`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceGap {
    /// How many messages the LP loses before its next one.
    #[serde(deserialize_with = "whole_number")]
    #[schema(value_type = u64, minimum = 1, maximum = 1_000_000)]
    messages: u64,
}

/// A whole number written `3` or `3.0`: JSON Schema (and so the document) counts both as the
/// integer 3, where serde's `u64` would refuse the second.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(deserializer)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=MAX_INJECTED_GAP as f64).contains(f))
                // Exact: a whole number within the range.
                .map(|f| f as u64)
        })
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid value: {n}, expected a whole number of messages"
            ))
        })
}

/// `POST /admin/lps/{lp}/sequence-gap` with `{"messages": N}`: the LP loses its next N
/// messages, so `rtx_lp_session_sequence_gaps_total` grows by exactly N.
#[utoipa::path(
    post,
    path = "/admin/lps/{lp}/sequence-gap",
    operation_id = "inject_sequence_gap",
    tag = "admin",
    security(("admin_token" = [])),
    params(("lp" = String, Path, description = "The LP's configured name.", example = "OANDA")),
    request_body(content = SequenceGap, content_type = "application/json"),
    responses(
        (status = 200, description = "Injected.", body = SequenceGapDone),
        (status = 400, description = "Not the body described (`invalid_body`), `messages` out of range (`invalid_messages`), or the name is not UTF-8 (`invalid_path`).", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`).", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"admin\"`"))),
        (status = 404, description = "Admin endpoints are off (`not_found`) or no such LP (`unknown_lp`).", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the request timeout (`request_timeout`); the connection is closed.", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`payload_too_large`).", body = ErrorBody),
    )
)]
pub async fn sequence_gap(
    State(state): State<AppState>,
    ApiPath(lp): ApiPath<String>,
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
    Json(SequenceGapDone {
        lp: session.name().to_owned(),
        sequence_gap: gap.messages,
    })
    .into_response()
}

/// Body of `POST /admin/symbols/{symbol}/price`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceMove {
    /// The new mid price every LP quotes around.
    #[schema(exclusive_minimum = 0.0, maximum = 1e9, example = 1.0712)]
    mid: f64,
}

/// `POST /admin/symbols/{symbol}/price` with `{"mid": 1.0712}`: every LP's simulated price of
/// the symbol moves there and stays around it; their next quotes (within one quote interval)
/// carry it to resting orders, account valuation, margin calls and stop-outs.
#[utoipa::path(
    post,
    path = "/admin/symbols/{symbol}/price",
    operation_id = "move_price",
    tag = "admin",
    security(("admin_token" = [])),
    params(("symbol" = String, Path, description = "A traded symbol.", example = "EURUSD")),
    request_body(content = PriceMove, content_type = "application/json"),
    responses(
        (status = 200, description = "Moved; the LPs' next quotes carry it.", body = PriceMoved),
        (status = 400, description = "Not the body described (`invalid_body`), `mid` not positive (`invalid_price`), or the symbol is not UTF-8 (`invalid_path`).", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`).", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"admin\"`"))),
        (status = 404, description = "Admin endpoints are off (`not_found`) or the symbol is not traded (`unknown_symbol`).", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the request timeout (`request_timeout`); the connection is closed.", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`payload_too_large`).", body = ErrorBody),
    )
)]
pub async fn move_price(
    State(state): State<AppState>,
    ApiPath(symbol): ApiPath<String>,
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
    if !(price.mid > 0.0 && price.mid <= MAX_MID) {
        return ApiError::bad_request(
            "invalid_price",
            format!("mid must be a positive number up to {MAX_MID}"),
            Some("mid"),
        )
        .into_response();
    }
    for lp in state.router.lps() {
        lp.move_price(id, price.mid);
    }
    Json(PriceMoved {
        symbol,
        mid: price.mid,
    })
    .into_response()
}
