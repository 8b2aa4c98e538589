//! The configuration's schema: what can be said and where. The command line and its `RTX_*`
//! variables ([`Settings`]), and the TOML file's shape with each table's defaults. It declares
//! shapes and defaults, nothing more: precedence, ranges and consistency belong to `resolve`, and
//! every credential field is a type from `secret`, so no `Debug` here can print one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use super::secret::{Secret, SecretUrl};
use crate::market::lp::LpBehaviour;
use crate::trading::RouterConfig;

/// The engine's command line.
#[derive(Debug, Parser)]
#[command(
    name = "rtx-engine",
    version,
    about = "Reference trading backend instrumented with rtx-monitoring"
)]
pub struct Cli {
    /// What to do; with none, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings.
    #[command(flatten)]
    pub settings: Settings,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and check the configuration, print it, and exit (non-zero when it is invalid).
    CheckConfig,
    /// Print the Prometheus rule file generated from the alert definitions (with this
    /// configuration's thresholds).
    Rules,
    /// Print the `promtool test rules` file that exercises every generated alert.
    RuleTests,
    /// Print the alert runbooks (`docs/RUNBOOKS.md`).
    Runbooks,
    /// Print the Grafana dashboard JSON.
    Dashboard,
    /// Print the metric catalogue (`docs/METRICS.md`).
    MetricsDoc,
    /// Print the Kubernetes PrometheusRule (the rule file for Prometheus Operator).
    PrometheusRule,
}

/// Settings given as flags or `RTX_*` variables (each overrides the file).
#[derive(Debug, Default, Args)]
pub struct Settings {
    /// Path of the TOML configuration file.
    #[arg(long, env = "RTX_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 0.0.0.0:7999].
    #[arg(long, env = "RTX_LISTEN_ADDR", global = true)]
    pub listen_addr: Option<String>,
    /// A second listener serving only /metrics, /health, /ready and /alerts, with its own
    /// connection budget, so that probes never queue behind API clients, e.g. `0.0.0.0:7998`
    /// [default: unset, one listener].
    #[arg(long, env = "RTX_MANAGEMENT_ADDR", global = true)]
    pub management_addr: Option<String>,
    /// Close a connection whose request headers are not complete within this, e.g. `5s`
    /// [default: 5s].
    #[arg(long, env = "RTX_HTTP_HEADER_READ_TIMEOUT", global = true)]
    pub http_header_read_timeout: Option<String>,
    /// Close a keep-alive connection idle between requests this long [default: 60s].
    #[arg(long, env = "RTX_HTTP_IDLE_TIMEOUT", global = true)]
    pub http_idle_timeout: Option<String>,
    /// Answer 408 and close when an API request, body included, takes longer [default: 10s].
    #[arg(long, env = "RTX_HTTP_REQUEST_TIMEOUT", global = true)]
    pub http_request_timeout: Option<String>,
    /// Most open connections on the main listener, WebSocket clients included [default: 8192].
    #[arg(long, env = "RTX_HTTP_MAX_CONNECTIONS", global = true)]
    pub http_max_connections: Option<usize>,
    /// Most WebSocket clients at once [default: 1024].
    #[arg(long, env = "RTX_HTTP_MAX_WEBSOCKET_CLIENTS", global = true)]
    pub http_max_websocket_clients: Option<usize>,
    /// Most open connections on the management listener [default: 64].
    #[arg(long, env = "RTX_HTTP_MANAGEMENT_MAX_CONNECTIONS", global = true)]
    pub http_management_max_connections: Option<usize>,
    /// Service name in metrics, logs and spans [default: rtx-engine].
    #[arg(long, env = "RTX_SERVICE_NAME", global = true)]
    pub service_name: Option<String>,
    /// Service version [default: the crate version].
    #[arg(long, env = "RTX_SERVICE_VERSION", global = true)]
    pub service_version: Option<String>,
    /// Bearer token required on /metrics [default: unset, open].
    #[arg(long, env = "RTX_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Comma-separated simulated LP names [default: OANDA,LMAX,CURRENEX].
    #[arg(long, env = "RTX_LPS", global = true)]
    pub lps: Option<String>,
    /// Comma-separated symbols [default: the 10 major FX pairs].
    #[arg(long, env = "RTX_SYMBOLS", global = true)]
    pub symbols: Option<String>,
    /// `on`, or `off` to make every instrument a no-op (overhead measurement) [default: on].
    #[arg(long, env = "RTX_MONITORING", global = true)]
    pub monitoring: Option<String>,
    /// `sqlite://…` or `postgres://…` [default: an SQLite file in ./data/].
    #[arg(long, env = "RTX_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<SecretUrl>,
    /// Simulated orders per second, 0 = off [default: 2].
    #[arg(long, env = "RTX_SIM_ORDER_RATE", global = true)]
    pub sim_order_rate: Option<f64>,
    /// Comma-separated Alertmanager base URLs; `http://user:password@host:9093` for basic auth
    /// [default: unset, no notifications].
    #[arg(
        long,
        env = "RTX_ALERTMANAGER_URL",
        global = true,
        hide_env_values = true
    )]
    pub alertmanager_url: Option<Secret>,
    /// Alert evaluation interval, e.g. `15s` [default: 15s].
    #[arg(long, env = "RTX_ALERT_EVAL_INTERVAL", global = true)]
    pub alert_eval_interval: Option<String>,
    /// Runtime collector interval, e.g. `30s` [default: 30s].
    #[arg(long, env = "RTX_RUNTIME_INTERVAL", global = true)]
    pub runtime_interval: Option<String>,
    /// OTLP/HTTP base URL for spans, e.g. `http://127.0.0.1:4318` [default: unset, no export].
    #[arg(long, env = "RTX_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// Root sampling ratio, 0.0–1.0 [default: 1.0].
    #[arg(long, env = "RTX_TRACE_SAMPLE_RATIO", global = true)]
    pub trace_sample_ratio: Option<f64>,
    /// Log filter, `info` or `info,rtx_engine=debug` [default: info].
    #[arg(long, env = "RTX_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Enables /admin/* and is the bearer token required there [default: unset, admin off].
    #[arg(long, env = "RTX_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<Secret>,
}

