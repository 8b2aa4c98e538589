//! Resolution and validation: reads the file, lays the variables and flags over it and the
//! defaults under it, checks every value (the `check_*` functions) and builds the one [`Config`]
//! the engine runs with, or a [`ConfigError`] naming the key at fault. Which keys exist is the
//! schema's business; an error here names a key and never quotes a credential.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::schema::{
    AlertsConfig, FileConfig, HealthConfig, HttpFile, LoggingConfig, Settings, ShutdownConfig,
};
use super::secret::{Secret, SecretUrl};
use crate::market::lp::LpBehaviour;
use crate::trading::RouterConfig;

/// Why the configuration cannot be used; each names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `RTX_CONFIG` cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// The key (TOML key; the `RTX_*` variable has the same name upper-cased).
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// The HTTP listeners' timeouts and limits, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// A connection whose request headers are not complete this long after it opened is closed
    /// (`header_timeout`).
    pub header_read_timeout: Duration,
    /// A keep-alive connection idle this long after its last answer is closed (`idle_timeout`).
    pub idle_timeout: Duration,
    /// An API request not answered within this gets 408 and its connection is closed
    /// (`request_timeout`); a WebSocket stream is not a request and has no such limit.
    pub request_timeout: Duration,
    /// Most open connections on the main listener, WebSocket connections included.
    pub max_connections: usize,
    /// Most WebSocket clients at once.
    pub max_websocket_clients: usize,
    /// Most open connections on the management listener.
    pub management_max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_connections: 8192,
            max_websocket_clients: 1024,
            management_max_connections: 64,
        }
    }
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen_addr: SocketAddr,
    /// Where the management listener (probes and metrics only) listens, if anywhere.
    pub management_addr: Option<SocketAddr>,
    /// Listener timeouts and limits.
    pub http: HttpConfig,
    /// Service name.
    pub service_name: String,
    /// Service version.
    pub service_version: String,
    /// `/metrics` bearer token.
    pub metrics_token: Option<Secret>,
    /// LP names.
    pub lps: Vec<String>,
    /// Symbols.
    pub symbols: Vec<String>,
    /// Whether instruments record.
    pub monitoring: bool,
    /// Order latency SLO target.
    pub slo_target: Duration,
    /// SLO compliance window.
    pub slo_window: Duration,
    /// Account label cap.
    pub account_cap: usize,
    /// Route label cap.
    pub route_cap: usize,
    /// Cap for other labels from outside.
    pub label_cap: usize,
    /// Whether OpenMetrics scrapes get `_created` samples.
    pub openmetrics_created: bool,
    /// Database URL.
    pub database_url: SecretUrl,
    /// Simulated orders per second.
    pub sim_order_rate: f64,
    /// Admin bearer token; `None` disables `/admin`.
    pub admin_token: Option<Secret>,
    /// Risk and routing.
    pub trading: RouterConfig,
    /// Behaviour of each LP, by name.
    pub lp_behaviour: Vec<LpBehaviour>,
    /// Health checks.
    pub health: HealthConfig,
    /// Shutdown timing.
    pub shutdown: ShutdownConfig,
    /// Log filter.
    pub log_level: String,
    /// Logging.
    pub logging: LoggingConfig,
    /// Alertmanager base URLs (may carry basic-auth credentials).
    pub alertmanager_urls: Vec<SecretUrl>,
    /// Alert evaluation interval.
    pub alert_eval_interval: Duration,
    /// Runtime collector interval.
    pub runtime_interval: Duration,
    /// Alerting.
    pub alerts: AlertsConfig,
    /// OTLP/HTTP base URL; `None`: spans get ids (for logs, exemplars) but are not exported.
    pub otlp_endpoint: Option<String>,
    /// Root sampling ratio.
    pub trace_sample_ratio: f64,
}

/// The default database: an SQLite file under `./data/`, created at start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/rtx-engine.db?mode=rwc";

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: parse_message(&text, &e),
    })
}

