//! RuleMatcher: holds the enabled rules in memory, matches each event against them, stores the
//! event with one delivery per (event, channel) pair in a single transaction, and only then
//! hands the envelopes to the channels' actors.
//!
//! Two concerns live apart, in their own files: [`coalesce`] decides which waiting ingestion
//! requests share a write, and [`channel_actors`] keeps which actor serves each channel (started,
//! reconfigured and retired on [`Reload`], after every rule or channel change and at start).
//! Reloads are atomic: no event is matched against a half-applied snapshot. With several
//! instances on one database, the matcher also watches the routing version every
//! as often as the store says (`Store::routing_watch`) and reloads when another instance changed channels or rules, so a change is
//! in force everywhere within a second. When a channel's actor disables its channel, the
//! matcher tells people through the rules (`router.channel_disabled`). On [`Shutdown`] it
//! retires every actor and waits (until the grace ends) for their attempts in flight to be
//! recorded; from then on it starts no actor and hands out no delivery.

use std::collections::HashMap;

use actix::prelude::*;
use actix_web::web::Bytes;

use super::delivery::{Claims, DeliveryActor, DeliveryPolicy};
use super::messages::{ChannelDisabled, Envelope, Ingest, ManualAttempt, ProbeNow, Reload, Shutdown, WakeChannels};
use super::retry_supervisor::RetrySupervisor;
use crate::domain::attempt::Trigger;
use crate::channels::{ChannelKind, Unsendable};
use crate::domain::channel::{RateLimit, SigningSecret};
use crate::domain::event::NewEvent;
use crate::domain::event::TenantRef;
use crate::domain::routing::{ChannelFacts, Decision, EventView, RuleIndex};
use crate::domain::silence::Silence;
use crate::domain::tenant::Tenant;
use super::group_flusher::{GroupFlusher, GroupsOpened, StopFlushing};
use crate::channels::Target;
use crate::store::events::{Ingested, MatchedEvent};
use crate::store::models::ChannelRow;
use crate::store::{instances, rules, Store, StoreError};

pub mod channel_actors;
mod channel_disabled;
pub mod coalesce;

pub use channel_disabled::CHANNEL_DISABLED;

use channel_actors::{ChannelActor, ChannelActors};
use coalesce::{Coalescer, WaitingIngest};
pub use coalesce::{INGEST_WRITES, MERGED_EVENTS};

pub struct RuleMatcher {
    store: Store,
    policy: DeliveryPolicy,
    /// The enabled rules, in the order they decide, indexed by where they can match.
    rules: RuleIndex,
    /// The silences not ended yet (each holds only within its window).
    silences: Vec<Silence>,
    /// Registered tenants, for the payload conditions see (kept up to date by the events that
    /// carry a full tenant).
    tenants: HashMap<String, Tenant>,
    /// The enabled channels: each gets its deliveries, even one nothing can be sent to now (a
    /// type this release does not know, settings that do not parse), whose deliveries wait.
    enabled: HashMap<String, ChannelFacts>,
    /// Flushes groups; told of the groups ingestion opens.
    flusher: Addr<GroupFlusher>,
    /// Which actor serves each enabled channel that can be sent to.
    channels: ChannelActors,
    /// The routing version the rules and channels in memory were loaded at.
    routing_version: i64,
    /// A look for changes made elsewhere is under way.
    watching: bool,
    /// The last look failed (the database is away).
    watch_failing: bool,
    /// Ingestion requests waiting for a write, and the writes under way.
    ingest: Coalescer,
    /// Channels whose `router.channel_disabled` event is being stored.
    telling: std::collections::HashSet<String>,
    /// The router is shutting down: no actor is started or handed deliveries any more.
    stopping: bool,
}

impl RuleMatcher {
    /// Starts the rule matcher; the channel actors it starts run on its arbiter, report a
    /// channel they disable to it, and share one set of [`Claims`].
    pub fn spawn(store: Store, policy: DeliveryPolicy, supervisor: Addr<RetrySupervisor>) -> Addr<Self> {
        RuleMatcher::create(|ctx| {
            let me = ctx.address().recipient();
            let flusher = GroupFlusher::new(store.clone(), ctx.address().recipient(), policy.metrics.clone()).start();
            let claims = Claims::default();
            let (actor_store, actor_policy, actor_supervisor) = (store.clone(), policy.clone(), supervisor.clone());
            let start: channel_actors::Start = Box::new(move |target, health| {
                let actor = DeliveryActor::new(
                    target,
                    actor_store.clone(),
                    actor_policy.clone(),
                    actor_supervisor.clone(),
                    claims.clone(),
                    health,
                    me.clone(),
                );
                ChannelActor::of(actor.start())
            });
            Self {
                store,
                policy,
                rules: RuleIndex::default(),
                silences: Vec::new(),
                tenants: HashMap::new(),
                enabled: HashMap::new(),
                flusher,
                channels: ChannelActors::new(start, supervisor),
                routing_version: 0,
                watching: false,
                watch_failing: false,
                ingest: Coalescer::default(),
                telling: std::collections::HashSet::new(),
                stopping: false,
            }
        })
    }

    /// For each enabled channel the event's matching rules name, the deciding rule and what it
    /// does with the pair (`routing::decide`, through the index), at `at`. Takes the event's parsed
    /// `data` for the conditions.
    fn route(&self, event: &mut NewEvent, at: i64) -> Vec<Decision> {
        let data = event.data.take_parsed();
        let registered = match &event.tenant {
            TenantRef::Registered(id) => self.tenants.get(id),
            _ => None,
        };
        let view = EventView::with_data(event, registered, data);
        self.rules.decide(&self.silences, &|id| self.enabled.get(id).copied(), &view, at)
    }

