//! Queries on `deliveries` and `attempts`: the alert log, what is due, and bulk redelivery.
//! Recording attempts is `attempts.rs`'s.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::models::{AttemptRow, ChannelRow, DeliveryRow, SentRequestRow};
use super::schema::{attempts, channels, deliveries, events, sent_requests};
use super::attempts::progress_of;
use super::{write, Conn, StoreError};
use crate::domain::delivery::DeliveryStatus;

/// Rows per multi-row statement, well under SQLite's bound-variable limit.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// `status = 'pending'`, written into the statement rather than bound: SQLite uses a partial
/// index only for a query that names the index's condition as it is (a bound value could be
/// anything), and the due index covers pending deliveries only. PostgreSQL's generic plans
/// likewise match its partial due index only to a literal.
pub fn is_pending() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql("deliveries.status = 'pending'")
}

/// The lowest delivery id a delivery created at `at` (Unix ms) or later can have: delivery ids
/// are `dlv_` + a ULID of their creation time, so a range of ids is a range of creation times,
/// searched through the primary key.
pub fn first_id_created_at(at: i64) -> String {
    format!("{}_{}", crate::domain::ids::DELIVERY, ulid::Ulid::from_parts(at.max(0) as u64, 0))
}

/// `status <> 'pending'`, written into the statement: the condition of SQLite's
/// `deliveries_by_status`, which covers finished deliveries only (see [`is_pending`]).
pub fn is_finished() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql("deliveries.status <> 'pending'")
}

/// Filters of the alert log; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    pub status: Option<String>,
    pub channel_id: Option<String>,
    pub event_id: Option<String>,
    pub tenant_id: Option<String>,
    pub event_type: Option<String>,
    /// Only the deliveries that went in this request (batching types).
    pub request_id: Option<String>,
    /// Only the `grouped` deliveries that went out in this notification.
    pub notification_id: Option<String>,
    /// Only deliveries with an id below this one (the page cursor).
    pub before: Option<String>,
    /// Search text (`log_search`).
    pub q: Option<String>,
    /// Only deliveries of events of these severities (any when empty).
    pub severities: Vec<String>,
    /// Created at or after, and before (Unix ms).
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Most deliveries a page's `total` counts; past it the total says "at least".
pub const TOTAL_CAP: i64 = 10_000;

/// What a fetch found.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The due deliveries new to the actor, oldest first.
    pub due: Vec<DueDelivery>,
    /// When the next pending delivery after now falls due.
    pub next: Option<i64>,
    /// The fetch hit its limit: more may be due.
    pub more: bool,
}

/// A delivery due for an attempt, with what is needed to make it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub event_id: String,
    pub payload: String,
    /// A bulk redelivery: one manual attempt.
    pub manual: bool,
}

/// Which finished deliveries a bulk redelivery takes; `None` means any.
#[derive(Debug, Clone)]
pub struct RedeliverFilter {
    /// `failed`, `succeeded`, `suppressed` or `silenced`.
    pub status: String,
    /// Only the deliveries this silence held.
    pub silence_id: Option<String>,
    pub channel_id: Option<String>,
    pub tenant_id: Option<String>,
    pub event_type: Option<String>,
    /// Created at or after (Unix ms).
    pub since: Option<i64>,
    /// Created before (Unix ms).
    pub until: Option<i64>,
    /// The channel types this release can send to: a channel of any other type (stored by a
    /// newer release) is left alone, its deliveries as they are.
    pub channel_types: Vec<&'static str>,
}

