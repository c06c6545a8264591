//! Retention (SPEC section 15): a task that purges, every [`Retention::every`], what is older
//! than `RETENTION` (succeeded and cancelled deliveries with their attempts, events no delivery
//! uses) and `FAILED_RETENTION` (failed deliveries), and what the Office 365 source keeps
//! (hourly arrival counts after `RETENTION`; blobs fetched or expired, and actions remembered
//! for folding, once older than both `RETENTION` and eight days), and incidents not written to
//! for longer than both `RETENTION` and the longest reopen window (30 days). It deletes in batches of
//! [`BATCH`] rows, one short transaction each, so ingestion and recording never wait long behind
//! it; on SQLite, after each batch it waits as long as the batch took ([`pause_after`]): a purge
//! takes at most half of the single writer's time for its first five intervals, and all it needs
//! after, so what it leaves behind stays bounded. The first purge runs at start. Every instance
//! sharing a database purges; deleting what another already deleted is a no-op. The queries are
//! `store::retention`'s.

use std::time::Duration;

use crate::domain::time::now_ms;
use crate::store::retention::{self, Purged};
use crate::store::Store;

/// Rows deleted per transaction.
pub const BATCH: i64 = 500;

/// How long Office 365 content records and folded actions are kept at least: longer than the API
/// lists content (seven days), so a listing never offers a blob the router has forgotten it
/// fetched, and a late record of an action still folds into its event.
const CONTENTS_KEPT: Duration = Duration::from_secs(8 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `RETENTION`: succeeded and cancelled deliveries, unused events.
    pub keep: Duration,
    /// `FAILED_RETENTION`: failed deliveries.
    pub keep_failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self { keep: Duration::from_secs(30 * 24 * 3600), keep_failed: Duration::from_secs(90 * 24 * 3600) }
    }
}

