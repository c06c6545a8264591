//! Retention (SPEC section 15): finished deliveries (their attempts with them) and the events no
//! delivery uses any more are deleted once older than the retention, a small batch per
//! transaction, so the writer is never held for long. Pending deliveries, and the events they
//! need, are never touched.

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::schema::{attempts, deliveries, events, o365_actions, o365_arrivals, o365_contents};
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

/// Deletes up to `limit` deliveries in one of `statuses` finished before `cutoff` (Unix ms), their
/// attempts, and their events when no other delivery uses them and they arrived before `cutoff`.
pub fn purge_deliveries(conn: &mut Conn, statuses: &[&str], cutoff: i64, limit: i64) -> Result<Purged, StoreError> {
    let found: Vec<(String, String)> = deliveries::table
        .filter(deliveries::status.eq_any(statuses))
        .filter(deliveries::updated_at.lt(cutoff))
        .select((deliveries::id, deliveries::event_id))
        .limit(limit)
        .load(conn)?;
    if found.is_empty() {
        return Ok(Purged::default());
    }
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    let mut event_ids: Vec<&str> = found.iter().map(|(_, event)| event.as_str()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let attempts = diesel::delete(attempts::table.filter(attempts::delivery_id.eq_any(&ids))).execute(conn)?;
    let deliveries = diesel::delete(deliveries::table.filter(deliveries::id.eq_any(&ids))).execute(conn)?;
    let events = purge_unused_events(conn, Some(&event_ids), cutoff, limit)?;
    Ok(Purged { deliveries, attempts, events })
}

/// Deletes events no delivery uses that arrived before `cutoff`: among `among`, or up to `limit`
/// of any (events no rule matched).
pub fn purge_unused_events(conn: &mut Conn, among: Option<&[&str]>, cutoff: i64, limit: i64) -> Result<usize, StoreError> {
    let unused = not(exists(deliveries::table.filter(deliveries::event_id.eq(events::id))));
    let ids: Vec<String> = match among {
        Some(among) => events::table.filter(events::id.eq_any(among)).filter(events::received_at.lt(cutoff)).filter(unused).select(events::id).load(conn)?,
        None => events::table.filter(events::received_at.lt(cutoff)).filter(unused).select(events::id).limit(limit).load(conn)?,
    };
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(events::table.filter(events::id.eq_any(&ids))).execute(conn)?)
}

/// What the Office 365 source keeps that is no longer needed: actions remembered for folding and
/// hourly arrival counts older than `cutoff`, and blobs fetched or expired before `contents_cutoff`
/// (kept longer than the API lists them, so a later listing never fetches them again).
pub fn purge_o365(conn: &mut Conn, cutoff: i64, contents_cutoff: i64) -> Result<usize, StoreError> {
    let actions = diesel::delete(o365_actions::table.filter(o365_actions::created_at.lt(cutoff))).execute(conn)?;
    let arrivals = diesel::delete(o365_arrivals::table.filter(o365_arrivals::last_at.lt(cutoff))).execute(conn)?;
    let contents = diesel::delete(
        o365_contents::table
            .filter(o365_contents::status.ne(super::o365::PENDING))
            .filter(o365_contents::created_at.lt(contents_cutoff)),
    )
    .execute(conn)?;
    Ok(actions + arrivals + contents)
}