/// The ids of the deliveries a bulk redelivery takes: finished with `filter.status`, not already
/// waiting for one, on a channel that is not deleted and whose type this release can send to.
fn redeliverable(conn: &mut Conn, filter: &RedeliverFilter) -> Result<Vec<(String, String)>, StoreError> {
    let live = channels::table.filter(channels::deleted_at.is_null()).filter(channels::kind.eq_any(&filter.channel_types)).select(channels::id);
    let mut query = deliveries::table
        .filter(deliveries::status.eq(&filter.status))
        .filter(is_finished())
        .filter(deliveries::redeliver_from.is_null())
        .filter(deliveries::channel_id.eq_any(live))
        .select((deliveries::id, deliveries::channel_id))
        .into_boxed();
    if let Some(silence_id) = &filter.silence_id {
        query = query.filter(deliveries::silence_id.eq(silence_id));
    }
    if let Some(channel_id) = &filter.channel_id {
        query = query.filter(deliveries::channel_id.eq(channel_id));
    }
    if let Some(tenant_id) = &filter.tenant_id {
        query = query.filter(deliveries::tenant_id.eq(tenant_id));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(deliveries::event_type.eq(event_type));
    }
    if let Some(since) = filter.since {
        query = query.filter(deliveries::created_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(deliveries::created_at.lt(until));
    }
    Ok(query.order(deliveries::id.asc()).load(conn)?)
}

/// How many deliveries a bulk redelivery would take, per channel (nothing changes).
pub fn count_redeliverable(conn: &mut Conn, filter: &RedeliverFilter) -> Result<HashMap<String, usize>, StoreError> {
    let mut per_channel: HashMap<String, usize> = HashMap::new();
    for (_, channel_id) in redeliverable(conn, filter)? {
        *per_channel.entry(channel_id).or_default() += 1;
    }
    Ok(per_channel)
}

/// Makes the deliveries the filter takes pending again for one manual attempt each, due now and
/// held by no instance, keeping the status each goes back to if that attempt fails. Their
/// channels' actors send them at their own pace (concurrency, circuit, rate limit). Answers how
/// many this call queued, per channel: each update checks the delivery's status again, so of two
/// bulk redeliveries racing for the same deliveries (PostgreSQL reads them both before either
/// writes) each counts only those it changed.
pub fn request_redelivery(conn: &mut Conn, filter: &RedeliverFilter, now: i64) -> Result<HashMap<String, usize>, StoreError> {
    write(conn, |conn| {
        // Channel after channel, each's deliveries in id order: two bulk redeliveries, or one
        // beside an attempt being recorded, lock what they share in the same order.
        let mut found: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
        for (id, channel_id) in redeliverable(conn, filter)? {
            found.entry(channel_id).or_default().push(id);
        }
        let mut per_channel: HashMap<String, usize> = HashMap::new();
        for (channel_id, ids) in found {
            let mut queued = 0;
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                // An UPDATE locks rows in whatever order it finds them; they are locked first,
                // in id order (the statement recording attempts uses).
                super::load_progress(conn, progress_of(&chunk))?;
                queued += diesel::update(
                    deliveries::table
                        .filter(deliveries::id.eq_any(chunk))
                        .filter(deliveries::status.eq(&filter.status))
                        .filter(deliveries::redeliver_from.is_null()),
                )
                .set((
                    deliveries::redeliver_from.eq(&filter.status),
                    deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                    deliveries::next_attempt_at.eq(now),
                    deliveries::lease_owner.eq(None::<String>),
                    deliveries::updated_at.eq(now),
                ))
                .execute(conn)?;
            }
            if queued > 0 {
                per_channel.insert(channel_id, queued);
            }
        }
        Ok(per_channel)
    })
}

/// The alert log's query with `filter` applied (all but the page cursor), selecting `ST`.
fn filtered<'a, ST: 'a>(
    mut query: deliveries::BoxedQuery<'a, <Conn as diesel::Connection>::Backend, ST>,
    filter: &'a LogFilter,
    postgres: bool,
) -> deliveries::BoxedQuery<'a, <Conn as diesel::Connection>::Backend, ST> {
    if let Some(status) = &filter.status {
        query = query.filter(deliveries::status.eq(status));
        query = match status.as_str() {
            // Every delivery's channel is in `channels` (deleted ones are kept there), so this
            // changes no answer; it leads SQLite to the pending deliveries through the due
            // index, per channel, instead of walking the whole log newest first looking for them.
            "pending" => query.filter(is_pending()).filter(deliveries::channel_id.eq_any(channels::table.select(channels::id))),
            _ => query.filter(is_finished()),
        };
    }
    if let Some(channel_id) = &filter.channel_id {
        query = query.filter(deliveries::channel_id.eq(channel_id));
    }
    if let Some(event_id) = &filter.event_id {
        query = query.filter(deliveries::event_id.eq(event_id));
    }
    if let Some(tenant_id) = &filter.tenant_id {
        query = query.filter(deliveries::tenant_id.eq(tenant_id));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(deliveries::event_type.eq(event_type));
    }
    if let Some(request_id) = &filter.request_id {
        query = query.filter(deliveries::id.eq_any(attempts::table.filter(attempts::request_id.eq(request_id)).select(attempts::delivery_id)));
    }
    if let Some(notification_id) = &filter.notification_id {
        query = query.filter(deliveries::notification_id.eq(notification_id));
    }
    if let Some(q) = &filter.q {
        query = query.filter(super::log_search::matches(q, postgres));
    }
    if !filter.severities.is_empty() {
        query = query.filter(deliveries::severity.eq_any(&filter.severities));
    }
    // Delivery ids are time-ordered: a time range is a range of ids, searched by the primary key.
    if let Some(since) = filter.since {
        query = query.filter(deliveries::id.ge(first_id_created_at(since)));
    }
    if let Some(until) = filter.until {
        query = query.filter(deliveries::id.lt(first_id_created_at(until)));
    }
    query
}

