//! RuleMatcher: holds the enabled rules and channels in memory, matches each event against them,
//! stores the event with one delivery per (event, channel) pair in a single transaction, and
//! only then hands the envelopes to the channels' DeliveryActors.
//!
//! Ingestion requests that arrive while [`INGEST_WRITES`] writes are already under way wait and
//! are then written together, in one transaction (each keeps its own answer and its own
//! all-or-nothing: if the merged write fails, each request is written again on its own, so one
//! request's bad tenant never fails another's). At low load a request is written at once; under
//! load, many single-event requests share one transaction's statements instead of paying about
//! seven each.
//!
//! It also owns the DeliveryActors' lifecycle: on [`Reload`] (after every rule or channel change,
//! and at start) it starts an actor for each enabled channel, reconfigures the ones whose channel
//! changed, and retires those whose channel was disabled or deleted. Reloads are atomic: no event
//! is matched against a half-applied snapshot. With several instances on one database, it also
//! watches the routing version as often as the store says (`Store::routing_watch`) and reloads
//! when another instance changed channels or rules, so a change is in force everywhere within a
//! second. On [`Shutdown`] it retires every actor and waits (until the grace ends) for their
//! attempts in flight to be recorded; from then on it starts no actor and hands out no delivery.

use std::collections::HashMap;

use actix::prelude::*;
use actix_web::web::Bytes;

use super::delivery::{Claims, DeliveryActor, DeliveryPolicy};
use super::messages::{ChannelDisabled, Deliver, ManualAttempt, Wake, WakeChannels, Envelope, ForgetChannel, Ingest, Reconfigure, Reload, Retire, ServeChannel, Shutdown};
use super::retry_supervisor::RetrySupervisor;
use crate::domain::attempt::Trigger;
use crate::domain::breaker::Health;
use crate::channels::{ChannelKind, UnknownType};
use crate::domain::channel::{RateLimit, SigningSecret};
use crate::domain::event::{EventData, EventType, NewEvent, TenantRef};
use crate::domain::severity::Severity;
use crate::domain::rule::RuleFilter;
use crate::domain::time::now_ms;
use crate::channels::Target;
use crate::store::events::{Ingested, MatchedEvent};
use crate::store::models::ChannelRow;
use crate::store::{channels, instances, rules, Store, StoreError};

/// Ingestion writes under way at once; later requests wait and are merged into the next one.
pub const INGEST_WRITES: usize = 2;
/// Most events one merged ingestion write holds (a larger request is written alone).
pub const MERGED_EVENTS: usize = 1000;

type IngestAnswer = tokio::sync::oneshot::Sender<Result<Vec<Ingested>, StoreError>>;

/// An ingestion request waiting for a write.
struct WaitingIngest {
    matched: Vec<MatchedEvent>,
    is_batch: bool,
    answer: IngestAnswer,
    /// It was in a merged write that failed: it is written on its own.
    alone: bool,
}

struct ChannelSlot {
    /// What the actor was configured with.
    target: Target,
    actor: Addr<DeliveryActor>,
}

pub struct RuleMatcher {
    store: Store,
    policy: DeliveryPolicy,
    supervisor: Addr<RetrySupervisor>,
    /// Shared by every channel actor it starts (see `delivery`).
    claims: Claims,
    rules: Vec<(RuleFilter, Vec<String>)>,
    channels: HashMap<String, ChannelSlot>,
    /// The routing version the rules and channels in memory were loaded at.
    routing_version: i64,
    /// A look for changes made elsewhere is under way.
    watching: bool,
    /// The last look failed (the database is away).
    watch_failing: bool,
    /// Ingestion writes under way.
    ingest_writes: usize,
    /// Ingestion requests waiting for one of them to finish.
    waiting: std::collections::VecDeque<WaitingIngest>,
    /// This actor, for the channel actors it starts to report to.
    me: Option<Addr<RuleMatcher>>,
    /// Channels whose `router.channel_disabled` event is being stored.
    telling: std::collections::HashSet<String>,
    /// The router is shutting down: no actor is started or handed deliveries any more.
    stopping: bool,
    /// Actors retired and perhaps still finishing their attempts (a stop waits for them too).
    retired: Vec<Addr<DeliveryActor>>,
}

