//! What is SQLite's own: the connection set-up (WAL journal, `synchronous=FULL` so a commit is on
//! disk before anything is acknowledged, a busy timeout, foreign keys on), its migrations tree,
//! and the single writer with group commit.
//!
//! The single writer is one thread with one connection. It takes every write waiting in its
//! queue, runs each in its own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once,
//! and only then answers each caller. A write that fails rolls back its own savepoint and nothing
//! else; if the commit fails, every write in the group fails. SQLite has one writer at a time
//! anyway; this way writers never wait on the busy handler, and one fsync covers many requests.
//!
//! Checkpoints (copying the WAL into the database file) are SQLite's own, in the commit that
//! passes 1,000 pages of WAL: small and regular. A checkpoint thread beside the writer copying
//! the WAL every 250 ms was tried and measured: its database-file fsyncs stalled the commits'
//! WAL fsyncs, and the p99 latency at 1,000 events/s went from 2.4 ms to 48-98 ms (BENCHMARKS.md).
//! The thread kept only bounds the WAL: past 256 MiB (readers kept every checkpoint from
//! finishing) it truncates it, waiting for the writer.
//!
//! One router process per SQLite file: a SQLite store is always single (`sharing`), so nothing is
//! leased or locked (the single writer runs one write at a time: what a write reads, nothing
//! else changes before it commits), and changes made elsewhere are never looked for.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::attempts::Progress;
use super::models::EventRow;
use super::schema::events;
use super::{guarded, AnyConnection, Connector, Pool, StoreError, WriteJob, CONNECTION_WAIT};

pub(super) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Most writes committed together in one transaction.
const MAX_GROUP: usize = 512;
/// Writes that may wait for the writer before callers are held back.
const WRITE_QUEUE: usize = 8192;

const PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

/// The writer's own: a page cache big enough for the indexes every write touches (32 MiB), and
/// savepoint journals in memory.
const WRITER_PRAGMAS: &str = "PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;";

/// How often the WAL's size is looked at.
const WAL_CHECK_EVERY: Duration = Duration::from_millis(250);

/// A WAL larger than this is truncated by a checkpoint that waits for the writer (bounds the
/// disk used when passive checkpoints cannot finish under load).
const WAL_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

/// Process-wide SQLite settings, for a process that runs the router (its command, not the
/// library inside another program): no allocation statistics, which take a global mutex on
/// every allocation SQLite makes (SQLite's own advice for speed; nothing here reads them). Must
/// run before anything in the process uses SQLite, while one thread runs: later, SQLite answers
/// SQLITE_MISUSE and nothing changes.
pub fn configure_process() {
    // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; called before SQLite is initialised, from
    // the one thread the process has then.
    unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int) };
}

/// A connection with the router's PRAGMAs.
pub fn connect(path: &str) -> Result<SqliteConnection, diesel::r2d2::Error> {
    let mut conn = SqliteConnection::establish(path).map_err(diesel::r2d2::Error::ConnectionError)?;
    conn.batch_execute(PRAGMAS).map_err(diesel::r2d2::Error::QueryError)?;
    Ok(conn)
}

/// Opens (creating if needed) the database file, runs pending migrations, and starts the writer.
pub(super) fn open(path: &str, pool_size: u32, connector: Connector, commits: super::Commits) -> anyhow::Result<(Pool, tokio::sync::mpsc::Sender<WriteJob>)> {
    // WAL is a property of the file: switch once, before the pool opens its connections.
    let mut writer_conn = connect(path).with_context(|| format!("opening the SQLite database {path}"))?;
    writer_conn.batch_execute("PRAGMA journal_mode = WAL;").with_context(|| format!("switching {path} to WAL mode"))?;
    writer_conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("running database migrations on {path}: {e}"))?;
    writer_conn.batch_execute(WRITER_PRAGMAS).with_context(|| format!("setting up the writer of {path}"))?;
    // SQLite opens a file it may not write read-only without a word; the first write would then
    // fail later, far from the cause. A write (a table made and rolled back) asks now.
    let write_check = writer_conn.batch_execute("BEGIN IMMEDIATE; CREATE TABLE spscan_write_check (x INTEGER);");
    let _ = writer_conn.batch_execute("ROLLBACK;");
    write_check.with_context(|| format!("writing to {path}"))?;
    let checkpoint_conn = connect(path).with_context(|| format!("opening the SQLite database {path}"))?;
    let pool = r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(CONNECTION_WAIT)
        .build(connector)
        .with_context(|| format!("opening the SQLite database {path}"))?;
    let (writer, queue) = tokio::sync::mpsc::channel(WRITE_QUEUE);
    // The checkpointer stops when the writer does (when every `Store` is dropped).
    let (running, stopped) = std::sync::mpsc::channel::<()>();
    let wal = format!("{path}-wal");
    std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || run_checkpointer(checkpoint_conn, &wal, stopped))
        .context("starting the database checkpointer")?;
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            run_writer(AnyConnection::Sqlite(writer_conn), queue, commits);
            drop(running);
        })
        .context("starting the database writer")?;
    Ok((pool, writer))
}

