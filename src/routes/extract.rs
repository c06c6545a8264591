//! Request extractors that name the value at fault. A JSON body or a query string that does
//! not have the expected shape (a string where a number goes, `null` for a required field, an
//! unknown parameter) is refused with 400 `malformed-request` and a `field` that holds its path
//! (`hours`, `companies.default`, `microsoft_tenant_id`), so a client knows what to fix without
//! reading serde's words twice.
//!
//! The body is read by actix's own JSON extractor first (size limit, `MAX_BODY_BYTES`, syntax
//! errors), then shaped here.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::Invalid;
use crate::error::ApiError;

/// A JSON body of type `T`; a shape error names its field.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = body.await?;
            serde_path_to_error::deserialize(value).map(Json).map_err(|e| shape_error(&e, "body").into())
        })
    }
}

/// A query string of type `T`; a shape error names its parameter.
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = serde_urlencoded::Deserializer::new(form_urlencoded::parse(req.query_string().as_bytes()));
        ready(serde_path_to_error::deserialize(query).map(Query).map_err(|e| shape_error(&e, "query").into()))
    }
}

fn shape_error<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>, whole: &str) -> ApiError {
    let field = field_of(err);
    let message = err.inner().to_string();
    let (field, detail) = match field {
        Some(field) => (field.clone(), format!("`{field}`: {message}")),
        None => (whole.to_string(), message),
    };
    ApiError::Malformed(Invalid::new(field, detail))
}

/// The path of the value a deserialization error is about: serde's path, and for a missing
/// field the name serde gives inside the object the path points to (an unknown one is in the
/// path already). `None`: the whole input.
pub fn field_of<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>) -> Option<String> {
    let path = err.path().to_string();
    let message = err.inner().to_string();
    let named = message.split('`').nth(1).filter(|_| message.starts_with("missing field"));
    let joined = [Some(path.as_str()).filter(|p| *p != "."), named].into_iter().flatten().collect::<Vec<_>>().join(".");
    (!joined.is_empty()).then_some(joined)
}

/// The API routes that read a query string (each through [`Query`], which names an unknown
/// parameter); every other route takes none.
pub const ROUTES_WITH_QUERY: [&str; 3] = ["/api/v1/deliveries", "/api/v1/stats/deliveries", "/api/v1/sources/o365/contents"];

/// Refuses a query string on an API route that reads none (400 naming the first parameter),
/// rather than answering as if it had not been sent: `GET /api/v1/channels?tenant_id=x` would
/// otherwise list every channel.
pub async fn refuse_unread_query<B: actix_web::body::MessageBody>(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    let query = req.query_string();
    // Microsoft's webhook (its address may carry a query its owner chose) and the open
    // OpenAPI document are left as they are.
    let exempt = super::auth::OWN_AUTH_ROUTES.contains(&req.path()) || super::auth::OPEN_ROUTES.contains(&req.path());
    if query.is_empty() || exempt || ROUTES_WITH_QUERY.contains(&req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let first = form_urlencoded::parse(query.as_bytes()).next().map(|(name, _)| name.into_owned()).unwrap_or_default();
    let error = ApiError::Malformed(Invalid::new(first.clone(), format!("`{first}`: {} {} takes no query parameters", req.method(), req.path())));
    Ok(req.into_response(actix_web::ResponseError::error_response(&error)).map_into_right_body())
}
