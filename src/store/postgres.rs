//! What is PostgreSQL's own: its migrations tree (run under an advisory lock, so instances that
//! start together take turns), and the statements several instances may run at the same moment:
//! `ON CONFLICT` inserts (an event id ingested through two instances at once is stored once),
//! and leases on due deliveries (`FOR UPDATE SKIP LOCKED`), so one instance at a time attempts a
//! delivery and a dead instance's deliveries go to the others once its heartbeat is stale. A
//! lease is only the holder's id on the row: it lasts as long as the holder's heartbeat, so
//! nothing has to renew rows.
//!
//! Writes are concurrent transactions on pooled connections (PostgreSQL has real concurrency;
//! the SQLite single writer would only serialise them), so the rows a write reads and then
//! changes are locked as they are read (`FOR UPDATE`). A PostgreSQL store is always shared
//! (`sharing`): its pool holds PostgreSQL connections only.

use std::collections::HashSet;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::attempts::Progress;
use super::deliveries::{DueRef, Fetched};
use super::models::EventRow;
use super::schema::{deliveries, events};
use super::{AnyConnection, Connector, Pool, StoreError, CONNECTION_WAIT};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The advisory lock instances take turns on while migrating ("spscan" in ASCII).
const MIGRATION_LOCK: i64 = 0x7370_7363_616e;

/// Connects, runs pending migrations (one instance at a time) and opens the pool. A server that
/// cannot be reached fails here with one line naming it and the cause.
pub(super) fn open(url: &str, described: &str, pool_size: u32, connector: Connector) -> anyhow::Result<Pool> {
    let mut conn = PgConnection::establish(url).map_err(|e| anyhow::anyhow!("cannot connect to {described}: {}", super::open_error::postgres(&e.to_string())))?;
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

/// What each connection sets for its own session (the server's configuration is left alone).
/// The router's rows are read from memory, not from a spinning disk: with the default
/// `random_page_cost` of 4 the planner chose full scans of `deliveries` for `id = ANY(…)`
/// lookups of a few hundred ids (measured with `auto_explain` during `loadtest throughput`:
/// 285 full scans of the table in a 3 s run; 48 with this setting, all while it was small).
const SESSION: &str = "SET random_page_cost = 1.1";

/// A connection with the router's session settings.
pub fn connect(url: &str) -> Result<PgConnection, diesel::r2d2::Error> {
    let mut conn = PgConnection::establish(url).map_err(diesel::r2d2::Error::ConnectionError)?;
    conn.batch_execute(SESSION).map_err(diesel::r2d2::Error::QueryError)?;
    Ok(conn)
}

/// The PostgreSQL connection of a shared store, whose pool holds nothing else (`open`).
pub(super) fn connection(conn: &mut AnyConnection) -> &mut PgConnection {
    match conn {
        AnyConnection::Postgres(c) => c,
        AnyConnection::Sqlite(_) => unreachable!("a shared store's pool holds PostgreSQL connections only"),
    }
}

/// Events per INSERT: 3,500 bound parameters, well under PostgreSQL's 65,535.
const EVENTS_PER_INSERT: usize = 500;

/// Inserts the events whose ids are not stored yet; answers the ids inserted. Another instance
/// inserting the same id at the same moment makes this wait for its commit, then skip the row.
pub fn insert_events(conn: &mut PgConnection, rows: &[EventRow]) -> Result<HashSet<String>, StoreError> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(EVENTS_PER_INSERT) {
        inserted.extend(diesel::insert_into(events::table).values(chunk).on_conflict_do_nothing().returning(events::id).get_results::<String>(conn)?);
    }
    Ok(inserted)
}

/// The tables whose rows grow with the traffic, and whose lookups by id lists go wrong with stale
/// planner statistics.
const BUSY_TABLES: [&str; 6] = ["deliveries", "attempts", "events", "sent_requests", "alert_groups", "incidents"];
/// One instance at a time tends the tables (`pg_try_advisory_lock`); the others skip that turn.
const TENDING_LOCK: i64 = 0x7370_7363_6173;

/// What [`tend_tables`] did: the tables vacuumed (and analyzed with it) and those only analyzed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tended {
    pub vacuumed: Vec<String>,
    pub analyzed: Vec<String>,
}

