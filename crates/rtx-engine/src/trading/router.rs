//! The order router: routing (A-book to an LP, B-book internal) and execution, persistence
//! before acknowledgement, and the drain that lets every order path finish at shutdown. The
//! checks and what orders hold are the ledger's (`ledger.rs`), waiting orders the book's
//! (`book.rs`), closing an account out is `stop_out.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rtx_monitoring::catalogue::{
    LpId, OrderType, Outcome, RejectReason, Route, Side, SymbolId, TradingMetrics,
};
use serde::Deserialize;
use tokio::sync::watch;

use super::accounts::{Account, Accounts};
use super::book::{Resting, RestingBook};
use super::ledger::{Claim, Ledger, Refusal, Reservation};
use crate::market::lp::{LpError, LpSession};
use crate::market::{unix_now, Market, Quote};
use crate::store::{FillRecord, OrderRecord, OrderStatus, Store, StoreError, Write};
use rtx_monitoring::logging::{events, rfc3339};
use rtx_monitoring::metrics::LabelValue;

/// Risk and routing settings (the `[trading]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Account leverage (100 means 1% margin).
    pub leverage: f64,
    /// Largest order, in lots.
    pub max_order_lots: f64,
    /// Largest absolute net exposure per symbol across all accounts, in USD notional.
    pub max_net_exposure_usd: f64,
    /// Account groups whose orders always go to an LP.
    pub abook_groups: Vec<String>,
    /// Orders of at least this many lots go to an LP whatever the group.
    pub abook_min_lots: f64,
    /// Quotes older than this are not executable, in seconds.
    pub max_quote_age_secs: f64,
    /// Margin level (equity / margin, %) below which an account is in margin call.
    pub margin_call_level: f64,
    /// Margin level below which positions are closed.
    pub stop_out_level: f64,
    /// Starting balance of the demo accounts, in USD.
    pub demo_balance: f64,
    /// How many demo accounts (`demo-1` …) exist.
    pub demo_accounts: usize,
    /// Most limit and stop orders one account may have resting at once; one more is rejected
    /// `resting_limit`, so that one client cannot flood the book.
    pub max_resting_orders_per_account: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            leverage: 100.0,
            max_order_lots: 50.0,
            max_net_exposure_usd: 50_000_000.0,
            abook_groups: vec!["professional".to_owned()],
            abook_min_lots: 5.0,
            max_quote_age_secs: 5.0,
            margin_call_level: 100.0,
            stop_out_level: 50.0,
            demo_balance: 100_000.0,
            demo_accounts: 10,
            max_resting_orders_per_account: 200,
        }
    }
}

/// A validated order request.
#[derive(Clone, Debug)]
pub struct OrderRequest {
    /// The account (known to exist).
    pub account: Arc<Account>,
    /// Symbol.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// Type.
    pub order_type: OrderType,
    /// Lots, finite and positive.
    pub volume: f64,
    /// Limit or stop price (required for those types).
    pub price: Option<f64>,
    /// The client's id.
    pub client_order_id: Option<String>,
}

/// Why an order could not be processed at all (it is then not an order).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The engine is shutting down and takes no new orders.
    #[error("the engine is shutting down and takes no new orders")]
    ShuttingDown,
    /// The order could not be stored, so it was not executed.
    #[error("the order could not be stored: {0}")]
    Store(#[from] StoreError),
}

/// Newest orders kept in memory for `GET /api/orders`.
const RECENT_ORDERS: usize = 10_000;

/// The order router and everything it owns.
pub struct Router {
    market: Arc<Market>,
    lps: Vec<Arc<LpSession>>,
    accounts: Arc<Accounts>,
    store: Store,
    pub(super) metrics: TradingMetrics,
    config: RouterConfig,
    recent: Mutex<VecDeque<Arc<OrderRecord>>>,
    recent_version: AtomicU64,
    pub(super) ledger: Ledger,
    book: Mutex<RestingBook>,
    fill_seq: AtomicI64,
    accepting: AtomicBool,
    in_flight: AtomicU64,
    idle: watch::Sender<u64>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What one execution produced.
pub(super) struct Execution {
    pub(super) outcome: Outcome,
    pub(super) route: Route,
    pub(super) price: Option<f64>,
    /// The price the order would have got at its arrival's quote: slippage is measured from it.
    pub(super) arrival_price: Option<f64>,
    pub(super) lp: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) reject: Option<RejectReason>,
}

