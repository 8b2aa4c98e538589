//! The trading metric catalogue (`docs/METRICS.md`): every family with its help, unit and bounded
//! labels, behind methods that read like the trading domain.
//!
//! Owns names and label sets; storage and encoding belong to `metrics`. Label values from
//! outside the program (routes, accounts, DB tables, check names) go through the cardinality
//! guard; everything else is an enum or a configured set resolved to a dense id.

mod platform;
mod trading;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::{
    label_enum, register_process_collector, ConfiguredValues, MetricSpec, Registry, RegistryError,
};

#[cfg(feature = "tokio-runtime")]
pub use platform::RuntimeSampler;
pub use platform::{
    ApiMetrics, BuildInfo, DbMetrics, DbQueryMetrics, RuntimeMetrics, SelfMetrics, UNMATCHED_ROUTE,
};
pub use trading::{
    AccountGauges, AccountMetrics, LpMetrics, OrderMetrics, PositionMetrics, SymbolPositions,
    WebSocketMetrics,
};

label_enum! {
    /// Order type.
    pub enum OrderType { Market => "market", Limit => "limit", Stop => "stop" }
}

label_enum! {
    /// Where an order was filled: sent to an LP (A-book) or internalised (B-book).
    pub enum Route { ABook => "ABOOK", BBook => "BBOOK" }
}

label_enum! {
    /// How an order ended.
    pub enum Outcome {
        /// Executed.
        Filled => "filled",
        /// Refused by risk checks or the LP.
        Rejected => "rejected",
        /// Execution failed (LP timeout, database error).
        Error => "error"
    }
}

label_enum! {
    /// Order or position side.
    pub enum Side { Buy => "buy", Sell => "sell" }
}

label_enum! {
    /// Why an order was rejected.
    pub enum RejectReason {
        /// Not enough free margin.
        InsufficientMargin => "insufficient_margin",
        /// Volume above the per-order maximum.
        MaxVolume => "max_volume",
        /// Would take the symbol's net exposure past its limit.
        ExposureLimit => "exposure_limit",
        /// No current quote for the symbol.
        NoQuote => "no_quote",
        /// The LP refused the order.
        LpRejected => "lp_rejected",
        /// No LP is connected to take an A-book order.
        NoLiquidity => "no_liquidity",
        /// The account already has as many resting orders as it may.
        RestingLimit => "resting_limit"
    }
}

label_enum! {
    /// What an LP round trip was for.
    pub enum LpOperation { Quote => "quote", Order => "order", Heartbeat => "heartbeat" }
}

label_enum! {
    /// Kinds of LP error.
    pub enum LpErrorKind {
        /// No answer within the deadline.
        Timeout => "timeout",
        /// The LP rejected a request.
        Reject => "reject",
        /// The session dropped.
        Connection => "connection",
        /// A message the session could not use.
        Protocol => "protocol",
        /// A quote older than the staleness limit.
        StaleQuote => "stale_quote"
    }
}

label_enum! {
    /// WebSocket channels: the engine streams quotes (`GET /ws/quotes`) and nothing
    /// else, so that is the only channel with a series.
    pub enum WsChannel { Quotes => "quotes" }
}

label_enum! {
    /// Why a WebSocket message was not delivered.
    pub enum WsDropReason {
        /// The client's buffer was full.
        SlowConsumer => "slow_consumer",
        /// The connection had closed.
        Closed => "closed"
    }
}

label_enum! {
    /// HTTP request methods; anything else is `OTHER`, so a client cannot invent label values.
    pub enum HttpMethod {
        Get => "GET", Post => "POST", Put => "PUT", Delete => "DELETE", Patch => "PATCH",
        Head => "HEAD", Options => "OPTIONS", Other => "OTHER"
    }
}

