//! Durable state, with diesel on an r2d2 pool. Every SQL statement lives in a plain sync function
//! taking a connection (one file per table); async code reaches them only through [`Store::run`],
//! which runs them on the blocking thread pool, never on an actor's or a handler's thread.
//!
//! SQLite is the embedded default: WAL journal, `synchronous=FULL` (a commit is on disk before
//! anything is acknowledged), a busy timeout, foreign keys on. Writes use `BEGIN IMMEDIATE` so
//! concurrent writers queue on the busy timeout instead of failing on lock upgrade.

pub mod channels;
pub mod deliveries;
pub mod events;
pub mod models;
pub mod rules;
pub mod schema;
pub mod tenants;

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::SqliteConnection;
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
}

/// The handle to the database: cheap to clone, shared by actors and handlers.
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionManager<Conn>>,
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
        let mut first = <Conn as diesel::Connection>::establish(path)
            .with_context(|| format!("opening the SQLite database {path}"))?;
        first
            .batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
            .with_context(|| format!("switching {path} to WAL mode"))?;
        drop(first);
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
        Ok(Self { pool })
    }

    /// Runs one store function on the blocking pool with a pooled connection.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
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

/// Runs `f` in a write transaction (SQLite: `BEGIN IMMEDIATE`, so the write lock is taken up
/// front and a concurrent writer waits instead of failing). Everything or nothing is committed.
pub fn write<T, F>(conn: &mut Conn, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut Conn) -> Result<T, StoreError>,
{
    conn.immediate_transaction(f)
}

/// Whether the database answers (for `/healthz`).
pub fn ping(conn: &mut Conn) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}
