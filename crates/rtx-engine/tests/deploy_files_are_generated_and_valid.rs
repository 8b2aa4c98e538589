//! The deployment files: the dashboard and the PrometheusRule equal what the engine generates,
//! `promtool check config` and `amtool check-config` accept the Prometheus and Alertmanager
//! configurations, and the Kubernetes manifests parse and probe the paths and port the engine
//! serves.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn repo(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file)
}

fn checked(program: &str, env_var: &str, args: &[&str]) {
    let tool = rtx_testkit::tool(env_var, program);
    let out = Command::new(tool)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.contains("SUCCESS"),
        "{program} {args:?}:\n{report}"
    );
}

#[test]
fn the_dashboard_prometheus_rule_and_metric_catalogue_are_the_generated_ones() {
    for (subcommand, file) in [
        ("dashboard", "deploy/grafana/grafana_dashboard.json"),
        ("prometheus-rule", "deploy/kubernetes/prometheusrule.yaml"),
    ] {
        let checked_in = std::fs::read_to_string(repo(file)).unwrap();
        assert!(
            checked_in == rtx_testkit::engine_output(env!("CARGO_BIN_EXE_rtx-engine"), subcommand),
            "{file} is stale: run `cargo run -p rtx-engine -- {subcommand} > {file}`"
        );
    }
}

#[test]
fn prometheus_and_alertmanager_accept_their_configurations() {
    checked(
        "promtool",
        "RTX_PROMTOOL",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
    );
    checked(
        "amtool",
        "RTX_AMTOOL",
        &["check-config", "deploy/alertmanager/alertmanager.yml"],
    );
}

#[test]
fn kubernetes_manifests_parse_and_probe_what_the_engine_serves() {
    const SCRIPT: &str = r#"
import sys, yaml, json
docs = []
for f in sys.argv[1:]:
    docs += [d for d in yaml.safe_load_all(open(f)) if d]
print(json.dumps(docs))
"#;
    let files: Vec<String> = [
        "deployment.yaml",
        "service.yaml",
        "servicemonitor.yaml",
        "prometheusrule.yaml",
        "kustomization.yaml",
    ]
    .iter()
    .map(|f| {
        repo(&format!("deploy/kubernetes/{f}"))
            .to_string_lossy()
            .into_owned()
    })
    .collect();
    let python = rtx_testkit::tool("RTX_PYTHON", "/usr/bin/python3");
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "YAML does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"];
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    // Probes and scrapes go to the management listener the container's variables configure.
    let container = &pod["spec"]["containers"][0];
    let env_value = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        env_value("RTX_MANAGEMENT_ADDR").as_deref(),
        Some("0.0.0.0:7998")
    );
    assert_eq!(annotations["prometheus.io/port"], "7998");
    let ports = container["ports"].as_array().unwrap();
    let port_named = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].clone())
    };
    assert_eq!(port_named("http"), Some(7999.into()));
    assert_eq!(port_named("management"), Some(7998.into()));
    for (probe, path) in [
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
        ("startupProbe", "/health"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        let port = &container[probe]["httpGet"]["port"];
        assert!(port == 7998 || port == "management", "{probe} port {port}");
    }
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("a Service");
    let service_ports = service["spec"]["ports"].as_array().unwrap();
    for (name, port) in [("http", 7999), ("management", 7998)] {
        assert!(
            service_ports
                .iter()
                .any(|p| p["name"] == name && p["port"] == port),
            "the Service exposes {name} on {port}"
        );
    }
    let monitor = docs
        .iter()
        .find(|d| d["kind"] == "ServiceMonitor")
        .expect("a ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "management");
    let rule = docs
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let groups = rule["spec"]["groups"].as_array().unwrap();
    let alerts = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r.get("alert").is_some())
        .count();
    assert!(alerts >= 16, "{alerts} alerts in the PrometheusRule");
}