impl HttpMethod {
    /// Maps a method name; unknown names are [`HttpMethod::Other`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "PATCH" => Self::Patch,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

label_enum! {
    /// Why the server closed an HTTP connection itself (a client closing is not counted).
    pub enum ConnectionCloseReason {
        /// Request headers were not complete within the header-read timeout (half-open or
        /// slow-loris connections).
        HeaderTimeout => "header_timeout",
        /// A keep-alive connection sat between requests longer than the idle timeout.
        IdleTimeout => "idle_timeout",
        /// A request (its body included) was not answered within the request timeout; the
        /// client got 408 and the connection was closed.
        RequestTimeout => "request_timeout",
        /// The connection cap or the WebSocket client cap was reached: the connection was closed
        /// at once, or an idle one made room for it.
        Limit => "limit"
    }
}

label_enum! {
    /// Result of a database query.
    pub enum DbOutcome { Success => "success", Error => "error" }
}

label_enum! {
    /// Database pool connection state.
    pub enum PoolState { Idle => "idle", Active => "active" }
}

label_enum! {
    /// Result of one notification to Alertmanager.
    pub enum NotificationOutcome {
        /// Accepted by Alertmanager.
        Success => "success",
        /// Failed; will be retried.
        Failure => "failure",
        /// Given up after retries or dropped from a full queue.
        Dropped => "dropped"
    }
}

label_enum! {
    /// Log levels.
    pub enum LogLevel { Debug => "DEBUG", Info => "INFO", Warn => "WARN", Error => "ERROR", Fatal => "FATAL" }
}

/// A configured symbol, resolved once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymbolId(pub(crate) u16);

impl SymbolId {
    /// Dense position in the configured symbol list.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A configured liquidity provider, resolved once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LpId(pub(crate) u16);

impl LpId {
    /// Dense position in the configured LP list.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A configured LP: its name and the protocol its session speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LpSpec {
    /// Name, the `lp` label.
    pub name: String,
    /// Protocol, the `protocol` label (`FIX`, `REST`, …).
    pub protocol: String,
}

/// Which parts of the catalogue a service registers. A part left out gets handles that record
/// nothing and is never exported, so a service without, say, WebSocket clients or a database
/// neither pays for nor shows those families; its code can call them all the same. The
/// monitoring layer's own families (alerts, logs, spans, health checks) are always there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    /// Orders, execution latency, volume, rejections, slippage, the latency SLO.
    pub orders: bool,
    /// Liquidity-provider sessions.
    pub lps: bool,
    /// WebSocket streaming.
    pub websocket: bool,
    /// Open positions, P&L and net exposure per symbol.
    pub positions: bool,
    /// Account balances and margin.
    pub accounts: bool,
    /// HTTP requests and connections.
    pub api: bool,
    /// Database queries and pool.
    pub database: bool,
    /// Tokio runtime gauges, build info, uptime and the `process_*` families.
    pub runtime: bool,
}

impl Sections {
    /// The whole catalogue: what the reference engine registers.
    pub const ALL: Self = Self {
        orders: true,
        lps: true,
        websocket: true,
        positions: true,
        accounts: true,
        api: true,
        database: true,
        runtime: true,
    };
    /// Nothing but the monitoring layer's own families; switch on what you need:
    /// `Sections { orders: true, api: true, ..Sections::NONE }`.
    pub const NONE: Self = Self {
        orders: false,
        lps: false,
        websocket: false,
        positions: false,
        accounts: false,
        api: false,
        database: false,
        runtime: false,
    };
}

impl Default for Sections {
    fn default() -> Self {
        Self::ALL
    }
}

/// What the catalogue needs from configuration.
#[derive(Clone, Debug)]
pub struct CatalogueConfig {
    /// Which parts of the catalogue to register (default: all).
    pub sections: Sections,
    /// Traded symbols.
    pub symbols: Vec<String>,
    /// Liquidity providers.
    pub lps: Vec<LpSpec>,
    /// Order latency SLO target.
    pub slo_target: Duration,
    /// Window of `rtx_order_slo_compliance_ratio`.
    pub slo_window: Duration,
    /// Most accounts with their own series; the rest fold into `__other__`.
    pub account_cap: usize,
    /// Most distinct HTTP route templates.
    pub route_cap: usize,
    /// Most distinct values of other labels that come from outside (DB tables, checks, alerts).
    pub label_cap: usize,
    /// Identity for `rtx_build_info`.
    pub build: BuildInfo,
    /// Rejection reasons beyond [`RejectReason`]'s, as `reason` label values of
    /// `rtx_order_rejections_total` (counted through [`OrderMetrics::rejection`]).
    pub custom_reject_reasons: Vec<String>,
}

impl Default for CatalogueConfig {
    fn default() -> Self {
        Self {
            sections: Sections::ALL,
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
            lps: ["OANDA", "LMAX", "CURRENEX"]
                .iter()
                .map(|n| LpSpec {
                    name: (*n).to_owned(),
                    protocol: "FIX".to_owned(),
                })
                .collect(),
            slo_target: Duration::from_millis(100),
            slo_window: Duration::from_secs(300),
            account_cap: 1000,
            route_cap: 64,
            custom_reject_reasons: Vec::new(),
            label_cap: 64,
            build: BuildInfo::default(),
        }
    }
}

/// The 10 major FX pairs.
pub const DEFAULT_SYMBOLS: &[&str] = &[
    "EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY",
    "GBPJPY",
];

/// Every family of the catalogue, registered in one registry: a handle to its [`Catalogue`],
/// whose sections and methods it gives through `Deref` (`metrics.orders.record_execution(..)`).
///
/// Cloning it is one reference-count increment, so it can sit in per-request state (an axum
/// `State`, which axum clones for every request) and in every task. Why: the catalogue holds
/// some sixty handles and the configured symbol and LP sets; a clone of all of them took
/// 2.6–2.8 µs and about thirty heap blocks, and the engine, cloning it into each request's
/// state, spent a sixth of its CPU under load on those clones and their drops
/// (`BENCHMARKS.md`, The engine under load).
#[derive(Clone, Debug)]
pub struct TradingMetrics {
    catalogue: Arc<Catalogue>,
}

impl std::ops::Deref for TradingMetrics {
    type Target = Catalogue;

