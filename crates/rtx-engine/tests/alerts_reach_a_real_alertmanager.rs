//! The in-process evaluator and the real Alertmanager (Debian's `prometheus-alertmanager`):
//! an LP disconnected through the admin API shows up as `LPDisconnected{lp=…}` only after its
//! `for`, and is resolved after the LP reconnects; with Alertmanager started late, the alert
//! still arrives.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtx_testkit::{free_port, http_get, Alertmanager, Engine};

const CONFIG: &str = r#"
alert_eval_interval = "250ms"
sim_order_rate = 0.0

[alerts]
window_secs = 10
resend_interval_secs = 2

[alerts.for_secs]
LPDisconnected = 3

[health]
lp_interval_ms = 100
"#;

fn lp_alerts(am: SocketAddr) -> Vec<serde_json::Value> {
    let path = "/api/v2/alerts?filter=alertname%3D%22LPDisconnected%22";
    let Some((200, body)) = http_get(am, path) else {
        return Vec::new();
    };
    serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap_or_default()
}

fn lmax_active(am: SocketAddr) -> bool {
    lp_alerts(am)
        .iter()
        .any(|a| a["labels"]["lp"] == "LMAX" && a["status"]["state"] == "active")
}

fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn engine(am: SocketAddr) -> (Engine, std::path::PathBuf) {
    let (dir, cfg) = rtx_testkit::config_file("am-config", CONFIG);
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[
            ("RTX_CONFIG", cfg.as_str()),
            ("RTX_ADMIN_TOKEN", "t"),
            ("RTX_ALERTMANAGER_URL", &format!("http://{am}")),
        ],
    );
    wait_until(Duration::from_secs(10), "engine ready", || {
        http_get_ok_200(&engine, "/ready")
    });
    // Let a few evaluations see every LP connected, so the disconnect starts a fresh `for`.
    std::thread::sleep(Duration::from_secs(1));
    (engine, dir)
}

fn http_get_ok_200(engine: &Engine, path: &str) -> bool {
    http_get(engine.addr, path).is_some_and(|(s, _)| s == 200)
}