/// The parser's message with the line and column it points at, but not the line itself: that
/// line may hold a credential (a misspelled `admin_tokn = "…"`, an unquoted token).
fn parse_message(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

impl Config {
    /// Resolves flags and variables over the file over the defaults, and checks the result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key at fault.
    pub fn load(settings: &Settings) -> Result<Self, ConfigError> {
        let file = match &settings.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = settings
            .listen_addr
            .clone()
            .or(file.listen_addr)
            .unwrap_or_else(|| "0.0.0.0:7999".to_owned());
        let listen_addr = parse_addr("listen_addr", &listen)?;
        let management_addr = settings
            .management_addr
            .clone()
            .or(file.management_addr.clone())
            .filter(|a| !a.is_empty())
            .map(|a| parse_addr("management_addr", &a))
            .transpose()?;
        if management_addr.is_some_and(|m| m.port() != 0 && m == listen_addr) {
            return Err(ConfigError::Invalid {
                key: "management_addr",
                reason: "must differ from listen_addr".to_owned(),
            });
        }
        let http = resolve_http(settings, &file.http)?;
        let lps = settings
            .lps
            .as_deref()
            .map(split_list)
            .or(file.lps)
            .unwrap_or_else(|| {
                rtx_monitoring::catalogue::CatalogueConfig::default()
                    .lps
                    .into_iter()
                    .map(|l| l.name)
                    .collect()
            });
        let symbols = settings
            .symbols
            .as_deref()
            .map(split_list)
            .or(file.symbols)
            .unwrap_or_else(|| {
                rtx_monitoring::catalogue::DEFAULT_SYMBOLS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            });
        check_names("lps", &lps)?;
        check_names("symbols", &symbols)?;
        let monitoring = match settings
            .monitoring
            .clone()
            .or(file.monitoring)
            .as_deref()
            .unwrap_or("on")
        {
            "on" => true,
            "off" => false,
            other => {
                return Err(ConfigError::Invalid {
                    key: "monitoring",
                    reason: format!("`{other}` is neither `on` nor `off`"),
                })
            }
        };
        let m = file.metrics;
        let positive = |key: &'static str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(ConfigError::Invalid {
                key,
                reason: "must be greater than 0".to_owned(),
            }),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let cap = |key: &'static str, v: Option<usize>, default: usize| {
            positive(key, v.map(|v| v as u64), default as u64).map(|v| v as usize)
        };
        let database_url = settings
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_DATABASE_URL));
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.expose().starts_with(scheme))
        {
            return Err(ConfigError::Invalid {
                key: "database_url",
                reason: "must start with sqlite: or postgres://".to_owned(),
            });
        }
        let sim_order_rate = settings
            .sim_order_rate
            .or(file.sim_order_rate)
            .unwrap_or(2.0);
        if !(0.0..=10_000.0).contains(&sim_order_rate) {
            return Err(ConfigError::Invalid {
                key: "sim_order_rate",
                reason: format!("{sim_order_rate} is not between 0 and 10000 orders per second"),
            });
        }
        check_trading(&file.trading)?;
        let otlp_endpoint = settings
            .otlp_endpoint
            .clone()
            .or(file.otlp_endpoint.clone())
            .filter(|e| !e.is_empty());
        if let Some(bad) = otlp_endpoint
            .as_ref()
            .filter(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(ConfigError::Invalid {
                key: "otlp_endpoint",
                reason: format!("`{bad}` must start with http:// or https://"),
            });
        }
        let trace_sample_ratio = settings
            .trace_sample_ratio
            .or(file.trace_sample_ratio)
            .unwrap_or(1.0);
        if !(0.0..=1.0).contains(&trace_sample_ratio) {
            return Err(ConfigError::Invalid {
                key: "trace_sample_ratio",
                reason: format!("{trace_sample_ratio} is not between 0.0 and 1.0"),
            });
        }
        let alertmanager_urls: Vec<SecretUrl> = settings
            .alertmanager_url
            .clone()
            .or(file.alertmanager_url.clone())
            .map(|list| {
                split_list(list.expose())
                    .into_iter()
                    .map(SecretUrl::from)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = alertmanager_urls
            .iter()
            .find(|u| !(u.expose().starts_with("http://") || u.expose().starts_with("https://")))
        {
            return Err(ConfigError::Invalid {
                key: "alertmanager_url",
                reason: format!("{} must start with http:// or https://", bad.redacted()),
            });
        }
        let duration = |key: &'static str, value: Option<String>, default: u64| match value {
            None => Ok(Duration::from_secs(default)),
            Some(text) => parse_duration(&text).ok_or_else(|| ConfigError::Invalid {
                key,
                reason: format!("`{text}` is not a duration like 15s, 2m or 500ms"),
            }),
        };
        let alert_eval_interval = duration(
            "alert_eval_interval",
            settings
                .alert_eval_interval
                .clone()
                .or(file.alert_eval_interval.clone()),
            15,
        )?;
        let runtime_interval = duration(
            "runtime_interval",
            settings
                .runtime_interval
                .clone()
                .or(file.runtime_interval.clone()),
            30,
        )?;
        if let Some(ca) = &file.alerts.alertmanager_ca_file {
            if let Err(e) = std::fs::metadata(ca) {
                return Err(ConfigError::Invalid {
                    key: "alerts.alertmanager_ca_file",
                    reason: format!("{}: {e}", ca.display()),
                });
            }
        }
        let known: Vec<&str> = rtx_monitoring::alerts::default_rules()
            .iter()
            .map(|r| r.name)
            .collect();
        if let Some(unknown) = file
            .alerts
            .thresholds
            .keys()
            .chain(file.alerts.for_secs.keys())
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(ConfigError::Invalid {
                key: "alerts.thresholds",
                reason: format!("`{unknown}` is not an alert; known: {}", known.join(", ")),
            });
        }
        if file.alerts.window_secs == 0
            || file.alerts.resend_interval_secs == 0
            || file.alerts.history_cap == 0
        {
            return Err(ConfigError::Invalid {
                key: "alerts",
                reason: "window_secs, resend_interval_secs and history_cap must be at least 1"
                    .to_owned(),
            });
        }
        let log_level = settings
            .log_level
            .clone()
            .or(file.log_level.clone())
            .unwrap_or_else(|| "info".to_owned());
        if let Err(e) = rtx_monitoring::logging::parse_filter(&log_level) {
            return Err(ConfigError::Invalid {
                key: "log_level",
                reason: e.to_string(),
            });
        }
        if file.logging.buffer_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid {
                key: "logging.buffer_bytes",
                reason: "must be at least 65536".to_owned(),
            });
        }
        let h = &file.health;
        if h.interval_ms == 0 || h.lp_interval_ms == 0 || h.timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "health",
                reason: "intervals and timeouts must be at least 1 ms".to_owned(),
            });
        }
        if !(h.memory_warn_bytes < h.memory_critical_bytes && h.tasks_warn < h.tasks_critical) {
            return Err(ConfigError::Invalid {
                key: "health",
                reason: "each warn threshold must be below its critical one".to_owned(),
            });
        }
        if file.shutdown.drain_delay_ms >= file.shutdown.timeout_ms {
            return Err(ConfigError::Invalid {
                key: "shutdown.drain_delay_ms",
                reason: "must be shorter than shutdown.timeout_ms".to_owned(),
            });
        }
        for (name, behaviour) in std::iter::once(("lp", &file.lp))
            .chain(file.lp_overrides.iter().map(|(n, b)| (n.as_str(), b)))
        {
            check_behaviour(name, behaviour)?;
        }
        if let Some(unknown) = file.lp_overrides.keys().find(|name| !lps.contains(name)) {
            return Err(ConfigError::Invalid {
                key: "lp_overrides",
                reason: format!("`{unknown}` is not one of the configured LPs {lps:?}"),
            });
        }
        let lp_behaviour = lps
            .iter()
            .map(|name| {
                file.lp_overrides
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| file.lp.clone())
            })
            .collect();
        Ok(Self {
            management_addr,
            http,
            database_url,
            sim_order_rate,
            admin_token: settings
                .admin_token
                .clone()
                .or(file.admin_token)
                .filter(|t| !t.expose().is_empty()),
            trading: file.trading,
            lp_behaviour,
            health: file.health,
            shutdown: file.shutdown,
            log_level,
            logging: file.logging,
            alertmanager_urls,
            alert_eval_interval,
            runtime_interval,
            alerts: file.alerts,
            otlp_endpoint,
            trace_sample_ratio,
            listen_addr,
            service_name: settings
                .service_name
                .clone()
                .or(file.service_name)
                .unwrap_or_else(|| "rtx-engine".to_owned()),
            service_version: settings
                .service_version
                .clone()
                .or(file.service_version)
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            metrics_token: settings
                .metrics_token
                .clone()
                .or(file.metrics_token)
                .filter(|t| !t.expose().is_empty()),
            lps,
            symbols,
            monitoring,
            slo_target: Duration::from_millis(positive(
                "metrics.slo_target_ms",
                m.slo_target_ms,
                100,
            )?),
            slo_window: Duration::from_secs(positive(
                "metrics.slo_window_secs",
                m.slo_window_secs,
                300,
            )?),
            account_cap: cap("metrics.account_cap", m.account_cap, 1000)?,
            route_cap: cap("metrics.route_cap", m.route_cap, 64)?,
            label_cap: cap("metrics.label_cap", m.label_cap, 64)?,
            openmetrics_created: m.openmetrics_created.unwrap_or(true),
        })
    }
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("`{text}` is not an address like 0.0.0.0:7999 ({e})"),
    })
}