    fn deref(&self) -> &Catalogue {
        &self.catalogue
    }
}

/// The catalogue's sections and the configured label sets, reached through a
/// [`TradingMetrics`] handle.
#[derive(Debug)]
pub struct Catalogue {
    registry: Registry,
    symbols: ConfiguredValues,
    lps: ConfiguredValues,
    /// Orders, execution latency, volume, rejections, slippage and the latency SLO.
    pub orders: OrderMetrics,
    /// Liquidity-provider sessions.
    pub lp: LpMetrics,
    /// WebSocket quote streaming.
    pub websocket: WebSocketMetrics,
    /// Open positions and P&L per symbol.
    pub positions: PositionMetrics,
    /// The REST API.
    pub api: ApiMetrics,
    /// Database queries and pool.
    pub db: DbMetrics,
    /// Account balances and margin.
    pub accounts: AccountMetrics,
    /// Tokio runtime, build and uptime.
    pub runtime: RuntimeMetrics,
    /// The monitoring layer watching itself: alerts, logs, spans, health checks.
    pub monitoring: SelfMetrics,
}

impl TradingMetrics {
    /// Registers the whole catalogue and the process collector in `registry`. With a
    /// [`Registry::disabled`] registry every handle is a no-op.
    ///
    /// # Errors
    /// When a catalogue name is already registered in `registry`.
    pub fn new(registry: &Registry, config: &CatalogueConfig) -> Result<Self, RegistryError> {
        let symbols = ConfiguredValues::new(&config.symbols);
        let lps = ConfiguredValues::new(config.lps.iter().map(|l| &l.name));
        let started = Instant::now();
        // A section left out registers in a disabled registry: same handles, no series.
        let off = Registry::disabled();
        let sections = config.sections;
        let on = |wanted: bool| if wanted { registry } else { &off };
        let catalogue = Catalogue {
            orders: OrderMetrics::new(on(sections.orders), &symbols, config)?,
            lp: LpMetrics::new(on(sections.lps), &symbols, &config.lps)?,
            websocket: WebSocketMetrics::new(on(sections.websocket))?,
            positions: PositionMetrics::new(on(sections.positions), &symbols)?,
            api: ApiMetrics::new(on(sections.api), config)?,
            db: DbMetrics::new(on(sections.database), config)?,
            accounts: AccountMetrics::new(on(sections.accounts), config)?,
            runtime: RuntimeMetrics::new(on(sections.runtime), &config.build, started)?,
            monitoring: SelfMetrics::new(registry, config)?,
            registry: registry.clone(),
            symbols,
            lps,
        };
        if sections.runtime {
            register_process_collector(registry)?;
        }
        Ok(Self {
            catalogue: Arc::new(catalogue),
        })
    }
}

impl Catalogue {
    /// The registry the catalogue lives in (to encode it, or to add your own families).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Resolves a configured symbol.
    pub fn symbol(&self, name: &str) -> Option<SymbolId> {
        self.symbols.id(name).map(SymbolId)
    }

    /// Resolves a configured LP.
    pub fn lp(&self, name: &str) -> Option<LpId> {
        self.lps.id(name).map(LpId)
    }

    /// Every configured symbol id, in order.
    pub fn symbol_ids(&self) -> impl Iterator<Item = SymbolId> {
        (0..self.symbols.len())
            .filter_map(|i| u16::try_from(i).ok())
            .map(SymbolId)
    }

    /// Every configured LP id, in order.
    pub fn lp_ids(&self) -> impl Iterator<Item = LpId> {
        (0..self.lps.len())
            .filter_map(|i| u16::try_from(i).ok())
            .map(LpId)
    }

    /// The configured symbols in id order.
    pub fn symbols(&self) -> &ConfiguredValues {
        &self.symbols
    }