impl RuleMatcher {
    pub fn new(store: Store, policy: DeliveryPolicy, supervisor: Addr<RetrySupervisor>) -> Self {
        Self {
            store,
            policy,
            supervisor,
            claims: Claims::default(),
            rules: Vec::new(),
            channels: HashMap::new(),
            routing_version: 0,
            watching: false,
            watch_failing: false,
            ingest_writes: 0,
            waiting: std::collections::VecDeque::new(),
            me: None,
            telling: std::collections::HashSet::new(),
            stopping: false,
            retired: Vec::new(),
        }
    }

    /// The enabled channels the event's matching rules target, each once, in rule order.
    fn route(&self, event: &NewEvent) -> Vec<String> {
        let mut targets: Vec<String> = Vec::new();
        for (filter, channel_ids) in &self.rules {
            if filter.matches(&event.event_type, event.severity, event.tenant.id()) {
                for id in channel_ids {
                    if self.channels.contains_key(id) && !targets.contains(id) {
                        targets.push(id.clone());
                    }
                }
            }
        }
        targets
    }

    /// Hands committed deliveries to their channels' actors, one message per channel. An actor
    /// that died is replaced; the new one finds the deliveries in the database.
    fn dispatch(&mut self, ingested: &[Ingested]) {
        let stored = ingested.iter().filter(|result| !result.duplicate).count();
        self.policy.metrics.events_ingested.inc_by(stored as u64);
        let mut created: HashMap<&str, u64> = HashMap::new();
        for (_, channel_id) in ingested.iter().flat_map(|result| &result.deliveries) {
            *created.entry(channel_id).or_default() += 1;
        }
        for (channel_id, n) in created {
            self.policy.metrics.deliveries.with_label_values(&[channel_id, crate::domain::delivery::DeliveryStatus::Pending.as_str()]).inc_by(n);
        }
        if self.stopping {
            // Committed: the deliveries wait in the database for the next start.
            return;
        }
        let mut per_channel: HashMap<&str, Vec<Envelope>> = HashMap::new();
        for result in ingested {
            let Some(payload) = &result.payload else { continue };
            let payload = Bytes::copy_from_slice(payload.as_bytes());
            for (delivery_id, channel_id) in &result.deliveries {
                per_channel.entry(channel_id).or_default().push(Envelope {
                    delivery_id: delivery_id.clone(),
                    event_id: result.event_id.clone(),
                    payload: payload.clone(),
                    trigger: Trigger::Scheduled,
                });
            }
        }
        let mut dead = Vec::new();
        for (channel_id, envelopes) in per_channel {
            // A channel without an actor was just disabled; its deliveries wait in the database.
            if let Some(slot) = self.channels.get(channel_id) {
                if slot.actor.connected() {
                    slot.actor.do_send(Deliver(envelopes));
                } else {
                    dead.push(channel_id.to_string());
                }
            }
        }
        for channel_id in dead {
            if let Some(slot) = self.channels.remove(&channel_id) {
                log::error!("the delivery actor of channel {channel_id} had stopped; starting a new one");
                // Rare (the actor panicked): its successor starts closed, and opens again if the
                // failures go on.
                let fresh = self.start_actor(slot.target, Health::default());
                self.channels.insert(channel_id, fresh);
            }
        }
    }

    /// Retires a channel's actor: it sends nothing new, finishes and records what is in flight,
    /// then stops.
    fn retire(&mut self, actor: Addr<DeliveryActor>) {
        actor.do_send(Retire);
        self.retired.retain(Addr::connected);
        self.retired.push(actor);
    }

