//! `/api/v1/rules`: list, create, read, change, delete. Every change reloads the RuleMatcher
//! before it is acknowledged, so the next event is matched against it.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{at, nullable, ApiResult};
use crate::domain::limits::Limits;
use crate::domain::severity::Severity;
use crate::domain::time::now_ms;
use crate::domain::rule::NoiseInput;
use crate::domain::{ids, rule};
use serde_json::Value;
use crate::handle::RouterHandle;
use crate::store::rules::{self, RuleSpec, RuleWithChannels};

/// A rule: events of these types (and this tenant), at least this severe, go to these channels.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Rule)]
pub struct RuleView {
    id: String,
    name: String,
    /// `null`: every tenant.
    tenant_id: Option<String>,
    /// Event types, or patterns such as `sharing.*` and `*`.
    event_types: Vec<String>,
    #[schema(value_type = Severity)]
    min_severity: String,
    channel_ids: Vec<String>,
    enabled: bool,
    /// When several matching rules name one channel, the lowest decides (then the oldest).
    priority: i32,
    /// A conditions tree over the event payload (SPEC section 16), or `null`.
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    /// One window or a list of windows, or `null` (always active).
    #[schema(value_type = Option<Object>)]
    active_hours: Option<Value>,
    /// `{"by":[pointers],"for":"24h"}` or `null`.
    #[schema(value_type = Option<Object>)]
    suppress: Option<Value>,
    /// `{"by":[pointers],"wait":"30s","interval":"5m"}` or `null`.
    #[schema(value_type = Option<Object>)]
    group: Option<Value>,
    created_at: String,
    updated_at: String,
}

impl From<RuleWithChannels> for RuleView {
    fn from(rule: RuleWithChannels) -> Self {
        let event_types = rule.event_type_texts();
        let noise = rule.noise().as_input();
        let row = rule.row;
        Self {
            id: row.id,
            name: row.name,
            tenant_id: row.tenant_id,
            event_types,
            min_severity: row.min_severity,
            channel_ids: rule.channel_ids,
            enabled: row.enabled,
            priority: row.priority,
            conditions: noise.conditions,
            active_hours: noise.active_hours,
            suppress: noise.suppress,
            group: noise.group,
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RuleList)]
struct Rules {
    items: Vec<RuleView>,
}

/// A new rule.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "External shares", "tenant_id": null, "event_types": ["permission.*"], "min_severity": "medium", "channel_ids": ["ch_01JD7Y2Q8V3K4M5N6P7Q8R9S0T"]}))]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    name: String,
    /// Absent or `null`: every tenant.
    #[serde(default)]
    tenant_id: Option<String>,
    /// Event types, or patterns such as `sharing.*` and `*`.
    event_types: Vec<String>,
    /// Default `low`.
    #[serde(default)]
    #[schema(value_type = Option<Severity>)]
    min_severity: Option<String>,
    /// Channels that exist; an enabled rule needs at least one.
    channel_ids: Vec<String>,
    #[serde(default)]
    enabled: Option<bool>,
    /// Default 100; when several matching rules name one channel, the lowest decides.
    #[serde(default)]
    #[schema(value_type = Option<i32>)]
    priority: Option<Value>,
    /// A conditions tree: `{"all":[…]}`, `{"any":[…]}`, `{"not":…}` or a leaf `{"path","op","value"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    /// `{"timezone","days","from","to","invert"}` or a list of them.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    active_hours: Option<Value>,
    /// `{"by":[pointers],"for":"24h"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    suppress: Option<Value>,
    /// `{"by":[pointers],"wait":"30s","interval":"5m"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    group: Option<Value>,
}

/// A change: the fields given are set, the others kept.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    /// `null`: every tenant.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    tenant_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Severity>)]
    min_severity: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    channel_ids: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<bool>)]
    enabled: Option<Option<bool>>,
    /// `null`: back to 100.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    priority: Option<Option<Value>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Option<Value>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    active_hours: Option<Option<Value>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    suppress: Option<Option<Value>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    group: Option<Option<Value>>,
}

