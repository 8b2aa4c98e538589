//! Test support shared by the integration tests: start the engine on a free loopback port, find
//! the external tools the test command installs, and fail loudly when one is missing, because a
//! test that skips for want of a tool hides a defect.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

impl Engine {
    /// Starts `binary` with a clean environment plus `env`, listening on a free loopback port,
    /// and waits until it accepts connections.
    ///
    /// # Panics
    /// When it cannot start or does not listen within 20 s.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Engine {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::spawn(binary.to_owned(), env, scratch_dir("engine"), false)
    }

    /// Like [`Engine::start`], with the engine's stdout kept as a pipe for [`Engine::take_stdout`].
    pub fn start_capturing(binary: &str, env: &[(&str, &str)]) -> Engine {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::spawn(binary.to_owned(), env, scratch_dir("engine"), true)
    }

    /// The engine's stdout, when started with [`Engine::start_capturing`] (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Starts the same engine again in the same directory (same database), on a new port.
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
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the engine did not exit within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
            match wait_until_listening(&mut child, addr, Duration::from_secs(20)) {
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

/// Waits until `child` itself has a listening socket on `addr`, or returns how it exited.
///
/// A TCP connect is not proof: it can reach another process that briefly held the port, and
/// then the first real request is refused. The socket table says which process listens.
///
/// # Panics
/// When the process neither listens nor exits within `timeout`.
fn wait_until_listening(
    child: &mut Child,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status);
        }
        if process_listens_on(child.id(), addr) {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not listen on {addr} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// True when process `pid` owns a socket listening on the IPv4 `addr` (from `/proc/net/tcp` and
/// the process's descriptors).
fn process_listens_on(pid: u32, addr: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return false;
    };
    // /proc/net/tcp prints the address as the in-memory u32 in hex, and the port in hex.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    const LISTEN: &str = "0A";
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 9 && fields[1] == wanted && fields[3] == LISTEN)
                .then(|| format!("socket:[{}]", fields[9]))
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

/// A loopback address nobody listens on right now, never the same one twice in a process.
///
/// Asking the kernel for port 0 and releasing it races: two tests running at once can be handed
/// the same just-released port, and then one engine talks to the other's. Ports here come from
/// a per-process sequence (starting at an offset derived from the process id), each checked free.
///
/// # Panics
/// When no port in the range is free.
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Below Linux's ephemeral range (32768 and up by default), so an outgoing connection's
    // source port never takes the port between this check and the server's bind.
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    let start = (std::process::id() * 7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (start + n) % SPAN;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port between {LOW} and {}", LOW + SPAN)
}

/// Writes `toml` to `rtx.toml` in a fresh scratch directory; returns the directory (remove it
/// when done) and the file's path, ready for `RTX_CONFIG`.
///
/// # Panics
/// When the file cannot be written.
pub fn config_file(label: &str, toml: &str) -> (PathBuf, String) {
    let dir = scratch_dir(label);
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

/// One sample of a Prometheus text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Sample name (with `_bucket`, `_sum`, … where the type adds one).
    pub name: String,
    /// Labels in exposition order, unescaped.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

/// Parses the samples of a Prometheus text exposition (comments skipped).
///
/// # Panics
/// On a line that is not a sample: the exposition is what is under test.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_sample_line)
        .collect()
}

fn parse_sample_line(line: &str) -> Sample {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => panic!("not a sample line: {line}"),
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut key = String::new();
        let end;
        loop {
            let Some((i, c)) = chars.next() else {
                panic!("unterminated labels: {line}")
            };
            match c {
                '}' => {
                    end = i + 1;
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(
                        chars.next().map(|(_, c)| c),
                        Some('"'),
                        "label value must be quoted: {line}"
                    );
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(other) => value.push(other),
                                None => panic!("dangling escape: {line}"),
                            },
                            Some('"') => break,
                            Some(other) => value.push(other),
                            None => panic!("unterminated label value: {line}"),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        rest = &body[end..];
    }
    let value = rest
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in: {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// Sum of every sample named `name` whose labels include all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse_samples(text)
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
        .sum()
}

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
        let cluster = PgCluster {
            child,
            dir,
            port,
            url: format!("postgres://rtx@127.0.0.1:{port}/postgres"),
        };
        cluster.wait_ready();
        cluster
    }

    fn spawn_server(dir: &std::path::Path, port: u16) -> Child {
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

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(pg_bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "rtx"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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

    /// Starts the stopped server again on the same port and data; waits until it is ready.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_with_escaped_labels() {
        let text = "# HELP x y\nx_total{a=\"q\\\"uo\\\\te\",b=\"n\\nl\"} 3\nplain 1.5\ninf_bucket{le=\"+Inf\"} +Inf\n";
        let samples = parse_samples(text);
        assert_eq!(
            samples[0].labels,
            vec![
                ("a".into(), "q\"uo\\te".into()),
                ("b".into(), "n\nl".into())
            ]
        );
        assert_eq!(samples[1].value, 1.5);
        assert_eq!(metric_sum(text, "x_total", &[("b", "n\nl")]), 3.0);
    }

    #[test]
    fn only_the_process_holding_the_listener_counts_as_listening() {
        let addr = free_port();
        let me = std::process::id();
        assert!(!process_listens_on(me, addr), "nobody listens yet");
        let listener = TcpListener::bind(addr).expect("bind");
        assert!(process_listens_on(me, addr));
        let mut other = Command::new("sleep").arg("5").spawn().expect("sleep");
        assert!(
            !process_listens_on(other.id(), addr),
            "another process does not own this listener"
        );
        let _ = other.kill();
        let _ = other.wait();
        // A connected socket on the port is not a listener.
        let client = TcpStream::connect(addr).expect("connect");
        drop(listener);
        assert!(!process_listens_on(me, addr));
        drop(client);
    }
}

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
    /// When the binary is missing or it is not ready within 20 s.
    pub fn start(addr: SocketAddr) -> Alertmanager {
        Self::spawn(addr, None)
    }

    /// Starts one with a `--web.config.file` (TLS, basic auth) and waits until it listens.
    pub fn start_with_web_config(addr: SocketAddr, web_config: &std::path::Path) -> Alertmanager {
        Self::spawn(addr, Some(web_config))
    }

    fn spawn(addr: SocketAddr, web_config: Option<&std::path::Path>) -> Alertmanager {
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
        let pid = child.id();
        let am = Alertmanager {
            child,
            dir,
            url: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Behind TLS the plain readiness probe cannot speak to it: wait for its socket instead.
        let ready = || {
            if web_config.is_some() {
                process_listens_on(pid, addr)
            } else {
                http_get_ok(addr, "/-/ready")
            }
        };
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "alertmanager not ready within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
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

/// A minimal `GET` over a fresh connection: true on a 2xx answer.
pub fn http_get_ok(addr: SocketAddr, path: &str) -> bool {
    http_get(addr, path).is_some_and(|(status, _)| (200..300).contains(&status))
}

/// A minimal `GET`: status and body, `None` when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A real Prometheus (Debian's `prometheus`) on a loopback port scraping `targets` every second
/// as job `rtx-engine`, evaluating `rule_file` if given; stopped and deleted when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// Its base URL.
    pub url: String,
}

impl Prometheus {
    /// Starts one and waits until it is ready.
    ///
    /// # Panics
    /// When the binary is missing or it is not ready within 30 s.
    pub fn start(targets: &[SocketAddr], rule_file: Option<&std::path::Path>) -> Prometheus {
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
        let addr = free_port();
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            child,
            dir,
            url: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_get_ok(addr, "/-/ready") {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