/// Does for the busy tables what autovacuum would, when it does not run. Analyzes each busy table
/// changed by more than 1,000 rows plus a fifth of its rows since its last analysis; and, only
/// while the server's `autovacuum` is off, vacuums (and analyzes) each with more than 1,000 plus a
/// fifth of its rows dead. Runs outside a transaction (`VACUUM` cannot run in one), under a
/// session advisory lock it always gives back. Autovacuum's own thresholds are lower (50 rows and
/// a tenth or a fifth), so where it runs this finds nothing to do.
///
/// Why: PostgreSQL caches a plan per prepared statement and keeps it until the table's
/// statistics change. With autovacuum off (as on this project's own machines) or not yet run on
/// a new database, a plan made while `deliveries` was nearly empty (a full scan, then a filter by
/// the id list) stayed in force as the table grew, and recording 500 attempts took a second
/// instead of a millisecond. And with nothing vacuumed, every update and purge of `deliveries`
/// leaves a dead row and dead index entries that each claim of due deliveries walks again
/// (BENCHMARKS.md, sixteenth and seventeenth sessions).
pub fn tend_tables(conn: &mut PgConnection) -> Result<Tended, StoreError> {
    use diesel::sql_types::Bool;
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    let locked: Locked = diesel::sql_query(format!("SELECT pg_try_advisory_lock({TENDING_LOCK}) AS locked")).get_result(conn)?;
    if !locked.locked {
        return Ok(Tended::default());
    }
    let tended = tend_tables_locked(conn);
    // Given back whatever happened (a connection that broke has lost it anyway).
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({TENDING_LOCK})"));
    tended
}

fn tend_tables_locked(conn: &mut PgConnection) -> Result<Tended, StoreError> {
    use diesel::sql_types::{Array, Bool, Text};
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Bool)]
        vacuum: bool,
    }
    let due: Vec<Due> = diesel::sql_query(
        "SELECT relname::text AS name,                 (current_setting('autovacuum') = 'off' AND n_dead_tup > 1000 + 0.2 * GREATEST(n_live_tup, 0)) AS vacuum          FROM pg_stat_user_tables          WHERE schemaname = current_schema() AND relname = ANY($1)            AND (n_mod_since_analyze > 1000 + 0.2 * GREATEST(n_live_tup, 0)                 OR (current_setting('autovacuum') = 'off' AND n_dead_tup > 1000 + 0.2 * GREATEST(n_live_tup, 0)))          ORDER BY relname",
    )
    .bind::<Array<Text>, _>(&BUSY_TABLES[..])
    .load(conn)?;
    let mut tended = Tended::default();
    for table in due {
        // The names come from BUSY_TABLES, never from input.
        if table.vacuum {
            conn.batch_execute(&format!("VACUUM (ANALYZE) {}", table.name))?;
            tended.vacuumed.push(table.name);
        } else {
            conn.batch_execute(&format!("ANALYZE {}", table.name))?;
            tended.analyzed.push(table.name);
        }
    }
    Ok(tended)
}

/// A claim on deliveries: the instance that holds them. It lasts as long as the instance's
/// heartbeat: a delivery held by an instance not seen since `dead_if_unseen_since` may be taken.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub dead_if_unseen_since: i64,
}

/// What a channel's actor fetches from a shared store (see `deliveries::fetch_due` for the
/// single one): the due deliveries it holds or can take now ([`claim_due`]), with the payloads
/// of those new to it. Run inside a write: taking deliveries changes them.
pub(super) fn fetch_leased(
    conn: &mut AnyConnection,
    channel_id: &str,
    lease: &Lease,
    now: i64,
    limit: i64,
    holds: &HashSet<String>,
    serial: bool,
) -> Result<Fetched, StoreError> {
    let claim = claim_due(connection(conn), channel_id, lease, now, limit, serial)?;
    let next = if serial { super::deliveries::poll_if_blocked(conn, channel_id, now, claim.next)? } else { claim.next };
    super::deliveries::with_payloads(conn, claim.due, next, limit, holds)
}

