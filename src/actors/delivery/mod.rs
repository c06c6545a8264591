//! DeliveryActor: one per enabled channel, with its own mailbox, so a slow or dead endpoint
//! never delays another channel.
//!
//! The actor is cut by concern, one file each, and this file only ties them together:
//! [`queue`] (what it holds in memory, claims across actors, batching, refilling from the
//! database), [`pacing`] (circuit breaker, rate limit, when to give the channel up),
//! [`recording`] (writing attempts, health and a disable in one transaction), [`timers`] (every
//! timer it sets, kept and cancellable). Each request goes through the one dispatch path
//! ([`crate::dispatch`]) that Redeliver and Test use too.
//!
//! Invariants:
//! - At most `max_in_flight` requests are open at once.
//! - Retiring (channel disabled or deleted) stops new attempts at once: every timer that would
//!   start one is cancelled, and what is queued is left pending in the database; the attempts
//!   in flight finish and are recorded before the actor stops.
//! - A channel given up (its receiver gone, or failing for `DISABLE_AFTER`) sends nothing more;
//!   the next write disables it, and the RuleMatcher retires this actor. Pending deliveries stay
//!   pending until the channel is enabled again.
//! - On start the actor fetches whatever is due, which is how deliveries resume after a restart.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{ChannelDisabled, Deliver, Envelope, ManualAttempt, ProbeNow, Reconfigure, Retire, ScheduleWake, Wake};
use super::retry_supervisor::RetrySupervisor;
use crate::channels::{Item, Target};
use crate::domain::attempt::{Trigger, Verdict};
use crate::domain::breaker::{BreakerPolicy, Health};
use crate::domain::ids;
use crate::domain::network::TargetPolicy;
use crate::domain::retry::RetryPolicy;
use crate::domain::time::now_ms;
use crate::instance::Instance;
use crate::outbound::{Names, Outbound};
use crate::store::attempts::{AttemptRecord, SharedRequest};
use crate::store::Store;

mod pacing;
mod queue;
mod recording;
#[cfg(test)]
mod tests;
pub mod timers;

pub use queue::Claims;
pub use timers::Timer;
use timers::{HasTimers, Timers};

/// How a channel's actor delivers: shared by every channel.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub retry: Arc<RetryPolicy>,
    pub timeout: Duration,
    /// `CREATE_SETTLE` (ticketing types).
    pub create_settle: Duration,
    pub max_in_flight: usize,
    /// `CHANNEL_QUEUE`: the most deliveries waiting to be sent in memory, and the most finished
    /// attempts waiting to be written before no request starts.
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

/// Where the actor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending.
    Serving,
    /// It decided to disable its channel: nothing more is sent until the write that disables
    /// it commits (then it is retired), or finds it disabled by someone else first (then it
    /// serves on, if the channel was enabled again).
    GivingUp,
    /// Retired: sends nothing new, and stops once what is in flight is recorded. An attempt
    /// that finishes meanwhile may still decide to disable the channel (`gave_up`), once.
    Retiring { gave_up: bool },
}

impl Phase {
    /// Whether an attempt's failure may still decide to disable the channel.
    fn may_give_up(self) -> bool {
        matches!(self, Phase::Serving | Phase::Retiring { gave_up: false })
    }

    /// The attempt's failure decided to disable the channel.
    fn give_up(&mut self) {
        *self = match *self {
            Phase::Retiring { .. } => Phase::Retiring { gave_up: true },
            _ => Phase::GivingUp,
        };
    }

    /// The channel was disabled by someone else first: serve on (if it was enabled again
    /// meanwhile; a reload retires this actor otherwise).
    fn resume(&mut self) {
        *self = match *self {
            Phase::Retiring { .. } => Phase::Retiring { gave_up: false },
            _ => Phase::Serving,
        };
    }

    fn is_retiring(self) -> bool {
        matches!(self, Phase::Retiring { .. })
    }
}

