//! A service built on the library (the request layer for the server span, a client span and
//! `trace_context` per outgoing call) is driven the way the W3C Trace Context test harness
//! drives a vendor's service: `POST /test` with headers and a JSON list of calls, each of which
//! the service makes back to this test, whose callback records the headers it received.
//!
//! The first 41 tests are the harness's own cases (Level 2, strict), under its names and with
//! its assertions; the ones after them cover the rules of the specification the harness leaves
//! out (reserved flags, the random flag when unset, sampling, what is sent on unchanged,
//! limits, the OTLP view of the spans). The callback reads the headers with its own parser,
//! written from the specification, never with the library's.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The example service itself, so that what the harness passes is what users read; its `main`
// goes unused here.
#[allow(dead_code)]
#[path = "../examples/trace_context_service.rs"]
mod service;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use rtx_monitoring::catalogue::{CatalogueConfig, TradingMetrics};
use rtx_monitoring::metrics::Registry;
use rtx_monitoring::trace::{FinishedSpan, SpanLayer, SpanSink};
use rtx_testkit::loopback_listener;
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "12345678901234567890123456789012";
const PARENT: &str = "1234567890123456";
const VALID_00: &str = "00-12345678901234567890123456789012-1234567890123456-00";
const VALID_01: &str = "00-12345678901234567890123456789012-1234567890123456-01";

/// The headers one callback received, names lower case, in order, repeats kept.
type Headers = Vec<(String, Vec<u8>)>;

#[derive(Default)]
struct Spans(Mutex<Vec<FinishedSpan>>);

impl SpanSink for Spans {
    fn push(&self, span: FinishedSpan) {
        self.0.lock().unwrap().push(span);
    }
}

/// The service, the callback server and what they recorded, shared by every test.
struct World {
    runtime: tokio::runtime::Runtime,
    service: SocketAddr,
    harness: SocketAddr,
    callbacks: Arc<Mutex<HashMap<u64, Headers>>>,
    spans: Arc<Spans>,
    client: reqwest::Client,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let spans = Arc::new(Spans::default());
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(
            SpanLayer::new(1.0, Some(spans.clone() as Arc<dyn SpanSink>)),
        ))
        .expect("the only global subscriber");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let callbacks: Arc<Mutex<HashMap<u64, Headers>>> = Arc::default();
        let service_listener = loopback_listener();
        let harness_listener = loopback_listener();
        let service = service_listener.local_addr().unwrap();
        let harness = harness_listener.local_addr().unwrap();
        let api = TradingMetrics::new(&Registry::new(), &CatalogueConfig::default())
            .unwrap()
            .api
            .clone();
        let store = Arc::clone(&callbacks);
        runtime.spawn(async move {
            service_listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(service_listener).unwrap();
            axum::serve(listener, service::router(api)).await.unwrap();
        });
        runtime.spawn(async move {
            harness_listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(harness_listener).unwrap();
            let app = Router::new()
                .route("/callback/{id}", post(record))
                .with_state(store);
            axum::serve(listener, app).await.unwrap();
        });
        World {
            runtime,
            service,
            harness,
            callbacks,
            spans,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    })
}

async fn record(
    State(store): State<Arc<Mutex<HashMap<u64, Headers>>>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    store.lock().unwrap().insert(id, headers);
}

