//! DeliveryActor: one per enabled channel, with its own mailbox, so a slow or dead endpoint
//! never delays another channel.
//!
//! Invariants:
//! - At most `max_in_flight` requests are open at once, and at most `queue_capacity` envelopes
//!   wait in memory. What does not fit is not lost: every delivery is in the database with its
//!   `next_attempt_at`, and the actor fetches what is due when its queue runs low (`spilled`).
//! - `held` names every delivery the actor has in memory (queued, in flight, or waiting for its
//!   attempt to be recorded), so a delivery fetched twice is attempted once. Every actor of the
//!   process also enters what it holds in the shared [`Claims`], and skips what another holds: a
//!   channel re-enabled while its retiring actor still sends a delivery gets a successor that
//!   leaves that delivery alone until its attempt is recorded.
//! - A fetch reads a snapshot; a delivery whose attempt was recorded while the fetch ran may
//!   appear in it as still due, so such deliveries (`recorded_during_fetch`) are skipped.
//! - Attempts are recorded in groups: while writes are running (up to `max_writes` at once,
//!   `Store::record_writes`), finished attempts gather and go in the next transaction. A delivery
//!   leaves `held` only once its attempt is committed; a write that fails is retried with
//!   backoff (the delivery is not sent again meanwhile).
//! - Retiring (channel disabled or deleted) stops new attempts at once but lets the ones in
//!   flight finish and be recorded before the actor stops.
//! - A channel whose receiver is gone (its type's verdict: `410 Gone`, Slack's `404`), or that fails without a success for `DISABLE_AFTER`, is
//!   disabled by its actor: it stops sending, and the next write records the attempts and
//!   disables the channel in one transaction; then the RuleMatcher hears of it
//!   ([`ChannelDisabled`]), tells people through the rules and retires this actor. Pending
//!   deliveries stay pending until the channel is enabled again.
//! - A channel's `rate_limit_per_second` spaces the starts of its requests evenly (no burst): the
//!   actor claims each request's slot from the channel's pace, which the store keeps
//!   (`Store::claim_send_slot`: shared by all instances when several share the database, so
//!   together they keep the limit). A slot not used before the next one begins is given up,
//!   never used late.
//! - A batching type's request carries up to `batch_size` queued deliveries; fewer are sent
//!   only once the oldest queued one has waited `batch_wait`. What a request could not carry
//!   (its body limit) goes back to the front of the queue; a request refused as too large is
//!   split in two halves sent next, and nothing is recorded for it.
//! - On start the actor fetches whatever is due, which is how deliveries resume after a restart.
//! - The channel's circuit breaker ([`Health`]) lives here: every finished attempt updates it;
//!   while it is open nothing is sent (queued and due deliveries wait, using up no retries) and a
//!   timer pumps again when the cooldown ends; half-open, one probe goes, alone. A changed health
//!   is stored in the transaction that records the attempts behind it (one such write at a
//!   time, so they land in order), and the actor of a restarted router starts from it.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;

use super::messages::{ChannelDisabled, Deliver, Envelope, ManualAttempt, Reconfigure, Retire, ScheduleWake, Wake};
use super::retry_supervisor::RetrySupervisor;
use crate::channels::Item;
use crate::domain::attempt::{Consequence, Trigger};
use crate::domain::ids;
use crate::domain::breaker::{BreakerPolicy, Health, Permit};
use crate::domain::network::TargetPolicy;
use crate::domain::retry::RetryPolicy;
use crate::domain::time::now_ms;
use crate::instance::Instance;
use crate::channels::Target;
use crate::outbound::{Names, Outbound};
use crate::store::deliveries::{self, AttemptRecord, SharedRequest};
use crate::store::Store;

/// How a channel's actor delivers: shared by every channel.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub retry: Arc<RetryPolicy>,
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub queue_capacity: usize,
    pub targets: Arc<TargetPolicy>,
    pub names: Names,
    /// Who this instance is.
    pub instance: Instance,
    /// When a channel's circuit opens, and for how long.
    pub breaker: BreakerPolicy,
    /// Continuous failure after which the channel is disabled.
    pub disable_after: Duration,
    /// Where attempts and finished deliveries are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Attempt-recording writes a channel runs at once (`Store::record_writes`).
    pub max_writes: usize,
}

