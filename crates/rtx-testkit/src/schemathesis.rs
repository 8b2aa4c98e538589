//! `schemathesis` (from PyPI), the property-based API fuzzer: it reads an OpenAPI document,
//! generates requests that follow it and requests that break it, and checks every answer
//! against the document (status codes, content types, headers, body schemas) and against
//! HTTP's rules (no 5xx, invalid input refused, valid input accepted, 405 with `Allow`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine::scratch_dir;

/// The fuzzer's command-line program from `RTX_SCHEMATHESIS`, which the test command sets.
///
/// # Panics
/// When `RTX_SCHEMATHESIS` is unset or does not run.
pub fn schemathesis() -> String {
    crate::tools::installed_tool("RTX_SCHEMATHESIS", "the schemathesis fuzzer")
}

/// How a fuzzer run ended.
#[derive(Debug)]
pub struct FuzzReport {
    /// True when it found no failure.
    pub passed: bool,
    /// Everything it printed.
    pub output: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `st run` with `args` (the schema's location among them) and `config` as its TOML
/// configuration file, killed after `limit`. The output goes to a file rather than a pipe, so
/// a chatty run can never block on a full pipe.
///
/// # Panics
/// When the fuzzer is missing or cannot be started, or runs past `limit`.
pub fn run_schemathesis(config: &str, args: &[&str], limit: Duration) -> FuzzReport {
    let program = schemathesis();
    let dir = scratch_dir("schemathesis");
    let config_path = dir.join("schemathesis.toml");
    std::fs::write(&config_path, config).expect("write the fuzzer's configuration");
    let log_path = dir.join("output.txt");
    let log = std::fs::File::create(&log_path).expect("create the fuzzer's log");
    let start = Instant::now();
    let mut child = Command::new(&program)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config_path)
        .arg("run")
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("share the log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the fuzzer") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = read(&log_path);
    let _ = std::fs::remove_dir_all(&dir);
    let Some(status) = status else {
        panic!("schemathesis ran past {limit:?}; its output so far:\n{output}");
    };
    FuzzReport {
        passed: status.success(),
        output,
        elapsed: start.elapsed(),
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}
