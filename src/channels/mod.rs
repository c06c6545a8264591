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
//! Everything about a type is said once, by its [`ChannelType`]: its name, its settings (with
//! labels and help for the admin page's form), whether it signs, whether its URL is secret, its
//! default rate limit, its requests and how its answers are judged. `GET /api/v1/channel-types`,
//! the admin page's forms, the OpenAPI text and parsing are derived from [`REGISTRY`].
//! To add a type: write one file implementing [`ChannelType`], and add one line to [`REGISTRY`]
//! (a test or an embedding program may [`register`] one at run time instead).

use std::time::Duration;

use actix_web::web::Bytes;
use serde_json::{Map, Value};

use crate::domain::channel::RateLimit;
use crate::domain::Invalid;
pub use target::Target;

pub mod sentinel;
pub mod slack;
pub mod splunk;
mod target;
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

/// One setting of a type, as named in the API and asked for by the admin page's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// What the form calls it.
    pub label: &'static str,
    /// One line of help under the field; empty for none.
    pub help: &'static str,
    /// What the empty field shows (often the default).
    pub placeholder: &'static str,
    /// A whole number rather than text.
    pub number: bool,
    /// Write-only: reads show only its last four characters.
    pub secret: bool,
    /// Must be given when the channel is created.
    pub required: bool,
    /// Changing it sends the type's credentials somewhere else, so they must be given again
    /// (Sentinel's `authority` and `directory_id`, like the URL).
    pub moves_credentials: bool,
}

impl Setting {
    /// An optional text setting; the builders below say the rest.
    pub const fn text(name: &'static str, label: &'static str) -> Self {
        Setting { name, label, help: "", placeholder: "", number: false, secret: false, required: false, moves_credentials: false }
    }

    pub const fn help(self, help: &'static str) -> Self {
        Setting { help, ..self }
    }

    pub const fn placeholder(self, placeholder: &'static str) -> Self {
        Setting { placeholder, ..self }
    }

    pub const fn number(self) -> Self {
        Setting { number: true, ..self }
    }

    pub const fn secret(self) -> Self {
        Setting { secret: true, ..self }
    }

    pub const fn required(self) -> Self {
        Setting { required: true, ..self }
    }

    pub const fn moves_credentials(self) -> Self {
        Setting { moves_credentials: true, ..self }
    }
}

/// The settings of a batching type (Splunk, Sentinel).
pub const BATCH_SETTINGS: [Setting; 2] = [
    Setting::text("batch_size", "Batch size").number().placeholder("100").help("Most deliveries in one request (1–1000)."),
    Setting::text("batch_wait", "Batch wait").placeholder("200ms").help("How long to wait to fill a batch (e.g. 200ms, 1s; at most 10s)."),
];

/// How a type is presented: its name in the API, and what the admin page's form says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// The `type` of its channels in the API and the database.
    pub name: &'static str,
    pub label: &'static str,
    /// One line under the form's URL field.
    pub help: &'static str,
    pub url_label: &'static str,
    pub url_placeholder: &'static str,
    /// The form offers custom headers (the API takes them for every type).
    pub headers_in_form: bool,
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
    /// Its name in the API and what the admin page's form says of it.
    fn presentation(&self) -> Presentation;

    /// Requests carry the Standard Webhooks signature (and the channel has a secret to show and
    /// rotate).
    fn signs(&self) -> bool {
        false
    }

    /// The URL itself is the credential (SPEC section 12): reads show only its scheme, host and
    /// the last four characters of its path.
    fn url_is_secret(&self) -> bool {
        false
    }

    /// The rate limit a new channel of this type gets when none is given (SPEC section 13).
    fn default_rate_limit(&self) -> Option<u32> {
        None
    }

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

/// Every channel type this release knows, in the order the API and the admin page list them:
/// the one place a type is registered.
pub const REGISTRY: &[&dyn ChannelType] = &[&webhook::Webhook, &slack::Slack, &teams::Teams, &splunk::Splunk, &sentinel::Sentinel];

/// Types added at run time (by a test, or a program embedding the router), after [`REGISTRY`].
static REGISTERED: std::sync::RwLock<Vec<&'static dyn ChannelType>> = std::sync::RwLock::new(Vec::new());

/// Adds a type for this process, listed after the built-in ones; a name already known is
/// refused (the first registration stands).
pub fn register(channel_type: &'static dyn ChannelType) -> Result<(), String> {
    let name = channel_type.presentation().name;
    // Checked and added under one lock: two registrations of one name cannot both pass.
    let mut registered = REGISTERED.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    if REGISTRY.iter().chain(registered.iter()).any(|t| t.presentation().name == name) {
        return Err(format!("a channel type named `{name}` is registered already"));
    }
    registered.push(channel_type);
    Ok(())
}

/// A channel's type: one of the registered [`ChannelType`]s. Two are equal when their names are.
#[derive(Clone, Copy)]
pub struct ChannelKind(&'static dyn ChannelType);

impl PartialEq for ChannelKind {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ChannelKind {}

impl std::hash::Hash for ChannelKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::fmt::Debug for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelKind({})", self.as_str())
    }
}

/// A stored channel whose type this release does not know (written by a newer release, or by a
/// type registered in another process): it is shown with this error and nothing is sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType(pub String);

impl std::fmt::Display for UnknownType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "this release does not know the channel type `{}`; nothing is sent to the channel until a release that does runs", crate::domain::tenant::clip(&self.0))
    }
}

impl ChannelKind {
    /// The plain webhook, the type a channel has when none is given.
    pub const WEBHOOK: ChannelKind = ChannelKind(&webhook::Webhook);

    /// Every type, in the order the API lists them.
    pub fn all() -> Vec<ChannelKind> {
        let registered = REGISTERED.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        REGISTRY.iter().chain(registered.iter()).map(|t| ChannelKind(*t)).collect()
    }

    /// The type's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        self.0.presentation().name
    }

    /// How requests of this type are made and judged.
    pub fn channel_type(self) -> &'static dyn ChannelType {
        self.0
    }

    /// The type named `value` in a request; `Err` names the types there are.
    pub fn parse(field: &str, value: &str) -> Result<Self, Invalid> {
        let all = Self::all();
        all.iter().copied().find(|kind| kind.as_str() == value).ok_or_else(|| {
            let names: Vec<String> = all.iter().map(|k| format!("`{}`", k.as_str())).collect();
            Invalid::new(field, format!("`{}` is not a channel type; use {}", crate::domain::tenant::clip(value), names.join(", ")))
        })
    }

    /// A stored type; one this release does not know fails closed ([`UnknownType`]).
    pub fn from_stored(value: &str) -> Result<Self, UnknownType> {
        Self::parse("type", value).map_err(|_| UnknownType(value.to_string()))
    }

    pub fn is_signed(self) -> bool {
        self.0.signs()
    }

    pub fn url_is_secret(self) -> bool {
        self.0.url_is_secret()
    }

    pub fn default_rate_limit(self) -> Option<RateLimit> {
        self.0.default_rate_limit().map(RateLimit::from_stored_u32)
    }
}

/// What reads put before the last four characters of a credential.
pub use crate::domain::channel::{masked, MASK};

/// The settings of a new channel (`current` is `None`) or of a changed one, merged and checked:
/// a setting given as `null` goes back to its default; a credential sent back masked, as reads
/// show it, keeps its value.
pub fn configure(kind: ChannelKind, given: Map<String, Value>, current: Option<&Config>) -> Result<Config, Invalid> {
    let channel_type = kind.channel_type();
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
    let settings = kind.channel_type().settings();
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