/// A request slot claimed from a channel's pace: usable from `at` until the next slot
/// may begin (`at` + the interval), and not after.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: std::time::Instant,
    until: std::time::Instant,
}

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

    fn len(&self) -> usize {
        self.mine.len()
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

pub struct DeliveryActor {
    target: Rc<Target>,
    outbound: Outbound,
    store: Store,
    policy: DeliveryPolicy,
    supervisor: Addr<RetrySupervisor>,
    queue: VecDeque<Envelope>,
    /// Batches split after a `413`, sent before anything else, as they are.
    split: VecDeque<Vec<Envelope>>,
    /// Since when the queue has been filling up to a batch (batching types).
    filling_since: Option<std::time::Instant>,
    /// Pumps again when the oldest queued delivery has waited `batch_wait`.
    batch_timer: Option<SpawnHandle>,
    held: Held,
    in_flight: usize,
    /// Due deliveries may be waiting in the database that are not in memory.
    spilled: bool,
    fetching: bool,
    recorded_during_fetch: HashSet<String>,
    /// Attempt-recording writes under way (at most `policy.max_writes`).
    writing: usize,
    unrecorded: Vec<AttemptRecord>,
    /// Delay before retrying a failed write; zero while writes succeed.
    write_backoff: Duration,
    retiring: bool,
    /// The channel's circuit breaker.
    health: Health,
    /// `health` changed since it was last handed to a write.
    health_dirty: bool,
    /// A write carrying `health` is under way.
    health_saving: bool,
    /// The half-open probe is in flight.
    probing: bool,
    /// Pumps again when the circuit's cooldown ends.
    cooldown_timer: Option<SpawnHandle>,
    /// Earliest start of the next request, by the channel's rate limit.
    next_send_at: Option<std::time::Instant>,
    /// Pumps again when the rate limit allows the next request.
    rate_timer: Option<SpawnHandle>,
    /// The slot claimed for the next request, and whether a claim is under way.
    slot: Option<Slot>,
    claiming: bool,
    /// Told when this actor disables its channel.
    matcher: Recipient<ChannelDisabled>,
    /// The channel is to be disabled, for this reason, by the next write.
    disable: Option<String>,
    /// The actor gave up on its channel: nothing more is sent.
    gave_up: bool,
    /// This channel's series, counted once attempts are committed.
    metrics: crate::metrics::ChannelMetrics,
}

/// First and longest delay between retries of a failed write.
const WRITE_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));

impl DeliveryActor {
    pub fn new(
        target: Target,
        store: Store,
        policy: DeliveryPolicy,
        supervisor: Addr<RetrySupervisor>,
        claims: Claims,
        health: Health,
        matcher: Recipient<ChannelDisabled>,
    ) -> Self {
        let outbound = Outbound::new(policy.timeout, policy.max_in_flight, Arc::clone(&policy.targets), policy.names.clone(), &policy.instance.id);
        let metrics = policy.metrics.channel(&target.channel_id);
        Self {
            metrics,
            target: Rc::new(target),
            outbound,
            store,
            policy,
            supervisor,
            queue: VecDeque::new(),
            split: VecDeque::new(),
            filling_since: None,
            batch_timer: None,
            held: Held { mine: HashSet::new(), claims },
            in_flight: 0,
            spilled: true,
            fetching: false,
            recorded_during_fetch: HashSet::new(),
            writing: 0,
            unrecorded: Vec::new(),
            write_backoff: Duration::ZERO,
            retiring: false,
            health,
            health_dirty: false,
            health_saving: false,
            probing: false,
            cooldown_timer: None,
            next_send_at: None,
            rate_timer: None,
            slot: None,
            claiming: false,
            matcher,
            disable: None,
            gave_up: false,
        }
    }