    /// Starts the actor that serves the channel from now on (with the circuit-breaker health
    /// last stored for it); its timers wake this one.
    fn start_actor(&self, target: Target, health: Health) -> ChannelSlot {
        let actor = DeliveryActor::new(
            target.clone(),
            self.store.clone(),
            self.policy.clone(),
            self.supervisor.clone(),
            self.claims.clone(),
            health,
            self.me.clone().expect("the rule matcher has started").recipient(),
        )
        .start();
        self.supervisor.do_send(ServeChannel { channel_id: target.channel_id.clone(), actor: actor.clone().recipient() });
        ChannelSlot { target, actor }
    }

    fn apply(&mut self, mut snapshot: rules::RoutingSnapshot) {
        self.rules = snapshot.rules;
        let mut live: HashMap<String, ChannelSlot> = HashMap::with_capacity(snapshot.channels.len());
        for row in snapshot.channels {
            let target = match target_of(&row) {
                Ok(target) => target,
                Err(unknown) => {
                    // Fails closed: its deliveries wait, pending, for a release that knows it.
                    log::error!("channel {} ({}): {unknown}", row.name, row.id);
                    continue;
                }
            };
            let slot = match self.channels.remove(&row.id) {
                Some(slot) if slot.actor.connected() && slot.target == target => slot,
                Some(slot) if slot.actor.connected() => {
                    slot.actor.do_send(Reconfigure(target.clone()));
                    ChannelSlot { target, actor: slot.actor }
                }
                // New, or its actor died: start one (it fetches whatever is due).
                _ => self.start_actor(target, snapshot.health.remove(&row.id).unwrap_or_default()),
            };
            live.insert(row.id, slot);
        }
        let gone: Vec<(String, ChannelSlot)> = self.channels.drain().collect();
        for (channel_id, slot) in gone {
            self.retire(slot.actor);
            self.supervisor.do_send(ForgetChannel(channel_id));
        }
        self.channels = live;
    }
}

/// The delivery target of a stored channel: during a rotation, both secrets sign. A channel
/// whose type this release does not know has none: nothing is sent to it.
pub fn target_of(row: &ChannelRow) -> Result<Target, UnknownType> {
    let mut secrets = vec![(SigningSecret::from_stored(row.secret.clone()), None)];
    if let (Some(previous), Some(until)) = (&row.previous_secret, row.previous_secret_expires_at) {
        secrets.push((SigningSecret::from_stored(previous.clone()), Some(until)));
    }
    Ok(Target::new(row.id.clone(), ChannelKind::from_stored(&row.kind)?, row.url.clone(), row.custom_headers(), secrets)
        .with_rate_limit(row.rate_limit_per_second.map(RateLimit::from_stored))
        .with_config(row.settings()))
}

impl Actor for RuleMatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = Some(ctx.address());
        if let Some(every) = self.store.routing_watch() {
            ctx.run_interval(every, |act, ctx| act.watch_routing(ctx));
        }
    }
}

impl RuleMatcher {
    /// Reloads if another instance changed channels or rules since the last reload.
    fn watch_routing(&mut self, ctx: &mut Context<Self>) {
        if self.watching {
            return;
        }
        self.watching = true;
        let store = self.store.clone();
        let read = async move { store.read(instances::routing_version).await };
        ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
            act.watching = false;
            // Said once when the database goes away and once when it is back, not twice a second.
            match (&result, act.watch_failing) {
                (Err(err), false) => log::warn!("cannot look for routing changes made elsewhere (will keep trying): {err}"),
                (Ok(_), true) => log::info!("looking for routing changes made elsewhere again"),
                _ => {}
            }
            act.watch_failing = result.is_err();
            if matches!(result, Ok(version) if version > act.routing_version) {
                ctx.notify(Reload);
            }
        }));
    }
}

impl Handler<Ingest> for RuleMatcher {
    type Result = ResponseFuture<Result<Vec<Ingested>, StoreError>>;

