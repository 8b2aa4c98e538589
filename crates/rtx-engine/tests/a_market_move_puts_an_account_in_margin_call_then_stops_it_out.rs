//! Margin call and stop-out, driven by the market: a leveraged position goes into margin call
//! when an injected move takes its margin level below 100%, with the account and the
//! `rtx_accounts_in_margin_call` gauge saying so while the position stays open; a further move
//! below 50% closes it at market, realizes the loss into the balance, records the closing order
//! and counts one stop-out. Accounts without positions are left alone.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_testkit::{
    blocking_client, get_json, metric_sum, move_price, post_order, wait_for_fill, Engine, Poll,
};
use serde_json::{json, Value};

const TOKEN: &str = "margin-admin-token";

/// No simulated flow, every order B-book (no LP reject can get in the way), default leverage
/// (100) and levels (margin call below 100%, stop-out below 50%).
const CONFIG: &str = r#"
sim_order_rate = 0.0

[trading]
abook_groups = []
abook_min_lots = 1000.0
"#;

fn account(client: &reqwest::blocking::Client, engine: &Engine) -> Value {
    let (status, account) = get_json(client, &engine.url("/api/accounts/demo-2"));
    assert_eq!(status, 200, "{account}");
    account
}

fn eurusd_position(client: &reqwest::blocking::Client, engine: &Engine) -> Option<Value> {
    let (status, positions) = get_json(client, &engine.url("/api/positions"));
    assert_eq!(status, 200, "{positions}");
    positions
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account_id"] == "demo-2" && p["symbol"] == "EURUSD")
        .cloned()
}

#[test]
fn a_falling_market_calls_margin_then_stops_the_account_out() {
    let (_dir, config) = rtx_testkit::config_file("margin-call", CONFIG);
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &config), ("RTX_ADMIN_TOKEN", TOKEN)],
    );
    let client = blocking_client();
    wait_for_fill(&client, &engine, "demo-10");

    // 40 lots of EURUSD near 1.0850 on 100,000 USD: about 43,400 USD of margin, level ~230%.
    let body = json!({"account_id": "demo-2", "symbol": "EURUSD", "side": "buy", "volume": 40.0});
    let (status, order) = post_order(&client, &engine, &body.to_string());
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "filled", "{order}");
    let entry = order["fill_price"].as_f64().unwrap();
    let before = account(&client, &engine);
    assert_eq!(before["in_margin_call"], false, "{before}");
    assert!(before["margin_level"].as_f64().unwrap() > 200.0, "{before}");

    // Down 150 pips: a loss of about 60,000 USD, equity ~40,000 against ~42,800 of margin
    // (level ~93%): margin call, and the position stays open.
    move_price(&client, &engine, TOKEN, "EURUSD", 1.0700);
    let called = Poll::up_to(Duration::from_secs(20)).until_ok("a margin call", || {
        let a = account(&client, &engine);
        if a["in_margin_call"] == true {
            Ok(a)
        } else {
            Err(a.to_string())
        }
    });
    let level = called["margin_level"].as_f64().unwrap();
    assert!((50.0..100.0).contains(&level), "{called}");
    assert!(
        eurusd_position(&client, &engine).is_some(),
        "a margin call closes nothing"
    );
    Poll::up_to(Duration::from_secs(10)).until("the margin-call gauge", || {
        metric_sum(&engine.scrape(), "rtx_accounts_in_margin_call", &[]) == 1.0
    });
    assert_eq!(metric_sum(&engine.scrape(), "rtx_stopouts_total", &[]), 0.0);

    // Down another 80 pips: equity ~8,000 USD, level ~18%: the position is closed at market.
    move_price(&client, &engine, TOKEN, "EURUSD", 1.0620);
    Poll::up_to(Duration::from_secs(20)).until("the stop-out to close the position", || {
        eurusd_position(&client, &engine).is_none()
    });
    let after = Poll::up_to(Duration::from_secs(10)).until_ok("margin call cleared", || {
        let a = account(&client, &engine);
        if a["in_margin_call"] == false {
            Ok(a)
        } else {
            Err(a.to_string())
        }
    });
    let balance = after["balance"].as_f64().unwrap();
    let expected_loss = (entry - 1.0620) * 40.0 * 100_000.0;
    assert!(
        balance < 100_000.0 - expected_loss + 2_000.0
            && balance > 100_000.0 - expected_loss - 2_000.0,
        "the loss (about {expected_loss:.0} USD) is realized into the balance: {after}"
    );
    assert_eq!(after["margin_used"], 0.0, "{after}");
    let (_, orders) = get_json(&client, &engine.url("/api/orders?account_id=demo-2"));
    let closing = orders
        .as_array()
        .or_else(|| orders["orders"].as_array())
        .unwrap()
        .iter()
        .find(|o| o["client_order_id"] == "stop-out")
        .cloned()
        .unwrap_or_else(|| panic!("the closing order is recorded: {orders}"));
    assert_eq!(closing["status"], "filled", "{closing}");
    assert_eq!(closing["side"], "sell", "{closing}");
    assert_eq!(closing["volume"], 40.0, "{closing}");

    let text = engine.scrape();
    assert_eq!(
        metric_sum(&text, "rtx_stopouts_total", &[]),
        1.0,
        "one stop-out"
    );
    Poll::up_to(Duration::from_secs(10)).until("the margin-call gauge back to 0", || {
        metric_sum(&engine.scrape(), "rtx_accounts_in_margin_call", &[]) == 0.0
    });
    drop(engine);
}
