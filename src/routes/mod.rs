//! Thin HTTP handlers: parse the request at the edge, call the store or the router handle,
//! render the answer. Every error leaves as problem+json (see `error.rs`), including the ones
//! actix produces itself (unknown route, wrong method, unreadable JSON).

pub mod admin;
pub mod auth;
pub mod channels;
pub mod deliveries;
pub mod events;
pub mod health;
pub mod instances;
pub mod metrics;
pub mod rules;
pub mod sources;
pub mod tenants;

use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpRequest, ResponseError};
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, PROBLEM_JSON};

pub type ApiResult<T> = Result<T, ApiError>;

/// Registers every route. `max_body` bounds JSON request bodies.
pub fn configure(cfg: &mut web::ServiceConfig, max_body: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body)
            .content_type(|_| true)
            .error_handler(|err, _| json_error(err).into()),
    )
    .app_data(web::PayloadConfig::new(max_body))
    .app_data(web::QueryConfig::default().error_handler(|err, _| query_error(err).into()))
    .app_data(web::PathConfig::default().error_handler(|err, _| path_error(err).into()))
    .route("/healthz", web::get().to(health::healthz))
    .route("/metrics", web::get().to(metrics::metrics))
    .route("/", web::get().to(admin::index))
    .route("/favicon.ico", web::get().to(admin::favicon))
    .route("/static/{name}", web::get().to(admin::asset))
    .service(
        web::scope("/api/v1")
            .wrap(ErrorHandlers::new().default_handler_client(problem_for_bare_errors))
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            .service(web::resource("/events").route(web::post().to(events::ingest)))
            .service(web::resource("/sources/o365/audit").route(web::post().to(sources::o365_audit)))
            .service(web::resource("/sources/o365/notifications").route(web::post().to(sources::o365_notifications)))
            .service(web::resource("/sources/o365/contents").route(web::get().to(sources::o365_contents)))
            .service(web::resource("/tenants").get(tenants::list).post(tenants::create))
            .service(web::resource("/tenants/{id}").get(tenants::get).patch(tenants::update).delete(tenants::delete))
            .service(web::resource("/channels").get(channels::list).post(channels::create))
            .service(web::resource("/channels/{id}").get(channels::get).patch(channels::update).delete(channels::delete))
            .service(web::resource("/channels/{id}/test").post(channels::test))
            .service(web::resource("/channels/{id}/rotate-secret").post(channels::rotate_secret))
            .service(web::resource("/rules").get(rules::list).post(rules::create))
            .service(web::resource("/rules/{id}").get(rules::get).patch(rules::update).delete(rules::delete))
            .service(web::resource("/deliveries").get(deliveries::list))
            // Before `/deliveries/{id}`, which would take `redeliver` for an id.
            .service(web::resource("/deliveries/redeliver").post(deliveries::redeliver_many))
            .service(web::resource("/deliveries/{id}").get(deliveries::get))
            .service(web::resource("/deliveries/{id}/redeliver").post(deliveries::redeliver))
            .service(web::resource("/instances").get(instances::list))
            .default_service(web::to(unknown_route)),
    );
}

async fn unknown_route(req: HttpRequest) -> ApiResult<actix_web::HttpResponse> {
    Err(ApiError::NotFound(format!("no route {} {}; the API is described in the README", req.method(), req.path())))
}

/// Gives actix's own bare 4xx answers (wrong method, …) a problem+json body.
fn problem_for_bare_errors<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, _) = res.into_parts();
    let error = match status.as_u16() {
        405 => ApiError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.path())),
        404 => ApiError::NotFound(format!("nothing at {}", req.path())),
        413 => ApiError::PayloadTooLarge("the request body is too large".into()),
        _ => ApiError::BadRequest(format!("the request was refused ({status})")),
    };
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, error.error_response()).map_into_right_body()))
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => {
            ApiError::PayloadTooLarge(format!("the body is {length} bytes; the limit is {limit} (MAX_BODY_BYTES)"))
        }
        JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("the body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::BadRequest(format!("the JSON does not have the expected shape: {e}")),
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
        other => ApiError::BadRequest(format!("the body could not be read: {other}")),
    }
}

fn query_error(err: QueryPayloadError) -> ApiError {
    ApiError::BadRequest(format!("the query string is not valid: {err}"))
}

fn path_error(err: PathError) -> ApiError {
    ApiError::NotFound(format!("the path is not valid: {err}"))
}

/// For PATCH fields that may be set to null: absent → `None`, `null` → `Some(None)`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An RFC 3339 rendering of a stored instant, for views.
pub fn at(ms: i64) -> String {
    crate::domain::time::rfc3339(ms)
}
