//! Trading families: orders and the latency SLO, LPs, WebSocket, positions, accounts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{
    names_of, spec_counter, spec_gauge, CatalogueConfig, LpErrorKind, LpId, LpOperation, LpSpec,
    OrderType, Outcome, RejectReason, Route, Side, SymbolId, WsChannel, WsDropReason,
};
use crate::metrics::{
    ConfiguredValues, Counter, Dense, Dynamic, FloatCounter, Gauge, Histogram, InFlight,
    LabelValue, MetricSpec, NativeConfig, Registry, RegistryError, LATENCY_BUCKETS,
    SLIPPAGE_BUCKETS,
};

/// Orders, execution latency, volume, rejections, slippage and the order latency SLO.
#[derive(Clone, Debug)]
pub struct OrderMetrics {
    total: Dense<Counter, 4>,
    latency: Dense<Histogram, 2>,
    volume: Dense<FloatCounter, 2>,
    rejections: Dense<Counter, 1>,
    /// The `reason` values of `rejections`, in index order: the enum's, then the configured ones.
    reject_reasons: std::sync::Arc<[String]>,
    in_flight: Gauge,
    resting: Dense<Gauge, 1>,
    slippage: Dense<Histogram, 1>,
    slo_orders: Dense<Counter, 1>,
    slo_target_seconds: f64,
}

impl OrderMetrics {
    pub(crate) fn new(
        r: &Registry,
        symbols: &ConfiguredValues,
        config: &CatalogueConfig,
    ) -> Result<Self, RegistryError> {
        let syms: Vec<&str> = symbols.names().collect();
        let mut reject_reasons: Vec<String> = names_of::<RejectReason>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for custom in &config.custom_reject_reasons {
            if !reject_reasons.contains(custom) {
                reject_reasons.push(custom.clone());
            }
        }
        let reason_labels: Vec<&str> = reject_reasons.iter().map(String::as_str).collect();
        let order_types = names_of::<OrderType>();
        let routes = names_of::<Route>();
        let metrics = Self {
            total: r.dense(
                spec_counter(
                    "rtx_orders_total",
                    "Orders processed, by type, symbol, route (ABOOK to an LP, BBOOK internal) and outcome.",
                    &["order_type", "symbol", "route", "outcome"],
                ),
                [&order_types, &syms, &routes, &names_of::<Outcome>()],
            )?,
            latency: r.dense(
                MetricSpec::histogram(
                    "rtx_order_execution_latency_seconds",
                    "Time from accepting an order to its final outcome, in seconds.",
                    LATENCY_BUCKETS,
                )
                .with_native(NativeConfig::LATENCY)
                .with_unit("seconds")
                .with_labels(&["order_type", "route"])
                .with_exemplars(),
                [&order_types, &routes],
            )?,
            volume: r.dense(
                spec_counter("rtx_order_volume_lots_total", "Filled volume in lots.", &["symbol", "side"]),
                [&syms, &names_of::<Side>()],
            )?,
            rejections: r.dense(
                spec_counter("rtx_order_rejections_total", "Orders rejected, by reason.", &["reason"]),
                [&reason_labels],
            )?,
            reject_reasons: reject_reasons.into(),
            in_flight: r.gauge(MetricSpec::gauge("rtx_orders_in_flight", "Orders accepted and not yet finished."))?,
            resting: r.dense(
                spec_gauge(
                    "rtx_orders_resting",
                    "Resting limit and stop orders waiting for their price, by symbol.",
                    &["symbol"],
                ),
                [&syms],
            )?,
            slippage: r.dense(
                MetricSpec::histogram(
                    "rtx_order_slippage_pips",
                    "Fill price minus requested price in pips, signed against the client (negative is price improvement).",
                    SLIPPAGE_BUCKETS,
                )
                .with_labels(&["symbol"]),
                [&syms],
            )?,
            slo_orders: r.dense(
                spec_counter(
                    "rtx_order_slo_orders_total",
                    "Orders counted against the latency SLO, by whether they finished within the target.",
                    &["within_target"],
                ),
                [&["true", "false"]],
            )?,
            slo_target_seconds: config.slo_target.as_secs_f64(),
        };
        r.gauge(
            MetricSpec::gauge(
                "rtx_order_slo_target_seconds",
                "Order execution latency SLO target in seconds.",
            )
            .with_unit("seconds"),
        )?
        .set(metrics.slo_target_seconds);
        let compliance = r.gauge(
            MetricSpec::gauge(
                "rtx_order_slo_compliance_ratio",
                "Share of orders within the latency target over the rolling SLO window (1 when there were none).",
            )
            .with_unit("ratio"),
        )?;
        let window = SloWindow::new(config.slo_window);
        let (within, outside) = (
            metrics.slo_orders.get([0]).clone(),
            metrics.slo_orders.get([1]).clone(),
        );
        r.on_collect(move || {
            compliance.set(window.ratio(within.get(), within.get() + outside.get()))
        });
        Ok(metrics)
    }

