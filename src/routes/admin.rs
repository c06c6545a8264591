//! The admin page (SPEC section 8): `static/` is embedded in the binary at build time, so the
//! page works from any working directory and from an installed binary, with no build step and
//! no other origin. It asks for the admin token and talks to the same `/api/v1`.

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};

use super::ApiResult;
use crate::error::ApiError;

/// `(name, media type, contents)` of every asset under `/static/`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../static/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../static/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../../static/api.js")),
    ("ui.js", "text/javascript; charset=utf-8", include_str!("../../static/ui.js")),
    ("overview.js", "text/javascript; charset=utf-8", include_str!("../../static/overview.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("../../static/chart.js")),
    ("channels.js", "text/javascript; charset=utf-8", include_str!("../../static/channels.js")),
    ("rules.js", "text/javascript; charset=utf-8", include_str!("../../static/rules.js")),
    ("conditions.js", "text/javascript; charset=utf-8", include_str!("../../static/conditions.js")),
    ("noise.js", "text/javascript; charset=utf-8", include_str!("../../static/noise.js")),
    ("preview.js", "text/javascript; charset=utf-8", include_str!("../../static/preview.js")),
    ("tenants.js", "text/javascript; charset=utf-8", include_str!("../../static/tenants.js")),
    ("tenant.js", "text/javascript; charset=utf-8", include_str!("../../static/tenant.js")),
    ("logs.js", "text/javascript; charset=utf-8", include_str!("../../static/logs.js")),
    ("silences.js", "text/javascript; charset=utf-8", include_str!("../../static/silences.js")),
    ("sent.js", "text/javascript; charset=utf-8", include_str!("../../static/sent.js")),
    ("firstrun.js", "text/javascript; charset=utf-8", include_str!("../../static/firstrun.js")),
    ("message_preview.js", "text/javascript; charset=utf-8", include_str!("../../static/message_preview.js")),
    ("channel_rule_offer.js", "text/javascript; charset=utf-8", include_str!("../../static/channel_rule_offer.js")),
    ("favicon.svg", FAVICON_TYPE, FAVICON),
];

const FAVICON: &str = include_str!("../../static/favicon.svg");
const FAVICON_TYPE: &str = "image/svg+xml";

const INDEX: &str = include_str!("../../static/index.html");

/// The admin page.
#[utoipa::path(get, path = "/", tag = "operations", responses((status = 200, description = "The admin page", content_type = "text/html", body = String)))]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(INDEX)
}

/// `/favicon.ico`, which browsers and tools ask for on their own: the same icon as the page's.
#[utoipa::path(get, path = "/favicon.ico", tag = "operations", responses((status = 200, description = "The admin page's icon", content_type = "image/svg+xml", body = String)))]
pub async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(FAVICON_TYPE)
        .insert_header(CacheControl(vec![CacheDirective::MaxAge(86_400)]))
        .body(FAVICON)
}

/// A file of the admin page.
#[utoipa::path(
    get,
    path = "/static/{name}",
    tag = "operations",
    params(("name" = String, Path, description = "The file, e.g. `app.js`")),
    responses((status = 200, description = "The file", content(
        (String = "text/css; charset=utf-8"),
        (String = "text/javascript; charset=utf-8"),
        (String = "image/svg+xml"),
    ))),
)]
pub async fn asset(name: web::Path<String>) -> ApiResult<HttpResponse> {
    let (_, media_type, body) = ASSETS
        .iter()
        .find(|(file, _, _)| *file == name.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("no admin page asset {name}")))?;
    Ok(HttpResponse::Ok()
        .content_type(*media_type)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(*body))
}
