//! Orders, positions and accounts.

use std::sync::PoisonError;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use rtx_monitoring::catalogue::{OrderType, Side};
use rtx_monitoring::metrics::LabelValue;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::extract::{ApiPath, ApiQuery};
use super::openapi::Symbol;
use super::{ApiError, AppState, ErrorBody};
use crate::market::unix_now;
use crate::store::OrderRecord;
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
        // Characters, not bytes: the limit the document states (`maxLength`) counts characters.
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 64 => Ok(Some(s)),
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

/// Body of `POST /api/orders`: a market order, or a limit or stop order with its price.
/// [`parse_order`] reads it field by field, to name the field at fault; these types only
/// describe it.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // A description of what `parse_order` accepts.
enum NewOrder {
    /// Filled (or rejected) at once at the best price.
    Market(MarketOrder),
    /// Rests until the market reaches its price.
    Pending(PendingOrder),
}

/// A market order.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // As NewOrder.
struct MarketOrder {
    /// The trading account.
    #[schema(min_length = 1, max_length = 64, example = "demo-4")]
    account_id: String,
    /// What to trade.
    #[schema(value_type = Symbol)]
    symbol: String,
    /// Buy or sell.
    side: OrderSide,
    /// `market`, the default.
    order_type: Option<MarketType>,
    /// Lots.
    #[schema(minimum = 0.01, maximum = 1_000_000.0, example = 0.1)]
    volume: f64,
    /// The client's own id, echoed back.
    #[schema(min_length = 1, max_length = 64)]
    client_order_id: Option<String>,
}

/// A limit or stop order.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // As NewOrder.
struct PendingOrder {
    /// The trading account.
    #[schema(min_length = 1, max_length = 64, example = "demo-4")]
    account_id: String,
    /// What to trade.
    #[schema(value_type = Symbol)]
    symbol: String,
    /// Buy or sell.
    side: OrderSide,
    /// `limit` or `stop`.
    order_type: PendingType,
    /// Lots.
    #[schema(minimum = 0.01, maximum = 1_000_000.0, example = 0.1)]
    volume: f64,
    /// The limit or stop price.
    #[schema(exclusive_minimum = 0.0, example = 1.05)]
    price: f64,
    /// The client's own id, echoed back.
    #[schema(min_length = 1, max_length = 64)]
    client_order_id: Option<String>,
}

/// An order's side.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // A description of `Side`'s label.
enum OrderSide {
    Buy,
    Sell,
}

/// The type of a market order.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // As OrderSide.
enum MarketType {
    Market,
}

/// The type of a resting order.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // As OrderSide.
enum PendingType {
    Limit,
    Stop,
}

/// Any order's type.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = OrderType)]
#[allow(dead_code)] // As OrderSide.
enum AnyOrderType {
    Market,
    Limit,
    Stop,
}

/// Where an order stands.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // A description of `OrderStatus`'s text.
enum OrderStatus {
    /// Resting until its price is reached.
    Pending,
    /// Executed at `fill_price`.
    Filled,
    /// Refused by a risk check or the LP; `reason` says why.
    Rejected,
    /// Failed inside the engine; `reason` says why.
    Error,
}

/// An order as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderView<'a> {
    /// Engine id.
    id: &'a str,
    /// The client's own id, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_order_id: Option<&'a str>,
    /// The trading account.
    account_id: &'a str,
    /// The symbol.
    symbol: &'a str,
    /// Buy or sell.
    #[schema(value_type = OrderSide)]
    side: &'static str,
    /// Market, limit or stop.
    #[schema(value_type = AnyOrderType)]
    order_type: &'static str,
    /// Lots.
    volume: f64,
    /// Limit or stop price.
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<f64>,
    /// Where it stands.
    #[schema(value_type = OrderStatus)]
    status: &'static str,
    /// Why it is not filled.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// `ABOOK` or `BBOOK`, once routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    /// Execution price, null until filled.
    #[schema(required)]
    fill_price: Option<f64>,
    /// The LP that filled an A-book order.
    #[serde(skip_serializing_if = "Option::is_none")]
    lp: Option<&'a str>,
    /// When the order was accepted (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: &'a str,
    /// Time from acceptance to the answer, in microseconds.
    latency_us: u64,
}

