//! `GET /healthz`: liveness, database reachability and this instance's id, no auth.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::handle::RouterHandle;
use crate::store;

pub async fn healthz(router: web::Data<RouterHandle>) -> HttpResponse {
    let instance_id = &router.instance().id;
    match router.store().read(store::ping).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok", "database": "ok", "instance_id": instance_id})),
        Err(err) => {
            log::warn!("health check: database unreachable: {err}");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "database": "unreachable", "instance_id": instance_id}))
        }
    }
}
