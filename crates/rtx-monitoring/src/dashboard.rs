//! The Grafana dashboard, generated from the same catalogue the engine exports: every panel's
//! query names a real family, every panel has a unit, rates use `$__rate_interval`, and every
//! query selects by the `job` and `instance` variables so one dashboard serves many engines.

use serde_json::{json, Value};

use crate::alerts::{quantile_either_scrape, slos};

/// How a panel draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanelKind {
    /// Lines over time.
    TimeSeries,
    /// One big number per series.
    Stat,
}

/// One panel: a title, a unit and its queries (`expr`, legend).
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// Title.
    pub title: &'static str,
    /// Drawing.
    pub kind: PanelKind,
    /// Grafana unit id (`s`, `bytes`, `percentunit`, `reqps`, `currencyUSD`, …).
    pub unit: &'static str,
    /// Queries with their legends.
    pub queries: Vec<(String, &'static str)>,
}

/// A row of panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Title.
    pub title: &'static str,
    /// Panels, drawn left to right.
    pub panels: Vec<Panel>,
}

/// The selector every engine query carries.
pub const SEL: &str = r#"job="$job", instance=~"$instance""#;

fn ts(title: &'static str, unit: &'static str, queries: Vec<(String, &'static str)>) -> Panel {
    Panel {
        title,
        kind: PanelKind::TimeSeries,
        unit,
        queries,
    }
}

fn stat(title: &'static str, unit: &'static str, queries: Vec<(String, &'static str)>) -> Panel {
    Panel {
        title,
        kind: PanelKind::Stat,
        unit,
        queries,
    }
}

fn rate(metric: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!("rate({metric}{{{SEL}{extra}}}[$__rate_interval])")
}

/// A latency quantile that has data whether Prometheus stores the histogram as classic buckets
/// or as a native histogram (see [`quantile_either_scrape`]).
fn quantile(q: f64, metric: &str, by: &str) -> String {
    let by: Vec<&str> = by.split(", ").filter(|l| !l.is_empty()).collect();
    quantile_either_scrape(q, metric, SEL, &by, "$__rate_interval")
}

/// The rows: order execution, system health, LP connectivity, positions, accounts, SLO and
/// alerts.
pub fn default_rows() -> Vec<Row> {
    let latency = "rtx_order_execution_latency_seconds";
    vec![
        Row {
            title: "Order Execution",
            panels: vec![
                ts(
                    "Order execution latency",
                    "s",
                    vec![(quantile(0.5, latency, ""), "p50"), (quantile(0.95, latency, ""), "p95"), (quantile(0.99, latency, ""), "p99")],
                ),
                ts("Orders by outcome", "ops", vec![(format!("sum by (outcome) ({})", rate("rtx_orders_total", "")), "{{outcome}}")]),
                ts(
                    "Order success and failure rate",
                    "percentunit",
                    vec![
                        (format!("sum({}) / sum({})", rate("rtx_orders_total", r#"outcome="filled""#), rate("rtx_orders_total", "")), "filled"),
                        (
                            format!("(sum({}) or vector(0)) / sum({})", rate("rtx_orders_total", r#"outcome!="filled""#), rate("rtx_orders_total", "")),
                            "rejected or error",
                        ),
                    ],
                ),
                ts("Volume by symbol", "short", vec![(format!("sum by (symbol) ({})", rate("rtx_order_volume_lots_total", "")), "{{symbol}} lots/s")]),
            ],
        },
        Row {
            title: "System Health",
            panels: vec![
                ts("Resident memory", "bytes", vec![(format!("sum by (instance) (process_resident_memory_bytes{{{SEL}}})"), "{{instance}}")]),
                ts("Live async tasks", "short", vec![(format!("sum by (instance) (rtx_runtime_tasks_alive{{{SEL}}})"), "{{instance}}")]),
                ts("API request rate", "reqps", vec![(format!("sum by (route) ({})", rate("rtx_http_requests_total", "")), "{{route}}")]),
                ts("CPU", "percentunit", vec![(format!("sum by (instance) ({})", rate("process_cpu_seconds_total", "")), "{{instance}}")]),
                ts(
                    "HTTP connections",
                    "short",
                    vec![
                        (format!("sum by (instance) (rtx_http_connections_active{{{SEL}}})"), "open {{instance}}"),
                        (format!("sum by (reason) ({}) * 60", rate("rtx_http_connections_closed_total", "")), "closed/min: {{reason}}"),
                    ],
                ),
            ],
        },
        Row {
            title: "LP Connectivity",
            panels: vec![
                stat("LP connected", "bool_yes_no", vec![(format!("min by (lp) (rtx_lp_connected{{{SEL}}})"), "{{lp}}")]),
                ts("LP latency p95", "s", vec![(quantile(0.95, "rtx_lp_latency_seconds", "lp"), "{{lp}}")]),
                ts("Quote rate", "ops", vec![(format!("sum by (lp) ({})", rate("rtx_lp_quotes_total", "")), "{{lp}}")]),
            ],
        },
        Row {
            title: "Position Monitoring",
            panels: vec![
                ts("Open positions by symbol", "short", vec![(format!("sum by (symbol) (rtx_positions_open{{{SEL}}})"), "{{symbol}}")]),
                ts("Unrealized P&L", "currencyUSD", vec![(format!("sum by (symbol) (rtx_unrealized_pnl{{{SEL}}})"), "{{symbol}}")]),
                ts("Net exposure", "currencyUSD", vec![(format!("sum by (symbol) (rtx_net_exposure{{{SEL}}})"), "{{symbol}}")]),
                ts("Resting orders by symbol", "short", vec![(format!("sum by (symbol) (rtx_orders_resting{{{SEL}}})"), "{{symbol}}")]),
            ],
        },
        Row {
            title: "Account Metrics",
            panels: vec![
                ts(
                    "Balance and equity",
                    "currencyUSD",
                    vec![
                        (format!("sum(rtx_accounts_total_balance{{{SEL}}})"), "balance"),
                        (format!("sum(rtx_accounts_total_equity{{{SEL}}})"), "equity"),
                    ],
                ),
                ts("Margin usage, top 10 accounts", "percentunit", vec![(format!("topk(10, max by (account) (rtx_account_margin_usage_ratio{{{SEL}}}))"), "{{account}}")]),
                stat("Accounts in margin call", "short", vec![(format!("sum(rtx_accounts_in_margin_call{{{SEL}}}) or vector(0)"), "in margin call")]),
            ],
        },
        Row {
            title: "SLO",
            panels: vec![
                ts(
                    "Order latency SLO compliance (target 95% within 100 ms)",
                    "percentunit",
                    vec![(
                        format!("sum({}) / sum({})", rate("rtx_order_slo_orders_total", r#"within_target="true""#), rate("rtx_order_slo_orders_total", "")),
                        "within target",
                    )],
                ),
                ts(
                    "Error budget burn rate (1h window; 1 = on budget)",
                    "short",
                    slos()
                        .into_iter()
                        .map(|slo| {
                            (
                                format!(
                                    "max(rtx_slo:error_ratio:rate1h{{slo=\"{}\", instance=~\"$instance\"}}) / {:.6} or vector(0)",
                                    slo.name,
                                    1.0 - slo.objective
                                ),
                                slo.name,
                            )
                        })
                        .collect(),
                ),
            ],
        },
        Row {
            title: "Alerts",
            panels: vec![
                stat("Alerts firing in the engine", "short", vec![(format!("sum(rtx_alerts_firing{{{SEL}}}) or vector(0)"), "firing")]),
                ts("Alerts firing in Prometheus", "short", vec![(r#"count by (alertname) (ALERTS{alertstate="firing"}) or vector(0)"#.to_owned(), "{{alertname}}")]),
                ts(
                    "Alertmanager notifications",
                    "ops",
                    vec![(format!("sum by (outcome) ({})", rate("rtx_alertmanager_notifications_total", "")), "{{outcome}}")],
                ),
            ],
        },
    ]
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn panel_json(p: &Panel, id: usize, x: usize, y: usize, w: usize) -> Value {
    let targets: Vec<Value> = p
        .queries
        .iter()
        .enumerate()
        .map(|(i, (expr, legend))| {
            json!({
                "datasource": datasource(),
                "expr": expr,
                "legendFormat": legend,
                "refId": char::from(b'A' + i as u8).to_string(),
            })
        })
        .collect();
    let kind = match p.kind {
        PanelKind::TimeSeries => "timeseries",
        PanelKind::Stat => "stat",
    };
    json!({
        "id": id,
        "type": kind,
        "title": p.title,
        "datasource": datasource(),
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": targets,
    })
}

/// The dashboard JSON: importable (`__inputs` with `DS_PROMETHEUS`) and provisionable (a
/// `datasource` variable every panel uses), with `job` and `instance` variables.
pub fn render_dashboard(rows: &[Row]) -> Value {
    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for row in rows {
        panels.push(json!({"id": id, "type": "row", "title": row.title, "collapsed": false, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []}));
        id += 1;
        y += 1;
        let w = 24 / row.panels.len().max(1);
        for (i, p) in row.panels.iter().enumerate() {
            panels.push(panel_json(p, id, i * w, y, w));
            id += 1;
        }
        y += 8;
    }
    json!({
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__requires": [{"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "uid": "rtx-engine",
        "title": "RTX Trading Engine",
        "description": "Generated by `rtx-engine dashboard` from the rtx-monitoring catalogue.",
        "tags": ["rtx", "trading"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0, "refresh": 1},
            {"name": "job", "label": "Job", "type": "query", "datasource": datasource(), "query": {"query": "label_values(rtx_build_info, job)", "refId": "job"}, "definition": "label_values(rtx_build_info, job)", "refresh": 2, "current": {"text": "rtx-engine", "value": "rtx-engine"}, "hide": 0},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": datasource(), "query": {"query": "label_values(rtx_build_info{job=\"$job\"}, instance)", "refId": "instance"}, "definition": "label_values(rtx_build_info{job=\"$job\"}, instance)", "refresh": 2, "multi": true, "includeAll": true, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    })
}

/// Every panel's queries with the variables replaced as a test (or a curious human) would:
/// `$job` by `job`, `$instance` by `.*`, `$__rate_interval` by `rate_interval`.
pub fn resolved_queries(rows: &[Row], job: &str, rate_interval: &str) -> Vec<(String, String)> {
    rows.iter()
        .flat_map(|r| r.panels.iter())
        .flat_map(|p| {
            p.queries
                .iter()
                .map(move |(e, _)| (p.title.to_owned(), e.clone()))
        })
        .map(|(t, e)| {
            (
                t,
                e.replace("$job", job)
                    .replace("$instance", ".*")
                    .replace("$__rate_interval", rate_interval),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_has_a_unit_and_rates_use_the_rate_interval() {
        for row in default_rows() {
            for p in &row.panels {
                assert!(!p.unit.is_empty(), "{}", p.title);
                for (e, _) in &p.queries {
                    if e.contains("rate(") {
                        assert!(e.contains("[$__rate_interval]"), "{}: {e}", p.title);
                    }
                }
            }
        }
        let d = render_dashboard(&default_rows());
        assert_eq!(d["schemaVersion"], 39);
        assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
        let panels = d["panels"].as_array().unwrap();
        assert!(panels
            .iter()
            .filter(|p| p["type"] != "row")
            .all(|p| p["datasource"]["uid"] == "${datasource}"));
    }
}
