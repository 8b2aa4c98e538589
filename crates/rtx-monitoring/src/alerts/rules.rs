//! The default alert rules (trading, LP, API, system, risk, and the connection-limit warning),
//! each defined once: the in-process evaluator reads the signal from the registry, and the
//! Prometheus renderer turns the same definition into PromQL.

use std::time::Duration;

/// Alert severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Needs attention during working hours.
    Warning,
    /// Needs someone now.
    Critical,
}

impl Severity {
    /// `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Which label values of a counter count as "bad" (or "good") in a share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelMatch {
    /// The label equals the value.
    Equals(&'static str, &'static str),
    /// The label starts with the prefix (`status` `5` for 5xx).
    Prefix(&'static str, &'static str),
}

impl LabelMatch {
    /// True when `labels` match.
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        let (name, want, prefix) = match *self {
            LabelMatch::Equals(n, v) => (n, v, false),
            LabelMatch::Prefix(n, v) => (n, v, true),
        };
        labels.iter().any(|(k, v)| {
            k == name
                && if prefix {
                    v.starts_with(want)
                } else {
                    v == want
                }
        })
    }

    /// The PromQL matcher.
    pub fn promql(&self) -> String {
        match *self {
            LabelMatch::Equals(n, v) => format!("{n}=\"{v}\""),
            LabelMatch::Prefix(n, v) => format!("{n}=~\"{v}.*\""),
        }
    }
}

/// What a rule measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    /// A quantile of a histogram's observations over the window, per `by` labels.
    Quantile {
        /// Histogram family.
        metric: &'static str,
        /// 0.95 for p95.
        quantile: f64,
        /// Labels kept (one alert per value set).
        by: &'static [&'static str],
    },
    /// The share of a counter family's increase over the window whose labels match.
    Share {
        /// Counter family.
        metric: &'static str,
        /// Which series are the numerator.
        matching: LabelMatch,
    },
    /// A gauge as it is, per series.
    Gauge {
        /// Gauge family.
        metric: &'static str,
        /// Labels kept.
        by: &'static [&'static str],
    },
    /// The absolute value of a gauge, per series.
    AbsGauge {
        /// Gauge family.
        metric: &'static str,
        /// Labels kept.
        by: &'static [&'static str],
    },
    /// Seconds since a connected LP's last quote.
    QuoteAge,
    /// How much a counter family's matching series grew over the window, summed.
    Increase {
        /// Counter family.
        metric: &'static str,
        /// Which series count.
        matching: LabelMatch,
    },
}

/// How the signal is compared with the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Fires when the signal is above.
    Above,
    /// Fires when the signal is below.
    Below,
}

/// One alert rule.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRule {
    /// `alertname`.
    pub name: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What it measures.
    pub signal: Signal,
    /// How it compares.
    pub comparison: Comparison,
    /// The threshold (configurable).
    pub threshold: f64,
    /// How long the condition must hold before the alert fires.
    pub for_duration: Duration,
    /// One line; may use `{{ $labels.lp }}`-style label references.
    pub summary: &'static str,
    /// What it means and what to do first.
    pub description: &'static str,
}