/// Sends `headers` to the service and asks for `count` callbacks; gives back the headers of
/// each, as the harness's `make_request` does.
fn make_request(headers: &[(&str, &[u8])], count: usize) -> Vec<Headers> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let w = world();
    let ids: Vec<u64> = (0..count)
        .map(|_| NEXT.fetch_add(1, Ordering::Relaxed))
        .collect();
    let calls: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({"url": format!("http://{}/callback/{id}", w.harness), "arguments": []})
        })
        .collect();
    let mut request = w
        .client
        .post(format!("http://{}/test", w.service))
        .header("content-type", "application/json")
        .body(serde_json::Value::from(calls).to_string());
    for (name, value) in headers {
        request = request.header(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let status = w
        .runtime
        .block_on(async { request.send().await.map(|r| r.status()) })
        .expect("the service answers");
    assert_eq!(status, 200);
    let mut received = w.callbacks.lock().unwrap();
    ids.iter()
        .map(|id| {
            received
                .remove(id)
                .unwrap_or_else(|| panic!("the service made no callback {id}"))
        })
        .collect()
}

/// A `traceparent` as the callback reads it.
#[derive(Debug)]
struct Traceparent {
    version: String,
    trace_id: String,
    parent_id: String,
    flags: u8,
}

/// The single `traceparent` of a callback, which must match the version 00 format exactly.
fn traceparent(headers: &Headers) -> Traceparent {
    let values: Vec<&Vec<u8>> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values.len(),
        1,
        "expect one traceparent header: {headers:?}"
    );
    let text = std::str::from_utf8(values[0]).unwrap();
    let parts: Vec<&str> = text.split('-').collect();
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        parts.len() == 4
            && lower_hex(parts[0], 2)
            && lower_hex(parts[1], 32)
            && lower_hex(parts[2], 16)
            && lower_hex(parts[3], 2),
        "a malformed traceparent was sent: {text:?}"
    );
    assert_ne!(parts[0], "ff");
    assert_ne!(parts[1], "0".repeat(32));
    assert_ne!(parts[2], "0".repeat(16));
    Traceparent {
        version: parts[0].to_owned(),
        trace_id: parts[1].to_owned(),
        parent_id: parts[2].to_owned(),
        flags: u8::from_str_radix(parts[3], 16).unwrap(),
    }
}

/// The `tracestate` fields of a callback, raw.
fn tracestate_fields(headers: &Headers) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .collect()
}

/// The `tracestate` of a callback as the harness reads it: fields combined, members split at
/// commas with optional whitespace, each of which must match the grammar; a repeated key keeps
/// its first value.
fn tracestate(headers: &Headers) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for field in tracestate_fields(headers) {
        for member in field.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member
                .split_once('=')
                .unwrap_or_else(|| panic!("a member without '=' was sent: {member:?}"));
            let key_ok = key.len() <= 256
                && key
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b));
            let value_ok = (1..=256).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
                && !value.ends_with(' ');
            assert!(
                key_ok && value_ok,
                "a malformed member was sent: {member:?}"
            );
            if !entries.iter().any(|(k, _)| k == key) {
                entries.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    entries
}

fn get<'a>(state: &'a [(String, String)], key: &str) -> Option<&'a str> {
    state
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn joined(state: &[(String, String)]) -> String {
    state
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One request with one callback: the callback's traceparent and tracestate.
fn single(headers: &[(&str, &str)]) -> (Traceparent, Vec<(String, String)>) {
    let raw: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let callback = make_request(&raw, 1).remove(0);
    (traceparent(&callback), tracestate(&callback))
}

fn new_trace_for(headers: &[(&str, &str)]) {
    let (tp, _) = single(headers);
    assert_ne!(tp.trace_id, TRACE, "{headers:?} must start a new trace");
}

fn same_trace_for(headers: &[(&str, &str)]) -> Traceparent {
    let (tp, _) = single(headers);
    assert_eq!(tp.trace_id, TRACE, "{headers:?} must continue the trace");
    tp
}

fn parent(value: &'static str) -> (&'static str, &'static str) {
    ("traceparent", value)
}

fn ts(value: &str) -> (&'static str, &str) {
    ("tracestate", value)
}

// The harness's TraceContextTest.

#[test]
fn test_both_traceparent_and_tracestate_missing() {
    single(&[]);
}

#[test]
fn test_traceparent_included_tracestate_missing() {
    let tp = same_trace_for(&[parent(VALID_01)]);
    assert_ne!(tp.parent_id, PARENT);
}

#[test]
fn test_traceparent_duplicated() {
    let (tp, _) = single(&[
        parent("00-12345678901234567890123456789011-1234567890123456-01"),
        parent("00-12345678901234567890123456789012-1234567890123456-01"),
    ]);
    assert_ne!(tp.trace_id, "12345678901234567890123456789011");
    assert_ne!(tp.trace_id, TRACE);
}

#[test]
fn test_traceparent_header_name() {
    new_trace_for(&[("trace-parent", VALID_01)]);
    new_trace_for(&[("trace.parent", VALID_01)]);
}

#[test]
fn test_traceparent_header_name_valid_casing() {
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        same_trace_for(&[(name, VALID_01)]);
    }
}

