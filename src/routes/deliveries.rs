//! `/api/v1/deliveries`: the alert log (newest first, filtered, cursor-paged), one delivery with
//! its attempts and payload, and `POST …/redeliver` for one more attempt now.

use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{at, ApiResult};
use crate::actors::rule_matcher::target_of;
use crate::domain::attempt::Trigger;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::time::now_ms;
use crate::domain::severity::Severity;
use crate::domain::Invalid;
use crate::error::ApiError;
use crate::handle::{detached, RouterHandle};
use crate::channels::Item;
use crate::dispatch;
use crate::outbound::Outbound;
use super::ApiConfig;
use crate::store::attempts::AttemptRecord;
use crate::store::deliveries::{self, LogFilter};
use crate::store::models::{AttemptRow, DeliveryRow};

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: i64 = 50;
/// Most rows per page.
pub const MAX_PAGE: i64 = 500;

/// One event's delivery to one channel.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryView {
    id: String,
    event_id: String,
    /// The event type.
    event: String,
    #[schema(value_type = Severity)]
    severity: String,
    /// `null` for the router's own events (`router.*`), which belong to no tenant.
    tenant_id: Option<String>,
    channel_id: String,
    /// `pending`, `succeeded`, `failed`, `cancelled`, or what noise control decided:
    /// `grouped`, `suppressed`, `silenced` (final, never retried).
    status: String,
    /// The rule that decided it (`null` for deliveries made before rules had priorities).
    rule_id: Option<String>,
    /// A notification's group, or the group a `grouped` delivery joined.
    group_id: Option<String>,
    /// `grouped`: the notification (a delivery) it went out in, once its group flushed.
    notification_id: Option<String>,
    /// `suppressed`: the delivery that opened the suppression window.
    suppressed_by: Option<String>,
    /// `silenced`: the silence.
    silence_id: Option<String>,
    attempt_count: i32,
    /// When a pending delivery's next attempt is due.
    next_attempt_at: Option<String>,
    last_status_code: Option<i32>,
    last_error_kind: Option<String>,
    last_error: Option<String>,
    created_at: String,
    updated_at: String,
    /// The ticket, page or mail thread it wrote to (PagerDuty, ticketing and email channels;
    /// SPEC section 17): the system's id (a page's `dedup_key`), its key and URL where it has
    /// them. `null` for every other delivery, and until one was written.
    ticket: Option<TicketView>,
    /// The company a ConnectWise or Autotask delivery was filed under, and whether it came from
    /// the channel's `companies` map or its `default` (SPEC section 17). `null` for other types.
    company: Option<CompanyView>,
}

/// A ticket, page or message in the system a channel writes to.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DeliveryTicket)]
pub struct TicketView {
    id: String,
    key: Option<String>,
    url: Option<String>,
    #[serde(default, skip_serializing)]
    company: Option<CompanyView>,
}

/// A PSA company a delivery was filed under.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DeliveryCompany)]
pub struct CompanyView {
    id: String,
    /// `map` or `default`.
    source: String,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> Self {
        let ticket: Option<TicketView> = row.ticket.as_deref().and_then(|t| serde_json::from_str(t).ok());
        Self {
            id: row.id,
            event_id: row.event_id,
            event: row.event_type,
            severity: row.severity,
            tenant_id: Some(row.tenant_id).filter(|t| !t.is_empty()),
            channel_id: row.channel_id,
            status: row.status,
            rule_id: row.rule_id,
            group_id: row.group_id,
            notification_id: row.notification_id,
            suppressed_by: row.suppressed_by,
            silence_id: row.silence_id,
            attempt_count: row.attempt_count,
            next_attempt_at: row.next_attempt_at.map(at),
            last_status_code: row.last_status_code,
            last_error_kind: row.last_error_kind,
            last_error: row.last_error,
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
            company: ticket.as_ref().and_then(|t: &TicketView| t.company.clone()),
            ticket,
        }
    }
}

