//! Durable state, with diesel, on SQLite (the embedded default) or PostgreSQL (several instances
//! on one database). Every SQL statement lives in a plain sync function taking a connection (one
//! file per table), written once where the two backends agree; async code reaches them only
//! through the one wrapper, [`Store`]: [`Store::read`] runs a function on the blocking pool with
//! a pooled connection, [`Store::write`] runs it in a transaction.
//!
//! What differs between the backends sits in one file each, not in branches across the queries:
//! [`sqlite`] (PRAGMAs, the single writer with group commit) and [`postgres`] (concurrent
//! transactions, `ON CONFLICT` for what several instances may write at once, rows locked as a
//! write reads them, leases on due deliveries with `FOR UPDATE SKIP LOCKED`, the shared rate-limit
//! pace, migrations under an advisory lock). The few statements a query file needs run
//! differently go through a function here that picks the backend's own (`on_backend!`, only here
//! and in those two files).
//!
//! Whether the store serves one process (SQLite) or several instances (PostgreSQL) is decided
//! once, by [`Store::open`]; what the rest of the router does differently because of it is a
//! method of [`Store`] in `sharing`, so nothing outside this module asks which backend runs.
//!
//! Invariant: a write's caller hears `Ok` only once the write is committed.

/// Picks the statement of the connection's backend: `on_backend!(conn, c => sqlite_expr, postgres_expr)`.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $sqlite:expr, $postgres:expr) => {
        match $conn {
            $crate::store::AnyConnection::Sqlite($c) => $sqlite,
            $crate::store::AnyConnection::Postgres($c) => $postgres,
        }
    };
}

/// Runs the same statement on whichever backend the connection is, for the few statements
/// diesel can only build for one concrete backend (multi-row inserts):
/// `each_backend!(conn, c => diesel::insert_into(t).values(rows).execute(c))`.
macro_rules! each_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::AnyConnection::Sqlite($c) => $body,
            $crate::store::AnyConnection::Postgres($c) => $body,
        }
    };
}

/// Inserts a slice of rows in statements of fixed sizes (256, 64, 16, 8, 4, 3, 2 and 1 rows), so
/// each statement is one of eight that diesel prepares once per connection and then takes from
/// its statement cache; a multi-row INSERT of any other size is parsed and planned anew every
/// time (a seventh of the SQLite writer's time, BENCHMARKS.md). The small sizes matter on
/// PostgreSQL, where each statement is a round trip: the groups of single-event ingestion and
/// of attempt recording hold a few rows, and three rows go in one statement, not three. `insert` runs with `head` bound to
/// each `&[row; size]`, answers the rows it inserted; the macro answers their sum:
/// `insert_rows!(rows, |head| diesel::insert_into(t).values(head).execute(c)?)`.
macro_rules! insert_rows {
    ($rows:expr, |$head:ident| $insert:expr) => {{
        let mut rest = &$rows[..];
        let mut inserted = 0usize;
        insert_rows!(@sized 256, rest, inserted, $head, $insert);
        insert_rows!(@sized 64, rest, inserted, $head, $insert);
        insert_rows!(@sized 16, rest, inserted, $head, $insert);
        insert_rows!(@sized 8, rest, inserted, $head, $insert);
        insert_rows!(@sized 4, rest, inserted, $head, $insert);
        insert_rows!(@sized 3, rest, inserted, $head, $insert);
        insert_rows!(@sized 2, rest, inserted, $head, $insert);
        insert_rows!(@sized 1, rest, inserted, $head, $insert);
        inserted
    }};
    (@sized $n:literal, $rest:ident, $inserted:ident, $head:ident, $insert:expr) => {
        while $rest.len() >= $n {
            let (head, tail) = $rest.split_at($n);
            let $head: &[_; $n] = head.try_into().expect("split at the size");
            $inserted += $insert;
            $rest = tail;
        }
    };
}

pub mod attempts;
pub mod channels;
pub mod deliveries;
pub mod events;
pub mod groups;
pub mod incidents;
mod id_in;
pub mod log_search;
pub mod instances;
pub mod models;
mod open_error;
pub mod o365;
pub mod postgres;
pub mod rules;
pub mod retention;
pub mod schema;
pub mod silences;
pub mod stats;
mod sharing;
pub mod sqlite;
pub mod tenants;
pub mod tokens;

pub use id_in::{id_in, IdIn};
pub use sharing::Holder;