/// Up to `limit` due pending deliveries of a channel for `lease.owner`, oldest first: those it
/// holds already, then those nobody holds, which it takes; and when the next of either falls due.
/// Deliveries held by a dead instance (no heartbeat since `lease.dead_if_unseen_since`) are
/// first released, so they are among those nobody holds. Rows another transaction is taking
/// right now are skipped, not waited for. Each step is a range of `deliveries_due_by_holder`,
/// never a walk past what live instances hold. Answers `(id, event id, redeliver_from)` of each.
fn claim_due(conn: &mut PgConnection, channel_id: &str, lease: &Lease, now: i64, limit: i64, serial: bool) -> Result<Claim, StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Text};

    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = Text)]
        event_id: String,
        #[diesel(sql_type = Nullable<Text>)]
        redeliver_from: Option<String>,
    }
    #[derive(QueryableByName)]
    struct Next {
        #[diesel(sql_type = Nullable<BigInt>)]
        next: Option<i64>,
    }

    release_dead(conn, lease)?;
    let mine = deliveries::table
        .filter(deliveries::lease_owner.eq(&lease.owner))
        .filter(deliveries::channel_id.eq(channel_id))
        .filter(super::deliveries::is_pending())
        .filter(deliveries::next_attempt_at.le(now))
        .order((deliveries::next_attempt_at.asc(), deliveries::id.asc()))
        .limit(limit)
        .select((deliveries::id, deliveries::event_id, deliveries::redeliver_from));
    // A channel that keeps incidents takes only the first of each incident (`serial`).
    let mut due: Vec<DueRef> = if serial { mine.filter(super::deliveries::first_of_its_incident()).load(conn)? } else { mine.load(conn)? };
    let room = limit - due.len() as i64;
    if room > 0 {
        let first_only = if serial { format!("AND {} ", super::deliveries::FIRST_OF_ITS_INCIDENT) } else { String::new() };
        let taken: Vec<Claimed> = diesel::sql_query(format!(
            "UPDATE deliveries SET lease_owner = $1 WHERE id IN (\
               SELECT id FROM deliveries \
               WHERE lease_owner IS NULL AND channel_id = $2 AND status = 'pending' AND next_attempt_at <= $3 {first_only}\
               ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, event_id, redeliver_from",
        ))
        .bind::<Text, _>(&lease.owner)
        .bind::<Text, _>(channel_id)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(room)
        .load(conn)?;
        due.extend(taken.into_iter().map(|c| (c.id, c.event_id, c.redeliver_from)));
    }
    // What other live instances hold is theirs to wake for.
    let next: Next = diesel::sql_query(
        "SELECT LEAST(\
           (SELECT min(next_attempt_at) FROM deliveries \
             WHERE lease_owner = $1 AND channel_id = $2 AND status = 'pending' AND next_attempt_at > $3), \
           (SELECT min(next_attempt_at) FROM deliveries \
             WHERE lease_owner IS NULL AND channel_id = $2 AND status = 'pending' AND next_attempt_at > $3)) AS next",
    )
    .bind::<Text, _>(&lease.owner)
    .bind::<Text, _>(channel_id)
    .bind::<BigInt, _>(now)
    .get_result(conn)?;
    Ok(Claim { due, next: next.next })
}

/// Due deliveries taken, and when the next one falls due.
struct Claim {
    due: Vec<DueRef>,
    next: Option<i64>,
}