pub struct DeliveryActor {
    /// The channel as configured now (replaced whole by `Reconfigure`).
    target: Rc<Target>,
    phase: Phase,
    queue: queue::Queue,
    /// Requests open now.
    in_flight: usize,
    pacing: pacing::Pacing,
    recording: recording::Recording,
    timers: Timers,
    outbound: Outbound,
    store: Store,
    policy: DeliveryPolicy,
    supervisor: Addr<RetrySupervisor>,
    /// Told when this actor disables its channel.
    matcher: Recipient<ChannelDisabled>,
    /// This channel's series, counted once attempts are committed.
    metrics: crate::metrics::ChannelMetrics,
}

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
        let outbound = Outbound::new(policy.timeout, policy.max_in_flight, Arc::clone(&policy.targets), policy.names.clone(), &policy.instance.id).with_create_settle(policy.create_settle);
        Self {
            metrics: policy.metrics.channel(&target.channel_id),
            target: Rc::new(target),
            phase: Phase::Serving,
            queue: queue::Queue::new(policy.queue_capacity, claims),
            in_flight: 0,
            pacing: pacing::Pacing::new(health),
            recording: recording::Recording::default(),
            timers: Timers::default(),
            outbound,
            store,
            policy,
            supervisor,
            matcher,
        }
    }

    /// Does whatever can be done now: write what finished, start the requests the breaker, the
    /// rate limit and the batching allow, and fetch due deliveries when the queue runs low.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.record(ctx);
        match self.phase {
            Phase::Retiring { .. } => return self.stop_when_drained(ctx),
            // The RuleMatcher retires this actor once the write that disables its channel commits.
            Phase::GivingUp => return,
            Phase::Serving => {}
        }
        self.queue.settle();
        // While as many finished attempts wait to be written as the queue holds (the database
        // slower than the receiver, or away), no request starts: memory stays bounded, and so does
        // what a crash would send again. The next write pumps again.
        let behind = self.recording.waiting() >= self.policy.queue_capacity;
        let permitted = if self.queue.is_empty() || behind { 0 } else { self.permitted(ctx) };
        for _ in 0..permitted {
            if self.in_flight >= self.policy.max_in_flight || self.queue.is_empty() || !self.batch_ready(ctx) || !self.rate_allows(ctx) {
                break;
            }
            let batch = self.queue.next_batch(self.target.batching.size);
            self.starting();
            self.attempt(batch, ctx);
        }
        if self.queue.wants_fetch() && !self.timers.is_set(Timer::FetchRetry) {
            self.fetch_due(ctx);
        }
    }

    /// Sends one request carrying `batch` (one delivery, for most types), through the one
    /// dispatch path, and takes in its outcome.
    fn attempt(&mut self, batch: Vec<Envelope>, ctx: &mut Context<Self>) {
        self.in_flight += 1;
        let (outbound, target, store) = (self.outbound.clone(), Rc::clone(&self.target), self.store.clone());
        let exchange = async move {
            let items: Vec<Item<'_>> = batch.iter().map(|e| Item::new(&e.event_id, &e.delivery_id, &e.payload)).collect();
            // A bulk redelivery's attempt sends only what a person asked for.
            let gather = batch.iter().all(|e| e.trigger == Trigger::Scheduled);
            let sent = crate::dispatch::deliver(&store, &outbound, &target, &items, gather).await;
            (batch, target, sent)
        };
        ctx.spawn(exchange.into_actor(self).map(move |(batch, attempted, sent), act, ctx| {
            act.in_flight -= 1;
            act.pacing.probing = false;
            act.finished(batch, &attempted, sent);
            act.pump(ctx);
        }));
    }

    /// Takes in a request's outcome: what it could not carry is queued again; a batch refused
    /// as too large is split in two (and nothing recorded for it); otherwise the breaker counts
    /// it, the channel may be given up, and the attempts go to be recorded.
    fn finished(&mut self, mut batch: Vec<Envelope>, attempted: &Rc<Target>, sent: crate::outbound::Sent) {
        self.queue.put_back(batch.split_off(sent.carried.min(batch.len())));
        let (outcome, incident, also, sent) = (sent.outcome, sent.incident, sent.also, sent.request);
        if outcome.verdict == Verdict::TooLarge && batch.len() > 1 {
            if self.phase.is_retiring() {
                // Left pending as they are, for whoever serves the channel next.
                for envelope in &batch {
                    self.queue.release(&envelope.delivery_id);
                }
            } else {
                log::info!("channel {}: a request of {} deliveries was too large; sending it as two", self.target.channel_id, batch.len());
                self.queue.split_in_two(batch);
            }
            return;
        }
        if self.count_in_health(outcome.succeeded(), outcome.started_at) {
            self.recording.health_changed();
        }
        // A receiver's "gone" only counts for the target it answered for: the URL may have
        // been changed while the attempt ran.
        let current = Rc::ptr_eq(attempted, &self.target);
        if self.phase.may_give_up() && !outcome.succeeded() && (current || !matches!(outcome.verdict, Verdict::Disable(_))) {
            if let Some(reason) = self.reason_to_disable(&outcome.verdict, now_ms()) {
                log::warn!("disabling channel {}: {reason}", self.target.channel_id);
                self.recording.disable(reason);
                self.phase.give_up();
            }
        }
        let carried = batch.len() + also.len();
        let request = (carried > 1).then(|| SharedRequest { id: Arc::from(ids::new_id(ids::REQUEST)), size: carried });
        for envelope in batch {
            self.recording.add(AttemptRecord { delivery_id: envelope.delivery_id, trigger: envelope.trigger, outcome: outcome.clone(), request: request.clone(), sent: sent.clone(), incident: incident.clone() });
        }
        // Deliveries of the incident a ticketing note took in besides the one attempted.
        for delivery_id in also {
            self.recording.add(AttemptRecord { delivery_id, trigger: Trigger::Scheduled, outcome: outcome.clone(), request: request.clone(), sent: sent.clone(), incident: incident.clone() });
        }
    }

    /// While retiring: stop once nothing is in flight or waiting to be recorded.
    fn stop_when_drained(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight == 0 && self.recording.is_idle() {
            ctx.stop();
        }
    }

    fn schedule_wake(&self, at: i64) {
        self.supervisor.do_send(ScheduleWake { channel_id: self.target.channel_id.clone(), at });
    }
}

