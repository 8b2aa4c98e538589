//! PostgreSQL goes away under the engine: orders are answered 503 with a clear error (they are
//! not orders), `/ready` turns 503 while `/health` stays 200, and when the database is back the
//! engine recovers; every order answered 201, before or after, is stored, and no other.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rtx_testkit::{Engine, PgCluster};

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client(timeout_secs: u64) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .build()
        .unwrap()
}

fn status(http: &reqwest::blocking::Client, engine: &Engine, path: &str) -> u16 {
    http.get(engine.url(path))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// One market order from a retail account: its status code and body.
fn order(
    http: &reqwest::blocking::Client,
    engine: &Engine,
    side: &str,
    i: usize,
) -> (u16, serde_json::Value) {
    let body = format!(
        r#"{{"account_id":"demo-{}","symbol":"EURUSD","side":"{side}","volume":0.01}}"#,
        4 + i % 7
    );
    let r = http
        .post(engine.url("/api/orders"))
        .body(body)
        .send()
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json::<serde_json::Value>().unwrap())
}

/// Restarts the engine on its database and checks it holds exactly the acknowledged orders.
fn assert_restart_holds_exactly(
    engine: Engine,
    http: &reqwest::blocking::Client,
    mut acknowledged: Vec<String>,
) {
    let engine = engine.restart();
    wait_for("restarted engine ready", Duration::from_secs(10), || {
        status(http, &engine, "/ready") == 200
    });
    let stored: Vec<serde_json::Value> = http
        .get(engine.url("/api/orders?limit=1000"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut stored: Vec<String> = stored
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
    let (dir, cfg) = rtx_testkit::config_file(
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
    let http = client(15);
    let status = |path: &str| status(&http, &engine, path);
    wait_for("readiness", Duration::from_secs(10), || {
        status("/ready") == 200
    });
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
    wait_for(
        "/ready 503 while the database is down",
        Duration::from_secs(10),
        || status("/ready") == 503,
    );
    assert_eq!(
        status("/health"),
        200,
        "liveness never depends on the database"
    );

    pg.resume();
    wait_for(
        "/ready 200 once the database is back",
        Duration::from_secs(20),
        || status("/ready") == 200,
    );
    let mut answered_after = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered_after < 20 {
        let (code, body) = order(200 + answered_after);
        if code == 201 {
            acknowledged.push(body["id"].as_str().unwrap().to_owned());
            answered_after += 1;
        } else {
            // Pooled connections from before the outage fail once, then are replaced.
            assert_eq!(code, 503, "{body}");
            assert!(
                Instant::now() < deadline,
                "orders still refused after the database came back: {body}"
            );
        }
    }

    // Restart on the same database: exactly the acknowledged orders are there.
    assert_restart_holds_exactly(engine, &http, acknowledged);
    let _ = std::fs::remove_dir_all(dir);
}

/// SQLite locked by another process (as a backup tool or a stray `sqlite3` shell would): the
/// order waits out the busy timeout and is refused 503, readiness turns 503 because commits fail,
/// and when the lock goes the engine takes orders again, having stored exactly the acknowledged.
#[test]
fn a_locked_sqlite_database_is_answered_503_and_readiness_follows_it() {
    use std::io::Write;
    let (dir, cfg) = rtx_testkit::config_file(
        "db-lock",
        "[health]\ninterval_ms = 200\ntimeout_ms = 1000\n",
    );
    let engine = Engine::start(
        env!("CARGO_BIN_EXE_rtx-engine"),
        &[("RTX_CONFIG", &cfg), ("RTX_SIM_ORDER_RATE", "0")],
    );
    let http = client(20);
    let status = |path: &str| status(&http, &engine, path);
    wait_for("readiness", Duration::from_secs(10), || {
        status("/ready") == 200
    });
    let order = |i: usize| order(&http, &engine, "sell", i);
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let (code, body) = order(i);
        assert_eq!(code, 201, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_owned());
    }

    let sqlite3 = rtx_testkit::tool("RTX_SQLITE3", "sqlite3");
    let mut lock = std::process::Command::new(sqlite3)
        .arg(engine.dir.join("data/rtx-engine.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    lock.stdin
        .as_mut()
        .unwrap()
        .write_all(b"BEGIN EXCLUSIVE;\nSELECT 1;\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = order(100);
    assert_eq!(
        code, 503,
        "an order that cannot be committed is refused: {body}"
    );
    assert_eq!(body["error"]["code"], "storage_unavailable");
    wait_for(
        "/ready 503 while commits fail",
        Duration::from_secs(10),
        || status("/ready") == 503,
    );
    assert_eq!(status("/health"), 200);

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
    wait_for("/ready 200 again", Duration::from_secs(10), || {
        status("/ready") == 200
    });

    assert_restart_holds_exactly(engine, &http, acknowledged);
    let _ = std::fs::remove_dir_all(dir);
}
