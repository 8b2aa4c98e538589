//! The engine's stdout is JSON lines with the SPEC §6 fields; a stdout nobody reads never
//! slows orders (lines are dropped, counted, and reported once the reader is back); and events
//! logged just before SIGTERM are all written before the process exits.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use rtx_testkit::{
    async_client, get_json_async, metric_sum, wait_for_fill_async, wait_until_async, Engine,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

fn order(i: usize) -> String {
    format!(
        r#"{{"account_id":"demo-{}","symbol":"EURUSD","side":"{}","volume":0.01,"client_order_id":"log-{i}"}}"#,
        4 + i % 7,
        if i % 2 == 0 { "buy" } else { "sell" }
    )
}

fn read_all(engine: &mut Engine) -> std::thread::JoinHandle<String> {
    let mut stdout = engine.take_stdout().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_is_a_json_object_with_the_spec_fields() {
    let mut engine = Engine::start_capturing(
        ENGINE,
        &[
            ("RTX_SIM_ORDER_RATE", "50"),
            ("RTX_METRICS_TOKEN", "t0k3n-secret"),
            ("RTX_ADMIN_TOKEN", "adm1n-secret"),
        ],
    );
    let reader = read_all(&mut engine);
    let http = async_client();
    // A fill logs a trade.
    wait_for_fill_async(&http, &engine, "demo-4").await;
    // A refused scrape and a refused admin call are security events, without the credential.
    assert_eq!(
        http.get(engine.url("/metrics"))
            .bearer_auth("wrong-guess-123")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.post(engine.url("/admin/lps/LMAX/disconnect"))
            .bearer_auth("adm1n-secreT")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    for i in 0..20 {
        http.post(engine.url("/api/orders"))
            .body(order(i))
            .send()
            .await
            .unwrap();
    }
    // No pause before the signal: what was logged before it is written before the exit
    // (`events_logged_just_before_sigterm_all_appear`).
    let code = tokio::task::block_in_place(|| engine.terminate(Duration::from_secs(15)));
    assert_eq!(code, Some(0));
    let text = reader.join().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        for key in [
            "timestamp",
            "level",
            "message",
            "target",
            "service",
            "version",
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
        let ts = v["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "timestamp {ts}"
        );
        assert!(
            ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"].contains(&v["level"].as_str().unwrap()),
            "{line}"
        );
        if let Some(kind) = v["event"].as_str() {
            kinds.insert(kind.to_owned());
        }
        // The engine's own flow holds no card, token or address: anything redacted here is a
        // price or an id the redactor mistook for one.
        assert!(
            !line.contains("[REDACTED]"),
            "redacted in the engine's own flow: {line}"
        );
        if v["event"] == "trade" {
            // The message prints the price at the instrument's precision, as the field holds it.
            let message = v["message"].as_str().unwrap();
            let printed = message.rsplit(" @ ").next().unwrap();
            let places = printed.split_once('.').map_or(0, |(_, f)| f.len());
            assert!(places == 3 || places == 5, "{line}");
            assert_eq!(printed.parse::<f64>().ok(), v["price"].as_f64(), "{line}");
        }
        if matches!(v["level"].as_str(), Some("ERROR" | "FATAL")) {
            assert!(v.get("file").is_some() && v.get("line").is_some(), "{line}");
        }
    }
    for kind in ["order_execution", "trade", "security"] {
        assert!(kinds.contains(kind), "no {kind} event in:\n{text}");
    }
    for secret in [
        "wrong-guess-123",
        "t0k3n-secret",
        "adm1n-secret",
        "adm1n-secreT",
    ] {
        assert!(!text.contains(secret), "{secret} reached the log");
    }
    assert!(
        text.contains("\"source\":\"127.0.0.1:"),
        "security events name the caller"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_nobody_reads_never_slows_orders_and_drops_are_counted_then_reported() {
    let (_dir, cfg) = rtx_testkit::config_file("log-config", "[logging]\nbuffer_bytes = 65536\n");
    let mut engine =
        Engine::start_capturing(ENGINE, &[("RTX_SIM_ORDER_RATE", "0"), ("RTX_CONFIG", &cfg)]);
    let stdout = engine.take_stdout().unwrap();
    let http = async_client();
    wait_for_fill_async(&http, &engine, "demo-4").await;
    // Nobody reads stdout: the pipe (64 KiB) and the log buffer (64 KiB) fill within a few
    // hundred orders; every order must still be answered promptly.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..1500 {
        let t = Instant::now();
        let r = http
            .post(engine.url("/api/orders"))
            .body(order(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        slowest = slowest.max(t.elapsed());
    }
    // A writer that waited for the reader would hold an order until it came back, which in
    // this loop is never; the bound only has to stay clear of a loaded machine's scheduling.
    assert!(
        slowest < Duration::from_secs(2),
        "an order waited {slowest:?} on a blocked stdout"
    );
    let elapsed = started.elapsed();
    let metrics = engine.scrape();
    let dropped = metric_sum(&metrics, "rtx_log_events_dropped_total", &[]);
    assert!(dropped > 0.0, "nothing dropped after {elapsed:?}?");
    assert!(metric_sum(&metrics, "rtx_log_events_total", &[("level", "INFO")]) > 0.0);

    // The reader comes back: the backlog drains and says how much is missing.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("log events dropped") {
                let _ = tx.send(line);
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a 'log events dropped' line after the reader came back");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "log_dropped");
    assert!(v["dropped"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_logged_just_before_sigterm_all_appear() {
    let mut engine = Engine::start_capturing(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let reader = read_all(&mut engine);
    let http = async_client();
    wait_for_fill_async(&http, &engine, "demo-4").await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let r: serde_json::Value = http
            .post(engine.url("/api/orders"))
            .body(order(i))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    let code = tokio::task::block_in_place(|| engine.terminate(Duration::from_secs(15)));
    assert_eq!(code, Some(0));
    let text = reader.join().unwrap();
    let missing: Vec<usize> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !text.contains(id.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert!(
        missing.is_empty(),
        "missing order indexes {missing:?} of {}",
        ids.len()
    );
    for id in &ids {
        assert!(
            text.contains(&format!("\"order_id\":\"{id}\"")),
            "order {id} was logged before SIGTERM but its line is missing; {} lines, last: {:?}",
            text.lines().count(),
            text.lines().last()
        );
    }
    assert!(text.contains("stopped cleanly"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_probe_or_alerts_body_shows_a_credential() {
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_METRICS_TOKEN", "probe-metrics-s3cret"),
            ("RTX_ADMIN_TOKEN", "probe-admin-s3cret"),
            (
                "RTX_ALERTMANAGER_URL",
                "http://am-user:am-pass-s3cret@127.0.0.1:9",
            ),
        ],
    );
    let http = async_client();
    // The bodies are read once every check has run and has a message of its own to show.
    for path in ["/health", "/ready"] {
        wait_until_async(
            Duration::from_secs(20),
            &format!("every check of {path} to have run"),
            async || {
                let (_, body) = get_json_async(&http, &engine.url(path)).await;
                body["checks"]
                    .as_object()
                    .is_some_and(|checks| checks.values().all(|c| !c["last_run"].is_null()))
            },
        )
        .await;
    }
    for path in ["/health", "/ready", "/alerts"] {
        for accept in ["application/json", "application/health+json"] {
            let body = http
                .get(engine.url(path))
                .header("accept", accept)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for secret in [
                "probe-metrics-s3cret",
                "probe-admin-s3cret",
                "am-pass-s3cret",
            ] {
                assert!(!body.contains(secret), "{path} shows {secret}: {body}");
            }
        }
    }
    // An oversized traceparent is malformed, which starts a new trace: never an error. A header
    // block past the HTTP server's limit is refused with 431. Either way the engine serves on.
    for size in [200 * 1024, 2 * 1024 * 1024] {
        let huge = "x".repeat(size);
        let answer = http
            .get(engine.url("/api/orders"))
            .header("traceparent", huge)
            .send()
            .await;
        if let Ok(r) = answer {
            assert!(
                matches!(r.status().as_u16(), 200 | 431),
                "{size}-byte traceparent: {}",
                r.status()
            );
        }
    }
    assert_eq!(
        http.get(engine.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still serving"
    );
}
