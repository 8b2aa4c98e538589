//! PostgreSQL goes away under the engine: orders are answered 503 with a clear error (they are
//! not orders), `/ready` turns 503 while `/health` stays 200, and when the database is back the
//! engine recovers; every order answered 201, before or after, is stored, and no other.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use rtx_testkit::{
    blocking_client, get_json, market_order, post_order, wait_for_ready_status, wait_until, Engine,
    PgCluster,
};

/// One market order from a retail account: its status code and body.
fn order(
    http: &reqwest::blocking::Client,
    engine: &Engine,
    side: &str,
    i: usize,
) -> (u16, serde_json::Value) {
    let account = format!("demo-{}", 4 + i % 7);
    post_order(http, engine, &market_order(&account, "EURUSD", side, 0.01))
}

fn health(http: &reqwest::blocking::Client, engine: &Engine) -> u16 {
    get_json(http, &engine.url("/health")).0
}

/// Restarts the engine on its database and checks it holds exactly the acknowledged orders.
fn assert_restart_holds_exactly(
    engine: Engine,
    http: &reqwest::blocking::Client,
    mut acknowledged: Vec<String>,
) {
    let engine = engine.restart();
    wait_for_ready_status(&engine, 200);
    let (code, stored) = get_json(http, &engine.url("/api/orders?limit=1000"));
    assert_eq!(code, 200, "{stored}");
    let mut stored: Vec<String> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(
        stored, acknowledged,
        "the database holds every acknowledged order and nothing else"
    );
}

#[test]
fn a_database_outage_is_answered_503_and_nothing_is_half_written() {
    let mut pg = PgCluster::start();
    let (_dir, cfg) = rtx_testkit::config_file(
        "db-outage",
        "[health]\ninterval_ms = 200\ntimeout_ms = 1000\n",
    );
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[
            ("RTX_DATABASE_URL", &pg.url),
            ("RTX_CONFIG", &cfg),
            ("RTX_SIM_ORDER_RATE", "0"),
        ],
    );
    let http = blocking_client();
    wait_for_ready_status(&engine, 200);
    let order = |i: usize| order(&http, &engine, "buy", i);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let (code, body) = order(i);
        assert_eq!(code, 201, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_owned());
    }

    pg.stop();
    let (code, body) = order(100);
    assert_eq!(
        code, 503,
        "an order that cannot be stored is refused: {body}"
    );
    assert_eq!(body["error"]["code"], "storage_unavailable");
    wait_for_ready_status(&engine, 503);
    assert_eq!(
        health(&http, &engine),
        200,
        "liveness never depends on the database"
    );

    pg.resume();
    wait_for_ready_status(&engine, 200);
    let mut answered_after = 0;
    wait_until(
        Duration::from_secs(20),
        "20 orders taken after the database came back",
        || {
            while answered_after < 20 {
                let (code, body) = order(200 + answered_after);
                if code != 201 {
                    // Pooled connections from before the outage fail once, then are replaced.
                    assert_eq!(code, 503, "{body}");
                    return false;
                }
                acknowledged.push(body["id"].as_str().unwrap().to_owned());
                answered_after += 1;
            }
            true
        },
    );

    // Restart on the same database: exactly the acknowledged orders are there.
    assert_restart_holds_exactly(engine, &http, acknowledged);
}

/// SQLite locked by another process (as a backup tool or a stray `sqlite3` shell would): the
/// order waits out the busy timeout and is refused 503, readiness turns 503 because commits fail,
/// and when the lock goes the engine takes orders again, having stored exactly the acknowledged.
#[test]
fn a_locked_sqlite_database_is_answered_503_and_readiness_follows_it() {
    let (_dir, cfg) = rtx_testkit::config_file(
        "db-lock",
        "[health]\ninterval_ms = 200\ntimeout_ms = 1000\n",
    );
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &cfg), ("RTX_SIM_ORDER_RATE", "0")],
    );
    let http = blocking_client();
    wait_for_ready_status(&engine, 200);
    let order = |i: usize| order(&http, &engine, "sell", i);
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let (code, body) = order(i);
        assert_eq!(code, 201, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_owned());
    }

    let sqlite3 = rtx_testkit::tool("RTX_SQLITE3", "sqlite3");
    let mut lock = Command::new(sqlite3)
        .arg(engine.dir.join("data/rtx-engine.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // It waits out a commit of the engine's rather than failing on it, and stops at an error;
    // its `1` says the lock is held.
    lock.stdin
        .as_mut()
        .unwrap()
        .write_all(b".bail on\n.timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 1;\n")
        .unwrap();
    let mut held = String::new();
    BufReader::new(lock.stdout.as_mut().unwrap())
        .read_line(&mut held)
        .unwrap();
    assert_eq!(held.trim(), "1", "sqlite3 took the exclusive lock");
    let (code, body) = order(100);
    assert_eq!(
        code, 503,
        "an order that cannot be committed is refused: {body}"
    );
    assert_eq!(body["error"]["code"], "storage_unavailable");
    wait_for_ready_status(&engine, 503);
    assert_eq!(health(&http, &engine), 200);

    lock.stdin
        .as_mut()
        .unwrap()
        .write_all(b"ROLLBACK;\n.quit\n")
        .unwrap();
    let _ = lock.wait();
    let (code, body) = order(200);
    assert_eq!(
        code, 201,
        "orders are taken again once the lock is gone: {body}"
    );
    acknowledged.push(body["id"].as_str().unwrap().to_owned());
    wait_for_ready_status(&engine, 200);

    assert_restart_holds_exactly(engine, &http, acknowledged);
}
