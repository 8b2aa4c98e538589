//! The order router: pre-trade risk checks, A-book (to an LP) or B-book (internal) routing,
//! execution, persistence before acknowledgement, and resting limit/stop orders.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rtx_monitoring::catalogue::{
    LpId, OrderType, Outcome, RejectReason, Route, Side, SymbolId, TradingMetrics,
};
use serde::Deserialize;
use tokio::sync::watch;

use super::accounts::{notional_usd, Account, Accounts, Position};
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

struct Pending {
    request: OrderRequest,
    record: OrderRecord,
}

/// Newest orders kept in memory for `GET /api/orders`.
const RECENT_ORDERS: usize = 10_000;

/// The order router and everything it owns.
pub struct Router {
    market: Arc<Market>,
    lps: Vec<Arc<LpSession>>,
    accounts: Arc<Accounts>,
    store: Store,
    metrics: TradingMetrics,
    config: RouterConfig,
    recent: Mutex<VecDeque<Arc<OrderRecord>>>,
    recent_version: AtomicU64,
    pending: Mutex<Vec<Pending>>,
    /// Signed lots per symbol across all accounts.
    net_lots: Mutex<Vec<f64>>,
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
struct Execution {
    outcome: Outcome,
    route: Route,
    price: Option<f64>,
    lp: Option<String>,
    reason: Option<String>,
    reject: Option<RejectReason>,
}

impl Execution {
    fn rejected(route: Route, reason: RejectReason, text: String) -> Self {
        Self {
            outcome: Outcome::Rejected,
            route,
            price: None,
            lp: None,
            reason: Some(text),
            reject: Some(reason),
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
        let net_lots = vec![0.0; market.instruments().len()];
        let router = Self {
            market,
            lps,
            accounts,
            store,
            metrics,
            config,
            recent: Mutex::new(recent.into_iter().map(Arc::new).collect()),
            recent_version: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            net_lots: Mutex::new(net_lots),
            fill_seq: AtomicI64::new(fill_seq),
            accepting: AtomicBool::new(true),
            in_flight: AtomicU64::new(0),
            idle: watch::channel(0).0,
        };
        router.recount_exposure();
        router
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

    fn recount_exposure(&self) {
        let mut net = self.net_lots.lock().unwrap_or_else(PoisonError::into_inner);
        net.iter_mut().for_each(|v| *v = 0.0);
        for account in self.accounts.iter() {
            for (symbol, p) in &account.lock().positions {
                net[symbol.index()] += p.lots;
            }
        }
    }

    /// Restores a pending order loaded from the database.
    pub fn restore_pending(&self, request: OrderRequest, record: OrderRecord) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Pending { request, record });
    }

