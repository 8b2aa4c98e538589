//! Test support shared by the integration tests: start the engine and the real servers it talks
//! to (PostgreSQL, Alertmanager, Prometheus, an OpenTelemetry collector) on free loopback
//! ports, find the external tools the test command installs, read expositions back, talk to
//! the engine's API, and wait for conditions instead of sleeping. A missing tool fails loudly:
//! a test that skips for want of one hides a defect.
//!
//! ```no_run
//! use std::time::Duration;
//! use rtx_testkit::{blocking_client, metric_sum, post_order, market_order, wait_until, Engine};
//!
//! let engine = Engine::start("target/debug/rtx-engine", &[("RTX_SIM_ORDER_RATE", "0")]);
//! let http = blocking_client();
//! let (status, order) = post_order(&http, &engine, &market_order("demo-4", "EURUSD", "buy", 0.01));
//! assert_eq!(status, 201, "{order}");
//! wait_until(Duration::from_secs(10), "the order to be counted", || {
//!     metric_sum(&engine.scrape(), "rtx_orders_total", &[]) >= 1.0
//! });
//! ```

mod alertmanager;
mod captured;
mod client;
mod engine;
mod exposition;
mod http;
mod orders;
mod otlp;
mod ports;
mod postgres;
mod probes;
mod prometheus;
mod rotel;
mod schemathesis;
mod sockets;
mod tools;
mod wait;

pub use alertmanager::Alertmanager;
pub use captured::CapturedLines;
pub use client::{
    async_client, blocking_client, get_json, get_json_async, inject_sequence_gap_async, lp_admin,
    lp_admin_async, move_price, REQUEST_TIMEOUT,
};
pub use engine::{config_file, engine_output, scratch_dir, Engine, ScratchDir};
pub use exposition::{metric_sum, parse_samples, Sample};
pub use http::{http_get, http_get_ok};
pub use orders::{market_order, post_order, post_order_async, wait_for_fill, wait_for_fill_async};
pub use otlp::{hex_id, otlp_receiver};
pub use ports::{free_port, loopback_listener};
pub use postgres::PgCluster;
pub use probes::{
    wait_for_ready_status, wait_for_ready_status_async, wait_for_ready_verdict_async,
};
pub use prometheus::{Prometheus, ScrapeMode};
pub use rotel::Rotel;
pub use schemathesis::{run_schemathesis, schemathesis, FuzzReport};
pub use sockets::{half_open, peer_state, raise_open_file_limit, timed_get, PeerState};
pub use tools::{promtool_check_metrics, python_parse, run_with_input, tool};
pub use wait::{wait_for, wait_for_async, wait_until, wait_until_async, Poll, DEFAULT_INTERVAL};
