//! The DeliveryActor's queue and claims: what it holds in memory, and how it refills from the
//! database.
//!
//! Invariants:
//! - At most `queue_capacity` envelopes wait in memory. What does not fit is not lost: every
//!   delivery is in the database with its `next_attempt_at`, and the actor fetches what is due
//!   when its queue runs low (`spilled`).
//! - `held` names every delivery the actor has in memory (queued, in flight, or waiting for its
//!   attempt to be recorded), so a delivery fetched twice is attempted once. Every actor of the
//!   process also enters what it holds in the shared [`Claims`], and skips what another holds: a
//!   channel re-enabled while its retiring actor still sends a delivery gets a successor that
//!   leaves that delivery alone until its attempt is recorded.
//! - A fetch reads a snapshot; a delivery whose attempt was recorded while the fetch ran may
//!   appear in it as still due, so such deliveries (`recorded_during_fetch`) are skipped.
//! - A batching type's request carries up to `batch_size` queued deliveries; fewer are sent
//!   only once the oldest queued one has waited `batch_wait`. What a request could not carry
//!   goes back to the front of the queue; a batch refused as too large is split in two halves,
//!   sent next, as they are.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::web::Bytes;

use super::timers::Timer;
use super::DeliveryActor;
use crate::actors::messages::Envelope;
use crate::channels::Batching;
use crate::domain::attempt::Trigger;
use crate::store::deliveries;

/// The deliveries every channel actor of this process holds in memory (queued, in flight or
/// being recorded). All channel actors run on the RuleMatcher's arbiter, one thread, so a plain
/// `Rc<RefCell<…>>` is enough.
#[derive(Default, Clone)]
pub struct Claims(Rc<RefCell<HashSet<String>>>);

/// What one actor holds, entered in the shared [`Claims`] too.
struct Held {
    mine: HashSet<String>,
    claims: Claims,
}

impl Held {
    /// Takes the delivery unless this or another actor already holds it.
    fn take(&mut self, delivery_id: &str) -> bool {
        if !self.claims.0.borrow_mut().insert(delivery_id.to_string()) {
            return false;
        }
        self.mine.insert(delivery_id.to_string());
        true
    }

    fn release(&mut self, delivery_id: &str) {
        if self.mine.remove(delivery_id) {
            self.claims.0.borrow_mut().remove(delivery_id);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut claims = self.claims.0.borrow_mut();
        for id in &self.mine {
            claims.remove(id);
        }
    }
}

/// The envelopes waiting to be sent, and what the actor holds.
pub struct Queue {
    waiting: VecDeque<Envelope>,
    /// Batches split after a `413`, sent before anything else, as they are.
    split: VecDeque<Vec<Envelope>>,
    /// Since when the queue has been filling up to a batch (batching types).
    filling_since: Option<Instant>,
    held: Held,
    capacity: usize,
    /// Due deliveries may be waiting in the database that are not in memory.
    spilled: bool,
    fetching: bool,
    recorded_during_fetch: HashSet<String>,
}

impl Queue {
    /// An empty queue that looks in the database first (deliveries due from before a restart).
    pub fn new(capacity: usize, claims: Claims) -> Self {
        Queue {
            waiting: VecDeque::new(),
            split: VecDeque::new(),
            filling_since: None,
            held: Held { mine: HashSet::new(), claims },
            capacity,
            spilled: true,
            fetching: false,
            recorded_during_fetch: HashSet::new(),
        }
    }

    /// Queues a freshly committed delivery, unless it is held already; one that does not fit
    /// is left in the database for a later fetch.
    pub fn offer(&mut self, envelope: Envelope) {
        if self.waiting.len() >= self.capacity {
            self.spilled = true;
        } else if self.held.take(&envelope.delivery_id) {
            self.waiting.push_back(envelope);
        }
    }

    /// Something may be due in the database: look at the next chance.
    pub fn look_again(&mut self) {
        self.spilled = true;
    }

    /// Nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.split.is_empty()
    }

    /// The next request's deliveries: a split half first, else up to `size` from the front.
    pub fn next_batch(&mut self, size: usize) -> Vec<Envelope> {
        if let Some(batch) = self.split.pop_front() {
            return batch;
        }
        self.filling_since = None;
        let take = size.clamp(1, self.waiting.len());
        self.waiting.drain(..take).collect()
    }

    /// Deliveries a request could not carry go back to the front, in their order.
    pub fn put_back(&mut self, envelopes: Vec<Envelope>) {
        for envelope in envelopes.into_iter().rev() {
            self.waiting.push_front(envelope);
        }
    }

    /// A batch refused as too large goes again as two halves, first in line.
    pub fn split_in_two(&mut self, mut batch: Vec<Envelope>) {
        let half = batch.split_off(batch.len() / 2);
        self.split.push_front(half);
        self.split.push_front(batch);
    }

