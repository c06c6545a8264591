//! RetrySupervisor: the backoff timers. It holds at most one timer per channel, for the earliest
//! instant something of that channel falls due, so memory does not grow with the number of
//! waiting deliveries: the deliveries themselves wait in the database with their
//! `next_attempt_at`. When a timer fires, the channel's DeliveryActor is woken and fetches what
//! is due. Timers are cancellable (the `SpawnHandle` is kept) and rebuilt from the database: each
//! DeliveryActor, when it starts, reads its channel's earliest pending retry and schedules it here.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{ForgetChannel, ScheduleWake, Wake};
use crate::domain::time::now_ms;

#[derive(Default)]
pub struct RetrySupervisor {
    timers: HashMap<String, (i64, SpawnHandle)>,
}

impl Actor for RetrySupervisor {
    type Context = Context<Self>;
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
        let recipient = msg.recipient;
        let handle = ctx.run_later(delay, move |act, _| {
            act.timers.remove(&channel_id);
            recipient.do_send(Wake);
        });
        self.timers.insert(msg.channel_id, (msg.at, handle));
    }
}

impl Handler<ForgetChannel> for RetrySupervisor {
    type Result = ();

    fn handle(&mut self, msg: ForgetChannel, ctx: &mut Context<Self>) {
        if let Some((_, handle)) = self.timers.remove(&msg.0) {
            ctx.cancel_future(handle);
        }
    }
}