/// The `[http]` table under its flags and variables, checked: every timeout above zero, every
/// cap at least 1, and no more WebSocket clients than connections.
fn resolve_http(settings: &Settings, file: &HttpFile) -> Result<HttpConfig, ConfigError> {
    let defaults = HttpConfig::default();
    let timeout =
        |key: &'static str, flag: &Option<String>, file: &Option<String>, default| match flag
            .as_ref()
            .or(file.as_ref())
        {
            None => Ok(default),
            Some(text) => match parse_duration(text) {
                Some(d) if !d.is_zero() => Ok(d),
                _ => Err(ConfigError::Invalid {
                    key,
                    reason: format!("`{text}` is not a duration above zero like 5s or 500ms"),
                }),
            },
        };
    let cap = |key: &'static str, flag: Option<usize>, file: Option<usize>, default| match flag
        .or(file)
    {
        Some(0) => Err(ConfigError::Invalid {
            key,
            reason: "must be at least 1".to_owned(),
        }),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let max_connections = cap(
        "http.max_connections",
        settings.http_max_connections,
        file.max_connections,
        defaults.max_connections,
    )?;
    let http = HttpConfig {
        header_read_timeout: timeout(
            "http.header_read_timeout",
            &settings.http_header_read_timeout,
            &file.header_read_timeout,
            defaults.header_read_timeout,
        )?,
        idle_timeout: timeout(
            "http.idle_timeout",
            &settings.http_idle_timeout,
            &file.idle_timeout,
            defaults.idle_timeout,
        )?,
        request_timeout: timeout(
            "http.request_timeout",
            &settings.http_request_timeout,
            &file.request_timeout,
            defaults.request_timeout,
        )?,
        max_connections,
        // Unset, it follows a lowered connection cap down.
        max_websocket_clients: cap(
            "http.max_websocket_clients",
            settings.http_max_websocket_clients,
            file.max_websocket_clients,
            defaults.max_websocket_clients.min(max_connections),
        )?,
        management_max_connections: cap(
            "http.management_max_connections",
            settings.http_management_max_connections,
            file.management_max_connections,
            defaults.management_max_connections,
        )?,
    };
    if http.max_websocket_clients > http.max_connections {
        return Err(ConfigError::Invalid {
            key: "http.max_websocket_clients",
            reason: format!(
                "{} is more than http.max_connections ({}): each WebSocket client holds a connection",
                http.max_websocket_clients, http.max_connections
            ),
        });
    }
    Ok(http)
}

fn check_trading(t: &RouterConfig) -> Result<(), ConfigError> {
    let positive = [
        ("trading.leverage", t.leverage),
        ("trading.max_order_lots", t.max_order_lots),
        ("trading.max_net_exposure_usd", t.max_net_exposure_usd),
        ("trading.abook_min_lots", t.abook_min_lots),
        ("trading.max_quote_age_secs", t.max_quote_age_secs),
        ("trading.demo_balance", t.demo_balance),
    ];
    if let Some((key, value)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        return Err(ConfigError::Invalid {
            key,
            reason: format!("{value} must be a positive number"),
        });
    }
    if t.stop_out_level >= t.margin_call_level {
        return Err(ConfigError::Invalid {
            key: "trading.stop_out_level",
            reason: "must be below trading.margin_call_level".to_owned(),
        });
    }
    if t.max_resting_orders_per_account == 0 {
        return Err(ConfigError::Invalid {
            key: "trading.max_resting_orders_per_account",
            reason: "must be at least 1 (limit and stop orders could never rest)".to_owned(),
        });
    }
    Ok(())
}

fn check_behaviour(name: &str, b: &LpBehaviour) -> Result<(), ConfigError> {
    let probabilities = [
        ("spike_probability", b.spike_probability),
        ("reject_probability", b.reject_probability),
        ("timeout_probability", b.timeout_probability),
        ("sequence_gap_probability", b.sequence_gap_probability),
        ("drop_probability", b.drop_probability),
    ];
    if let Some((field, value)) = probabilities.iter().find(|(_, p)| !(0.0..=1.0).contains(p)) {
        return Err(ConfigError::Invalid {
            key: "lp",
            reason: format!("{name}.{field} = {value} is not a probability between 0 and 1"),
        });
    }
    if b.quote_interval_ms == 0 || b.heartbeat_interval_ms == 0 || b.order_timeout_ms == 0 {
        return Err(ConfigError::Invalid {
            key: "lp",
            reason: format!("{name}: intervals and timeouts must be at least 1 ms"),
        });
    }
    if !(b.latency_ms >= 0.0 && b.jitter_ms >= 0.0 && b.spike_ms >= 0.0 && b.spread_pips > 0.0) {
        return Err(ConfigError::Invalid {
            key: "lp",
            reason: format!("{name}: latencies must be >= 0 and spread_pips > 0"),
        });
    }
    Ok(())
}

fn check_names(key: &'static str, names: &[String]) -> Result<(), ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::Invalid {
            key,
            reason: "needs at least one name".to_owned(),
        });
    }
    if let Some(bad) = names.iter().find(|n| {
        n.len() > 32
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    }) {
        return Err(ConfigError::Invalid {
            key,
            reason: format!("`{bad}` must be 1-32 characters of letters, digits, `.`, `_` or `-`"),
        });
    }
    // Each name is a label value: a repeat would export two series with one label set.
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    if let Some(repeated) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(ConfigError::Invalid {
            key,
            reason: format!("`{repeated}` is listed twice; list each name once"),
        });
    }
    Ok(())
}