#[test]
fn test_traceparent_version_0x00() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-01.",
    )]);
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
    )]);
}

#[test]
fn test_traceparent_version_0xcc() {
    same_trace_for(&[parent(
        "cc-12345678901234567890123456789012-1234567890123456-01",
    )]);
    same_trace_for(&[parent(
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
    )]);
    new_trace_for(&[parent(
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
    )]);
}

#[test]
fn test_traceparent_version_0xff() {
    new_trace_for(&[parent(
        "ff-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_version_illegal_characters() {
    new_trace_for(&[parent(
        ".0-12345678901234567890123456789012-1234567890123456-01",
    )]);
    new_trace_for(&[parent(
        "0.-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_version_too_long() {
    new_trace_for(&[parent(
        "000-12345678901234567890123456789012-1234567890123456-01",
    )]);
    new_trace_for(&[parent(
        "0000-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_version_too_short() {
    new_trace_for(&[parent(
        "0-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_trace_id_all_zero() {
    let (tp, _) = single(&[parent(
        "00-00000000000000000000000000000000-1234567890123456-01",
    )]);
    assert_ne!(tp.trace_id, "0".repeat(32));
}

#[test]
fn test_traceparent_trace_id_illegal_characters() {
    for bad in [
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
    ] {
        let (tp, _) = single(&[("traceparent", bad)]);
        assert!(!tp.trace_id.contains('.'));
    }
}

#[test]
fn test_traceparent_trace_id_too_long() {
    let (tp, _) = single(&[parent(
        "00-123456789012345678901234567890123-1234567890123456-01",
    )]);
    assert_ne!(tp.trace_id, TRACE);
    assert_ne!(tp.trace_id, "23456789012345678901234567890123");
}

#[test]
fn test_traceparent_trace_id_too_short() {
    let (tp, _) = single(&[parent(
        "00-1234567890123456789012345678901-1234567890123456-01",
    )]);
    assert_ne!(tp.trace_id, "1234567890123456789012345678901");
}

#[test]
fn test_traceparent_parent_id_all_zero() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-0000000000000000-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_illegal_characters() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-.234567890123456-01",
    )]);
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-123456789012345.-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_too_long() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-12345678901234567-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_too_short() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-123456789012345-01",
    )]);
}

#[test]
fn test_traceparent_trace_flags_illegal_characters() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-.0",
    )]);
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-0.",
    )]);
}

#[test]
fn test_traceparent_trace_flags_too_long() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-001",
    )]);
}

#[test]
fn test_traceparent_trace_flags_too_short() {
    new_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-1",
    )]);
}

#[test]
fn test_traceparent_ows_handling() {
    for value in [
        " 00-12345678901234567890123456789012-1234567890123456-01",
        "\t00-12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456-01 ",
        "00-12345678901234567890123456789012-1234567890123456-01\t",
        "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
    ] {
        same_trace_for(&[("traceparent", value)]);
    }
}

#[test]
fn test_tracestate_included_traceparent_missing() {
    let (_, one) = single(&[ts("foo=1")]);
    let (_, two) = single(&[ts("foo=1,bar=2")]);
    assert_eq!(one.len(), two.len());
}

