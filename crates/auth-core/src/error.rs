//! The one place where a failure becomes an HTTP status.
//!
//! Handlers and extractors return [`ApiError`]; its `IntoResponse` writes the documented
//! status and a JSON body `{"error": "<snake_case_code>"}`. Nothing a client sends can
//! produce a 5xx other than 503.

use std::time::Duration;

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

use crate::wire::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (the code says how).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 415: the body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: well-formed JSON of the wrong shape.
    #[error("unprocessable entity")]
    Unprocessable,
    /// 413: the body is larger than the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 401 on `/login`: unknown user or wrong password (deliberately indistinguishable).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 401: no valid session cookie.
    #[error("not authenticated")]
    Unauthenticated,
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
    #[error("invalid token")]
    InvalidToken,
    /// 401: refresh token unknown, expired, already used or its family revoked.
    #[error("invalid refresh token")]
    InvalidGrant,
    /// 403: authenticated, but the role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// 404: no such route.
    #[error("not found")]
    NotFound,
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 429: too many failed logins for this account.
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    /// 503: the store did not answer in time, or is unreachable. Fail closed: a store error
    /// is never read as "anonymous" or as "valid".
    #[error("store unavailable")]
    StoreUnavailable,
    /// 503: the server cannot take the request now (shutting down, worker pool gone).
    #[error("service unavailable")]
    Unavailable,
    /// 503: no response within `--request-timeout` (slow handler, slow store, or a client
    /// trickling its body). 503 rather than 408 because the wait is nearly always ours,
    /// 503 is the only 5xx the contract allows, and `Retry-After` tells a client what to do.
    #[error("request timed out")]
    Timeout,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidCredentials
            | ApiError::Unauthenticated
            | ApiError::InvalidToken
            | ApiError::InvalidGrant => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::StoreUnavailable | ApiError::Unavailable | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code) => code,
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unprocessable => "unprocessable_entity",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidToken => "invalid_token",
            ApiError::InvalidGrant => "invalid_grant",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::StoreUnavailable => "store_unavailable",
            ApiError::Unavailable => "unavailable",
            ApiError::Timeout => "timeout",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(ErrorBody { error: self.code() })).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::InvalidToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            ApiError::TooManyRequests { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::StoreUnavailable | ApiError::Unavailable | ApiError::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::Unprocessable,
            JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest("malformed_json"),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            _ => ApiError::BadRequest("unreadable_body"),
        }
    }
}

/// `axum::Json`, but its rejections are [`ApiError`]s, so a bad body gets our JSON error
/// with 400/413/415/422 instead of axum's plain-text message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("unreadable_body")
            }
        })?;
        // Every body we accept is a JSON object. serde's derived Deserialize would also
        // take an array of the fields in order (`["user1","pw"]`); refuse that shape.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                Ok(_) => ApiError::Unprocessable,
                Err(_) => ApiError::BadRequest("malformed_json"),
            });
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(value))
    }
}

/// `application/json` or any `+json` media type, parameters ignored.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_json_objects_are_accepted() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Login {
            username: String,
            password: String,
        }
        async fn extract(ct: &str, body: &'static str) -> Result<Json<Login>, ApiError> {
            let req = Request::builder().header(header::CONTENT_TYPE, ct).body(axum::body::Body::from(body)).unwrap();
            Json::<Login>::from_request(req, &()).await
        }
        assert!(extract("application/json", r#"{"username":"a","password":"b"}"#).await.is_ok());
        assert!(extract("Application/JSON; charset=utf-8", r#" {"username":"a","password":"b"}"#).await.is_ok());
        assert!(matches!(extract("application/json", r#"["a","b"]"#).await, Err(ApiError::Unprocessable)));
        assert!(matches!(extract("application/json", r#"[1,"#).await, Err(ApiError::BadRequest("malformed_json"))));
        assert!(matches!(extract("application/json", r#"{"username":1}"#).await, Err(ApiError::Unprocessable)));
        assert!(matches!(extract("application/json", r#"{"username":"#).await, Err(ApiError::BadRequest(_))));
        assert!(matches!(extract("text/plain", r#"{}"#).await, Err(ApiError::UnsupportedMediaType)));
    }

    #[test]
    fn invalid_token_carries_the_bearer_challenge() {
        let r = ApiError::InvalidToken.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer error=\"invalid_token\"");
    }

    #[test]
    fn store_errors_are_503_with_retry_after() {
        let r = ApiError::StoreUnavailable.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn request_timeout_is_503_timeout_with_retry_after() {
        let r = ApiError::Timeout.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(ApiError::Timeout.code(), "timeout");
    }

    #[test]
    fn rate_limit_rounds_retry_after_up_to_a_second() {
        let r = ApiError::TooManyRequests { retry_after: Duration::from_millis(10) }.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