    /// Why the channel should be disabled after this attempt, if it should.
    fn reason_to_disable(&self, consequence: &Consequence, now: i64) -> Option<String> {
        if let Consequence::DisableChannel(reason) = consequence {
            return Some(reason.clone());
        }
        let since = self.health.failing_since?;
        (self.health.consecutive_failures > 0 && now - since >= self.policy.disable_after.as_millis() as i64).then(|| {
            format!(
                "failing without a success since {} (DISABLE_AFTER {})",
                crate::domain::time::rfc3339(since),
                humantime::format_duration(self.policy.disable_after)
            )
        })
    }

    /// Whether the channel's rate limit lets a request start now; if so, the next one is spaced
    /// one interval later (no bursts: time not used is not saved up). If not, a timer pumps
    /// again when it does.
    fn rate_allows(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(limit) = self.target.rate_limit else { return true };
        self.slot_allows(limit, ctx)
    }

    /// The channel's pace: whether the slot claimed for this request has come. Without a slot,
    /// one is claimed from the store and a timer pumps again when it comes; a slot whose time
    /// has passed (the next slot may have begun) is given up and another claimed.
    fn slot_allows(&mut self, limit: crate::domain::channel::RateLimit, ctx: &mut Context<Self>) -> bool {
        let now = std::time::Instant::now();
        match self.slot {
            Some(slot) if slot.at > now => {
                self.wake_at(slot.at, ctx);
                return false;
            }
            Some(slot) if now < slot.until => {
                self.slot = None;
                self.next_send_at = Some(now + limit.interval());
                return true;
            }
            _ => self.slot = None,
        }
        if self.claiming {
            return false;
        }
        self.claiming = true;
        let interval = limit.interval();
        let (store, channel_id) = (self.store.clone(), self.target.channel_id.clone());
        let claim = async move { store.claim_send_slot(channel_id, interval).await };
        ctx.spawn(claim.into_actor(self).map(move |claimed, act, ctx| {
            act.claiming = false;
            match claimed {
                Ok(wait) => {
                    // The slot as the store measured it, and never sooner than one interval
                    // after this actor's own last request: how long the answer took to come
                    // back varies, and must not bring two requests closer.
                    let claimed = std::time::Instant::now() + wait;
                    let at = act.next_send_at.map_or(claimed, |floor| claimed.max(floor));
                    act.slot = Some(Slot { at, until: claimed + interval });
                    act.pump(ctx);
                }
                Err(err) => {
                    log::warn!("channel {}: claiming a request slot of its rate limit failed, trying again in 1 s: {err}", act.target.channel_id);
                    ctx.run_later(Duration::from_secs(1), |act, ctx| act.pump(ctx));
                }
            }
        }));
        false
    }

    /// Pumps again at `at`, unless a timer for that is set already.
    fn wake_at(&mut self, at: std::time::Instant, ctx: &mut Context<Self>) {
        if self.rate_timer.is_none() {
            let wait = at.saturating_duration_since(std::time::Instant::now());
            self.rate_timer = Some(ctx.run_later(wait, |act, ctx| {
                act.rate_timer = None;
                act.pump(ctx);
            }));
        }
    }

    /// How many more attempts may start now, by the circuit breaker.
    fn permitted(&mut self, ctx: &mut Context<Self>) -> usize {
        let now = now_ms();
        match self.health.permit(now) {
            Permit::Send => self.policy.max_in_flight,
            // The probe goes alone, once what was in flight has finished.
            Permit::Probe if self.probing || self.in_flight > 0 => 0,
            Permit::Probe => 1,
            Permit::WaitUntil(until) => {
                if let Some(timer) = self.cooldown_timer.take() {
                    ctx.cancel_future(timer);
                }
                let wait = Duration::from_millis(until.saturating_sub(now).max(0) as u64);
                self.cooldown_timer = Some(ctx.run_later(wait, |act, ctx| {
                    act.cooldown_timer = None;
                    act.pump(ctx);
                }));
                0
            }
        }
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.retiring {
            self.stop_when_drained(ctx);
            return;
        }
        if self.gave_up {
            // Disabled (or about to be): the RuleMatcher retires this actor after the commit.
            return;
        }
        if self.queue.is_empty() {
            self.filling_since = None;
        }
        let waiting = !self.queue.is_empty() || !self.split.is_empty();
        let permitted = if waiting { self.permitted(ctx) } else { 0 };
        for _ in 0..permitted {
            if self.in_flight >= self.policy.max_in_flight || (self.queue.is_empty() && self.split.is_empty()) {
                break;
            }
            if self.split.is_empty() && !self.batch_ready(ctx) {
                break;
            }
            if !self.rate_allows(ctx) {
                break;
            }
            let batch = match self.split.pop_front() {
                Some(batch) => batch,
                None => {
                    self.filling_since = None;
                    let take = self.target.batching.size.clamp(1, self.queue.len());
                    self.queue.drain(..take).collect()
                }
            };
            if self.health.permit(now_ms()) == Permit::Probe {
                self.probing = true;
            }
            self.attempt(batch, ctx);
        }
        if self.spilled && !self.fetching && self.queue.len() < self.policy.queue_capacity / 2 {
            self.fetch_due(ctx);
        }
    }