#[test]
fn test_tracestate_included_traceparent_included() {
    let (tp, state) = single(&[parent(VALID_00), ts("foo=1,bar=2")]);
    assert_eq!(tp.trace_id, TRACE);
    assert_eq!(get(&state, "foo"), Some("1"));
    assert_eq!(get(&state, "bar"), Some("2"));
}

#[test]
fn test_tracestate_header_name() {
    for name in ["trace-state", "trace.state"] {
        let (_, state) = single(&[parent(VALID_00), (name, "foo=1")]);
        assert_eq!(get(&state, "foo"), None, "{name}");
    }
}

#[test]
fn test_tracestate_header_name_valid_casing() {
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        let (_, state) = single(&[parent(VALID_00), (name, "foo=1")]);
        assert_eq!(get(&state, "foo"), Some("1"), "{name}");
    }
}

#[test]
fn test_tracestate_empty_header() {
    let (tp, _) = single(&[parent(VALID_00), ts("")]);
    assert_eq!(tp.trace_id, TRACE);
    for headers in [
        [parent(VALID_00), ts("foo=1"), ts("")],
        [parent(VALID_00), ts(""), ts("foo=1")],
    ] {
        let (tp, state) = single(&headers);
        assert_eq!(tp.trace_id, TRACE);
        assert_eq!(get(&state, "foo"), Some("1"));
    }
}

#[test]
fn test_tracestate_multiple_headers_different_keys() {
    let (tp, state) = single(&[
        parent(VALID_00),
        ts("foo=1,bar=2"),
        ts("rojo=1,congo=2"),
        ts("baz=3"),
    ]);
    assert_eq!(tp.trace_id, TRACE);
    let text = joined(&state);
    let at = |member: &str| {
        text.find(member)
            .unwrap_or_else(|| panic!("{member} in {text}"))
    };
    assert!(at("foo=1") < at("bar=2"));
    assert!(at("bar=2") < at("rojo=1"));
    assert!(at("rojo=1") < at("congo=2"));
    assert!(at("congo=2") < at("baz=3"));
}

#[test]
fn test_tracestate_duplicated_keys() {
    for (fields, allowed) in [
        (vec!["foo=1,foo=1"], vec!["foo=1"]),
        (vec!["foo=1,foo=2"], vec!["foo=1", "foo=2"]),
        (vec!["foo=1", "foo=1"], vec!["foo=1"]),
        (vec!["foo=1", "foo=2"], vec!["foo=1", "foo=2"]),
    ] {
        let mut headers = vec![parent(VALID_00)];
        headers.extend(fields.iter().map(|f| ts(f)));
        let (tp, state) = single(&headers);
        assert_eq!(tp.trace_id, TRACE);
        let text = joined(&state);
        assert!(
            allowed.iter().any(|m| text.contains(m)),
            "{fields:?} sent on as {text:?}"
        );
    }
}

#[test]
fn test_tracestate_all_allowed_characters() {
    let key_without_vendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    for key in [key_without_vendor.to_owned(), key_with_vendor] {
        let member = format!("{key}={value}");
        let (_, state) = single(&[parent(VALID_00), ts(&member)]);
        assert_eq!(get(&state, &key), Some(value.as_str()));
    }
}

#[test]
fn test_tracestate_ows_handling() {
    for field in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
    ] {
        let (_, state) = single(&[parent(VALID_00), ts(field)]);
        assert_eq!(get(&state, "foo"), Some("1"));
        assert_eq!(get(&state, "bar"), Some("2"));
        assert_eq!(get(&state, "baz"), Some("3"));
    }
    for field in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        let (tp, state) = single(&[parent(VALID_00), ts(field)]);
        assert_eq!(tp.trace_id, TRACE);
        assert_eq!(get(&state, "foo"), Some("1"), "{field:?}");
    }
}

#[test]
fn test_tracestate_key_illegal_characters() {
    for (field, key) in [
        ("foo =1", "foo "),
        ("FOO=1", "FOO"),
        ("foo.bar=1", "foo.bar"),
    ] {
        let (_, state) = single(&[parent(VALID_00), ts(field)]);
        assert_eq!(get(&state, key), None);
    }
}