    /// Records an order's final outcome and latency; also
    /// counts it against the latency SLO.
    #[inline]
    pub fn record_execution(
        &self,
        order_type: OrderType,
        symbol: SymbolId,
        route: Route,
        outcome: Outcome,
        latency: Duration,
    ) {
        self.total
            .get([
                order_type.index(),
                symbol.index(),
                route.index(),
                outcome.index(),
            ])
            .inc();
        let seconds = latency.as_secs_f64();
        self.latency
            .get([order_type.index(), route.index()])
            .observe(seconds);
        // `within_target` is "true" at index 0 and "false" at index 1.
        let missed_target = usize::from(seconds > self.slo_target_seconds);
        self.slo_orders.get([missed_target]).inc();
    }

    /// Adds filled volume in lots.
    #[inline]
    pub fn record_volume(&self, symbol: SymbolId, side: Side, lots: f64) {
        self.volume.get([symbol.index(), side.index()]).inc_by(lots);
    }

    /// Counts a rejection.
    #[inline]
    pub fn record_rejection(&self, reason: RejectReason) {
        self.rejections.get([reason.index()]).inc();
    }

    /// The rejection counter of a reason by name: one of [`RejectReason`]'s, or one configured
    /// in [`CatalogueConfig::custom_reject_reasons`] for a reason the enum lacks (a venue halt,
    /// a credit limit). `None` for a name that is neither: label values stay a bounded set
    /// known at start. Resolve it once and keep the handle.
    pub fn rejection(&self, reason: &str) -> Option<Counter> {
        let index = self.reject_reasons.iter().position(|r| r == reason)?;
        Some(self.rejections.get([index]).clone())
    }

    /// Records the slippage of a fill, in pips.
    #[inline]
    pub fn record_slippage(&self, symbol: SymbolId, pips: f64) {
        self.slippage.get([symbol.index()]).observe(pips);
    }

    /// Sets how many limit and stop orders rest on `symbol`. A book that only grows means
    /// clients park orders far from the market (or a symbol stopped quoting); the engine caps
    /// them per account.
    pub fn set_resting(&self, symbol: SymbolId, count: usize) {
        self.resting.get([symbol.index()]).set(count as f64);
    }

    /// Marks an order in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.track_in_flight()
    }

    /// The latency histogram of one type and route (for an exemplar or a test).
    pub fn latency(&self, order_type: OrderType, route: Route) -> &Histogram {
        self.latency.get([order_type.index(), route.index()])
    }

    /// The order counter of one label set.
    pub fn total(
        &self,
        order_type: OrderType,
        symbol: SymbolId,
        route: Route,
        outcome: Outcome,
    ) -> &Counter {
        self.total.get([
            order_type.index(),
            symbol.index(),
            route.index(),
            outcome.index(),
        ])
    }
}

/// Counter readings over time, to turn two monotonic totals into a ratio over a window.
#[derive(Debug)]
struct SloWindow {
    window: Duration,
    readings: Mutex<VecDeque<(Instant, u64, u64)>>,
}

impl SloWindow {
    fn new(window: Duration) -> Self {
        Self {
            window,
            readings: Mutex::new(VecDeque::from([(Instant::now(), 0, 0)])),
        }
    }

    /// Share of `good` in `total` since the newest reading at least a window old.
    fn ratio(&self, good: u64, total: u64) -> f64 {
        let now = Instant::now();
        let mut readings = self.readings.lock().unwrap_or_else(PoisonError::into_inner);
        while readings.len() > 1
            && readings
                .get(1)
                .is_some_and(|r| now.duration_since(r.0) >= self.window)
        {
            readings.pop_front();
        }
        let (_, good0, total0) = readings.front().copied().unwrap_or((now, 0, 0));
        readings.push_back((now, good, total));
        let (good, total) = (good.saturating_sub(good0), total.saturating_sub(total0));
        if total == 0 {
            1.0
        } else {
            good as f64 / total as f64
        }
    }
}

