//! The complete example, `examples/order_gateway.rs`, run as a process the way its README line
//! says, built with the builder alone: it becomes ready once its own venue check passes, an
//! order goes to the venue with the caller's trace context (its trace id, a new parent id, its
//! tracestate), that trace is exported to an OTLP receiver, the scrape carries the gateway's own
//! family with an exemplar of the same trace and only the catalogue sections it chose, its log
//! lines carry the trace id, and SIGTERM turns readiness to 503, drains and exits 0.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rtx_testkit::{blocking_client, free_port, hex_id, http_get, otlp_receiver, wait_until, Poll};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// `cargo test` builds the package's examples next to its test binaries.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} was not built (`cargo test -p rtx-monitoring` builds it; `--test` alone does not)",
        path.display()
    );
    path
}

#[test]
fn the_order_gateway_propagates_measures_and_drains() {
    let addr = free_port();
    let (collector, spans) = otlp_receiver();
    let mut child = KillOnDrop(
        Command::new(example("order_gateway"))
            .arg(addr.to_string())
            .env("OTLP_ENDPOINT", format!("http://{collector}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    wait_until(Duration::from_secs(20), "the gateway to be ready", || {
        http_get(addr, "/ready").is_some_and(|(status, _)| status == 200)
    });
    let (_, ready) = http_get(addr, "/ready").unwrap();
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["checks"]["venue"]["status"], "healthy", "{ready}");

    let http = blocking_client();
    let answer: serde_json::Value = http
        .post(format!("http://{addr}/orders"))
        .header("traceparent", CALLER)
        .header("tracestate", "congo=t61rcWkgMzE")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["status"], "filled", "{answer}");
    let sent = answer["venue"]["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(
        parts[1], TRACE_ID,
        "the venue is in the caller's trace: {sent}"
    );
    assert_ne!(
        parts[2], "b7ad6b7169203331",
        "the client span has its own id: {sent}"
    );
    assert_eq!(answer["venue"]["tracestate"], "congo=t61rcWkgMzE");

    let scrape = http
        .get(format!("http://{addr}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("gateway_venue_latency_seconds_bucket")
                && l.contains(&format!("trace_id=\"{TRACE_ID}\""))),
        "the gateway's own histogram has an exemplar of the order's trace:\n{scrape}"
    );
    assert!(scrape.contains(
        r#"rtx_orders_total{order_type="market",symbol="EURUSD",route="ABOOK",outcome="filled"} 1"#
    ));
    assert!(scrape.contains("# TYPE rtx_lp_connected gauge"));
    for left_out in [
        "rtx_websocket_",
        "rtx_db_",
        "rtx_account_",
        "rtx_positions_open",
    ] {
        assert!(
            !scrape.contains(left_out),
            "{left_out} is exported by a gateway without it"
        );
    }

    // The trace the exemplar names was exported: the server span, the client span of the call
    // to the venue, and the venue's own server span, all in the caller's trace.
    Poll::up_to(Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .until_ok("the order's trace to be exported", || {
            let spans = spans.lock().unwrap();
            let in_trace: Vec<String> = spans
                .iter()
                .filter(|s| hex_id(&s.trace_id) == TRACE_ID)
                .map(|s| s.name.clone())
                .collect();
            let complete = ["POST /orders", "venue.fill", "POST /venue/fill"]
                .iter()
                .all(|name| in_trace.iter().any(|n| n == name));
            if complete {
                Ok(())
            } else {
                let all: Vec<(String, String)> = spans
                    .iter()
                    .map(|s| (hex_id(&s.trace_id), s.name.clone()))
                    .collect();
                Err(format!("in the trace {in_trace:?}; received {all:?}"))
            }
        });

    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    Poll::up_to(Duration::from_secs(2))
        .every(Duration::from_millis(20))
        .until("readiness to turn 503 during the drain", || {
            http_get(addr, "/ready").is_some_and(|(status, _)| status == 503)
        });
    let status = Poll::up_to(Duration::from_secs(10))
        .every(Duration::from_millis(50))
        .until_ok("the gateway to exit", || match child.0.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => Err(""),
        });
    assert!(status.success(), "{status}");
    let lines = lines.join().unwrap();
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["service"], "order-gateway", "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("order gateway stopped")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("order sent to the venue") && l.contains(TRACE_ID)),
        "the order's log line carries its trace id: {lines:?}"
    );
}

/// The example's process, killed if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
