//! `GET /api/v1/instances`: the router instances seen on this database in the last minute.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{at, ApiResult};
use crate::domain::time::now_ms;
use crate::handle::RouterHandle;
use crate::store::instances;

/// A router instance working on this database.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Instance)]
struct InstanceView {
    id: String,
    /// The router's version.
    version: String,
    started_at: String,
    /// Its last heartbeat.
    last_seen_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InstanceList)]
struct Instances {
    items: Vec<InstanceView>,
}

/// The instances seen on this database in the last minute.
#[utoipa::path(get, path = "/api/v1/instances", tag = "operations", responses((status = 200, description = "The instances", body = Instances)))]
pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let rows = router.store().read(|conn| instances::recent(conn, now_ms())).await?;
    let items: Vec<InstanceView> = rows
        .into_iter()
        .map(|row| InstanceView { id: row.id, version: row.version, started_at: at(row.started_at), last_seen_at: at(row.last_seen_at) })
        .collect();
    Ok(HttpResponse::Ok().json(Instances { items }))
}
