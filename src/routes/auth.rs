//! Bearer tokens on every `/api/v1` route (SPEC section 9): the admin token may do everything,
//! the ingest token only `POST /api/v1/events` (and audit records). No token or a wrong one is
//! 401, the ingest token elsewhere is 403. The Office 365 webhook has its own header instead,
//! and the OpenAPI document needs no token.
//! Tokens are compared by hash, in constant time (`domain::token`).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use crate::domain::token::{Credentials, Role};
use crate::error::ApiError;

/// What the ingest token may POST to.
pub const INGEST_ROUTES: &[&str] = &["/api/v1/events", "/api/v1/sources/o365/audit"];

/// Authenticated by its own header (`Webhook-AuthID`), checked by its handler: the Management
/// Activity API cannot send a bearer token.
pub const OWN_AUTH_ROUTES: &[&str] = &["/api/v1/sources/o365/notifications"];

/// Served to anyone (SPEC section 15: the OpenAPI document needs no token).
pub const OPEN_ROUTES: &[&str] = &["/api/v1/openapi.json"];

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

pub async fn require_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if OWN_AUTH_ROUTES.contains(&req.path()) || OPEN_ROUTES.contains(&req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refusal = match req.app_data::<web::Data<Credentials>>() {
        None => Some(ApiError::Internal("no credentials configured".into())),
        Some(credentials) => {
            let presented = bearer(req.headers());
            match presented.map(|token| credentials.role_of(token)) {
                None => Some(ApiError::Unauthorized(
                    "send `Authorization: Bearer <token>` with the admin token (or the ingest token for POST /api/v1/events)".into(),
                )),
                Some(None) => Some(ApiError::Unauthorized("the bearer token is not valid".into())),
                Some(Some(Role::Admin)) => None,
                Some(Some(Role::Ingest)) if req.method() == Method::POST && INGEST_ROUTES.contains(&req.path()) => None,
                Some(Some(Role::Ingest)) => Some(ApiError::Forbidden(
                    "the ingest token may only POST /api/v1/events and /api/v1/sources/o365/audit; use the admin token for everything else".into(),
                )),
            }
        }
    };
    match refusal {
        None => Ok(next.call(req).await?.map_into_left_body()),
        Some(error) => Ok(req.into_response(error.error_response()).map_into_right_body()),
    }
}
