//! Single or shared, decided once, when the store opens: a SQLite file serves one router
//! process (single), a PostgreSQL database several instances (shared). What the rest of the
//! router does differently because of it is a method of [`Store`] here, the same in both modes,
//! so no caller asks which one runs:
//!
//! - [`Store::ingest`]: shared, the new deliveries are leased to this instance (it sends them at
//!   once; the others leave them alone).
//! - [`Store::fetch_due`]: single, a read of what is due; shared, a write that leases it
//!   (`postgres::fetch_leased`), taking over what instances without a heartbeat held.
//! - [`Store::claim_send_slot`]: a channel's rate-limit pace, kept in this process when single,
//!   in the database when shared, so every instance sending to a channel keeps the one limit.
//! - [`Store::record_writes`], [`Store::routing_watch`], [`Store::due_sweep`]: how many writes a
//!   channel runs at once, and how often to look for what other instances changed (single:
//!   never, nobody else writes).
//! - [`Store::let_go`], [`Store::release_fetch_claims`]: what this instance gives back when it
//!   stops and starts.
//! - [`Store::tend_tables`]: shared, the busy tables analyzed when their planner statistics go
//!   stale and vacuumed when full of dead rows (`postgres::tend_tables`), should the server's
//!   autovacuum not do it.
//!
//! Invariant: a shared store's connections are PostgreSQL's (its pool comes from
//! `postgres::open`), so the shared paths run PostgreSQL's own statements; a single store's
//! writes go through the SQLite writer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::deliveries::{self, Fetched};
use super::events::{self, Ingested, MatchedEvent};
use super::postgres::{self, Lease};
use super::{Conn, Store, StoreError, WriteJob};
use crate::domain::time::now_ms;

/// This instance as the holder of leases, given to the store when it opens (leases are taken
/// only when the store is shared): its id, written on what it takes, and how long an instance
/// may go unseen before what it holds is taken over.
#[derive(Debug, Clone)]
pub struct Holder {
    pub id: String,
    pub takeover_after: Duration,
}

impl Holder {
    /// A lease taken now: what instances unseen for `takeover_after` hold may be taken.
    fn lease(&self) -> Lease {
        Lease { owner: self.id.clone(), dead_if_unseen_since: now_ms() - self.takeover_after.as_millis() as i64 }
    }
}

/// How the store is used, decided when it opens.
#[derive(Clone)]
pub(super) enum Mode {
    /// One router process on a SQLite file: writes go through the single writer (`sqlite`),
    /// nothing is leased, and rate limits are paced in this process.
    Single { writer: tokio::sync::mpsc::Sender<WriteJob>, pace: LocalPace },
    /// Several instances on one PostgreSQL database: writes are concurrent transactions, and
    /// what this instance ingests or fetches is leased to `holder`.
    Shared { holder: Arc<Holder> },
}

impl Mode {
    pub(super) fn single(writer: tokio::sync::mpsc::Sender<WriteJob>) -> Self {
        Self::Single { writer, pace: LocalPace::default() }
    }

    pub(super) fn shared(holder: Holder) -> Self {
        Self::Shared { holder: Arc::new(holder) }
    }

    /// Who new deliveries are leased to: this instance when shared, nobody when single.
    fn owner(&self) -> Option<String> {
        match self {
            Self::Single { .. } => None,
            Self::Shared { holder } => Some(holder.id.clone()),
        }
    }
}

/// The rate-limit pace of each channel, for one process: the earliest start of its next request.
#[derive(Clone, Default)]
pub(super) struct LocalPace(Arc<Mutex<HashMap<String, Instant>>>);

impl LocalPace {
    /// The same rule as the shared pace (`postgres::claim_send_slot`), by this process's clock.
    fn claim(&self, channel_id: &str, interval: Duration) -> Duration {
        let now = Instant::now();
        let mut next = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = next.entry(channel_id.to_string()).or_insert(now);
        let slot = (*next).max(now);
        *next = slot + interval;
        slot - now
    }
}

/// Most attempt-recording writes one channel runs at once on SQLite, whose single writer groups
/// concurrent writes into one commit anyway.
const MAX_WRITES: usize = 4;