impl Execution {
    fn rejected(route: Route, reason: RejectReason, text: String) -> Self {
        Self {
            outcome: Outcome::Rejected,
            route,
            price: None,
            arrival_price: None,
            lp: None,
            reason: Some(text),
            reject: Some(reason),
        }
    }

    fn refused(route: Route, refusal: Refusal) -> Self {
        Self::rejected(route, refusal.reason, refusal.text)
    }
}

/// An order path in progress: counted until dropped, so that [`Router::drain`] waits for it.
pub(super) struct InFlight<'a> {
    router: &'a Router,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.router.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.router.idle.send_modify(|n| *n += 1);
        }
    }
}

impl Router {
    /// A router over restored state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        market: Arc<Market>,
        lps: Vec<Arc<LpSession>>,
        accounts: Arc<Accounts>,
        store: Store,
        metrics: TradingMetrics,
        config: RouterConfig,
        recent: Vec<OrderRecord>,
        fill_seq: i64,
    ) -> Self {
        let symbols = market.instruments().len();
        let ledger = Ledger::new(symbols, &config);
        ledger.recount(&accounts);
        Self {
            market,
            lps,
            accounts,
            store,
            metrics,
            config,
            recent: Mutex::new(recent.into_iter().map(Arc::new).collect()),
            recent_version: AtomicU64::new(0),
            ledger,
            book: Mutex::new(RestingBook::new(symbols)),
            fill_seq: AtomicI64::new(fill_seq),
            accepting: AtomicBool::new(true),
            in_flight: AtomicU64::new(0),
            idle: watch::channel(0).0,
        }
    }

    /// The accounts.
    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    /// The market.
    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    /// The LP sessions.
    pub fn lps(&self) -> &[Arc<LpSession>] {
        &self.lps
    }

    /// The settings.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts an order path, or `None` once the engine drains. Counted first and checked
    /// second, so a drain that saw no order in flight cannot miss one that starts after it.
    pub(super) fn enter(&self) -> Option<InFlight<'_>> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight { router: self };
        self.accepting.load(Ordering::Acquire).then_some(guard)
    }

    fn book(&self) -> MutexGuard<'_, RestingBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a resting order in the book and updates the symbol's resting gauge.
    fn rest(&self, resting: Resting) {
        let symbol = resting.request.symbol;
        let count = self.book().insert(resting);
        self.metrics.orders.set_resting(symbol, count);
    }

    /// Restores a pending order loaded from the database: it rests again, holding its margin.
    pub fn restore_pending(&self, request: OrderRequest, record: OrderRecord) {
        let now = unix_now();
        // What it would hold if placed now; it was accepted once, so it is not checked again.
        let margin = request.price.map_or(0.0, |price| {
            self.ledger
                .resting_margin(&self.market, &Claim::of(&request), price, now)
        });
        let reservation = self.ledger.hold_resting(&request.account, margin);
        self.rest(Resting {
            request,
            record,
            reservation,
        });
    }

    /// Stops taking orders and triggering resting ones; every order path in progress (new
    /// orders, triggered orders, stop-outs) finishes. Returns when none is left.
    pub async fn drain(&self) {
        self.accepting.store(false, Ordering::Release);
        let mut idle = self.idle.subscribe();
        while self.in_flight.load(Ordering::Acquire) > 0 {
            if idle.changed().await.is_err() {
                break;
            }
        }
    }

    /// Newest orders first.
    pub fn recent_orders(&self, limit: usize) -> Vec<Arc<OrderRecord>> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().rev().take(limit).cloned().collect()
    }

    /// Changes whenever the recent-order list does (for response caching).
    pub fn recent_version(&self) -> u64 {
        self.recent_version.load(Ordering::Acquire)
    }

    /// An order by id: memory first, then the database.
    ///
    /// # Errors
    /// When the database lookup fails.
    pub async fn order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let found = {
            let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent
                .iter()
                .rev()
                .find(|o| o.id == id)
                .map(|o| (**o).clone())
        };
        match found {
            Some(o) => Ok(Some(o)),
            None => self.store.order(id).await,
        }
    }

    /// Keeps `record` in the recent list: appended when `new`, replaced in place when it is a
    /// resting order's final state. Only the latter searches, so a new order never scans the
    /// list under the lock.
    fn remember(&self, record: &OrderRecord, new: bool) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let existing = if new {
            None
        } else {
            recent.iter_mut().rev().find(|o| o.id == record.id)
        };
        if let Some(existing) = existing {
            *existing = Arc::new(record.clone());
        } else {
            if recent.len() >= RECENT_ORDERS {
                recent.pop_front();
            }
            recent.push_back(Arc::new(record.clone()));
        }
        self.recent_version.fetch_add(1, Ordering::AcqRel);
    }

    fn route_for(&self, account: &Account, volume: f64) -> Route {
        if volume >= self.config.abook_min_lots || self.config.abook_groups.contains(&account.group)
        {
            Route::ABook
        } else {
            Route::BBook
        }
    }

    /// Processes one order to its answer: filled, rejected, error, or pending (resting).
    ///
    /// # Errors
    /// [`SubmitError`] when the engine is draining or the order could not be stored; such a
    /// request is not an order.
    pub async fn submit(&self, req: OrderRequest) -> Result<OrderRecord, SubmitError> {
        let Some(_in_flight) = self.enter() else {
            return Err(SubmitError::ShuttingDown);
        };
        let span = tracing::info_span!(
            "order.execute",
            order.id = tracing::field::Empty,
            order.symbol = %self.market.instrument(req.symbol).name,
            order.type = %req.order_type,
            order.side = req.side.as_str(),
            order.route = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        tracing::Instrument::instrument(self.submit_inner(req), span).await
    }

    /// A new order's record, `pending` until its outcome is known.
    pub(super) fn new_record(&self, req: &OrderRequest, now: f64) -> OrderRecord {
        OrderRecord {
            id: uuid::Uuid::now_v7().to_string(),
            client_order_id: req.client_order_id.clone(),
            account_id: req.account.id.clone(),
            symbol: self.market.instrument(req.symbol).name.to_string(),
            side: req.side,
            order_type: req.order_type,
            volume: req.volume,
            price: req.price,
            status: OrderStatus::Pending,
            reason: None,
            route: None,
            fill_price: None,
            lp: None,
            created_at: rfc3339(now),
            latency_us: 0,
        }
    }

    async fn submit_inner(&self, req: OrderRequest) -> Result<OrderRecord, SubmitError> {
        let started = Instant::now();
        let _in_flight = self.metrics.orders.in_flight();
        let now = unix_now();
        let mut record = self.new_record(&req, now);
        tracing::Span::current().record("order.id", record.id.as_str());
        let quote = self
            .market
            .best(req.symbol, now, self.config.max_quote_age_secs)
            .map(|q| q.0);
        let resting_price = match (req.order_type, req.price, quote) {
            (OrderType::Market, _, _) | (_, None, _) => None,
            (_, Some(price), Some(q)) => {
                (!triggers(req.order_type, req.side, price, &q)).then_some(price)
            }
            (_, Some(price), None) => Some(price),
        };
        let Some(price) = resting_price else {
            let (exec, reservation) = self.execute(&req, quote, Reservation::default()).await;
            return self
                .finish(req, record, exec, reservation, started, true)
                .await;
        };
        let route = self.route_for(&req.account, req.volume);
        if req.volume > self.config.max_order_lots {
            let exec = Execution::rejected(
                route,
                RejectReason::MaxVolume,
                self.volume_reason(req.volume),
            );
            return self.finish(req, record, exec, None, started, true).await;
        }
        let reservation = match self.ledger.reserve_resting(
            &self.market,
            &Claim::of(&req),
            price,
            quote.as_ref(),
            now,
        ) {
            Ok(r) => r,
            Err(refusal) => {
                let exec = Execution::refused(route, refusal);
                return self.finish(req, record, exec, None, started, true).await;
            }
        };
        record.latency_us = started.elapsed().as_micros() as u64;
        if let Err(e) = self
            .store
            .write(vec![Write::InsertOrder(record.clone())])
            .await
        {
            self.ledger.release(&Claim::of(&req), reservation);
            self.ledger.leave_book(&req.account);
            return Err(e.into());
        }
        self.remember(&record, true);
        log_order(&record, started.elapsed());
        self.rest(Resting {
            request: req,
            record: record.clone(),
            reservation,
        });
        Ok(record)
    }

    fn volume_reason(&self, volume: f64) -> String {
        format!(
            "volume {volume} lots is above the maximum of {} lots",
            self.config.max_order_lots
        )
    }

    /// Pre-trade checks: a quote and the volume limit here, then the symbol's exposure and the
    /// account's free margin, checked and reserved in one step by the ledger. The quote to
    /// execute at and what the order now holds, or the rejection.
    fn risk_check(
        &self,
        req: &OrderRequest,
        quote: Option<Quote>,
        route: Route,
        held: Reservation,
    ) -> Result<(Quote, Reservation), Execution> {
        let Some(quote) = quote else {
            return Err(Execution::rejected(
                route,
                RejectReason::NoQuote,
                "no current quote for the symbol".to_owned(),
            ));
        };
        if req.volume > self.config.max_order_lots {
            return Err(Execution::rejected(
                route,
                RejectReason::MaxVolume,
                self.volume_reason(req.volume),
            ));
        }
        self.ledger
            .reserve(
                &self.market,
                &Claim::of(req),
                &quote,
                held.margin,
                unix_now(),
            )
            .map(|r| (quote, r))
            .map_err(|refusal| Execution::refused(route, refusal))
    }

    /// Risk checks, then execution on the order's route (with an LP for A-book, at the current
    /// quote for B-book). `held` is what a resting order brought with it. Touches no position,
    /// which `finish` updates once the outcome is known; returns what the order holds then.
    async fn execute(
        &self,
        req: &OrderRequest,
        arrival: Option<Quote>,
        held: Reservation,
    ) -> (Execution, Option<Reservation>) {
        let route = self.route_for(&req.account, req.volume);
        let risk = tracing::info_span!("risk.check", risk.outcome = tracing::field::Empty);
        let (quote, reservation) =
            match risk.in_scope(|| self.risk_check(req, arrival, route, held)) {
                Ok(passed) => {
                    risk.record("risk.outcome", "passed");
                    passed
                }
                Err(rejection) => {
                    risk.record("risk.outcome", "rejected");
                    // What a resting order brought is given back with the rejection.
                    return (rejection, Some(held));
                }
            };
        let arrival_price = Some(quote.price_for(req.side));
        let now = unix_now();
        let exec = match route {
            Route::BBook => {
                // The house fills at its price when it executes, which is the arrival price
                // unless a quote arrived since: that difference is the B-book's slippage.
                let price = self
                    .market
                    .best(req.symbol, now, self.config.max_quote_age_secs)
                    .map_or(quote, |q| q.0);
                Execution {
                    outcome: Outcome::Filled,
                    route,
                    price: Some(price.price_for(req.side)),
                    arrival_price,
                    lp: None,
                    reason: None,
                    reject: None,
                }
            }
            Route::ABook => self.execute_with_lp(req, now, arrival_price).await,
        };
        (exec, Some(reservation))
    }

    async fn execute_with_lp(
        &self,
        req: &OrderRequest,
        now: f64,
        arrival_price: Option<f64>,
    ) -> Execution {
        let route = Route::ABook;
        let Some(lp) = self.pick_lp(req.symbol, req.side, now) else {
            return Execution::rejected(
                route,
                RejectReason::NoLiquidity,
                "no liquidity provider is connected".to_owned(),
            );
        };
        let lp_name = Some(lp.name().to_owned());
        let lp_span = tracing::info_span!(
            "lp.request",
            otel.kind = "client",
            lp.name = lp.name(),
            lp.operation = "order",
            lp.protocol = "FIX",
            lp.traceparent = tracing::field::Empty,
            lp.tracestate = tracing::field::Empty,
        );
        // The simulated session has no wire to carry them on; recording the headers it would
        // send (this client span's own id as the parent, the caller's tracestate) shows what a
        // real session puts on its order message.
        if let Some(context) = rtx_monitoring::trace::TraceContext::of(&lp_span) {
            lp_span.record("lp.traceparent", context.traceparent.to_string().as_str());
            if !context.tracestate.is_empty() {
                lp_span.record("lp.tracestate", context.tracestate.to_string().as_str());
            }
        }
        let answer =
            tracing::Instrument::instrument(lp.execute(req.symbol, req.side == Side::Buy), lp_span)
                .await;
        match answer {
            Ok(price) => Execution {
                outcome: Outcome::Filled,
                route,
                price: Some(price),
                arrival_price,
                lp: lp_name,
                reason: None,
                reject: None,
            },
            Err(e @ LpError::Rejected { .. }) => Execution {
                lp: lp_name,
                ..Execution::rejected(route, RejectReason::LpRejected, e.to_string())
            },
            Err(e @ LpError::NotConnected { .. }) => Execution {
                lp: lp_name,
                ..Execution::rejected(route, RejectReason::NoLiquidity, e.to_string())
            },
            Err(e @ LpError::Timeout { .. }) => Execution {
                outcome: Outcome::Error,
                route,
                price: None,
                arrival_price,
                lp: lp_name,
                reason: Some(e.to_string()),
                reject: None,
            },
        }
    }

    /// The connected LP with the best price for the side, or any connected one.
    fn pick_lp(&self, symbol: SymbolId, side: Side, now: f64) -> Option<&Arc<LpSession>> {
        let preferred: Option<LpId> = self
            .market
            .best(symbol, now, self.config.max_quote_age_secs)
            .and_then(
                |(_, bid_lp, ask_lp)| {
                    if side == Side::Buy {
                        ask_lp
                    } else {
                        bid_lp
                    }
                },
            );
        preferred
            .and_then(|id| self.lps.iter().find(|l| l.id() == id && l.is_connected()))
            .or_else(|| self.lps.iter().find(|l| l.is_connected()))
    }

    /// Applies a fill (turning what the order holds into a position) or releases what it
    /// holds, persists the order, and records its metrics. `new` says whether the order row
    /// exists yet (a triggered resting order exists already).
    pub(super) async fn finish(
        &self,
        req: OrderRequest,
        mut record: OrderRecord,
        exec: Execution,
        reservation: Option<Reservation>,
        started: Instant,
        new: bool,
    ) -> Result<OrderRecord, SubmitError> {
        record.status = exec.outcome.into();
        record.reason = exec.reason;
        record.route = Some(exec.route.to_string());
        let current = tracing::Span::current();
        current.record("order.route", exec.route.to_string().as_str());
        if exec.outcome == Outcome::Error {
            current.record("otel.status_code", "ERROR");
            current.record(
                "error",
                record.reason.as_deref().unwrap_or("execution failed"),
            );
        }
        record.lp = exec.lp;
        record.fill_price = exec.price.filter(|_| exec.outcome == Outcome::Filled);
        let reservation = reservation.unwrap_or_default();
        let mut writes = Vec::with_capacity(3);
        let mut applied = None;
        if let (Outcome::Filled, Some(price)) = (exec.outcome, exec.price) {
            let now = unix_now();
            let fill = self.ledger.fill(
                &self.market,
                &Claim::of(&req),
                price,
                reservation,
                &self.fill_seq,
                now,
            );
            writes.push(Write::Fill(FillRecord {
                seq: fill.seq,
                order_id: record.id.clone(),
                account_id: req.account.id.clone(),
                symbol: record.symbol.clone(),
                side: record.side,
                volume: req.volume,
                price,
                ts: now,
            }));
            if fill.realized != 0.0 {
                writes.push(Write::BalanceDelta {
                    account_id: req.account.id.clone(),
                    delta: fill.realized,
                });
            }
            applied = Some(fill);
        } else {
            self.ledger.release(&Claim::of(&req), reservation);
        }
        record.latency_us = started.elapsed().as_micros() as u64;
        writes.insert(
            0,
            if new {
                Write::InsertOrder(record.clone())
            } else {
                Write::UpdateOrder(record.clone())
            },
        );
        let db_span = tracing::info_span!(
            "db.query",
            otel.kind = "client",
            db.system = self.store.system(),
            db.operation.name = if new { "INSERT" } else { "UPDATE" },
            db.collection.name = "orders",
        );
        if let Err(e) = tracing::Instrument::instrument(self.store.write(writes), db_span).await {
            if let Some(fill) = applied {
                self.ledger.undo_fill(&Claim::of(&req), fill);
            }
            return Err(SubmitError::Store(e));
        }
        let latency = started.elapsed();
        self.metrics.orders.record_execution(
            req.order_type,
            req.symbol,
            exec.route,
            exec.outcome,
            latency,
        );
        if let Some(reason) = exec.reject {
            self.metrics.orders.record_rejection(reason);
        }
        if exec.outcome == Outcome::Filled {
            self.metrics
                .orders
                .record_volume(req.symbol, req.side, req.volume);
            if let (Some(price), Some(arrival)) = (record.fill_price, exec.arrival_price) {
                // Positive is worse for the client: paid more on a buy, got less on a sell.
                let worse = if req.side == Side::Buy {
                    price - arrival
                } else {
                    arrival - price
                };
                let pip = self.market.instrument(req.symbol).pip;
                self.metrics.orders.record_slippage(req.symbol, worse / pip);
            }
        }
        log_order(&record, latency);
        if let (Some(price), Some(fill)) = (record.fill_price, applied) {
            events::trade(&events::Trade {
                order_id: &record.id,
                account_id: &record.account_id,
                symbol: &record.symbol,
                side: record.side.as_str(),
                volume: record.volume,
                price,
                price_decimals: self.market.instrument(req.symbol).decimals(),
                realized_pnl: fill.realized,
                lp: record.lp.as_deref(),
            });
        }
        events::performance("order.execute", latency, SLOW_ORDER);
        self.remember(&record, new);
        Ok(record)
    }

    /// Executes the resting orders that a new quote of `symbol` triggers, judged against the
    /// best executable price across LPs (one LP's low bid does not fire a stop while another
    /// still pays more). Called for every quote; costs in proportion to the orders it
    /// triggers. While the engine drains, nothing triggers: the orders stay pending in the
    /// database and rest again after the restart.
    pub async fn on_quote(self: &Arc<Self>, symbol: SymbolId) {
        let Some(_check) = self.enter() else {
            return;
        };
        let Some((quote, _, _)) =
            self.market
                .best(symbol, unix_now(), self.config.max_quote_age_secs)
        else {
            return;
        };
        let (fired, left) = {
            let mut book = self.book();
            let fired = book.take_triggered(symbol.index(), &quote);
            (fired, book.len(symbol.index()))
        };
        if fired.is_empty() {
            return;
        }
        self.metrics.orders.set_resting(symbol, left);
        for resting in fired {
            self.ledger.leave_book(&resting.request.account);
            let router = Arc::clone(self);
            tokio::spawn(async move { router.execute_triggered(resting, quote).await });
        }
    }

    /// Executes one triggered resting order; if its outcome cannot be stored, it goes back to
    /// the book (the database still says pending) and is tried again on a later quote.
    async fn execute_triggered(self: Arc<Self>, resting: Resting, quote: Quote) {
        let Some(_in_flight) = self.enter() else {
            // Draining: it stays pending in the database and rests again after the restart.
            self.ledger
                .release(&Claim::of(&resting.request), resting.reservation);
            return;
        };
        let started = Instant::now();
        let retry = resting.clone();
        let Resting {
            request,
            record,
            reservation,
        } = resting;
        let (exec, held) = self.execute(&request, Some(quote), reservation).await;
        let finished = self
            .finish(request, record, exec, held, started, false)
            .await;
        if let Err(e) = finished {
            tracing::warn!(order_id = %retry.record.id, error = %e, "a triggered order could not be stored; it rests again");
            let reservation = self
                .ledger
                .hold_resting(&retry.request.account, retry.reservation.margin);
            self.rest(Resting {
                reservation,
                ..retry
            });
        }
    }
}