use std::time::Duration;

use diesel::connection::{Connection, SimpleConnection, TransactionManager};
use diesel::{PgConnection, SqliteConnection};

use crate::domain::Invalid;

/// A connection to either backend; every query function takes one.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// The connection type every query function takes.
pub type Conn = AnyConnection;

/// Where the database is, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file path.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` connection URL.
    Postgres(String),
}

impl Database {
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://path`, `sqlite:path` or a
    /// plain path is a SQLite file.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).map_err(|e| format!("is not a PostgreSQL URL ({e}), such as postgres://user@host:5432/spscan"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err("names no host; use postgres://user@host:5432/database".into());
            }
            return Ok(Self::Postgres(url.to_string()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err("is neither a SQLite file path (such as spscan-router.db) nor a postgres:// URL".into());
        }
        Ok(Self::Sqlite(path.to_string()))
    }

    /// How logs and errors name it: the file, or the PostgreSQL host, port and database (never
    /// the password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("SQLite {path}"),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(u) => format!(
                    "PostgreSQL {}:{}{}",
                    u.host_str().unwrap_or_default(),
                    u.port().unwrap_or(5432),
                    if u.path().len() > 1 { u.path() } else { "" }
                ),
                Err(_) => "PostgreSQL".into(),
            },
        }
    }
}

/// Why a store function did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or was deleted).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request refers to something that does not exist or breaks a rule the store enforces.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The request conflicts with the current state (a duplicate id, a tenant still in use).
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database task stopped: {0}")]
    Task(String),
    /// The transaction holding this write could not be committed; nothing of it was stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The database could not be reached for this write (said once for several writes).
    #[error("{0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the database could not be reached (rather than refusing what was asked).
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as Db};
        matches!(
            self,
            Self::Pool(_)
                | Self::Commit(_)
                | Self::Unavailable(_)
                | Self::Database(Db::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _))
                | Self::Database(Db::BrokenTransactionManager)
        )
    }
}

/// The pool every read (and on PostgreSQL every write) takes its connection from.
pub type Pool = r2d2::Pool<Connector>;

/// Opens connections to the configured backend, and only that one (diesel's own manager would
/// try every backend in turn, and a path is a valid SQLite database name).
#[derive(Debug, Clone)]
pub struct Connector(Database);

impl r2d2::ManageConnection for Connector {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.0 {
            Database::Sqlite(path) => sqlite::connect(path).map(AnyConnection::Sqlite),
            Database::Postgres(url) => postgres::connect(url).map(AnyConnection::Postgres),
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

/// One write waiting for the SQLite writer: runs in a savepoint, answers once the group is committed.
type WriteJob = Box<dyn FnOnce(&mut Conn) -> Box<dyn FnOnce(Result<(), String>) + Send> + Send>;

/// The handle to the database: cheap to clone, shared by actors and handlers. Whether it is used
/// by one process or shared by several instances was decided when it opened (`sharing`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    mode: sharing::Mode,
    database: Database,
    /// Where write transactions' durations go, once the router's metrics exist.
    commits: Commits,
}

/// The histogram of commit durations, shared with the SQLite writer thread.
pub type Commits = std::sync::Arc<std::sync::OnceLock<prometheus::Histogram>>;

impl Store {
    /// Opens the database (creating a SQLite file if needed), runs pending migrations, and
    /// decides once how it is used: a SQLite file by this process alone, a PostgreSQL database
    /// shared by several instances, `holder` being this one among them (`sharing`).
    pub fn open(database: &Database, pool_size: u32, holder: Holder) -> anyhow::Result<Self> {
        match database {
            Database::Sqlite(path) => {
                let commits = Commits::default();
                let (pool, writer) = sqlite::open(path, pool_size, Connector(database.clone()), commits.clone()).map_err(|err| {
                    anyhow::anyhow!("DATABASE_URL: cannot open the SQLite database {path}: {}", open_error::sqlite(path, &format!("{:#}", err.root_cause())))
                })?;
                Ok(Self { pool, mode: sharing::Mode::single(writer), database: database.clone(), commits })
            }
            Database::Postgres(url) => {
                let pool = postgres::open(url, &database.describe(), pool_size, Connector(database.clone())).map_err(|err| anyhow::anyhow!("DATABASE_URL: {err:#}"))?;
                Ok(Self { pool, mode: sharing::Mode::shared(holder), database: database.clone(), commits: Commits::default() })
            }
        }
    }

