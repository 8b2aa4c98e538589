//! The in-process evaluator: reads each rule's signal from the registry on an interval, moves
//! every alert instance through inactive → pending → firing → resolved as Prometheus does, keeps
//! a capped history, and publishes the current set for the Alertmanager notifier.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::rules::{AlertRule, Signal};
use crate::catalogue::SelfMetrics;
use crate::metrics::{Counter, Gauge, HistogramSnapshot, Reading, ReadingValue, Registry};
use crate::time::{rfc3339, unix_now};

/// Where an alert instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    /// Breached, waiting out `for`.
    Pending,
    /// Breached for at least `for`.
    Firing,
    /// Was firing, no longer breached.
    Resolved,
}

impl AlertState {
    /// `pending`, `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert instance: a rule and a label set.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// `alertname`.
    pub name: &'static str,
    /// Severity.
    pub severity: &'static str,
    /// The rule's `by` labels for this instance.
    pub labels: BTreeMap<String, String>,
    /// State.
    pub state: AlertState,
    /// Latest signal value.
    pub value: f64,
    /// Summary with labels filled in.
    pub summary: String,
    /// Description with labels filled in.
    pub description: String,
    /// Runbook anchor.
    pub runbook: String,
    /// Unix time the condition started holding.
    pub active_since: f64,
    /// Unix time it started firing.
    pub fired_at: Option<f64>,
    /// Unix time it resolved.
    pub resolved_at: Option<f64>,
}

impl Alert {
    /// JSON for `GET /alerts`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "alertname": self.name,
            "severity": self.severity,
            "labels": self.labels,
            "state": self.state.as_str(),
            "value": if self.value.is_finite() { serde_json::json!(self.value) } else { serde_json::Value::Null },
            "summary": self.summary,
            "description": self.description,
            "runbook": self.runbook,
            "active_since": rfc3339(self.active_since),
            "fired_at": self.fired_at.map(rfc3339),
            "resolved_at": self.resolved_at.map(rfc3339),
        })
    }
}

/// A moment in an alert's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// The alert as it was.
    pub alert: Alert,
    /// Unix time of the change.
    pub at: f64,
}

/// How long resolved alerts are kept and re-sent so every Alertmanager hears of the end.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

struct State {
    instances: HashMap<String, Alert>,
    history: VecDeque<HistoryEntry>,
    snapshots: VecDeque<(Instant, HashMap<&'static str, Vec<Reading>>)>,
}

/// One rule's self-monitoring series.
struct RuleSeries {
    fired: Counter,
    firing: Gauge,
}

/// The evaluator. Clones share state.
#[derive(Clone)]
pub struct Evaluator {
    rules: Arc<[AlertRule]>,
    registry: Registry,
    window: Duration,
    history_cap: usize,
    /// Per rule, in rule order: its `rtx_alerts_fired_total` and `rtx_alerts_firing` series.
    series: Arc<[RuleSeries]>,
    state: Arc<Mutex<State>>,
    published: Arc<tokio::sync::watch::Sender<Arc<Vec<Alert>>>>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("rules", &self.rules.len())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn label_text(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

fn key_of(labels: &[(String, String)], by: &[&str]) -> BTreeMap<String, String> {
    by.iter()
        .filter_map(|b| {
            labels
                .iter()
                .find(|(k, _)| k == b)
                .map(|(k, v)| (k.clone(), v.clone()))
        })
        .collect()
}

/// `histogram_quantile` as Prometheus computes it: linear interpolation inside the bucket that
/// holds the rank; the highest finite bound when the rank falls in `+Inf`. `None` with no
/// observations.
pub fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()? as f64;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let bucket = cumulative.iter().position(|&c| c as f64 >= rank)?;
    if bucket == bounds.len() {
        return bounds.last().copied();
    }
    let upper = bounds[bucket];
    let (lower, below) = if bucket == 0 {
        (0f64.min(upper), 0.0)
    } else {
        (bounds[bucket - 1], cumulative[bucket - 1] as f64)
    };
    let inside = cumulative[bucket] as f64 - below;
    if inside == 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / inside)
}

fn delta_histogram(now: &HistogramSnapshot, then: Option<&HistogramSnapshot>) -> Vec<u64> {
    match then {
        Some(t) if t.cumulative.len() == now.cumulative.len() => now
            .cumulative
            .iter()
            .zip(&t.cumulative)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect(),
        _ => now.cumulative.clone(),
    }
}

impl Evaluator {
    /// An evaluator of `rules` over `registry`, computing rates and quantiles over `window`
    /// (5 minutes in production, as the PromQL twins do). With `metrics`, every rule's
    /// `rtx_alerts_fired_total` and `rtx_alerts_firing` series exist at 0 from here on, so
    /// that `increase()` over the counter sees an alert's first firing too.
    pub fn new(
        rules: Vec<AlertRule>,
        registry: Registry,
        window: Duration,
        metrics: Option<SelfMetrics>,
    ) -> Self {
        let (published, _) = tokio::sync::watch::channel(Arc::new(Vec::new()));
        let series = rules
            .iter()
            .map(|rule| match &metrics {
                Some(m) => {
                    let labels = [rule.name, rule.severity.as_str()];
                    RuleSeries {
                        fired: m.alerts_fired.get(&labels),
                        firing: m.alerts_firing.get(&labels),
                    }
                }
                None => RuleSeries {
                    fired: Counter::noop(),
                    firing: Gauge::noop(),
                },
            })
            .collect();
        Self {
            rules: rules.into(),
            registry,
            window,
            history_cap: 1000,
            series,
            state: Arc::new(Mutex::new(State {
                instances: HashMap::new(),
                history: VecDeque::new(),
                snapshots: VecDeque::new(),
            })),
            published: Arc::new(published),
        }
    }

