//! The registry of channel actors: which actor serves each enabled channel, and their lives.
//!
//! On every reload ([`ChannelActors::apply`]) it starts an actor for each enabled channel,
//! reconfigures the ones whose channel changed, and retires those whose channel was disabled
//! or deleted; a retired actor sends nothing new, finishes and records what is in flight, then
//! stops, and a stop waits for it too ([`ChannelActors::retire_all`]). An actor that died is
//! replaced when it is next handed deliveries. The registry holds each actor as the messages it
//! takes ([`ChannelActor`]), so a test can stand a recorder in for a DeliveryActor.

use std::collections::HashMap;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::actors::messages::{Deliver, Envelope, ForgetChannel, ManualAttempt, ProbeNow, Reconfigure, Retire, ServeChannel, Wake};
use crate::actors::retry_supervisor::RetrySupervisor;
use crate::channels::Target;
use crate::domain::breaker::Health;

/// A channel's actor, as the messages it takes.
#[derive(Clone)]
pub struct ChannelActor {
    deliver: Recipient<Deliver>,
    wake: Recipient<Wake>,
    reconfigure: Recipient<Reconfigure>,
    retire: Recipient<Retire>,
    manual: Recipient<ManualAttempt>,
    probe: Recipient<ProbeNow>,
}

impl ChannelActor {
    /// The actor at `addr`.
    pub fn of<A>(addr: Addr<A>) -> Self
    where
        A: Actor + Handler<Deliver> + Handler<Wake> + Handler<Reconfigure> + Handler<Retire> + Handler<ManualAttempt> + Handler<ProbeNow>,
        A::Context: ToEnvelope<A, Deliver>
            + ToEnvelope<A, Wake>
            + ToEnvelope<A, Reconfigure>
            + ToEnvelope<A, Retire>
            + ToEnvelope<A, ManualAttempt>
            + ToEnvelope<A, ProbeNow>,
    {
        ChannelActor {
            deliver: addr.clone().recipient(),
            wake: addr.clone().recipient(),
            reconfigure: addr.clone().recipient(),
            retire: addr.clone().recipient(),
            manual: addr.clone().recipient(),
            probe: addr.recipient(),
        }
    }

    /// The actor is still running.
    pub fn connected(&self) -> bool {
        self.deliver.connected()
    }
}

/// Starts the actor that serves a channel from now on, with the circuit-breaker health last
/// stored for it (a DeliveryActor; a recorder in tests).
pub type Start = Box<dyn Fn(Target, Health) -> ChannelActor>;

struct Slot {
    /// What the actor was configured with.
    target: Target,
    actor: ChannelActor,
}

pub struct ChannelActors {
    slots: HashMap<String, Slot>,
    /// Actors retired and perhaps still finishing their attempts (a stop waits for them too).
    retired: Vec<ChannelActor>,
    start: Start,
    /// Wakes the actor serving a channel when a retry is due.
    supervisor: Addr<RetrySupervisor>,
}

impl ChannelActors {
    pub fn new(start: Start, supervisor: Addr<RetrySupervisor>) -> Self {
        ChannelActors { slots: HashMap::new(), retired: Vec::new(), start, supervisor }
    }

    /// Whether an actor serves the channel (it is enabled, and it can be sent to).
    pub fn serves(&self, channel_id: &str) -> bool {
        self.slots.contains_key(channel_id)
    }

    fn start(&self, target: Target, health: Health) -> Slot {
        let actor = (self.start)(target.clone(), health);
        self.supervisor.do_send(ServeChannel { channel_id: target.channel_id.clone(), actor: actor.wake.clone() });
        Slot { target, actor }
    }