    /// Keeps the tenant an event registers (or renames) for the conditions of later events.
    fn learn_tenant(&mut self, event: &NewEvent) {
        if let TenantRef::Full(tenant) = &event.tenant {
            if self.tenants.get(&tenant.id) != Some(tenant) {
                self.tenants.insert(tenant.id.clone(), tenant.clone());
            }
        }
    }

    /// Counts what was ingested and hands committed deliveries to their channels' actors.
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
        let mut opened: Vec<i64> = Vec::new();
        for result in ingested {
            for (_, channel_id, status) in &result.decided {
                self.policy.metrics.deliveries.with_label_values(&[channel_id, status.as_str()]).inc();
            }
            opened.extend(&result.opened_groups);
        }
        if !opened.is_empty() {
            self.flusher.do_send(GroupsOpened(opened));
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
        self.channels.deliver(per_channel);
    }

    fn apply(&mut self, snapshot: rules::RoutingSnapshot) {
        self.rules = RuleIndex::new(snapshot.rules);
        self.silences = snapshot.silences;
        self.tenants = snapshot.tenants;
        self.enabled = snapshot
            .channels
            .iter()
            .map(|row| (row.id.clone(), ChannelFacts { siem: ChannelKind::from_stored(&row.kind).is_ok_and(ChannelKind::is_siem) }))
            .collect();
        let targets = snapshot
            .channels
            .iter()
            .filter_map(|row| match target_of(row) {
                Ok(target) => Some(target),
                Err(unknown) => {
                    // Fails closed: its deliveries wait, pending, for a release that knows its
                    // type, or for its settings to be fixed.
                    log::error!("channel {} ({}): {unknown}", row.name, row.id);
                    None
                }
            })
            .collect();
        self.channels.apply(targets, snapshot.health);
    }
}

/// The delivery target of a stored channel: during a rotation, both secrets sign. A channel
/// whose type this release does not know, or whose settings its type cannot parse, has none:
/// nothing is sent to it.
pub fn target_of(row: &ChannelRow) -> Result<Target, Unsendable> {
    let mut secrets = vec![(SigningSecret::from_stored(row.secret.clone()), None)];
    if let (Some(previous), Some(until)) = (&row.previous_secret, row.previous_secret_expires_at) {
        secrets.push((SigningSecret::from_stored(previous.clone()), Some(until)));
    }
    Ok(Target::new(row.id.clone(), ChannelKind::from_stored(&row.kind)?, row.url.clone(), row.custom_headers(), secrets, row.settings())?
        .with_rate_limit(row.rate_limit_per_second.map(RateLimit::from_stored)))
}

impl Actor for RuleMatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
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
        let at = crate::domain::time::now_ms();
        let matched: Vec<MatchedEvent> = msg
            .events
            .into_iter()
            .map(|mut event| {
                self.learn_tenant(&event);
                let routes = self.route(&mut event, at);
                MatchedEvent { event, routes }
            })
            .collect();
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.ingest.push(WaitingIngest::new(matched, msg.is_batch, answer));
        self.write_waiting(ctx);
        Box::pin(async move { answered.await.map_err(|_| StoreError::Task("the rule matcher stopped".into()))? })
    }
}

impl RuleMatcher {
    /// Starts writes for waiting ingestion requests while fewer than [`INGEST_WRITES`] run, each
    /// merging as many waiting requests as fit in [`MERGED_EVENTS`].
    fn write_waiting(&mut self, ctx: &mut Context<Self>) {
        while let Some(group) = self.ingest.next_group() {
            self.write_group(group, ctx);
        }
    }

    /// Writes a group of requests in one transaction, answers each with its own results, and
    /// hands the deliveries to the channels. If the merged write fails, each request of a group
    /// of several is written again alone, so each gets its own error (or succeeds).
    fn write_group(&mut self, group: Vec<WaitingIngest>, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let is_batch = group.len() > 1 || group[0].is_batch;
        let batch: Vec<MatchedEvent> = group.iter().flat_map(|w| w.matched.iter().cloned()).collect();
        let write = async move { store.ingest(batch, is_batch).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.ingest.finished();
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
                    act.ingest.write_each_alone(group);
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
        self.flusher.do_send(StopFlushing);
        let actors = self.channels.retire_all();
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

impl Handler<ManualAttempt> for RuleMatcher {
    type Result = ();

    fn handle(&mut self, msg: ManualAttempt, _: &mut Context<Self>) {
        // A disabled channel has no actor: its health is read again when it is enabled.
        self.channels.manual_attempt(msg);
    }
}

impl Handler<ProbeNow> for RuleMatcher {
    /// Whether an actor of this instance serves the channel (it is enabled).
    type Result = bool;

    fn handle(&mut self, msg: ProbeNow, _: &mut Context<Self>) -> bool {
        self.channels.probe_now(&msg.0)
    }
}

impl Handler<WakeChannels> for RuleMatcher {
    type Result = ();

    fn handle(&mut self, msg: WakeChannels, _: &mut Context<Self>) {
        for channel_id in msg.0 {
            // A disabled channel has no actor; its deliveries wait until it is enabled.
            self.channels.wake(&channel_id);
        }
    }
}

