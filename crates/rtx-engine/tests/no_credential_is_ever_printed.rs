//! No credential is ever printed: the metrics and admin bearer tokens, the database password,
//! the Alertmanager basic-auth password and the Alertmanager bearer token, each set to a marker
//! of its own, appear neither in `check-config`'s output (valid or not) nor in the running
//! engine's log, nor in `/health`, `/ready` (both formats) or `/alerts`, even after an alert
//! notification to an unreachable Alertmanager has failed and been logged.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtx_testkit::{
    blocking_client, free_port, lp_admin, wait_for_ready_status, wait_until, Engine,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

const METRICS_TOKEN: &str = "mtok-4c1f9e-marker";
const ADMIN_TOKEN: &str = "atok-8b27d0-marker";
const DATABASE_PASSWORD: &str = "dbpw-5e93a1-marker";
const ALERTMANAGER_PASSWORD: &str = "ampw-1d6c44-marker";
const ALERTMANAGER_BEARER: &str = "ambt-9a05f7-marker";

const MARKERS: [&str; 5] = [
    METRICS_TOKEN,
    ADMIN_TOKEN,
    DATABASE_PASSWORD,
    ALERTMANAGER_PASSWORD,
    ALERTMANAGER_BEARER,
];

fn assert_no_credential(place: &str, text: &str) {
    for marker in MARKERS {
        assert!(
            !text.contains(marker),
            "{marker} printed in {place}:\n{text}"
        );
    }
}

/// An Alertmanager URL with basic-auth credentials, on a loopback port nobody listens on.
fn alertmanager_url() -> String {
    format!("http://am-user:{ALERTMANAGER_PASSWORD}@{}", free_port())
}

/// A PostgreSQL URL with a password: `check-config` only checks it, never connects.
fn database_url() -> String {
    format!("postgres://rtx:{DATABASE_PASSWORD}@127.0.0.1:5432/rtx")
}

/// `rtx-engine check-config` with only `env`: its exit status and stdout and stderr together.
fn check_config(env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(ENGINE)
        .arg("check-config")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run rtx-engine check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_config_shows_every_credential_redacted() {
    // Every credential from the environment, the bearer token from the file (its only source).
    let (_dir, cfg) = rtx_testkit::config_file(
        "no-credential-env",
        &format!("[alerts]\nalertmanager_bearer_token = \"{ALERTMANAGER_BEARER}\"\n"),
    );
    let (database, alertmanager) = (database_url(), alertmanager_url());
    let (ok, text) = check_config(&[
        ("RTX_CONFIG", &cfg),
        ("RTX_METRICS_TOKEN", METRICS_TOKEN),
        ("RTX_ADMIN_TOKEN", ADMIN_TOKEN),
        ("RTX_DATABASE_URL", &database),
        ("RTX_ALERTMANAGER_URL", &alertmanager),
    ]);
    assert!(ok, "check-config failed:\n{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(
        text.contains("postgres://rtx:<redacted>@127.0.0.1:5432/rtx")
            && text.contains("http://am-user:<redacted>@"),
        "the URLs are shown, with their passwords redacted:\n{text}"
    );
    assert_no_credential("check-config (environment)", &text);

    // Every credential from the file.
    let (_dir, cfg) = rtx_testkit::config_file(
        "no-credential-file",
        &format!(
            "metrics_token = \"{METRICS_TOKEN}\"\n\
             admin_token = \"{ADMIN_TOKEN}\"\n\
             database_url = \"{database}\"\n\
             alertmanager_url = \"{alertmanager}\"\n\
             [alerts]\nalertmanager_bearer_token = \"{ALERTMANAGER_BEARER}\"\n"
        ),
    );
    let (ok, text) = check_config(&[("RTX_CONFIG", &cfg)]);
    assert!(ok, "check-config failed:\n{text}");
    assert_no_credential("check-config (file)", &text);
}

#[test]
fn a_refused_configuration_names_the_key_without_its_credential() {
    let bad_alertmanager = format!("ftp://am-user:{ALERTMANAGER_PASSWORD}@127.0.0.1:9093");
    let (ok, text) = check_config(&[
        ("RTX_METRICS_TOKEN", METRICS_TOKEN),
        ("RTX_ADMIN_TOKEN", ADMIN_TOKEN),
        ("RTX_ALERTMANAGER_URL", &bad_alertmanager),
    ]);
    assert!(!ok, "an ftp:// Alertmanager URL was accepted:\n{text}");
    assert!(text.contains("alertmanager_url"), "{text}");
    assert_no_credential("a refused check-config", &text);

    // A misspelled key and an unquoted token: the parser's error points at the line, which
    // holds the credential.
    for (label, toml) in [
        ("typo", format!("admin_tokn = \"{ADMIN_TOKEN}\"\n")),
        ("unquoted", format!("metrics_token = {METRICS_TOKEN}\n")),
    ] {
        let (_dir, cfg) = rtx_testkit::config_file(&format!("no-credential-{label}"), &toml);
        let (ok, text) = check_config(&[("RTX_CONFIG", &cfg)]);
        assert!(!ok, "{toml} was accepted:\n{text}");
        assert!(text.contains("line 1, column"), "{text}");
        assert_no_credential(&format!("a refused check-config ({label})"), &text);
    }
}

/// Collects the engine's stdout, line by line, as it comes.
fn collect_stdout(engine: &mut Engine) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let stdout = engine.take_stdout().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (log, reader)
}

