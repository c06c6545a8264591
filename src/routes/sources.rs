//! Office 365 audit records in (SPEC section 14):
//! - `POST /api/v1/sources/o365/audit`: records (one, or an array as a content blob holds),
//!   ingested with one outcome per record (`sources::o365::ingest`);
//! - `POST /api/v1/sources/o365/notifications`: the Management Activity API's webhook,
//!   authenticated by `Webhook-AuthID` rather than a bearer token: the validation request, and
//!   notifications whose blobs are kept (committed) before the `200` and fetched in the
//!   background (`sources::o365::fetcher`);
//! - `GET /api/v1/sources/o365/contents`: those blobs and what became of each.

use std::collections::HashSet;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{at, ApiResult};
use crate::domain::time::now_ms;
use crate::domain::token::TokenHash;
use crate::domain::Invalid;
use crate::error::ApiError;
use crate::handle::RouterHandle;
use crate::settings::O365Settings;
use crate::sources::o365::feed::ContentRef;
use crate::sources::o365::fetcher::{Fetcher, Kept};
use crate::sources::o365::ingest;
use crate::store::o365::{self, ContentRow};
use crate::store::tenants;

/// The Office 365 source as the HTTP layer sees it: its settings and its fetcher, when on.
pub struct O365Source {
    pub settings: Option<O365Settings>,
    pub fetcher: Option<Addr<Fetcher>>,
}

/// What audit records the audit route reads: one record, or an array as a content blob holds.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum AuditRecords {
    /// An Office 365 Management Activity API record (`Id`, `Operation`, `OrganizationId`,
    /// `CreationTime`, `Workload` …): the README's mapping says which become events.
    #[schema(value_type = Object)]
    One(Value),
    /// 1 to MAX_BATCH_EVENTS records, as a content blob holds them: an item that is not a
    /// record is answered `invalid` and the others are ingested.
    #[schema(value_type = Vec<Value>)]
    Many(Vec<Value>),
}

/// What became of each record, in order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordOutcomes {
    results: Vec<ingest::RecordOutcome>,
}

/// Ingests Office 365 audit records: those the mapping knows become events, the others are
/// answered `ignored`. Answered after the events are committed.
#[utoipa::path(
    post,
    path = "/api/v1/sources/o365/audit",
    tag = "office 365",
    request_body = AuditRecords,
    responses((status = 202, description = "One outcome per record", body = RecordOutcomes)),
)]
pub async fn o365_audit(router: web::Data<RouterHandle>, body: web::Json<Value>) -> ApiResult<HttpResponse> {
    let records = match body.into_inner() {
        Value::Array(items) => items,
        record @ Value::Object(_) => vec![record],
        _ => return Err(Invalid::new("records", "send one audit record (a JSON object) or an array of them, as a content blob holds").into()),
    };
    let max = router.limits().max_batch_events;
    if records.is_empty() || records.len() > max {
        return Err(Invalid::new("records", format!("holds {} records; send 1 to {max} per request (MAX_BATCH_EVENTS)", records.len())).into());
    }
    let results = ingest::ingest(&router, &records).await.map_err(super::events::api_error)?;
    Ok(HttpResponse::Accepted().json(RecordOutcomes { results }))
}

/// A notification item not kept, and why.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = O365Skipped)]
pub struct Skipped {
    content_id: Option<String>,
    reason: String,
}

/// What the Management Activity API posts to its webhook.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"validationCode": "b2f1c0de-5e1f-4d2a-9c3b-7a6f8e9d0c1b"}))]
#[allow(dead_code)]
pub enum NotificationsBody {
    Validation(Validation),
    /// Content notifications, one per blob ready to fetch: `contentType` (`Audit.SharePoint`;
    /// others are skipped), `contentId`, `contentUri` (in the tenant's own feed under
    /// O365_API_ROOT), `contentCreated`, `contentExpiration`, `tenantId` (a registered tenant's
    /// Microsoft tenant id) and `clientId`. An item that is not such a notification is skipped,
    /// with the reason, and the others kept: the answer is `200` either way, so the API does not
    /// send the good ones again.
    #[schema(value_type = Vec<Value>)]
    Notifications(Vec<Value>),
}

/// The request `subscriptions/start` sends to check the webhook: answered `200` with the code.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Validation {
    #[serde(rename = "validationCode")]
    validation_code: Value,
}

/// What became of the notified blobs.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = O365NotificationsKept)]
pub struct NotificationsKept {
    /// New blobs, committed and queued for fetching.
    kept: usize,
    /// Blobs already known.
    known: usize,
    skipped: Vec<Skipped>,
}

/// What the webhook answers: the validation code, or what became of the blobs.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum NotificationsAnswer {
    Validation(Validation),
    Kept(NotificationsKept),
}

