//! Orders, positions and accounts.

use std::sync::PoisonError;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use rtx_monitoring::catalogue::{OrderType, Side};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiError, AppState};
use crate::market::unix_now;
use crate::trading::accounts::unrealized_usd;
use crate::trading::{OrderRequest, SubmitError};

/// Orders listed when no `limit` is given.
const DEFAULT_LIST_LIMIT: usize = 50;
/// Most orders one list returns.
const MAX_LIST_LIMIT: usize = 1000;
/// Smallest order, in lots.
const MIN_LOTS: f64 = 0.01;
/// Largest volume the API accepts at all (risk limits are lower and answer `rejected`).
const MAX_LOTS_ACCEPTED: f64 = 1_000_000.0;

fn string_field<'a>(
    body: &'a Map<String, Value>,
    name: &'static str,
    required: bool,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(ApiError::bad_request(
            "missing_field",
            format!("`{name}` is required"),
            Some(name),
        )),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => Ok(Some(s)),
        Some(Value::String(_)) => Err(ApiError::bad_request(
            "invalid_field",
            format!("`{name}` must be 1 to 64 characters"),
            Some(name),
        )),
        Some(_) => Err(ApiError::bad_request(
            "invalid_field",
            format!("`{name}` must be a string"),
            Some(name),
        )),
    }
}

fn number_field(body: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
            _ => Err(ApiError::bad_request(
                "invalid_field",
                format!("`{name}` must be a positive number"),
                Some(name),
            )),
        },
        Some(_) => Err(ApiError::bad_request(
            "invalid_field",
            format!("`{name}` must be a number"),
            Some(name),
        )),
    }
}

fn parse_order(state: &AppState, body: &Bytes) -> Result<OrderRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
            None,
        )
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
            None,
        ));
    };
    let account_id = string_field(&body, "account_id", true)?.unwrap_or_default();
    let symbol_name = string_field(&body, "symbol", true)?.unwrap_or_default();
    let side = match string_field(&body, "side", true)?
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("buy") => Side::Buy,
        Some("sell") => Side::Sell,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "`side` must be \"buy\" or \"sell\"",
                Some("side"),
            ))
        }
    };
    let order_type = match string_field(&body, "order_type", false)?
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("market") => OrderType::Market,
        Some("limit") => OrderType::Limit,
        Some("stop") => OrderType::Stop,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "`order_type` must be \"market\", \"limit\" or \"stop\"",
                Some("order_type"),
            ))
        }
    };
    let volume = number_field(&body, "volume")?.ok_or_else(|| {
        ApiError::bad_request("missing_field", "`volume` is required", Some("volume"))
    })?;
    if !(MIN_LOTS..=MAX_LOTS_ACCEPTED).contains(&volume) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`volume` must be between {MIN_LOTS} and {MAX_LOTS_ACCEPTED} lots"),
            Some("volume"),
        ));
    }
    let price = number_field(&body, "price")?;
    match (order_type, price) {
        (OrderType::Market, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "`price` is only for limit and stop orders",
                Some("price"),
            ))
        }
        (OrderType::Limit | OrderType::Stop, None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "limit and stop orders need a `price`",
                Some("price"),
            ))
        }
        _ => {}
    }
    let client_order_id = string_field(&body, "client_order_id", false)?.map(str::to_owned);
    let symbol = state.router.market().symbol(symbol_name).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_symbol",
            format!("symbol `{symbol_name}` is not traded here"),
            Some("symbol"),
        )
    })?;
    let account = state
        .router
        .accounts()
        .get(account_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_account",
                format!("account `{account_id}` does not exist"),
            )
        })?;
    Ok(OrderRequest {
        account,
        symbol,
        side,
        order_type,
        volume,
        price,
        client_order_id,
    })
}

