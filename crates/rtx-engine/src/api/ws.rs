//! `GET /ws/quotes`: every new quote as a JSON text message, optionally filtered by
//! `?symbols=EURUSD,GBPUSD`. Each client reads from a bounded ring; one that falls a full ring
//! behind, or takes longer than a second to accept a message, is disconnected and counted.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rtx_monitoring::catalogue::{ConnectionCloseReason, SymbolId, WsChannel, WsDropReason};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::extract::ApiQuery;
use super::limits::answer_and_close;
use super::{ApiError, AppState, ErrorBody};

/// Longest a client may take to accept one message.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// `?symbols=` filter.
#[derive(Debug, Deserialize)]
pub struct QuotesQuery {
    symbols: Option<String>,
}

#[derive(Serialize)]
struct QuoteMessage<'a> {
    r#type: &'static str,
    symbol: &'a str,
    lp: &'a str,
    bid: f64,
    ask: f64,
    timestamp: f64,
}

/// Upgrades to the quote stream. Each message is a JSON text frame
/// `{"type": "quote", "symbol", "lp", "bid", "ask", "timestamp"}`.
#[utoipa::path(
    get,
    path = "/ws/quotes",
    operation_id = "stream_quotes",
    tag = "quotes",
    params(("symbols" = Option<String>, Query, description = "Comma-separated symbols to stream (all when absent or empty).", example = "EURUSD,GBPUSD")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol: quotes follow as text frames."),
        (status = 400, description = "A symbol is not traded here (`unknown_symbol`), the query does not parse (`invalid_query`), or the request is not a WebSocket handshake (`invalid_websocket_handshake`).", body = ErrorBody),
        (status = 426, description = "The connection cannot be upgraded (`invalid_websocket_handshake`).", body = ErrorBody),
        (status = 503, description = "As many WebSocket clients as the engine serves are connected (`too_many_websocket_clients`); retry later. The connection is closed.", body = ErrorBody),
    )
)]
pub async fn quotes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<QuotesQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let filter = match query.symbols.as_deref() {
        None | Some("") => None,
        Some(list) => {
            let mut ids = Vec::new();
            for name in list.split(',').map(str::trim) {
                match state.router.market().symbol(name) {
                    Some(id) => ids.push(id),
                    None => {
                        return ApiError::bad_request(
                            "unknown_symbol",
                            format!("symbol `{name}` is not traded here"),
                            Some("symbols"),
                        )
                        .into_response()
                    }
                }
            }
            Some(ids)
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(refused) => {
            return ApiError::new(
                refused.status(),
                "invalid_websocket_handshake",
                refused.body_text(),
                None,
            )
            .into_response()
        }
    };
    let Some(permit) = state.websocket_clients.try_acquire() else {
        return answer_and_close(
            &state.metrics.api,
            ConnectionCloseReason::Limit,
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_websocket_clients",
                "the engine is serving as many WebSocket clients as it may; retry later",
                None,
            ),
        );
    };
    upgrade.on_upgrade(move |socket| async move {
        // The client's place under the cap is held for as long as it streams.
        let _permit = permit;
        stream(socket, state, filter).await;
    })
}

async fn stream(mut socket: WebSocket, state: AppState, filter: Option<Vec<SymbolId>>) {
    let ws = &state.metrics.websocket;
    let _connection = ws.connection();
    let mut quotes = state.router.market().subscribe();
    loop {
        tokio::select! {
            quote = quotes.recv() => match quote {
                Ok(q) => {
                    if filter.as_ref().is_some_and(|f| !f.contains(&q.symbol_id)) {
                        continue;
                    }
                    let message = QuoteMessage { r#type: "quote", symbol: &q.symbol, lp: &q.lp, bid: q.bid, ask: q.ask, timestamp: q.timestamp };
                    let Ok(text) = serde_json::to_string(&message) else { continue };
                    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await {
                        Ok(Ok(())) => ws.record_sent(WsChannel::Quotes),
                        Ok(Err(_)) => {
                            ws.record_dropped(WsDropReason::Closed, 1);
                            break;
                        }
                        Err(_) => {
                            ws.record_dropped(WsDropReason::SlowConsumer, 1);
                            break;
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    ws.record_dropped(WsDropReason::SlowConsumer, missed);
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_) | Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