/// One page of the alert log, newest first: `limit` rows and whether more follow.
pub fn list(conn: &mut Conn, filter: &LogFilter, limit: i64) -> Result<(Vec<DeliveryRow>, bool), StoreError> {
    let postgres = matches!(conn, super::AnyConnection::Postgres(_));
    let mut query = filtered(deliveries::table.select(DeliveryRow::as_select()).into_boxed(), filter, postgres);
    if let Some(before) = &filter.before {
        query = query.filter(deliveries::id.lt(before));
    }
    let mut rows: Vec<DeliveryRow> = query.order(deliveries::id.desc()).limit(limit + 1).load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// How many deliveries `filter` takes (the page cursor aside), counting at most [`TOTAL_CAP`]:
/// `(count, capped)`. One more statement per page, reading the matches' ids up to the cap.
pub fn total(conn: &mut Conn, filter: &LogFilter) -> Result<(i64, bool), StoreError> {
    let postgres = matches!(conn, super::AnyConnection::Postgres(_));
    let ids: Vec<String> = filtered(deliveries::table.select(deliveries::id).into_boxed(), filter, postgres).limit(TOTAL_CAP + 1).load(conn)?;
    let found = ids.len() as i64;
    Ok((found.min(TOTAL_CAP), found > TOTAL_CAP))
}

pub fn get(conn: &mut Conn, id: &str) -> Result<DeliveryRow, StoreError> {
    deliveries::table
        .find(id)
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("delivery"))
}

/// A delivery, its attempts (oldest first), the payload it sends, and what each attempt sent (by
/// `sent_requests` id, `attempts::sent_request_id`; attempts made before it was kept have none).
pub type Detail = (DeliveryRow, Vec<AttemptRow>, String, HashMap<String, SentRequestRow>);

/// A delivery's [`Detail`].
pub fn detail(conn: &mut Conn, id: &str) -> Result<Detail, StoreError> {
    let row = get(conn, id)?;
    let attempts: Vec<AttemptRow> = attempts::table
        .filter(attempts::delivery_id.eq(id))
        .order(attempts::number.asc())
        .select(AttemptRow::as_select())
        .load(conn)?;
    let payload = events::table.find(&row.event_id).select(events::payload).first(conn)?;
    let ids: Vec<String> = attempts.iter().map(|a| super::attempts::sent_request_id(&a.delivery_id, a.number, a.request_id.as_deref())).collect();
    let mut sent = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<SentRequestRow> = sent_requests::table.filter(sent_requests::id.eq_any(chunk)).select(SentRequestRow::as_select()).load(conn)?;
        sent.extend(rows.into_iter().map(|r| (r.id.clone(), r)));
    }
    Ok((row, attempts, payload, sent))
}

/// The delivery a pending one of an incident waits behind (SPEC section 17: one at a time,
/// oldest first): the oldest older pending delivery of its channel and incident, if any.
pub fn waiting_for(conn: &mut Conn, row: &DeliveryRow) -> Result<Option<String>, StoreError> {
    let Some(incident) = row.incident_hash.as_deref().filter(|_| row.status == crate::domain::delivery::DeliveryStatus::Pending.as_str()) else {
        return Ok(None);
    };
    Ok(deliveries::table
        .filter(deliveries::channel_id.eq(&row.channel_id))
        .filter(deliveries::incident_hash.eq(incident))
        .filter(is_pending())
        .filter(deliveries::id.lt(&row.id))
        .order(deliveries::id.asc())
        .select(deliveries::id)
        .first(conn)
        .optional()?)
}

