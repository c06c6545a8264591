//! `/api/v1/silences` (SPEC section 16): create, list, read, and end now. Creating and ending
//! go through `RouterHandle::change`, so routing reloads on this instance before the answer and
//! on every other within its poll of the routing version.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{at, ApiResult};
use crate::domain::ids;
use crate::domain::silence::{NewSilence, SilenceStatus};
use crate::domain::time::now_ms;
use crate::handle::RouterHandle;
use crate::store::models::SilenceRow;
use crate::store::silences;

/// A silence: matching (event, channel) pairs in its window are not sent (a delivery with status
/// `silenced` records each).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Silence)]
pub struct SilenceView {
    id: String,
    /// A conditions tree over the event's payload, as given.
    #[schema(value_type = Object)]
    matchers: Value,
    starts_at: String,
    /// Ending a silence early sets it to the moment it was ended.
    ends_at: String,
    comment: String,
    created_by: String,
    /// `null`: every channel, but `splunk` and `sentinel` ones, which are silenced only when named.
    channel_ids: Option<Vec<String>>,
    /// `null`: whichever rule decides the pair.
    rule_ids: Option<Vec<String>>,
    /// Where it stands now.
    status: SilenceStatus,
    created_at: String,
    updated_at: String,
}

impl SilenceView {
    fn of(row: SilenceRow, now: i64) -> Self {
        Self {
            matchers: serde_json::from_str(&row.matchers).unwrap_or(Value::Null),
            starts_at: at(row.starts_at),
            ends_at: at(row.ends_at),
            channel_ids: silences::ids_of(row.channel_ids.as_deref()),
            rule_ids: silences::ids_of(row.rule_ids.as_deref()),
            status: SilenceStatus::of(row.starts_at, row.ends_at, now),
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
            id: row.id,
            comment: row.comment,
            created_by: row.created_by,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SilenceList)]
struct Silences {
    items: Vec<SilenceView>,
}

/// A new silence. Give `ends_at` or `duration`, not both. The handler reads the body as JSON
/// and `domain::silence` parses it, so every refusal names its field (`matchers.all[0].op`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "matchers": {"all": [{"path": "/tenant/id", "op": "eq", "value": "contoso"}, {"path": "/data/site_url", "op": "eq", "value": "https://contoso.sharepoint.com/sites/Finance"}]},
    "duration": "2h",
    "comment": "Finance site migration; the shares are expected",
    "created_by": "ana@msp.example"
}))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The documented shape; the body is parsed by `NewSilence::parse`.
pub struct SilenceInput {
    /// A conditions tree over the event's payload (section 4), as a rule's `conditions`:
    /// `{"all":[…]}`, `{"any":[…]}`, `{"not":…}` or a leaf `{"path","op","value"}`.
    #[schema(value_type = Object)]
    matchers: Value,
    /// RFC 3339; default now.
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    /// RFC 3339, later than `starts_at` and than now, at most a year after `starts_at`.
    #[schema(format = DateTime)]
    ends_at: Option<String>,
    /// Instead of `ends_at`: how long from `starts_at`, such as `2h`, `3d` or `1h 30m`.
    #[schema(example = "2h")]
    duration: Option<String>,
    /// Why (required).
    #[schema(min_length = 1, max_length = 1000)]
    comment: String,
    /// Who (required).
    #[schema(min_length = 1, max_length = 200)]
    created_by: String,
    /// Only these channels (they must exist); `null` or absent: every channel but `splunk` and
    /// `sentinel` ones.
    #[schema(min_items = 1, max_items = 100)]
    channel_ids: Option<Vec<String>>,
    /// Only pairs these rules decide (they must exist); `null` or absent: any rule.
    #[schema(min_items = 1, max_items = 100)]
    rule_ids: Option<Vec<String>>,
}

/// Active and pending silences, and those ended in the last 5 days, newest first.
#[utoipa::path(get, path = "/api/v1/silences", tag = "silences", responses((status = 200, description = "The silences", body = Silences)))]
pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let now = now_ms();
    let rows = router.store().read(move |conn| silences::list(conn, now)).await?;
    let items = rows.into_iter().map(|row| SilenceView::of(row, now)).collect();
    Ok(HttpResponse::Ok().json(Silences { items }))
}

/// Sets a silence; every instance holds it within 2 s.
#[utoipa::path(
    post,
    path = "/api/v1/silences",
    tag = "silences",
    request_body = SilenceInput,
    responses((status = 201, description = "Created", body = SilenceView, headers(("Location" = String, description = "The silence's address")))),
)]
pub async fn create(router: web::Data<RouterHandle>, body: super::extract::Json<Map<String, Value>>) -> ApiResult<HttpResponse> {
    let now = now_ms();
    let new = NewSilence::parse(&Value::Object(body.into_inner()), now, router.limits())?;
    let id = ids::new_id(ids::SILENCE);
    let row = router.change(move |conn| silences::create(conn, &id, &new, now)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/silences/{}", row.id)))
        .json(SilenceView::of(row, now_ms())))
}

/// One silence.
#[utoipa::path(get, path = "/api/v1/silences/{id}", tag = "silences", params(("id" = String, Path)), responses((status = 200, description = "The silence", body = SilenceView)))]
pub async fn get(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let row = router.store().read(move |conn| silences::get(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(SilenceView::of(row, now_ms())))
}

/// Ends a silence now (one already ended is answered as it is); it stays listed. Events it held
/// are not sent now: redeliver them by `silence_id` if they should be.
#[utoipa::path(
    delete,
    path = "/api/v1/silences/{id}",
    tag = "silences",
    params(("id" = String, Path)),
    responses((status = 200, description = "Ended: the silence, now `expired`", body = SilenceView)),
)]
pub async fn delete(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let now = now_ms();
    let row = router.change(move |conn| silences::end_now(conn, &id, now)).await?;
    Ok(HttpResponse::Ok().json(SilenceView::of(row, now)))
}