/// `POST /api/orders`.
pub async fn create(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "invalid_body"
            };
            return ApiError::new(
                status,
                code,
                format!("{rejection} (the limit is {} bytes)", super::MAX_BODY_BYTES),
                None,
            )
            .into_response();
        }
    };
    let request = match parse_order(&state, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match state.router.submit(request).await {
        Ok(order) => (StatusCode::CREATED, Json(order)).into_response(),
        Err(SubmitError::ShuttingDown) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            SubmitError::ShuttingDown.to_string(),
            None,
        )
        .into_response(),
        Err(e @ SubmitError::Store(_)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            e.to_string(),
            None,
        )
        .into_response(),
    }
}

/// `?limit=N` of the order list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
}

/// `GET /api/orders`: newest first.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let limit = match query.ok().and_then(|Query(q)| q.limit) {
        None => DEFAULT_LIST_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
            _ => {
                return ApiError::bad_request(
                    "invalid_field",
                    format!("`limit` must be a whole number from 1 to {MAX_LIST_LIMIT}"),
                    Some("limit"),
                )
                .into_response()
            }
        },
    };
    let json = |body: Bytes| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if limit != DEFAULT_LIST_LIMIT {
        let orders = state.router.recent_orders(limit);
        return json(Bytes::from(serde_json::to_vec(&orders).unwrap_or_default()));
    }
    // The default list is what dashboards and load tests poll: serialize it once per change.
    let version = state.router.recent_version();
    if let Some((cached_version, body)) = state
        .list_cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        if *cached_version == version {
            return json(body.clone());
        }
    }
    let orders = state.router.recent_orders(limit);
    let body = Bytes::from(serde_json::to_vec(&orders).unwrap_or_default());
    *state
        .list_cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some((version, body.clone()));
    json(body)
}

/// `GET /api/orders/{id}`.
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.router.order(&id).await {
        Ok(Some(order)) => Json(order).into_response(),
        Ok(None) => {
            ApiError::not_found("not_found", format!("order `{id}` does not exist")).into_response()
        }
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            e.to_string(),
            None,
        )
        .into_response(),
    }
}

#[derive(Serialize)]
struct PositionView {
    account_id: String,
    symbol: String,
    side: &'static str,
    volume: f64,
    average_price: f64,
    unrealized_pnl: f64,
    realized_pnl: f64,
}

/// `?account_id=` filter of the position list.
#[derive(Debug, Deserialize)]
pub struct PositionsQuery {
    account_id: Option<String>,
}

/// `GET /api/positions`: open positions, optionally of one account.
pub async fn positions(State(state): State<AppState>, Query(q): Query<PositionsQuery>) -> Response {
    let market = state.router.market();
    let now = unix_now();
    let mut out = Vec::new();
    for account in state.router.accounts().iter() {
        if q.account_id.as_ref().is_some_and(|id| *id != account.id) {
            continue;
        }
        let positions = account.lock();
        for (symbol, p) in positions.positions.iter().filter(|(_, p)| p.lots != 0.0) {
            out.push(PositionView {
                account_id: account.id.clone(),
                symbol: market.instrument(*symbol).name.to_string(),
                side: if p.lots > 0.0 { "buy" } else { "sell" },
                volume: p.lots.abs(),
                average_price: p.average_price,
                unrealized_pnl: unrealized_usd(market, *symbol, p, now),
                realized_pnl: p.realized_pnl,
            });
        }
    }
    out.sort_by(|a, b| (&a.account_id, &a.symbol).cmp(&(&b.account_id, &b.symbol)));
    Json(out).into_response()
}

#[derive(Serialize)]
struct AccountView {
    id: String,
    group: String,
    currency: &'static str,
    #[serde(flatten)]
    figures: crate::trading::accounts::AccountFigures,
    in_margin_call: bool,
}

/// `GET /api/accounts/{id}`.
pub async fn account(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(account) = state.router.accounts().get(&id) else {
        return ApiError::not_found("unknown_account", format!("account `{id}` does not exist"))
            .into_response();
    };
    let snapshot = account.lock();
    let figures = snapshot.figures(
        state.router.market(),
        state.router.config().leverage,
        unix_now(),
    );
    let view = AccountView {
        id: account.id.clone(),
        group: account.group.clone(),
        currency: "USD",
        figures,
        in_margin_call: snapshot.in_margin_call,
    };
    drop(snapshot);
    Json(view).into_response()
}
