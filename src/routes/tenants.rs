//! `/api/v1/tenants`: list, register, read, rename, delete.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{at, ApiResult};
use crate::domain::tenant::{parse_microsoft_tenant_id, Tenant, TenantInput};
use crate::domain::time::now_ms;
use crate::domain::{bounded_text, Invalid};
use crate::handle::RouterHandle;
use crate::store::models::TenantRow;
use crate::store::{o365, tenants};

#[derive(Serialize)]
pub struct TenantView {
    id: String,
    display_name: String,
    microsoft_tenant_id: String,
    created_at: String,
    updated_at: String,
    /// Office 365 audit records from this tenant (on the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<AuditView>,
}

/// What arrived from the tenant's audit log.
#[derive(Serialize)]
struct AuditView {
    /// When the last record arrived; `null`: none yet.
    last_record_at: Option<String>,
    /// Records of the last 24 hours (by the hour) by outcome.
    last_24h: std::collections::BTreeMap<String, i64>,
    /// Management Activity API content blobs of the tenant by status (`pending`, `done`, `expired`).
    contents: std::collections::BTreeMap<String, i64>,
    /// When the router last listed the tenant's content (catch-up), and what went wrong if it did.
    last_listing_at: Option<String>,
    listing_error: Option<String>,
}

/// What the tenants list shows of the Office 365 side, by Microsoft tenant id.
struct AuditFacts {
    arrivals: HashMap<String, o365::Arrivals>,
    contents: HashMap<String, std::collections::BTreeMap<String, i64>>,
    listings: HashMap<String, o365::ListingRow>,
}

impl From<TenantRow> for TenantView {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            display_name: row.display_name,
            microsoft_tenant_id: row.microsoft_tenant_id,
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
            audit: None,
        }
    }
}

impl TenantView {
    fn with_audit(row: TenantRow, facts: &AuditFacts) -> Self {
        let org = row.microsoft_tenant_id.to_lowercase();
        let found = facts.arrivals.get(&org).cloned().unwrap_or_default();
        let listing = facts.listings.get(&org);
        let audit = AuditView {
            last_record_at: found.last_at.map(at),
            last_24h: found.by_outcome,
            contents: facts.contents.get(&org).cloned().unwrap_or_default(),
            last_listing_at: listing.map(|l| at(l.listed_at)),
            listing_error: listing.and_then(|l| l.last_error.clone()),
        };
        Self { audit: Some(audit), ..Self::from(row) }
    }
}

const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    id: Option<String>,
    display_name: Option<String>,
    microsoft_tenant_id: Option<String>,
}

pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let (rows, facts) = router
        .store()
        .read(|conn| {
            let facts = AuditFacts { arrivals: o365::arrivals(conn, now_ms() - DAY_MS)?, contents: o365::content_counts(conn)?, listings: o365::listings(conn)? };
            Ok((tenants::list(conn)?, facts))
        })
        .await?;
    let items: Vec<TenantView> = rows.into_iter().map(|row| TenantView::with_audit(row, &facts)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

pub async fn create(router: web::Data<RouterHandle>, body: web::Json<TenantInput>) -> ApiResult<HttpResponse> {
    let tenant = Tenant::parse(body.into_inner(), router.limits())?;
    let row = router.store().write(move |conn| tenants::create(conn, &tenant, now_ms())).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/tenants/{}", row.id)))
        .json(TenantView::from(row)))
}

pub async fn get(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let row = router.store().read(move |conn| tenants::get(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(row)))
}

pub async fn update(router: web::Data<RouterHandle>, id: web::Path<String>, body: web::Json<TenantPatch>) -> ApiResult<HttpResponse> {
    let patch = body.into_inner();
    let id = id.into_inner();
    if patch.id.as_ref().is_some_and(|new| *new != id) {
        return Err(Invalid::new("id", "a tenant's id cannot change; register a new tenant instead").into());
    }
    let name = patch.display_name.map(|n| bounded_text("display_name", &n, router.limits().max_name)).transpose()?;
    let guid = patch.microsoft_tenant_id.map(|g| parse_microsoft_tenant_id("microsoft_tenant_id", &g)).transpose()?;
    let row = router
        .store()
        .write(move |conn| tenants::update(conn, &id, name.as_deref(), guid.as_deref(), now_ms()))
        .await?;
    Ok(HttpResponse::Ok().json(TenantView::from(row)))
}

pub async fn delete(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    router.store().write(move |conn| tenants::delete(conn, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