#[test]
fn test_tracestate_key_illegal_vendor_format() {
    for key in ["foo@", "foo@@bar", "foo@bar@baz"] {
        let (_, state) = single(&[parent(VALID_00), ts(&format!("{key}=1,bar=2"))]);
        assert_eq!(get(&state, key), Some("1"), "{key}");
        assert_eq!(get(&state, "bar"), Some("2"));
    }
    let (_, state) = single(&[parent(VALID_00), ts("@foo=1,bar=2")]);
    assert_eq!(
        get(&state, "bar"),
        None,
        "a key starting with @ discards the header"
    );
}

#[test]
fn test_tracestate_member_count_limit() {
    let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
    let fields =
        |n: usize| -> Vec<String> { members[..n].chunks(10).map(|c| c.join(",")).collect() };
    let thirty_two = fields(32);
    let mut headers = vec![parent(VALID_00)];
    headers.extend(thirty_two.iter().map(|f| ts(f)));
    let (_, state) = single(&headers);
    assert_eq!(get(&state, "bar01"), Some("01"));
    assert_eq!(state.len(), 32);
    let thirty_three = fields(33);
    let mut headers = vec![parent(VALID_00)];
    headers.extend(thirty_three.iter().map(|f| ts(f)));
    let (_, state) = single(&headers);
    assert_eq!(get(&state, "bar01"), None);
}

#[test]
fn test_tracestate_key_length_limit() {
    for key in [
        "z".repeat(256),
        "t".repeat(241) + "@" + &"v".repeat(14),
        "t".repeat(242) + "@v",
        "t@".to_owned() + &"v".repeat(15),
    ] {
        let member = format!("{key}=1");
        let (_, state) = single(&[parent(VALID_00), ts("foo=1"), ts(&member)]);
        assert_eq!(get(&state, "foo"), Some("1"));
        assert_eq!(
            get(&state, &key),
            Some("1"),
            "a {}-character key",
            key.len()
        );
    }
    let member = format!("{}=1", "z".repeat(257));
    let (_, state) = single(&[parent(VALID_00), ts("foo=1"), ts(&member)]);
    assert_eq!(get(&state, "foo"), None);
}

#[test]
fn test_tracestate_value_illegal_characters() {
    let (_, state) = single(&[parent(VALID_00), ts("foo=bar=baz")]);
    assert_eq!(get(&state, "foo"), None);
    let (_, state) = single(&[parent(VALID_00), ts("foo=,bar=3")]);
    assert_eq!(get(&state, "foo"), None);
    assert_eq!(get(&state, "bar"), None);
}

// The harness's AdvancedTest.

fn three_callbacks(headers: &[(&str, &[u8])]) -> Vec<Traceparent> {
    make_request(headers, 3).iter().map(traceparent).collect()
}

fn distinct<'a>(values: impl Iterator<Item = &'a String>) -> usize {
    values.collect::<std::collections::HashSet<_>>().len()
}

#[test]
fn test_multiple_requests_with_valid_traceparent() {
    let sent = three_callbacks(&[("traceparent", VALID_01.as_bytes())]);
    assert_eq!(distinct(sent.iter().map(|t| &t.trace_id)), 1);
    assert_eq!(sent[0].trace_id, TRACE);
    assert_eq!(distinct(sent.iter().map(|t| &t.parent_id)), 3);
}

#[test]
fn test_multiple_requests_without_traceparent() {
    let sent = three_callbacks(&[]);
    assert_eq!(distinct(sent.iter().map(|t| &t.parent_id)), 3);
}

#[test]
fn test_multiple_requests_with_illegal_traceparent() {
    let sent = three_callbacks(&[(
        "traceparent",
        b"00-00000000000000000000000000000000-1234567890123456-01",
    )]);
    assert!(sent.iter().all(|t| t.trace_id != "0".repeat(32)));
    assert_eq!(distinct(sent.iter().map(|t| &t.parent_id)), 3);
}