fn admin(engine: &Engine, action: &str) {
    let r = reqwest::blocking::Client::new()
        .post(engine.url(&format!("/admin/lps/LMAX/{action}")))
        .bearer_auth("t")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn lp_disconnected_fires_after_its_for_and_resolves_in_alertmanager() {
    let am_addr = free_port();
    let _am = Alertmanager::start(am_addr);
    let (engine, dir) = engine(am_addr);
    admin(&engine, "disconnect");
    let disconnected = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !lmax_active(am_addr),
        "LPDisconnected reached Alertmanager before its `for` of 3 s"
    );
    let (_, alerts) = http_get(engine.addr, "/alerts").unwrap();
    let alerts: serde_json::Value = serde_json::from_str(&alerts).unwrap();
    assert_eq!(alerts["active"][0]["state"], "pending", "{alerts}");
    wait_until(
        Duration::from_secs(15),
        "LPDisconnected{lp=\"LMAX\"} active in Alertmanager",
        || lmax_active(am_addr),
    );
    assert!(disconnected.elapsed() >= Duration::from_secs(3));
    let fired = lp_alerts(am_addr)
        .into_iter()
        .find(|a| a["labels"]["lp"] == "LMAX")
        .unwrap();
    assert_eq!(fired["labels"]["severity"], "critical");
    assert_eq!(fired["labels"]["service"], "rtx-engine");
    assert!(fired["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("LMAX"));
    let metrics = engine.scrape();
    assert_eq!(
        rtx_testkit::metric_sum(
            &metrics,
            "rtx_alerts_firing",
            &[("alertname", "LPDisconnected")]
        ),
        1.0
    );
    assert!(
        rtx_testkit::metric_sum(
            &metrics,
            "rtx_alertmanager_notifications_total",
            &[("outcome", "success")]
        ) >= 1.0
    );

    admin(&engine, "connect");
    wait_until(
        Duration::from_secs(15),
        "LPDisconnected resolved in Alertmanager",
        || !lmax_active(am_addr),
    );
    let (_, alerts) = http_get(engine.addr, "/alerts").unwrap();
    let alerts: serde_json::Value = serde_json::from_str(&alerts).unwrap();
    assert_eq!(alerts["history"][0]["state"], "resolved", "{alerts}");
    assert_eq!(alerts["history"][1]["state"], "firing", "{alerts}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_alertmanager_started_late_still_receives_the_alert() {
    let am_addr = free_port();
    let (engine, dir) = engine(am_addr);
    admin(&engine, "disconnect");
    // Past the `for`: the engine is firing and failing to notify nobody-home.
    std::thread::sleep(Duration::from_secs(5));
    let metrics = engine.scrape();
    assert!(
        rtx_testkit::metric_sum(
            &metrics,
            "rtx_alertmanager_notifications_total",
            &[("outcome", "failure")]
        ) >= 1.0
    );
    let _am = Alertmanager::start(am_addr);
    wait_until(
        Duration::from_secs(15),
        "the alert reaching a late Alertmanager",
        || lmax_active(am_addr),
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Alertmanager behind TLS (a private CA) and basic auth, as the seed's "secure channels" ask:
/// the engine's notifications are accepted with the right password and refused with a wrong one.
#[test]
fn alerts_reach_an_alertmanager_over_https_with_basic_auth() {
    let dir = rtx_testkit::scratch_dir("am-tls");
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(rtx_testkit::tool("RTX_NO_OVERRIDE", program))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // A private CA and a server certificate it signed for 127.0.0.1.
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=rtx-test-ca",
        ],
    );
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
    let hash = run("htpasswd", &["-nbB", "rtx", "s3cret-pass"]);
    let hash = hash.trim().split_once(':').unwrap().1.to_owned();
    let web = format!("tls_server_config:\n  cert_file: {d}/cert.pem\n  key_file: {d}/key.pem\nbasic_auth_users:\n  rtx: \"{hash}\"\n", d = dir.display());
    std::fs::write(dir.join("web.yml"), web).unwrap();
    let am_addr = free_port();
    let _am = Alertmanager::start_with_web_config(am_addr, &dir.join("web.yml"));

    for (password, outcome) in [("s3cret-pass", "success"), ("wrong", "failure")] {
        let cfg = dir.join(format!("rtx-{outcome}.toml"));
        let ca = dir.join("ca.pem");
        std::fs::write(
            &cfg,
            CONFIG.replace(
                "[alerts]\n",
                &format!("[alerts]\nalertmanager_ca_file = \"{}\"\n", ca.display()),
            ),
        )
        .unwrap();
        let url = format!("https://rtx:{password}@{am_addr}");
        let engine = Engine::start(
            env!("CARGO_BIN_EXE_rtx-engine"),
            &[
                ("RTX_CONFIG", cfg.to_str().unwrap()),
                ("RTX_ADMIN_TOKEN", "t"),
                ("RTX_ALERTMANAGER_URL", &url),
            ],
        );
        wait_until(Duration::from_secs(10), "engine ready", || {
            http_get_ok_200(&engine, "/ready")
        });
        std::thread::sleep(Duration::from_secs(1));
        admin(&engine, "disconnect");
        wait_until(
            Duration::from_secs(20),
            &format!("a notification with outcome {outcome}"),
            || {
                let metrics = engine.scrape();
                rtx_testkit::metric_sum(
                    &metrics,
                    "rtx_alertmanager_notifications_total",
                    &[("outcome", outcome)],
                ) >= 1.0
            },
        );
        let metrics = engine.scrape();
        if outcome == "failure" {
            assert_eq!(
                rtx_testkit::metric_sum(
                    &metrics,
                    "rtx_alertmanager_notifications_total",
                    &[("outcome", "success")]
                ),
                0.0,
                "a wrong password is refused"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