/// Attempt-recording writes one channel runs at once: one on PostgreSQL, [`MAX_WRITES`] on
/// SQLite. On PostgreSQL every write is a transaction of its own round trips (begin, the pool's
/// check, read, update, two inserts, commit) whatever it holds, and each round trip costs the
/// server and the router about as much as the rows: while one write runs, the attempts that
/// finish gather for the next, so one write at a time forms groups several times larger. With
/// 8 single-event requests in flight, one write delivered 1,600-1,850 events/s against
/// 1,130-1,230 with four, and with `DATABASE_POOL_SIZE=2` one write already cost 8-15 % less CPU
/// per event than four (BENCHMARKS.md, ninth and sixteenth sessions). A channel busy enough to
/// need more than one recording transaction at a time is rare; several channels record in
/// parallel.
fn record_writes(shared: bool, _pool_size: u32) -> usize {
    if shared {
        1
    } else {
        MAX_WRITES
    }
}

/// How often a shared store's instance looks at the busy tables' statistics and dead rows.
const TENDING_CHECK: Duration = Duration::from_secs(5);

/// How often a shared store's instance looks for changes made through other instances.
const ROUTING_WATCH: Duration = Duration::from_millis(500);

/// How often, when shared, every channel looks for due deliveries that no timer of this
/// instance knows of: retries another instance scheduled, deliveries whose lease ran out.
const DUE_SWEEP: Duration = Duration::from_secs(5);

impl Store {
    /// Stores a batch of events and their deliveries, all or nothing (`events::ingest`); answers
    /// once they are committed.
    pub async fn ingest(&self, batch: Vec<MatchedEvent>, is_batch: bool) -> Result<Vec<Ingested>, StoreError> {
        let owner = self.mode.owner();
        self.write(move |conn| events::ingest(conn, &batch, is_batch, now_ms(), owner.as_deref())).await
    }

    /// Like [`Store::ingest`], in one transaction after `first`, and only if `first` (given the
    /// time of the write) answers `true`; `None` if it did not.
    pub async fn ingest_if<F>(&self, batch: Vec<MatchedEvent>, is_batch: bool, first: F) -> Result<Option<Vec<Ingested>>, StoreError>
    where
        F: FnOnce(&mut Conn, i64) -> Result<bool, StoreError> + Send + 'static,
    {
        let owner = self.mode.owner();
        self.write(move |conn| {
            let now = now_ms();
            if !first(conn, now)? {
                return Ok(None);
            }
            Ok(Some(events::ingest(conn, &batch, is_batch, now, owner.as_deref())?))
        })
        .await
    }

    /// Flushes up to `limit` due groups into notifications (`groups::flush_due`); shared, the
    /// notifications are leased to this instance, which sends them at once.
    pub async fn flush_groups(&self, limit: i64) -> Result<super::groups::Flushed, StoreError> {
        let owner = self.mode.owner();
        let mut flushed = self.write(move |conn| super::groups::flush_due(conn, now_ms(), limit, owner.as_deref())).await?;
        if !flushed.silenced_ids.is_empty() {
            let ids = flushed.silenced_ids.clone();
            // The notifications are committed; a window left behind only ends at its time.
            match self.write(move |conn| super::groups::release_windows(conn, &ids, now_ms())).await {
                Ok(released) => {
                    flushed.revived = released.revived;
                    flushed.silenced.extend(released.silenced);
                }
                Err(err) => log::warn!("letting go of the suppression windows of {} silenced deliveries failed: {err}", flushed.silenced_ids.len()),
            }
        }
        Ok(flushed)
    }

    /// What a channel's actor fetches: up to `limit` due deliveries of the channel, oldest
    /// first, leaving out those it `holds`, and when the next falls due (`deliveries::Fetched`).
    /// Shared, they are leased to this instance (a write, which also takes over what instances
    /// without a heartbeat held); single, read.
    pub async fn fetch_due(&self, channel_id: String, limit: i64, holds: HashSet<String>, serial: bool) -> Result<Fetched, StoreError> {
        match &self.mode {
            Mode::Single { .. } => self.read(move |conn| deliveries::fetch_due(conn, &channel_id, now_ms(), limit, &holds, serial)).await,
            Mode::Shared { holder } => {
                let lease = holder.lease();
                self.write(move |conn| postgres::fetch_leased(conn, &channel_id, &lease, now_ms(), limit, &holds, serial)).await
            }
        }
    }

    /// Claims the next request slot of a channel allowed one request per `interval`: the later
    /// of the channel's next free start and now, the next free start moving one `interval` past
    /// it. Answers how long to wait for the slot. Single, the pace is kept in this process;
    /// shared, in the database by its clock, so all instances together keep the limit.
    pub async fn claim_send_slot(&self, channel_id: String, interval: Duration) -> Result<Duration, StoreError> {
        match &self.mode {
            Mode::Single { pace, .. } => Ok(pace.claim(&channel_id, interval)),
            Mode::Shared { .. } => {
                let interval_us = interval.as_micros() as i64;
                let wait_us = self.write(move |conn| postgres::claim_send_slot(postgres::connection(conn), &channel_id, interval_us)).await?;
                Ok(Duration::from_micros(wait_us.max(0) as u64))
            }
        }
    }

