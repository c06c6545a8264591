//! The DeliveryActor's recording: finished attempts, a changed health and a decision to disable
//! the channel are written together, through [`crate::dispatch::record`].
//!
//! Invariants:
//! - Attempts are recorded in groups: while writes are running (up to `max_writes` at once,
//!   `Store::record_writes`), finished attempts gather and go in the next transaction. A delivery
//!   leaves the queue's holds only once its attempt is committed; a write that fails is retried
//!   with backoff (the delivery is not sent again meanwhile), and no other write of the channel
//!   starts until it is: the database is failing, and what finishes meanwhile joins the retry.
//! - A changed health is stored in the transaction that records the attempts behind it, one such
//!   write at a time, so they land in order, and the actor of a restarted router starts from it.
//! - A channel to be disabled is disabled by the next write, with the attempts that decided it;
//!   then the RuleMatcher hears of it ([`ChannelDisabled`]), tells people through the rules and
//!   retires this actor.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::timers::Timer;
use super::DeliveryActor;
use crate::actors::messages::ChannelDisabled;
use crate::dispatch::{self, Write};
use crate::store::attempts::AttemptRecord;

/// First and longest delay between retries of a failed write.
const WRITE_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));

/// What waits to be written, and the writes under way.
#[derive(Default)]
pub struct Recording {
    /// Attempt-recording writes under way (at most `policy.max_writes`).
    writing: usize,
    unrecorded: Vec<AttemptRecord>,
    /// Delay before retrying a failed write; zero while writes succeed.
    backoff: Duration,
    /// The health changed since it was last handed to a write.
    health_dirty: bool,
    /// A write carrying the health is under way.
    health_saving: bool,
    /// The channel is to be disabled, for this reason, by the next write.
    disable: Option<String>,
}

impl Recording {
    /// An attempt finished; it goes with the next write.
    pub fn add(&mut self, record: AttemptRecord) {
        self.unrecorded.push(record);
    }

    /// Finished attempts not yet handed to a write.
    pub fn waiting(&self) -> usize {
        self.unrecorded.len()
    }

    /// The health changed; it goes with the next write.
    pub fn health_changed(&mut self) {
        self.health_dirty = true;
    }

    /// The next write disables the channel, for `reason`.
    pub fn disable(&mut self, reason: String) {
        self.disable = Some(reason);
    }

    /// Nothing is being written or waits to be.
    pub fn is_idle(&self) -> bool {
        self.writing == 0 && self.unrecorded.is_empty() && !self.health_dirty && self.disable.is_none()
    }
}

impl DeliveryActor {
    /// Writes the finished attempts (with the health and a decision to disable, if any), unless
    /// `policy.max_writes` writes are running or a failed one waits to be tried again (then they
    /// go next).
    pub(super) fn record(&mut self, ctx: &mut Context<Self>) {
        let rec = &mut self.recording;
        let health_due = rec.health_dirty && !rec.health_saving;
        if rec.writing >= self.policy.max_writes || self.timers.is_set(Timer::WriteRetry) {
            return;
        }
        if rec.unrecorded.is_empty() && !health_due && rec.disable.is_none() {
            return;
        }
        rec.writing += 1;
        // The health goes with these attempts, unless a write carrying it is still under way
        // (then with a later one, so the stored health never goes back in time).
        if health_due {
            rec.health_dirty = false;
            rec.health_saving = true;
        }
        let write = Write {
            records: std::mem::take(&mut rec.unrecorded),
            health: health_due.then(|| self.pacing.health.clone()),
            disable: rec.disable.take(),
        };
        let (store, retry, channel_id) = (self.store.clone(), Arc::clone(&self.policy.retry), self.target.channel_id.clone());
        let written = async move {
            let result = dispatch::record(&store, &channel_id, &write, retry).await;
            (write, result)
        };
        ctx.spawn(written.into_actor(self).map(move |(write, result), act, ctx| {
            act.recording.writing -= 1;
            if write.health.is_some() {
                act.recording.health_saving = false;
            }
            match result {
                Ok(written) => act.written(write, written),
                Err(err) => {
                    // Keep the outcomes (and the deliveries held, so they are not sent again) and
                    // write them later; the database may be full, locked or failing.
                    let rec = &mut act.recording;
                    rec.backoff = (rec.backoff * 2).clamp(WRITE_BACKOFF.0, WRITE_BACKOFF.1);
                    log::error!(
                        "recording {} attempt(s) for channel {} failed, retrying in {:?}: {err}",
                        write.records.len(),
                        act.target.channel_id,
                        rec.backoff
                    );
                    rec.unrecorded.splice(0..0, write.records);
                    rec.health_dirty |= write.health.is_some();
                    if write.disable.is_some() {
                        rec.disable = write.disable;
                    }
                    let backoff = rec.backoff;
                    act.timers.set(Timer::WriteRetry, backoff, ctx, Self::pump);
                    return;
                }
            }
            act.pump(ctx);
        }));
    }

    /// A write committed: what it decided takes effect, and its deliveries are no longer held.
    fn written(&mut self, write: Write, written: dispatch::Written) {
        self.recording.backoff = Duration::ZERO;
        match (written.disabled, write.disable) {
            (Some(channel_name), Some(reason)) => {
                self.matcher.do_send(ChannelDisabled { channel_id: self.target.channel_id.clone(), channel_name, reason });
            }
            // Someone disabled (or deleted) it first; if it was enabled again meanwhile, this
            // actor serves it as before (a reload retires it otherwise).
            (None, Some(_)) => self.phase.resume(),
            _ => {}
        }
        dispatch::count(&mut self.metrics, &write.records, &written.recorded);
        for record in &write.records {
            self.queue.release(&record.delivery_id);
        }
        if let Some(at) = written.recorded.iter().filter_map(|r| r.next_attempt_at).min() {
            self.schedule_wake(at);
        }
        if self.target.kind.keeps_incidents() {
            // The next delivery of an incident may be due now that this one is done.
            self.queue.look_again();
        }
    }
}
