//! Retention (SPEC section 15): finished deliveries (their attempts with them) and the events no
//! delivery uses any more are deleted once older than the retention, a small batch per
//! transaction, so the writer is never held for long. Pending deliveries, and the events they
//! need, are never touched.

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::schema::{attempts, deliveries, events, o365_actions, o365_arrivals, o365_contents, sent_requests};
use super::{Conn, StoreError};

/// What one batch deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub deliveries: usize,
    pub attempts: usize,
    pub events: usize,
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Self) {
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.events += other.events;
    }
}

/// Deletes up to `limit` deliveries in `status` finished before `cutoff` (Unix ms), with ids
/// after `after`, their attempts, and their events when no other delivery uses them and they
/// arrived before `cutoff`. Answers what it deleted and, when there may be more, the id to go on
/// after: the last it read.
///
/// Delivery ids are time-ordered (`dlv_` + a ULID), so only those created before `cutoff` are
/// read, oldest first, through the `(status, id)` index. Among them are deliveries that finished
/// after `cutoff` (a backlog that waited behind an outage longer than the retention, a retry):
/// they are kept, and the next batch goes on after them rather than reading them again, so a
/// purge reads each delivery at most once however many batches it takes. On PostgreSQL the rows
/// are locked as they are read (and rows another transaction holds, a redelivery making one
/// pending again, are left for the next purge); the delete repeats the conditions all the same.
pub fn purge_deliveries(conn: &mut Conn, status: &str, cutoff: i64, after: &str, limit: i64) -> Result<(Purged, Option<String>), StoreError> {
    let before = super::deliveries::first_id_created_at(cutoff);
    let found = super::load_purgeable(conn, purgeable(status, after, before, cutoff, limit))?;
    if found.is_empty() {
        return Ok((Purged::default(), None));
    }
    let next = if found.len() as i64 >= limit { found.last().map(|(id, _)| id.clone()) } else { None };
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    // A notification's grouped deliveries go with it, whatever their age.
    let grouped: Vec<(String, String)> = deliveries::table
        .filter(deliveries::notification_id.eq_any(&ids))
        .select((deliveries::id, deliveries::event_id))
        .load(conn)?;
    let grouped_ids: Vec<&str> = grouped.iter().map(|(id, _)| id.as_str()).collect();
    let mut event_ids: Vec<&str> = found.iter().chain(&grouped).map(|(_, event)| event.as_str()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    // The requests those attempts sent go with them: a request of its own at once, one several
    // deliveries shared once no attempt is left that went in it.
    let sent: Vec<(String, i32, Option<String>)> =
        attempts::table.filter(attempts::delivery_id.eq_any(&ids)).select((attempts::delivery_id, attempts::number, attempts::request_id)).load(conn)?;
    let attempts = diesel::delete(attempts::table.filter(attempts::delivery_id.eq_any(&ids))).execute(conn)?;
    purge_sent_requests(conn, &sent)?;
    let deliveries = diesel::delete(
        deliveries::table.filter(deliveries::id.eq_any(&ids)).filter(deliveries::status.eq(status)).filter(deliveries::updated_at.lt(cutoff)),
    )
    .execute(conn)?;
    let mut grouped = 0;
    for chunk in grouped_ids.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        grouped += diesel::delete(deliveries::table.filter(super::id_in("id", chunk))).execute(conn)?;
    }
    let events = purge_events_unused_among(conn, &event_ids, cutoff)?;
    Ok((Purged { deliveries: deliveries + grouped, attempts, events }, next))
}

/// Deletes the requests the attempts `sent` (delivery id, number, shared request id) made, once
/// no attempt left went in them.
fn purge_sent_requests(conn: &mut Conn, sent: &[(String, i32, Option<String>)]) -> Result<(), StoreError> {
    let mut own: Vec<String> = Vec::new();
    let mut shared: Vec<&str> = Vec::new();
    for (delivery_id, number, request_id) in sent {
        match request_id {
            Some(shared_id) => shared.push(shared_id),
            None => own.push(super::attempts::sent_request_id(delivery_id, *number, None)),
        }
    }
    shared.sort_unstable();
    shared.dedup();
    for chunk in own.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        diesel::delete(sent_requests::table.filter(sent_requests::id.eq_any(chunk))).execute(conn)?;
    }
    for chunk in shared.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        let unused = not(exists(attempts::table.filter(attempts::request_id.eq(sent_requests::id.nullable()))));
        diesel::delete(sent_requests::table.filter(sent_requests::id.eq_any(chunk)).filter(unused)).execute(conn)?;
    }
    Ok(())
}

