//! Every message the actors exchange, kept together.

use actix::prelude::*;
use actix_web::web::Bytes;

use crate::domain::attempt::Trigger;
use crate::domain::event::NewEvent;
use crate::channels::Target;
use crate::store::events::Ingested;
use crate::store::StoreError;

/// One delivery ready to send: the envelope of an (event, channel) pair.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub delivery_id: String,
    pub event_id: String,
    /// The payload bytes, shared by every channel the event goes to.
    pub payload: Bytes,
    /// `Manual` for a bulk redelivery: one attempt, no retries after it.
    pub trigger: Trigger,
}

/// Match, store and dispatch a batch of events; answers once the batch is committed.
#[derive(Message)]
#[rtype(result = "Result<Vec<Ingested>, StoreError>")]
pub struct Ingest {
    pub events: Vec<NewEvent>,
    /// Whether errors name fields as `events[i].…`.
    pub is_batch: bool,
}

/// Reload rules and channels from the database and start, reconfigure or retire delivery actors.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Reload;

/// Freshly committed deliveries for a channel's actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<Envelope>);

/// Something is due in the database for this channel: look.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// The channel's URL, headers or secrets changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub Target);

/// The channel was disabled or deleted: stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// The router is stopping: no new attempts; the attempts in flight finish and are recorded,
/// until `deadline`. Answers how many channels still had attempts unfinished or unrecorded then
/// (their deliveries stay pending and resume at the next start).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown {
    pub deadline: std::time::Instant,
}

/// Wake whichever actor serves `channel_id` no later than `at` (Unix ms).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ScheduleWake {
    pub channel_id: String,
    pub at: i64,
}

/// From now on this actor serves the channel: timers of the channel wake it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ServeChannel {
    pub channel_id: String,
    pub actor: Recipient<Wake>,
}

/// No actor serves the channel any more (disabled or deleted): cancel its timer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetChannel(pub String);

/// A channel's actor disabled its channel (410 Gone, or failing for `DISABLE_AFTER`); the
/// change is committed. The RuleMatcher tells people (`router.channel_disabled`) and reloads.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelDisabled {
    pub channel_id: String,
    pub channel_name: String,
    pub reason: String,
}

/// A person's attempt at a channel (Redeliver or Test) ended: it went past the circuit breaker,
/// and its outcome counts in the channel's health like any attempt, so a success closes an open
/// circuit and the backlog flows at once.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct ManualAttempt {
    pub channel_id: String,
    pub succeeded: bool,
    pub started_at: i64,
}

/// A person pressed **Probe now**: the channel's open circuit goes half-open at once, and its
/// next due delivery is the probe (the path a cooldown's end takes). The RuleMatcher answers
/// whether an actor of this instance serves the channel.
#[derive(Message, Clone)]
#[rtype(result = "bool")]
pub struct ProbeNow(pub String);

/// Deliveries of these channels are due now: wake their actors.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WakeChannels(pub Vec<String>);

