//! The API's error type, its RFC 9457 problem+json rendering, and what each store error is
//! answered with. Internal errors are logged with their context and reach the client only as a
//! generic 500; every other error tells the client what to fix.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::Invalid;
use crate::store::StoreError;

/// Media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// A field holds a value that is not accepted.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The body or query string does not have the expected shape; names the value at fault.
    #[error("{}", .0.message)]
    Malformed(Invalid),
    /// No token, or a token that is not the admin's or the ingest token.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token without the right to this route.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request line is longer than the router reads (answered before any route: `http_guard`).
    #[error("{0}")]
    UriTooLong(String),
    /// The request head is larger than the router reads (answered before any route: `http_guard`).
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The router cannot serve right now (database unreachable, shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the detail is logged, not shown.
    #[error("{0}")]
    Internal(String),
}

/// An error answer (RFC 9457).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `urn:spscan-router:problem:` and a slug: `malformed-request`, `invalid-field`,
    /// `unauthorized`, `forbidden`, `not-found`, `conflict`, `too-large`, `uri-too-long`,
    /// `headers-too-large`, `method-not-allowed`, `unavailable` or `internal`.
    #[serde(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: &'a str,
    status: u16,
    /// What went wrong and what to fix.
    detail: String,
    /// The field at fault (`invalid-field`, and `malformed-request` where one value has the wrong
    /// shape), e.g. `events[2].severity`, `hours`.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::Malformed(_) => "malformed-request",
            ApiError::Invalid(_) => "invalid-field",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "too-large",
            ApiError::UriTooLong(_) => "uri-too-long",
            ApiError::HeadersTooLarge(_) => "headers-too-large",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (detail, field) = match self {
            ApiError::Invalid(invalid) => (invalid.to_string(), Some(invalid.field.as_str())),
            ApiError::Malformed(invalid) => (invalid.message.clone(), Some(invalid.field.as_str())),
            ApiError::Internal(detail) => {
                log::error!("internal error: {detail}");
                ("the router failed unexpectedly; the cause is in its log".to_string(), None)
            }
            other => (other.to_string(), None),
        };
        let problem = Problem {
            kind: format!("urn:spscan-router:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            field,
        };
        let mut response = HttpResponse::build(status);
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer realm=\"spscan-router\""));
        }
        response.content_type(PROBLEM_JSON).json(problem)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as Db};
        match err {
            StoreError::NotFound(what) => ApiError::NotFound(format!("no such {what}")),
            StoreError::Invalid(invalid) => ApiError::Invalid(invalid),
            StoreError::Conflict(detail) => ApiError::Conflict(detail),
            StoreError::Database(Db::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                ApiError::Conflict(format!("already exists ({})", info.message()))
            }
            StoreError::Database(Db::DatabaseError(_, info)) if is_busy(info.message()) => {
                ApiError::Unavailable("the database is busy; retry the request".into())
            }
            StoreError::Pool(err) => ApiError::Unavailable(format!("the database is unreachable ({err}); retry the request")),
            err if err.is_unavailable() => ApiError::Unavailable(format!("the database is unavailable ({err}); nothing was stored, retry the request")),
            StoreError::Commit(err) => ApiError::Unavailable(format!("nothing was stored ({err}); retry the request")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}