/// Alerts evaluated often and an LP's `for` short, so that a notification is soon attempted.
fn engine_config() -> String {
    format!(
        "alert_eval_interval = \"250ms\"\n\
         sim_order_rate = 5.0\n\
         [alerts]\n\
         window_secs = 10\n\
         resend_interval_secs = 2\n\
         alertmanager_bearer_token = \"{ALERTMANAGER_BEARER}\"\n\
         [alerts.for_secs]\n\
         LPDisconnected = 1\n\
         [health]\n\
         lp_interval_ms = 100\n"
    )
}

#[test]
fn the_running_engine_logs_and_serves_no_credential() {
    let (_dir, cfg) = rtx_testkit::config_file("no-credential-engine", &engine_config());
    let alertmanager = alertmanager_url();
    let mut engine = Engine::start_capturing(
        ENGINE,
        &[
            ("RTX_CONFIG", &cfg),
            ("RTX_METRICS_TOKEN", METRICS_TOKEN),
            ("RTX_ADMIN_TOKEN", ADMIN_TOKEN),
            ("RTX_ALERTMANAGER_URL", &alertmanager),
        ],
    );
    let (log, reader) = collect_stdout(&mut engine);
    let http = blocking_client();
    wait_for_ready_status(&engine, 200);

    // Scrapes with the token, and refused ones (security events) without it.
    let scrape = http
        .get(engine.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert_no_credential("/metrics", &scrape.text().unwrap());
    let refused = http.get(engine.url("/metrics")).send().unwrap();
    assert_eq!(refused.status(), 401);
    assert_no_credential("a refused /metrics", &refused.text().unwrap());

    // An LP down past its `for` fires LPDisconnected, whose notification fails: nobody listens.
    lp_admin(&http, &engine, ADMIN_TOKEN, "LMAX", "disconnect");
    wait_until(
        Duration::from_secs(30),
        "a failed alert notification in the log",
        || log.lock().unwrap().contains("alert notification failed"),
    );

    for path in ["/health", "/ready"] {
        for accept in ["application/json", "application/health+json"] {
            let response = http
                .get(engine.url(path))
                .header("accept", accept)
                .send()
                .unwrap();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(content_type, accept, "GET {path}");
            assert_no_credential(&format!("{path} ({accept})"), &response.text().unwrap());
        }
    }
    let alerts = http
        .get(engine.url("/alerts"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(alerts.contains("LPDisconnected"), "{alerts}");
    assert_no_credential("/alerts", &alerts);

    assert_eq!(engine.terminate(Duration::from_secs(15)), Some(0));
    reader.join().unwrap();
    let log = log.lock().unwrap();
    for expected in ["database ready", "alert notification failed", "security"] {
        assert!(log.contains(expected), "no `{expected}` in the log:\n{log}");
    }
    assert_no_credential("the engine's log", &log);
}