/// The Office 365 Management Activity API's webhook (give this address to
/// `subscriptions/start`). Blobs are committed before the `200` and fetched in the background.
#[utoipa::path(
    post,
    path = "/api/v1/sources/o365/notifications",
    tag = "office 365",
    request_body = NotificationsBody,
    responses(
        (status = 200, description = "The validation code echoed, or the blobs kept", body = NotificationsAnswer),
        (status = 404, description = "Office 365 notifications are off: `detail` names the settings to set"),
    ),
)]
pub async fn o365_notifications(
    req: HttpRequest,
    router: web::Data<RouterHandle>,
    source: web::Data<O365Source>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let presented = req.headers().get("webhook-authid").and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized("send the Webhook-AuthID header with the authId given to subscriptions/start (O365_WEBHOOK_AUTH_ID)".into()));
    };
    let (Some(settings), Some(fetcher)) = (&source.settings, &source.fetcher) else {
        return Err(ApiError::NotFound("Office 365 notifications are off: set O365_CLIENT_ID, O365_CLIENT_SECRET and O365_WEBHOOK_AUTH_ID".into()));
    };
    let Some(expected) = settings.webhook_auth_id.as_deref() else {
        return Err(ApiError::NotFound("Office 365 notifications are off: set O365_WEBHOOK_AUTH_ID to the authId given to subscriptions/start".into()));
    };
    if !TokenHash::of(expected).matches(presented) {
        return Err(ApiError::Unauthorized("the Webhook-AuthID is not the one this router was given (O365_WEBHOOK_AUTH_ID)".into()));
    }
    let body: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let items = match body {
        Value::Object(validation) if validation.contains_key("validationCode") => {
            log::info!("answered the Management Activity API's webhook validation");
            return Ok(HttpResponse::Ok().json(Validation { validation_code: validation["validationCode"].clone() }));
        }
        Value::Array(items) => items,
        _ => return Err(Invalid::new("notifications", "send the validation request ({\"validationCode\": …}) or an array of content notifications").into()),
    };
    let max = router.limits().max_batch_events;
    if items.len() > max {
        return Err(Invalid::new("notifications", format!("holds {} notifications; at most {max} per request (MAX_BATCH_EVENTS)", items.len())).into());
    }
    let registered: HashSet<String> = router.store().read(tenants::list).await?.into_iter().map(|t| t.microsoft_tenant_id.to_lowercase()).collect();
    let mut contents = Vec::new();
    let mut skipped = Vec::new();
    for item in &items {
        let content_id = item.get("contentId").and_then(Value::as_str).map(str::to_string);
        let checked = ContentRef::parse(item, None).and_then(|content| {
            content.check_uri(&settings.api_root)?;
            if !registered.contains(&content.organization_id) {
                return Err(format!("no tenant has microsoft_tenant_id {}; register it first (its content is listed from then on)", content.organization_id));
            }
            Ok(content)
        });
        match checked {
            Ok(content) => contents.push(content),
            Err(reason) => {
                log::warn!("an Office 365 notification was not kept: {reason}");
                skipped.push(Skipped { content_id, reason });
            }
        }
    }
    let offered = contents.len();
    // Committed before the answer: a blob notified is never lost, whatever happens next.
    let added = router.store().write(move |conn| o365::enqueue(conn, &contents, now_ms())).await?;
    if !added.is_empty() {
        fetcher.do_send(Kept);
    }
    Ok(HttpResponse::Ok().json(NotificationsKept { kept: added.len(), known: offered - added.len(), skipped }))
}

/// Which blobs to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// `pending`, `done` or `expired`.
    status: Option<String>,
    microsoft_tenant_id: Option<String>,
    /// 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One content blob, as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = O365Content)]
struct ContentView {
    content_id: String,
    microsoft_tenant_id: String,
    content_uri: String,
    content_created: String,
    content_expiration: String,
    /// `pending`, `done` or `expired`.
    status: String,
    attempts: i32,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    records: Option<i32>,
    fetched_at: Option<String>,
    created_at: String,
}

impl From<ContentRow> for ContentView {
    fn from(row: ContentRow) -> Self {
        let pending = row.status == o365::PENDING;
        Self {
            content_id: row.content_id,
            microsoft_tenant_id: row.organization_id,
            content_uri: row.content_uri,
            content_created: at(row.content_created),
            content_expiration: at(row.content_expiration),
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: pending.then(|| at(row.next_attempt_at)),
            last_error: row.last_error,
            records: row.records,
            fetched_at: row.fetched_at.map(at),
            created_at: at(row.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = O365ContentList)]
struct Contents {
    items: Vec<ContentView>,
}

/// The Management Activity API content blobs notified or listed, newest first, and what became
/// of each.
#[utoipa::path(get, path = "/api/v1/sources/o365/contents", tag = "office 365", params(ContentQuery), responses((status = 200, description = "The blobs", body = Contents)))]
pub async fn o365_contents(router: web::Data<RouterHandle>, query: super::extract::Query<ContentQuery>) -> ApiResult<HttpResponse> {
    let ContentQuery { status, microsoft_tenant_id, limit } = query.into_inner();
    if let Some(status) = status.as_deref().filter(|s| ![o365::PENDING, o365::DONE, o365::EXPIRED].contains(s)) {
        return Err(Invalid::new("status", format!("`{status}` is not one of pending, done, expired")).into());
    }
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Invalid::new("limit", "must be between 1 and 1000").into());
    }
    let rows = router.store().read(move |conn| o365::contents(conn, status.as_deref(), microsoft_tenant_id.as_deref(), limit)).await?;
    let items: Vec<ContentView> = rows.into_iter().map(ContentView::from).collect();
    Ok(HttpResponse::Ok().json(Contents { items }))
}