    /// Observes the duration of every write transaction from now on.
    pub fn observe_commits(&self, histogram: prometheus::Histogram) {
        let _ = self.commits.set(histogram);
    }

    /// Which database this is.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Runs `f` in a transaction; answers after it is committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.mode {
            sharing::Mode::Single { writer, .. } => sqlite::write(writer, f).await,
            sharing::Mode::Shared { .. } => {
                let commits = self.commits.clone();
                self.blocking(move |conn| {
                    let started = std::time::Instant::now();
                    let written = conn.transaction(|conn| guarded(conn, f));
                    if let Some(histogram) = commits.get() {
                        histogram.observe(started.elapsed().as_secs_f64());
                    }
                    written
                })
                .await
            }
        }
    }

    /// Runs a read on the blocking pool with a pooled connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(f).await
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// Runs a write, turning a panic into an error that rolls back only this write.
fn guarded<T, F>(conn: &mut Conn, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut Conn) -> Result<T, StoreError>,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::Task("a database write panicked; it was rolled back".into())))
}

/// How long a caller waits for a pooled connection before the request is answered 503.
pub const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// Runs `f` all or nothing. Inside a write every job already runs in its own transaction or
/// savepoint, so no further one is opened (each savepoint costs statements); outside a
/// transaction, `f` gets one of its own.
pub fn write<T, F>(conn: &mut Conn, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut Conn) -> Result<T, StoreError>,
{
    let depth = <Conn as Connection>::TransactionManager::transaction_manager_status_mut(conn).transaction_depth()?;
    if depth.is_some() {
        f(conn)
    } else {
        conn.transaction(f)
    }
}

/// Whether the database answers (for `/healthz`).
pub fn ping(conn: &mut Conn) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

/// Inserts events whose ids are not stored yet; answers the ids inserted.
pub fn insert_events(conn: &mut Conn, rows: &[models::EventRow]) -> Result<std::collections::HashSet<String>, StoreError> {
    on_backend!(conn, c => sqlite::insert_events(c, rows), postgres::insert_events(c, rows))
}

/// Of `ids`, those already stored, read by an ingestion write before it inserts: on SQLite,
/// whose plain insert would fail on one. On PostgreSQL nothing is read: the insert's
/// `ON CONFLICT DO NOTHING` answers which were new (another instance may store one in between
/// anyway), and single-event ingestion saves a round trip per write.
pub fn stored_event_ids(conn: &mut Conn, ids: &[&str]) -> Result<Vec<String>, StoreError> {
    use diesel::prelude::*;
    use schema::events;
    on_backend!(conn, _c => Ok(events::table.filter(id_in("id", ids)).select(events::id).load::<String>(_c)?), Ok(Vec::new()))
}

/// The tables whose rows a PATCH reads, merges and writes back.
#[derive(Debug, Clone, Copy)]
pub enum Changeable {
    Tenant,
    Channel,
    Rule,
}

/// Locks the row about to be read, merged and written back, until the transaction ends, so two
/// concurrent changes of one row apply one after the other instead of the last undoing the
/// first (PostgreSQL; SQLite's single writer runs one write at a time anyway).
pub fn lock_for_change(conn: &mut Conn, table: Changeable, id: &str) -> Result<(), StoreError> {
    on_backend!(conn, _c => Ok(()), postgres::lock_for_change(_c, table, id))
}

/// The time of a write that decides by the clock (suppression windows, group flushes): the
/// database's on PostgreSQL, the same for every instance; this process's (`now`) on SQLite.
pub fn database_now(conn: &mut Conn, now: i64) -> Result<i64, StoreError> {
    on_backend!(conn, _c => Ok(now), postgres::database_now(_c))
}

/// A suppression window, locked until the transaction ends on PostgreSQL (`groups::Noise`).
fn lock_window(conn: &mut Conn, rule_id: &str, channel_id: &str, key: &str) -> Result<models::SuppressionRow, StoreError> {
    use diesel::prelude::*;
    use schema::suppression_windows as w;
    let query = w::table.find((rule_id, channel_id, key));
    Ok(on_backend!(
        conn,
        c => query.select(models::SuppressionRow::as_select()).first(c),
        query.select(models::SuppressionRow::as_select()).for_update().first(c)
    )?)
}

