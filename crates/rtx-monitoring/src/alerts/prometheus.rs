//! Renders the rules for Prometheus: each in-process rule's PromQL twin, `EngineDown` (only
//! Prometheus can see a dead engine), and multi-window multi-burn-rate SLO alerts with their
//! recording rules (the SRE workbook's windows and factors). Also renders `promtool` unit tests
//! that exercise every alert above and below its threshold.

use std::fmt::Write as _;
use std::time::Duration;

use super::rules::{AlertRule, Comparison, Signal, NET_EXPOSURE_WARN_SHARE};

/// The job name the rules expect Prometheus to scrape the engine under.
pub const JOB: &str = "rtx-engine";

/// Window of the PromQL twins' rates and quantiles.
pub const RULE_WINDOW: &str = "5m";

fn q(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar, escapes included.
    serde_json::Value::String(s.to_owned()).to_string()
}

/// `2m`, `30s`, `0s`: a duration as Prometheus writes it.
pub fn prom_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        "0s".to_owned()
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn threshold_text(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1e15 {
        format!("{}", t as i64)
    } else {
        format!("{t}")
    }
}

/// A quantile of a latency histogram in PromQL that works however Prometheus scrapes it.
///
/// Scraped as text or OpenMetrics, a histogram is stored as classic `_bucket` series with an
/// `le` label. Scraped as protobuf by a Prometheus with native histograms on, the engine's
/// latency histograms are stored as one native series under the bare name (2.x keeps only the
/// native part of a histogram that has one). Exactly one of the two exists, so the classic
/// quantile `or` the native one yields whichever has data, with the same labels (`by` without
/// `le`), and the same dashboard and rules serve both set-ups.
///
/// `selector` is the inside of the braces (may be empty); `window` a range such as `5m` or
/// `$__rate_interval`.
pub fn quantile_either_scrape(
    quantile: f64,
    metric: &str,
    selector: &str,
    by: &[&str],
    window: &str,
) -> String {
    let mut classic_by = by.to_vec();
    classic_by.push("le");
    let classic_by = classic_by.join(", ");
    let native_sum = if by.is_empty() {
        "sum".to_owned()
    } else {
        format!("sum by ({})", by.join(", "))
    };
    let selector = if selector.is_empty() {
        String::new()
    } else {
        format!("{{{selector}}}")
    };
    format!(
        "(histogram_quantile({quantile}, sum by ({classic_by}) (rate({metric}_bucket{selector}[{window}]))) or histogram_quantile({quantile}, {native_sum} (rate({metric}{selector}[{window}]))))"
    )
}

/// The PromQL expression of a rule.
pub fn expr(rule: &AlertRule) -> String {
    let op = match rule.comparison {
        Comparison::Above => ">",
        Comparison::Below => "<",
    };
    let t = threshold_text(rule.threshold);
    match rule.signal {
        Signal::Quantile { metric, quantile, by } => {
            let mut labels = vec!["instance"];
            labels.extend_from_slice(by);
            format!(
                "{} {op} {t}",
                quantile_either_scrape(quantile, metric, "", &labels, RULE_WINDOW)
            )
        }
        Signal::Share { metric, matching } => format!(
            "sum by (instance) (rate({metric}{{{}}}[{RULE_WINDOW}])) / sum by (instance) (rate({metric}[{RULE_WINDOW}])) {op} {t}",
            matching.promql().replace(".*\"", "..\"")
        ),
        Signal::Increase { metric, matching } => format!(
            "sum by (instance) (increase({metric}{{{}}}[{RULE_WINDOW}])) {op} {t}",
            matching.promql()
        ),
        Signal::Gauge { metric, .. } => format!("{metric} {op} {t}"),
        Signal::AbsGauge { metric, .. } => format!("abs({metric}) {op} {t}"),
        Signal::QuoteAge => format!(
            "(time() - rtx_lp_last_quote_timestamp_seconds) {op} {t} and on (instance, lp) rtx_lp_connected == 1"
        ),
    }
}

