//! Alerts: the default rules (trading, LP, API, system, risk, and the connection-limit warning)
//! defined once in Rust, evaluated in process (pending, `for`, firing, resolved, as Prometheus
//! does), sent to Alertmanager, and rendered as the Prometheus
//! rule file with its `promtool` unit tests.
//!
//! Owns rule definitions, evaluation state and notification. It reads metrics only through the
//! registry and never sits on the order path: evaluation and notification run on their own tasks.

#[cfg(feature = "alertmanager")]
mod alertmanager;
#[cfg(feature = "tokio-runtime")]
mod evaluate;
mod prometheus;
mod rules;

#[cfg(feature = "alertmanager")]
pub use alertmanager::{run as run_notifier, AlertmanagerAuth, AlertmanagerConfig};
#[cfg(feature = "tokio-runtime")]
pub use evaluate::{
    histogram_quantile, Alert, AlertState, Evaluator, HistoryEntry, RESOLVED_RETENTION,
};
pub use prometheus::{
    expr, prom_duration, quantile_either_scrape, render_rule_tests, render_rules, render_runbooks,
    slos, Slo, BURN_WINDOWS, JOB, RULE_WINDOW,
};
pub use rules::{
    default_rules, default_rules_for, set_threshold, AlertRule, Comparison, LabelMatch, RiskLimits,
    Severity, Signal, NET_EXPOSURE_WARN_SHARE,
};