// The harness's TraceContext2Test.

#[test]
fn test_propagates_random_flag() {
    let tp = same_trace_for(&[parent(
        "00-12345678901234567890123456789012-1234567890123456-02",
    )]);
    assert_ne!(tp.parent_id, PARENT);
    assert_eq!(tp.flags & 0x02, 0x02, "random flag not set");
}

// Rules of the specification the harness does not check.

#[test]
fn reserved_flags_are_sent_as_zero() {
    for (received, sent) in [("ff", 0x03), ("fc", 0x00), ("05", 0x01), ("fe", 0x02)] {
        let value = format!("00-{TRACE}-{PARENT}-{received}");
        let (tp, _) = single(&[("traceparent", &value)]);
        assert_eq!(tp.trace_id, TRACE);
        assert_eq!(tp.flags, sent, "flags {received} are sent as {sent:02x}");
    }
}

#[test]
fn an_unset_random_flag_stays_unset_for_the_same_trace() {
    let tp = same_trace_for(&[parent(VALID_01)]);
    assert_eq!(tp.flags & 0x02, 0);
}

#[test]
fn a_new_trace_is_sent_as_version_00_with_the_random_flag() {
    for headers in [
        vec![],
        vec![parent(
            "ff-12345678901234567890123456789012-1234567890123456-01",
        )],
    ] {
        let (tp, _) = single(&headers);
        assert_eq!(tp.version, "00");
        assert_eq!(
            tp.flags & 0x02,
            0x02,
            "a trace id this service drew is random"
        );
    }
}

#[test]
fn a_higher_version_is_sent_on_as_version_00() {
    let tp = same_trace_for(&[parent(
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
    )]);
    assert_eq!(tp.version, "00");
}

#[test]
fn the_sampled_flag_follows_the_caller() {
    assert_eq!(same_trace_for(&[parent(VALID_00)]).flags & 0x01, 0);
    assert_eq!(same_trace_for(&[parent(VALID_01)]).flags & 0x01, 1);
}

#[test]
fn two_equal_traceparent_fields_are_still_no_parent() {
    new_trace_for(&[parent(VALID_01), parent(VALID_01)]);
}

#[test]
fn a_traceparent_that_is_not_ascii_starts_a_new_trace() {
    let callback = make_request(
        &[(
            "traceparent",
            b"00-12345678901234567890123456789012-1234567890123456-0\xe9",
        )],
        1,
    );
    assert_ne!(traceparent(&callback[0]).trace_id, TRACE);
}

#[test]
fn tracestate_is_not_sent_on_beside_an_invalid_or_missing_traceparent() {
    for headers in [
        vec![ts("foo=1")],
        vec![
            parent("00-00000000000000000000000000000000-1234567890123456-01"),
            ts("foo=1"),
        ],
        vec![parent(VALID_01), parent(VALID_01), ts("foo=1")],
    ] {
        let raw: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let callback = make_request(&raw, 1).remove(0);
        assert_eq!(
            tracestate_fields(&callback),
            Vec::<String>::new(),
            "{headers:?}"
        );
    }
}

#[test]
fn tracestate_is_sent_on_unchanged_as_one_field() {
    let received = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,a@b=  lead,x=~!";
    for callback in make_request(
        &[
            ("traceparent", VALID_01.as_bytes()),
            ("tracestate", received.as_bytes()),
        ],
        2,
    ) {
        assert_eq!(tracestate_fields(&callback), vec![received.to_owned()]);
    }
}

#[test]
fn an_empty_or_discarded_tracestate_is_not_sent() {
    for field in ["", " , ,", "foo=bar=baz"] {
        let callback = make_request(
            &[
                ("traceparent", VALID_01.as_bytes()),
                ("tracestate", field.as_bytes()),
            ],
            1,
        );
        assert!(tracestate_fields(&callback[0]).is_empty(), "{field:?}");
    }
}