impl AlertRule {
    /// The runbook anchor in `docs/RUNBOOKS.md`.
    pub fn runbook_anchor(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// True when `value` breaches the threshold.
    pub fn breached(&self, value: f64) -> bool {
        match self.comparison {
            Comparison::Above => value > self.threshold,
            Comparison::Below => value < self.threshold,
        }
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Share of the per-symbol net exposure limit at which `NetExposureHigh` warns. Past the limit
/// itself the engine refuses every order that adds to the exposure (`exposure_limit`), so an
/// alert at the limit would come too late to act on: the warning leaves room to hedge first.
pub const NET_EXPOSURE_WARN_SHARE: f64 = 0.8;

/// The engine's risk limits that some default thresholds are a share of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiskLimits {
    /// Largest absolute net exposure per symbol, in account currency; orders that would take a
    /// symbol past it are refused.
    pub max_net_exposure: f64,
}

impl Default for RiskLimits {
    /// The reference engine's defaults: 50,000,000 of net exposure per symbol.
    fn default() -> Self {
        Self {
            max_net_exposure: 50_000_000.0,
        }
    }
}

/// The default rules (see `docs/RUNBOOKS.md` for each), for the default
/// [`RiskLimits`].
pub fn default_rules() -> Vec<AlertRule> {
    default_rules_for(&RiskLimits::default())
}

/// The default rules, with the thresholds that follow a limit set from `limits`:
/// `NetExposureHigh` warns at [`NET_EXPOSURE_WARN_SHARE`] of `limits.max_net_exposure`.
pub fn default_rules_for(limits: &RiskLimits) -> Vec<AlertRule> {
    use Comparison::{Above, Below};
    use Severity::{Critical, Warning};
    let order_latency = Signal::Quantile {
        metric: "rtx_order_execution_latency_seconds",
        quantile: 0.95,
        by: &[],
    };
    vec![
        AlertRule {
            name: "OrderExecutionLatencyHigh",
            severity: Warning,
            signal: order_latency,
            comparison: Above,
            threshold: 0.5,
            for_duration: Duration::from_secs(120),
            summary: "p95 order execution latency is above 500 ms",
            description: "95% of orders take longer than 500 ms from acceptance to answer. Check LP latency (LPLatencyHigh), database latency and CPU before anything else.",
        },
        AlertRule {
            name: "OrderExecutionLatencyCritical",
            severity: Critical,
            signal: order_latency,
            comparison: Above,
            threshold: 2.0,
            for_duration: Duration::from_secs(60),
            summary: "p95 order execution latency is above 2 s",
            description: "Clients are waiting seconds for fills. Consider routing to B-book or halting the affected flow while the slow component is found.",
        },
        AlertRule {
            name: "OrderErrorRateHigh",
            severity: Critical,
            signal: Signal::Share { metric: "rtx_orders_total", matching: LabelMatch::Equals("outcome", "error") },
            comparison: Above,
            threshold: 0.05,
            for_duration: Duration::from_secs(120),
            summary: "more than 5% of orders end in error",
            description: "Execution is failing (LP timeouts, storage errors). Look at rtx_lp_errors_total and the engine's ERROR log lines.",
        },
        AlertRule {
            name: "OrderSLOViolation",
            severity: Warning,
            signal: Signal::Share { metric: "rtx_order_slo_orders_total", matching: LabelMatch::Equals("within_target", "true") },
            comparison: Below,
            threshold: 0.95,
            for_duration: Duration::from_secs(300),
            summary: "fewer than 95% of orders finish within 100 ms",
            description: "The order latency SLO (95% within 100 ms) is being missed; the error budget is burning.",
        },
        AlertRule {
            name: "LPDisconnected",
            severity: Critical,
            signal: Signal::Gauge { metric: "rtx_lp_connected", by: &["lp", "protocol"] },
            comparison: Below,
            threshold: 1.0,
            for_duration: Duration::from_secs(30),
            summary: "LP {{ $labels.lp }} is disconnected",
            description: "The session to {{ $labels.lp }} is down; A-book flow goes to the remaining LPs. Check the session log and the LP's status page.",
        },
        AlertRule {
            name: "LPLatencyHigh",
            severity: Warning,
            signal: Signal::Quantile { metric: "rtx_lp_latency_seconds", quantile: 0.95, by: &["lp"] },
            comparison: Above,
            threshold: 0.25,
            for_duration: Duration::from_secs(120),
            summary: "p95 latency to LP {{ $labels.lp }} is above 250 ms",
            description: "Round trips to {{ $labels.lp }} are slow; fills will slip. Consider lowering its routing weight.",
        },
        AlertRule {
            name: "LPQuotesStale",
            severity: Warning,
            signal: Signal::QuoteAge,
            comparison: Above,
            threshold: 10.0,
            for_duration: Duration::ZERO,
            summary: "LP {{ $labels.lp }} is connected but sent no quote for 10 s",
            description: "Prices from {{ $labels.lp }} are stale while the session looks up; executable prices may be wrong.",
        },
        AlertRule {
            name: "APIErrorRateHigh",
            severity: Critical,
            signal: Signal::Share { metric: "rtx_http_requests_total", matching: LabelMatch::Prefix("status", "5") },
            comparison: Above,
            threshold: 0.05,
            for_duration: Duration::from_secs(300),
            summary: "more than 5% of API responses are 5xx",
            description: "The API is failing requests. Check readiness (/ready), the database and the engine's ERROR lines.",
        },
        AlertRule {
            name: "APILatencyHigh",
            severity: Warning,
            signal: Signal::Quantile { metric: "rtx_http_request_duration_seconds", quantile: 0.95, by: &[] },
            comparison: Above,
            threshold: 1.0,
            for_duration: Duration::from_secs(300),
            summary: "p95 API latency is above 1 s",
            description: "API requests are slow. Break it down by route on the dashboard.",
        },
        AlertRule {
            name: "MemoryUsageHigh",
            severity: Warning,
            signal: Signal::Gauge { metric: "process_resident_memory_bytes", by: &[] },
            comparison: Above,
            threshold: GIB,
            for_duration: Duration::from_secs(300),
            summary: "resident memory is above 1 GiB",
            description: "Memory is growing past the expected footprint; look for a leak (open WebSocket clients, resting orders) before the critical threshold.",
        },
        AlertRule {
            name: "MemoryUsageCritical",
            severity: Critical,
            signal: Signal::Gauge { metric: "process_resident_memory_bytes", by: &[] },
            comparison: Above,
            threshold: 2.0 * GIB,
            for_duration: Duration::from_secs(120),
            summary: "resident memory is above 2 GiB",
            description: "The process is close to being killed for memory. Drain it (readiness) and restart if it keeps growing.",
        },
        AlertRule {
            name: "TaskCountHigh",
            severity: Warning,
            signal: Signal::Gauge { metric: "rtx_runtime_tasks_alive", by: &[] },
            comparison: Above,
            threshold: 10_000.0,
            for_duration: Duration::from_secs(300),
            summary: "more than 10,000 live async tasks",
            description: "Tasks are piling up (the Rust counterpart of a goroutine leak): slow consumers, stuck requests or a retry storm.",
        },
        AlertRule {
            name: "DatabaseLatencyHigh",
            severity: Warning,
            signal: Signal::Quantile { metric: "rtx_db_query_duration_seconds", quantile: 0.95, by: &[] },
            comparison: Above,
            threshold: 0.1,
            for_duration: Duration::from_secs(300),
            summary: "p95 database query latency is above 100 ms",
            description: "The database is slow; orders wait for their commit. Check disk latency, locks and the pool gauges.",
        },
        AlertRule {
            name: "MarginUsageHigh",
            severity: Warning,
            signal: Signal::Gauge { metric: "rtx_account_margin_usage_ratio", by: &["account"] },
            comparison: Above,
            threshold: 0.8,
            for_duration: Duration::from_secs(60),
            summary: "account {{ $labels.account }} uses more than 80% of its equity as margin",
            description: "Account {{ $labels.account }} is near a margin call; dealing may want to contact the client.",
        },
        AlertRule {
            name: "NetExposureHigh",
            severity: Warning,
            signal: Signal::AbsGauge { metric: "rtx_net_exposure", by: &["symbol"] },
            comparison: Above,
            threshold: NET_EXPOSURE_WARN_SHARE * limits.max_net_exposure,
            for_duration: Duration::from_secs(60),
            summary: "net exposure on {{ $labels.symbol }} is above 80% of its limit",
            description: "The book's net position on {{ $labels.symbol }} has used more than 80% of the configured per-symbol exposure limit; past the limit the engine refuses every order that adds to it (reason exposure_limit). Hedge it with an LP or tighten B-book routing before flow is refused.",
        },
        AlertRule {
            name: "HTTPConnectionLimitReached",
            severity: Warning,
            signal: Signal::Increase { metric: "rtx_http_connections_closed_total", matching: LabelMatch::Equals("reason", "limit") },
            comparison: Above,
            threshold: 0.0,
            for_duration: Duration::ZERO,
            summary: "the engine is closing connections at its connection or WebSocket cap",
            description: "Connections arrive while every slot is taken (http.max_connections, http.max_websocket_clients): waiting connections are closed to make room, or new ones refused. Look at rtx_http_connections_active and the header_timeout closes: many of those mean a flood of half-open connections (block the source); none mean real clients outgrew the cap (raise it with the open-file limit, or add replicas). Probes on the management listener are not affected.",
        },
    ]
}

/// Sets a rule's threshold by name; false when no rule has that name.
pub fn set_threshold(rules: &mut [AlertRule], name: &str, threshold: f64) -> bool {
    match rules.iter_mut().find(|r| r.name == name) {
        Some(rule) => {
            rule.threshold = threshold;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_exposure_warns_at_its_share_of_the_configured_limit() {
        let rule = |limits: &RiskLimits| {
            default_rules_for(limits)
                .into_iter()
                .find(|r| r.name == "NetExposureHigh")
                .expect("NetExposureHigh is a default rule")
        };
        let small = rule(&RiskLimits {
            max_net_exposure: 10_000_000.0,
        });
        assert_eq!(small.threshold, 8_000_000.0);
        assert_eq!(rule(&RiskLimits::default()).threshold, 40_000_000.0);
        let percent = format!("{}%", NET_EXPOSURE_WARN_SHARE * 100.0);
        assert!(
            small.summary.contains(&percent) && small.description.contains(&percent),
            "the alert text names the share it warns at: {small:?}"
        );
    }
}
