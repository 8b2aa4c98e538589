//! A real Alertmanager (Debian's `prometheus-alertmanager`) for the notification tests: started
//! on a given loopback address, optionally behind a web config (TLS, basic auth), and removed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::engine::scratch_dir;
use crate::http::http_get_ok;
use crate::ports::wait_until_listening;
use crate::tools::tool;
use crate::wait::Poll;

/// A real Alertmanager (Debian's `prometheus-alertmanager`) on a loopback port, clustering
/// off, stopped and deleted when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    child: Child,
    dir: PathBuf,
    /// Its base URL.
    pub url: String,
}

impl Alertmanager {
    /// Starts one on `addr` and waits until it is ready.
    ///
    /// # Panics
    /// When the binary is missing, it exits (another process holds `addr`), or it is not ready
    /// within 20 s.
    pub fn start(addr: SocketAddr) -> Alertmanager {
        Self::spawn(addr, None)
    }

    /// Starts one with a `--web.config.file` (TLS, basic auth) and waits until it listens.
    ///
    /// # Panics
    /// As [`Alertmanager::start`].
    pub fn start_with_web_config(addr: SocketAddr, web_config: &Path) -> Alertmanager {
        Self::spawn(addr, Some(web_config))
    }

    fn spawn(addr: SocketAddr, web_config: Option<&Path>) -> Alertmanager {
        let binary = tool("RTX_ALERTMANAGER", "/usr/bin/prometheus-alertmanager");
        let dir = scratch_dir("alertmanager");
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\n  group_wait: 0s\nreceivers:\n  - name: \"null\"\n",
        )
        .expect("write config");
        let mut command = Command::new(binary);
        if let Some(web) = web_config {
            command.arg(format!("--web.config.file={}", web.display()));
        }
        let child = command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let mut am = Alertmanager {
            child,
            dir,
            url: format!("http://{addr}"),
        };
        // Its own socket first, so a stranger on the port never passes for it; the callers
        // chose the address (the engine is configured with it), so there is no retrying on
        // another one.
        let timeout = Duration::from_secs(20);
        if let Err(status) = wait_until_listening(&mut am.child, addr, timeout, "alertmanager") {
            panic!("alertmanager exited ({status}) before listening on {addr}: is the port taken?");
        }
        // Behind TLS the plain readiness probe cannot speak to it: its socket has to do.
        if web_config.is_none() {
            Poll::up_to(timeout)
                .every(Duration::from_millis(100))
                .until("alertmanager ready", || http_get_ok(addr, "/-/ready"));
        }
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