/// Lets go of what instances without a heartbeat since `lease.dead_if_unseen_since` held, on
/// every channel at once. It runs before every fetch, so it must cost next to nothing when there
/// is nothing to release: the instances table is read first (usually no instance is dead: a
/// restarted one comes back under its own id), and for a dead one the due index is probed for
/// a single delivery it holds before anything is updated (usually none: they were released at the
/// first fetch after it died). Written as one statement (`lease_owner = ANY(ARRAY(SELECT …))`)
/// the planner could not see which instances it meant and guessed from the statistics: with a
/// backlog pending it guessed every pending delivery and read the whole table at every fetch
/// (200 ms a time at 1.7 million rows; BENCHMARKS.md, eighteenth session).
fn release_dead(conn: &mut PgConnection, lease: &Lease) -> Result<(), StoreError> {
    use super::schema::instances;
    let dead: Vec<String> = instances::table
        .filter(instances::last_seen_at.lt(lease.dead_if_unseen_since))
        .filter(instances::id.ne(&lease.owner))
        .select(instances::id)
        .load(conn)?;
    for owner in dead {
        let holds = deliveries::table
            .filter(super::deliveries::is_pending())
            .filter(deliveries::lease_owner.eq(&owner))
            .order((deliveries::lease_owner, deliveries::channel_id, deliveries::next_attempt_at, deliveries::id))
            .select(deliveries::id)
            .first::<String>(conn)
            .optional()?;
        if holds.is_some() {
            diesel::update(deliveries::table.filter(super::deliveries::is_pending()).filter(deliveries::lease_owner.eq(&owner)))
                .set(deliveries::lease_owner.eq(None::<String>))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Claims the next request slot of a rate-limited channel for this instance, whichever instances
/// send to it: the slot is the later of the channel's next free start and now (the database's
/// clock, the same for every instance), and the next free start moves one `interval_us` past it,
/// under the row's lock. Answers how long to wait for the slot, in microseconds (0 or more).
pub fn claim_send_slot(conn: &mut PgConnection, channel_id: &str, interval_us: i64) -> Result<i64, StoreError> {
    use diesel::sql_types::{BigInt, Text};

    #[derive(QueryableByName)]
    struct Slot {
        #[diesel(sql_type = BigInt)]
        wait_us: i64,
    }
    let slot: Slot = diesel::sql_query(
        "INSERT INTO channel_pace AS p (channel_id, next_at) \
         VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $2) \
         ON CONFLICT (channel_id) DO UPDATE SET next_at = GREATEST(p.next_at, EXCLUDED.next_at - $2) + $2 \
         RETURNING GREATEST(p.next_at - $2 - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 0) AS wait_us",
    )
    .bind::<Text, _>(channel_id)
    .bind::<BigInt, _>(interval_us)
    .get_result(conn)?;
    Ok(slot.wait_us)
}

/// Locks one row of a table a PATCH changes (see `store::lock_for_change`).
pub fn lock_for_change(conn: &mut PgConnection, table: super::Changeable, id: &str) -> Result<(), StoreError> {
    let table = match table {
        super::Changeable::Tenant => "tenants",
        super::Changeable::Channel => "channels",
        super::Changeable::Rule => "rules",
    };
    diesel::sql_query(format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE")).bind::<diesel::sql_types::Text, _>(id).execute(conn)?;
    Ok(())
}

/// The recording state of deliveries about to be moved on by their attempts
/// (`attempts::progress_of`), locked until the transaction ends, so two transactions recording
/// attempts of one delivery (a manual redelivery beside a scheduled attempt) number them one
/// after the other.
pub(super) fn load_progress(conn: &mut PgConnection, query: super::attempts::progress_of<'_>) -> Result<Vec<(String, Progress)>, StoreError> {
    Ok(query.for_update().load(conn)?)
}

/// The finished deliveries a purge takes (`retention::purgeable`), locked as they are read;
/// rows another transaction holds (a redelivery making one pending again) are left for the
/// next purge rather than waited for.
pub(super) fn load_purgeable(conn: &mut PgConnection, query: super::retention::purgeable<'_>) -> Result<Vec<(String, String)>, StoreError> {
    Ok(query.for_update().skip_locked().load(conn)?)
}

/// The database's clock, in Unix milliseconds (`store::database_now`).
pub(super) fn database_now(conn: &mut PgConnection) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        ms: i64,
    }
    let now: Now = diesel::sql_query("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms").get_result(conn)?;
    Ok(now.ms)
}

#[cfg(test)]
mod tests {
    //! Statements measured by the rows they read, on the test server (`TEST_DATABASE_URL`, by
    //! default the local one): `pg_stat_xact_user_tables` counts what this transaction read.
    use super::*;
    use diesel::sql_types::BigInt;

    /// A fresh, migrated database, dropped with the guard; `None` (said loudly) when no server
    /// answers, unless `REQUIRE_POSTGRES=1`.
    struct TestDatabase {
        name: String,
        admin_url: String,
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
            }
        }
    }

    fn database() -> Option<(TestDatabase, PgConnection)> {
        let admin_url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(admin) => admin,
            Err(err) => {
                assert!(std::env::var("REQUIRE_POSTGRES").map_or(true, |v| v != "1"), "REQUIRE_POSTGRES=1 but {admin_url} does not answer: {err}");
                eprintln!("*** skipped: PostgreSQL at {admin_url} does not answer ({err}) ***");
                return None;
            }
        };
        let name = format!("spscan_unit_{}", ulid::Ulid::new().to_string().to_lowercase());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let guard = TestDatabase { name: name.clone(), admin_url: admin_url.clone() };
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        let mut conn = connect(url.as_str()).unwrap();
        conn.run_pending_migrations(MIGRATIONS).unwrap();
        Some((guard, conn))
    }

    /// Inserts deliveries `from..to` on channel `ch_1`, ids time-ordered by `n` (created at `n`
    /// ms), with the given status, finish time and holder. Without their events and channel:
    /// only `deliveries` is read here, so its foreign keys are dropped.
    fn deliveries(conn: &mut PgConnection, from: i64, to: i64, status: &str, updated_at: &str, holder: &str) {
        conn.batch_execute(&format!(
            "ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_id_fkey, \
                                   DROP CONSTRAINT IF EXISTS deliveries_channel_id_fkey; \
             INSERT INTO deliveries (id, event_id, channel_id, tenant_id, event_type, severity, status, attempt_count, next_attempt_at, \
                                     created_at, updated_at, scheduled_attempt_count, lease_owner) \
             SELECT 'dlv_' || lpad(n::text, 26, '0'), 'e' || n, 'ch_1', 'contoso', 'x', 'high', '{status}', 1, \
                    CASE WHEN '{status}' = 'pending' THEN n END, n, {updated_at}, 1, {holder} \
             FROM generate_series({from}, {to} - 1) n; \
             ANALYZE deliveries;"
        ))
        .unwrap();
    }

    #[derive(QueryableByName, Debug)]
    struct Read {
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }

    /// Rows of `deliveries` this transaction has read so far, by full scans and through indexes.
    fn rows_read(conn: &mut PgConnection) -> i64 {
        diesel::sql_query(
            "SELECT (COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0))::bigint AS rows FROM pg_stat_xact_user_tables WHERE relname = 'deliveries'",
        )
        .get_result::<Read>(conn)
        .unwrap()
        .rows
    }

    #[test]
    fn a_fetch_with_a_backlog_pending_reads_what_it_takes_not_the_table() {
        let Some((_guard, mut conn)) = database() else { return };
        // 20,000 pending deliveries held by a live instance, 100 by a dead one (its heartbeat a
        // minute old), 100 nobody holds; statistics that know it.
        deliveries(&mut conn, 0, 20_000, "pending", "n", "'live'");
        deliveries(&mut conn, 20_000, 20_100, "pending", "n", "'dead'");
        deliveries(&mut conn, 20_100, 20_200, "pending", "n", "NULL");
        let now = 1_000_000;
        conn.batch_execute(&format!("INSERT INTO instances VALUES ('live', 'x', 0, {now}), ('dead', 'x', 0, {})", now - 60_000)).unwrap();
        let lease = Lease { owner: "other".into(), dead_if_unseen_since: now - 30_000 };

        let (first, again) = conn
            .transaction::<_, diesel::result::Error, _>(|conn| {
                let first = claim_due(conn, "ch_1", &lease, now, 100, false).unwrap();
                let read_first = rows_read(conn);
                let again = claim_due(conn, "ch_1", &lease, now, 100, false).unwrap();
                let read_again = rows_read(conn) - read_first;
                Ok(((first.due.len(), read_first), (again.due.len(), read_again)))
            })
            .unwrap();
        // The first fetch releases the dead instance's 100 and takes them (the oldest nobody
        // holds now); the second finds them its own. Neither reads the live instance's 20,000.
        assert_eq!((first.0, again.0), (100, 100));
        assert!(first.1 < 1_000 && again.1 < 1_000, "rows of deliveries read: {} then {}", first.1, again.1);
    }

    #[test]
    fn a_purge_reads_what_finished_late_once_however_many_batches_it_takes() {
        let Some((_guard, conn)) = database() else { return };
        let mut conn = AnyConnection::Postgres(conn);
        let cutoff = 1_000_000;
        // 20,000 old deliveries that finished after the cutoff (a backlog delivered late, kept),
        // then 1,600 that finished before it (four batches of 500).
        deliveries(connection(&mut conn), 0, 20_000, "succeeded", &(cutoff + 1).to_string(), "NULL");
        deliveries(connection(&mut conn), 20_000, 21_600, "succeeded", "n", "NULL");
        let (purged, read) = conn
            .transaction::<_, StoreError, _>(|conn| {
                let (mut after, mut purged) = (String::new(), 0);
                loop {
                    let (batch, next) = super::super::retention::purge_deliveries(conn, "succeeded", cutoff, &after, 500)?;
                    purged += batch.deliveries;
                    match next {
                        Some(id) => after = id,
                        None => break,
                    }
                }
                Ok((purged, rows_read(connection(conn))))
            })
            .unwrap();
        assert_eq!(purged, 1_600);
        // Each kept delivery read once (plus what the deletes read), not once per batch.
        assert!(read < 30_000, "rows of deliveries read: {read}");
    }
}
