//! Channel types: how a delivery becomes a request and how the answer is judged, one file per
//! type. The event payload (SPEC section 4) is stored once at ingestion; each type turns it into
//! the body its receiver expects ([`ChannelType::request`]) and says what an answer that arrived
//! means ([`ChannelType::judge`]). The outbound exchange (`crate::outbound`) sends what the type
//! built, applies the outbound guard and the timeout, and reads `Retry-After`, the same for every
//! type; the actors never look at the type.
//!
//! A new type is one new file implementing [`ChannelType`], one variant of
//! [`ChannelKind`](crate::domain::channel::ChannelKind) and one line in [`of`].

use actix_web::web::Bytes;

use crate::domain::channel::ChannelKind;
use crate::outbound::Target;

pub mod slack;
pub mod teams;
pub mod text;
pub mod webhook;

/// A request ready to send to a channel's URL: `Content-Type: application/json`, the router's
/// `User-Agent` and the channel's custom headers are added to it by the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub body: Bytes,
    /// Headers of this type (for webhooks: the Standard Webhooks id, timestamp and signature).
    pub headers: Vec<(&'static str, String)>,
}

/// What an answer with a status line means, as the channel's type reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Delivered,
    /// Not delivered; another attempt may succeed, so it follows the retry schedule.
    Retry(String),
    /// Not delivered, and no later attempt can succeed: the delivery fails now.
    Final(String),
    /// The receiver is gone for good: the channel is disabled for this reason (SPEC section 13)
    /// and the delivery waits, pending, until a person enables the channel again.
    Disable(String),
}

/// One channel type.
pub trait ChannelType: Sync {
    /// The request that delivers `payload` (the event's section 4 payload, as stored) under the
    /// message id `msg_id` at `now` (Unix ms).
    fn request(&self, target: &Target, msg_id: &str, payload: &Bytes, now: i64) -> Request;

    /// What an answer means: `status` and the first bytes of the body, as text. By default (every
    /// receiver that speaks plain HTTP): a 2xx is delivered, `410 Gone` disables the channel, any
    /// other status is retried.
    fn judge(&self, status: u16, body: &str) -> Verdict {
        let _ = body;
        standard_verdict(status)
    }
}

/// The verdict of plain HTTP: 2xx delivered, `410 Gone` disables, anything else is retried.
pub fn standard_verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Disable("the receiver answered 410 Gone: the URL is gone for good".into()),
        _ => Verdict::Retry(String::new()),
    }
}

/// The type behind a channel's `type`.
pub fn of(kind: ChannelKind) -> &'static dyn ChannelType {
    match kind {
        ChannelKind::Webhook => &webhook::Webhook,
        ChannelKind::Slack => &slack::Slack,
        ChannelKind::Teams => &teams::Teams,
    }
}

/// The stored payload as JSON, for the types that render it. A payload is always JSON (the
/// router wrote it); should one not be, it renders as an event without fields.
pub fn parse_payload(payload: &Bytes) -> serde_json::Value {
    serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null)
}

/// A rendered body as bytes.
pub fn json_body(body: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(body).expect("a JSON value always serialises"))
}
