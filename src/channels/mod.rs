//! Channel types: how deliveries become a request and how the answer is judged, one file per
//! type. The event payload (SPEC section 4) is stored once at ingestion; each type turns one
//! payload, or a batch of them, into the body its receiver expects ([`ChannelType::request`]) and
//! says what an answer that arrived means ([`ChannelType::judge`]). The outbound exchange
//! (`crate::outbound`) sends what the type built, applies the outbound guard and the timeout,
//! fetches the access token a type asks for, and reads `Retry-After`, the same for every type;
//! the actors only learn how many deliveries one request may carry ([`Batching`]).
//!
//! A type's own settings (Splunk's token and index, Sentinel's app registration) are a JSON
//! object stored with the channel: [`configure`] checks a create or a change against the type's
//! [`Setting`]s, [`shown`] masks its credentials for reads.
//!
//! A new type is one new file implementing [`ChannelType`], one variant of
//! [`ChannelKind`](crate::domain::channel::ChannelKind) and one line in [`of`].

use std::time::Duration;

use actix_web::web::Bytes;
use serde_json::{Map, Value};

use crate::domain::channel::ChannelKind;
use crate::domain::Invalid;
use crate::outbound::Target;

pub mod sentinel;
pub mod slack;
pub mod splunk;
pub mod teams;
pub mod text;
pub mod token;
pub mod webhook;

/// A type's settings, as stored: a JSON object.
pub type Config = Map<String, Value>;

/// One delivery going out: its message id (the event id) and its payload as stored.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub msg_id: &'a str,
    pub payload: &'a Bytes,
}

/// When and from where a request is sent.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    /// Unix ms.
    pub now: i64,
    /// The router instance sending it (Splunk's `host`).
    pub host: &'a str,
}

/// A request ready to send: `Content-Type: application/json`, the router's `User-Agent`, the
/// channel's custom headers and any access token are added to it by the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where it goes; `None`: the channel's URL as it is.
    pub url: Option<String>,
    pub body: Bytes,
    /// Headers of this type (for webhooks: the Standard Webhooks id, timestamp and signature).
    pub headers: Vec<(&'static str, String)>,
    /// How many of the items offered the body carries, from the first (the rest did not fit
    /// under the type's body limit and wait for the next request). At least one.
    pub carries: usize,
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
    /// The request was too large (`413`): a batch is split in two and both halves are sent at
    /// once; a single delivery that is still too large fails.
    TooLarge,
    /// The access token was refused (`401`): a new one is fetched, once, and the request sent
    /// again (types with credentials only; for the others it is retried).
    Unauthorized,
}

/// How many deliveries one request may carry, and how long the actor waits to fill one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub size: usize,
    pub wait: Duration,
}

impl Batching {
    /// One delivery per request, sent at once.
    pub const ONE: Batching = Batching { size: 1, wait: Duration::ZERO };
}

/// One setting of a type, as named in the API.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    /// Write-only: reads show only its last four characters.
    pub secret: bool,
    /// Must be given when the channel is created.
    pub required: bool,
}

/// An OAuth 2.0 client-credentials grant a type needs a token from (SPEC section 12: Sentinel).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCredentials({} as {}, secret {})", self.token_url, self.client_id, masked(&self.client_secret))
    }
}

/// One channel type.
pub trait ChannelType: Sync {
    /// The settings it takes besides `url`, `headers` and `rate_limit_per_second`.
    fn settings(&self) -> &'static [Setting] {
        &[]
    }

    /// Checks a whole configuration (after a change is merged into the stored one) and fills in
    /// the defaults; `Err` names the field and what to fix.
    fn check(&self, config: Config) -> Result<Config, Invalid> {
        Ok(config)
    }

    /// What the API calls the channel's URL (`endpoint` for Sentinel).
    fn url_field(&self) -> &'static str {
        "url"
    }

    /// How many deliveries one request carries.
    fn batching(&self, config: &Config) -> Batching {
        let _ = config;
        Batching::ONE
    }

    /// The client credentials a request needs a token from, if any.
    fn credentials(&self, config: &Config) -> Option<ClientCredentials> {
        let _ = config;
        None
    }

    /// The request that delivers `items` (each an event's section 4 payload, as stored), as many
    /// of them as fit, from the first.
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request;

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
        ChannelKind::Splunk => &splunk::Splunk,
        ChannelKind::Sentinel => &sentinel::Sentinel,
    }
}

/// What reads put before the last four characters of a credential.
pub use crate::domain::channel::{masked, MASK};