impl HasTimers for DeliveryActor {
    fn timers(&mut self) -> &mut Timers {
        &mut self.timers
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
        if self.phase.is_retiring() {
            return;
        }
        if self.target.kind.keeps_incidents() {
            // One at a time per incident, oldest first: what is due is found by the fetch, which
            // leaves out what waits behind an older delivery of its incident.
            self.queue.look_again();
        } else {
            for envelope in msg.0 {
                self.queue.offer(envelope);
            }
        }
        self.pump(ctx);
    }
}

impl Handler<Wake> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.queue.look_again();
        self.pump(ctx);
    }
}

impl Handler<ManualAttempt> for DeliveryActor {
    type Result = ();

    /// A person's attempt counts in the circuit breaker; the health is stored with the next
    /// write (one at a time, in order, as the actor's own).
    fn handle(&mut self, msg: ManualAttempt, ctx: &mut Context<Self>) {
        if self.count_in_health(msg.succeeded, msg.started_at) {
            self.recording.health_changed();
        }
        self.pump(ctx);
    }
}

impl Handler<ProbeNow> for DeliveryActor {
    type Result = bool;

    /// Ends an open circuit's cooldown now: the health goes half-open (and is stored with the
    /// next write), the cooldown timer is dropped, and the actor looks for due deliveries; the
    /// first to go is the probe, as when the cooldown ends by itself.
    fn handle(&mut self, _: ProbeNow, ctx: &mut Context<Self>) -> bool {
        let health = self.pacing.health.probe_now(now_ms());
        if health != self.pacing.health {
            self.pacing.health = health;
            self.recording.health_changed();
            self.timers.cancel(Timer::Cooldown, ctx);
        }
        self.queue.look_again();
        self.pump(ctx);
        true
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
        // A decision to disable the channel stands through a second Retire (at a stop).
        self.phase = Phase::Retiring { gave_up: !self.phase.may_give_up() };
        // Nothing waits for a batch, a rate slot, a cooldown or a retried fetch any more.
        self.timers.cancel_for_retire(ctx);
        self.pacing.give_up_slot();
        // Queued deliveries stay pending in the database; attempts in flight finish and are recorded.
        self.queue.release_queued();
        self.pump(ctx);
    }
}

/// The timers an actor has set and not yet fired (tests: a retired actor leaves none behind).
#[derive(Message)]
#[rtype(result = "Vec<Timer>")]
pub struct LiveTimers;

/// Requests in flight, finished attempts waiting to be written and deliveries waiting to be
/// sent (tests: writes that fall behind hold the sends back).
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "(usize, usize, bool)")]
pub struct Backlog;

#[cfg(test)]
impl Handler<Backlog> for DeliveryActor {
    type Result = MessageResult<Backlog>;

    fn handle(&mut self, _: Backlog, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.in_flight, self.recording.waiting(), !self.queue.is_empty()))
    }
}

impl Handler<LiveTimers> for DeliveryActor {
    type Result = MessageResult<LiveTimers>;

    fn handle(&mut self, _: LiveTimers, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.timers.live())
    }
}
