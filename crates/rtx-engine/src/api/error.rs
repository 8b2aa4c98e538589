//! The one error body every 4xx and 5xx carries: `{"error": {"code", "message", "field"}}`.
//! Handlers answer with [`ApiError`]; extractor rejections become one through
//! [`ApiPath`](super::extract::ApiPath) and [`ApiQuery`](super::extract::ApiQuery); and
//! [`json_errors`] wraps whatever error still leaves the router without it (a 405 from routing,
//! a rejection no handler maps), so a client never has to parse plain text.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Longest plain-text error body carried over as the message: rejection texts are one line.
const MAX_WRAPPED_MESSAGE: usize = 4 * 1024;

/// An error answer: a status and the error body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    field: Option<Cow<'static, str>>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
}

/// The error body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for a program (`code`) and for a person (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable reason, such as `invalid_field`, `unknown_account`,
    /// `not_found`, `method_not_allowed`, `request_timeout` or `storage_unavailable`.
    #[schema(example = "invalid_field")]
    pub code: Cow<'static, str>,
    /// What a person needs to fix the request; its wording may change between releases.
    #[schema(example = "`volume` must be a positive number")]
    pub message: String,
    /// The request field, query or path parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "volume")]
    pub field: Option<Cow<'static, str>>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        field: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: field.map(Cow::Borrowed),
            challenge: None,
        }
    }

    /// 401 `unauthorized` with the `WWW-Authenticate` challenge RFC 9110 asks of a 401:
    /// `challenge` names the scheme that would be accepted (`Bearer realm="admin"`).
    pub(crate) fn unauthorized(message: &'static str, challenge: &'static str) -> Self {
        Self {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message, None)
        }
    }

    pub(crate) fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&'static str>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message, field)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message, None)
    }

    /// Names the request field at fault by a name only known at run time (a path parameter).
    pub(crate) fn with_field(mut self, field: String) -> Self {
        self.field = Some(Cow::Owned(field));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// The stable code of an error answer nothing more specific was said about: the status's
/// reason phrase in snake case (`method_not_allowed`, `upgrade_required`).
fn generic_code(status: StatusCode) -> Cow<'static, str> {
    match status.canonical_reason() {
        Some(reason) => Cow::Owned(
            reason
                .chars()
                .map(|c| match c {
                    'A'..='Z' => c.to_ascii_lowercase(),
                    'a'..='z' | '0'..='9' => c,
                    _ => '_',
                })
                .collect(),
        ),
        None if status.is_server_error() => Cow::Borrowed("server_error"),
        None => Cow::Borrowed("client_error"),
    }
}

/// True for the JSON media types (`application/json`, `application/health+json`): a body
/// already in one of them is the handler's own answer and is left alone.
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|media| media == "application/json" || media.ends_with("+json"))
}

/// Outermost layer: a 4xx or 5xx that is not JSON (axum's 405 with its empty body, a
/// WebSocket handshake refusal in plain text, any rejection a handler did not map) gets the
/// error body, its text as the message and the status's generic code. Its other headers,
/// `Allow` among them, are kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_WRAPPED_MESSAGE)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase()
    } else {
        text
    };
    let wrapped = ApiError {
        status,
        code: generic_code(status),
        message,
        field: None,
        challenge: None,
    }
    .into_response();
    let (wrapped_parts, wrapped_body) = wrapped.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        wrapped_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, Body::new(wrapped_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_codes_are_the_reason_phrases_in_snake_case() {
        assert_eq!(
            generic_code(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        assert_eq!(
            generic_code(StatusCode::UPGRADE_REQUIRED),
            "upgrade_required"
        );
        assert_eq!(
            generic_code(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "unsupported_media_type"
        );
        assert_eq!(
            generic_code(StatusCode::from_u16(599).expect("a valid status")),
            "server_error"
        );
    }

    #[tokio::test]
    async fn a_plain_text_error_is_wrapped_and_keeps_its_allow_header() {
        let plain = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
            "",
        )
            .into_response();
        let wrapped = json_errors(plain).await;
        assert_eq!(wrapped.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrapped.headers()[header::ALLOW], "GET,HEAD");
        assert!(is_json(&wrapped));
        let body = axum::body::to_bytes(wrapped.into_body(), 1024)
            .await
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(body["error"]["message"], "method not allowed");
    }

    #[tokio::test]
    async fn json_answers_and_successes_are_left_alone() {
        let ok = (StatusCode::OK, "fine").into_response();
        assert!(!is_json(&json_errors(ok).await));
        let own = ApiError::not_found("unknown_account", "no such account").into_response();
        let body = axum::body::to_bytes(json_errors(own).await.into_body(), 1024)
            .await
            .expect("a body");
        assert!(String::from_utf8_lossy(&body).contains("unknown_account"));
    }
}
