//! A real OpenTelemetry collector: `rotel` (from PyPI), receiving OTLP/HTTP on a loopback port
//! and sending everything on, over OTLP/HTTP protobuf (gzip-compressed, its default), to a
//! receiver the test runs. What the test reads back is what a collector accepted and re-encoded, not what the
//! engine sent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::engine::scratch_dir;
use crate::ports::{free_port, wait_until_listening};

/// A running `rotel`, stopped and its directory removed when dropped.
#[derive(Debug)]
pub struct Rotel {
    child: Child,
    dir: PathBuf,
    /// Its OTLP/HTTP base URL, for the exporter (`/v1/traces` is appended).
    pub endpoint: String,
}

/// The collector's binary from `RTX_ROTEL`, which the test command sets.
///
/// # Panics
/// When `RTX_ROTEL` is unset or does not run.
fn binary() -> String {
    crate::tools::installed_tool("RTX_ROTEL", "the rotel collector")
}

impl Rotel {
    /// Starts one that forwards every trace to the OTLP/HTTP receiver at `forward_to`, and
    /// waits until it listens. It batches for at most 100 ms, so a span reaches the receiver
    /// soon after the collector has it.
    ///
    /// # Panics
    /// When the binary is missing, or the collector neither listens within 20 s nor exits
    /// after three tries on fresh ports.
    pub fn start(forward_to: SocketAddr) -> Rotel {
        let binary = binary();
        let dir = scratch_dir("rotel");
        for _ in 0..3 {
            let http = free_port();
            // Its gRPC receiver cannot be turned off; a port of its own keeps it from
            // clashing with another collector's default.
            let grpc = free_port();
            let log = std::fs::File::create(dir.join("rotel.log")).expect("rotel log");
            let err = log.try_clone().expect("rotel log");
            let mut child = Command::new(&binary)
                .arg("start")
                .arg(format!("--otlp-http-endpoint={http}"))
                .arg(format!("--otlp-grpc-endpoint={grpc}"))
                .args(["--exporter", "otlp", "--otlp-exporter-protocol", "http"])
                .arg(format!("--otlp-exporter-endpoint=http://{forward_to}"))
                .args(["--batch-timeout", "100ms"])
                .arg(format!("--pid-file={}", dir.join("rotel.pid").display()))
                .arg(format!(
                    "--log-file={}",
                    dir.join("rotel-agent.log").display()
                ))
                .stdout(log)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("start {binary}: {e}"));
            match wait_until_listening(&mut child, http, Duration::from_secs(20), "rotel") {
                Ok(()) => {
                    return Rotel {
                        child,
                        dir,
                        endpoint: format!("http://{http}"),
                    }
                }
                Err(_) => continue, // another process took a port between the check and the bind
            }
        }
        let log = std::fs::read_to_string(dir.join("rotel.log")).unwrap_or_default();
        panic!("rotel exited three times before listening:\n{log}")
    }

    /// What the collector printed so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rotel.log")).unwrap_or_default()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