#[test]
fn values_keep_their_leading_spaces_and_may_be_256_characters() {
    let (_, state) = single(&[parent(VALID_00), ts("foo=  1 ")]);
    assert_eq!(get(&state, "foo"), Some("  1"));
    let long = "v".repeat(256);
    let (_, state) = single(&[parent(VALID_00), ts(&format!("foo={long}"))]);
    assert_eq!(get(&state, "foo"), Some(long.as_str()));
    let (_, state) = single(&[parent(VALID_00), ts(&format!("foo={long}v,bar=1"))]);
    assert_eq!(
        get(&state, "bar"),
        None,
        "a 257-character value discards the header"
    );
}

#[test]
fn a_tracestate_that_is_not_ascii_is_dropped_and_the_traceparent_kept() {
    let callback = make_request(
        &[
            ("traceparent", VALID_01.as_bytes()),
            ("tracestate", b"foo=1"),
            ("tracestate", b"bar=\xe9"),
        ],
        1,
    );
    assert_eq!(traceparent(&callback[0]).trace_id, TRACE);
    assert!(tracestate_fields(&callback[0]).is_empty());
}

#[test]
fn the_longest_valid_tracestate_is_sent_on_whole() {
    // 32 members of 256-character keys and values: far past the 512 characters a vendor
    // must propagate at least.
    let members: Vec<String> = (0..32)
        .map(|i| format!("{:0>256}={}", i, "v".repeat(256)))
        .collect();
    let field = members.join(",");
    let callback = make_request(
        &[
            ("traceparent", VALID_01.as_bytes()),
            ("tracestate", field.as_bytes()),
        ],
        1,
    );
    assert_eq!(tracestate_fields(&callback[0]), vec![field]);
}

#[test]
fn each_call_has_its_own_client_span_under_a_server_span_with_a_remote_parent() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = format!("00-{trace}-00f067aa0ba902b7-03");
    let sent = make_request(
        &[
            ("traceparent", caller.as_bytes()),
            ("tracestate", b"congo=t61rcWkgMzE"),
        ],
        3,
    );
    let parents: Vec<String> = sent.iter().map(|h| traceparent(h).parent_id).collect();
    // Spans reach the sink when they close, which is after the callback answered.
    let spans = rtx_testkit::wait_for(Duration::from_secs(10), "the request's spans", || {
        let ours: Vec<FinishedSpan> = world()
            .spans
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| rtx_testkit::hex_id(&s.trace_id) == trace)
            .cloned()
            .collect();
        if ours.len() >= 4 {
            Ok(ours)
        } else {
            Err(format!("{} spans", ours.len()))
        }
    });
    let server = spans
        .iter()
        .find(|s| s.name == "POST /test")
        .expect("the server span");
    assert_eq!(
        server
            .parent_span_id
            .map(|p| rtx_testkit::hex_id(&p))
            .as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert!(server.parent_is_remote, "the caller is in another process");
    assert_eq!(server.flags, 0x03, "the caller's flags");
    assert_eq!(
        server
            .trace_state
            .as_ref()
            .map(|t| t.to_string())
            .as_deref(),
        Some("congo=t61rcWkgMzE")
    );
    let clients: Vec<&FinishedSpan> = spans.iter().filter(|s| s.name == "POST").collect();
    assert_eq!(clients.len(), 3);
    for client in &clients {
        assert_eq!(client.parent_span_id, Some(server.span_id));
        assert!(!client.parent_is_remote);
        assert!(
            parents.contains(&rtx_testkit::hex_id(&client.span_id)),
            "each outgoing parent id is a client span's own id"
        );
    }
    assert_eq!(distinct(parents.iter()), 3);
    for headers in &sent {
        assert_eq!(
            tracestate_fields(headers),
            vec!["congo=t61rcWkgMzE".to_owned()]
        );
    }
}
