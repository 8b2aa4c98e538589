//! Resting limit and stop orders, end to end through the quote stream: each rests while the
//! market is away from its price, survives a crash of the engine (SIGKILL, then a new process
//! on the same database), and fills when an injected market move reaches it, at a price on the
//! right side of its limit, while the orders the move does not reach keep resting.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rtx_testkit::{
    blocking_client, get_json, metric_sum, move_price, post_order, wait_for_fill, Engine, Poll,
};
use serde_json::{json, Value};

const TOKEN: &str = "resting-orders-admin-token";

/// No simulated flow, and every order B-book, so that fills do not depend on an LP's random
/// rejects: what is tested is the matching of resting orders against quotes.
const CONFIG: &str = r#"
sim_order_rate = 0.0

[trading]
abook_groups = []
abook_min_lots = 1000.0
"#;

fn resting(account: &str, order_type: &str, side: &str, price: f64) -> String {
    json!({
        "account_id": account,
        "symbol": "EURUSD",
        "side": side,
        "order_type": order_type,
        "volume": 1.0,
        "price": price,
    })
    .to_string()
}

fn order(client: &reqwest::blocking::Client, engine: &Engine, id: &str) -> Value {
    let (status, order) = get_json(client, &engine.url(&format!("/api/orders/{id}")));
    assert_eq!(status, 200, "{order}");
    order
}

fn wait_for_status(
    client: &reqwest::blocking::Client,
    engine: &Engine,
    id: &str,
    status: &str,
) -> Value {
    Poll::up_to(Duration::from_secs(20)).until_ok(&format!("order {id} {status}"), || {
        let order = order(client, engine, id);
        if order["status"] == status {
            Ok(order)
        } else {
            Err(order.to_string())
        }
    })
}

#[test]
fn resting_orders_rest_survive_a_crash_and_fill_on_the_right_side_of_their_price() {
    let (_dir, config) = rtx_testkit::config_file("resting-orders", CONFIG);
    let env = [("RTX_CONFIG", config.as_str()), ("RTX_ADMIN_TOKEN", TOKEN)];
    let mut engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &env);
    let client = blocking_client();
    // EURUSD opens at 1.0850 and its walk stays within a few pips of it: these four orders are
    // 150 pips away on either side.
    wait_for_fill(&client, &engine, "demo-10");
    let placed = [
        ("demo-4", "limit", "buy", 1.0700),
        ("demo-5", "stop", "sell", 1.0700),
        ("demo-6", "limit", "sell", 1.1000),
        ("demo-7", "stop", "buy", 1.1000),
    ];
    let mut ids = Vec::new();
    for (account, order_type, side, price) in placed {
        let (status, body) =
            post_order(&client, &engine, &resting(account, order_type, side, price));
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["status"], "pending",
            "{order_type} {side} rests: {body}"
        );
        ids.push(body["id"].as_str().unwrap().to_owned());
    }

    // A crash: whatever was acknowledged as pending must rest again in the new process.
    engine = engine.restart();
    wait_for_fill(&client, &engine, "demo-10");
    for id in &ids {
        assert_eq!(order(&client, &engine, id)["status"], "pending", "{id}");
    }

    // Down through 1.0700: the limit buy and the stop sell fill, the other two keep resting.
    move_price(&client, &engine, TOKEN, "EURUSD", 1.0650);
    let limit_buy = wait_for_status(&client, &engine, &ids[0], "filled");
    let stop_sell = wait_for_status(&client, &engine, &ids[1], "filled");
    assert!(
        limit_buy["fill_price"].as_f64().unwrap() <= 1.0700,
        "a limit buy never pays more than its limit: {limit_buy}"
    );
    assert!(
        stop_sell["fill_price"].as_f64().unwrap() <= 1.0700,
        "a stop sell fires at or below its stop: {stop_sell}"
    );
    for id in &ids[2..] {
        assert_eq!(order(&client, &engine, id)["status"], "pending", "{id}");
    }

    // Up through 1.1000: the limit sell and the stop buy fill.
    move_price(&client, &engine, TOKEN, "EURUSD", 1.1050);
    let limit_sell = wait_for_status(&client, &engine, &ids[2], "filled");
    let stop_buy = wait_for_status(&client, &engine, &ids[3], "filled");
    assert!(
        limit_sell["fill_price"].as_f64().unwrap() >= 1.1000,
        "a limit sell never receives less than its limit: {limit_sell}"
    );
    assert!(
        stop_buy["fill_price"].as_f64().unwrap() >= 1.1000,
        "a stop buy fires at or above its stop: {stop_buy}"
    );

    // Each fill is a position of the account that placed it, and is counted once.
    let (status, positions) = get_json(&client, &engine.url("/api/positions"));
    assert_eq!(status, 200);
    for (account, _, side, _) in placed {
        let position = positions
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["account_id"] == account && p["symbol"] == "EURUSD")
            .unwrap_or_else(|| panic!("{account} holds EURUSD: {positions}"));
        assert_eq!(position["side"], side, "{position}");
        assert_eq!(position["volume"], 1.0, "{position}");
    }
    let text = engine.scrape();
    for order_type in ["limit", "stop"] {
        assert_eq!(
            metric_sum(
                &text,
                "rtx_orders_total",
                &[("order_type", order_type), ("outcome", "filled")]
            ),
            2.0,
            "{order_type} fills counted once each, by the process that filled them"
        );
    }
    drop(engine);
}

#[test]
fn market_moves_need_the_admin_token_and_a_valid_price() {
    let (_dir, config) = rtx_testkit::config_file("price-admin", CONFIG);
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &config), ("RTX_ADMIN_TOKEN", TOKEN)],
    );
    let client = blocking_client();
    let post = |path: &str, token: Option<&str>, body: &str| {
        let mut request = client
            .post(engine.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };
    let price = "/admin/symbols/EURUSD/price";
    let gap = "/admin/lps/OANDA/sequence-gap";
    for (path, body) in [(price, r#"{"mid":1.2}"#), (gap, r#"{"messages":1}"#)] {
        assert_eq!(post(path, None, body).0, 401, "{path} without a token");
        assert_eq!(post(path, Some("wrong"), body).0, 401, "{path} wrong token");
    }
    for (path, body, code) in [
        (price, r#"{"mid":-1}"#, "invalid_price"),
        (price, r#"{"mid":0}"#, "invalid_price"),
        (price, r#"{"mid":"x"}"#, "invalid_body"),
        (price, r#"{"mid":1.1,"extra":1}"#, "invalid_body"),
        (gap, r#"{"messages":0}"#, "invalid_messages"),
        (gap, r#"{"messages":-3}"#, "invalid_body"),
    ] {
        let (status, answer) = post(path, Some(TOKEN), body);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{path} {body}: {answer}"
        );
    }
    let (status, answer) = post("/admin/symbols/XAUUSD/price", Some(TOKEN), r#"{"mid":1.2}"#);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("unknown_symbol"))
    );
    let (status, answer) = post(
        "/admin/lps/NOBODY/sequence-gap",
        Some(TOKEN),
        r#"{"messages":1}"#,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("unknown_lp"))
    );
    assert_eq!(post(price, Some(TOKEN), r#"{"mid":1.2}"#).0, 200);
    drop(engine);

    // Without RTX_ADMIN_TOKEN the endpoints do not exist.
    let engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &[("RTX_CONFIG", &config)]);
    let response = client
        .post(engine.url(price))
        .bearer_auth(TOKEN)
        .json(&json!({"mid": 1.2}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
    drop(engine);
}