    /// Stops taking orders; in-flight ones finish. Returns when none is left.
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
        if !self.accepting.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
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
        let result = tracing::Instrument::instrument(self.submit_inner(req), span).await;
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.send_modify(|n| *n += 1);
        }
        result
    }

    /// A new order's record, `pending` until its outcome is known.
    fn new_record(&self, req: &OrderRequest, now: f64) -> OrderRecord {
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
            .best(req.symbol, now, self.config.max_quote_age_secs);
        let rests = match (req.order_type, req.price, quote) {
            (OrderType::Market, _, _) | (_, None, _) => false,
            (_, Some(price), Some((q, _, _))) => !triggers(req.order_type, req.side, price, &q),
            (_, Some(_), None) => true,
        };
        if rests {
            if req.volume > self.config.max_order_lots {
                let route = self.route_for(&req.account, req.volume);
                let exec = Execution::rejected(
                    route,
                    RejectReason::MaxVolume,
                    self.volume_reason(req.volume),
                );
                return self.finish(req, record, exec, started, true).await;
            }
            record.latency_us = started.elapsed().as_micros() as u64;
            self.store
                .write(vec![Write::InsertOrder(record.clone())])
                .await?;
            self.remember(&record, true);
            log_order(&record, started.elapsed());
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Pending {
                    request: req,
                    record: record.clone(),
                });
            return Ok(record);
        }
        let exec = self.execute(&req, quote.map(|q| q.0)).await;
        self.finish(req, record, exec, started, true).await
    }

    fn volume_reason(&self, volume: f64) -> String {
        format!(
            "volume {volume} lots is above the maximum of {} lots",
            self.config.max_order_lots
        )
    }

    /// Pre-trade risk checks: a quote, the volume limit, the symbol's exposure limit, and free
    /// margin (unless the order only reduces a position). The quote to execute at, or the
    /// rejection.
    fn risk_check(
        &self,
        req: &OrderRequest,
        quote: Option<Quote>,
        route: Route,
    ) -> Result<Quote, Execution> {
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
        let now = unix_now();
        let signed = if req.side == Side::Buy {
            req.volume
        } else {
            -req.volume
        };
        let net_after = self.net_lots.lock().unwrap_or_else(PoisonError::into_inner)
            [req.symbol.index()]
            + signed;
        let exposure = notional_usd(&self.market, req.symbol, net_after.abs(), now);
        if exposure > self.config.max_net_exposure_usd {
            return Err(Execution::rejected(
                route,
                RejectReason::ExposureLimit,
                format!(
                    "net exposure would reach {exposure:.0} USD, above the limit of {:.0}",
                    self.config.max_net_exposure_usd
                ),
            ));
        }
        let required =
            notional_usd(&self.market, req.symbol, req.volume, now) / self.config.leverage;
        let free = req
            .account
            .lock()
            .figures(&self.market, self.config.leverage, now)
            .free_margin;
        let reduces = {
            let state = req.account.lock();
            state
                .positions
                .get(&req.symbol)
                .is_some_and(|p| p.lots * signed < 0.0 && p.lots.abs() >= req.volume)
        };
        if !reduces && required > free {
            return Err(Execution::rejected(
                route,
                RejectReason::InsufficientMargin,
                format!("required margin {required:.2} USD exceeds free margin {free:.2} USD"),
            ));
        }
        Ok(quote)
    }

    /// Risk checks, then execution on the order's route (with an LP for A-book, at the quote
    /// for B-book); touches no account state, which `finish` updates once the outcome is known.
    async fn execute(&self, req: &OrderRequest, quote: Option<Quote>) -> Execution {
        let route = self.route_for(&req.account, req.volume);
        let risk = tracing::info_span!("risk.check", risk.outcome = tracing::field::Empty);
        let quote = match risk.in_scope(|| self.risk_check(req, quote, route)) {
            Ok(quote) => {
                risk.record("risk.outcome", "passed");
                quote
            }
            Err(rejection) => {
                risk.record("risk.outcome", "rejected");
                return rejection;
            }
        };
        let now = unix_now();
        let quoted = if req.side == Side::Buy {
            quote.ask
        } else {
            quote.bid
        };
        match route {
            Route::BBook => Execution {
                outcome: Outcome::Filled,
                route,
                price: Some(quoted),
                lp: None,
                reason: None,
                reject: None,
            },
            Route::ABook => {
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
                );
                // The simulated session has no wire to carry it on; recording the header it
                // would send shows what a real session puts on its order message.
                if let Some(tp) = lp_span.in_scope(rtx_monitoring::trace::current_traceparent) {
                    lp_span.record("lp.traceparent", tp.as_str());
                }
                match tracing::Instrument::instrument(
                    lp.execute(req.symbol, req.side == Side::Buy),
                    lp_span,
                )
                .await
                {
                    Ok(price) => {
                        let pip = self.market.instrument(req.symbol).pip;
                        let slippage = if req.side == Side::Buy {
                            price - quoted
                        } else {
                            quoted - price
                        };
                        self.metrics
                            .orders
                            .record_slippage(req.symbol, slippage / pip);
                        Execution {
                            outcome: Outcome::Filled,
                            route,
                            price: Some(price),
                            lp: lp_name,
                            reason: None,
                            reject: None,
                        }
                    }
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
                        lp: lp_name,
                        reason: Some(e.to_string()),
                        reject: None,
                    },
                }
            }
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

    /// Applies a fill, persists the order, and records its metrics. `new` says whether the
    /// order row exists yet (a triggered pending order exists already).
    async fn finish(
        &self,
        req: OrderRequest,
        mut record: OrderRecord,
        exec: Execution,
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
        let mut writes = Vec::with_capacity(3);
        let mut undo = None;
        if let (Outcome::Filled, Some(price)) = (exec.outcome, exec.price) {
            let now = unix_now();
            let mut state = req.account.lock();
            let before = (state.positions.get(&req.symbol).copied(), state.balance);
            let seq = self.fill_seq.fetch_add(1, Ordering::AcqRel) + 1;
            let realized =
                state.apply_fill(&self.market, req.symbol, req.side, req.volume, price, now);
            let after = (state.positions.get(&req.symbol).copied(), state.balance);
            drop(state);
            let signed = if req.side == Side::Buy {
                req.volume
            } else {
                -req.volume
            };
            self.net_lots.lock().unwrap_or_else(PoisonError::into_inner)[req.symbol.index()] +=
                signed;
            writes.push(Write::Fill(FillRecord {
                seq,
                order_id: record.id.clone(),
                account_id: req.account.id.clone(),
                symbol: record.symbol.clone(),
                side: record.side,
                volume: req.volume,
                price,
                ts: now,
            }));
            if realized != 0.0 {
                writes.push(Write::BalanceDelta {
                    account_id: req.account.id.clone(),
                    delta: realized,
                });
            }
            undo = Some((before, after, signed, realized));
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
            if let Some((before, after, signed, realized)) = undo {
                self.undo_fill(&req, before, after, signed, realized);
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
            if exec.route == Route::BBook {
                self.metrics.orders.record_slippage(req.symbol, 0.0);
            }
        }
        log_order(&record, latency);
        if let (Some(price), Some((_, _, _, realized))) = (record.fill_price, undo) {
            events::trade(&events::Trade {
                order_id: &record.id,
                account_id: &record.account_id,
                symbol: &record.symbol,
                side: record.side.as_str(),
                volume: record.volume,
                price,
                realized_pnl: realized,
                lp: record.lp.as_deref(),
            });
        }
        events::performance("order.execute", latency, SLOW_ORDER);
        self.remember(&record, new);
        Ok(record)
    }

    /// Takes back an in-memory fill whose transaction failed, so memory matches the database.
    fn undo_fill(
        &self,
        req: &OrderRequest,
        before: (Option<Position>, f64),
        after: (Option<Position>, f64),
        signed: f64,
        realized: f64,
    ) {
        let mut state = req.account.lock();
        let current = (state.positions.get(&req.symbol).copied(), state.balance);
        if current == after {
            match before.0 {
                Some(p) => {
                    state.positions.insert(req.symbol, p);
                }
                None => {
                    state.positions.remove(&req.symbol);
                }
            }
            state.balance = before.1;
        } else {
            // Another fill landed since: reverse this one by its effect instead.
            let p = state.positions.entry(req.symbol).or_default();
            p.lots -= signed;
            p.realized_pnl -= realized;
            state.balance -= realized;
        }
        drop(state);
        self.net_lots.lock().unwrap_or_else(PoisonError::into_inner)[req.symbol.index()] -= signed;
    }

    /// Fills resting orders that `quote` triggers. Called for every quote.
    pub async fn on_quote(self: &Arc<Self>, symbol: SymbolId, quote: Quote) {
        let triggered: Vec<Pending> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let (fire, keep): (Vec<Pending>, Vec<Pending>) = pending.drain(..).partition(|p| {
                p.request.symbol == symbol
                    && p.request.price.is_some_and(|price| {
                        triggers(p.request.order_type, p.request.side, price, &quote)
                    })
            });
            *pending = keep;
            fire
        };
        for p in triggered {
            let router = Arc::clone(self);
            tokio::spawn(async move {
                let started = Instant::now();
                let exec = router.execute(&p.request, Some(quote)).await;
                // A failed store leaves the order pending in the database; it is retried after a restart.
                let _ = router
                    .finish(p.request, p.record, exec, started, false)
                    .await;
            });
        }
    }

    /// Closes every position of an account at market (stop-out), as B-book fills.
    pub async fn stop_out(&self, account: &Arc<Account>) {
        let positions: Vec<(SymbolId, Position)> = account
            .lock()
            .positions
            .iter()
            .filter(|(_, p)| p.lots != 0.0)
            .map(|(s, p)| (*s, *p))
            .collect();
        for (symbol, p) in positions {
            let req = OrderRequest {
                account: Arc::clone(account),
                symbol,
                side: if p.lots > 0.0 { Side::Sell } else { Side::Buy },
                order_type: OrderType::Market,
                volume: p.lots.abs(),
                price: None,
                client_order_id: Some("stop-out".to_owned()),
            };
            let now = unix_now();
            let Some((quote, _, _)) = self.market.best(symbol, now, f64::INFINITY) else {
                continue;
            };
            let price = if req.side == Side::Buy {
                quote.ask
            } else {
                quote.bid
            };
            let exec = Execution {
                outcome: Outcome::Filled,
                route: Route::BBook,
                price: Some(price),
                lp: None,
                reason: Some("stop-out".to_owned()),
                reject: None,
            };
            let record = self.new_record(&req, now);
            let _ = self.finish(req, record, exec, Instant::now(), true).await;
        }
        self.metrics.accounts.record_stopout();
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
fn triggers(order_type: OrderType, side: Side, price: f64, q: &Quote) -> bool {
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
