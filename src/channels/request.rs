//! What a channel's type builds and the outbound exchange sends: the deliveries offered
//! ([`Item`]), the [`Request`] that carries as many of them as fit, and the [`Transport`] it
//! travels by. Each transport is one variant here and one file in `crate::outbound`; a type
//! picks its transport by the variant it builds, so a new one (email) touches no other type.
//! The helpers the types share to build bodies are here too.

use std::time::Duration;

use actix_web::web::Bytes;
use serde_json::Value;

/// One delivery going out: its message id (the event id), the delivery's own id, its payload
/// as stored, and for the types that keep incidents (SPEC section 17) the incident it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub msg_id: &'a str,
    pub delivery_id: &'a str,
    pub payload: &'a Bytes,
    pub incident: Option<&'a crate::domain::incident::IncidentView>,
}

impl<'a> Item<'a> {
    /// A delivery outside any incident.
    pub fn new(msg_id: &'a str, delivery_id: &'a str, payload: &'a Bytes) -> Self {
        Self { msg_id, delivery_id, payload, incident: None }
    }
}

/// When and from where a request is sent.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    /// Unix ms.
    pub now: i64,
    /// The router instance sending it (Splunk's `host`).
    pub host: &'a str,
}

/// A request ready to send, and how many of the items offered it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub transport: Transport,
    /// How many of the items offered the request carries, from the first (the rest did not fit
    /// under the type's body limit and wait for the next request). At least one.
    pub carries: usize,
}

/// How a request travels: one variant per transport the outbound exchange speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// An HTTP POST (`crate::outbound`'s `http`).
    Http(HttpPost),
    /// One mail message over SMTP (`crate::outbound`'s `smtp`).
    Email(Mail),
}

/// One mail message and the SMTP server it is handed to (the `email` type). The exchange
/// resolves the server under the outbound guard, connects to the address it checked, and turns
/// this into a multipart/alternative message (plain text and HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub server: MailServer,
    /// `<{delivery id}@{from domain}>`, with the angle brackets: the same for every attempt of a
    /// delivery, so a retried message is the same message.
    pub message_id: String,
    /// As sent (`Re: ` and the thread's subject for a reply).
    pub subject: String,
    pub from: String,
    pub to: Vec<String>,
    /// The first message of the incident's thread, when this one replies to it (`In-Reply-To`
    /// and `References`).
    pub in_reply_to: Option<String>,
    /// Its `Date` (Unix ms): when the attempt was built.
    pub date_ms: i64,
    /// The plain-text part.
    pub text: String,
    /// The HTML part: every piece of event data escaped, no remote image, no link.
    pub html: String,
}

/// How a message reaches its SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct MailServer {
    /// A host name or an IP address.
    pub host: String,
    pub port: u16,
    pub tls: MailTls,
    pub auth: MailAuth,
}

impl std::fmt::Debug for MailServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MailServer({}:{}, {:?}, {:?})", self.host, self.port, self.tls, self.auth)
    }
}

/// How the SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded by `STARTTLS` (port 587); a server that does not offer it is
    /// not sent to.
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: only to hosts `ALLOWED_TARGET_NETWORKS` allows.
    None,
}

/// How the router signs in to the SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub enum MailAuth {
    /// No sign-in (a relay that trusts the sender's address).
    None,
    /// `AUTH PLAIN` (or `LOGIN` where the server offers only that).
    Password { username: String, password: String },
    /// `AUTH XOAUTH2` as `username`, with the access token of the channel's client credentials.
    XOAuth2 { username: String },
}

impl std::fmt::Debug for MailAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailAuth::None => f.write_str("no auth"),
            MailAuth::Password { username, password } => write!(f, "{username} with password {}", crate::domain::channel::masked(password)),
            MailAuth::XOAuth2 { username } => write!(f, "{username} with XOAUTH2"),
        }
    }
}

/// An HTTP request, a POST unless a ticketing conversation says otherwise:
/// `Content-Type: application/json` (when it has a body), the router's `User-Agent`, the
/// channel's custom headers and any access token are added to it by the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPost {
    pub method: Method,
    /// Where it goes; `None`: the channel's URL as it is.
    pub url: Option<String>,
    pub body: Bytes,
    /// Headers of this type (for webhooks: the Standard Webhooks id, timestamp and signature).
    pub headers: Vec<(&'static str, String)>,
    /// The body as the delivery page may show it, when the body itself holds a credential
    /// (PagerDuty's `routing_key`): the same body with the credential masked. `None`: the body
    /// holds none and is shown as sent.
    pub shown_body: Option<Bytes>,
    /// The answer is read by the type (a ticket's id, its state, a search's results): up to
    /// [`ANSWER_BYTES`] of it are kept, not only the excerpt.
    pub reads_answer: bool,
    /// Never sent a second time within the attempt, even when the connection closed before any
    /// answer came (a ticket's create: it may have been made; the next attempt searches).
    pub once: bool,
}

/// Most bytes of an answer a type reads ([`HttpPost::reads_answer`]).
pub const ANSWER_BYTES: usize = 256 * 1024;

/// The HTTP method of a request: a delivery is a POST; a ticketing conversation also reads a
/// ticket (GET) and updates one (PATCH, ServiceNow's work notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    #[default]
    Post,
    Get,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Get => "GET",
            Method::Patch => "PATCH",
        }
    }
}

impl HttpPost {
    /// A request the channel's type reads the answer of: `method` to `url`, with a JSON body
    /// unless it has none (`Bytes::new()`).
    pub fn call(method: Method, url: String, body: Bytes, headers: Vec<(&'static str, String)>) -> Self {
        Self { method, url: Some(url), body, headers, shown_body: None, reads_answer: true, once: false }
    }
}

impl Request {
    /// The same request, its body shown as `shown_body` (see [`HttpPost::shown_body`]).
    pub fn shown_as(self, shown_body: Bytes) -> Self {
        match self.transport {
            Transport::Http(post) => Self { transport: Transport::Http(HttpPost { shown_body: Some(shown_body), ..post }), ..self },
            other => Self { transport: other, ..self },
        }
    }
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

/// An HTTP POST to the channel's URL carrying `carries` items.
pub fn post(url: Option<String>, body: Bytes, headers: Vec<(&'static str, String)>, carries: usize) -> Request {
    Request { transport: Transport::Http(HttpPost { method: Method::Post, url, body, headers, shown_body: None, reads_answer: false, once: false }), carries }
}

/// An HTTP POST to the channel's URL for the first item alone, for the types that send one
/// delivery per request.
pub fn single(body: Bytes, headers: Vec<(&'static str, String)>) -> Request {
    post(None, body, headers, 1)
}