/// One attempt at a delivery.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Attempt)]
struct AttemptView {
    number: i32,
    started_at: String,
    duration_ms: i64,
    status_code: Option<i32>,
    error_kind: Option<String>,
    error: Option<String>,
    response_excerpt: Option<String>,
    /// `scheduled` (the first attempt and retries) or `manual` (a redelivery).
    trigger: String,
    /// The request this attempt went in with other deliveries (batching types), and how many
    /// deliveries that request carried; `null` for a request of its own.
    request_id: Option<String>,
    request_size: Option<i32>,
    /// What the attempt sent and the answer's headers; `null`: nothing was sent (the outbound
    /// guard or the token endpoint stopped it) or it was made before requests were kept.
    request: Option<super::sent::SentView>,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        Self {
            request: None,
            number: row.number,
            started_at: at(row.started_at),
            duration_ms: row.duration_ms,
            status_code: row.status_code,
            error_kind: row.error_kind,
            error: row.error,
            response_excerpt: row.response_excerpt,
            request_id: row.request_id,
            request_size: row.request_size,
            trigger: row.triggered_by,
        }
    }
}

/// A delivery with the payload it sends and every attempt, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryDetail)]
struct DetailView {
    #[serde(flatten)]
    delivery: DeliveryView,
    /// The payload as a webhook receiver gets it (README: "what a delivery looks like").
    #[schema(value_type = Value)]
    payload: Value,
    attempts: Vec<AttemptView>,
    /// A pending delivery of an incident (PagerDuty, email: SPEC section 17) waits until the
    /// older deliveries of its incident are done: the one it waits behind. `null` otherwise.
    waiting_for: Option<String>,
}