/// An SLO whose error budget the burn-rate alerts watch.
#[derive(Clone, Copy, Debug)]
pub struct Slo {
    /// `slo` label and recording-rule suffix.
    pub name: &'static str,
    /// Alert name prefix.
    pub alert: &'static str,
    /// The objective, e.g. 0.999.
    pub objective: f64,
    /// What it promises.
    pub description: &'static str,
    error_ratio: fn(&str) -> String,
}

/// The four SLOs whose error budgets the burn-rate alerts watch.
pub fn slos() -> Vec<Slo> {
    vec![
        Slo {
            name: "order_latency",
            alert: "OrderLatency",
            objective: 0.95,
            description: "95% of orders within 100 ms",
            error_ratio: |w| {
                format!("1 - (sum by (instance) (rate(rtx_order_slo_orders_total{{within_target=\"true\"}}[{w}])) / sum by (instance) (rate(rtx_order_slo_orders_total[{w}])))")
            },
        },
        Slo {
            name: "order_success",
            alert: "OrderSuccess",
            objective: 0.999,
            description: "99.9% of orders without outcome error",
            error_ratio: |w| {
                format!("sum by (instance) (rate(rtx_orders_total{{outcome=\"error\"}}[{w}])) / sum by (instance) (rate(rtx_orders_total[{w}]))")
            },
        },
        Slo {
            name: "api_availability",
            alert: "APIAvailability",
            objective: 0.9995,
            description: "99.95% of API requests without a 5xx",
            error_ratio: |w| {
                format!("sum by (instance) (rate(rtx_http_requests_total{{status=~\"5..\"}}[{w}])) / sum by (instance) (rate(rtx_http_requests_total[{w}]))")
            },
        },
        Slo {
            name: "lp_connectivity",
            alert: "LPConnectivity",
            objective: 0.999,
            description: "each LP connected 99.9% of the time",
            error_ratio: |w| format!("1 - avg_over_time(rtx_lp_connected[{w}])"),
        },
    ]
}