fn spec_of(input: RuleInput, limits: &Limits) -> Result<RuleSpec, crate::domain::Invalid> {
    let enabled = input.enabled.unwrap_or(true);
    let noise = NoiseInput {
        priority: input.priority,
        conditions: input.conditions,
        active_hours: input.active_hours,
        suppress: input.suppress,
        group: input.group,
    };
    let parsed = noise.parse()?;
    Ok(RuleSpec {
        noise: noise.normalised(&parsed),
        name: rule::parse_name(&input.name, limits)?,
        tenant_id: rule::parse_tenant(input.tenant_id.as_deref())?,
        event_types: rule::parse_event_types(&input.event_types, limits)?,
        min_severity: match input.min_severity {
            Some(s) => Severity::parse("min_severity", &s)?,
            None => Severity::Low,
        },
        channel_ids: rule::parse_channel_ids(&input.channel_ids, enabled, limits)?,
        enabled,
    })
}

/// Every rule.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", responses((status = 200, description = "The rules", body = Rules)))]
pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let items: Vec<RuleView> = router.store().read(rules::list).await?.into_iter().map(RuleView::from).collect();
    Ok(HttpResponse::Ok().json(Rules { items }))
}

/// Creates a rule; the next event is matched against it.
#[utoipa::path(
    post,
    path = "/api/v1/rules",
    tag = "rules",
    request_body = RuleInput,
    responses((status = 201, description = "Created", body = RuleView, headers(("Location" = String, description = "The rule's address")))),
)]
pub async fn create(router: web::Data<RouterHandle>, body: super::extract::Json<RuleInput>) -> ApiResult<HttpResponse> {
    let spec = spec_of(body.into_inner(), router.limits())?;
    let id = ids::new_id(ids::RULE);
    let rule = router.change(move |conn| rules::create(conn, &id, &spec, now_ms())).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/rules/{}", rule.row.id)))
        .json(RuleView::from(rule)))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path)), responses((status = 200, description = "The rule", body = RuleView)))]
pub async fn get(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let rule = router.store().read(move |conn| rules::get(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(RuleView::from(rule)))
}

/// Changes a rule; the next event is matched against the change.
#[utoipa::path(
    patch,
    path = "/api/v1/rules/{id}",
    tag = "rules",
    params(("id" = String, Path)),
    request_body = RulePatch,
    responses((status = 200, description = "Changed", body = RuleView)),
)]
pub async fn update(router: web::Data<RouterHandle>, id: web::Path<String>, body: super::extract::Json<RulePatch>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let patch = body.into_inner();
    let (name, event_types, min_severity, channel_ids, enabled) = (
        super::given("name", patch.name)?,
        super::given("event_types", patch.event_types)?,
        super::given("min_severity", patch.min_severity)?,
        super::given("channel_ids", patch.channel_ids)?,
        super::given("enabled", patch.enabled)?,
    );
    let tenant_id = patch.tenant_id;
    let (priority, conditions, active_hours, suppress, group) = (patch.priority, patch.conditions, patch.active_hours, patch.suppress, patch.group);
    let limits = router.limits().clone();
    // Read, merge and write in one transaction, so concurrent PATCHes cannot undo each other.
    let rule = router.change(move |conn| {
            crate::store::lock_for_change(conn, crate::store::Changeable::Rule, &id)?;
            let current = rules::get(conn, &id)?;
            let current_noise = current.noise().as_input();
            let merged = RuleInput {
                name: name.unwrap_or(current.row.name.clone()),
                tenant_id: tenant_id.unwrap_or(current.row.tenant_id.clone()),
                event_types: event_types.unwrap_or_else(|| current.event_type_texts()),
                min_severity: Some(min_severity.unwrap_or(current.row.min_severity.clone())),
                channel_ids: channel_ids.unwrap_or(current.channel_ids.clone()),
                enabled: Some(enabled.unwrap_or(current.row.enabled)),
                priority: priority.unwrap_or(current_noise.priority),
                conditions: conditions.unwrap_or(current_noise.conditions),
                active_hours: active_hours.unwrap_or(current_noise.active_hours),
                suppress: suppress.unwrap_or(current_noise.suppress),
                group: group.unwrap_or(current_noise.group),
            };
            let spec = spec_of(merged, &limits)?;
            rules::replace(conn, &id, &spec, now_ms())
        })
        .await?;
    Ok(HttpResponse::Ok().json(RuleView::from(rule)))
}

/// Deletes a rule; deliveries it made stay.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path)), responses((status = 204, description = "Deleted")))]
pub async fn delete(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    router.change(move |conn| rules::delete(conn, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