/// What a manual redelivery needs: the delivery, its payload and its channel (deleted or not).
pub fn for_redelivery(conn: &mut Conn, id: &str) -> Result<(DeliveryRow, String, ChannelRow), StoreError> {
    let row = get(conn, id)?;
    let payload = events::table.find(&row.event_id).select(events::payload).first(conn)?;
    let channel = channels::table.find(&row.channel_id).select(ChannelRow::as_select()).first(conn)?;
    Ok((row, payload, channel))
}

/// What a channel's actor fetches when the store is single (a shared one leases them instead:
/// `postgres::fetch_leased`): up to `limit` pending deliveries of the channel due by `now`,
/// oldest first, leaving out those it already `holds` (it has them in memory), and the time the
/// next one after those falls due (for its wake-up timer).
pub fn fetch_due(conn: &mut Conn, channel_id: &str, now: i64, limit: i64, holds: &HashSet<String>, serial: bool) -> Result<Fetched, StoreError> {
    let due = due_ids(conn, channel_id, now, limit, serial)?;
    let next = next_due_after(conn, channel_id, now)?;
    let next = if serial { poll_if_blocked(conn, channel_id, now, next)? } else { next };
    with_payloads(conn, due, next, limit, holds)
}

/// A pending delivery is the first of its incident (SPEC section 17): none older of the same
/// channel and incident is pending. Only a channel that keeps incidents asks (`serial`).
pub fn first_of_its_incident() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql(FIRST_OF_ITS_INCIDENT)
}

/// [`first_of_its_incident`] as SQL, for the statements written out (PostgreSQL's lease).
pub const FIRST_OF_ITS_INCIDENT: &str = "(deliveries.incident_hash IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries AS older \
     WHERE older.channel_id = deliveries.channel_id AND older.incident_hash = deliveries.incident_hash \
     AND older.status = 'pending' AND older.id < deliveries.id))";

/// How often a channel that keeps incidents looks again while a due delivery waits behind an
/// older one of its incident that another instance (or a retry) holds.
pub const BLOCKED_POLL_MS: i64 = 1000;

/// `next`, or sooner ([`BLOCKED_POLL_MS`]) when a due delivery of the channel waits behind an
/// older one of its incident: nothing else would wake its actor when that one is done elsewhere.
pub fn poll_if_blocked(conn: &mut Conn, channel_id: &str, now: i64, next: Option<i64>) -> Result<Option<i64>, StoreError> {
    let blocked: Option<String> = deliveries::table
        .filter(deliveries::channel_id.eq(channel_id))
        .filter(is_pending())
        .filter(deliveries::next_attempt_at.le(now))
        .filter(deliveries::incident_hash.is_not_null())
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("NOT {FIRST_OF_ITS_INCIDENT}")))
        .select(deliveries::id)
        .first(conn)
        .optional()?;
    let poll = now + BLOCKED_POLL_MS;
    Ok(if blocked.is_some() { Some(next.map_or(poll, |n| n.min(poll))) } else { next })
}

/// The fetch of `due` (found with at most `limit`), `next` and the payloads of what is new to
/// the actor: payloads are read only for deliveries it does not `hold`.
pub(super) fn with_payloads(conn: &mut Conn, due: Vec<DueRef>, next: Option<i64>, limit: i64, holds: &HashSet<String>) -> Result<Fetched, StoreError> {
    let more = due.len() as i64 >= limit;
    let fresh: Vec<DueRef> = due.into_iter().filter(|(id, _, _)| !holds.contains(id)).collect();
    let mut event_ids: Vec<&str> = fresh.iter().map(|(_, event_id, _)| event_id.as_str()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let mut payloads: HashMap<String, String> = HashMap::with_capacity(event_ids.len());
    for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
        payloads.extend(events::table.filter(events::id.eq_any(chunk)).select((events::id, events::payload)).load::<(String, String)>(conn)?);
    }
    let due = fresh
        .into_iter()
        .filter_map(|(id, event_id, redeliver_from)| {
            // A bulk redelivery waits for its manual attempt.
            let manual = redeliver_from.is_some();
            payloads.get(&event_id).cloned().map(|payload| DueDelivery { id, event_id, payload, manual })
        })
        .collect();
    Ok(Fetched { due, next, more })
}

