//! `GET /metrics`: the registry's exposition in the format and encoding the scraper asks for,
//! behind an optional bearer token.

use std::io::Write;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::bearer_matches;
use crate::metrics::exposition::parse_header_list;
use crate::metrics::{Format, Registry};

/// Serves a registry at `/metrics`.
#[derive(Clone)]
pub struct MetricsEndpoint {
    registry: Registry,
    token: Option<Arc<[u8]>>,
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

    /// Renders the exposition a request asks for: format from `Accept`, gzip from
    /// `Accept-Encoding`.
    pub fn render(&self, headers: &HeaderMap) -> Response {
        let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
        let mut body = Vec::with_capacity(64 * 1024);
        self.registry.encode(format, &mut body);
        let mut response_headers = HeaderMap::new();
        response_headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        response_headers.insert(VARY, HeaderValue::from_static("accept, accept-encoding"));
        if accepts_gzip(headers) {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            if encoder.write_all(&body).is_ok() {
                if let Ok(compressed) = encoder.finish() {
                    response_headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    return (StatusCode::OK, response_headers, compressed).into_response();
                }
            }
        }
        (StatusCode::OK, response_headers, body).into_response()
    }
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
    endpoint.render(headers)
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

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_header_list)
        .any(|item| (item.value == "gzip" || item.value == "*") && item.quality > 0.0)
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
    fn gzip_is_used_only_when_acceptable() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip; q=0.000"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
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
