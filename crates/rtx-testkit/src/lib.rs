//! Test support shared by the integration tests: start the engine on a free loopback port, find
//! the external tools the test command installs, and fail loudly when one is missing, because a
//! test that skips for want of a tool hides a defect.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running engine process, killed when dropped.
#[derive(Debug)]
pub struct Engine {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Engine {
    /// Starts `binary` with a clean environment plus `env`, listening on a free loopback port,
    /// and waits until it accepts connections.
    ///
    /// # Panics
    /// When it cannot start or does not listen within 20 s.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Engine {
        let addr = free_port();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RTX_LISTEN_ADDR", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the engine");
        let engine = Engine { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the engine did not listen on {addr} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        engine
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nobody listens on right now.
///
/// # Panics
/// When no ephemeral port can be bound.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
}

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
