//! `GET /api/v1/instances`: the router instances seen on this database in the last minute.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{at, ApiResult};
use crate::domain::time::now_ms;
use crate::handle::RouterHandle;
use crate::store::instances;

#[derive(Serialize)]
struct InstanceView {
    id: String,
    version: String,
    started_at: String,
    last_seen_at: String,
}

pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let rows = router.store().read(|conn| instances::recent(conn, now_ms())).await?;
    let items: Vec<InstanceView> = rows
        .into_iter()
        .map(|row| InstanceView { id: row.id, version: row.version, started_at: at(row.started_at), last_seen_at: at(row.last_seen_at) })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