/// The open group of a key, `(id, flush_at)`, taken FOR SHARE on PostgreSQL so no flush runs
/// until the joining transaction ends (`groups::Noise`).
fn lock_open_group(conn: &mut Conn, rule_id: &str, channel_id: &str, key: &str) -> Result<Option<(String, i64)>, StoreError> {
    use diesel::prelude::*;
    use schema::alert_groups as g;
    let query = g::table
        .filter(g::rule_id.eq(rule_id))
        .filter(g::channel_id.eq(channel_id))
        .filter(g::key_hash.eq(key))
        .filter(g::closing.eq(false))
        .select((g::id, g::flush_at));
    Ok(on_backend!(conn, c => query.first(c).optional(), query.for_share().first(c).optional())?)
}

/// Whose groups [`lock_groups`] takes.
pub enum GroupsOf<'a> {
    Rule(&'a str),
    Channel(&'a str),
}

/// A rule's or a channel's groups, locked on PostgreSQL in the order ingestion locks them (rule,
/// channel, key) before they are changed (`groups::close_for_rule`, `cancel_for_channel`): their
/// ids. Groups opened after this read are not among them.
fn lock_groups(conn: &mut Conn, of: GroupsOf<'_>) -> Result<Vec<String>, StoreError> {
    use diesel::prelude::*;
    use schema::alert_groups as g;
    let order = (g::rule_id, g::channel_id, g::key_hash);
    let ids = match (conn, of) {
        (AnyConnection::Postgres(c), GroupsOf::Rule(id)) => g::table.filter(g::rule_id.eq(id)).order(order).select(g::id).for_update().load::<String>(c)?,
        (AnyConnection::Postgres(c), GroupsOf::Channel(id)) => g::table.filter(g::channel_id.eq(id)).order(order).select(g::id).for_update().load::<String>(c)?,
        (AnyConnection::Sqlite(c), GroupsOf::Rule(id)) => g::table.filter(g::rule_id.eq(id)).select(g::id).load::<String>(c)?,
        (AnyConnection::Sqlite(c), GroupsOf::Channel(id)) => g::table.filter(g::channel_id.eq(id)).select(g::id).load::<String>(c)?,
    };
    Ok(ids)
}

/// Whether a channel was deleted; on PostgreSQL its row is taken FOR SHARE until the transaction
/// ends, so a delete (which takes the channel's groups first) waits for the flush that asks.
fn channel_deleted(conn: &mut Conn, channel_id: &str) -> Result<bool, StoreError> {
    use diesel::prelude::*;
    use schema::channels as c;
    let query = c::table.find(channel_id).select(c::deleted_at);
    let deleted_at: Option<Option<i64>> = on_backend!(conn, x => query.first(x).optional(), query.for_share().first(x).optional())?;
    Ok(!matches!(deleted_at, Some(None)))
}

/// Up to `limit` groups due at `now`, oldest flush first; on PostgreSQL locked, skipping those
/// another instance is flushing or being joined (`groups::flush_due`).
fn lock_due_groups(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<models::GroupRow>, StoreError> {
    use diesel::prelude::*;
    use schema::alert_groups as g;
    let query = g::table.filter(g::flush_at.le(now)).order(g::flush_at.asc()).limit(limit);
    Ok(on_backend!(
        conn,
        c => query.select(models::GroupRow::as_select()).load(c),
        query.select(models::GroupRow::as_select()).for_update().skip_locked().load(c)
    )?)
}

/// The recording state of the deliveries a write is about to move on (`attempts::record`),
/// so that no other transaction changes them before it commits: locked on PostgreSQL
/// (`postgres::load_progress`), read as it is by SQLite's single writer (`sqlite::load_progress`).
fn load_progress(conn: &mut Conn, query: attempts::progress_of<'_>) -> Result<Vec<(String, attempts::Progress)>, StoreError> {
    on_backend!(conn, c => sqlite::load_progress(c, query), postgres::load_progress(c, query))
}

/// The finished deliveries a purge is about to delete (`retention::purge_deliveries`): locked on
/// PostgreSQL, skipping those another transaction holds (`postgres::load_purgeable`); read as
/// they are by SQLite's single writer (`sqlite::load_purgeable`).
fn load_purgeable(conn: &mut Conn, query: retention::purgeable<'_>) -> Result<Vec<(String, String)>, StoreError> {
    on_backend!(conn, c => sqlite::load_purgeable(c, query), postgres::load_purgeable(c, query))
}