/// Liquidity-provider sessions: connectivity, latency, quotes, errors, spreads.
#[derive(Clone, Debug)]
pub struct LpMetrics {
    connected: Arc<[Gauge]>,
    latency: Dense<Histogram, 2>,
    quotes: Dense<Counter, 2>,
    last_quote: Dense<Gauge, 1>,
    disconnects: Dense<Counter, 1>,
    errors: Dense<Counter, 2>,
    spread: Dense<Gauge, 2>,
    sequence_gaps: Dense<Counter, 1>,
}

impl LpMetrics {
    pub(crate) fn new(
        r: &Registry,
        symbols: &ConfiguredValues,
        lps: &[LpSpec],
    ) -> Result<Self, RegistryError> {
        let syms: Vec<&str> = symbols.names().collect();
        let names: Vec<&str> = lps.iter().map(|l| l.name.as_str()).collect();
        let connected_family: Dynamic<Gauge> = r.dynamic(
            spec_gauge(
                "rtx_lp_connected",
                "1 when the LP session is connected, 0 otherwise.",
                &["lp", "protocol"],
            ),
            &[None, None],
        )?;
        Ok(Self {
            connected: lps
                .iter()
                .map(|l| connected_family.get(&[&l.name, &l.protocol]))
                .collect(),
            latency: r.dense(
                MetricSpec::histogram(
                    "rtx_lp_latency_seconds",
                    "LP round-trip time in seconds, by operation.",
                    LATENCY_BUCKETS,
                )
                .with_native(NativeConfig::LATENCY)
                .with_unit("seconds")
                .with_labels(&["lp", "operation"])
                .with_exemplars(),
                [&names, &names_of::<LpOperation>()],
            )?,
            quotes: r.dense(
                spec_counter(
                    "rtx_lp_quotes_total",
                    "Quotes received from the LP.",
                    &["lp", "symbol"],
                ),
                [&names, &syms],
            )?,
            last_quote: r.dense(
                MetricSpec::gauge(
                    "rtx_lp_last_quote_timestamp_seconds",
                    "Unix time of the last quote from the LP, in seconds.",
                )
                .with_unit("seconds")
                .with_labels(&["lp"]),
                [&names],
            )?,
            disconnects: r.dense(
                spec_counter(
                    "rtx_lp_disconnects_total",
                    "LP session disconnections.",
                    &["lp"],
                ),
                [&names],
            )?,
            errors: r.dense(
                spec_counter(
                    "rtx_lp_errors_total",
                    "LP errors, by kind.",
                    &["lp", "kind"],
                ),
                [&names, &names_of::<LpErrorKind>()],
            )?,
            spread: r.dense(
                spec_gauge(
                    "rtx_lp_spread_pips",
                    "Current LP spread (ask minus bid) in pips.",
                    &["lp", "symbol"],
                ),
                [&names, &syms],
            )?,
            sequence_gaps: r.dense(
                spec_counter(
                    "rtx_lp_session_sequence_gaps_total",
                    "Gaps in the LP session's message sequence numbers (lost messages).",
                    &["lp"],
                ),
                [&names],
            )?,
        })
    }

    /// Sets whether the LP is connected; a drop from connected
    /// counts a disconnect.
    pub fn set_connected(&self, lp: LpId, connected: bool) {
        let Some(gauge) = self.connected.get(lp.index()) else {
            return;
        };
        if !connected && gauge.get() == 1.0 {
            self.disconnects.get([lp.index()]).inc();
        }
        gauge.set_bool(connected);
    }

    /// Records an LP round trip.
    #[inline]
    pub fn record_latency(&self, lp: LpId, operation: LpOperation, latency: Duration) {
        self.latency
            .get([lp.index(), operation.index()])
            .observe_duration(latency);
    }

    /// Counts a quote and updates the spread and the last-quote time.
    #[inline]
    pub fn record_quote(&self, lp: LpId, symbol: SymbolId, spread_pips: f64, unix_seconds: f64) {
        self.quotes.get([lp.index(), symbol.index()]).inc();
        self.spread
            .get([lp.index(), symbol.index()])
            .set(spread_pips);
        self.last_quote.get([lp.index()]).set(unix_seconds);
    }

    /// Counts an error.
    #[inline]
    pub fn record_error(&self, lp: LpId, kind: LpErrorKind) {
        self.errors.get([lp.index(), kind.index()]).inc();
    }

    /// Counts `missed` messages lost in a sequence gap.
    #[inline]
    pub fn record_sequence_gap(&self, lp: LpId, missed: u64) {
        self.sequence_gaps.get([lp.index()]).inc_by(missed);
    }

