//! `/ws/quotes` streams every LP's quotes as JSON; a symbol filter narrows the stream; an
//! unknown symbol is refused before the upgrade.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use rtx_testkit::{async_client, metric_sum, wait_until_async, Engine};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_receive_quotes() {
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_SIM_ORDER_RATE", "0")],
    );
    let (mut all, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/quotes", engine.addr))
        .await
        .expect("connect");
    let (mut eurusd, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/quotes?symbols=EURUSD", engine.addr))
            .await
            .expect("connect");
    let mut symbols = std::collections::BTreeSet::new();
    let mut lps = std::collections::BTreeSet::new();
    while symbols.len() < 10 || lps.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), all.next())
            .await
            .expect("quotes keep coming")
            .expect("open")
            .expect("frame");
        let Message::Text(text) = message else {
            continue;
        };
        let quote: serde_json::Value = serde_json::from_str(&text).expect("JSON quote");
        assert_eq!(quote["type"], "quote");
        assert!(
            quote["bid"].as_f64().unwrap() < quote["ask"].as_f64().unwrap(),
            "{quote}"
        );
        symbols.insert(quote["symbol"].as_str().unwrap().to_owned());
        lps.insert(quote["lp"].as_str().unwrap().to_owned());
    }
    for _ in 0..20 {
        let message = tokio::time::timeout(Duration::from_secs(10), eurusd.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let quote: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(quote["symbol"], "EURUSD");
    }
    assert_eq!(
        metric_sum(&engine.scrape(), "rtx_websocket_connections_active", &[]),
        2.0
    );
    // A message is counted once its send has completed, which can be after the client has it.
    wait_until_async(
        Duration::from_secs(10),
        "the 30 quotes received counted as sent",
        async || {
            metric_sum(
                &engine.scrape(),
                "rtx_websocket_messages_sent_total",
                &[("channel", "quotes")],
            ) >= 30.0
        },
    )
    .await;

    let refused = async_client()
        .get(engine.url("/ws/quotes?symbols=XAUUSD"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    drop(all);
    drop(eurusd);
}