    /// The configured LPs in id order.
    pub fn lps(&self) -> &ConfiguredValues {
        &self.lps
    }
}

/// `docs/METRICS.md`: every registered family with its type, unit, labels and help, in
/// exposition order, from the registry itself.
pub fn render_markdown(registry: &Registry) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# Metric catalogue\n\nGenerated by `rtx-engine metrics-doc` from the registered families; a test keeps it\n\
         current. Every label is bounded: enums, configured symbols and LPs, or values from outside capped by\n\
         the cardinality guard (past the cap they fold into `__other__`, counted in\n\
         `rtx_metric_label_values_folded_total`). A histogram marked native is also recorded with\n\
         exponential buckets (schema 3, factor 1.09) and served as a native histogram to scrapers that\n\
         ask for protobuf, beside its classic buckets.\n\n| metric | type | unit | labels | meaning |\n|---|---|---|---|---|\n",
    );
    for spec in registry.specs() {
        let kind = match spec.kind() {
            crate::metrics::MetricKind::Counter => "counter",
            crate::metrics::MetricKind::Gauge => "gauge",
            crate::metrics::MetricKind::Histogram if spec.native().is_some() => {
                "histogram (classic + native)"
            }
            crate::metrics::MetricKind::Histogram => "histogram",
            crate::metrics::MetricKind::Info => "info",
        };
        let labels = spec
            .labels()
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| `{}` | {kind} | {} | {labels} | {} |",
            spec.name(),
            spec.unit().unwrap_or(""),
            spec.help().replace('|', "\\|")
        );
    }
    out
}

pub(crate) fn names_of<L: crate::metrics::LabelValue>() -> Vec<&'static str> {
    L::ALL.iter().map(|v| v.as_str()).collect()
}

pub(crate) fn spec_counter(name: &str, help: &str, labels: &[&'static str]) -> MetricSpec {
    MetricSpec::counter(name, help).with_labels(labels)
}

pub(crate) fn spec_gauge(name: &str, help: &str, labels: &[&'static str]) -> MetricSpec {
    MetricSpec::gauge(name, help).with_labels(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    #[test]
    fn a_configured_rejection_reason_is_counted_beside_the_enums_and_an_unknown_one_is_not() {
        let registry = Registry::new();
        let config = CatalogueConfig {
            custom_reject_reasons: vec!["venue_halted".to_owned(), "max_volume".to_owned()],
            ..CatalogueConfig::default()
        };
        let metrics = TradingMetrics::new(&registry, &config).unwrap();
        let halted = metrics.orders.rejection("venue_halted").unwrap();
        halted.inc();
        metrics.orders.record_rejection(RejectReason::MaxVolume);
        assert!(metrics.orders.rejection("made_up").is_none());
        let text = registry.encode_to_string(Format::PrometheusText);
        assert!(text.contains("rtx_order_rejections_total{reason=\"venue_halted\"} 1\n"));
        assert!(
            text.contains("rtx_order_rejections_total{reason=\"max_volume\"} 1\n"),
            "a configured name the enum has is the enum's series, not a second one"
        );
        assert_eq!(text.matches("reason=\"max_volume\"").count(), 1);
    }

    #[test]
    fn a_service_exports_only_the_sections_it_chose_and_may_still_call_the_others() {
        let registry = Registry::new();
        let config = CatalogueConfig {
            sections: Sections {
                orders: true,
                api: true,
                ..Sections::NONE
            },
            ..CatalogueConfig::default()
        };
        let metrics = TradingMetrics::new(&registry, &config).unwrap();
        let lp = metrics.lp("LMAX").unwrap();
        // Calls into sections left out record nothing and fail nothing.
        metrics.lp.set_connected(lp, true);
        metrics.websocket.record_sent(WsChannel::Quotes);
        metrics
            .db
            .query("select", "orders")
            .record(Duration::from_millis(1), DbOutcome::Success);
        let text = registry.encode_to_string(Format::PrometheusText);
        for kept in [
            "rtx_orders_total",
            "rtx_http_requests_total",
            "rtx_log_events_total",
        ] {
            assert!(text.contains(&format!("# TYPE {kept} ")), "{kept} missing");
        }
        for left_out in [
            "rtx_lp_connected",
            "rtx_websocket_messages_sent_total",
            "rtx_db_queries_total",
            "rtx_account_balance",
            "rtx_positions_open",
            "rtx_runtime_workers",
            "process_resident_memory_bytes",
        ] {
            assert!(!text.contains(left_out), "{left_out} is exported");
        }
    }
}