/// Orders slower than this are logged as `performance` events (the latency SLO target).
const SLOW_ORDER: std::time::Duration = std::time::Duration::from_millis(100);

fn log_order(record: &OrderRecord, latency: std::time::Duration) {
    events::order_execution(&events::OrderExecution {
        order_id: &record.id,
        account_id: &record.account_id,
        symbol: &record.symbol,
        side: record.side.as_str(),
        order_type: record.order_type.as_str(),
        volume: record.volume,
        status: record.status.as_str(),
        route: record.route.as_deref().unwrap_or(""),
        reason: record.reason.as_deref(),
        latency,
    });
}

/// Whether a resting order fires at this quote.
pub(super) fn triggers(order_type: OrderType, side: Side, price: f64, q: &Quote) -> bool {
    match (order_type, side) {
        (OrderType::Market, _) => true,
        (OrderType::Limit, Side::Buy) => q.ask <= price,
        (OrderType::Limit, Side::Sell) => q.bid >= price,
        (OrderType::Stop, Side::Buy) => q.ask >= price,
        (OrderType::Stop, Side::Sell) => q.bid <= price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_stop_orders_fire_on_the_right_side_of_the_quote() {
        let q = Quote {
            bid: 1.1000,
            ask: 1.1002,
            timestamp: 0.0,
        };
        assert!(triggers(OrderType::Limit, Side::Buy, 1.1002, &q));
        assert!(!triggers(OrderType::Limit, Side::Buy, 1.1001, &q));
        assert!(triggers(OrderType::Limit, Side::Sell, 1.1000, &q));
        assert!(!triggers(OrderType::Limit, Side::Sell, 1.1001, &q));
        assert!(triggers(OrderType::Stop, Side::Buy, 1.1001, &q));
        assert!(!triggers(OrderType::Stop, Side::Buy, 1.1003, &q));
        assert!(triggers(OrderType::Stop, Side::Sell, 1.1001, &q));
        assert!(!triggers(OrderType::Stop, Side::Sell, 1.0999, &q));
    }
}