/// A page of the log, newest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryPage)]
struct Page {
    items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null`: this is the last.
    next_cursor: Option<String>,
    /// How many deliveries the filters take in all (every page), counted up to 10,000.
    total: i64,
    /// `true`: there are more than `total` (the count stopped at 10,000).
    total_capped: bool,
}

/// Filters of the log; empty values are ignored.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// `pending`, `succeeded`, `failed`, `cancelled`, `grouped`, `suppressed` or `silenced`.
    status: Option<String>,
    channel_id: Option<String>,
    event_id: Option<String>,
    tenant_id: Option<String>,
    /// An exact event type.
    event_type: Option<String>,
    /// The deliveries sent together in one request (batching types).
    request_id: Option<String>,
    /// The `grouped` deliveries that went out in this notification (a delivery id).
    notification_id: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Search: deliveries whose event id, or whose event's `data.site_url`, `data.principal` or
    /// `data.resource_path`, contains this text (ASCII letters in any case; `%` and `_` match
    /// themselves). At most 200 characters.
    #[param(max_length = 200)]
    q: Option<String>,
    /// `low`, `medium`, `high` or `critical`; several separated by commas (an empty item, as in
    /// `high,,low`, is refused).
    severity: Option<String>,
    /// Created at or after (RFC 3339).
    since: Option<String>,
    /// Created before (RFC 3339); later than `since`.
    until: Option<String>,
}



/// The alert log.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries", params(LogQuery), responses((status = 200, description = "A page of deliveries", body = Page)))]
pub async fn list(router: web::Data<RouterHandle>, query: super::extract::Query<LogQuery>) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let status = nonempty(query.status);
    if let Some(status) = &status {
        if DeliveryStatus::parse(status).is_none() {
            return Err(Invalid::new("status", format!("`{status}` is not a status; use pending, succeeded, failed, cancelled, grouped, suppressed or silenced")).into());
        }
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Invalid::new("limit", format!("must be between 1 and {MAX_PAGE}")).into());
    }
    let cursor = nonempty(query.cursor);
    if cursor.as_ref().is_some_and(|c| !c.starts_with("dlv_") || c.len() > 64) {
        return Err(Invalid::new("cursor", "is not a cursor from a previous page's `next_cursor`").into());
    }
    let q = super::log_filters::search(query.q)?;
    let severities = super::log_filters::severities(query.severity)?;
    let (since, until) = super::log_filters::time_range(query.since, query.until)?;
    let filter = LogFilter {
        q,
        severities,
        since,
        until,
        status,
        channel_id: nonempty(query.channel_id),
        event_id: nonempty(query.event_id),
        tenant_id: nonempty(query.tenant_id),
        event_type: nonempty(query.event_type),
        request_id: nonempty(query.request_id),
        notification_id: nonempty(query.notification_id),
        before: cursor,
    };
    let ((rows, more), (total, total_capped)) =
        router.store().read(move |conn| Ok((deliveries::list(conn, &filter, limit)?, deliveries::total(conn, &filter)?))).await?;
    let next_cursor = if more { rows.last().map(|r| r.id.clone()) } else { None };
    let items: Vec<DeliveryView> = rows.into_iter().map(DeliveryView::from).collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor, total, total_capped }))
}

/// One delivery, its payload and its attempts.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "deliveries", params(("id" = String, Path)), responses((status = 200, description = "The delivery", body = DetailView)))]
pub async fn get(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(detail(&router, id.into_inner()).await?))
}

async fn detail(router: &RouterHandle, id: String) -> ApiResult<DetailView> {
    let ((row, attempts, payload, sent), waiting_for) = router
        .store()
        .read(move |conn| {
            let detail = deliveries::detail(conn, &id)?;
            let waiting_for = deliveries::waiting_for(conn, &detail.0)?;
            Ok((detail, waiting_for))
        })
        .await?;
    let attempts = attempts
        .into_iter()
        .map(|attempt| {
            let key = crate::store::attempts::sent_request_id(&attempt.delivery_id, attempt.number, attempt.request_id.as_deref());
            // A shared request is shown with each attempt that went in it.
            let request = sent.get(&key).cloned().map(|r| super::sent::SentView::new(r, &payload));
            AttemptView { request, ..AttemptView::from(attempt) }
        })
        .collect();
    Ok(DetailView {
        delivery: DeliveryView::from(row),
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        attempts,
        waiting_for,
    })
}

/// One more attempt now, recorded as `manual`. It never schedules retries: a success marks the
/// delivery `succeeded`; a failure leaves its status (and any schedule) as it was.
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/{id}/redeliver",
    tag = "deliveries",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Attempted and recorded: the delivery with the new attempt", body = DetailView),
        (status = 409, description = "The delivery was cancelled (its channel deleted)"),
    ),
)]
pub async fn redeliver(
    router: web::Data<RouterHandle>,
    api: web::Data<ApiConfig>,
    outbound: web::Data<Outbound>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let lookup = id.clone();
    let (row, payload, channel) = router.store().read(move |conn| deliveries::for_redelivery(conn, &lookup)).await?;
    if row.status == DeliveryStatus::Grouped.as_str() {
        return Err(ApiError::Conflict(match &row.notification_id {
            Some(notification) => format!("delivery {id} was grouped and went out in notification {notification}; redeliver that one"),
            None => format!("delivery {id} waits in group {} for its notification; it is sent then", row.group_id.as_deref().unwrap_or("?")),
        }));
    }
    if channel.deleted_at.is_some() || row.status == DeliveryStatus::Cancelled.as_str() {
        return Err(ApiError::Conflict(format!(
            "delivery {id} belongs to channel {}, which was deleted; it cannot be redelivered",
            row.channel_id
        )));
    }
    // Sending and recording are one task: a client that resets mid-attempt cannot leave an
    // attempt the receiver saw unrecorded.
    let (store, outbound, retry, delivery_id) = (router.store().clone(), outbound.get_ref().clone(), api.retry.clone(), id.clone());
    let metrics = std::sync::Arc::clone(router.metrics());
    let handle = router.get_ref().clone();
    detached(async move {
        let target = target_of(&channel).map_err(|unknown| crate::store::StoreError::Conflict(unknown.to_string()))?;
        let payload = Bytes::from(payload);
        let sent = dispatch::deliver(&store, &outbound, &target, &[Item::new(&row.event_id, &delivery_id, &payload)], false).await;
        handle.manual_attempt(&channel.id, sent.outcome.succeeded(), sent.outcome.started_at);
        let record = AttemptRecord { delivery_id, trigger: Trigger::Manual, outcome: sent.outcome, request: None, sent: sent.request, incident: sent.incident };
        let write = dispatch::Write { records: vec![record], ..Default::default() };
        let written = dispatch::record(&store, &channel.id, &write, retry).await?;
        dispatch::count(&mut metrics.channel(&channel.id), &write.records, &written.recorded);
        Ok::<_, crate::store::StoreError>(())
    })
    .await??;
    Ok(HttpResponse::Ok().json(detail(&router, id).await?))
}

/// Which finished deliveries to send again. A filter left out takes any; an empty one
/// (`"channel_id":""`) is refused rather than read as "any", so an unset variable in a script
/// never turns a narrow redelivery into one of every failed delivery.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    /// `failed` (the default, or `silenced` when `silence_id` is given), `succeeded`,
    /// `suppressed` or `silenced`.
    status: Option<String>,
    /// Only the deliveries this silence held (the undo of a silence).
    silence_id: Option<String>,
    channel_id: Option<String>,
    tenant_id: Option<String>,
    event_type: Option<String>,
    /// Created at or after (RFC 3339).
    since: Option<String>,
    /// Created before (RFC 3339).
    until: Option<String>,
    /// Only count what would be redelivered (the admin page asks before it sends).
    #[serde(default)]
    dry_run: bool,
}

/// How many deliveries a bulk redelivery queued, or would queue.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RedeliverCount {
    count: usize,
    /// Present, `true`, when only counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
}

/// `POST /deliveries/redeliver`: one manual attempt for every finished delivery the filter takes
/// (`status` defaults to `failed`), fed to each channel at its own pace by its actor. Answers
/// `202 {"count": n}` once they are all queued (committed); `dry_run` only counts (`200`).
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/redeliver",
    tag = "deliveries",
    request_body = RedeliverRequest,
    responses(
        (status = 202, description = "Queued (committed); each channel sends them at its own pace", body = RedeliverCount),
        (status = 200, description = "`dry_run`: only counted", body = RedeliverCount),
    ),
)]
pub async fn redeliver_many(router: web::Data<RouterHandle>, body: super::extract::Json<RedeliverRequest>) -> ApiResult<HttpResponse> {
    let request = body.into_inner();
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let given = |field: &'static str, v: Option<String>| -> Result<Option<String>, Invalid> {
        match v {
            Some(s) if s.trim().is_empty() => Err(Invalid::new(field, "is empty: give an id (or a type), or leave it out for any")),
            other => Ok(other),
        }
    };
    let silence_id = given("silence_id", request.silence_id)?;
    let (channel_id, tenant_id, event_type) = (given("channel_id", request.channel_id)?, given("tenant_id", request.tenant_id)?, given("event_type", request.event_type)?);
    let default = if silence_id.is_some() { DeliveryStatus::Silenced } else { DeliveryStatus::Failed };
    let status = nonempty(request.status).unwrap_or_else(|| default.as_str().into());
    let takes = [DeliveryStatus::Failed, DeliveryStatus::Succeeded, DeliveryStatus::Suppressed, DeliveryStatus::Silenced];
    if !takes.map(DeliveryStatus::as_str).contains(&status.as_str()) {
        let why = if status == DeliveryStatus::Grouped.as_str() {
            "grouped deliveries went out in their notification: redeliver the notification (its id is each one's `notification_id`)"
        } else {
            "pending ones are attempted on their schedule (POST /api/v1/deliveries/{id}/redeliver sends one now) and cancelled ones cannot be sent"
        };
        return Err(Invalid::new("status", format!("`{status}`: bulk redelivery takes failed, succeeded, suppressed or silenced deliveries; {why}")).into());
    }
    let (since, until) = super::log_filters::time_range(request.since, request.until)?;
    let filter = deliveries::RedeliverFilter {
        status,
        silence_id,
        channel_id,
        tenant_id,
        event_type,
        since,
        until,
        channel_types: crate::channels::ChannelKind::all().into_iter().map(crate::channels::ChannelKind::as_str).collect(),
    };
    if request.dry_run {
        let per_channel = router.store().read(move |conn| deliveries::count_redeliverable(conn, &filter)).await?;
        let count: usize = per_channel.values().sum();
        return Ok(HttpResponse::Ok().json(RedeliverCount { count, dry_run: Some(true) }));
    }
    // Queued and committed in a task of its own, so a client that resets cannot leave the
    // channels unwoken.
    let handle = router.get_ref().clone();
    let per_channel = detached(async move {
        let per_channel = handle.store().write(move |conn| deliveries::request_redelivery(conn, &filter, now_ms())).await?;
        for (channel_id, n) in &per_channel {
            handle.metrics().deliveries.with_label_values(&[channel_id.as_str(), DeliveryStatus::Pending.as_str()]).inc_by(*n as u64);
        }
        handle.wake_channels(per_channel.keys().cloned().collect());
        Ok::<_, crate::store::StoreError>(per_channel)
    })
    .await??;
    let count: usize = per_channel.values().sum();
    if count > 0 {
        log::info!("bulk redelivery: {count} deliveries queued on {} channel(s)", per_channel.len());
    }
    Ok(HttpResponse::Accepted().json(RedeliverCount { count, dry_run: None }))
}