/// The SRE workbook's windows.
pub const BURN_WINDOWS: &[&str] = &["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// (long window, short window, burn factor) pairs: two for paging, two for tickets.
pub const FAST_BURN: [(&str, &str, f64); 2] = [("1h", "5m", 14.4), ("6h", "30m", 6.0)];
/// Ticket-level burn.
pub const SLOW_BURN: [(&str, &str, f64); 2] = [("1d", "2h", 3.0), ("3d", "6h", 1.0)];

fn burn_expr(slo: &Slo, pairs: &[(&str, &str, f64); 2]) -> String {
    let budget = 1.0 - slo.objective;
    pairs
        .iter()
        .map(|(long, short, factor)| {
            let limit = factor * budget;
            format!(
                "(rtx_slo:error_ratio:rate{long}{{slo=\"{n}\"}} > {limit:.6} and rtx_slo:error_ratio:rate{short}{{slo=\"{n}\"}} > {limit:.6})",
                n = slo.name
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn annotations(
    out: &mut String,
    summary: &str,
    description: &str,
    runbook: &str,
    runbook_base: &str,
) {
    let _ = writeln!(out, "        annotations:");
    let _ = writeln!(out, "          summary: {}", q(summary));
    let _ = writeln!(out, "          description: {}", q(description));
    let _ = writeln!(
        out,
        "          runbook_url: {}",
        q(&format!("{runbook_base}#{runbook}"))
    );
}

/// The whole rule file.
pub fn render_rules(rules: &[AlertRule], runbook_base: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Generated by `rtx-engine rules` from the alert definitions in crates/rtx-monitoring/src/alerts.");
    let _ = writeln!(
        out,
        "# Do not edit: change the Rust definitions and regenerate (a test compares this file)."
    );
    let _ = writeln!(out, "groups:");
    let _ = writeln!(out, "  - name: rtx-engine.alerts");
    let _ = writeln!(out, "    rules:");
    for rule in rules {
        let _ = writeln!(out, "      - alert: {}", rule.name);
        let _ = writeln!(out, "        expr: {}", q(&expr(rule)));
        let _ = writeln!(out, "        for: {}", prom_duration(rule.for_duration));
        let _ = writeln!(out, "        labels:");
        let _ = writeln!(out, "          severity: {}", rule.severity.as_str());
        annotations(
            &mut out,
            rule.summary,
            rule.description,
            &rule.runbook_anchor(),
            runbook_base,
        );
    }
    let _ = writeln!(out, "      - alert: EngineDown");
    let _ = writeln!(
        out,
        "        expr: {}",
        q(&format!("up{{job=\"{JOB}\"}} == 0"))
    );
    let _ = writeln!(out, "        for: 1m");
    let _ = writeln!(out, "        labels:");
    let _ = writeln!(out, "          severity: critical");
    annotations(
        &mut out,
        "engine {{ $labels.instance }} is down",
        "Prometheus cannot scrape {{ $labels.instance }}: the process is down or unreachable, so none of its own alerts can fire.",
        "enginedown",
        runbook_base,
    );
    let _ = writeln!(out, "  - name: rtx-engine.slo.recording");
    let _ = writeln!(out, "    rules:");
    for slo in slos() {
        for w in BURN_WINDOWS {
            let _ = writeln!(out, "      - record: rtx_slo:error_ratio:rate{w}");
            let _ = writeln!(out, "        expr: {}", q(&(slo.error_ratio)(w)));
            let _ = writeln!(out, "        labels:");
            let _ = writeln!(out, "          slo: {}", slo.name);
        }
    }
    let _ = writeln!(out, "  - name: rtx-engine.slo.alerts");
    let _ = writeln!(out, "    rules:");
    for slo in slos() {
        for (suffix, pairs, severity, for_) in [
            ("Fast", &FAST_BURN, "critical", "2m"),
            ("Slow", &SLOW_BURN, "warning", "15m"),
        ] {
            let name = format!("{}ErrorBudgetBurn{suffix}", slo.alert);
            let _ = writeln!(out, "      - alert: {name}");
            let _ = writeln!(out, "        expr: {}", q(&burn_expr(&slo, pairs)));
            let _ = writeln!(out, "        for: {for_}");
            let _ = writeln!(out, "        labels:");
            let _ = writeln!(out, "          severity: {severity}");
            let _ = writeln!(out, "          slo: {}", slo.name);
            let speed = if suffix == "Fast" {
                "fast enough to exhaust it within days"
            } else {
                "steadily"
            };
            annotations(
                &mut out,
                &format!("the {} SLO is burning its error budget {speed}", slo.name),
                &format!("SLO: {}. Burn rate above the SRE-workbook threshold on both a long and a short window.", slo.description),
                &name.to_ascii_lowercase(),
                runbook_base,
            );
        }
    }
    out
}

/// One input series of a promtool test: the series selector and its values notation.
type TestSeries = (String, String);

/// `promtool test rules` cases: every alert above its threshold (fires after `for`) and below
/// it (stays silent), with the exact labels and annotations expected.
pub fn render_rule_tests(rules: &[AlertRule], rule_file: &str, runbook_base: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `rtx-engine rule-tests`; run with `promtool test rules` (a test does)."
    );
    let _ = writeln!(
        out,
        "rule_files:\n  - {rule_file}\nevaluation_interval: 1m\ntests:"
    );
    let inst = "instance=\"engine:7999\"";
    for rule in rules {
        for fires in [true, false] {
            let t = rule.threshold;
            let (series, labels): (Vec<TestSeries>, Vec<(&str, &str)>) = match rule.signal {
                Signal::Quantile { metric, by, .. } => {
                    let extra: String = by.iter().map(|b| format!(",{b}=\"X\"")).collect();
                    let (low, high) = if fires {
                        ("0x40", "0+60x40")
                    } else {
                        ("0+60x40", "0+60x40")
                    };
                    (
                        vec![
                            (
                                format!(
                                    "{metric}_bucket{{{inst}{extra},le=\"{}\"}}",
                                    threshold_text(t)
                                ),
                                low.to_owned(),
                            ),
                            (
                                format!(
                                    "{metric}_bucket{{{inst}{extra},le=\"{}\"}}",
                                    threshold_text(t * 4.0)
                                ),
                                high.to_owned(),
                            ),
                            (
                                format!("{metric}_bucket{{{inst}{extra},le=\"+Inf\"}}"),
                                "0+60x40".to_owned(),
                            ),
                        ],
                        by.iter().map(|b| (*b, "X")).collect(),
                    )
                }
                Signal::Share { metric, matching } => {
                    let (label, good, bad) = match matching {
                        super::rules::LabelMatch::Equals(l, v) if v == "true" => (l, "false", v),
                        super::rules::LabelMatch::Equals(l, v) => (l, "filled", v),
                        super::rules::LabelMatch::Prefix(l, _) => (l, "200", "503"),
                    };
                    // `within_target="true"` is the good side of the SLO share, the others the bad.
                    let below = rule.comparison == Comparison::Below;
                    let matched_rate = match (fires, below) {
                        (true, false) => 20,
                        (false, false) => 1,
                        (true, true) => 50,
                        (false, true) => 99,
                    };
                    (
                        vec![
                            (
                                format!("{metric}{{{inst},{label}=\"{bad}\"}}"),
                                format!("0+{matched_rate}x40"),
                            ),
                            (
                                format!("{metric}{{{inst},{label}=\"{good}\"}}"),
                                format!("0+{}x40", 100 - matched_rate),
                            ),
                        ],
                        vec![],
                    )
                }
                Signal::Increase { metric, matching } => {
                    // A series the matcher selects: the value itself, or one with the prefix.
                    let (label, value) = match matching {
                        super::rules::LabelMatch::Equals(l, v) => (l, v.to_owned()),
                        super::rules::LabelMatch::Prefix(l, v) => (l, format!("{v}00")),
                    };
                    let growth = if fires { "0+5x40" } else { "0x40" };
                    (
                        vec![(
                            format!("{metric}{{{inst},{label}=\"{value}\"}}"),
                            growth.to_owned(),
                        )],
                        vec![],
                    )
                }
                Signal::Gauge { metric, by } | Signal::AbsGauge { metric, by } => {
                    let abs = matches!(rule.signal, Signal::AbsGauge { .. });
                    let value = match (rule.comparison, fires) {
                        (Comparison::Above, true) => t * 2.0,
                        (Comparison::Above, false) => t / 2.0,
                        (Comparison::Below, true) => 0.0,
                        (Comparison::Below, false) => t,
                    };
                    let value = if abs { -value } else { value };
                    let extra: String = by.iter().map(|b| format!(",{b}=\"X\"")).collect();
                    (
                        vec![(
                            format!("{metric}{{{inst}{extra}}}"),
                            format!("{}x40", threshold_text(value)),
                        )],
                        by.iter().map(|b| (*b, "X")).collect(),
                    )
                }
                Signal::QuoteAge => (
                    vec![
                        (
                            format!("rtx_lp_connected{{{inst},lp=\"X\"}}"),
                            "1x40".to_owned(),
                        ),
                        (
                            format!("rtx_lp_last_quote_timestamp_seconds{{{inst},lp=\"X\"}}"),
                            if fires {
                                "0x40".to_owned()
                            } else {
                                "0+60x40".to_owned()
                            },
                        ),
                    ],
                    vec![("lp", "X")],
                ),
            };
            let eval = rule.for_duration + Duration::from_secs(15 * 60);
            let _ = writeln!(out, "  - interval: 1m\n    input_series:");
            for (s, v) in &series {
                let _ = writeln!(out, "      - series: {}\n        values: {}", q(s), q(v));
            }
            let _ = writeln!(
                out,
                "    alert_rule_test:\n      - eval_time: {}\n        alertname: {}",
                prom_duration(eval),
                rule.name
            );
            if fires {
                let _ = writeln!(out, "        exp_alerts:\n          - exp_labels:\n              severity: {}\n              instance: \"engine:7999\"", rule.severity.as_str());
                for (k, v) in &labels {
                    let _ = writeln!(out, "              {k}: {}", q(v));
                }
                let fill = |text: &str| {
                    labels.iter().fold(text.to_owned(), |acc, (k, v)| {
                        acc.replace(&format!("{{{{ $labels.{k} }}}}"), v)
                    })
                };
                let _ = writeln!(out, "            exp_annotations:");
                let _ = writeln!(out, "              summary: {}", q(&fill(rule.summary)));
                let _ = writeln!(
                    out,
                    "              description: {}",
                    q(&fill(rule.description))
                );
                let _ = writeln!(
                    out,
                    "              runbook_url: {}",
                    q(&format!("{runbook_base}#{}", rule.runbook_anchor()))
                );
            } else {
                let _ = writeln!(out, "        exp_alerts: []");
            }
        }
    }
    // The burn-rate alerts: every request failing burns the budget at the highest rate; none
    // failing never burns it. Slow burn needs a day of data behind it.
    for slo in slos() {
        let (bad, good, extra_labels): (String, String, &[(&str, &str)]) = match slo.name {
            "order_latency" => (
                format!("rtx_order_slo_orders_total{{{inst},within_target=\"false\"}}"),
                format!("rtx_order_slo_orders_total{{{inst},within_target=\"true\"}}"),
                &[],
            ),
            "order_success" => (
                format!("rtx_orders_total{{{inst},outcome=\"error\"}}"),
                format!("rtx_orders_total{{{inst},outcome=\"filled\"}}"),
                &[],
            ),
            "api_availability" => (
                format!("rtx_http_requests_total{{{inst},status=\"500\"}}"),
                format!("rtx_http_requests_total{{{inst},status=\"200\"}}"),
                &[],
            ),
            _ => (
                format!("rtx_lp_connected{{{inst},lp=\"X\",protocol=\"FIX\"}}"),
                String::new(),
                &[("lp", "X"), ("protocol", "FIX")],
            ),
        };
        for (suffix, severity, eval, samples) in [
            ("Fast", "critical", "80m", 100),
            ("Slow", "warning", "1470m", 1500),
        ] {
            let name = format!("{}ErrorBudgetBurn{suffix}", slo.alert);
            for fires in [true, false] {
                let _ = writeln!(out, "  - interval: 1m\n    input_series:");
                if good.is_empty() {
                    // LP connectivity: the gauge itself, 0 (down) or 1 (up).
                    let _ = writeln!(
                        out,
                        "      - series: {}\n        values: {}",
                        q(&bad),
                        q(&format!("{}x{samples}", if fires { 0 } else { 1 }))
                    );
                } else {
                    let (bad_rate, good_rate) = if fires { (10, 0) } else { (0, 10) };
                    let _ = writeln!(
                        out,
                        "      - series: {}\n        values: {}",
                        q(&bad),
                        q(&format!("0+{bad_rate}x{samples}"))
                    );
                    let _ = writeln!(
                        out,
                        "      - series: {}\n        values: {}",
                        q(&good),
                        q(&format!("0+{good_rate}x{samples}"))
                    );
                }
                let _ = writeln!(
                    out,
                    "    alert_rule_test:\n      - eval_time: {eval}\n        alertname: {name}"
                );
                if fires {
                    let _ = writeln!(out, "        exp_alerts:\n          - exp_labels:\n              severity: {severity}\n              slo: {}\n              instance: \"engine:7999\"", slo.name);
                    for (k, v) in extra_labels {
                        let _ = writeln!(out, "              {k}: {}", q(v));
                    }
                    let speed = if suffix == "Fast" {
                        "fast enough to exhaust it within days"
                    } else {
                        "steadily"
                    };
                    let _ = writeln!(out, "            exp_annotations:");
                    let _ = writeln!(
                        out,
                        "              summary: {}",
                        q(&format!(
                            "the {} SLO is burning its error budget {speed}",
                            slo.name
                        ))
                    );
                    let _ = writeln!(
                        out,
                        "              description: {}",
                        q(&format!("SLO: {}. Burn rate above the SRE-workbook threshold on both a long and a short window.", slo.description))
                    );
                    let _ = writeln!(
                        out,
                        "              runbook_url: {}",
                        q(&format!("{runbook_base}#{}", name.to_ascii_lowercase()))
                    );
                } else {
                    let _ = writeln!(out, "        exp_alerts: []");
                }
            }
        }
    }
    // EngineDown.
    for (up, fires) in [("0x20", true), ("1x20", false)] {
        let _ = writeln!(
            out,
            "  - interval: 1m\n    input_series:\n      - series: {}\n        values: {}",
            q(&format!("up{{job=\"{JOB}\",{inst}}}")),
            q(up)
        );
        let _ = writeln!(
            out,
            "    alert_rule_test:\n      - eval_time: 5m\n        alertname: EngineDown"
        );
        if fires {
            let _ = writeln!(out, "        exp_alerts:\n          - exp_labels:\n              severity: critical\n              job: {JOB}\n              instance: \"engine:7999\"");
            let _ = writeln!(out, "            exp_annotations:\n              summary: \"engine engine:7999 is down\"");
            let _ = writeln!(out, "              description: \"Prometheus cannot scrape engine:7999: the process is down or unreachable, so none of its own alerts can fire.\"");
            let _ = writeln!(
                out,
                "              runbook_url: {}",
                q(&format!("{runbook_base}#enginedown"))
            );
        } else {
            let _ = writeln!(out, "        exp_alerts: []");
        }
    }
    out
}

/// `docs/RUNBOOKS.md`: one section per alert (the `runbook_url` anchors), from the same
/// definitions as the rules.
pub fn render_runbooks(rules: &[AlertRule]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Alert runbooks\n");
    let _ = writeln!(out, "Generated by `rtx-engine runbooks` from the alert definitions (`crates/rtx-monitoring/src/alerts`);");
    let _ = writeln!(out, "every alert's `runbook_url` points at its section here. Thresholds are the defaults; `[alerts.thresholds]`");
    let _ = writeln!(
        out,
        "and `[alerts.for_secs]` in the engine's TOML file override them. `NetExposureHigh` warns at {}% of",
        NET_EXPOSURE_WARN_SHARE * 100.0
    );
    let _ = writeln!(
        out,
        "`trading.max_net_exposure_usd`, so its threshold follows that limit unless overridden.\n"
    );
    let plain = |s: &str| {
        s.replace("{{ $labels.lp }}", "the LP")
            .replace("{{ $labels.account }}", "the account")
            .replace("{{ $labels.symbol }}", "the symbol")
            .replace("{{ $labels.instance }}", "the instance")
    };
    for rule in rules {
        let _ = writeln!(out, "## {}\n", rule.name.to_ascii_lowercase());
        let _ = writeln!(
            out,
            "**{}** ({}, for {}): {}.\n",
            rule.name,
            rule.severity.as_str(),
            prom_duration(rule.for_duration),
            plain(rule.summary)
        );
        let _ = writeln!(out, "{}\n", plain(rule.description));
        let _ = writeln!(out, "PromQL: `{}`\n", expr(rule));
    }
    let _ = writeln!(
        out,
        "## enginedown\n\n**EngineDown** (critical, for 1m): Prometheus cannot scrape an engine.\n"
    );
    let _ = writeln!(out, "Check the pod (restarts, OOM kills), then the network path from Prometheus. While it is down no in-process alert can fire.\n");
    for slo in slos() {
        for (suffix, severity) in [("Fast", "critical"), ("Slow", "warning")] {
            let name = format!("{}ErrorBudgetBurn{suffix}", slo.alert);
            let _ = writeln!(out, "## {}\n", name.to_ascii_lowercase());
            let _ = writeln!(
                out,
                "**{name}** ({severity}): the `{}` SLO ({}) is spending its error budget {}. Find the failing component with the matching in-process alert (latency, errors, LP connectivity), then decide whether to stop risky changes until the budget recovers.\n",
                slo.name,
                slo.description,
                if suffix == "Fast" { "fast enough to exhaust it within days (page)" } else { "steadily (ticket)" }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::default_rules;

    #[test]
    fn every_rule_has_an_expression_with_its_threshold() {
        for rule in default_rules() {
            let e = expr(&rule);
            assert!(
                e.contains(&threshold_text(rule.threshold)),
                "{}: {e}",
                rule.name
            );
        }
        assert_eq!(prom_duration(Duration::from_secs(120)), "2m");
        assert_eq!(prom_duration(Duration::from_secs(30)), "30s");
        assert_eq!(prom_duration(Duration::ZERO), "0s");
    }
}
