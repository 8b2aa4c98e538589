//! A throwaway PostgreSQL cluster from Debian's packages: initdb, start, stop and resume on the
//! same port (for outage tests), and cleanup. Runs the server as `postgres` when we are root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::engine::scratch_dir;
use crate::ports::{free_port, process_listens_on};
use crate::wait::Poll;

/// A throwaway PostgreSQL cluster on a free loopback port, stopped and deleted when dropped.
#[derive(Debug)]
pub struct PgCluster {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// `postgres://…` URL of its `postgres` database.
    pub url: String,
}

fn pg_bin(tool: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("RTX_PG_BIN") {
        return PathBuf::from(dir).join(tool);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join(tool).exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    let dir = versions.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: run the README's test command (scripts/test.sh), which installs Debian's postgresql, or set RTX_PG_BIN")
    });
    dir.join(tool)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_command(tool: &str) -> Command {
    let bin = pg_bin(tool);
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

impl PgCluster {
    /// Initialises and starts a cluster; waits until it accepts connections.
    ///
    /// # Panics
    /// When PostgreSQL is missing or does not start within 30 s.
    pub fn start() -> PgCluster {
        let dir = scratch_dir("pg");
        if running_as_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "chown the PostgreSQL scratch directory to the postgres user"
            );
        }
        let data = dir.join("data");
        let init = pg_command("initdb")
            .args(["-U", "rtx", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port().port();
        let child = Self::spawn_server(&dir, port);
        let mut cluster = PgCluster {
            child,
            dir,
            port,
            url: format!("postgres://rtx@127.0.0.1:{port}/postgres"),
        };
        cluster.wait_ready();
        cluster
    }

    fn spawn_server(dir: &Path, port: u16) -> Child {
        pg_command("postgres")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres")
    }

    /// The postmaster's process id, from its pid file (the child may be `runuser`).
    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Waits until this cluster's own postmaster listens on the port and accepts connections.
    /// Checking the owner matters on [`PgCluster::resume`]: the port was free while the server
    /// was down, and a stranger answering on it must not pass for the database.
    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        Poll::up_to(Duration::from_secs(30))
            .every(Duration::from_millis(100))
            .until_ok(
                &format!("PostgreSQL to accept connections on {addr}"),
                || {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!("PostgreSQL exited ({status}) before accepting connections on {addr}: is the port taken?");
                    }
                    let ours = self
                        .postmaster_pid()
                        .is_some_and(|pid| process_listens_on(pid, addr));
                    let ready = ours
                        && Command::new(pg_bin("pg_isready"))
                            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "rtx"])
                            .stdout(Stdio::null())
                            .status()
                            .is_ok_and(|s| s.success());
                    if ready {
                        Ok(())
                    } else {
                        Err("")
                    }
                },
            );
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its data.
    pub fn stop(&mut self) {
        let _ = pg_command("pg_ctl")
            .args(["stop", "-m", "fast", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// Starts the stopped server again on the same port and data (clients know only that
    /// port); waits until it is ready.
    ///
    /// # Panics
    /// When it does not accept connections within 30 s, or exits first (another process took
    /// the port while it was down).
    pub fn resume(&mut self) {
        self.child = Self::spawn_server(&self.dir, self.port);
        self.wait_ready();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // `runuser` may not pass a kill on to the server it started, so ask PostgreSQL itself.
        let _ = pg_command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