    /// The quote counter for one LP and symbol.
    pub fn quotes(&self, lp: LpId, symbol: SymbolId) -> &Counter {
        self.quotes.get([lp.index(), symbol.index()])
    }
}

/// WebSocket quote streaming.
#[derive(Clone, Debug)]
pub struct WebSocketMetrics {
    active: Gauge,
    opened: Counter,
    sent: Dense<Counter, 1>,
    dropped: Dense<Counter, 1>,
}

impl WebSocketMetrics {
    pub(crate) fn new(r: &Registry) -> Result<Self, RegistryError> {
        Ok(Self {
            active: r.gauge(MetricSpec::gauge(
                "rtx_websocket_connections_active",
                "Open WebSocket connections.",
            ))?,
            opened: r.counter(MetricSpec::counter(
                "rtx_websocket_connections_opened_total",
                "WebSocket connections opened.",
            ))?,
            sent: r.dense(
                spec_counter(
                    "rtx_websocket_messages_sent_total",
                    "WebSocket messages sent, by channel.",
                    &["channel"],
                ),
                [&names_of::<WsChannel>()],
            )?,
            dropped: r.dense(
                spec_counter(
                    "rtx_websocket_messages_dropped_total",
                    "WebSocket messages not delivered, by reason.",
                    &["reason"],
                ),
                [&names_of::<WsDropReason>()],
            )?,
        })
    }

    /// Counts a connection as opened and active until the guard drops.
    pub fn connection(&self) -> InFlight {
        self.opened.inc();
        self.active.track_in_flight()
    }

    /// Counts a message sent.
    #[inline]
    pub fn record_sent(&self, channel: WsChannel) {
        self.sent.get([channel.index()]).inc();
    }

    /// Counts messages not delivered.
    #[inline]
    pub fn record_dropped(&self, reason: WsDropReason, count: u64) {
        self.dropped.get([reason.index()]).inc_by(count);
    }
}

/// Open positions, volume, P&L and exposure per symbol (aggregated over accounts).
#[derive(Clone, Debug)]
pub struct PositionMetrics {
    open: Dense<Gauge, 1>,
    volume: Dense<Gauge, 2>,
    unrealized: Dense<Gauge, 1>,
    realized: Dense<Gauge, 1>,
    exposure: Dense<Gauge, 1>,
}

/// One symbol's position figures, for [`PositionMetrics::set_symbol`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SymbolPositions {
    /// Open positions (accounts with a non-zero net position).
    pub open: f64,
    /// Long volume in lots.
    pub long_lots: f64,
    /// Short volume in lots.
    pub short_lots: f64,
    /// Unrealized P&L in account currency.
    pub unrealized_pnl: f64,
    /// Realized P&L in account currency.
    pub realized_pnl: f64,
    /// Signed net notional exposure in account currency.
    pub net_exposure: f64,
}

impl PositionMetrics {
    pub(crate) fn new(r: &Registry, symbols: &ConfiguredValues) -> Result<Self, RegistryError> {
        let syms: Vec<&str> = symbols.names().collect();
        let per_symbol =
            |name: &str, help: &str| r.dense(spec_gauge(name, help, &["symbol"]), [&syms]);
        Ok(Self {
            open: per_symbol("rtx_positions_open", "Open positions per symbol.")?,
            volume: r.dense(
                spec_gauge(
                    "rtx_position_volume_lots",
                    "Open position volume in lots, by side.",
                    &["symbol", "side"],
                ),
                [&syms, &names_of::<Side>()],
            )?,
            unrealized: per_symbol(
                "rtx_unrealized_pnl",
                "Unrealized P&L per symbol, in account currency.",
            )?,
            realized: per_symbol(
                "rtx_realized_pnl",
                "Realized P&L per symbol since start, in account currency.",
            )?,
            exposure: per_symbol(
                "rtx_net_exposure",
                "Net notional exposure per symbol, in account currency (signed).",
            )?,
        })
    }

    /// Sets one symbol's figures.
    pub fn set_symbol(&self, symbol: SymbolId, p: SymbolPositions) {
        let i = symbol.index();
        self.open.get([i]).set(p.open);
        self.volume.get([i, Side::Buy.index()]).set(p.long_lots);
        self.volume.get([i, Side::Sell.index()]).set(p.short_lots);
        self.unrealized.get([i]).set(p.unrealized_pnl);
        self.realized.get([i]).set(p.realized_pnl);
        self.exposure.get([i]).set(p.net_exposure);
    }
}