/// Parses `15s`, `2m`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as a config file, in a scratch directory removed when the guard drops.
    fn file(text: &str) -> (rtx_testkit::ScratchDir, PathBuf) {
        let (dir, path) = rtx_testkit::config_file("config-test", text);
        (dir, PathBuf::from(path))
    }

    #[test]
    fn defaults_need_nothing() {
        let c = Config::load(&Settings::default()).unwrap();
        assert_eq!(c.listen_addr.to_string(), "0.0.0.0:7999");
        assert_eq!(c.lps, ["OANDA", "LMAX", "CURRENEX"]);
        assert_eq!(c.symbols.len(), 10);
        assert!(c.monitoring);
    }

    /// The error loading a file with `text` gives.
    fn refused(text: &str) -> ConfigError {
        let (_dir, path) = file(text);
        Config::load(&Settings {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
    }

    #[test]
    fn created_samples_are_on_unless_the_file_turns_them_off() {
        assert!(
            Config::load(&Settings::default())
                .unwrap()
                .openmetrics_created
        );
        let (_dir, path) = file("[metrics]\nopenmetrics_created = false\n");
        let off = Config::load(&Settings {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert!(!off.openmetrics_created);
        let err = refused("[metrics]\nopenmetrics_created = \"no\"\n");
        assert!(
            err.to_string().contains("line 2, column 23: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn a_resting_cap_of_zero_is_refused_by_name() {
        let err = refused("[trading]\nmax_resting_orders_per_account = 0\n");
        let text = err.to_string();
        assert!(
            text.contains("trading.max_resting_orders_per_account"),
            "{text}"
        );
    }

    #[test]
    fn debug_output_never_shows_a_credential() {
        // Every credential, each a marker of its own; the bearer token only exists in the file.
        let (_dir, path) = file(
            "metrics_token = \"file-m-secret\"\n\
             admin_token = \"file-a-secret\"\n\
             [alerts]\nalertmanager_bearer_token = \"am-bearer-secret\"\n",
        );
        let settings = Settings {
            config: Some(path.clone()),
            metrics_token: Some("m-secret".into()),
            admin_token: Some("a-secret".into()),
            database_url: Some("postgres://rtx:pg-secret@127.0.0.1:5432/rtx".into()),
            alertmanager_url: Some(
                "http://am:am-basic-secret@127.0.0.1:9093,https://am2:am2-basic-secret@am2:9093"
                    .into(),
            ),
            ..Default::default()
        };
        let config = Config::load(&settings).unwrap();
        assert_eq!(
            config
                .alerts
                .alertmanager_bearer_token
                .as_ref()
                .map(Secret::expose),
            Some("am-bearer-secret")
        );
        assert_eq!(
            config.alertmanager_urls[1].credentials(),
            Some(("am2", "am2-basic-secret"))
        );
        let shown = [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{settings:?}"),
            format!("{:?}", read_file(&path).unwrap()),
        ]
        .join("\n");
        for secret in [
            "m-secret",
            "a-secret",
            "pg-secret",
            "am-basic-secret",
            "am2-basic-secret",
            "am-bearer-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(
            shown.contains("postgres://rtx:<redacted>@127.0.0.1:5432/rtx"),
            "{shown}"
        );
        assert!(
            shown.contains("http://am:<redacted>@127.0.0.1:9093"),
            "{shown}"
        );
        assert_eq!(Secret::from("x").to_string(), "<redacted>");
        assert_eq!(
            config.database_url.to_string(),
            "postgres://rtx:<redacted>@127.0.0.1:5432/rtx"
        );
    }

    #[test]
    fn a_file_error_names_the_key_and_place_but_never_shows_the_line() {
        for (text, expected) in [
            (
                "admin_tokn = \"typo-secret\"\n",
                "line 1, column 1: unknown field `admin_tokn`",
            ),
            ("\nadmin_token = typo-secret\n", "line 2, column 15: "),
            (
                "metrics_token = 42 # typo-secret\n",
                "line 1, column 17: invalid type",
            ),
        ] {
            let (_dir, path) = file(text);
            let err = Config::load(&Settings {
                config: Some(path),
                ..Default::default()
            })
            .unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(expected), "{shown}");
            assert!(!shown.contains("typo-secret"), "{shown}");
        }
    }

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1s"), None);
        let err = Config::load(&Settings {
            alert_eval_interval: Some("often".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("`alert_eval_interval`"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let (_dir, path) = file("listen_addr = \"127.0.0.1:1\"\nsymbols = [\"EURUSD\"]\n");
        let settings = Settings {
            config: Some(path),
            listen_addr: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let c = Config::load(&settings).unwrap();
        assert_eq!(c.listen_addr.port(), 2);
        assert_eq!(c.symbols, ["EURUSD"]);
    }

    #[test]
    fn a_name_listed_twice_is_refused_naming_the_key_and_the_name() {
        let err = Config::load(&Settings {
            lps: Some("OANDA,LMAX,OANDA".into()),
            ..Default::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`lps`") && text.contains("`OANDA` is listed twice"),
            "{text}"
        );
        let err = refused("symbols = [\"EURUSD\", \"GBPUSD\", \"EURUSD\"]\n");
        let text = err.to_string();
        assert!(
            text.contains("`symbols`") && text.contains("`EURUSD` is listed twice"),
            "{text}"
        );
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = Config::load(&Settings {
            monitoring: Some("maybe".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("`monitoring`"), "{err}");
        let err = Config::load(&Settings {
            listen_addr: Some("nowhere".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("`listen_addr`"), "{err}");
        let err = refused("[metrics]\naccount_capp = 3\n");
        assert!(err.to_string().contains("account_capp"), "{err}");
        let err = refused("[metrics]\nroute_cap = 0\n#.\n");
        assert!(err.to_string().contains("metrics.route_cap"), "{err}");
    }

    #[test]
    fn listener_limits_come_from_the_file_and_flags_and_bad_ones_are_named() {
        let defaults = Config::load(&Settings::default()).unwrap();
        assert_eq!(defaults.http, HttpConfig::default());
        assert_eq!(defaults.management_addr, None);
        let (dir, path) = file(
            "management_addr = \"127.0.0.1:7998\"\n[http]\nheader_read_timeout = \"2s\"\nidle_timeout = \"30s\"\nrequest_timeout = \"500ms\"\nmax_connections = 100\nmax_websocket_clients = 10\nmanagement_max_connections = 8\n",
        );
        let config = Config::load(&Settings {
            config: Some(path),
            http_max_connections: Some(200),
            ..Default::default()
        })
        .unwrap();
        drop(dir);
        assert_eq!(
            config.http,
            HttpConfig {
                header_read_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(30),
                request_timeout: Duration::from_millis(500),
                max_connections: 200,
                max_websocket_clients: 10,
                management_max_connections: 8,
            },
            "the flag wins over the file"
        );
        assert_eq!(config.management_addr, Some(([127, 0, 0, 1], 7998).into()));
        let lowered = Config::load(&Settings {
            http_max_connections: Some(50),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            lowered.http.max_websocket_clients, 50,
            "an unset WebSocket cap follows the connection cap down"
        );
        for (text, key) in [
            (
                "[http]\nheader_read_timeout = \"0s\"\n",
                "http.header_read_timeout",
            ),
            ("[http]\nidle_timeout = \"soon\"\n", "http.idle_timeout"),
            ("[http]\nmax_connections = 0\n", "http.max_connections"),
            (
                "[http]\nmax_connections = 10\nmax_websocket_clients = 11\n",
                "http.max_websocket_clients",
            ),
            ("management_addr = \"here\"\n", "management_addr"),
            (
                "listen_addr = \"127.0.0.1:7999\"\nmanagement_addr = \"127.0.0.1:7999\"\n",
                "management_addr",
            ),
        ] {
            let err = refused(text);
            assert!(
                err.to_string().contains(&format!("`{key}`")),
                "{text}: {err}"
            );
        }
    }
}
