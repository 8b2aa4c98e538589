//! Within 60 s of start, with the simulated flow on and a little API traffic, every SPEC §3
//! family is exported and every family the engine feeds has a series that moved off zero, except
//! those whose honest value in a healthy run is zero (listed, with the reason).

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use rtx_testkit::{
    async_client, get_json_async, lp_admin_async, market_order, metric_sum, parse_samples,
    post_order_async, wait_until_async, Engine, Poll, Sample,
};

/// Families whose honest value in a healthy run is zero: they must be exported, not moved.
const ZERO_WHEN_HEALTHY: &[&str] = &[
    // This run points the exporter at a port nobody listens on: spans are dropped, not exported.
    "rtx_spans_exported_total",
    // No alert fires in a healthy run, and this run has no Alertmanager configured.
    "rtx_alerts_firing",
    "rtx_alerts_fired_total",
    "rtx_alertmanager_notifications_total",
    "rtx_log_events_dropped_total",
    "rtx_orders_in_flight",
    "rtx_websocket_messages_dropped_total",
    // No client in this run is slow, idle or past a limit.
    "rtx_http_connections_closed_total",
    "rtx_accounts_in_margin_call",
    "rtx_stopouts_total",
    "rtx_runtime_global_queue_depth",
    "rtx_runtime_busy_ratio",
    "rtx_metric_label_values_folded_total",
];

const CONFIG: &str = r#"
sim_order_rate = 20.0

[lp]
quote_interval_ms = 50
heartbeat_interval_ms = 200
sequence_gap_probability = 0.02
reject_probability = 0.2
"#;

fn family_of(sample: &Sample, families: &[String]) -> Option<String> {
    let name = sample.name.as_str();
    [
        name,
        name.trim_end_matches("_bucket"),
        name.trim_end_matches("_sum"),
        name.trim_end_matches("_count"),
    ]
    .into_iter()
    .find(|n| families.iter().any(|f| f == n))
    .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_exported_and_fed_within_a_minute() {
    let (_dir, config) = rtx_testkit::config_file("live-config", CONFIG);
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[
            ("RTX_CONFIG", &config),
            ("RTX_ADMIN_TOKEN", "live-test"),
            (
                "RTX_OTLP_ENDPOINT",
                &format!("http://{}", rtx_testkit::free_port()),
            ),
        ],
    );
    let http = async_client();

    // Traffic the simulation does not make: a WebSocket reader, API reads, a risk rejection,
    // and an LP disconnect and reconnect.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/quotes", engine.addr))
        .await
        .expect("websocket");
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a quote within 10 s");
    assert!(first.is_some());
    // Keep reading, as a live client does: a client that stops reading is dropped as slow.
    let reader = tokio::spawn(async move { while ws.next().await.is_some() {} });
    for path in ["/api/orders", "/api/positions", "/api/accounts/demo-1"] {
        let (status, body) = get_json_async(&http, &engine.url(path)).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
    }
    let oversized = market_order("demo-4", "EURUSD", "buy", 500.0);
    let (_, rejected) = post_order_async(&http, &engine, &oversized).await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    // The disconnect has to be seen (and counted) before the reconnect, and the reconnect
    // done before the families are judged.
    for (action, connected) in [("disconnect", 0.0), ("connect", 1.0)] {
        lp_admin_async(&http, &engine, "live-test", "LMAX", action).await;
        wait_until_async(
            Duration::from_secs(10),
            &format!("rtx_lp_connected{{lp=\"LMAX\"}} {connected}"),
            async || {
                metric_sum(&engine.scrape(), "rtx_lp_connected", &[("lp", "LMAX")]) == connected
            },
        )
        .await;
    }

    let families: Vec<String> = include_str!("spec_families.txt")
        .lines()
        .map(str::to_owned)
        .collect();
    // The claim is "within a minute": the deadline is the assertion, not a guess at timing.
    Poll::up_to(Duration::from_secs(60))
        .every(Duration::from_millis(500))
        .until_ok_async("every family exported and fed", async || {
            let text = engine.scrape();
            let samples = parse_samples(&text);
            let exported: std::collections::BTreeSet<&String> = families
                .iter()
                .filter(|f| text.contains(&format!("# TYPE {f} ")))
                .collect();
            let mut moved = std::collections::BTreeSet::new();
            for s in &samples {
                if let Some(f) = family_of(s, &families) {
                    let counts = !s.name.ends_with("_bucket") && !s.name.ends_with("_sum");
                    if counts && s.value != 0.0 {
                        moved.insert(f);
                    }
                }
            }
            let missing: Vec<&String> =
                families.iter().filter(|f| !exported.contains(*f)).collect();
            let still: Vec<&String> = families
                .iter()
                .filter(|f| !moved.contains(*f) && !ZERO_WHEN_HEALTHY.contains(&f.as_str()))
                .collect();
            if missing.is_empty() && still.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "not exported {missing:?}; exported but never moved {still:?}"
                ))
            }
        })
        .await;
    reader.abort();
}
