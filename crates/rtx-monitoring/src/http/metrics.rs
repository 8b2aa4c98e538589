//! `GET /metrics`: the registry's exposition in the format (`Accept`) and compression
//! (`Accept-Encoding`: zstd, gzip) the scraper asks for, limited to the families named by
//! `name[]` query parameters, behind an optional bearer token. Scrapes that arrive while an
//! identical one is being encoded share its bytes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use super::bearer_matches;
use crate::metrics::exposition::parse_header_list;
use crate::metrics::{Format, Registry};

/// Serves a registry at `/metrics`.
#[derive(Clone)]
pub struct MetricsEndpoint {
    registry: Registry,
    token: Option<Arc<[u8]>>,
    scrapes: Arc<Scrapes>,
}

/// The compression of a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Compression {
    Identity,
    Gzip,
    Zstd,
}

impl Compression {
    /// The coding `Accept-Encoding` gives the highest quality, zstd before gzip on a tie (it
    /// is smaller and faster; see BENCHMARKS.md); `*` stands for any coding the header does
    /// not name. Identity when neither is acceptable: it always is, in practice, and a scraper
    /// that refused it too would rather have a body than a 406.
    fn negotiate(headers: &HeaderMap) -> Compression {
        let (mut gzip, mut zstd, mut any) = (None::<f32>, None::<f32>, None::<f32>);
        for item in headers
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_header_list)
        {
            let slot = match item.value.as_str() {
                "gzip" | "x-gzip" => &mut gzip,
                "zstd" => &mut zstd,
                "*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(item.quality, |q| q.max(item.quality)));
        }
        let gzip = gzip.or(any).unwrap_or(0.0);
        let zstd = zstd.or(any).unwrap_or(0.0);
        if zstd > 0.0 && zstd >= gzip {
            Compression::Zstd
        } else if gzip > 0.0 {
            Compression::Gzip
        } else {
            Compression::Identity
        }
    }

    fn content_encoding(self) -> Option<HeaderValue> {
        match self {
            Compression::Identity => None,
            Compression::Gzip => Some(HeaderValue::from_static("gzip")),
            Compression::Zstd => Some(HeaderValue::from_static("zstd")),
        }
    }

    /// Compresses `body`; `None` when the encoder fails (it cannot on a `Vec`), and then the
    /// body goes out uncompressed.
    fn compress(self, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            Compression::Identity => None,
            // The fastest level of each: a scrape is on the clock, and level 1 already takes
            // an exposition to a fifth or less of its size (see BENCHMARKS.md).
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::fast(),
                );
                encoder.write_all(body).ok()?;
                encoder.finish().ok()
            }
            Compression::Zstd => zstd::bulk::compress(body, 1).ok(),
        }
    }
}

/// What makes two scrapes identical: they get the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ScrapeKey {
    format: Format,
    compression: Compression,
    /// `name[]` values, sorted and without repeats; empty for every family.
    names: Vec<String>,
}

/// The scrapes being encoded right now, and how many encodings were made.
#[derive(Default)]
struct Scrapes {
    /// One entry per key while its encoding runs; a scrape that finds one waits for that
    /// encoding's bytes instead of making its own.
    in_flight: Mutex<HashMap<ScrapeKey, watch::Receiver<Option<Bytes>>>>,
    encodes: AtomicU64,
}

/// Takes a finished (or abandoned) encoding out of [`Scrapes::in_flight`], also when the
/// encoder panics, so that the next scrape of that key encodes afresh.
struct InFlightEntry<'a> {
    scrapes: &'a Scrapes,
    key: &'a ScrapeKey,
}

impl Drop for InFlightEntry<'_> {
    fn drop(&mut self) {
        self.scrapes
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.key);
    }
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token itself never appears in debug output.
        f.debug_struct("MetricsEndpoint")
            .field("auth", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsEndpoint {
    /// An open endpoint.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            token: None,
            scrapes: Arc::default(),
        }
    }

    /// Requires `Authorization: Bearer <token>`; an empty token leaves the endpoint open.
    pub fn with_bearer_token(mut self, token: Option<&str>) -> Self {
        self.token = token
            .filter(|t| !t.is_empty())
            .map(|t| Arc::from(t.as_bytes()));
        self
    }

    /// A router serving `GET /metrics`, to merge into the application's router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(self)
    }

    /// True when no token is required or `headers` carry it (see [`bearer_matches`]).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        self.token
            .as_deref()
            .is_none_or(|expected| bearer_matches(headers, expected))
    }

    /// How many times this endpoint has encoded the registry. Scrapes that shared an encoding
    /// count once, so under concurrent identical scrapes this grows slower than their number.
    pub fn encodes(&self) -> u64 {
        self.scrapes.encodes.load(Ordering::Relaxed)
    }

    /// Renders the exposition a request asks for: format from `Accept`, compression from
    /// `Accept-Encoding`, families from the `name[]` parameters of `uri`'s query (a name no
    /// family has selects nothing: an empty exposition, not an error).
    pub async fn render(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        let key = ScrapeKey {
            format: Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok())),
            compression: Compression::negotiate(headers),
            names: requested_names(uri),
        };
        let (body, compressed) = self.body(key.clone()).await;
        let mut response_headers = HeaderMap::new();
        response_headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(key.format.content_type()),
        );
        response_headers.insert(VARY, HeaderValue::from_static("accept, accept-encoding"));
        if compressed {
            if let Some(coding) = key.compression.content_encoding() {
                response_headers.insert(CONTENT_ENCODING, coding);
            }
        }
        (StatusCode::OK, response_headers, body).into_response()
    }

    /// The bytes for `key`, and whether they are compressed as it asks. The first scrape of a
    /// key encodes; one that arrives while that encoding runs waits for it and shares its bytes.
    /// The entry leaves the table before the bytes are handed out, so a scrape that arrives
    /// after an encoding finished never gets it: it sees the registry as of its own arrival.
    async fn body(&self, key: ScrapeKey) -> (Bytes, bool) {
        let (leader, mut receiver) = {
            let mut in_flight = self
                .scrapes
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(&key) {
                Some(receiver) => (None, receiver.clone()),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    in_flight.insert(key.clone(), receiver.clone());
                    (Some(sender), receiver)
                }
            }
        };
        let Some(sender) = leader else {
            if let Ok(shared) = receiver.wait_for(Option::is_some).await {
                if let Some(body) = shared.clone() {
                    return (body, key.compression != Compression::Identity);
                }
            }
            // The encoding it waited on panicked: make one of its own.
            return self.encode(&key);
        };
        let entry = InFlightEntry {
            scrapes: &self.scrapes,
            key: &key,
        };
        let (body, compressed) = self.encode(&key);
        drop(entry);
        if compressed || key.compression == Compression::Identity {
            // Shared only when it is what the key says; a failed compression is not.
            sender.send_replace(Some(body.clone()));
        }
        (body, compressed)
    }

    fn encode(&self, key: &ScrapeKey) -> (Bytes, bool) {
        self.scrapes.encodes.fetch_add(1, Ordering::Relaxed);
        let names: Vec<&str> = key.names.iter().map(String::as_str).collect();
        let mut body = Vec::with_capacity(64 * 1024);
        self.registry.encode_selected(key.format, &names, &mut body);
        match key.compression.compress(&body) {
            Some(compressed) => (Bytes::from(compressed), true),
            None => (Bytes::from(body), false),
        }
    }
}