    fn handle(&mut self, msg: Ingest, ctx: &mut Context<Self>) -> Self::Result {
        let matched: Vec<MatchedEvent> = msg
            .events
            .into_iter()
            .map(|event| {
                let channel_ids = self.route(&event);
                MatchedEvent { event, channel_ids }
            })
            .collect();
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.waiting.push_back(WaitingIngest { matched, is_batch: msg.is_batch, answer, alone: false });
        self.write_waiting(ctx);
        Box::pin(async move { answered.await.map_err(|_| StoreError::Task("the rule matcher stopped".into()))? })
    }
}

impl RuleMatcher {
    /// Starts writes for waiting ingestion requests while fewer than [`INGEST_WRITES`] run, each
    /// merging as many waiting requests as fit in [`MERGED_EVENTS`].
    fn write_waiting(&mut self, ctx: &mut Context<Self>) {
        while self.ingest_writes < INGEST_WRITES && !self.waiting.is_empty() {
            let mut group = Vec::new();
            let mut events = 0;
            while let Some(next) = self.waiting.front() {
                let fits = group.is_empty() || (!next.alone && events + next.matched.len() <= MERGED_EVENTS);
                if !fits || group.first().is_some_and(|w: &WaitingIngest| w.alone) {
                    break;
                }
                events += next.matched.len();
                group.extend(self.waiting.pop_front());
            }
            self.write_group(group, ctx);
        }
    }

    /// Writes a group of requests in one transaction, answers each with its own results, and
    /// hands the deliveries to the channels. If the merged write fails, each request of a group
    /// of several is written again alone, so each gets its own error (or succeeds).
    fn write_group(&mut self, group: Vec<WaitingIngest>, ctx: &mut Context<Self>) {
        self.ingest_writes += 1;
        let store = self.store.clone();
        let is_batch = group.len() > 1 || group[0].is_batch;
        let batch: Vec<MatchedEvent> = group.iter().flat_map(|w| w.matched.iter().cloned()).collect();
        let write = async move { store.ingest(batch, is_batch).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.ingest_writes -= 1;
            match result {
                Ok(ingested) => {
                    act.dispatch(&ingested);
                    let mut ingested = ingested.into_iter();
                    for waiting in group {
                        let _ = waiting.answer.send(Ok(ingested.by_ref().take(waiting.matched.len()).collect()));
                    }
                }
                Err(err) if group.len() == 1 => {
                    let _ = group.into_iter().next().map(|w| w.answer.send(Err(err)));
                }
                Err(err) if err.is_unavailable() => {
                    // The database is away: every request of the group hears so at once.
                    let reason = err.to_string();
                    for waiting in group {
                        let _ = waiting.answer.send(Err(StoreError::Unavailable(reason.clone())));
                    }
                }
                Err(_) => {
                    // Each again on its own (first in line), so each gets its own answer.
                    for mut waiting in group.into_iter().rev() {
                        waiting.alone = true;
                        act.waiting.push_front(waiting);
                    }
                }
            }
            act.write_waiting(ctx);
        }));
    }
}

impl Handler<Shutdown> for RuleMatcher {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        let mut actors: Vec<Addr<DeliveryActor>> = self.channels.values().map(|slot| slot.actor.clone()).collect();
        actors.extend(self.retired.iter().filter(|actor| actor.connected()).cloned());
        for actor in &actors {
            actor.do_send(Retire);
        }
        Box::pin(async move {
            loop {
                // A retired actor stops once its attempts in flight are finished and recorded.
                let left = actors.iter().filter(|actor| actor.connected()).count();
                if left == 0 || std::time::Instant::now() >= msg.deadline {
                    return left;
                }
                actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    }
}

impl Handler<Reload> for RuleMatcher {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        // The version first: a change committed between the two reads is seen again next time.
        let load = async move {
            store.read(|conn| Ok((instances::routing_version(conn)?, rules::routing_snapshot(conn)?))).await
        };
        AtomicResponse::new(Box::pin(load.into_actor(self).map(|result, act, ctx| match result {
            Ok((version, mut snapshot)) => {
                act.routing_version = act.routing_version.max(version);
                // Channels the router disabled whose event was lost (a crash, another instance):
                // told now.
                for (channel_id, channel_name, reason) in std::mem::take(&mut snapshot.untold) {
                    if !act.telling.contains(&channel_id) {
                        ctx.notify(ChannelDisabled { channel_id, channel_name, reason });
                    }
                }
                if !act.stopping {
                    act.apply(snapshot);
                }
                Ok(())
            }
            Err(err) => {
                // The change is committed; routing must catch up with it, so try again.
                log::error!("reloading rules and channels failed, retrying in 1 s: {err}");
                ctx.notify_later(Reload, std::time::Duration::from_secs(1));
                Err(err)
            }
        })))
    }
}

impl Handler<ChannelDisabled> for RuleMatcher {
    type Result = ();

