//! `/api/v1/tenants`: list, register, read, change (display name, Microsoft tenant id), and
//! delete one no rule refers to.

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

/// A customer tenant.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Tenant)]
pub struct TenantView {
    /// SPScan's id of the tenant.
    id: String,
    display_name: String,
    /// The tenant's Microsoft Entra (Azure AD) directory id, a GUID.
    microsoft_tenant_id: String,
    created_at: String,
    updated_at: String,
    /// Office 365 audit records from this tenant (on the list only).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<AuditView>,
}

/// What arrived from the tenant's audit log.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TenantAudit)]
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

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TenantList)]
struct Tenants {
    items: Vec<TenantView>,
}

/// A change: the fields given are set, the others kept.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// Only the tenant's own id: an id cannot change.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    id: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, min_length = 1)]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")]
    microsoft_tenant_id: Option<Option<String>>,
}

/// Every tenant, with what arrived from its audit log.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", responses((status = 200, description = "The tenants", body = Tenants)))]
pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let (rows, facts) = router
        .store()
        .read(|conn| {
            let facts = AuditFacts { arrivals: o365::arrivals(conn, now_ms() - DAY_MS)?, contents: o365::content_counts(conn)?, listings: o365::listings(conn)? };
            Ok((tenants::list(conn)?, facts))
        })
        .await?;
    let items: Vec<TenantView> = rows.into_iter().map(|row| TenantView::with_audit(row, &facts)).collect();
    Ok(HttpResponse::Ok().json(Tenants { items }))
}

/// Registers a tenant.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = TenantInput,
    responses(
        (status = 201, description = "Registered", body = TenantView, headers(("Location" = String, description = "The tenant's address"))),
        (status = 409, description = "A tenant has this id: change it with PATCH"),
    ),
)]
pub async fn create(router: web::Data<RouterHandle>, body: super::extract::Json<TenantInput>) -> ApiResult<HttpResponse> {
    let tenant = Tenant::parse(body.into_inner(), router.limits())?;
    // Through `change`: the rule matcher (every instance's) knows the tenant for conditions on
    // `/tenant/…`.
    let row = router.change(move |conn| tenants::create(conn, &tenant, now_ms())).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/tenants/{}", row.id)))
        .json(TenantView::from(row)))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)), responses((status = 200, description = "The tenant", body = TenantView)))]
pub async fn get(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let row = router.store().read(move |conn| tenants::get(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(row)))
}

/// Renames a tenant or changes its Microsoft tenant id.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path)),
    request_body = TenantPatch,
    responses((status = 200, description = "Changed", body = TenantView)),
)]
pub async fn update(router: web::Data<RouterHandle>, id: web::Path<String>, body: super::extract::Json<TenantPatch>) -> ApiResult<HttpResponse> {
    let patch = body.into_inner();
    let id = id.into_inner();
    let (new_id, display_name, microsoft_tenant_id) =
        (super::given("id", patch.id)?, super::given("display_name", patch.display_name)?, super::given("microsoft_tenant_id", patch.microsoft_tenant_id)?);
    if new_id.as_ref().is_some_and(|new| *new != id) {
        return Err(Invalid::new("id", "a tenant's id cannot change; register a new tenant instead").into());
    }
    let name = display_name.map(|n| bounded_text("display_name", &n, router.limits().max_name)).transpose()?;
    let guid = microsoft_tenant_id.map(|g| parse_microsoft_tenant_id("microsoft_tenant_id", &g)).transpose()?;
    let row = router.change(move |conn| tenants::update(conn, &id, name.as_deref(), guid.as_deref(), now_ms())).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(row)))
}

/// Deletes a tenant no rule refers to; its events and deliveries stay in the log.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Rules refer to the tenant; `detail` names them"),
    ),
)]
pub async fn delete(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    router.change(move |conn| tenants::delete(conn, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
