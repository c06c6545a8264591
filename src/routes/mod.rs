//! Thin HTTP handlers: parse the request at the edge, call the store or the router handle,
//! render the answer. Every error leaves as problem+json (see `error.rs`), including the ones
//! actix produces itself (unknown route, wrong method, unreadable JSON).
//!
//! This file holds the route table, the one list every route is registered, listed and
//! documented from, and what the handlers share (request-time settings, PATCH fields).

pub mod admin;
pub mod auth;
pub mod channel_preview;
pub mod channel_types;
pub mod channels;
pub mod deliveries;
pub mod events;
pub mod extract;
pub mod health;
pub mod instances;
pub mod log_filters;
pub mod metrics;
pub mod openapi;
pub mod preview;
pub mod rules;
pub mod sent;
pub mod silences;
pub mod sources;
pub mod stats;
pub mod tenants;

use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{ALLOW, CONTENT_TYPE};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpRequest, ResponseError};
use serde::{Deserialize, Deserializer};

use crate::domain::Invalid;
use crate::error::{ApiError, PROBLEM_JSON};

pub type ApiResult<T> = Result<T, ApiError>;

/// One route of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Lowercase, as the OpenAPI document writes it.
    pub method: &'static str,
    pub path: &'static str,
    /// `module_handler`: the operation's id in the document.
    pub operation_id: &'static str,
}

impl Route {
    const fn new(method: &'static str, path: &'static str, operation_id: &'static str) -> Self {
        Self { method, path, operation_id }
    }
}

/// The route table: every route, in matching order, registered from here (`configure`), listed
/// from here ([`ROUTES`]) and documented from here ([`RoutePaths`]: each handler's
/// `#[utoipa::path]`), so the router and its OpenAPI document cannot hold different routes
/// without a test failing (`openapi::tests`).
macro_rules! route_table {
    (
        outside { $( $opath:literal { $( $omethod:ident => $omodule:ident :: $ohandler:ident ),+ $(,)? } )* }
        api { $( $apath:literal { $( $amethod:ident => $amodule:ident :: $ahandler:ident ),+ $(,)? } )* }
    ) => {
        /// Every route the router serves, paths as the OpenAPI document writes them.
        pub const ROUTES: &[Route] = &[
            $( $( Route::new(stringify!($omethod), $opath, concat!(stringify!($omodule), "_", stringify!($ohandler))), )+ )*
            $( $( Route::new(stringify!($amethod), concat!("/api/v1", $apath), concat!(stringify!($amodule), "_", stringify!($ahandler))), )+ )*
        ];

        fn outside_routes(cfg: &mut web::ServiceConfig) {
            $( cfg.service(web::resource($opath)$( .route(web::$omethod().to($omodule::$ohandler)) )+); )*
        }

        /// The `/api/v1` routes, relative to the scope.
        fn api_routes(cfg: &mut web::ServiceConfig) {
            $( cfg.service(web::resource($apath)$( .route(web::$amethod().to($amodule::$ahandler)) )+); )*
        }

        /// The operations of every route, from the handlers' `#[utoipa::path]`.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths( $( $( $omodule::$ohandler, )+ )* $( $( $amodule::$ahandler, )+ )* ))]
        pub struct RoutePaths;
    };
}

route_table! {
    outside {
        "/healthz" { get => health::healthz }
        "/metrics" { get => metrics::metrics }
        "/" { get => admin::index }
        "/favicon.ico" { get => admin::favicon }
        "/static/{name}" { get => admin::asset }
    }
    api {
        "/openapi.json" { get => openapi::document }
        "/events" { post => events::ingest }
        "/sources/o365/audit" { post => sources::o365_audit }
        "/sources/o365/notifications" { post => sources::o365_notifications }
        "/sources/o365/contents" { get => sources::o365_contents }
        "/tenants" { get => tenants::list, post => tenants::create }
        "/tenants/{id}" { get => tenants::get, patch => tenants::update, delete => tenants::delete }
        "/channel-types" { get => channel_types::list }
        "/channel-types/{type}/preview" { post => channel_preview::render }
        "/channels" { get => channels::list, post => channels::create }
        "/channels/{id}" { get => channels::get, patch => channels::update, delete => channels::delete }
        "/channels/{id}/test" { post => channels::test }
        "/channels/{id}/rotate-secret" { post => channels::rotate_secret }
        "/channels/{id}/probe" { post => channels::probe }
        "/rules" { get => rules::list, post => rules::create }
        // Before `/rules/{id}`, which would take `preview` for an id.
        "/rules/preview" { post => preview::try_event }
        "/rules/{id}" { get => rules::get, patch => rules::update, delete => rules::delete }
        "/deliveries" { get => deliveries::list }
        // Before `/deliveries/{id}`, which would take `redeliver` for an id.
        "/deliveries/redeliver" { post => deliveries::redeliver_many }
        "/deliveries/{id}" { get => deliveries::get }
        "/deliveries/{id}/redeliver" { post => deliveries::redeliver }
        "/stats/deliveries" { get => stats::deliveries }
        "/silences" { get => silences::list, post => silences::create }
        "/silences/{id}" { get => silences::get, delete => silences::delete }
        "/instances" { get => instances::list }
    }
}

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
    .service(
        web::scope("/api/v1")
            .wrap(ErrorHandlers::new().default_handler_client(problem_for_bare_errors))
            .wrap(actix_web::middleware::from_fn(extract::refuse_unread_query))
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            .configure(api_routes)
            .default_service(web::to(unknown_route)),
    )
    // Everything else: registered last, this scope takes every path, so a service registered
    // after `configure` (by a program embedding the router) is never reached.
    .service(
        web::scope("")
            .wrap(ErrorHandlers::new().default_handler_client(problem_for_bare_errors))
            .configure(outside_routes)
            .default_service(web::to(unknown_route)),
    );
}

async fn unknown_route(req: HttpRequest) -> ApiResult<actix_web::HttpResponse> {
    Err(ApiError::NotFound(format!(
        "no route {} {}; the API is described in the README and at /api/v1/openapi.json",
        req.method(),
        req.path()
    )))
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
    // actix's own 405 lists the resource's methods in `Allow` (RFC 9110); the problem keeps it.
    let allow = res.headers().get(ALLOW).filter(|v| !v.is_empty()).cloned();
    let (req, _) = res.into_parts();
    if status == actix_web::http::StatusCode::METHOD_NOT_ALLOWED {
        let error = ApiError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.path()));
        let mut response = error.error_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(ALLOW, allow);
        }
        return Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body()));
    }
    let error = match status.as_u16() {
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

/// Settings the HTTP layer needs at request time (given by `startup`, which builds the server).
#[derive(Clone)]
pub struct ApiConfig {
    pub retry: std::sync::Arc<crate::domain::retry::RetryPolicy>,
    pub targets: std::sync::Arc<crate::domain::network::TargetPolicy>,
    pub names: crate::outbound::Names,
}

/// A PATCH field that cannot be null, read with [`nullable`]: absent keeps the current value, a
/// value sets it, and `null` is refused naming the field (it would otherwise read as absent and
/// answer 200 having changed nothing).
pub fn given<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, Invalid> {
    match value {
        Some(None) => Err(Invalid::new(field, "cannot be null; send a value, or leave it out to keep the current one")),
        Some(value) => Ok(value),
        None => Ok(None),
    }
}

/// An RFC 3339 rendering of a stored instant, for views.
pub fn at(ms: i64) -> String {
    crate::domain::time::rfc3339(ms)
}
