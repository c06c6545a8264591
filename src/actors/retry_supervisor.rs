//! RetrySupervisor: the backoff timers. It holds at most one timer per channel, for the earliest
//! instant something of that channel falls due, so memory does not grow with the number of
//! waiting deliveries: the deliveries themselves wait in the database with their
//! `next_attempt_at`. Timers are cancellable (the `SpawnHandle` is kept) and rebuilt from the
//! database: each DeliveryActor, when it starts, reads its channel's earliest pending retry and
//! schedules it here, and every fetch schedules the next one.
//!
//! A timer belongs to the channel, not to an actor: when it fires it wakes whichever actor serves
//! the channel *now* (the RuleMatcher says which, with [`ServeChannel`] and [`ForgetChannel`]).
//! An actor that retired while an attempt was in flight may ask for a wake-up after its successor
//! started; that wake-up reaches the successor. A channel no actor serves (disabled) wakes
//! nobody; its successor, when it is enabled again, finds what is due in the database.
//!
//! With several instances on one database a retry may be scheduled by another instance, or a
//! dead instance's lease may run out, so each channel is woken to look as often as the store
//! says (`Store::due_sweep`; its fetch leases only what no live instance holds).

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{ForgetChannel, ScheduleWake, ServeChannel, Wake};
use crate::domain::time::now_ms;

#[derive(Default)]
pub struct RetrySupervisor {
    timers: HashMap<String, (i64, SpawnHandle)>,
    serving: HashMap<String, Recipient<Wake>>,
    /// How often every channel looks for due deliveries no timer here knows of, if ever.
    sweep: Option<Duration>,
}

impl RetrySupervisor {
    /// `sweep`: how often every channel looks for due deliveries anyway (`Store::due_sweep`).
    pub fn new(sweep: Option<Duration>) -> Self {
        Self { sweep, ..Self::default() }
    }
}

impl Actor for RetrySupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.sweep {
            ctx.run_interval(every, |act, _| {
                for actor in act.serving.values() {
                    actor.do_send(Wake);
                }
            });
        }
    }
}

impl Handler<ScheduleWake> for RetrySupervisor {
    type Result = ();

    fn handle(&mut self, msg: ScheduleWake, ctx: &mut Context<Self>) {
        if let Some((due, handle)) = self.timers.get(&msg.channel_id) {
            if *due <= msg.at {
                return;
            }
            ctx.cancel_future(*handle);
        }
        let delay = Duration::from_millis((msg.at - now_ms()).max(0) as u64);
        let channel_id = msg.channel_id.clone();
        let handle = ctx.run_later(delay, move |act, _| {
            act.timers.remove(&channel_id);
            if let Some(actor) = act.serving.get(&channel_id) {
                actor.do_send(Wake);
            }
        });
        self.timers.insert(msg.channel_id, (msg.at, handle));
    }
}

impl Handler<ServeChannel> for RetrySupervisor {
    type Result = ();

    fn handle(&mut self, msg: ServeChannel, _: &mut Context<Self>) {
        self.serving.insert(msg.channel_id, msg.actor);
    }
}

impl Handler<ForgetChannel> for RetrySupervisor {
    type Result = ();

    fn handle(&mut self, msg: ForgetChannel, ctx: &mut Context<Self>) {
        self.serving.remove(&msg.0);
        if let Some((_, handle)) = self.timers.remove(&msg.0) {
            ctx.cancel_future(handle);
        }
    }
}
