//! Path and query extractors whose rejections are the error body, naming the parameter at
//! fault where axum says which one it is (`invalid_path` for a path that is not UTF-8,
//! `invalid_query` for a query string that does not parse).

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// [`Path`], refused with the error body.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

/// [`Query`], refused with the error body.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(path_error)
    }
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(query_error)
    }
}

fn path_error(rejection: PathRejection) -> ApiError {
    let status = rejection.status();
    let message = rejection.body_text();
    let (code, field) = match &rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::InvalidUtf8InPathParam { key }
            | ErrorKind::ParseErrorAtKey { key, .. }
            | ErrorKind::DeserializeError { key, .. } => ("invalid_path", Some(key.clone())),
            _ => ("invalid_path", None),
        },
        // A route without parameters given a path extractor: the engine's own mistake.
        _ => ("internal_error", None),
    };
    let status = if code == "invalid_path" {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let error = ApiError::new(status, code, message, None);
    match field {
        Some(field) => error.with_field(field),
        None => error,
    }
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        rejection.body_text(),
        None,
    )
}