/// The `[metrics]` table of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetricsFile {
    pub(super) slo_target_ms: Option<u64>,
    pub(super) slo_window_secs: Option<u64>,
    pub(super) account_cap: Option<usize>,
    pub(super) route_cap: Option<usize>,
    pub(super) label_cap: Option<usize>,
    pub(super) openmetrics_created: Option<bool>,
}

/// Health-check thresholds and intervals (the `[health]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Resident memory above which `memory` is degraded.
    pub memory_warn_bytes: f64,
    /// Resident memory above which `memory` is unhealthy.
    pub memory_critical_bytes: f64,
    /// Live tasks above which `tasks` is degraded.
    pub tasks_warn: f64,
    /// Live tasks above which `tasks` is unhealthy.
    pub tasks_critical: f64,
    /// A database ping slower than this is degraded, in milliseconds.
    pub database_slow_ms: u64,
    /// Interval of the in-process and database checks, in milliseconds.
    pub interval_ms: u64,
    /// Interval of the LP check, in milliseconds.
    pub lp_interval_ms: u64,
    /// Timeout of every check, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            memory_warn_bytes: 1024.0 * 1024.0 * 1024.0,
            memory_critical_bytes: 2.0 * 1024.0 * 1024.0 * 1024.0,
            tasks_warn: 10_000.0,
            tasks_critical: 50_000.0,
            database_slow_ms: 100,
            interval_ms: 5_000,
            lp_interval_ms: 1_000,
            timeout_ms: 2_000,
        }
    }
}

/// Alerting (the `[alerts]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Window of the in-process rates and quantiles, in seconds (the PromQL twins use 5m).
    pub window_secs: u64,
    /// Alerts kept in `GET /alerts` history.
    pub history_cap: usize,
    /// How often firing alerts are re-sent to Alertmanager, in seconds.
    pub resend_interval_secs: u64,
    /// Bearer token for Alertmanager (instead of basic auth in the URL).
    pub alertmanager_bearer_token: Option<Secret>,
    /// Threshold overrides by alert name.
    pub thresholds: std::collections::BTreeMap<String, f64>,
    /// `for` overrides by alert name, in seconds.
    pub for_secs: std::collections::BTreeMap<String, u64>,
    /// PEM file of a private CA to trust for `https` Alertmanager URLs.
    pub alertmanager_ca_file: Option<PathBuf>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            window_secs: 300,
            history_cap: 1000,
            resend_interval_secs: 60,
            alertmanager_bearer_token: None,
            thresholds: Default::default(),
            for_secs: Default::default(),
            alertmanager_ca_file: None,
        }
    }
}

/// Logging (the `[logging]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Field-name fragments to redact beyond the built-in ones (password, secret, token, …).
    pub redact_keys: Vec<String>,
    /// Bound of the log buffer in bytes; past it DEBUG and INFO lines are dropped and counted.
    pub buffer_bytes: usize,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            redact_keys: Vec::new(),
            buffer_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The `[http]` table of the file: listener timeouts and limits (durations as `5s`, `500ms`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    pub(super) header_read_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) request_timeout: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_websocket_clients: Option<usize>,
    pub(super) management_max_connections: Option<usize>,
}

/// Shutdown timing (the `[shutdown]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// After SIGTERM, keep serving with `/ready` at 503 this long, so load balancers notice.
    pub drain_delay_ms: u64,
    /// Exit (non-zero) if shutdown takes longer than this, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_delay_ms: 2_000,
            timeout_ms: 10_000,
        }
    }
}

/// The file's shape: the same names as the variables, lower-case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen_addr: Option<String>,
    pub(super) management_addr: Option<String>,
    #[serde(default)]
    pub(super) http: HttpFile,
    pub(super) service_name: Option<String>,
    pub(super) service_version: Option<String>,
    pub(super) metrics_token: Option<Secret>,
    pub(super) lps: Option<Vec<String>>,
    pub(super) symbols: Option<Vec<String>>,
    pub(super) monitoring: Option<String>,
    pub(super) database_url: Option<SecretUrl>,
    pub(super) sim_order_rate: Option<f64>,
    pub(super) admin_token: Option<Secret>,
    #[serde(default)]
    pub(super) metrics: MetricsFile,
    #[serde(default)]
    pub(super) trading: RouterConfig,
    #[serde(default)]
    pub(super) lp: LpBehaviour,
    #[serde(default)]
    pub(super) lp_overrides: std::collections::BTreeMap<String, LpBehaviour>,
    #[serde(default)]
    pub(super) health: HealthConfig,
    #[serde(default)]
    pub(super) shutdown: ShutdownConfig,
    pub(super) log_level: Option<String>,
    #[serde(default)]
    pub(super) logging: LoggingConfig,
    pub(super) alertmanager_url: Option<Secret>,
    pub(super) otlp_endpoint: Option<String>,
    pub(super) trace_sample_ratio: Option<f64>,
    pub(super) alert_eval_interval: Option<String>,
    pub(super) runtime_interval: Option<String>,
    #[serde(default)]
    pub(super) alerts: AlertsConfig,
}
