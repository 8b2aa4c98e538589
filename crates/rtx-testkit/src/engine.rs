//! The engine as a child process: its scratch directory and config file, starting it on a free
//! port and waiting until it holds its listening socket, restarting and stopping it, and its
//! one-shot subcommands. Talking to it over HTTP lives in `client`, `orders` and `probes`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::http::http_get;
use crate::ports::{free_port, wait_until_listening};
use crate::wait::Poll;

/// A running engine process, killed when dropped, with its own scratch directory as working
/// directory (so its default SQLite file never lands in the source tree).
#[derive(Debug)]
pub struct Engine {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its working directory.
    pub dir: PathBuf,
    binary: String,
    env: Vec<(String, String)>,
    capture: bool,
}

/// A fresh, empty scratch directory under the system temp dir.
///
/// # Panics
/// When the directory cannot be created.
pub fn scratch_dir(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rtx-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A fresh scratch directory ([`scratch_dir`]) removed when dropped, so that a test that
/// panics before its own clean-up leaves nothing behind either (failed runs had left dozens).
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh, empty directory named after `label`.
    ///
    /// # Panics
    /// When the directory cannot be created.
    pub fn new(label: &str) -> Self {
        Self(scratch_dir(label))
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `toml` to `rtx.toml` in a fresh scratch directory; returns the directory (removed when
/// dropped) and the file's path, ready for `RTX_CONFIG`.
///
/// # Panics
/// When the file cannot be written.
pub fn config_file(label: &str, toml: &str) -> (ScratchDir, String) {
    let dir = ScratchDir::new(label);
    let path = dir.join("rtx.toml");
    std::fs::write(&path, toml).expect("write the engine's config file");
    (dir, path.to_string_lossy().into_owned())
}

/// What `binary subcommand` prints, with an empty environment (the defaults).
///
/// # Panics
/// When the subcommand fails.
pub fn engine_output(binary: &str, subcommand: &str) -> String {
    let out = Command::new(binary)
        .arg(subcommand)
        .env_clear()
        .output()
        .expect("run the engine");
    assert!(
        out.status.success(),
        "rtx-engine {subcommand} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

impl Engine {
    /// Starts `binary` with a clean environment plus `env`, listening on a free loopback port,
    /// and waits until it holds its listening socket.
    ///
    /// # Panics
    /// When it cannot start or does not listen within 20 s.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Engine {
        Self::spawn(binary.to_owned(), owned(env), scratch_dir("engine"), false)
    }

    /// Like [`Engine::start`], with the engine's stdout kept as a pipe for [`Engine::take_stdout`].
    ///
    /// # Panics
    /// As [`Engine::start`].
    pub fn start_capturing(binary: &str, env: &[(&str, &str)]) -> Engine {
        Self::spawn(binary.to_owned(), owned(env), scratch_dir("engine"), true)
    }

    /// The engine's stdout, when started with [`Engine::start_capturing`] (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Starts the same engine again in the same directory (same database). Always on a new
    /// port: the old one may be taken by someone else the moment the old process lets go of it.
    ///
    /// # Panics
    /// As [`Engine::start`].
    pub fn restart(mut self) -> Engine {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (binary, env, dir) = (
            std::mem::take(&mut self.binary),
            std::mem::take(&mut self.env),
            self.dir.clone(),
        );
        // Keep the directory: the new process needs it.
        self.dir = PathBuf::new();
        Self::spawn(binary, env, dir, self.capture)
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit code.
    ///
    /// # Panics
    /// When the process does not exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let child = &mut self.child;
        Poll::up_to(timeout)
            .every(Duration::from_millis(20))
            .until_ok("the engine to exit after SIGTERM", || {
                match child.try_wait() {
                    Ok(Some(status)) => Ok(status.code()),
                    _ => Err(""),
                }
            })
    }

    fn spawn(binary: String, env: Vec<(String, String)>, dir: PathBuf, capture: bool) -> Engine {
        // A port found free can still be taken before the engine binds it; the engine then exits
        // with a bind error and is started again on another port.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let addr = free_port();
            let mut command = Command::new(&binary);
            command
                .current_dir(&dir)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("RTX_LISTEN_ADDR", addr.to_string())
                .stdin(Stdio::null())
                .stdout(if capture {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stderr(Stdio::inherit());
            for (k, v) in &env {
                command.env(k, v);
            }
            let mut child = command.spawn().expect("start the engine");
            match wait_until_listening(&mut child, addr, Duration::from_secs(20), "the engine") {
                Ok(()) => {
                    return Engine {
                        child,
                        addr,
                        dir,
                        binary,
                        env,
                        capture,
                    }
                }
                Err(status) if attempt < ATTEMPTS => {
                    eprintln!("the engine exited ({status}) before listening on {addr}; retrying");
                }
                Err(status) => {
                    panic!("the engine exited ({status}) before listening on {addr}")
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// One scrape of `/metrics` (Prometheus text), over a plain blocking connection: usable
    /// from async tests too, since the engine is another process.
    ///
    /// # Panics
    /// When the engine does not answer 200.
    pub fn scrape(&self) -> String {
        match http_get(self.addr, "/metrics") {
            Some((200, body)) => body,
            other => panic!("scrape of {} failed: {other:?}", self.addr),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
