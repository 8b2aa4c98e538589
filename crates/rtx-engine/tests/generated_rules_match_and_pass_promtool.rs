//! The checked-in Prometheus rule file and its unit tests are exactly what the engine
//! generates from its alert definitions, `promtool check rules` accepts the rules, and
//! `promtool test rules` proves every alert fires above its threshold and stays quiet below.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/prometheus")
        .join(file)
}

#[test]
fn the_checked_in_rule_file_is_the_generated_one() {
    for (subcommand, file) in [
        ("rules", "prometheus_alerts.yml"),
        ("rule-tests", "prometheus_alerts_test.yml"),
    ] {
        let checked_in = std::fs::read_to_string(deploy(file)).unwrap();
        assert!(
            checked_in == rtx_testkit::engine_output(env!("CARGO_BIN_EXE_rtx-engine"), subcommand),
            "deploy/prometheus/{file} is stale: run `cargo run -p rtx-engine -- {subcommand} > deploy/prometheus/{file}`"
        );
    }
}

#[test]
fn promtool_accepts_the_rules_and_every_alert_passes_its_unit_tests() {
    let promtool = rtx_testkit::tool("RTX_PROMTOOL", "promtool");
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(deploy("prometheus_alerts.yml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() && report.contains("SUCCESS"),
        "promtool check rules:\n{report}"
    );
    let test = Command::new(&promtool)
        .args(["test", "rules", "prometheus_alerts_test.yml"])
        .current_dir(deploy(""))
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    assert!(
        test.status.success() && report.contains("SUCCESS"),
        "promtool test rules:\n{report}"
    );
    let tests = std::fs::read_to_string(deploy("prometheus_alerts_test.yml")).unwrap();
    let rules = std::fs::read_to_string(deploy("prometheus_alerts.yml")).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "{alert} has no firing test"
        );
        assert!(
            tests.contains(&format!("alertname: {alert}\n        exp_alerts: []")),
            "{alert} has no quiet test"
        );
    }
}
