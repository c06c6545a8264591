//! Queries on `instances` (who runs on this database, with their heartbeats) and
//! `routing_version` (bumped by every change to channels and rules, so every instance reloads).

use diesel::prelude::*;

use super::models::InstanceRow;
use super::schema::{instances, routing_version};
use super::{Conn, StoreError};

/// How recently an instance must have been seen to be listed.
pub const SEEN_WITHIN_MS: i64 = 60_000;

/// The instances seen in the last minute, oldest first.
pub fn recent(conn: &mut Conn, now: i64) -> Result<Vec<InstanceRow>, StoreError> {
    Ok(instances::table
        .filter(instances::last_seen_at.ge(now - SEEN_WITHIN_MS))
        .order((instances::started_at.asc(), instances::id.asc()))
        .select(InstanceRow::as_select())
        .load(conn)?)
}

/// Records that an instance is alive (which keeps its leases).
pub fn heartbeat(conn: &mut Conn, row: &InstanceRow) -> Result<(), StoreError> {
    each_backend!(conn, c => diesel::insert_into(instances::table)
        .values(row)
        .on_conflict(instances::id)
        .do_update()
        .set(instances::last_seen_at.eq(row.last_seen_at))
        .execute(c))?;
    Ok(())
}

/// The current routing version.
pub fn routing_version(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(routing_version::table.find(1).select(routing_version::version).first(conn)?)
}

/// Marks a change to channels or rules (inside the change's own transaction).
pub fn bump_routing_version(conn: &mut Conn) -> Result<(), StoreError> {
    diesel::update(routing_version::table.find(1)).set(routing_version::version.eq(routing_version::version + 1)).execute(conn)?;
    Ok(())
}

/// An instance stopping lets go of what it holds (after recording its attempts), so the other
/// instances take its pending deliveries and Office 365 blobs at their next sweep instead of
/// after its heartbeat runs out. Answers how many deliveries it let go.
pub fn release(conn: &mut Conn, owner: &str) -> Result<usize, StoreError> {
    use super::schema::deliveries;
    let released = diesel::update(deliveries::table.filter(deliveries::lease_owner.eq(owner)).filter(super::deliveries::is_pending()))
        .set(deliveries::lease_owner.eq(None::<String>))
        .execute(conn)?;
    super::o365::release_claims(conn, Some(owner))?;
    Ok(released)
}