    /// A channel was disabled by the router (committed): tell people through the rules, as the
    /// router's own event `router.channel_disabled`, and reload (retiring the channel's actor).
    /// The event is stored in the transaction that marks the channel as told, once, whichever
    /// instance gets there first; one lost to a crash is found at the next reload.
    fn handle(&mut self, msg: ChannelDisabled, ctx: &mut Context<Self>) {
        // The actor that gave up retires now, whatever the reload finds: if a person enabled the
        // channel again meanwhile, a fresh actor serves it.
        if let Some(slot) = self.channels.remove(&msg.channel_id) {
            self.retire(slot.actor);
            self.supervisor.do_send(ForgetChannel(msg.channel_id.clone()));
        }
        if !self.telling.insert(msg.channel_id.clone()) {
            return;
        }
        ctx.notify(Reload);
        log::warn!("channel {} ({}) was disabled: {}", msg.channel_name, msg.channel_id, msg.reason);
        let mut data = serde_json::Map::new();
        data.insert("channel_id".into(), msg.channel_id.clone().into());
        data.insert("channel_name".into(), msg.channel_name.clone().into());
        data.insert("reason".into(), msg.reason.clone().into());
        let event = NewEvent {
            id: crate::domain::ids::new_id(crate::domain::ids::EVENT),
            event_type: EventType::parse("event", CHANNEL_DISABLED).expect("a valid event type"),
            occurred_at: now_ms(),
            severity: Severity::High,
            tenant: TenantRef::Router,
            data: EventData::new(&data),
        };
        // The disabled channel may still be in memory here; it is left out when the deliveries
        // are written (only enabled channels get them).
        let channel_ids = self.route(&event);
        let batch = vec![MatchedEvent { event, channel_ids }];
        let store = self.store.clone();
        let channel_id = msg.channel_id.clone();
        let write = async move { store.ingest_if(batch, false, move |conn, now| channels::mark_disable_told(conn, &channel_id, now)).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.telling.remove(&msg.channel_id);
            match result {
                Ok(Some(ingested)) => act.dispatch(&ingested),
                Ok(None) => {}
                Err(err) => {
                    log::error!("storing the {CHANNEL_DISABLED} event failed, retrying in 5 s: {err}");
                    ctx.notify_later(msg, std::time::Duration::from_secs(5));
                }
            }
        }));
    }
}

/// The router's own event when it disables a channel.
pub const CHANNEL_DISABLED: &str = "router.channel_disabled";

impl Handler<ManualAttempt> for RuleMatcher {
    type Result = ();

    fn handle(&mut self, msg: ManualAttempt, _: &mut Context<Self>) {
        // A disabled channel has no actor: its health is read again when it is enabled.
        if let Some(slot) = self.channels.get(&msg.channel_id) {
            slot.actor.do_send(msg);
        }
    }
}

impl Handler<WakeChannels> for RuleMatcher {
    type Result = ();

    fn handle(&mut self, msg: WakeChannels, _: &mut Context<Self>) {
        for channel_id in msg.0 {
            // A disabled channel has no actor; its deliveries wait until it is enabled.
            if let Some(slot) = self.channels.get(&channel_id) {
                slot.actor.do_send(Wake);
            }
        }
    }
}