    /// Caps the history (default 1000).
    pub fn with_history_cap(mut self, cap: usize) -> Self {
        self.history_cap = cap;
        self
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Receives the current alert set (firing and recently resolved) after every evaluation.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Vec<Alert>>> {
        self.published.subscribe()
    }

    fn windowed_families(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .rules
            .iter()
            .filter_map(|r| match r.signal {
                Signal::Quantile { metric, .. }
                | Signal::Share { metric, .. }
                | Signal::Increase { metric, .. } => Some(metric),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Values of a rule's signal, one per label set.
    fn signal(
        &self,
        rule: &AlertRule,
        now: &HashMap<&'static str, Vec<Reading>>,
        then: Option<&HashMap<&'static str, Vec<Reading>>>,
        now_unix: f64,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let baseline = |metric: &str, labels: &[(String, String)]| -> Option<Reading> {
            then.and_then(|t| t.get(metric))
                .and_then(|rs| rs.iter().find(|r| r.labels == labels).cloned())
        };
        match rule.signal {
            Signal::Quantile {
                metric,
                quantile,
                by,
            } => {
                let mut groups: BTreeMap<BTreeMap<String, String>, (Vec<f64>, Vec<u64>)> =
                    BTreeMap::new();
                for r in now.get(metric).into_iter().flatten() {
                    let ReadingValue::Histogram(h) = &r.value else {
                        continue;
                    };
                    let then = baseline(metric, &r.labels);
                    let then_h = match then.as_ref().map(|t| &t.value) {
                        Some(ReadingValue::Histogram(t)) => Some(t),
                        _ => None,
                    };
                    let delta = delta_histogram(h, then_h);
                    let entry = groups
                        .entry(key_of(&r.labels, by))
                        .or_insert_with(|| (h.bounds.to_vec(), vec![0; delta.len()]));
                    if entry.1.len() == delta.len() {
                        entry.1.iter_mut().zip(delta).for_each(|(a, d)| *a += d);
                    }
                }
                groups
                    .into_iter()
                    .filter_map(|(k, (bounds, cum))| {
                        histogram_quantile(quantile, &bounds, &cum).map(|v| (k, v))
                    })
                    .collect()
            }
            Signal::Share { metric, matching } => {
                let (mut part, mut total) = (0.0, 0.0);
                for r in now.get(metric).into_iter().flatten() {
                    let delta = (r.scalar()
                        - baseline(metric, &r.labels).map_or(0.0, |b| b.scalar()))
                    .max(0.0);
                    total += delta;
                    if matching.matches(&r.labels) {
                        part += delta;
                    }
                }
                if total > 0.0 {
                    vec![(BTreeMap::new(), part / total)]
                } else {
                    Vec::new()
                }
            }
            Signal::Increase { metric, matching } => {
                let growth: f64 = now
                    .get(metric)
                    .into_iter()
                    .flatten()
                    .filter(|r| matching.matches(&r.labels))
                    .map(|r| {
                        (r.scalar() - baseline(metric, &r.labels).map_or(0.0, |b| b.scalar()))
                            .max(0.0)
                    })
                    .sum();
                vec![(BTreeMap::new(), growth)]
            }
            Signal::Gauge { metric, by } | Signal::AbsGauge { metric, by } => {
                let abs = matches!(rule.signal, Signal::AbsGauge { .. });
                self.registry
                    .read(metric)
                    .iter()
                    .map(|r| {
                        (
                            key_of(&r.labels, by),
                            if abs { r.scalar().abs() } else { r.scalar() },
                        )
                    })
                    .collect()
            }
            Signal::QuoteAge => {
                let last = self.registry.read("rtx_lp_last_quote_timestamp_seconds");
                self.registry
                    .read("rtx_lp_connected")
                    .iter()
                    .filter(|c| c.scalar() == 1.0)
                    .filter_map(|c| {
                        let lp = c.label("lp")?;
                        let ts = last.iter().find(|l| l.label("lp") == Some(lp))?.scalar();
                        (ts > 0.0).then(|| (key_of(&c.labels, &["lp"]), now_unix - ts))
                    })
                    .collect()
            }
        }
    }

    /// Evaluates every rule once.
    pub fn evaluate(&self) {
        self.registry.refresh();
        let now = Instant::now();
        let now_unix = unix_now();
        let current: HashMap<&'static str, Vec<Reading>> = self
            .windowed_families()
            .into_iter()
            .map(|m| (m, self.registry.read(m)))
            .collect();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // The baseline is the newest snapshot at least a window old (or the oldest one).
        while state.snapshots.len() > 1
            && state
                .snapshots
                .get(1)
                .is_some_and(|s| now.duration_since(s.0) >= self.window)
        {
            state.snapshots.pop_front();
        }
        let then = state.snapshots.front().map(|s| s.1.clone());
        let mut seen = std::collections::HashSet::new();
        let mut changes = Vec::new();
        for rule in self.rules.iter() {
            for (labels, value) in self.signal(rule, &current, then.as_ref(), now_unix) {
                let key = format!("{}{labels:?}", rule.name);
                if !rule.breached(value) {
                    continue;
                }
                seen.insert(key.clone());
                let alert = state.instances.entry(key).or_insert_with(|| Alert {
                    name: rule.name,
                    severity: rule.severity.as_str(),
                    summary: label_text(rule.summary, &labels),
                    description: label_text(rule.description, &labels),
                    runbook: rule.runbook_anchor(),
                    labels: labels.clone(),
                    state: AlertState::Pending,
                    value,
                    active_since: now_unix,
                    fired_at: None,
                    resolved_at: None,
                });
                if alert.state == AlertState::Resolved {
                    // Breached again: a new episode.
                    *alert = Alert {
                        state: AlertState::Pending,
                        active_since: now_unix,
                        fired_at: None,
                        resolved_at: None,
                        ..alert.clone()
                    };
                }
                alert.value = value;
                if alert.state == AlertState::Pending
                    && now_unix - alert.active_since >= rule.for_duration.as_secs_f64()
                {
                    alert.state = AlertState::Firing;
                    alert.fired_at = Some(now_unix);
                    changes.push(alert.clone());
                }
            }
        }
        let mut resolved = Vec::new();
        state.instances.retain(|key, alert| {
            if seen.contains(key) {
                return true;
            }
            match alert.state {
                AlertState::Pending => false,
                AlertState::Firing => {
                    alert.state = AlertState::Resolved;
                    alert.resolved_at = Some(now_unix);
                    resolved.push(alert.clone());
                    true
                }
                AlertState::Resolved => alert
                    .resolved_at
                    .is_some_and(|at| now_unix - at < RESOLVED_RETENTION.as_secs_f64()),
            }
        });
        for alert in changes.into_iter().chain(resolved) {
            if alert.state == AlertState::Firing {
                if let Some(i) = self.rules.iter().position(|r| r.name == alert.name) {
                    self.series[i].fired.inc();
                }
            }
            state.history.push_front(HistoryEntry {
                at: now_unix,
                alert,
            });
        }
        state.history.truncate(self.history_cap);
        state.snapshots.push_back((now, current));
        for (rule, series) in self.rules.iter().zip(self.series.iter()) {
            let firing = state
                .instances
                .values()
                .filter(|a| a.name == rule.name && a.state == AlertState::Firing)
                .count();
            series.firing.set(firing as f64);
        }
        let mut published: Vec<Alert> = state
            .instances
            .values()
            .filter(|a| a.state != AlertState::Pending)
            .cloned()
            .collect();
        published.sort_by(|a, b| (a.name, &a.labels).cmp(&(b.name, &b.labels)));
        drop(state);
        self.published.send_replace(Arc::new(published));
    }

    /// Active alerts (pending and firing) and the history, newest first.
    pub fn to_json(&self) -> serde_json::Value {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut active: Vec<&Alert> = state
            .instances
            .values()
            .filter(|a| a.state != AlertState::Resolved)
            .collect();
        active.sort_by(|a, b| b.active_since.total_cmp(&a.active_since));
        let history: Vec<serde_json::Value> = state
            .history
            .iter()
            .map(|h| {
                let mut v = h.alert.to_json();
                v["at"] = rfc3339(h.at).into();
                v
            })
            .collect();
        serde_json::json!({
            "active": active.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
            "history": history,
            "history_cap": self.history_cap,
        })
    }

    /// Evaluates every `interval` until `shutdown` flips.
    pub async fn run(self, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        // The first evaluation waits one interval: at start, sessions are still connecting and
        // gauges still at their initial zero, and an evaluation then would show LPs as
        // disconnected (pending, until the next one) while readiness already says connected.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.evaluate(),
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{default_rules, Comparison, LabelMatch};
    use crate::catalogue::{CatalogueConfig, OrderType, Outcome, Route, TradingMetrics};

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let bounds = [0.1, 0.5, 1.0];
        let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-12);
        assert!(close(
            histogram_quantile(0.5, &bounds, &[0, 10, 10, 10]),
            0.3
        ));
        assert!(
            close(histogram_quantile(0.95, &bounds, &[0, 0, 0, 10]), 1.0),
            "+Inf: the highest finite bound"
        );
        assert!(close(
            histogram_quantile(0.9, &bounds, &[10, 10, 10, 10]),
            0.09
        ));
        assert_eq!(histogram_quantile(0.5, &bounds, &[0, 0, 0, 0]), None);
    }

    fn setup(rules: Vec<AlertRule>) -> (TradingMetrics, Evaluator) {
        let registry = Registry::new();
        let metrics = TradingMetrics::new(&registry, &CatalogueConfig::default()).unwrap();
        let evaluator = Evaluator::new(
            rules,
            registry,
            Duration::from_secs(300),
            Some(metrics.monitoring.clone()),
        );
        (metrics, evaluator)
    }

    fn rule(name: &str) -> AlertRule {
        let mut r = default_rules()
            .into_iter()
            .find(|r| r.name == name)
            .unwrap();
        r.for_duration = Duration::ZERO;
        r
    }

    fn firing(e: &Evaluator) -> Vec<(String, BTreeMap<String, String>)> {
        e.subscribe()
            .borrow()
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| (a.name.to_owned(), a.labels.clone()))
            .collect()
    }

    #[tokio::test]
    async fn nothing_is_reported_from_the_moment_of_start_before_the_first_interval() {
        let (m, e) = setup(vec![rule("LPDisconnected")]);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(e.clone().run(Duration::from_millis(300), stopped));
        // The LPs connect shortly after start, as the engine's sessions do.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            e.to_json()["active"].as_array().is_none_or(Vec::is_empty),
            "evaluated at the moment of start: {}",
            e.to_json()
        );
        for lp in m.lp_ids() {
            m.lp.set_connected(lp, true);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            e.to_json()["active"].as_array().is_none_or(Vec::is_empty),
            "an LP connected since shortly after start was reported: {}",
            e.to_json()
        );
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[test]
    fn every_default_rule_fires_above_and_stays_quiet_below() {
        for rule in default_rules() {
            let (m, e) = setup(vec![AlertRule {
                for_duration: Duration::ZERO,
                ..rule.clone()
            }]);
            let eurusd = m.symbol("EURUSD").unwrap();
            let oanda = m.lp("OANDA").unwrap();
            let fire = |above: bool| {
                let t = rule.threshold;
                match rule.name {
                    "OrderExecutionLatencyHigh" | "OrderExecutionLatencyCritical" => {
                        let l = Duration::from_secs_f64(if above { t * 1.5 } else { t * 0.5 });
                        for _ in 0..20 {
                            m.orders.record_execution(
                                OrderType::Market,
                                eurusd,
                                Route::BBook,
                                Outcome::Filled,
                                l,
                            );
                        }
                    }
                    "OrderErrorRateHigh" => {
                        let errors = if above { 10 } else { 1 };
                        for i in 0..100 {
                            let o = if i < errors {
                                Outcome::Error
                            } else {
                                Outcome::Filled
                            };
                            m.orders.record_execution(
                                OrderType::Market,
                                eurusd,
                                Route::BBook,
                                o,
                                Duration::from_millis(1),
                            );
                        }
                    }
                    "OrderSLOViolation" => {
                        let slow = if above { 20 } else { 1 };
                        for i in 0..100 {
                            let l = Duration::from_millis(if i < slow { 500 } else { 5 });
                            m.orders.record_execution(
                                OrderType::Market,
                                eurusd,
                                Route::BBook,
                                Outcome::Filled,
                                l,
                            );
                        }
                    }
                    "LPDisconnected" => {
                        m.lp.set_connected(oanda, true);
                        for lp in m.lp_ids().filter(|l| *l != oanda) {
                            m.lp.set_connected(lp, true);
                        }
                        if above {
                            m.lp.set_connected(oanda, false);
                        }
                    }
                    "LPLatencyHigh" => {
                        let l = Duration::from_secs_f64(if above { 0.4 } else { 0.01 });
                        for _ in 0..20 {
                            m.lp.record_latency(oanda, rtx_lp_op(), l);
                        }
                    }
                    "LPQuotesStale" => {
                        m.lp.set_connected(oanda, true);
                        let age = if above { 30.0 } else { 1.0 };
                        m.lp.record_quote(oanda, eurusd, 0.8, unix_now() - age);
                    }
                    "APIErrorRateHigh" => {
                        let errors = if above { 10 } else { 1 };
                        for i in 0..100 {
                            let status = if i < errors { 503 } else { 200 };
                            m.api.record_request(
                                crate::catalogue::HttpMethod::Get,
                                "/api/orders",
                                status,
                                Duration::from_millis(1),
                            );
                        }
                    }
                    "APILatencyHigh" => {
                        let l = Duration::from_secs_f64(if above { 2.0 } else { 0.01 });
                        for _ in 0..20 {
                            m.api.record_request(
                                crate::catalogue::HttpMethod::Get,
                                "/api/orders",
                                200,
                                l,
                            );
                        }
                    }
                    "MemoryUsageHigh" | "MemoryUsageCritical" => {
                        // The process collector sets this on refresh; compare against a threshold
                        // placed around the real value instead.
                    }
                    "TaskCountHigh" => {
                        m.runtime
                            .tasks_alive
                            .set(if above { 20_000.0 } else { 10.0 })
                    }
                    "DatabaseLatencyHigh" => {
                        let q = m.db.query("select", "orders");
                        for _ in 0..20 {
                            q.record(
                                Duration::from_secs_f64(if above { 0.3 } else { 0.001 }),
                                crate::catalogue::DbOutcome::Success,
                            );
                        }
                    }
                    "MarginUsageHigh" => m.accounts.account("demo-1").set(
                        1000.0,
                        1000.0,
                        if above { 900.0 } else { 100.0 },
                    ),
                    "NetExposureHigh" => m.positions.set_symbol(
                        eurusd,
                        crate::catalogue::SymbolPositions {
                            net_exposure: if above { -t * 1.2 } else { t * 0.5 },
                            ..Default::default()
                        },
                    ),
                    "HTTPConnectionLimitReached" => {
                        if above {
                            m.api.record_connection_closed(
                                crate::catalogue::ConnectionCloseReason::Limit,
                            );
                        }
                        // Other reasons never count towards it.
                        m.api.record_connection_closed(
                            crate::catalogue::ConnectionCloseReason::HeaderTimeout,
                        );
                    }
                    other => panic!("no scenario for {other}"),
                }
            };
            if rule.name.starts_with("MemoryUsage") {
                let rss = crate::metrics::ProcessSample::read()
                    .unwrap()
                    .resident_bytes;
                for (threshold, fires) in [(rss / 4.0, true), (rss * 4.0, false)] {
                    let (_, e) = setup(vec![AlertRule {
                        threshold,
                        for_duration: Duration::ZERO,
                        ..rule.clone()
                    }]);
                    e.evaluate();
                    assert_eq!(
                        !firing(&e).is_empty(),
                        fires,
                        "{} with threshold {threshold}",
                        rule.name
                    );
                }
                continue;
            }
            fire(false);
            e.evaluate();
            assert!(
                firing(&e).is_empty(),
                "{} fired below its threshold",
                rule.name
            );
            fire(true);
            e.evaluate();
            assert!(
                !firing(&e).is_empty(),
                "{} did not fire above its threshold",
                rule.name
            );
        }
    }

    fn rtx_lp_op() -> crate::catalogue::LpOperation {
        crate::catalogue::LpOperation::Order
    }

    #[test]
    fn the_state_machine_waits_out_for_then_fires_then_resolves() {
        let mut r = rule("TaskCountHigh");
        r.for_duration = Duration::from_millis(200);
        let (m, e) = setup(vec![r]);
        m.runtime.tasks_alive.set(50_000.0);
        e.evaluate();
        let state = |e: &Evaluator| {
            e.to_json()["active"][0]["state"]
                .as_str()
                .map(str::to_owned)
        };
        assert_eq!(state(&e).as_deref(), Some("pending"));
        assert!(firing(&e).is_empty(), "pending alerts are not sent");
        std::thread::sleep(Duration::from_millis(250));
        e.evaluate();
        assert_eq!(state(&e).as_deref(), Some("firing"));
        assert_eq!(firing(&e).len(), 1);
        m.runtime.tasks_alive.set(5.0);
        e.evaluate();
        let json = e.to_json();
        assert_eq!(json["active"].as_array().unwrap().len(), 0);
        assert_eq!(json["history"][0]["state"], "resolved", "newest first");
        assert_eq!(json["history"][1]["state"], "firing");
        let published = e.subscribe().borrow().clone();
        assert_eq!(
            published[0].state,
            AlertState::Resolved,
            "resolutions are published for Alertmanager"
        );
        let text = e
            .registry
            .encode_to_string(crate::metrics::Format::PrometheusText);
        assert!(text.contains(
            "rtx_alerts_fired_total{alertname=\"TaskCountHigh\",severity=\"warning\"} 1"
        ));
        assert!(
            text.contains("rtx_alerts_firing{alertname=\"TaskCountHigh\",severity=\"warning\"} 0")
        );
    }

    #[test]
    fn every_rules_series_is_exported_at_zero_before_it_first_fires() {
        let (_, e) = setup(default_rules());
        let text = e
            .registry
            .encode_to_string(crate::metrics::Format::PrometheusText);
        for rule in default_rules() {
            let labels = format!(
                "{{alertname=\"{}\",severity=\"{}\"}}",
                rule.name,
                rule.severity.as_str()
            );
            for family in ["rtx_alerts_fired_total", "rtx_alerts_firing"] {
                assert!(
                    text.contains(&format!("{family}{labels} 0\n")),
                    "{family}{labels} is not exported at 0 before any evaluation"
                );
            }
        }
    }

    #[test]
    fn a_condition_that_clears_while_pending_never_fires() {
        let mut r = rule("TaskCountHigh");
        r.for_duration = Duration::from_secs(60);
        let (m, e) = setup(vec![r]);
        m.runtime.tasks_alive.set(50_000.0);
        e.evaluate();
        m.runtime.tasks_alive.set(1.0);
        e.evaluate();
        let json = e.to_json();
        assert!(json["active"].as_array().unwrap().is_empty());
        assert!(json["history"].as_array().unwrap().is_empty());
    }

    #[test]
    fn history_is_capped_newest_first() {
        let (m, e) = setup(vec![rule("TaskCountHigh")]);
        let e = e.with_history_cap(3);
        for i in 0..5 {
            m.runtime
                .tasks_alive
                .set(if i % 2 == 0 { 50_000.0 } else { 1.0 });
            e.evaluate();
        }
        let json = e.to_json();
        assert_eq!(json["history"].as_array().unwrap().len(), 3);
        assert_eq!(json["history"][0]["state"], "firing");
    }

    #[test]
    fn share_matching_reads_prefixes() {
        let labels = vec![("status".to_owned(), "503".to_owned())];
        assert!(LabelMatch::Prefix("status", "5").matches(&labels));
        assert!(!LabelMatch::Equals("status", "5").matches(&labels));
        let r = AlertRule {
            comparison: Comparison::Below,
            threshold: 0.95,
            ..rule("OrderSLOViolation")
        };
        assert!(r.breached(0.9) && !r.breached(0.99));
    }
}