/// The `name[]` values of a query (`?name[]=a&name[]=b`, percent-encoded or not), sorted and
/// without repeats so that the same selection in another order shares an encoding.
fn requested_names(uri: &Uri) -> Vec<String> {
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri) else {
        return Vec::new();
    };
    let mut names: Vec<String> = pairs
        .into_iter()
        .filter(|(key, _)| key == "name[]")
        .map(|(_, value)| value)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

async fn serve_metrics(State(endpoint): State<MetricsEndpoint>, request: Request) -> Response {
    let headers = request.headers();
    if !endpoint.authorized(headers) {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let reason = if headers.contains_key(AUTHORIZATION) {
            "the presented credential does not match"
        } else {
            "no Authorization header"
        };
        crate::logging::events::security("scrape /metrics", "refused", peer, reason);
        return unauthorized();
    }
    endpoint.render(request.uri(), headers).await
}

fn unauthorized() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    );
    (
        StatusCode::UNAUTHORIZED,
        headers,
        "a valid bearer token is required for /metrics\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn compression_follows_accept_encoding_quality() {
        let pick =
            |value: &'static str| Compression::negotiate(&headers(&[("accept-encoding", value)]));
        assert_eq!(pick("gzip"), Compression::Gzip);
        assert_eq!(pick("br, gzip;q=0.5"), Compression::Gzip);
        assert_eq!(pick("gzip;q=0"), Compression::Identity);
        assert_eq!(pick("gzip; q=0.000"), Compression::Identity);
        assert_eq!(pick("identity"), Compression::Identity);
        assert_eq!(pick("zstd"), Compression::Zstd);
        assert_eq!(pick("gzip, zstd"), Compression::Zstd, "a tie goes to zstd");
        assert_eq!(pick("gzip;q=1, zstd;q=0.9"), Compression::Gzip);
        assert_eq!(
            pick("zstd;q=0, *"),
            Compression::Gzip,
            "* does not undo a refusal"
        );
        assert_eq!(pick("*"), Compression::Zstd);
        assert_eq!(pick("*;q=0.5, gzip"), Compression::Gzip);
        assert_eq!(pick("*;q=0"), Compression::Identity);
        assert_eq!(
            Compression::negotiate(&HeaderMap::new()),
            Compression::Identity
        );
        // Prometheus sends this one.
        assert_eq!(pick("gzip"), Compression::Gzip);
        let two = headers(&[
            ("accept-encoding", "gzip;q=0.5"),
            ("accept-encoding", "zstd"),
        ]);
        assert_eq!(Compression::negotiate(&two), Compression::Zstd);
    }

    #[test]
    fn names_come_from_every_name_parameter() {
        let names = |uri: &'static str| requested_names(&Uri::from_static(uri));
        assert_eq!(names("/metrics"), Vec::<String>::new());
        assert_eq!(
            names("/metrics?name[]=b_total&name%5B%5D=a&name[]=b_total&other=c"),
            vec!["a".to_owned(), "b_total".to_owned()]
        );
        assert_eq!(names("/metrics?name[]="), vec![String::new()]);
    }

    #[test]
    fn bearer_auth_accepts_only_the_token() {
        let e = MetricsEndpoint::new(Registry::new()).with_bearer_token(Some("s3cret"));
        assert!(e.authorized(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(e.authorized(&headers(&[("authorization", "bearer s3cret")])));
        assert!(!e.authorized(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!e.authorized(&headers(&[("authorization", "Basic s3cret")])));
        assert!(!e.authorized(&HeaderMap::new()));
        assert!(MetricsEndpoint::new(Registry::new()).authorized(&HeaderMap::new()));
    }
}
