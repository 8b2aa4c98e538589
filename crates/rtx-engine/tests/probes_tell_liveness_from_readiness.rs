//! `/health` and `/ready` as Kubernetes uses them: liveness never depends on downstreams,
//! readiness follows the LPs and the database, both formats are well formed, and a SIGTERM
//! turns readiness to 503 for the drain while in-flight orders complete and the process exits 0.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtx_testkit::{
    async_client, get_json_async, lp_admin_async, market_order, wait_for_ready_status_async,
    wait_for_ready_verdict_async, wait_until_async, Engine,
};

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_lps_down_fails_readiness_but_never_liveness_and_recovers() {
    let (_dir, cfg) = rtx_testkit::config_file("probe-config", "[health]\nlp_interval_ms = 100\n");
    let engine = Engine::start(
        ENGINE,
        &[
            ("RTX_CONFIG", &cfg),
            ("RTX_ADMIN_TOKEN", "t"),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let http = async_client();
    let ready = wait_for_ready_status_async(&engine, 200).await;
    assert_eq!(ready["checks"]["liquidity_providers"]["status"], "healthy");
    assert_eq!(ready["checks"]["database"]["status"], "healthy");

    lp_admin_async(&http, &engine, "t", "OANDA", "disconnect").await;
    wait_for_ready_verdict_async(&engine, 200, "degraded").await;
    lp_admin_async(&http, &engine, "t", "LMAX", "disconnect").await;
    lp_admin_async(&http, &engine, "t", "CURRENEX", "disconnect").await;
    let down = wait_for_ready_status_async(&engine, 503).await;
    assert_eq!(down["checks"]["liquidity_providers"]["status"], "unhealthy");
    let (code, live) = get_json_async(&http, &engine.url("/health")).await;
    assert_eq!(code, 200, "liveness must not follow the LPs: {live}");
    assert!(
        live["checks"].get("liquidity_providers").is_none()
            && live["checks"].get("database").is_none()
    );

    for lp in ["OANDA", "LMAX", "CURRENEX"] {
        lp_admin_async(&http, &engine, "t", lp, "connect").await;
    }
    // Reconnecting takes each LP through `connecting`: readiness passes through degraded.
    wait_for_ready_verdict_async(&engine, 200, "healthy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_bodies_follow_the_spec_and_the_ietf_draft() {
    let engine = Engine::start(ENGINE, &[("RTX_SIM_ORDER_RATE", "0")]);
    let http = async_client();
    let ready = wait_for_ready_status_async(&engine, 200).await;
    for key in ["status", "version", "uptime_seconds", "checks"] {
        assert!(ready.get(key).is_some(), "missing {key}: {ready}");
    }
    for (name, check) in ready["checks"].as_object().unwrap() {
        for key in [
            "status",
            "message",
            "value",
            "unit",
            "last_run",
            "duration_seconds",
        ] {
            assert!(
                check.get(key).is_some(),
                "check {name} lacks {key}: {check}"
            );
        }
    }
    let names: Vec<&String> = ready["checks"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "database",
            "liquidity_providers",
            "memory",
            "tasks",
            "uptime"
        ]
    );

    let r = http
        .get(engine.url("/health"))
        .header("accept", "application/health+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/health+json");
    let ietf: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ietf["status"], "pass");
    assert_eq!(ietf["serviceId"], "rtx-engine");
    let checks = ietf["checks"].as_object().unwrap();
    assert!(
        checks.keys().all(|k| k.contains(':')),
        "checks keyed component:measurement: {ietf}"
    );
    let memory = &checks["memory:utilization"][0];
    assert_eq!(memory["observedUnit"], "bytes");
    assert!(memory["observedValue"].as_f64().unwrap() > 0.0);
    assert!(["pass", "warn", "fail"].contains(&memory["status"].as_str().unwrap()));

    let metrics = engine.scrape();
    assert_eq!(
        rtx_testkit::metric_sum(&metrics, "rtx_health_check_status", &[("check", "memory")]),
        2.0
    );
    assert!(
        rtx_testkit::metric_sum(
            &metrics,
            "rtx_health_check_duration_seconds_count",
            &[("check", "database")]
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_for_the_drain_while_orders_complete() {
    let (_dir, cfg) = rtx_testkit::config_file(
        "drain-config",
        "[shutdown]\ndrain_delay_ms = 1500\ntimeout_ms = 8000\n\n[health]\nlp_interval_ms = 100\n",
    );
    let mut engine = Engine::start(ENGINE, &[("RTX_CONFIG", &cfg), ("RTX_SIM_ORDER_RATE", "0")]);
    let http = async_client();
    wait_for_ready_status_async(&engine, 200).await;

    // Orders keep coming until the test has seen some answered during the drain (or the
    // engine stops answering); `answered` lets it see them flowing.
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = Arc::new(engine.url("/api/orders"));
    let load: Vec<_> = (0..8)
        .map(|i| {
            let (http, url) = (http.clone(), Arc::clone(&url));
            let (answered, stop) = (Arc::clone(&answered), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let body = market_order(&format!("demo-{}", 1 + i % 10), "EURUSD", "buy", 0.01);
                while !stop.load(Ordering::Relaxed) {
                    match http.post(url.as_str()).body(body.clone()).send().await {
                        Ok(r) => statuses.push(r.status().as_u16()),
                        Err(_) => break,
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                statuses
            })
        })
        .collect();
    let answered_at_least = |n: usize| {
        let answered = Arc::clone(&answered);
        async move || answered.load(Ordering::Relaxed) >= n
    };
    wait_until_async(
        Duration::from_secs(10),
        "orders answered before the signal",
        answered_at_least(8),
    )
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &engine.pid().to_string()])
        .status();
    // The signal is handled asynchronously, so readiness turns within moments rather than at
    // once; during the drain the listener still answers, and readiness says 503.
    let body = wait_for_ready_status_async(&engine, 503).await;
    assert_eq!(body["reason"], "shutting down: draining connections");
    let (live, _) = get_json_async(&http, &engine.url("/health")).await;
    assert_eq!(live, 200, "liveness stays up while draining");
    let during = answered.load(Ordering::Relaxed);
    wait_until_async(
        Duration::from_secs(10),
        "orders answered during the drain",
        answered_at_least(during + 8),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for l in load {
        statuses.extend(l.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201),
        "orders during the drain complete: {statuses:?}"
    );
    let code = tokio::task::block_in_place(|| engine.terminate(Duration::from_secs(10)));
    assert_eq!(code, Some(0));
}
