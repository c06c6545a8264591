//! Retention (SPEC section 15): a task that purges, every [`Retention::every`], what is older
//! than `RETENTION` (succeeded and cancelled deliveries with their attempts, events no delivery
//! uses) and `FAILED_RETENTION` (failed deliveries), and what the Office 365 source keeps
//! (hourly arrival counts after `RETENTION`; blobs fetched or expired, and actions remembered
//! for folding, once older than both `RETENTION` and eight days), and incidents not written to
//! for longer than both `RETENTION` and the longest reopen window (30 days). It deletes in batches of
//! [`BATCH`] rows, one short transaction each, so ingestion and recording never wait long behind
//! it. Every instance sharing a database purges; deleting what another already deleted is a
//! no-op. The queries are `store::retention`'s.

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

/// Purges for ever, every [`Retention::every`].
pub async fn run(store: Store, retention: Retention, purged: impl Fn(Purged)) {
    loop {
        actix_web::rt::time::sleep(retention.every()).await;
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
    }
}

/// One purge: batch after batch until what is due is gone.
pub async fn purge(store: &Store, retention: Retention) -> Result<Purged, crate::store::StoreError> {
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
                let (batch, next) = store.write(move |conn| retention::purge_deliveries(conn, status, cut, &from, BATCH)).await?;
                total += batch;
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
        let (events, next) = store.write(move |conn| retention::purge_unused_events(conn, from, cut, BATCH)).await?;
        total.events += events;
        match next {
            Some(at) => from = at,
            None => break,
        }
    }
    loop {
        // Suppression windows ended long ago (a repeat after its window opens a new one).
        let cut = cutoff(retention.keep);
        let purged = store.write(move |conn| retention::purge_suppression_windows(conn, cut, BATCH)).await?;
        if (purged as i64) < BATCH {
            break;
        }
    }
    // Incidents (SPEC section 17) quiet for longer than RETENTION and the longest reopen window:
    // older than both, whatever their channel's window. Few rows (one per ticket): one statement.
    let cut = cutoff(retention.keep.max(crate::channels::settings::MAX_REOPEN_WINDOW));
    store.write(move |conn| crate::store::incidents::purge_quiet_since(conn, cut)).await?;
    loop {
        let (cut, kept_cut) = (cutoff(retention.keep), cutoff(retention.keep.max(CONTENTS_KEPT)));
        let purged = store.write(move |conn| retention::purge_o365(conn, cut, kept_cut, BATCH)).await?;
        if (purged as i64) < BATCH {
            break;
        }
    }
    Ok(total)
}
