//! A real Prometheus (Debian's `prometheus`) scraping engines on loopback, for the dashboard and
//! rule tests: its config, a free port of its own, readiness, and cleanup.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::engine::scratch_dir;
use crate::http::http_get_ok;
use crate::ports::{free_port, wait_until_listening};
use crate::tools::tool;
use crate::wait::Poll;

/// A real Prometheus (Debian's `prometheus`) on a loopback port scraping `targets` every second
/// as job `rtx-engine`, evaluating `rule_file` if given; stopped and deleted when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// Its base URL.
    pub url: String,
}

/// How Prometheus asks for and stores histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrapeMode {
    /// The default: text or OpenMetrics, histograms stored as classic `_bucket` series.
    Classic,
    /// `--enable-feature=native-histograms`: Prometheus asks for protobuf first and keeps only
    /// the native part of a histogram that has one.
    Native,
}

impl Prometheus {
    /// Starts one in the default (classic) mode and waits until it is ready.
    ///
    /// # Panics
    /// When the binary is missing or it is not ready within 30 s.
    pub fn start(targets: &[SocketAddr], rule_file: Option<&Path>) -> Prometheus {
        Prometheus::start_in(ScrapeMode::Classic, targets, rule_file)
    }

    /// Starts one scraping in `mode` and waits until it is ready.
    ///
    /// # Panics
    /// When the binary is missing or it is not ready within 30 s.
    pub fn start_in(
        mode: ScrapeMode,
        targets: &[SocketAddr],
        rule_file: Option<&Path>,
    ) -> Prometheus {
        let binary = tool("RTX_PROMETHEUS", "prometheus");
        let dir = scratch_dir("prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let rules = rule_file
            .map(|r| format!("rule_files:\n  - {}\n", r.display()))
            .unwrap_or_default();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rules}scrape_configs:\n  - job_name: rtx-engine\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
        // As with the engine: a port found free can be taken before Prometheus binds it, and
        // then it exits and is started again on another.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let addr = free_port();
            let mut child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .args((mode == ScrapeMode::Native).then_some("--enable-feature=native-histograms"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus");
            let timeout = Duration::from_secs(30);
            match wait_until_listening(&mut child, addr, timeout, "prometheus") {
                Ok(()) => {
                    let prometheus = Prometheus {
                        child,
                        dir,
                        url: format!("http://{addr}"),
                    };
                    Poll::up_to(timeout)
                        .every(Duration::from_millis(100))
                        .until("prometheus ready", || http_get_ok(addr, "/-/ready"));
                    return prometheus;
                }
                Err(status) if attempt < ATTEMPTS => {
                    eprintln!("prometheus exited ({status}) before listening on {addr}; retrying");
                    let _ = std::fs::remove_dir_all(dir.join("data"));
                }
                Err(status) => panic!("prometheus exited ({status}) before listening on {addr}"),
            }
        }
        unreachable!("the loop returns or panics")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