/// The settings of a new channel (`current` is `None`) or of a changed one, merged and checked:
/// a setting given as `null` goes back to its default; a credential sent back masked, as reads
/// show it, keeps its value.
pub fn configure(kind: ChannelKind, given: Map<String, Value>, current: Option<&Config>) -> Result<Config, Invalid> {
    let channel_type = of(kind);
    let settings = channel_type.settings();
    let mut config = current.cloned().unwrap_or_default();
    for (name, value) in given {
        let Some(setting) = settings.iter().find(|s| s.name == name) else {
            let known: Vec<String> = settings.iter().map(|s| format!("`{}`", s.name)).collect();
            let takes = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(Invalid::new(
                crate::domain::tenant::clip(&name),
                format!("is not a setting of {} channels (they take {takes})", kind.as_str()),
            ));
        };
        match value {
            Value::Null if setting.required => {
                return Err(Invalid::new(name, format!("is required for {} channels and cannot be removed", kind.as_str())))
            }
            Value::Null => {
                config.remove(&name);
            }
            Value::String(text) if setting.secret && text.contains(MASK) => {
                let kept = config.get(&name).and_then(Value::as_str).is_some_and(|stored| masked(stored) == text);
                if !kept {
                    return Err(Invalid::new(name, format!("holds `{MASK}`, the mask reads show; send the whole new value, or leave it out to keep the current one")));
                }
            }
            value => {
                config.insert(name, value);
            }
        }
    }
    for setting in settings.iter().filter(|s| s.required) {
        if !config.contains_key(setting.name) {
            return Err(Invalid::new(setting.name, format!("is required for {} channels", kind.as_str())));
        }
    }
    channel_type.check(config)
}

/// The settings as reads show them: credentials masked.
pub fn shown(kind: ChannelKind, config: &Config) -> Config {
    let settings = of(kind).settings();
    config
        .iter()
        .map(|(name, value)| {
            let secret = settings.iter().any(|s| s.name == name && s.secret);
            match value.as_str() {
                Some(text) if secret => (name.clone(), Value::String(masked(text))),
                _ => (name.clone(), value.clone()),
            }
        })
        .collect()
}

/// The stored payload as JSON, for the types that render it. A payload is always JSON (the
/// router wrote it); should one not be, it renders as an event without fields.
pub fn parse_payload(payload: &Bytes) -> Value {
    serde_json::from_slice(payload).unwrap_or(Value::Null)
}

/// A rendered body as bytes.
pub fn json_body(body: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(body).expect("a JSON value always serialises"))
}

/// The rendered items joined by `separator` between `open` and `close`, as many as fit in `max`
/// bytes from the first (at least one, whatever its size), and how many that is. The body of
/// the batching types: Splunk's concatenated envelopes, Sentinel's array of records.
pub fn pack(items: &[Item<'_>], max: usize, (open, separator, close): (&[u8], &[u8], &[u8]), render: impl Fn(&Item<'_>) -> Vec<u8>) -> (Bytes, usize) {
    let mut body = open.to_vec();
    let mut carries = 0;
    for item in items {
        let rendered = render(item);
        if carries > 0 && body.len() + separator.len() + rendered.len() + close.len() > max {
            break;
        }
        if carries > 0 {
            body.extend_from_slice(separator);
        }
        body.extend_from_slice(&rendered);
        carries += 1;
    }
    body.extend_from_slice(close);
    (Bytes::from(body), carries)
}

/// A request for the first item alone, for the types that send one delivery per request.
pub fn single(body: Bytes, headers: Vec<(&'static str, String)>) -> Request {
    Request { url: None, body, headers, carries: 1 }
}

/// Shared setting checks of the batching types.
pub mod check {
    use std::time::Duration;

    use serde_json::Value;

    use super::{Batching, Config};
    use crate::domain::Invalid;

    /// Most deliveries one request may carry.
    pub const MAX_BATCH_SIZE: u64 = 1000;
    /// Longest `batch_wait`.
    pub const MAX_BATCH_WAIT: Duration = Duration::from_secs(10);
    /// Defaults: 100 deliveries, 200 ms.
    pub const DEFAULT_BATCHING: Batching = Batching { size: 100, wait: Duration::from_millis(200) };

    /// A non-empty text of at most `max` characters, without control characters.
    pub fn text(config: &Config, name: &str, max: usize) -> Result<Option<String>, Invalid> {
        match config.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control) => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(Invalid::new(name, format!("must be a text of 1 to {max} characters, without line breaks"))),
        }
    }

    /// `batch_size` and `batch_wait`, with their defaults filled in.
    pub fn batching(config: &mut Config) -> Result<(), Invalid> {
        let size = match config.get("batch_size") {
            None => DEFAULT_BATCHING.size as u64,
            Some(v) => v.as_u64().filter(|n| (1..=MAX_BATCH_SIZE).contains(n)).ok_or_else(|| {
                Invalid::new("batch_size", format!("must be a whole number of deliveries per request from 1 to {MAX_BATCH_SIZE}; got {v}"))
            })?,
        };
        let wait = match config.get("batch_wait") {
            None => DEFAULT_BATCHING.wait,
            Some(v) => v
                .as_str()
                .and_then(|s| humantime::parse_duration(s).ok())
                .filter(|d| *d <= MAX_BATCH_WAIT)
                .ok_or_else(|| Invalid::new("batch_wait", format!("must be a duration such as `200ms` or `1s`, at most 10s; got {v}")))?,
        };
        config.insert("batch_size".into(), Value::from(size));
        config.insert("batch_wait".into(), Value::from(humantime::format_duration(wait).to_string()));
        Ok(())
    }

    /// The batching of a checked configuration.
    pub fn batching_of(config: &Config) -> Batching {
        let size = config.get("batch_size").and_then(Value::as_u64).map_or(DEFAULT_BATCHING.size, |n| n as usize);
        let wait = config
            .get("batch_wait")
            .and_then(Value::as_str)
            .and_then(|s| humantime::parse_duration(s).ok())
            .unwrap_or(DEFAULT_BATCHING.wait);
        Batching { size: size.max(1), wait }
    }
}
