//! Durable state, with diesel. Every SQL statement lives in a plain sync function taking a
//! connection (one file per table); async code reaches them only through the one wrapper,
//! [`Store`]: [`Store::read`] runs a function on the blocking pool with a pooled connection,
//! [`Store::write`] hands it to the single writer.
//!
//! The single writer is one thread with one connection. It takes every write waiting in its
//! queue, runs each in its own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once,
//! and only then answers each caller (group commit). A write that fails rolls back its own
//! savepoint and nothing else; if the commit fails, every write in the group fails. SQLite has
//! one writer at a time anyway; this way writers never wait on the busy handler, and one fsync
//! covers many requests.
//!
//! SQLite is the embedded default: WAL journal, `synchronous=FULL` (a commit is on disk before
//! anything is acknowledged), a busy timeout, foreign keys on.

pub mod channels;
pub mod deliveries;
pub mod events;
pub mod models;
pub mod rules;
pub mod schema;
pub mod tenants;
pub mod tokens;

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::domain::Invalid;

/// The connection type every query function takes.
pub type Conn = SqliteConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

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
}

/// Most writes committed together in one transaction.
const MAX_GROUP: usize = 512;
/// Writes that may wait for the writer before callers are held back.
const WRITE_QUEUE: usize = 8192;

/// One write waiting for the writer: runs in a savepoint, answers once the group is committed.
type WriteJob = Box<dyn FnOnce(&mut Conn) -> Box<dyn FnOnce(Result<(), String>) + Send> + Send>;

/// The handle to the database: cheap to clone, shared by actors and handlers.
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionManager<Conn>>,
    writer: tokio::sync::mpsc::Sender<WriteJob>,
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<Conn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut Conn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and runs pending migrations.
    pub fn open_sqlite(path: &str, pool_size: u32) -> anyhow::Result<Self> {
        // WAL is a property of the file: switch once, before the pool opens its connections.
        let mut writer_conn = <Conn as diesel::Connection>::establish(path)
            .with_context(|| format!("opening the SQLite database {path}"))?;
        writer_conn
            .batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
            .with_context(|| format!("switching {path} to WAL mode"))?;
        SqlitePragmas.on_acquire(&mut writer_conn).context("setting up the writer connection")?;
        let manager = ConnectionManager::<Conn>::new(path);
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(30))
            .connection_customizer(Box::new(SqlitePragmas))
            .build(manager)
            .with_context(|| format!("opening the SQLite database {path}"))?;
        let mut conn = pool.get().context("connecting to the database")?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("running database migrations: {e}"))?;
        let (writer, queue) = tokio::sync::mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(writer_conn, queue))
            .context("starting the database writer")?;
        Ok(Self { pool, writer })
    }

    /// Runs a write through the single writer; answers after it is committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            // A panic must cost only this write (rolled back with its savepoint), never the writer.
            let result = conn.transaction(|conn| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(StoreError::Task("a database write panicked; it was rolled back".into())))
            });
            Box::new(move |committed: Result<(), String>| {
                let _ = reply.send(committed.map_err(StoreError::Commit).and(result));
            })
        });
        self.writer.send(job).await.map_err(|_| StoreError::Task("the database writer stopped".into()))?;
        // A write whose group could not even begin is dropped unanswered: nothing of it was stored.
        answer
            .await
            .map_err(|_| StoreError::Commit("the database could not start a write transaction".into()))?
    }

    /// Runs a read on the blocking pool with a pooled connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
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

/// The writer thread: group commit until every `Store` is dropped.
fn run_writer(mut conn: Conn, mut queue: tokio::sync::mpsc::Receiver<WriteJob>) {
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let group = jobs.len();
        let mut answers = Vec::with_capacity(group);
        let committed = conn.immediate_transaction(|conn| {
            for job in jobs {
                answers.push(job(conn));
            }
            Ok::<_, diesel::result::Error>(())
        });
        let committed = committed.map_err(|e| {
            log::error!("committing a group of {group} writes: {e}");
            e.to_string()
        });
        for answer in answers {
            answer(committed.clone());
        }
    }
}

/// Runs `f` all or nothing. Inside the writer every job already runs in its own savepoint, so
/// no further one is opened (each savepoint costs statements and a sub-journal); outside a
/// transaction, `f` gets one of its own.
pub fn write<T, F>(conn: &mut Conn, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut Conn) -> Result<T, StoreError>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth()?;
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