/// A due delivery as found: id, event id, and the status a bulk redelivery goes back to (set
/// only while one waits).
pub type DueRef = (String, String, Option<String>);

/// Up to `limit` pending deliveries of a channel due by `now`, oldest first; `serial`: only the
/// first of each incident ([`first_of_its_incident`]).
pub fn due_ids(conn: &mut Conn, channel_id: &str, now: i64, limit: i64, serial: bool) -> Result<Vec<DueRef>, StoreError> {
    let due = deliveries::table
        .filter(deliveries::channel_id.eq(channel_id))
        .filter(is_pending())
        .filter(deliveries::next_attempt_at.le(now))
        .order((deliveries::next_attempt_at.asc(), deliveries::id.asc()))
        .limit(limit)
        .select((deliveries::id, deliveries::event_id, deliveries::redeliver_from));
    Ok(if serial { due.filter(first_of_its_incident()).load(conn)? } else { due.load(conn)? })
}

/// The pending deliveries of the channel's incident `incident_hash` that wait behind `after_id`
/// (due by `now`, not waiting for a person's redelivery), oldest first, at most `limit`: each
/// its id, its event's id and its payload. A ticketing attempt that notes on a ticket carries
/// them in the same note (SPEC section 17: those waiting behind a create become one note after
/// it). No instance attempts them meanwhile, whoever leased them at ingestion: only the first
/// pending delivery of an incident is ever fetched, and that is the one being attempted.
pub fn waiting_behind(conn: &mut Conn, channel_id: &str, incident_hash: &str, after_id: &str, now: i64, limit: i64) -> Result<Vec<(String, String, String)>, StoreError> {
    let waiting: Vec<(String, String)> = deliveries::table
        .filter(deliveries::channel_id.eq(channel_id))
        .filter(deliveries::incident_hash.eq(incident_hash))
        .filter(is_pending())
        .filter(deliveries::id.gt(after_id))
        .filter(deliveries::next_attempt_at.le(now))
        .filter(deliveries::redeliver_from.is_null())
        .order(deliveries::id.asc())
        .limit(limit)
        .select((deliveries::id, deliveries::event_id))
        .load(conn)?;
    let event_ids: Vec<&str> = waiting.iter().map(|(_, e)| e.as_str()).collect();
    let payloads: HashMap<String, String> = events::table.filter(events::id.eq_any(&event_ids)).select((events::id, events::payload)).load::<(String, String)>(conn)?.into_iter().collect();
    Ok(waiting.into_iter().filter_map(|(id, event_id)| payloads.get(&event_id).cloned().map(|p| (id, event_id, p))).collect())
}

/// When the channel's next pending delivery after `now` falls due.
fn next_due_after(conn: &mut Conn, channel_id: &str, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(deliveries::table
        .filter(deliveries::channel_id.eq(channel_id))
        .filter(is_pending())
        .filter(deliveries::next_attempt_at.gt(now))
        .select(diesel::dsl::min(deliveries::next_attempt_at))
        .first(conn)?)
}

/// Readies **Probe now** for a channel: unless one of its pending deliveries is due already, the
/// one due first (that no other instance holds) is made due `now`, so the probe has something to
/// carry. Answers how many of the channel's deliveries are pending.
pub fn ready_probe(conn: &mut Conn, channel_id: &str, holder: &str, now: i64) -> Result<i64, StoreError> {
    write(conn, |conn| {
        let mine = || deliveries::lease_owner.is_null().or(deliveries::lease_owner.eq(holder));
        let pending = || deliveries::table.filter(deliveries::channel_id.eq(channel_id)).filter(is_pending());
        let due = pending().filter(mine()).filter(deliveries::next_attempt_at.le(now)).select(deliveries::id).first::<String>(conn).optional()?;
        if due.is_none() {
            let first: Option<String> =
                pending().filter(mine()).order((deliveries::next_attempt_at.asc(), deliveries::id.asc())).select(deliveries::id).first(conn).optional()?;
            if let Some(id) = first {
                diesel::update(deliveries::table.find(&id).filter(is_pending())).set(deliveries::next_attempt_at.eq(now)).execute(conn)?;
            }
        }
        Ok(pending().count().get_result(conn)?)
    })
}
