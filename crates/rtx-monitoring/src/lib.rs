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
//! use rtx_monitoring::catalogue::{CatalogueConfig, OrderType, Outcome, Route, TradingMetrics};
//! use rtx_monitoring::metrics::{Format, Registry};
//!
//! let registry = Registry::new();
//! let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default()).unwrap();
//! let eurusd = metrics.symbol("EURUSD").unwrap();
//! metrics.orders.record_execution(OrderType::Market, eurusd, Route::BBook, Outcome::Filled, Duration::from_millis(3));
//!
//! let text = registry.encode_to_string(Format::PrometheusText);
//! assert!(text.contains(
//!     r#"rtx_orders_total{order_type="market",symbol="EURUSD",route="BBOOK",outcome="filled"} 1"#
//! ));
//! assert!(text.contains(r#"rtx_order_execution_latency_seconds_bucket{order_type="market",route="BBOOK",le="0.005"} 1"#));
//! ```
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
pub mod time;
pub mod trace;

#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
