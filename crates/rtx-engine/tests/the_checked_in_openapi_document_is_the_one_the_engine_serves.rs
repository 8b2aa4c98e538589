//! `docs/openapi.json` is exactly what `GET /api/openapi.json` serves with the default
//! configuration, so a handler, parameter, status or field changed in Rust cannot leave the
//! checked-in document (and the clients generated from it) behind. The document is OpenAPI 3.1
//! and describes every endpoint the README lists.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rtx_testkit::{http_get, Engine};

const CHECKED_IN: &str = "docs/openapi.json";

#[test]
fn the_checked_in_document_is_the_served_one() {
    let engine = Engine::start(env!("CARGO_BIN_EXE_rtx-engine"), &[]);
    let (status, served) = http_get(engine.addr, "/api/openapi.json").expect("an answer");
    assert_eq!(status, 200, "{served}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(CHECKED_IN);
    // Regenerating is this test with RTX_UPDATE_OPENAPI=1: the engine is the only author.
    if std::env::var_os("RTX_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == served,
        "{CHECKED_IN} is stale: run `RTX_UPDATE_OPENAPI=1 cargo test -p rtx-engine --test \
         the_checked_in_openapi_document_is_the_one_the_engine_serves` and commit the file"
    );

    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/orders", "post"),
        ("/api/orders", "get"),
        ("/api/orders/{id}", "get"),
        ("/api/positions", "get"),
        ("/api/accounts/{id}", "get"),
        ("/ws/quotes", "get"),
        ("/admin/lps/{lp}/{action}", "post"),
        ("/admin/lps/{lp}/sequence-gap", "post"),
        ("/admin/symbols/{symbol}/price", "post"),
        ("/metrics", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/alerts", "get"),
        ("/api/openapi.json", "get"),
    ] {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is documented"))[method];
        assert!(operation.is_object(), "{method} {path} is documented");
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let body = &response["content"]["application/json"]["schema"]["$ref"];
                let probe = path == "/health" || path == "/ready";
                assert!(
                    probe || body == "#/components/schemas/ErrorBody",
                    "{method} {path} {status} answers the error body: {response}"
                );
            }
        }
    }
    let schemes = &document["components"]["securitySchemes"];
    for scheme in ["admin_token", "metrics_token"] {
        assert_eq!(schemes[scheme]["scheme"], "bearer", "{schemes}");
    }
}