    /// Whether a request's worth is queued, or the oldest queued delivery has waited
    /// `batch_wait` (always, for types that send one delivery per request). If not, a timer
    /// pumps again when it has.
    fn batch_ready(&mut self, ctx: &mut Context<Self>) -> bool {
        let batching = self.target.batching;
        if batching.size <= 1 || self.queue.len() >= batching.size || batching.wait.is_zero() {
            return true;
        }
        let now = std::time::Instant::now();
        let ready_at = *self.filling_since.get_or_insert(now) + batching.wait;
        if now >= ready_at {
            return true;
        }
        if self.batch_timer.is_none() {
            self.batch_timer = Some(ctx.run_later(ready_at - now, |act, ctx| {
                act.batch_timer = None;
                act.pump(ctx);
            }));
        }
        false
    }

    /// Sends one request carrying `batch` (one delivery, for most types). What the request could
    /// not carry goes back to the front of the queue; a batch refused as too large is split in
    /// two, both halves sent next, and nothing is recorded for it.
    fn attempt(&mut self, batch: Vec<Envelope>, ctx: &mut Context<Self>) {
        self.in_flight += 1;
        let outbound = self.outbound.clone();
        let target = Rc::clone(&self.target);
        let attempted = Rc::clone(&self.target);
        let exchange = async move {
            let items: Vec<Item<'_>> = batch.iter().map(|e| Item { msg_id: &e.event_id, payload: &e.payload }).collect();
            let sent = outbound.send_batch(&target, &items).await;
            (batch, sent)
        };
        ctx.spawn(exchange.into_actor(self).map(move |(mut batch, sent), act, ctx| {
            act.in_flight -= 1;
            act.probing = false;
            for envelope in batch.split_off(sent.carried.min(batch.len())).into_iter().rev() {
                act.queue.push_front(envelope);
            }
            let outcome = sent.outcome;
            if outcome.consequence == Consequence::TooLarge && batch.len() > 1 {
                if act.retiring {
                    // Left pending as they are, for whoever serves the channel next.
                    for envelope in &batch {
                        act.held.release(&envelope.delivery_id);
                    }
                    act.pump(ctx);
                    return;
                }
                let half = batch.split_off(batch.len() / 2);
                log::info!("channel {}: a request of {} deliveries was too large; sending it as two", act.target.channel_id, batch.len() + half.len());
                act.split.push_front(half);
                act.split.push_front(batch);
                act.pump(ctx);
                return;
            }
            let health = act.health.after(&act.policy.breaker, outcome.succeeded(), outcome.started_at, now_ms());
            if health != act.health {
                act.health = health;
                act.health_dirty = true;
            }
            // A receiver's "gone" only counts for the target it answered for: the URL may have
            // been changed while the attempt ran.
            let current = Rc::ptr_eq(&attempted, &act.target);
            if !act.gave_up && !outcome.succeeded() && (current || !matches!(outcome.consequence, Consequence::DisableChannel(_))) {
                if let Some(reason) = act.reason_to_disable(&outcome.consequence, now_ms()) {
                    log::warn!("disabling channel {}: {reason}", act.target.channel_id);
                    act.disable = Some(reason);
                    act.gave_up = true;
                }
            }
            let request = (batch.len() > 1).then(|| SharedRequest { id: Arc::from(ids::new_id(ids::REQUEST)), size: batch.len() });
            for envelope in batch {
                let record = AttemptRecord { delivery_id: envelope.delivery_id, trigger: envelope.trigger, outcome: outcome.clone(), request: request.clone() };
                act.unrecorded.push(record);
            }
            act.record(ctx);
            act.pump(ctx);
        }));
    }