    /// The delivery's attempt is recorded (or it is left pending): it is no longer held.
    pub fn release(&mut self, delivery_id: &str) {
        self.held.release(delivery_id);
        if self.fetching {
            self.recorded_during_fetch.insert(delivery_id.to_string());
        }
    }

    /// Retiring: everything queued is left pending in the database, for whoever serves the
    /// channel next.
    pub fn release_queued(&mut self) {
        let queued: Vec<Envelope> = self.waiting.drain(..).chain(self.split.drain(..).flatten()).collect();
        for envelope in queued {
            self.held.release(&envelope.delivery_id);
        }
    }

    /// The queue has run empty: no batch is filling.
    pub fn settle(&mut self) {
        if self.waiting.is_empty() {
            self.filling_since = None;
        }
    }

    /// Whether a request's worth is queued, or the oldest queued delivery has waited `wait`
    /// (always, for types that send one delivery per request, and for split halves); if not,
    /// when it will have.
    pub fn batch_ready(&mut self, batching: Batching) -> Result<(), Instant> {
        if !self.split.is_empty() || batching.size <= 1 || self.waiting.len() >= batching.size || batching.wait.is_zero() {
            return Ok(());
        }
        let now = Instant::now();
        let ready_at = *self.filling_since.get_or_insert(now) + batching.wait;
        if now >= ready_at {
            Ok(())
        } else {
            Err(ready_at)
        }
    }

    /// Whether to fetch due deliveries now: some may wait in the database, and the queue is
    /// below half full.
    pub fn wants_fetch(&self) -> bool {
        self.spilled && !self.fetching && self.waiting.len() < self.capacity / 2
    }

    /// Starts a fetch: how many rows to ask for (room in the queue, plus what is held and so
    /// left out), and the ids held.
    fn start_fetch(&mut self) -> (i64, HashSet<String>) {
        self.fetching = true;
        self.spilled = false;
        let room = self.capacity - self.waiting.len();
        ((room + self.held.mine.len()) as i64, self.held.mine.clone())
    }

    /// Queues what a fetch found due (`None`: it failed), leaving out what is held or was
    /// recorded meanwhile.
    fn fetched(&mut self, found: Option<deliveries::Fetched>) {
        self.fetching = false;
        let stale = std::mem::take(&mut self.recorded_during_fetch);
        let Some(deliveries::Fetched { due, more, .. }) = found else {
            self.spilled = true;
            return;
        };
        self.spilled |= more;
        for row in due {
            if self.waiting.len() >= self.capacity {
                self.spilled = true;
                break;
            }
            if !stale.contains(&row.id) && self.held.take(&row.id) {
                self.waiting.push_back(Envelope {
                    delivery_id: row.id,
                    event_id: row.event_id,
                    payload: Bytes::from(row.payload),
                    trigger: if row.manual { Trigger::Manual } else { Trigger::Scheduled },
                });
            }
        }
    }
}

impl DeliveryActor {
    /// Whether the next request's worth is ready to go; if not, a timer pumps again when it is.
    pub(super) fn batch_ready(&mut self, ctx: &mut Context<Self>) -> bool {
        match self.queue.batch_ready(self.target.batching) {
            Ok(()) => true,
            Err(at) => {
                self.timers.set(Timer::Batch, at.saturating_duration_since(Instant::now()), ctx, Self::pump);
                false
            }
        }
    }

    /// Reads (one instance) or leases (several) the deliveries due now that are not in memory.
    pub(super) fn fetch_due(&mut self, ctx: &mut Context<Self>) {
        let (limit, holds) = self.queue.start_fetch();
        let store = self.store.clone();
        let channel_id = self.target.channel_id.clone();
        // The store reads what is due (one instance) or leases it (several).
        let serial = self.target.kind.keeps_incidents();
        let fetch = async move { store.fetch_due(channel_id, limit, holds, serial).await };
        ctx.spawn(fetch.into_actor(self).map(move |result, act, ctx| match result {
            Ok(fetched) => {
                let next = fetched.next;
                act.queue.fetched(Some(fetched));
                if let Some(at) = next {
                    act.schedule_wake(at);
                }
                act.pump(ctx);
            }
            Err(err) => {
                log::error!("fetching due deliveries for channel {}: {err}", act.target.channel_id);
                act.queue.fetched(None);
                if act.phase.is_retiring() {
                    // Nothing more is fetched: the actor only waits for what is in flight.
                    act.pump(ctx);
                } else {
                    act.timers.set(Timer::FetchRetry, Duration::from_secs(1), ctx, Self::pump);
                }
            }
        }));
    }
}