    /// Serves exactly these channels from now on: starts, reconfigures and retires actors.
    /// `health`: the stored health of the channels that have one, for the actors started.
    pub fn apply(&mut self, targets: Vec<Target>, mut health: HashMap<String, Health>) {
        let mut live = HashMap::with_capacity(targets.len());
        for target in targets {
            let channel_id = target.channel_id.clone();
            let slot = match self.slots.remove(&channel_id) {
                Some(slot) if slot.actor.connected() && slot.target == target => slot,
                Some(slot) if slot.actor.connected() => {
                    slot.actor.reconfigure.do_send(Reconfigure(target.clone()));
                    Slot { target, actor: slot.actor }
                }
                // New, or its actor died: start one (it fetches whatever is due).
                _ => self.start(target, health.remove(&channel_id).unwrap_or_default()),
            };
            live.insert(channel_id, slot);
        }
        let gone: Vec<String> = self.slots.keys().cloned().collect();
        for channel_id in gone {
            self.retire(&channel_id);
        }
        self.slots = live;
    }

    /// Retires the channel's actor, if one serves it: it sends nothing new, finishes and records
    /// what is in flight, then stops.
    pub fn retire(&mut self, channel_id: &str) {
        if let Some(slot) = self.slots.remove(channel_id) {
            slot.actor.retire.do_send(Retire);
            self.retired.retain(ChannelActor::connected);
            self.retired.push(slot.actor);
            self.supervisor.do_send(ForgetChannel(channel_id.to_string()));
        }
    }

    /// Hands committed deliveries to their channels' actors, one message per channel. A channel
    /// without an actor was just disabled: its deliveries wait in the database. An actor that
    /// died is replaced; the new one finds the deliveries in the database.
    pub fn deliver(&mut self, per_channel: HashMap<&str, Vec<Envelope>>) {
        let mut dead = Vec::new();
        for (channel_id, envelopes) in per_channel {
            if let Some(slot) = self.slots.get(channel_id) {
                if slot.actor.connected() {
                    slot.actor.deliver.do_send(Deliver(envelopes));
                } else {
                    dead.push(channel_id.to_string());
                }
            }
        }
        for channel_id in dead {
            if let Some(slot) = self.slots.remove(&channel_id) {
                log::error!("the delivery actor of channel {channel_id} had stopped; starting a new one");
                // Rare (the actor panicked): its successor starts closed, and opens again if the
                // failures go on.
                let fresh = self.start(slot.target, Health::default());
                self.slots.insert(channel_id, fresh);
            }
        }
    }

    /// Deliveries of the channel are due now.
    pub fn wake(&self, channel_id: &str) {
        if let Some(slot) = self.slots.get(channel_id) {
            slot.actor.wake.do_send(Wake);
        }
    }

    /// A person's attempt at the channel ended; its actor counts it in the channel's health.
    pub fn manual_attempt(&self, attempt: ManualAttempt) {
        if let Some(slot) = self.slots.get(&attempt.channel_id) {
            slot.actor.manual.do_send(attempt);
        }
    }

    /// A person asked for the channel's probe now; answers whether an actor serves it here.
    pub fn probe_now(&self, channel_id: &str) -> bool {
        let Some(slot) = self.slots.get(channel_id) else { return false };
        slot.actor.probe.do_send(ProbeNow(channel_id.to_string()));
        true
    }

    /// The router is stopping: every actor retires. Answers them all, the ones retired earlier
    /// and still finishing included, to wait for.
    pub fn retire_all(&mut self) -> Vec<ChannelActor> {
        let mut actors: Vec<ChannelActor> = self.slots.values().map(|slot| slot.actor.clone()).collect();
        actors.extend(self.retired.iter().filter(|actor| actor.connected()).cloned());
        for actor in &actors {
            actor.retire.do_send(Retire);
        }
        actors
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use actix_web::web::Bytes;

    use super::*;
    use crate::channels::ChannelKind;
    use crate::domain::attempt::Trigger;
    use crate::domain::channel::{CustomHeaders, SigningSecret};

    type Log = Arc<Mutex<Vec<String>>>;

    /// Stands in for a DeliveryActor: writes down what it is told, and stops when retired.
    struct Recorder {
        channel_id: String,
        log: Log,
    }

    impl Recorder {
        fn note(&self, what: String) {
            self.log.lock().unwrap().push(format!("{} {what}", self.channel_id));
        }
    }

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<Deliver> for Recorder {
        type Result = ();
        fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
            let ids: Vec<String> = msg.0.into_iter().map(|e| e.delivery_id).collect();
            self.note(format!("deliver {}", ids.join(",")));
        }
    }

