//! The in-process evaluator and the real Alertmanager (Debian's `prometheus-alertmanager`):
//! an LP disconnected through the admin API shows up as `LPDisconnected{lp=…}` only after its
//! `for`, and is resolved after the LP reconnects; with Alertmanager started late, the alert
//! still arrives.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtx_testkit::{
    blocking_client, free_port, http_get, lp_admin, metric_sum, wait_for, wait_for_ready_status,
    wait_until, Alertmanager, Engine,
};

/// `LPDisconnected`'s `for` in [`CONFIG`].
const FOR: Duration = Duration::from_secs(3);

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

/// The engine's `/alerts`: active alerts (pending and firing) and the history, newest first.
fn engine_alerts(engine: &Engine) -> serde_json::Value {
    let (status, body) = http_get(engine.addr, "/alerts").unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until every LP is connected and no `LPDisconnected` is active: an evaluation from
/// before the LPs logged on may have left one pending, and a disconnect must start a fresh
/// `for`. The LPs stay connected from here until the test says otherwise, so no later
/// evaluation starts one either.
fn wait_for_every_lp_connected_and_no_alert(engine: &Engine) {
    wait_until(
        Duration::from_secs(20),
        "every LP connected and no LPDisconnected active",
        || {
            let metrics = engine.scrape();
            let connected = ["OANDA", "LMAX", "CURRENEX"]
                .iter()
                .all(|lp| metric_sum(&metrics, "rtx_lp_connected", &[("lp", lp)]) == 1.0);
            connected
                && !engine_alerts(engine)["active"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["alertname"] == "LPDisconnected")
        },
    );
}

fn notifications(engine: &Engine, outcome: &str) -> f64 {
    metric_sum(
        &engine.scrape(),
        "rtx_alertmanager_notifications_total",
        &[("outcome", outcome)],
    )
}

fn engine(am: SocketAddr) -> (Engine, rtx_testkit::ScratchDir) {
    let (dir, cfg) = rtx_testkit::config_file("am-config", CONFIG);
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[
            ("RTX_CONFIG", cfg.as_str()),
            ("RTX_ADMIN_TOKEN", "t"),
            ("RTX_ALERTMANAGER_URL", &format!("http://{am}")),
        ],
    );
    wait_for_ready_status(&engine, 200);
    wait_for_every_lp_connected_and_no_alert(&engine);
    (engine, dir)
}

#[test]
fn lp_disconnected_fires_after_its_for_and_resolves_in_alertmanager() {
    let am_addr = free_port();
    let _am = Alertmanager::start(am_addr);
    let (engine, _dir) = engine(am_addr);
    let http = blocking_client();
    // Taken before the request, inside which the engine disconnects: the time since `before`
    // is never less than the time since the disconnect, so a look that ends less than `FOR`
    // after `before` certainly happened within the alert's `for`.
    let before = Instant::now();
    lp_admin(&http, &engine, "t", "LMAX", "disconnect");
    let pending = wait_for(
        Duration::from_secs(10),
        "LPDisconnected in the engine's active alerts",
        || {
            let alerts = engine_alerts(&engine);
            let lmax = alerts["active"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["alertname"] == "LPDisconnected" && a["labels"]["lp"] == "LMAX");
            lmax.cloned().ok_or(alerts)
        },
    );
    if before.elapsed() < FOR {
        assert_eq!(pending["state"], "pending", "{pending}");
    }
    // Nothing may reach Alertmanager before the `for` is over. This waits on purpose, to watch
    // that it does not happen; looks that end after `FOR` (a slow machine) prove nothing and are
    // not held against it.
    while before.elapsed() < FOR / 2 {
        let active = lmax_active(am_addr);
        if before.elapsed() < FOR {
            assert!(
                !active,
                "LPDisconnected reached Alertmanager before its `for` of {FOR:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(
        Duration::from_secs(15),
        "LPDisconnected{lp=\"LMAX\"} active in Alertmanager",
        || lmax_active(am_addr),
    );
    assert!(
        before.elapsed() >= FOR,
        "LPDisconnected reached Alertmanager {:?} after the disconnect, before its `for`",
        before.elapsed()
    );
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
    assert_eq!(
        metric_sum(
            &engine.scrape(),
            "rtx_alerts_firing",
            &[("alertname", "LPDisconnected")]
        ),
        1.0
    );
    // The engine counts the notification once Alertmanager has answered it, which can be just
    // after Alertmanager shows the alert.
    wait_until(
        Duration::from_secs(10),
        "a successful notification counted",
        || notifications(&engine, "success") >= 1.0,
    );

    lp_admin(&http, &engine, "t", "LMAX", "connect");
    wait_until(
        Duration::from_secs(15),
        "LPDisconnected resolved in Alertmanager",
        || !lmax_active(am_addr),
    );
    let alerts = engine_alerts(&engine);
    assert_eq!(alerts["history"][0]["state"], "resolved", "{alerts}");
    assert_eq!(alerts["history"][1]["state"], "firing", "{alerts}");
}

#[test]
fn an_alertmanager_started_late_still_receives_the_alert() {
    let am_addr = free_port();
    let (engine, _dir) = engine(am_addr);
    lp_admin(&blocking_client(), &engine, "t", "LMAX", "disconnect");
    // Past the `for`, the engine fires and fails to notify nobody-home.
    wait_until(
        Duration::from_secs(20),
        "a failed notification counted",
        || notifications(&engine, "failure") >= 1.0,
    );
    let _am = Alertmanager::start(am_addr);
    wait_until(
        Duration::from_secs(15),
        "the alert reaching a late Alertmanager",
        || lmax_active(am_addr),
    );
}

/// Alertmanager behind TLS (a private CA) and basic auth, as the seed's "secure channels" ask:
/// the engine's notifications are accepted with the right password and refused with a wrong one.
#[test]
fn alerts_reach_an_alertmanager_over_https_with_basic_auth() {
    let dir = rtx_testkit::ScratchDir::new("am-tls");
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
        wait_for_ready_status(&engine, 200);
        wait_for_every_lp_connected_and_no_alert(&engine);
        lp_admin(&blocking_client(), &engine, "t", "LMAX", "disconnect");
        wait_until(
            Duration::from_secs(20),
            &format!("a notification with outcome {outcome}"),
            || notifications(&engine, outcome) >= 1.0,
        );
        if outcome == "failure" {
            assert_eq!(
                notifications(&engine, "success"),
                0.0,
                "a wrong password is refused"
            );
        }
    }
}
