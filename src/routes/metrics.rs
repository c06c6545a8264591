//! `GET /metrics`: the Prometheus text exposition (SPEC section 15), for the admin token or
//! `METRICS_TOKEN` (a scraper needs nothing else). The gauges are read from the database now.

use actix_web::{web, HttpRequest, HttpResponse};

use super::ApiResult;
use crate::domain::breaker::CircuitState;
use crate::domain::time::now_ms;
use crate::domain::token::{Credentials, Role, TokenHash};
use crate::error::ApiError;
use crate::handle::RouterHandle;
use crate::metrics::ChannelGauges;
use crate::store::channels;

/// Who may scrape besides the admin token.
pub struct MetricsToken(pub Option<TokenHash>);

/// The Prometheus text exposition: counters, histograms, gauges and process metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The metrics (the README lists them)", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)),
)]
pub async fn metrics(req: HttpRequest, router: web::Data<RouterHandle>, credentials: web::Data<Credentials>, token: web::Data<MetricsToken>) -> ApiResult<HttpResponse> {
    let presented = super::auth::bearer(req.headers());
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized("send `Authorization: Bearer <token>` with METRICS_TOKEN or the admin token".into()));
    };
    let role = credentials.role_of(presented);
    let allowed = role == Some(Role::Admin) || token.0.as_ref().is_some_and(|hash| hash.matches(presented));
    if !allowed {
        // A token the router knows, but not one that may scrape: forbidden, not unknown.
        return Err(match role {
            Some(_) => ApiError::Forbidden("the ingest token may not read /metrics; use METRICS_TOKEN or the admin token".into()),
            None => ApiError::Unauthorized("the bearer token is neither METRICS_TOKEN nor the admin token".into()),
        });
    }
    let now = now_ms();
    // The database away: the counters and the process metrics are still worth having.
    let gauges = match router.store().read(|conn| Ok((channels::gauges(conn)?, channels::deleted_ids(conn)?))).await {
        Ok((found, deleted)) => Some(ChannelGauges {
            channels: found.into_iter().map(|(id, pending, health)| (id, pending, health.state(now) != CircuitState::Closed)).collect(),
            deleted,
        }),
        Err(err) => {
            log::warn!("metrics: the database did not answer for the gauges: {err}");
            None
        }
    };
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(router.metrics().render(gauges.as_ref())))
}