    /// Shared: every [`TENDING_CHECK`], does for the busy tables what autovacuum would if it does
    /// not run: analyzes those whose planner statistics have gone stale and, with autovacuum off,
    /// vacuums those full of dead rows (`postgres::tend_tables`); runs for as long as the process
    /// does. Single: returns at once (SQLite's planner does not cache plans by table statistics,
    /// and it reuses freed pages).
    pub async fn tend_tables(self) {
        if matches!(self.mode, Mode::Single { .. }) {
            return;
        }
        let mut ticks = actix_web::rt::time::interval(TENDING_CHECK);
        loop {
            ticks.tick().await;
            // Outside a transaction: VACUUM cannot run in one.
            match self.read(|conn| postgres::tend_tables(postgres::connection(conn))).await {
                Ok(tended) => {
                    if !tended.vacuumed.is_empty() {
                        log::info!("tables: vacuumed {} (autovacuum is off and they were full of dead rows)", tended.vacuumed.join(", "));
                    }
                    if !tended.analyzed.is_empty() {
                        log::info!("tables: analyzed {} (their statistics were stale)", tended.analyzed.join(", "));
                    }
                }
                Err(err) => log::warn!("tables: tending the busy tables failed (trying again in {}s): {err}", TENDING_CHECK.as_secs()),
            }
        }
    }

    /// How many attempt-recording writes one channel may run at once (see `record_writes` here).
    pub fn record_writes(&self) -> usize {
        record_writes(matches!(self.mode, Mode::Shared { .. }), self.pool.max_size())
    }

    /// How often to look for changes to channels and rules made through other instances, so a
    /// change is in force everywhere within a second; `None` when nobody else writes.
    pub fn routing_watch(&self) -> Option<Duration> {
        matches!(self.mode, Mode::Shared { .. }).then_some(ROUTING_WATCH)
    }

    /// How often every channel should look for due deliveries no timer of this process knows
    /// of (retries other instances scheduled, leases that ran out); `None` when nobody else
    /// writes, so this process's own timers know of everything.
    pub fn due_sweep(&self) -> Option<Duration> {
        matches!(self.mode, Mode::Shared { .. }).then_some(DUE_SWEEP)
    }

    /// Lets go of what this instance holds, once its attempts are recorded at a stop, so the
    /// other instances take its pending deliveries and Office 365 blobs at their next sweep
    /// instead of once its heartbeat runs out. Answers how many deliveries it let go (none when
    /// single: nothing is leased).
    pub async fn let_go(&self) -> Result<usize, StoreError> {
        match &self.mode {
            Mode::Single { .. } => Ok(0),
            Mode::Shared { holder } => {
                let owner = holder.id.clone();
                self.write(move |conn| super::instances::release(conn, &owner)).await
            }
        }
    }

    /// Gives back the Office 365 content claims of fetches this router no longer runs (cut off
    /// by its last stop or crash): those of `holder` when shared (the other instances' fetches
    /// are theirs), every claim when single (all were this process's). Answers how many.
    pub async fn release_fetch_claims(&self, holder: String) -> Result<usize, StoreError> {
        let holder = matches!(self.mode, Mode::Shared { .. }).then_some(holder);
        self.write(move |conn| super::o365::release_claims(conn, holder.as_deref())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_records_one_write_at_a_time_on_postgresql() {
        // PostgreSQL: one write, whatever the pool.
        assert_eq!(record_writes(true, 1), 1);
        assert_eq!(record_writes(true, 8), 1);
        assert_eq!(record_writes(true, 64), 1);
        // SQLite: the single writer groups them; the pool only serves reads.
        assert_eq!(record_writes(false, 1), MAX_WRITES);
    }

    #[test]
    fn one_process_paces_a_channel_as_the_database_would() {
        let pace = LocalPace::default();
        let interval = Duration::from_millis(250);
        // The first slot is now; each next one an interval after the one before.
        assert_eq!(pace.claim("ch_1", interval), Duration::ZERO);
        let second = pace.claim("ch_1", interval);
        assert!(second > Duration::from_millis(240) && second <= interval, "{second:?}");
        let third = pace.claim("ch_1", interval);
        assert!(third > Duration::from_millis(490) && third <= interval * 2, "{third:?}");
        // Another channel has a pace of its own.
        assert_eq!(pace.claim("ch_2", interval), Duration::ZERO);
    }
}
