//! What is PostgreSQL's own: its migrations tree (run under an advisory lock, so instances that
//! start together take turns), and the statements several instances may run at the same moment:
//! `ON CONFLICT` inserts (an event id ingested through two instances at once is stored once),
//! and leases on due deliveries (`FOR UPDATE SKIP LOCKED`), so one instance at a time attempts a
//! delivery and a dead instance's deliveries go to the others once its leases expire.
//!
//! Writes are concurrent transactions on pooled connections (PostgreSQL has real concurrency;
//! the SQLite single writer would only serialise them).

use std::collections::HashSet;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::models::{EventRow, InstanceRow, TenantRow};
use super::schema::{api_tokens, deliveries, events, instances, tenants};
use super::{Connector, Pool, StoreError, CONNECTION_WAIT};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The advisory lock instances take turns on while migrating ("spscan" in ASCII).
const MIGRATION_LOCK: i64 = 0x7370_7363_616e;

/// Connects, runs pending migrations (one instance at a time) and opens the pool. A server that
/// cannot be reached fails here with one line naming it and the cause.
pub(super) fn open(url: &str, described: &str, pool_size: u32, connector: Connector) -> anyhow::Result<Pool> {
    let mut conn = PgConnection::establish(url).map_err(|e| anyhow::anyhow!("cannot connect to {described}: {}", one_line(&e.to_string())))?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .with_context(|| format!("waiting for the migration lock on {described}"))?;
    let migrated = conn.run_pending_migrations(MIGRATIONS).map(|_| ()).map_err(|e| anyhow::anyhow!("running database migrations on {described}: {e}"));
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    migrated?;
    r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(CONNECTION_WAIT)
        .build(connector)
        .with_context(|| format!("opening connections to {described}"))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Inserts the events whose ids are not stored yet; answers the ids inserted. Another instance
/// inserting the same id at the same moment makes this wait for its commit, then skip the row.
pub fn insert_events(conn: &mut PgConnection, rows: &[EventRow]) -> Result<HashSet<String>, StoreError> {
    Ok(diesel::insert_into(events::table)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(events::id)
        .get_results::<String>(conn)?
        .into_iter()
        .collect())
}

/// Registers a tenant or updates its names.
pub fn upsert_tenant(conn: &mut PgConnection, row: &TenantRow) -> Result<(), StoreError> {
    diesel::insert_into(tenants::table)
        .values(row)
        .on_conflict(tenants::id)
        .do_update()
        .set((
            tenants::display_name.eq(&row.display_name),
            tenants::microsoft_tenant_id.eq(&row.microsoft_tenant_id),
            tenants::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Keeps a generated token's hash unless one is kept already (another instance may have won).
pub fn keep_token_hash(conn: &mut PgConnection, role: &str, hash: &str, now: i64) -> Result<(), StoreError> {
    diesel::insert_into(api_tokens::table)
        .values((api_tokens::role.eq(role), api_tokens::token_hash.eq(hash), api_tokens::created_at.eq(now)))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Records that an instance is alive.
pub fn heartbeat(conn: &mut PgConnection, row: &InstanceRow) -> Result<(), StoreError> {
    diesel::insert_into(instances::table)
        .values(row)
        .on_conflict(instances::id)
        .do_update()
        .set(instances::last_seen_at.eq(row.last_seen_at))
        .execute(conn)?;
    Ok(())
}

/// Leases up to `limit` pending deliveries of a channel that are due and not leased by another
/// live instance, oldest first, to `owner` until `until`; answers their ids. Rows another
/// transaction is claiming right now are skipped, not waited for.
pub fn claim_due(conn: &mut PgConnection, channel_id: &str, owner: &str, now: i64, until: i64, limit: i64) -> Result<Vec<String>, StoreError> {
    use diesel::sql_types::{BigInt, Text};

    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = Text)]
        id: String,
    }

    let claimed: Vec<Claimed> = diesel::sql_query(
        "UPDATE deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN (\
           SELECT id FROM deliveries \
           WHERE channel_id = $3 AND status = 'pending' AND next_attempt_at <= $4 \
             AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $1) \
           ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind::<Text, _>(owner)
    .bind::<BigInt, _>(until)
    .bind::<Text, _>(channel_id)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(claimed.into_iter().map(|c| c.id).collect())
}

/// Locks the deliveries about to get attempts recorded, so two transactions recording attempts
/// of one delivery (a manual redelivery beside a scheduled attempt) number them one after the other.
pub fn lock_deliveries(conn: &mut PgConnection, ids: &[&str]) -> Result<(), StoreError> {
    deliveries::table.filter(deliveries::id.eq_any(ids)).select(deliveries::id).for_update().load::<String>(conn)?;
    Ok(())
}

/// Extends every lease `owner` holds on a pending delivery to `until` (the instance's heartbeat).
pub fn renew_leases(conn: &mut PgConnection, owner: &str, until: i64) -> Result<usize, StoreError> {
    Ok(diesel::update(deliveries::table.filter(deliveries::lease_owner.eq(owner)).filter(deliveries::status.eq("pending")))
        .set(deliveries::lease_until.eq(until))
        .execute(conn)?)
}