impl<'a> From<&'a OrderRecord> for OrderView<'a> {
    fn from(o: &'a OrderRecord) -> Self {
        Self {
            id: &o.id,
            client_order_id: o.client_order_id.as_deref(),
            account_id: &o.account_id,
            symbol: &o.symbol,
            side: o.side.as_str(),
            order_type: o.order_type.as_str(),
            volume: o.volume,
            price: o.price,
            status: o.status.as_str(),
            reason: o.reason.as_deref(),
            route: o.route.as_deref(),
            fill_price: o.fill_price,
            lp: o.lp.as_deref(),
            created_at: &o.created_at,
            latency_us: o.latency_us,
        }
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

/// `POST /api/orders`: the order is checked, routed and stored before the answer; one refused
/// by risk or the LP is still an order, answered 201 with status `rejected`.
#[utoipa::path(
    post,
    path = "/api/orders",
    operation_id = "create_order",
    tag = "orders",
    request_body(content = NewOrder, content_type = "application/json"),
    responses(
        (status = 201, description = "Accepted and stored; `status` tells the outcome.", body = OrderView),
        (status = 400, description = "Not a valid order (`invalid_json`, `invalid_body`, `missing_field`, `invalid_field`, `unknown_symbol`).", body = ErrorBody),
        (status = 404, description = "No such account (`unknown_account`).", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the request timeout (`request_timeout`); the connection is closed.", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`payload_too_large`).", body = ErrorBody),
        (status = 503, description = "Shutting down or the database is unavailable (`shutting_down`, `storage_unavailable`); nothing was stored.", body = ErrorBody),
    )
)]
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
        Ok(order) => (StatusCode::CREATED, Json(OrderView::from(&order))).into_response(),
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
#[utoipa::path(
    get,
    path = "/api/orders",
    operation_id = "list_orders",
    tag = "orders",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "How many orders, newest first (50 when absent).")),
    responses(
        (status = 200, description = "The newest orders.", body = Vec<OrderView>),
        (status = 400, description = "`limit` is not a whole number from 1 to 1000 (`invalid_field`), or the query does not parse (`invalid_query`).", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Response {
    let limit = match query.limit {
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
        return json(serialize_orders(&state.router.recent_orders(limit)));
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
    let body = serialize_orders(&state.router.recent_orders(limit));
    *state
        .list_cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some((version, body.clone()));
    json(body)
}

fn serialize_orders(orders: &[std::sync::Arc<OrderRecord>]) -> Bytes {
    let views: Vec<OrderView<'_>> = orders.iter().map(|o| OrderView::from(&**o)).collect();
    Bytes::from(serde_json::to_vec(&views).unwrap_or_default())
}

/// `GET /api/orders/{id}`.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    operation_id = "get_order",
    tag = "orders",
    params(("id" = String, Path, description = "The engine's order id.")),
    responses(
        (status = 200, description = "The order.", body = OrderView),
        (status = 400, description = "The id is not UTF-8 (`invalid_path`).", body = ErrorBody),
        (status = 404, description = "No such order (`not_found`).", body = ErrorBody),
        (status = 503, description = "The database is unavailable (`storage_unavailable`).", body = ErrorBody),
    )
)]
pub async fn get_one(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Response {
    match state.router.order(&id).await {
        Ok(Some(order)) => Json(OrderView::from(&order)).into_response(),
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

/// An open netting position.
#[derive(Serialize, ToSchema)]
#[schema(as = Position)]
pub struct PositionView {
    /// The trading account.
    account_id: String,
    /// The symbol.
    symbol: String,
    /// `buy` for long, `sell` for short.
    #[schema(value_type = OrderSide)]
    side: &'static str,
    /// Lots, never zero.
    volume: f64,
    /// Average open price.
    average_price: f64,
    /// P&L at current prices, in USD.
    unrealized_pnl: f64,
    /// P&L realized on this symbol, in USD.
    realized_pnl: f64,
}

/// `?account_id=` filter of the position list.
#[derive(Debug, Deserialize)]
pub struct PositionsQuery {
    account_id: Option<String>,
}

/// `GET /api/positions`: open positions, optionally of one account.
#[utoipa::path(
    get,
    path = "/api/positions",
    operation_id = "list_positions",
    tag = "orders",
    params(("account_id" = Option<String>, Query, description = "Only this account's positions.")),
    responses(
        (status = 200, description = "Open positions by account and symbol.", body = Vec<PositionView>),
        (status = 400, description = "The query does not parse (`invalid_query`).", body = ErrorBody),
    )
)]
pub async fn positions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PositionsQuery>,
) -> Response {
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

/// An account and its figures at current prices.
#[derive(Serialize, ToSchema)]
#[schema(as = Account)]
pub struct AccountView {
    /// Identifier.
    id: String,
    /// Group, used by the routing rule (`professional` flow goes to an LP).
    group: String,
    /// Account currency: `USD`.
    currency: &'static str,
    /// Cash balance.
    balance: f64,
    /// Balance plus unrealized P&L.
    equity: f64,
    /// Margin held by open positions.
    margin_used: f64,
    /// Margin held for orders in flight and resting orders.
    reserved_margin: f64,
    /// Equity minus margin used and reserved: what a new order may use.
    free_margin: f64,
    /// Equity over margin used, in percent; null with no margin used.
    #[schema(required)]
    margin_level: Option<f64>,
    /// Unrealized P&L.
    unrealized_pnl: f64,
    /// Below the margin-call level at the last evaluation.
    in_margin_call: bool,
}

/// `GET /api/accounts/{id}`.
#[utoipa::path(
    get,
    path = "/api/accounts/{id}",
    operation_id = "get_account",
    tag = "orders",
    params(("id" = String, Path, description = "The account id, such as `demo-1`.")),
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 400, description = "The id is not UTF-8 (`invalid_path`).", body = ErrorBody),
        (status = 404, description = "No such account (`unknown_account`).", body = ErrorBody),
    )
)]
pub async fn account(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Response {
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
        balance: figures.balance,
        equity: figures.equity,
        margin_used: figures.margin_used,
        reserved_margin: figures.reserved_margin,
        free_margin: figures.free_margin,
        margin_level: figures.margin_level,
        unrealized_pnl: figures.unrealized_pnl,
        in_margin_call: snapshot.in_margin_call,
    };
    drop(snapshot);
    Json(view).into_response()
}