/// Runs a write through the single writer; answers after its group is committed.
pub(super) async fn write<T, F>(writer: &tokio::sync::mpsc::Sender<WriteJob>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: WriteJob = Box::new(move |conn| {
        // A panic must cost only this write (rolled back with its savepoint), never the writer.
        let result = conn.transaction(|conn| guarded(conn, f));
        Box::new(move |committed: Result<(), String>| {
            let _ = reply.send(committed.map_err(StoreError::Commit).and(result));
        })
    });
    writer.send(job).await.map_err(|_| StoreError::Task("the database writer stopped".into()))?;
    // A write whose group could not even begin is dropped unanswered: nothing of it was stored.
    answer
        .await
        .map_err(|_| StoreError::Commit("the database could not start a write transaction".into()))?
}

/// The writer thread: group commit until every `Store` is dropped.
fn run_writer(mut conn: AnyConnection, mut queue: tokio::sync::mpsc::Receiver<WriteJob>, commits: super::Commits) {
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let group = jobs.len();
        let started = std::time::Instant::now();
        let AnyConnection::Sqlite(inner) = &mut conn else { unreachable!("the SQLite writer holds a SQLite connection") };
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE") {
            log::error!("beginning a group of {group} writes: {e}");
            // Dropping the jobs unanswered tells each caller nothing was stored.
            drop(jobs);
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let answers: Vec<_> = jobs.into_iter().map(|job| job(&mut conn)).collect();
        let AnyConnection::Sqlite(inner) = &mut conn else { unreachable!() };
        let committed = AnsiTransactionManager::commit_transaction(inner).map_err(|e| {
            log::error!("committing a group of {group} writes: {e}");
            let _ = AnsiTransactionManager::rollback_transaction(inner);
            e.to_string()
        });
        if let Some(histogram) = commits.get() {
            histogram.observe(started.elapsed().as_secs_f64());
        }
        for answer in answers {
            answer(committed.clone());
        }
    }
}

/// The checkpoint thread: truncates a WAL grown past [`WAL_LIMIT_BYTES`], and checkpoints
/// everything once more when the writer stops.
fn run_checkpointer(mut conn: SqliteConnection, wal: &str, stopped: std::sync::mpsc::Receiver<()>) {
    loop {
        let last = matches!(stopped.recv_timeout(WAL_CHECK_EVERY), Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
        let large = std::fs::metadata(wal).map(|m| m.len() > WAL_LIMIT_BYTES).unwrap_or(false);
        if large || last {
            if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)") {
                log::warn!("truncating the SQLite WAL failed: {e}");
            }
        }
        if last {
            return;
        }
    }
}

/// Inserts the events; answers the ids inserted. The single writer has already left out the ids
/// it found stored, and nothing else writes, so every row goes in.
pub fn insert_events(conn: &mut SqliteConnection, rows: &[EventRow]) -> Result<HashSet<String>, StoreError> {
    insert_rows!(rows, |head| diesel::insert_into(events::table).values(head).execute(conn)?);
    Ok(rows.iter().map(|r| r.id.to_string()).collect())
}

/// The recording state of deliveries about to be moved on by their attempts
/// (`attempts::progress_of`), read as it is: only this write changes them before it commits.
pub(super) fn load_progress(conn: &mut SqliteConnection, query: super::attempts::progress_of<'_>) -> Result<Vec<(String, Progress)>, StoreError> {
    Ok(query.load(conn)?)
}