    /// Writes the finished attempts, unless `policy.max_writes` writes are running (then they go next).
    fn record(&mut self, ctx: &mut Context<Self>) {
        let health_due = self.health_dirty && !self.health_saving;
        if self.writing >= self.policy.max_writes || (self.unrecorded.is_empty() && !health_due && self.disable.is_none()) {
            return;
        }
        let disable = self.disable.take();
        let disabling = disable.clone();
        self.writing += 1;
        let records = std::mem::take(&mut self.unrecorded);
        let kept = records.clone();
        let store = self.store.clone();
        let retry = Arc::clone(&self.policy.retry);
        // The health goes with these attempts, unless a write carrying it is still under way
        // (then with a later one, so the stored health never goes back in time).
        let health = health_due.then(|| self.health.clone());
        if health.is_some() {
            self.health_dirty = false;
            self.health_saving = true;
        }
        let carries_health = health.is_some();
        let channel_id = self.target.channel_id.clone();
        let write = async move {
            store
                .write(move |conn| {
                    let now = now_ms();
                    let recorded = deliveries::record(conn, &records, &retry, now)?;
                    if let Some(health) = &health {
                        crate::store::channels::save_health(conn, &channel_id, health, now)?;
                    }
                    let disabled = match &disable {
                        Some(reason) => crate::store::channels::disable_automatically(conn, &channel_id, reason, now)?,
                        None => None,
                    };
                    Ok((recorded, disabled))
                })
                .await
        };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok((recorded, disabled)) => {
                act.writing -= 1;
                act.write_backoff = Duration::ZERO;
                if carries_health {
                    act.health_saving = false;
                }
                match (disabled, disabling) {
                    (Some(channel_name), Some(reason)) => {
                        act.matcher.do_send(ChannelDisabled { channel_id: act.target.channel_id.clone(), channel_name, reason });
                    }
                    // Someone disabled (or deleted) it first; if it was enabled again meanwhile,
                    // this actor serves it as before (a reload retires it otherwise).
                    (None, Some(_)) => act.gave_up = false,
                    _ => {}
                }
                // Counted as stored: an attempt on a delivery gone meanwhile (purged) was not.
                for done in recorded.iter().filter(|r| r.changed) {
                    act.metrics.delivery(&done.status);
                }
                let stored: HashSet<&str> = recorded.iter().map(|r| r.delivery_id.as_str()).collect();
                for record in &kept {
                    if stored.contains(record.delivery_id.as_str()) {
                        act.metrics.attempt(&record.outcome);
                    }
                    act.held.release(&record.delivery_id);
                    if act.fetching {
                        act.recorded_during_fetch.insert(record.delivery_id.clone());
                    }
                }
                if let Some(at) = recorded.iter().filter_map(|r| r.next_attempt_at).min() {
                    act.schedule_wake(at);
                }
                act.record(ctx);
                act.pump(ctx);
            }
            Err(err) => {
                // Keep the outcomes (and the deliveries held, so they are not sent again) and
                // write them later; the database may be full, locked or failing.
                act.write_backoff = (act.write_backoff * 2).clamp(WRITE_BACKOFF.0, WRITE_BACKOFF.1);
                log::error!(
                    "recording {} attempt(s) for channel {} failed, retrying in {:?}: {err}",
                    kept.len(),
                    act.target.channel_id,
                    act.write_backoff
                );
                act.unrecorded.splice(0..0, kept);
                if carries_health {
                    act.health_saving = false;
                    act.health_dirty = true;
                }
                if disabling.is_some() {
                    act.disable = disabling;
                }
                ctx.run_later(act.write_backoff, |act, ctx| {
                    act.writing -= 1;
                    act.record(ctx);
                    act.pump(ctx);
                });
            }
        }));
    }

    fn fetch_due(&mut self, ctx: &mut Context<Self>) {
        self.fetching = true;
        self.spilled = false;
        let room = self.policy.queue_capacity - self.queue.len();
        let limit = (room + self.held.len()) as i64;
        let store = self.store.clone();
        let channel_id = self.target.channel_id.clone();
        // What is in memory already is left out (its payload is not read again).
        let holds = self.held.mine.clone();
        let fetch = async move { store.fetch_due(channel_id, limit, holds).await };
        ctx.spawn(fetch.into_actor(self).map(move |result, act, ctx| {
            act.fetching = false;
            let stale = std::mem::take(&mut act.recorded_during_fetch);
            match result {
                Ok(deliveries::Fetched { due, next, more }) => {
                    if more {
                        act.spilled = true;
                    }
                    for row in due {
                        if act.queue.len() >= act.policy.queue_capacity {
                            act.spilled = true;
                            break;
                        }
                        if !stale.contains(&row.id) && act.held.take(&row.id) {
                            act.queue.push_back(Envelope {
                                delivery_id: row.id,
                                event_id: row.event_id,
                                payload: Bytes::from(row.payload),
                                trigger: if row.manual { Trigger::Manual } else { Trigger::Scheduled },
                            });
                        }
                    }
                    if let Some(at) = next {
                        act.schedule_wake(at);
                    }
                    act.pump(ctx);
                }
                Err(err) => {
                    log::error!("fetching due deliveries for channel {}: {err}", act.target.channel_id);
                    act.spilled = true;
                    ctx.run_later(Duration::from_secs(1), |act, ctx| act.pump(ctx));
                }
            }
        }));
    }

    /// While retiring: stop once nothing is in flight or waiting to be recorded.
    fn stop_when_drained(&mut self, ctx: &mut Context<Self>) {
        if self.health_dirty && self.writing == 0 {
            // The last health change still has to be stored.
            self.record(ctx);
        }
        if self.in_flight == 0 && self.writing == 0 && self.unrecorded.is_empty() && !self.health_dirty {
            ctx.stop();
        }
    }

    fn schedule_wake(&self, at: i64) {
        self.supervisor.do_send(ScheduleWake { channel_id: self.target.channel_id.clone(), at });
    }
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pump(ctx);
    }
}

