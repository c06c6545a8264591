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
