//! `GET /api/v1/stats/deliveries`: what the Overview and the Channels page draw. Deliveries made
//! in each hour of a window (24 by default) by the status they have now, in all and per channel;
//! per channel its p50/p95 attempt time, what waits (and how much of it longer than
//! [`PENDING_THRESHOLD_MS`]) and its last attempted delivery.
//!
//! Hours are whole UTC hours: the window starts at the top of the hour `hours - 1` hours before
//! the current one, whose bucket is the last (and still filling).

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{at, ApiResult};
use crate::domain::time::now_ms;
use crate::domain::Invalid;
use crate::handle::RouterHandle;
use crate::store::stats::{self, AttemptTimes, LastDelivery, Waiting, HOUR_MS, MAX_HOURS};

/// Deliveries pending longer than this (since they were made) need a person's attention: the
/// Overview lists their channel under "Needs attention". Five minutes is past the first two
/// retries of the default schedule (30 s, 2 min), so a receiver that failed once and took the
/// retry is not listed.
pub const PENDING_THRESHOLD_MS: i64 = 5 * 60 * 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Hourly buckets, 1 to 168 (default 24).
    #[param(minimum = 1, maximum = 168)]
    hours: Option<i64>,
}

/// Deliveries made in one hour, by the status they have now.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct HourBucket {
    /// The hour's start (UTC).
    hour: String,
    succeeded: i64,
    failed: i64,
    pending: i64,
    cancelled: i64,
    /// Held back by noise control (SPEC section 16): not failures.
    grouped: i64,
    suppressed: i64,
    silenced: i64,
}

impl HourBucket {
    fn add(&mut self, status: &str, count: i64) {
        let slot = match status {
            "succeeded" => &mut self.succeeded,
            "failed" => &mut self.failed,
            "pending" => &mut self.pending,
            "cancelled" => &mut self.cancelled,
            "grouped" => &mut self.grouped,
            "suppressed" => &mut self.suppressed,
            "silenced" => &mut self.silenced,
            _ => return,
        };
        *slot += count;
    }
}

/// A channel's newest attempted delivery.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LastDeliveryView {
    id: String,
    /// Its status now: `succeeded`, `failed`, or `pending` (retrying).
    status: String,
    /// When it last changed (its last attempt was recorded).
    at: String,
    /// The last answer's status code; `null`: no answer (see `error_kind`).
    status_code: Option<i32>,
    error_kind: Option<String>,
}

impl LastDeliveryView {
    fn of(last: LastDelivery) -> Self {
        Self { id: last.id, status: last.status, at: at(last.updated_at), status_code: last.status_code, error_kind: last.error_kind }
    }
}

/// One channel's statistics.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelDeliveryStats {
    channel_id: String,
    /// One bucket per hour, oldest first.
    hourly: Vec<HourBucket>,
    /// Attempts in the window (of deliveries made in it).
    attempts: i64,
    /// Median attempt time (nearest rank); `null` without attempts.
    p50_ms: Option<i64>,
    /// 95th percentile attempt time (nearest rank); `null` without attempts.
    p95_ms: Option<i64>,
    /// Deliveries pending now, of any age.
    pending: i64,
    /// Of those, how many were made more than `pending_threshold_s` ago.
    pending_over_threshold: i64,
    /// When the oldest pending delivery was made.
    oldest_pending_at: Option<String>,
    last_delivery: Option<LastDeliveryView>,
}

/// Deliveries per hour by status, and per channel attempt times and what waits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryStats {
    hours: i64,
    /// The first bucket's start.
    since: String,
    /// When this was read.
    until: String,
    /// Pending longer than this (seconds) counts in `pending_over_threshold`.
    pending_threshold_s: i64,
    /// Every channel together, one bucket per hour, oldest first.
    hourly: Vec<HourBucket>,
    /// Every channel that is not deleted, in id order.
    channels: Vec<ChannelDeliveryStats>,
}

/// Deliveries made per hour over the last `hours` (by the status they have now), in all and per
/// channel, with each channel's p50/p95 attempt time, pending deliveries and last attempted
/// delivery.
#[utoipa::path(get, path = "/api/v1/stats/deliveries", tag = "deliveries", params(StatsQuery), responses((status = 200, description = "The statistics", body = DeliveryStats)))]
pub async fn deliveries(router: web::Data<RouterHandle>, query: super::extract::Query<StatsQuery>) -> ApiResult<HttpResponse> {
    let hours = query.into_inner().hours.unwrap_or(24);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(Invalid::new("hours", format!("must be a whole number of hours from 1 to {MAX_HOURS}")).into());
    }
    let now = now_ms();
    let first_hour = now.div_euclid(HOUR_MS) - (hours - 1);
    let since = first_hour * HOUR_MS;
    let (ids, counts, times, waiting, last) = router
        .store()
        .read(move |conn| {
            let ids: Vec<String> = crate::store::channels::list(conn)?.into_iter().map(|c| c.id).collect();
            let counts = stats::deliveries_by_hour(conn, since)?;
            let times = stats::attempt_times(conn, since)?;
            let waiting = stats::waiting(conn, now - PENDING_THRESHOLD_MS)?;
            let last = stats::last_deliveries(conn, &ids)?;
            Ok((ids, counts, times, waiting, last))
        })
        .await?;
    let empty = || -> Vec<HourBucket> { (0..hours).map(|i| HourBucket { hour: at((first_hour + i) * HOUR_MS), ..HourBucket::default() }).collect() };
    let mut hourly = empty();
    let mut per_channel: HashMap<String, Vec<HourBucket>> = HashMap::new();
    for count in counts {
        let Some(slot) = usize::try_from(count.hour - first_hour).ok().filter(|i| *i < hourly.len()) else { continue };
        hourly[slot].add(&count.status, count.count);
        per_channel.entry(count.channel_id).or_insert_with(empty)[slot].add(&count.status, count.count);
    }
    let mut times: HashMap<String, AttemptTimes> = times.into_iter().collect();
    let mut waiting: HashMap<String, Waiting> = waiting.into_iter().map(|w| (w.channel_id.clone(), w)).collect();
    let mut last: HashMap<String, LastDelivery> = last.into_iter().collect();
    let channels = ids
        .into_iter()
        .map(|id| {
            let t = times.remove(&id).unwrap_or_default();
            let w = waiting.remove(&id).unwrap_or_default();
            ChannelDeliveryStats {
                hourly: per_channel.remove(&id).unwrap_or_else(empty),
                attempts: t.attempts,
                p50_ms: t.p50_ms,
                p95_ms: t.p95_ms,
                pending: w.pending,
                pending_over_threshold: w.stuck,
                oldest_pending_at: w.oldest_at.map(at),
                last_delivery: last.remove(&id).map(LastDeliveryView::of),
                channel_id: id,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryStats {
        hours,
        since: at(since),
        until: at(now),
        pending_threshold_s: PENDING_THRESHOLD_MS / 1000,
        hourly,
        channels,
    }))
}
