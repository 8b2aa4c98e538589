//! A minute of the engine's own flow (simulated orders at 20 per second, an LP dropping and
//! coming back, refused orders), read line by line as an auditor would: nothing redacted (the
//! flow holds no card, token or address, so anything redacted would be a price or an id taken
//! for one), no key twice in one object, no empty value, no absolute or library-internal source
//! path, and no price with more decimals than its instrument quotes, in the logs or in the API.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::io::Read;
use std::time::{Duration, Instant};

use rtx_testkit::{async_client, get_json_async, lp_admin_async, Engine};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

const ENGINE: &str = env!("CARGO_BIN_EXE_rtx-engine");
const FLOW: Duration = Duration::from_secs(60);

/// A JSON object's members in order, repeats included (a map would keep one of them silently).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

/// Decimal places of a price as printed.
fn places(printed: &str) -> usize {
    printed.split_once('.').map_or(0, |(_, f)| f.len())
}

/// Places the instrument quotes with: a tenth of a pip.
fn quoted_places(symbol: &str) -> usize {
    if symbol.ends_with("JPY") {
        3
    } else {
        5
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_flow_has_no_redacted_number_repeated_key_empty_field_or_long_price() {
    let mut engine = Engine::start_capturing(
        ENGINE,
        &[("RTX_SIM_ORDER_RATE", "20"), ("RTX_ADMIN_TOKEN", "audit")],
    );
    let mut stdout = engine.take_stdout().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let http = async_client();
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < FLOW {
        // Every 10 s an LP drops and comes back, and an order is refused: WARN and ERROR lines.
        lp_admin_async(&http, &engine, "audit", "OANDA", "disconnect").await;
        let _ = http
            .post(engine.url("/api/orders"))
            .body(r#"{"account_id":"demo-4","symbol":"EURUSD","side":"buy","volume":5000}"#)
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        lp_admin_async(&http, &engine, "audit", "OANDA", "connect").await;
        tokio::time::sleep(Duration::from_secs(7)).await;
        round += 1;
    }
    let (status, orders) = get_json_async(&http, &engine.url("/api/orders?limit=1000")).await;
    assert_eq!(status, 200);
    let code = tokio::task::block_in_place(|| engine.terminate(Duration::from_secs(15)));
    assert_eq!(code, Some(0));
    let text = reader.join().unwrap();

    let mut trades = 0;
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(
            !line.contains("[REDACTED]"),
            "redacted in the engine's own flow: {line}"
        );
        let Members(members) = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let repeated: Vec<&&str> = keys
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| &w[0])
            .collect();
        assert!(repeated.is_empty(), "{repeated:?} repeated: {line}");
        for (key, value) in &members {
            if key != "message" {
                assert_ne!(value, "", "`{key}` empty: {line}");
            }
        }
        let field = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if let Some(file) = field("file").and_then(|f| f.as_str()) {
            assert!(
                !file.starts_with('/') && !file.contains("logging/events.rs"),
                "`file` must be the caller's, relative: {line}"
            );
        }
        if field("event").is_some_and(|e| e == "trade") {
            trades += 1;
            let symbol = field("symbol").unwrap().as_str().unwrap();
            let message = field("message").unwrap().as_str().unwrap();
            let printed = message.rsplit(" @ ").next().unwrap();
            assert_eq!(places(printed), quoted_places(symbol), "{line}");
            let price = field("price").unwrap();
            assert!(
                places(&price.to_string()) <= quoted_places(symbol),
                "{line}"
            );
            assert_eq!(printed.parse::<f64>().ok(), price.as_f64(), "{line}");
        }
    }
    assert!(
        trades >= 500,
        "{trades} trades in {round} rounds: too little flow to judge ({} lines)",
        lines.len()
    );

    let orders = orders.as_array().unwrap();
    let mut priced = 0;
    for order in orders {
        if let Some(price) = order["fill_price"].as_f64() {
            priced += 1;
            let symbol = order["symbol"].as_str().unwrap();
            assert!(
                places(&price.to_string()) <= quoted_places(symbol),
                "fill price past its instrument's precision: {order}"
            );
        }
    }
    assert!(
        priced >= 500,
        "only {priced} filled orders of {}",
        orders.len()
    );
}
