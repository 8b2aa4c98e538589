//! Production observability for trading backends.
//!
//! `rtx-monitoring` gives a trading engine Prometheus metrics for its whole domain (orders,
//! liquidity providers, positions, accounts, the API, the database, the runtime), exposed in the
//! Prometheus text format or OpenMetrics with exemplars, and is built so that recording never
//! slows the order path: a resolved handle records with no lock, no allocation and no hashing,
//! and each thread writes its own copy of every cell.
//!
//! ```
//! use std::time::Duration;
//! use rtx_monitoring::{CatalogueConfig, Format, OrderOutcome, OrderType, Registry, Route, TradingMetrics};
//!
//! let registry = Registry::new();
//! let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default()).unwrap();
//! let eurusd = metrics.symbol("EURUSD").unwrap();
//! metrics.orders.record_execution(OrderType::Market, eurusd, Route::BBook, OrderOutcome::Filled, Duration::from_millis(3));
//!
//! let text = registry.encode_to_string(Format::PrometheusText);
//! assert!(text.contains(
//!     r#"rtx_orders_total{order_type="market",symbol="EURUSD",route="BBOOK",outcome="filled"} 1"#
//! ));
//! assert!(text.contains(r#"rtx_order_execution_latency_seconds_bucket{order_type="market",route="BBOOK",le="0.005"} 1"#));
//! ```
//!
//! The types below are re-exported at the crate root; each module holds the rest of its
//! concern (free functions such as [`logging::try_init`], [`alerts::default_rules`] or
//! [`http::track_requests`], and the lesser types), and its paths stay valid.
//!
//! - [`metrics`]: the registry, metric handles, label sets and the exposition formats.
//! - [`catalogue`]: every trading and platform metric family, behind domain methods.
//! - [`logging`]: the JSON log layer, redaction and the non-blocking writer.
//! - [`trace`]: W3C Trace Context, the span layer and OTLP export.
//! - [`health`]: background health checks and the liveness and readiness verdicts.
//! - [`alerts`]: alert rules, in-process evaluation, Alertmanager and Prometheus rule files.
//! - [`http`]: the axum endpoints (`/metrics`, `/health`, `/ready`, `/alerts`) and request
//!   metrics.
//! - [`dashboard`]: the Grafana dashboard built from the catalogue.
//! - [`setup`]: [`Monitoring::builder`], the whole stack in one call, with one shutdown.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alerts;
pub mod catalogue;
pub mod dashboard;
#[cfg(feature = "tokio-runtime")]
pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod logging;
pub mod metrics;
#[cfg(feature = "http")]
pub mod setup;
pub mod subscriber;
mod time;
pub mod trace;

// The whole stack in one builder.
#[cfg(feature = "http")]
pub use setup::{Monitoring, MonitoringBuilder, SetupError};

/// `docs/EXTENDING.md`, compiled: its snippets are doctests, so the guide cannot drift from the
/// API it describes.
#[cfg(all(doctest, feature = "http", feature = "otlp"))]
#[doc = include_str!("../../../docs/EXTENDING.md")]
pub struct ExtendingGuide;

// Metrics: the registry, handles and formats.
pub use metrics::{
    ConfiguredValues, Counter, Dense, Dynamic, FloatCounter, Format, Gauge, Histogram, InFlight,
    LabelValue, Metric, MetricKind, MetricSpec, Registry, RegistryError, TraceIds,
};

// The catalogue: metric groups, their configuration and the typed label values.
#[cfg(feature = "tokio-runtime")]
pub use catalogue::RuntimeSampler;
pub use catalogue::{
    AccountGauges, AccountMetrics, ApiMetrics, BuildInfo, CatalogueConfig, DbMetrics,
    DbQueryMetrics, LpMetrics, LpSpec, OrderMetrics, PositionMetrics, RuntimeMetrics, Sections,
    SelfMetrics, SymbolPositions, TradingMetrics, WebSocketMetrics,
};
pub use catalogue::{
    ConnectionCloseReason, DbOutcome, HttpMethod, LogLevel, LpErrorKind, LpId, LpOperation,
    NotificationOutcome, OrderType, Outcome as OrderOutcome, PoolState, RejectReason, Route, Side,
    SymbolId, WsChannel, WsDropReason,
};

// Logging: configuration, the layer and its guard.
pub use logging::{JsonLayer, LineWriter, LogConfig, LogError, LogGuard, Redactor, Sink};

// Spans and logs through one purpose-built subscriber.
pub use subscriber::SpanLogSubscriber;

// Tracing: propagation, the span layer and export.
pub use trace::{
    AttributeValue, FinishedSpan, SpanKind, SpanLayer, SpanSink, TraceParent, TraceState,
    TraceStateError,
};
// Trace context across services: read from incoming headers, written on outgoing calls.
pub use trace::{extract, inject, with_remote_parent, TraceContext};
#[cfg(feature = "otlp")]
pub use trace::{OtlpConfig, OtlpExporter};

// Health checks and their verdicts.
#[cfg(feature = "tokio-runtime")]
pub use health::{
    Check, CheckReport, CheckResult, CheckSpec, Health, HealthReport, MemoryCheck, Probe,
    Status as HealthStatus, TaskCheck, UptimeCheck,
};

// Alerts: rules, evaluation and notification.
#[cfg(feature = "tokio-runtime")]
pub use alerts::{Alert, AlertState, Evaluator};
pub use alerts::{AlertRule, Comparison, LabelMatch, Severity, Signal};
#[cfg(feature = "alertmanager")]
pub use alerts::{AlertmanagerAuth, AlertmanagerConfig};

// HTTP endpoints.
#[cfg(feature = "http")]
pub use http::{HealthEndpoint, MetricsEndpoint};

// The Grafana dashboard.
pub use dashboard::{Panel, PanelKind, Row};

#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
