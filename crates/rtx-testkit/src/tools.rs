//! External tools the tests run (promtool, the Python Prometheus client, PostgreSQL's and
//! Alertmanager's binaries, openssl, sqlite3): finding them, failing with the fix when one is
//! missing, and feeding them input. A test never skips for want of a tool.

use std::io::Write;
use std::process::{Command, Stdio};

/// The path of an external tool: `env_var` if set, else `default`.
///
/// # Panics
/// When the tool cannot be run, with the fix in the message.
pub fn tool(env_var: &str, default: &str) -> String {
    let path = std::env::var(env_var).unwrap_or_else(|_| default.to_owned());
    let found = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok(),
        "`{path}` is not installed: run the README's test command (scripts/test.sh), which installs it, or set {env_var}"
    );
    path
}

/// The path of a tool the test command installs from PyPI into a virtual environment and names
/// in `env_var` (there is no system default to fall back on).
///
/// # Panics
/// When `env_var` is unset or the program does not run, naming `what` and the fix.
pub fn installed_tool(env_var: &str, what: &str) -> String {
    let path = std::env::var(env_var).unwrap_or_else(|_| {
        panic!(
            "{env_var} is not set: run the README's test command (scripts/test.sh), which installs \
             {what} from PyPI and sets {env_var} to its program"
        )
    });
    let runs = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        runs,
        "{env_var}={path} does not run: reinstall it with scripts/test.sh"
    );
    path
}

/// Runs `program args`, feeding `stdin`; returns success and everything it printed.
///
/// # Panics
/// When the program cannot be started.
pub fn run_with_input(program: &str, args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    // A tool that exits early closes its stdin; its report says why.
    let _ = child.stdin.take().map(|mut s| s.write_all(stdin));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {program}: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// `promtool check metrics` on an exposition: success and its report (empty when clean).
pub fn promtool_check_metrics(exposition: &[u8]) -> (bool, String) {
    run_with_input(
        &tool("RTX_PROMTOOL", "promtool"),
        &["check", "metrics"],
        exposition,
    )
}

/// Parses an exposition with the official Python client's parser (`text` for the Prometheus
/// format, `openmetrics` for OpenMetrics) and returns its summary: one line per sample,
/// `name labels value exemplar`, or the parser's error.
pub fn python_parse(format: &str, exposition: &[u8]) -> (bool, String) {
    const SCRIPT: &str = r#"
import sys
fmt = sys.argv[1]
if fmt == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        ex = ""
        if getattr(s, "exemplar", None):
            ex = "exemplar=" + s.exemplar.labels["trace_id"] + "/" + s.exemplar.labels["span_id"]
        print(family.type, s.name, sorted(s.labels.items()), s.value, ex)
"#;
    run_with_input(
        &tool("RTX_PYTHON", "/usr/bin/python3"),
        &["-c", SCRIPT, format],
        exposition,
    )
}
