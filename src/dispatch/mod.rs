//! One dispatch path for every attempt at a channel. The DeliveryActor's scheduled and bulk
//! attempts, a person's Redeliver and the Test button go through the same steps (Svix's
//! prepare → call → handle): [`deliver_once`] sends one request as the channel's type builds it
//! and judges the answer; [`record`] stores the attempts it made, with the channel's health and
//! any decision to disable the channel, in one transaction; [`count`] counts what was committed
//! in the channel's metrics.
//!
//! The circuit breaker and the rate limit are the channel actor's (`actors::delivery`): a
//! person's attempt goes past them (a person asked), and its outcome reaches the actor
//! (`RouterHandle::manual_attempt`), so it counts in the channel's health like any other and a
//! successful Redeliver or Test closes an open circuit.

use std::sync::Arc;

mod tickets;
pub use tickets::{test as test_tickets, TicketTest};

use crate::channels::{Item, Target};
use crate::domain::attempt::AttemptOutcome;
use crate::domain::breaker::Health;
use crate::domain::incident::IncidentKey;
use crate::domain::retry::RetryPolicy;
use crate::domain::time::now_ms;
use crate::metrics::ChannelMetrics;
use crate::outbound::{Outbound, Sent};
use crate::store::attempts::{self, AttemptRecord, Recorded};
use crate::store::{Store, StoreError};

/// Sends one request carrying `items` (as many of them as the channel's type puts in one, from
/// the first) and says what happened: the outcome, and how many items the request carried.
/// Outside any incident: what a Test sends.
pub async fn deliver_once(outbound: &Outbound, target: &Target, items: &[Item<'_>]) -> Sent {
    outbound.send_batch(target, items).await
}

/// Delivers as [`deliver_once`] does; for a channel whose type keeps incidents (SPEC section 17)
/// the first item's incident is opened (or found) first, so its marker is stored before anything
/// is sent, and the type builds the request knowing it. If the incident cannot be opened nothing
/// is sent: the attempt fails with error kind `incident` and is retried.
///
/// `gather`: a scheduled attempt, whose note to a ticket may also carry the deliveries of its
/// incident waiting behind it (`Sent::also`); a person's Redeliver sends only what was asked.
pub async fn deliver(store: &Store, outbound: &Outbound, target: &Target, items: &[Item<'_>], gather: bool) -> Sent {
    let Some(settings) = target.incidents() else { return deliver_once(outbound, target, items).await };
    let first = items[0];
    let key = IncidentKey::of_payload(&serde_json::from_slice(first.payload).unwrap_or_default(), &settings.by);
    let (channel_id, window, now) = (target.channel_id.clone(), settings.reopen_window_ms, now_ms());
    match store.write(move |conn| crate::store::incidents::open(conn, &channel_id, &key, now, window)).await {
        Ok(incident) => match target.tickets() {
            Some(system) => tickets::converse(store, outbound, target, system, Item { incident: Some(&incident), ..first }, incident.clone(), gather).await,
            None => deliver_once(outbound, target, &[Item { incident: Some(&incident), ..first }]).await,
        },
        Err(err) => {
            log::warn!("channel {}: the incident of delivery {} could not be opened: {err}", target.channel_id, first.delivery_id);
            let why = format!("the delivery's incident could not be opened in the router's database ({err}); nothing was sent");
            let outcome = crate::outbound::failure(crate::domain::retry::ErrorKind::Incident, why);
            Sent { outcome: AttemptOutcome { started_at: now, ..outcome }, carried: 1, request: None, incident: None, also: Vec::new() }
        }
    }
}

/// What one recording write stores.
#[derive(Debug, Default)]
pub struct Write {
    pub records: Vec<AttemptRecord>,
    /// The channel's circuit-breaker health, when it changed.
    pub health: Option<Health>,
    /// The channel is to be disabled, for this reason.
    pub disable: Option<String>,
}

/// What a recording write committed.
#[derive(Debug)]
pub struct Written {
    /// The deliveries as recorded (one that was purged meanwhile is missing).
    pub recorded: Vec<Recorded>,
    /// The channel's name, if this write disabled it (no one had first).
    pub disabled: Option<String>,
}

/// Records `write` for the channel in one transaction; answers once it is committed.
pub async fn record(store: &Store, channel_id: &str, write: &Write, retry: Arc<RetryPolicy>) -> Result<Written, StoreError> {
    // The write runs on the blocking pool, which needs its inputs owned.
    let (channel_id, records, health, disable, retry) =
        (channel_id.to_string(), write.records.clone(), write.health.clone(), write.disable.clone(), retry);
    store
        .write(move |conn| {
            let now = now_ms();
            let recorded = attempts::record(conn, &records, &retry, now)?;
            if let Some(health) = &health {
                crate::store::channels::save_health(conn, &channel_id, health, now)?;
            }
            let disabled = match &disable {
                Some(reason) => crate::store::channels::disable_automatically(conn, &channel_id, reason, now)?,
                None => None,
            };
            Ok(Written { recorded, disabled })
        })
        .await
}

/// Counts committed attempts in the channel's series: each attempt whose delivery was stored,
/// and each delivery that entered a new status.
pub fn count(series: &mut ChannelMetrics, records: &[AttemptRecord], recorded: &[Recorded]) {
    for done in recorded.iter().filter(|r| r.changed) {
        series.delivery(&done.status);
    }
    let stored: std::collections::HashSet<&str> = recorded.iter().map(|r| r.delivery_id.as_str()).collect();
    for record in records.iter().filter(|r| stored.contains(r.delivery_id.as_str())) {
        series.attempt(&record.outcome);
    }
}
