//! Helpers for the event kinds with their own `event` field (`docs/LOGGING.md`): `order_execution`,
//! `trade`, `performance`, `security`. Each is an ordinary `tracing` event, so filters,
//! redaction and trace ids apply as to any other.

use std::net::SocketAddr;
use std::time::Duration;

/// An order reached its answer.
#[derive(Clone, Copy, Debug)]
pub struct OrderExecution<'a> {
    /// Engine order id.
    pub order_id: &'a str,
    /// Account.
    pub account_id: &'a str,
    /// Symbol.
    pub symbol: &'a str,
    /// `buy` or `sell`.
    pub side: &'a str,
    /// `market`, `limit`, `stop`.
    pub order_type: &'a str,
    /// Lots.
    pub volume: f64,
    /// `filled`, `rejected`, `error`, `pending`.
    pub status: &'a str,
    /// `ABOOK` or `BBOOK`.
    pub route: &'a str,
    /// Why it did not fill.
    pub reason: Option<&'a str>,
    /// Time to the answer.
    pub latency: Duration,
}

/// Logs an order's outcome: INFO when filled or pending, WARN when rejected, ERROR on error.
/// An ERROR line names the caller's file and line, not this helper's.
#[track_caller]
pub fn order_execution(o: &OrderExecution<'_>) {
    let caller = std::panic::Location::caller();
    let latency_us = o.latency.as_micros() as u64;
    let reason = o.reason.unwrap_or("");
    macro_rules! emit {
        ($level:ident $(, $($location:tt)+)?) => {
            tracing::$level!(
                $($($location)+,)?
                event = "order_execution",
                order_id = o.order_id,
                account_id = o.account_id,
                symbol = o.symbol,
                side = o.side,
                order_type = o.order_type,
                volume = o.volume,
                status = o.status,
                route = o.route,
                reason,
                latency_us,
                "order {}",
                o.status
            )
        };
    }
    match o.status {
        "error" => emit!(error, file = caller.file(), line = caller.line()),
        "rejected" => emit!(warn),
        _ => emit!(info),
    }
}

/// A fill changed a position.
#[derive(Clone, Copy, Debug)]
pub struct Trade<'a> {
    /// The order filled.
    pub order_id: &'a str,
    /// Account.
    pub account_id: &'a str,
    /// Symbol.
    pub symbol: &'a str,
    /// `buy` or `sell`.
    pub side: &'a str,
    /// Lots.
    pub volume: f64,
    /// Fill price.
    pub price: f64,
    /// Decimal places the instrument quotes with: the message prints the price with exactly
    /// these (`1.27036`, `151.502`), as a dealer reads it.
    pub price_decimals: usize,
    /// P&L realized by the fill, account currency.
    pub realized_pnl: f64,
    /// The LP, for A-book fills.
    pub lp: Option<&'a str>,
}

/// Logs a fill (INFO).
pub fn trade(t: &Trade<'_>) {
    tracing::info!(
        event = "trade",
        order_id = t.order_id,
        account_id = t.account_id,
        symbol = t.symbol,
        side = t.side,
        volume = t.volume,
        price = t.price,
        realized_pnl = t.realized_pnl,
        lp = t.lp.unwrap_or(""),
        "trade {} {} {} @ {:.*}",
        t.side,
        t.volume,
        t.symbol,
        t.price_decimals,
        t.price
    );
}

/// Logs an operation that took longer than its threshold (WARN), and nothing otherwise, so
/// that call sites can report every operation and only slow ones are written.
pub fn performance(operation: &str, took: Duration, threshold: Duration) {
    if took > threshold {
        tracing::warn!(
            event = "performance",
            operation,
            duration_ms = took.as_secs_f64() * 1000.0,
            threshold_ms = threshold.as_secs_f64() * 1000.0,
            "slow operation: {operation} took {took:?}"
        );
    }
}

/// Logs a security decision (WARN): who, what, and why, never the presented credential.
pub fn security(action: &str, outcome: &str, source: Option<SocketAddr>, reason: &str) {
    let source = source.map(|s| s.to_string()).unwrap_or_default();
    tracing::warn!(
        event = "security",
        action,
        outcome,
        source,
        reason,
        "security: {action} {outcome}"
    );
}
