//! GroupFlusher: sends each open group's collected events as one notification when its
//! `flush_at` comes (SPEC section 16). The flush itself is one write (`groups::flush_due`); this
//! actor only keeps one timer, for the earliest flush it knows of, and hands the notifications
//! it made to their channels' actors.
//!
//! The timer is rebuilt from the database: at start (a flush missed while no instance ran runs
//! then), after every flush (the next `flush_at` left), and, with several instances, every
//! `Store::routing_watch` (groups other instances opened, or whose instance died). Groups this
//! instance opens are reported by the rule matcher ([`GroupsOpened`]).

use std::time::Duration;

use actix::prelude::*;

use super::messages::WakeChannels;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::time::now_ms;
use crate::metrics::Metrics;
use crate::store::{groups, Store};

/// Groups flushed in one write; more due are flushed by the next write at once.
pub const FLUSH_BATCH: i64 = 64;

/// New groups were opened: their flush times.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GroupsOpened(pub Vec<i64>);

/// The router is stopping: flush nothing more (what is due is flushed at the next start, or by
/// another instance).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopFlushing;

pub struct GroupFlusher {
    store: Store,
    wake: Recipient<WakeChannels>,
    metrics: std::sync::Arc<Metrics>,
    /// The timer for the earliest known flush, and when that is.
    timer: Option<(SpawnHandle, i64)>,
    flushing: bool,
    /// A flush fell due while one ran: another follows at once.
    again: bool,
}

impl GroupFlusher {
    pub fn new(store: Store, wake: Recipient<WakeChannels>, metrics: std::sync::Arc<Metrics>) -> Self {
        Self { store, wake, metrics, timer: None, flushing: false, again: false }
    }

    /// Sets the timer for `at` unless it is already set for an earlier time.
    fn schedule(&mut self, at: i64, ctx: &mut Context<Self>) {
        if let Some((handle, current)) = self.timer {
            if current <= at {
                return;
            }
            ctx.cancel_future(handle);
        }
        let delay = Duration::from_millis((at - now_ms()).max(0) as u64);
        let handle = ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.flush(ctx);
        });
        self.timer = Some((handle, at));
    }

    /// Reads the earliest flush time from the database and sets the timer for it.
    fn look(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        ctx.spawn(async move { store.read(groups::next_flush_at).await }.into_actor(self).map(|result, act, ctx| match result {
            Ok(Some(at)) => act.schedule(at, ctx),
            Ok(None) => {}
            Err(err) => {
                log::warn!("cannot read when the next group flush is due (trying again in 1 s): {err}");
                act.schedule(now_ms() + 1_000, ctx);
            }
        }));
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing {
            self.again = true;
            return;
        }
        self.flushing = true;
        self.again = false;
        let store = self.store.clone();
        ctx.spawn(async move { store.flush_groups(FLUSH_BATCH).await }.into_actor(self).map(|result, act, ctx| {
            act.flushing = false;
            match result {
                Ok(flushed) => {
                    let mut channels: Vec<String> = Vec::new();
                    for (_, channel_id) in &flushed.notifications {
                        act.metrics.deliveries.with_label_values(&[channel_id, DeliveryStatus::Pending.as_str()]).inc();
                        if !channels.contains(channel_id) {
                            channels.push(channel_id.clone());
                        }
                    }
                    for (_, channel_id) in &flushed.revived {
                        act.metrics.deliveries.with_label_values(&[channel_id, DeliveryStatus::Pending.as_str()]).inc();
                        if !channels.contains(channel_id) {
                            channels.push(channel_id.clone());
                        }
                    }
                    for channel_id in &flushed.silenced {
                        act.metrics.deliveries.with_label_values(&[channel_id, DeliveryStatus::Silenced.as_str()]).inc();
                    }
                    if !channels.is_empty() {
                        act.wake.do_send(WakeChannels(channels));
                    }
                    let full = act.again || flushed.notifications.len() + flushed.closed >= FLUSH_BATCH as usize;
                    match flushed.next_at {
                        Some(_) if full => act.schedule(now_ms(), ctx),
                        Some(at) => act.schedule(at, ctx),
                        None => {}
                    }
                }
                Err(err) => {
                    act.again = false;
                    log::error!("flushing due groups failed, retrying in 1 s: {err}");
                    act.schedule(now_ms() + 1_000, ctx);
                }
            }
        }));
    }
}

impl Actor for GroupFlusher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.look(ctx);
        if let Some(every) = self.store.routing_watch() {
            ctx.run_interval(every, |act, ctx| act.look(ctx));
        }
    }
}

impl Handler<GroupsOpened> for GroupFlusher {
    type Result = ();

    fn handle(&mut self, msg: GroupsOpened, ctx: &mut Context<Self>) {
        if let Some(at) = msg.0.into_iter().min() {
            self.schedule(at, ctx);
        }
    }
}

impl Handler<StopFlushing> for GroupFlusher {
    type Result = ();

    fn handle(&mut self, _: StopFlushing, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