/// The finished deliveries a purge takes (`retention::purgeable`), read as they are: only this
/// write changes them before it commits.
pub(super) fn load_purgeable(conn: &mut SqliteConnection, query: super::retention::purgeable<'_>) -> Result<Vec<(String, String)>, StoreError> {
    Ok(query.load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::Text;

    fn event_row(n: usize) -> EventRow {
        EventRow {
            id: format!("e{n}"),
            event_type: "permission.external_share_created".into(),
            severity: "high",
            tenant_id: "contoso".into(),
            occurred_at: 0,
            payload: "{}".into(),
            received_at: 0,
        }
    }

    fn database() -> (tempfile::TempDir, SqliteConnection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(dir.path().join("t.db").to_str().unwrap()).unwrap();
        conn.run_pending_migrations(MIGRATIONS).unwrap();
        (dir, conn)
    }

    /// The query plans of every statement `run` makes on `deliveries`, one line per step.
    fn plans_of(run: impl FnOnce(&mut AnyConnection)) -> Vec<String> {
        let (_dir, mut conn) = database();
        let statements = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = statements.clone();
        conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
                let text = query.to_string();
                let sql = text.split(" -- binds:").next().unwrap_or_default().to_string();
                seen.lock().unwrap().push(sql);
            }
        });
        let mut any = AnyConnection::Sqlite(conn);
        run(&mut any);
        let AnyConnection::Sqlite(mut conn) = any else { unreachable!() };
        #[derive(QueryableByName)]
        struct Step {
            #[diesel(sql_type = Text)]
            detail: String,
        }
        let statements = statements.lock().unwrap().clone();
        statements
            .iter()
            .filter(|sql| sql.contains("deliveries") && !sql.starts_with("EXPLAIN"))
            .flat_map(|sql| {
                // Parameters left unbound are NULL: the plan is the one the query gets.
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load::<Step>(&mut conn).unwrap_or_else(|e| panic!("{sql}: {e}"))
            })
            .map(|step| step.detail)
            .collect()
    }

    /// Asserts the plans read `deliveries` through `index` and never by a full scan.
    fn assert_reached_through(plans: &[String], index: &str) {
        assert!(plans.iter().any(|p| p.contains(index)), "no step uses {index}: {plans:#?}");
        assert!(!plans.iter().any(|p| p == "SCAN deliveries"), "a full scan of deliveries: {plans:#?}");
    }

    #[test]
    fn the_queries_on_deliveries_reach_their_rows_through_the_partial_indexes() {
        use crate::store::deliveries::{self, LogFilter, RedeliverFilter};
        use crate::store::{channels, retention};
        let log = |status: &str| LogFilter { status: Some(status.into()), ..LogFilter::default() };
        // SQLite uses a partial index only for a query naming its condition as written: a bound
        // `status = ?` would quietly fall back to walking the whole table or log.
        assert_reached_through(&plans_of(|c| drop(deliveries::list(c, &log("pending"), 50).unwrap())), "deliveries_due");
        assert_reached_through(&plans_of(|c| drop(deliveries::list(c, &log("failed"), 50).unwrap())), "deliveries_by_status");
        let by_channel = LogFilter { channel_id: Some("ch_1".into()), ..LogFilter::default() };
        assert_reached_through(&plans_of(|c| drop(deliveries::list(c, &by_channel, 50).unwrap())), "deliveries_by_channel");
        assert_reached_through(
            &plans_of(|c| drop(deliveries::fetch_due(c, "ch_1", 0, 100, &HashSet::new(), false).unwrap())),
            "deliveries_due",
        );
        let stats = plans_of(|c| drop(channels::stats(c, &["ch_1".to_string()], 0).unwrap()));
        assert_reached_through(&stats, "deliveries_by_channel");
        assert_reached_through(&stats, "deliveries_due");
        assert_reached_through(&plans_of(|c| drop(channels::gauges(c).unwrap())), "deliveries_due");
        // A purge's batch goes on after the last delivery the one before read (a range of ids
        // from there), never from the start again.
        let purge = plans_of(|c| drop(retention::purge_deliveries(c, "succeeded", 0, "dlv_0", 500).unwrap()));
        assert_reached_through(&purge, "deliveries_by_status");
        assert!(purge.iter().any(|p| p.contains("deliveries_by_status (status=? AND id>? AND id<?)")), "{purge:#?}");
        let events = plans_of(|c| { retention::purge_unused_events(c, 0, 0, 500).unwrap(); });
        assert!(events.iter().any(|p| p.contains("events_by_received_at (received_at>? AND received_at<?)")), "{events:#?}");
        let failed = RedeliverFilter { status: "failed".into(), silence_id: None, channel_id: None, tenant_id: None, event_type: None, since: None, until: None, channel_types: vec!["webhook"] };
        assert_reached_through(&plans_of(|c| drop(deliveries::count_redeliverable(c, &failed).unwrap())), "deliveries_by_status");
    }

    #[test]
    fn the_overview_statistics_read_only_their_window_and_what_waits() {
        use crate::store::stats;
        let hourly = plans_of(|c| drop(stats::deliveries_by_hour(c, 0).unwrap()));
        assert!(hourly.iter().any(|p| p.starts_with("SEARCH deliveries USING") && p.contains("(id>?)")), "{hourly:#?}");
        let times = plans_of(|c| drop(stats::attempt_times(c, 0).unwrap()));
        assert!(times.iter().any(|p| p.starts_with("SEARCH a USING") && p.contains("(delivery_id>?)")), "{times:#?}");
        assert!(!times.iter().any(|p| p == "SCAN a" || p == "SCAN d"), "a full scan: {times:#?}");
        assert_reached_through(&plans_of(|c| drop(stats::waiting(c, 0).unwrap())), "deliveries_due");
        assert_reached_through(&plans_of(|c| drop(stats::last_deliveries(c, &["ch_1".to_string()]).unwrap())), "deliveries_by_channel");
    }

    #[test]
    fn lookups_by_a_list_of_ids_are_prepared_once_per_connection_whatever_the_count() {
        use crate::domain::tenant::Tenant;
        use crate::store::tenants;
        let (_dir, mut conn) = database();
        // Every statement diesel puts in its cache, and every statement it runs.
        let events = std::sync::Arc::new(std::sync::Mutex::new((Vec::<String>::new(), Vec::<String>::new())));
        let seen = events.clone();
        conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| match event {
            diesel::connection::InstrumentationEvent::CacheQuery { sql, .. } => seen.lock().unwrap().0.push(sql.to_string()),
            diesel::connection::InstrumentationEvent::StartQuery { query, .. } => seen.lock().unwrap().1.push(query.to_string()),
            _ => {}
        });
        let mut conn = AnyConnection::Sqlite(conn);
        for n in 0..5 {
            let tenant = Tenant { id: format!("t{n}"), display_name: format!("T{n}"), microsoft_tenant_id: format!("00000000-0000-0000-0000-00000000000{n}") };
            tenants::upsert(&mut conn, &tenant, 0).unwrap();
        }
        for ids in [vec!["t0"], vec!["t1", "t2", "t3"], vec!["t4", "t0", "nobody"]] {
            let mut found: Vec<String> = tenants::find_many(&mut conn, &ids).unwrap().into_iter().map(|t| t.id).collect();
            found.sort();
            let mut wanted: Vec<&str> = ids.iter().copied().filter(|id| *id != "nobody").collect();
            wanted.sort();
            assert_eq!(found, wanted);
        }
        let (cached, ran) = events.lock().unwrap().clone();
        let lookups = |list: &[String]| list.iter().filter(|sql| sql.contains("json_each") && sql.contains("tenants")).count();
        assert_eq!(lookups(&ran), 3, "three lookups ran: {ran:#?}");
        assert_eq!(lookups(&cached), 1, "the lookup is prepared once and then taken from the cache: {cached:#?}");
    }

    #[test]
    fn rows_of_any_count_are_all_inserted_in_fixed_size_statements() {
        let (_dir, mut conn) = database();
        let mut first = 0;
        // Every size, each remainder below the next size up, and counts past the largest.
        for count in [0, 1, 3, 4, 17, 255, 256, 341, 600] {
            let rows: Vec<EventRow> = (first..first + count).map(event_row).collect();
            let inserted = insert_events(&mut conn, &rows).unwrap();
            assert_eq!(inserted.len(), count);
            first += count;
            let stored: i64 = events::table.count().get_result(&mut conn).unwrap();
            assert_eq!(stored as usize, first, "after inserting {count} rows");
        }
    }

    #[test]
    fn a_purge_goes_on_past_what_it_keeps_batch_after_batch() {
        use crate::store::retention;
        let (_dir, mut conn) = database();
        conn.batch_execute("PRAGMA foreign_keys = OFF").unwrap();
        let cutoff = 100_000;
        // 1,750 succeeded deliveries created one a millisecond: the first 600 and the last 50
        // finished after the cutoff (a backlog delivered late, kept), the 1,100 between before it.
        let mut sql = String::from("BEGIN;");
        for n in 0..1750i64 {
            let created = 1_000 + n;
            let finished = if (600..1700).contains(&n) { created + 10 } else { cutoff + 1 };
            let id = format!("dlv_{}", ulid::Ulid::from_parts(created as u64, 0));
            sql += &format!(
                "INSERT INTO deliveries (id, event_id, channel_id, tenant_id, event_type, severity, status, attempt_count, created_at, updated_at, scheduled_attempt_count) \
                 VALUES ('{id}', 'e{n}', 'ch_1', 'contoso', 'x', 'high', 'succeeded', 1, {created}, {finished}, 1);"
            );
        }
        conn.batch_execute(&(sql + "COMMIT;")).unwrap();
        insert_events(&mut conn, &(0..1750).map(event_row).collect::<Vec<_>>()).unwrap();
        // 1,200 events no rule matched, one a millisecond after the used ones.
        let unused: Vec<EventRow> = (0..1200).map(|n| EventRow { id: format!("u{n}"), received_at: 1 + n as i64, ..event_row(0) }).collect();
        insert_events(&mut conn, &unused).unwrap();
        let mut conn = AnyConnection::Sqlite(conn);

        let (mut after, mut batches, mut purged) = (String::new(), 0, retention::Purged::default());
        loop {
            let (batch, next) = retention::purge_deliveries(&mut conn, "succeeded", cutoff, &after, 500).unwrap();
            batches += 1;
            purged += batch;
            match next {
                Some(id) => {
                    assert!(id > after, "each batch goes on after the one before");
                    after = id;
                }
                None => break,
            }
        }
        assert_eq!((purged.deliveries, purged.events, batches), (1100, 1100, 3), "500, 500 and 100, past the 600 kept");
        let AnyConnection::Sqlite(ref mut sqlite) = conn else { unreachable!() };
        let kept: i64 = super::super::schema::deliveries::table.count().get_result(sqlite).unwrap();
        let kept_late: i64 = super::super::schema::deliveries::table
            .filter(super::super::schema::deliveries::updated_at.gt(cutoff))
            .count()
            .get_result(sqlite)
            .unwrap();
        assert_eq!((kept, kept_late), (650, 650));

        let (mut from, mut batches, mut purged) = (i64::MIN, 0, 0);
        loop {
            let (count, next) = retention::purge_unused_events(&mut conn, from, cutoff, 500).unwrap();
            batches += 1;
            purged += count;
            match next {
                Some(at) => from = at,
                None => break,
            }
        }
        assert_eq!((purged, batches), (1200, 3));
        let AnyConnection::Sqlite(ref mut sqlite) = conn else { unreachable!() };
        let events: i64 = events::table.count().get_result(sqlite).unwrap();
        assert_eq!(events, 650, "the events the kept deliveries use stay");
    }

    #[test]
    fn an_id_list_bound_as_json_matches_exactly_those_ids() {
        let (_dir, mut conn) = database();
        insert_events(&mut conn, &(0..10).map(event_row).collect::<Vec<_>>()).unwrap();
        let find = |conn: &mut SqliteConnection, ids: &[&str]| {
            let mut found: Vec<String> = events::table.filter(super::super::id_in("id", ids)).select(events::id).load(conn).unwrap();
            found.sort();
            found
        };
        assert_eq!(find(&mut conn, &["e1", "e7", "nope"]), ["e1", "e7"]);
        assert!(find(&mut conn, &[]).is_empty());
        // Quotes and backslashes stay inside their string.
        assert!(find(&mut conn, &["e1\" OR 1=1 --", "e\\1"]).is_empty());
    }
}