/// Account balances and margin.
#[derive(Clone, Debug)]
pub struct AccountMetrics {
    balance: Dynamic<Gauge>,
    equity: Dynamic<Gauge>,
    margin_used: Dynamic<Gauge>,
    free_margin: Dynamic<Gauge>,
    margin_usage: Dynamic<Gauge>,
    total_balance: Gauge,
    total_equity: Gauge,
    in_margin_call: Gauge,
    stopouts: Counter,
}

/// One account's gauges, resolved once.
#[derive(Clone, Debug)]
pub struct AccountGauges {
    balance: Gauge,
    equity: Gauge,
    margin_used: Gauge,
    free_margin: Gauge,
    margin_usage: Gauge,
}

impl AccountGauges {
    /// Sets the account's figures; the usage ratio is margin used over equity (0 with no equity).
    pub fn set(&self, balance: f64, equity: f64, margin_used: f64) {
        self.balance.set(balance);
        self.equity.set(equity);
        self.margin_used.set(margin_used);
        self.free_margin.set(equity - margin_used);
        self.margin_usage.set(if equity > 0.0 {
            margin_used / equity
        } else if margin_used > 0.0 {
            1.0
        } else {
            0.0
        });
    }
}

impl AccountMetrics {
    pub(crate) fn new(r: &Registry, config: &CatalogueConfig) -> Result<Self, RegistryError> {
        let cap = [Some(config.account_cap)];
        let per_account =
            |name: &str, help: &str| r.dynamic(spec_gauge(name, help, &["account"]), &cap);
        Ok(Self {
            balance: per_account(
                "rtx_account_balance",
                "Account balance in account currency.",
            )?,
            equity: per_account(
                "rtx_account_equity",
                "Account equity (balance plus unrealized P&L).",
            )?,
            margin_used: per_account("rtx_account_margin_used", "Margin held by open positions.")?,
            free_margin: per_account("rtx_account_free_margin", "Equity minus margin used.")?,
            margin_usage: r.dynamic(
                MetricSpec::gauge("rtx_account_margin_usage_ratio", "Margin used over equity.")
                    .with_unit("ratio")
                    .with_labels(&["account"]),
                &cap,
            )?,
            total_balance: r.gauge(MetricSpec::gauge(
                "rtx_accounts_total_balance",
                "Sum of all account balances.",
            ))?,
            total_equity: r.gauge(MetricSpec::gauge(
                "rtx_accounts_total_equity",
                "Sum of all account equities.",
            ))?,
            in_margin_call: r.gauge(MetricSpec::gauge(
                "rtx_accounts_in_margin_call",
                "Accounts below the margin-call level.",
            ))?,
            stopouts: r.counter(MetricSpec::counter(
                "rtx_stopouts_total",
                "Stop-outs (positions closed for lack of margin).",
            ))?,
        })
    }

    /// The gauges of one account (resolve once per account and keep).
    pub fn account(&self, id: &str) -> AccountGauges {
        AccountGauges {
            balance: self.balance.get(&[id]),
            equity: self.equity.get(&[id]),
            margin_used: self.margin_used.get(&[id]),
            free_margin: self.free_margin.get(&[id]),
            margin_usage: self.margin_usage.get(&[id]),
        }
    }

    /// Sets the aggregates over every account.
    pub fn set_totals(&self, balance: f64, equity: f64, in_margin_call: usize) {
        self.total_balance.set(balance);
        self.total_equity.set(equity);
        self.in_margin_call.set(in_margin_call as f64);
    }

    /// Counts a stop-out.
    pub fn record_stopout(&self) {
        self.stopouts.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resting_orders_are_counted_per_symbol_from_zero() {
        let registry = Registry::new();
        let metrics =
            crate::catalogue::TradingMetrics::new(&registry, &CatalogueConfig::default()).unwrap();
        let text = || registry.encode_to_string(crate::metrics::Format::PrometheusText);
        assert!(text().contains("rtx_orders_resting{symbol=\"GBPJPY\"} 0\n"));
        let eurusd = metrics.symbol("EURUSD").unwrap();
        metrics.orders.set_resting(eurusd, 3);
        metrics.orders.set_resting(eurusd, 2);
        assert!(text().contains("rtx_orders_resting{symbol=\"EURUSD\"} 2\n"));
    }

    #[test]
    fn slo_window_is_one_with_no_orders_and_tracks_the_share() {
        let w = SloWindow::new(Duration::from_secs(60));
        assert_eq!(w.ratio(0, 0), 1.0);
        assert_eq!(w.ratio(95, 100), 0.95);
    }
}
