//! `GET /healthz`: liveness, database reachability and this instance's id, no auth.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::handle::RouterHandle;
use crate::store;

/// The router's health.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health<'a> {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// `ok` or `unreachable`.
    database: &'static str,
    /// This instance's id (`GET /api/v1/instances` lists them all).
    instance_id: &'a str,
}

/// Liveness and database reachability, for load balancers and orchestrators.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The router runs and its database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    ),
)]
pub async fn healthz(router: web::Data<RouterHandle>) -> HttpResponse {
    let instance_id = &router.instance().id;
    match router.store().read(store::ping).await {
        Ok(()) => HttpResponse::Ok().json(Health { status: "ok", database: "ok", instance_id }),
        Err(err) => {
            log::warn!("health check: database unreachable: {err}");
            HttpResponse::ServiceUnavailable().json(Health { status: "unavailable", database: "unreachable", instance_id })
        }
    }
}
