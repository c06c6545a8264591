//! Telling people that the router disabled a channel: when a channel's actor disables its
//! channel (`410 Gone`, or failing for `DISABLE_AFTER`), the RuleMatcher retires that actor and
//! stores the router's own event `router.channel_disabled`, routed through the rules like any
//! event, in the transaction that marks the channel as told: once, whichever instance gets there
//! first. One lost to a crash is found at the next reload (`RoutingSnapshot::untold`).

use actix::prelude::*;

use super::RuleMatcher;
use crate::actors::messages::{ChannelDisabled, Reload};
use crate::domain::event::{EventData, EventType, NewEvent, TenantRef};
use crate::domain::severity::Severity;
use crate::domain::time::now_ms;
use crate::store::events::MatchedEvent;
use crate::store::channels;

impl Handler<ChannelDisabled> for RuleMatcher {
    type Result = ();

    /// A channel was disabled by the router (committed): tell people through the rules, as the
    /// router's own event `router.channel_disabled`, and reload (retiring the channel's actor).
    /// The event is stored in the transaction that marks the channel as told, once, whichever
    /// instance gets there first; one lost to a crash is found at the next reload.
    fn handle(&mut self, msg: ChannelDisabled, ctx: &mut Context<Self>) {
        // The actor that gave up retires now, whatever the reload finds: if a person enabled the
        // channel again meanwhile, a fresh actor serves it.
        self.channels.retire(&msg.channel_id);
        if !self.telling.insert(msg.channel_id.clone()) {
            return;
        }
        ctx.notify(Reload);
        log::warn!("channel {} ({}) was disabled: {}", msg.channel_name, msg.channel_id, msg.reason);
        let mut data = serde_json::Map::new();
        data.insert("channel_id".into(), msg.channel_id.clone().into());
        data.insert("channel_name".into(), msg.channel_name.clone().into());
        data.insert("reason".into(), msg.reason.clone().into());
        let mut event = NewEvent {
            id: crate::domain::ids::new_id(crate::domain::ids::EVENT),
            event_type: EventType::parse("event", CHANNEL_DISABLED).expect("a valid event type"),
            occurred_at: now_ms(),
            severity: Severity::High,
            tenant: TenantRef::Router,
            data: EventData::new(&data),
        };
        // The disabled channel may still be in memory here; it is left out when the deliveries
        // are written (only enabled channels get them).
        let routes = self.route(&mut event, now_ms());
        let batch = vec![MatchedEvent { event, routes }];
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
