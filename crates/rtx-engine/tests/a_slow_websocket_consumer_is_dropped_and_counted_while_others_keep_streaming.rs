//! A WebSocket client that stops reading must cost the engine nothing but its own connection:
//! once its socket buffers are full it falls behind the quote ring (or a send times out), the
//! engine closes it and counts what it did not deliver as
//! `rtx_websocket_messages_dropped_total{reason="slow_consumer"}`, while a client that reads
//! keeps receiving quotes.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use rtx_testkit::{metric_sum, Engine, Poll};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

/// Fast quotes (6,000 messages a second over 3 LPs and 10 symbols) fill a stalled client's
/// socket buffers within seconds instead of minutes, at a rate a reading client keeps up with.
const CONFIG: &str = r#"
sim_order_rate = 0.0

[lp]
quote_interval_ms = 5
"#;

async fn scrape_sum(engine: &Engine, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_sum(&engine.scrape(), name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_counted() {
    let (_dir, config) = rtx_testkit::config_file("slow-websocket", CONFIG);
    let engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &[("RTX_CONFIG", &config)]);

    // The slow client: a small receive buffer, a completed handshake, then no reads at all.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(engine.addr).await.unwrap();
    let url = format!("ws://{}/ws/quotes", engine.addr);
    let (stalled, _) = tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .expect("handshake");

    // A healthy client alongside.
    let (mut healthy, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connect");
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        while let Some(Ok(message)) = healthy.next().await {
            if matches!(message, Message::Text(_)) {
                received += 1;
            }
        }
        received
    });

    Poll::up_to(Duration::from_secs(60))
        .every(Duration::from_millis(200))
        .until_async(
            "the stalled client to be dropped as a slow consumer",
            async || {
                scrape_sum(
                    &engine,
                    "rtx_websocket_messages_dropped_total",
                    &[("reason", "slow_consumer")],
                )
                .await
                    > 0.0
            },
        )
        .await;
    assert!(
        !reader.is_finished(),
        "the reading client was not the one dropped"
    );
    // Its connection is closed and no longer counted; the healthy one still is.
    Poll::up_to(Duration::from_secs(10))
        .until_async("one connection left", async || {
            scrape_sum(&engine, "rtx_websocket_connections_active", &[]).await == 1.0
        })
        .await;
    let sent_then = scrape_sum(&engine, "rtx_websocket_messages_sent_total", &[]).await;
    Poll::up_to(Duration::from_secs(10))
        .until_async("quotes still flowing to the healthy client", async || {
            scrape_sum(&engine, "rtx_websocket_messages_sent_total", &[]).await > sent_then + 1000.0
        })
        .await;
    assert!(
        !reader.is_finished(),
        "the healthy client is still connected"
    );
    assert_eq!(
        scrape_sum(&engine, "rtx_websocket_connections_opened_total", &[]).await,
        2.0
    );
    drop(stalled);
    reader.abort();
    drop(engine);
}