impl Retention {
    /// How often a purge runs: half the shorter retention, between 1 s and a minute.
    pub fn every(&self) -> Duration {
        (self.keep.min(self.keep_failed) / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// Purges for ever: at once (a router that was down, or restarts often, does not leave what came
/// due waiting for an interval), then [`Retention::every`] after each purge ends.
pub async fn run(store: Store, retention: Retention, purged: impl Fn(Purged)) {
    loop {
        let started = std::time::Instant::now();
        match purge(&store, retention).await {
            Ok(total) => {
                if total != Purged::default() {
                    log::info!(
                        "retention: purged {} deliveries, {} attempts and {} events in {:.1} s",
                        total.deliveries,
                        total.attempts,
                        total.events,
                        started.elapsed().as_secs_f64()
                    );
                }
                purged(total);
            }
            Err(err) => log::warn!("retention: purging failed (it tries again in {}): {err}", humantime::format_duration(retention.every())),
        }
        actix_web::rt::time::sleep(retention.every()).await;
    }
}

/// Longest wait after one batch.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// How many of its intervals a purge may take at half speed.
const PACED_INTERVALS: u32 = 5;

/// How long a purge waits after a batch that took `took` (from asking for the writer to the
/// commit), the purge having run for `running`, one every `interval`: as long as the batch took
/// (at most [`MAX_PAUSE`]), so what ingestion and recording write gets the writer at least half
/// the time. At half speed a purge keeps within its interval while less than half of what it can
/// delete comes due; one that has more (the first after a restart or a shortened `RETENTION`, a
/// load that outruns half its speed) gets [`PACED_INTERVALS`] intervals, then takes all it needs,
/// so what it leaves behind stays bounded.
pub fn pause_after(took: Duration, running: Duration, interval: Duration) -> Duration {
    if running >= interval * PACED_INTERVALS {
        Duration::ZERO
    } else {
        took.min(MAX_PAUSE)
    }
}

/// One batch of a purge begun at `started`, then, on SQLite, the pause it earns ([`pause_after`]).
async fn batch<T, F>(store: &Store, started: std::time::Instant, interval: Duration, f: F) -> Result<T, crate::store::StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::store::Conn) -> Result<T, crate::store::StoreError> + Send + 'static,
{
    let asked = std::time::Instant::now();
    let done = store.write(f).await?;
    // PostgreSQL writes on many connections at once: a purge there takes no one's turn.
    let single_writer = matches!(store.database(), crate::store::Database::Sqlite(_));
    let pause = pause_after(asked.elapsed(), started.elapsed(), interval);
    if single_writer && !pause.is_zero() {
        actix_web::rt::time::sleep(pause).await;
    }
    Ok(done)
}

/// One purge: batch after batch until what is due is gone.
pub async fn purge(store: &Store, retention: Retention) -> Result<Purged, crate::store::StoreError> {
    let started = std::time::Instant::now();
    let interval = retention.every();
    let now = now_ms();
    let cutoff = |keep: Duration| now.saturating_sub(keep.as_millis() as i64);
    let mut total = Purged::default();
    use crate::domain::delivery::DeliveryStatus::{Cancelled, Failed, Silenced, Succeeded, Suppressed};
    // `grouped` deliveries go with their notification, by its status (`purge_deliveries`).
    const KEPT_FOR_RETENTION: [&str; 4] = [Succeeded.as_str(), Cancelled.as_str(), Suppressed.as_str(), Silenced.as_str()];
    const KEPT_FOR_FAILED_RETENTION: [&str; 1] = [Failed.as_str()];
    for (statuses, keep) in [(&KEPT_FOR_RETENTION[..], retention.keep), (&KEPT_FOR_FAILED_RETENTION[..], retention.keep_failed)] {
        let cut = cutoff(keep);
        for &status in statuses {
            // Batch after batch, each going on after the last delivery the one before read.
            let mut after = String::new();
            loop {
                let from = std::mem::take(&mut after);
                let (purged, next) = batch(store, started, interval, move |conn| retention::purge_deliveries(conn, status, cut, &from, BATCH)).await?;
                total += purged;
                match next {
                    Some(id) => after = id,
                    None => break,
                }
            }
        }
    }
    let cut = cutoff(retention.keep);
    let mut from = i64::MIN;
    loop {
        let (events, next) = batch(store, started, interval, move |conn| retention::purge_unused_events(conn, from, cut, BATCH)).await?;
        total.events += events;
        match next {
            Some(at) => from = at,
            None => break,
        }
    }
    loop {
        // Suppression windows ended long ago (a repeat after its window opens a new one).
        let cut = cutoff(retention.keep);
        let purged = batch(store, started, interval, move |conn| retention::purge_suppression_windows(conn, cut, BATCH)).await?;
        if (purged as i64) < BATCH {
            break;
        }
    }
    // Incidents (SPEC section 17) quiet for longer than RETENTION and the longest reopen window:
    // older than both, whatever their channel's window. Few rows (one per ticket): one statement.
    let cut = cutoff(retention.keep.max(crate::channels::settings::MAX_REOPEN_WINDOW));
    batch(store, started, interval, move |conn| crate::store::incidents::purge_quiet_since(conn, cut)).await?;
    loop {
        let (cut, kept_cut) = (cutoff(retention.keep), cutoff(retention.keep.max(CONTENTS_KEPT)));
        let purged = batch(store, started, interval, move |conn| retention::purge_o365(conn, cut, kept_cut, BATCH)).await?;
        if (purged as i64) < BATCH {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_waits_as_long_as_each_batch_took_for_five_intervals() {
        let minute = Duration::from_secs(60);
        let ms = Duration::from_millis;
        // Half the writer's time: the pause is the batch's own time.
        assert_eq!(pause_after(ms(14), ms(0), minute), ms(14));
        assert_eq!(pause_after(ms(250), Duration::from_secs(299), minute), ms(250));
        // A batch that waited long for a busy writer earns a long pause, but never over a second.
        assert_eq!(pause_after(Duration::from_secs(5), Duration::from_secs(10), minute), MAX_PAUSE);
        // Five intervals on, the purge takes all it needs: no pause at all.
        assert_eq!(pause_after(ms(14), 5 * minute, minute), Duration::ZERO);
        assert_eq!(pause_after(ms(14), Duration::from_secs(3600), minute), Duration::ZERO);
        assert_eq!(pause_after(ms(14), Duration::from_secs(5), Duration::from_secs(1)), Duration::ZERO);
    }
}