/// Up to `limit` deliveries in `status` with ids after `after` and before `before` (created before
/// the cutoff) that finished before `cutoff`, in id order: `(id, event id)` of each. Each backend
/// runs it its own way (`store::load_purgeable`).
#[diesel::dsl::auto_type]
pub(super) fn purgeable<'a>(status: &'a str, after: &'a str, before: String, cutoff: i64, limit: i64) -> _ {
    let finished: diesel::expression::SqlLiteral<diesel::sql_types::Bool> = super::deliveries::is_finished();
    deliveries::table
        .filter(deliveries::status.eq(status))
        .filter(finished)
        .filter(deliveries::id.gt(after))
        .filter(deliveries::id.lt(before))
        .filter(deliveries::updated_at.lt(cutoff))
        .order(deliveries::id)
        .select((deliveries::id, deliveries::event_id))
        .limit(limit)
}

/// Deletes suppression windows that ended before `cutoff` (up to `limit`): a repeat after that
/// opens a new one anyway.
pub fn purge_suppression_windows(conn: &mut Conn, cutoff: i64, limit: i64) -> Result<usize, StoreError> {
    use super::schema::suppression_windows as w;
    let ended: Vec<(String, String, String)> = w::table.filter(w::until.lt(cutoff)).select((w::rule_id, w::channel_id, w::window_key)).limit(limit).load(conn)?;
    let mut purged = 0;
    for (rule_id, channel_id, key) in &ended {
        purged += diesel::delete(w::table.find((rule_id, channel_id, key)).filter(w::until.lt(cutoff))).execute(conn)?;
    }
    Ok(purged)
}

/// Deletes those of the events `among` that no delivery uses and that arrived before `cutoff`.
fn purge_events_unused_among(conn: &mut Conn, among: &[&str], cutoff: i64) -> Result<usize, StoreError> {
    let mut ids = Vec::new();
    for chunk in among.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        let unused = not(exists(deliveries::table.filter(deliveries::event_id.eq(events::id))));
        ids.extend(events::table.filter(super::id_in("id", chunk)).filter(events::received_at.lt(cutoff)).filter(unused).select(events::id).load::<String>(conn)?);
    }
    delete_events(conn, &ids)
}

/// Deletes up to `limit` events no delivery uses (events no rule matched) that arrived from
/// `from` (Unix ms) and before `cutoff`, oldest first. Answers how many and, when there may be
/// more, where to go on from: the arrival time of the last, so the next batch does not read again
/// the events a backlog still uses that it passed (only those that arrived in that millisecond).
pub fn purge_unused_events(conn: &mut Conn, from: i64, cutoff: i64, limit: i64) -> Result<(usize, Option<i64>), StoreError> {
    let unused = not(exists(deliveries::table.filter(deliveries::event_id.eq(events::id))));
    let found: Vec<(String, i64)> = events::table
        .filter(events::received_at.ge(from))
        .filter(events::received_at.lt(cutoff))
        .filter(unused)
        .order(events::received_at)
        .select((events::id, events::received_at))
        .limit(limit)
        .load(conn)?;
    let next = if found.len() as i64 >= limit { found.last().map(|(_, at)| *at) } else { None };
    let ids: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
    Ok((delete_events(conn, &ids)?, next))
}

fn delete_events(conn: &mut Conn, ids: &[String]) -> Result<usize, StoreError> {
    let mut purged = 0;
    for chunk in ids.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        purged += diesel::delete(events::table.filter(events::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(purged)
}

/// What the Office 365 source keeps that is no longer needed, up to `limit` rows of each kind:
/// hourly arrival counts older than `cutoff`; actions remembered for folding, and blobs fetched or
/// expired, before `kept_cutoff` (kept longer than the API lists content, so a blob listed again
/// is never fetched again, and late records of an action still fold into it).
pub fn purge_o365(conn: &mut Conn, cutoff: i64, kept_cutoff: i64, limit: i64) -> Result<usize, StoreError> {
    let actions: Vec<String> =
        o365_actions::table.filter(o365_actions::created_at.lt(kept_cutoff)).select(o365_actions::action_key).limit(limit).load(conn)?;
    let mut purged = diesel::delete(o365_actions::table.filter(o365_actions::action_key.eq_any(&actions))).execute(conn)?;
    let contents: Vec<String> = o365_contents::table
        .filter(o365_contents::status.ne(super::o365::PENDING))
        .filter(o365_contents::created_at.lt(kept_cutoff))
        .select(o365_contents::content_id)
        .limit(limit)
        .load(conn)?;
    purged += diesel::delete(o365_contents::table.filter(o365_contents::content_id.eq_any(&contents))).execute(conn)?;
    // One row per tenant, hour and outcome: few.
    purged += diesel::delete(o365_arrivals::table.filter(o365_arrivals::last_at.lt(cutoff))).execute(conn)?;
    Ok(purged)
}