    impl Handler<Wake> for Recorder {
        type Result = ();
        fn handle(&mut self, _: Wake, _: &mut Context<Self>) {
            self.note("wake".into());
        }
    }

    impl Handler<Reconfigure> for Recorder {
        type Result = ();
        fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
            self.note(format!("reconfigure {}", msg.0.url));
        }
    }

    impl Handler<ProbeNow> for Recorder {
        type Result = bool;
        fn handle(&mut self, _: ProbeNow, _: &mut Context<Self>) -> bool {
            self.note("probe".into());
            true
        }
    }

    impl Handler<Retire> for Recorder {
        type Result = ();
        fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
            self.note("retire".into());
            ctx.stop();
        }
    }

    impl Handler<ManualAttempt> for Recorder {
        type Result = ();
        fn handle(&mut self, msg: ManualAttempt, _: &mut Context<Self>) {
            self.note(format!("manual {}", msg.succeeded));
        }
    }

    fn target(channel_id: &str, url: &str) -> Target {
        Target::new(channel_id.into(), ChannelKind::WEBHOOK, url.into(), CustomHeaders::default(), vec![(SigningSecret::generate(), None)], Default::default()).unwrap()
    }

    fn envelope(delivery_id: &str) -> Envelope {
        Envelope { delivery_id: delivery_id.into(), event_id: "evt_1".into(), payload: Bytes::from_static(b"{}"), trigger: Trigger::Scheduled }
    }

    async fn told(log: &Log, expected: &[&str]) {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut seen = log.lock().unwrap().clone();
            seen.sort();
            let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            want.sort();
            if seen == want {
                return;
            }
            assert!(std::time::Instant::now() < give_up, "the actors were told {seen:?}, not {want:?}");
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[actix_web::test]
    async fn channels_get_an_actor_when_enabled_are_reconfigured_when_changed_and_retired_when_gone() {
        let log = Log::default();
        let recorded = Arc::clone(&log);
        let start: Start = Box::new(move |target: Target, health: Health| {
            recorded.lock().unwrap().push(format!("{} start {}", target.channel_id, health.consecutive_failures));
            ChannelActor::of(Recorder { channel_id: target.channel_id, log: Arc::clone(&recorded) }.start())
        });
        let mut actors = ChannelActors::new(start, RetrySupervisor::new(None).start());
        let health = HashMap::from([("ch_b".to_string(), Health { consecutive_failures: 3, ..Health::default() })]);
        actors.apply(vec![target("ch_a", "http://127.0.0.1:1/a"), target("ch_b", "http://127.0.0.1:1/b")], health);
        assert!(actors.serves("ch_a") && actors.serves("ch_b") && !actors.serves("ch_c"));

        actors.deliver(HashMap::from([("ch_a", vec![envelope("dlv_1"), envelope("dlv_2")]), ("ch_c", vec![envelope("dlv_3")])]));
        actors.wake("ch_b");
        actors.manual_attempt(ManualAttempt { channel_id: "ch_b".into(), succeeded: true, started_at: 0 });
        told(&log, &["ch_a start 0", "ch_b start 3", "ch_a deliver dlv_1,dlv_2", "ch_b wake", "ch_b manual true"]).await;

        // ch_a's URL changed and ch_b was disabled: one is told, the other retires and stops.
        log.lock().unwrap().clear();
        actors.apply(vec![target("ch_a", "http://127.0.0.1:1/a2")], HashMap::new());
        actors.deliver(HashMap::from([("ch_b", vec![envelope("dlv_4")])]));
        told(&log, &["ch_a reconfigure http://127.0.0.1:1/a2", "ch_b retire"]).await;
        assert!(!actors.serves("ch_b"));

        // Stopping: every actor still running retires.
        log.lock().unwrap().clear();
        let waited = actors.retire_all();
        told(&log, &["ch_a retire"]).await;
        assert_eq!(waited.len(), 1);
    }
}