impl Handler<Deliver> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        if self.retiring {
            return;
        }
        for envelope in msg.0 {
            if self.queue.len() >= self.policy.queue_capacity {
                self.spilled = true;
                continue;
            }
            if self.held.take(&envelope.delivery_id) {
                self.queue.push_back(envelope);
            }
        }
        self.pump(ctx);
    }
}

impl Handler<Wake> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.spilled = true;
        self.pump(ctx);
    }
}

impl Handler<ManualAttempt> for DeliveryActor {
    type Result = ();

    /// A person's attempt counts in the circuit breaker; the health is stored with the next
    /// write (one at a time, in order, as the actor's own).
    fn handle(&mut self, msg: ManualAttempt, ctx: &mut Context<Self>) {
        let health = self.health.after(&self.policy.breaker, msg.succeeded, msg.started_at, now_ms());
        if health != self.health {
            self.health = health;
            self.health_dirty = true;
            self.record(ctx);
        }
        self.pump(ctx);
    }
}

impl Handler<Reconfigure> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        self.target = Rc::new(msg.0);
    }
}

impl Handler<Retire> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        // Queued deliveries stay pending in the database; attempts in flight finish and are recorded.
        self.retiring = true;
        // Nothing waits for a batch, a rate slot or a cooldown any more.
        for timer in [self.batch_timer.take(), self.rate_timer.take(), self.cooldown_timer.take()].into_iter().flatten() {
            ctx.cancel_future(timer);
        }
        self.slot = None;
        for envelope in self.queue.drain(..).chain(self.split.drain(..).flatten()) {
            self.held.release(&envelope.delivery_id);
        }
        self.stop_when_drained(ctx);
    }
}
