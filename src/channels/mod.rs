//! Channel types: how deliveries become a request and how the answer is judged, one file per
//! type. To add a type: write one file implementing [`ChannelType`] (and [`Prepared`] for its
//! parsed settings), and add one line to [`REGISTRY`] (a test or an embedding program may
//! [`register`] one at run time instead).
//!
//! Everything about a type is said once, by its [`ChannelType`]: its name, its settings (with
//! labels and help for the admin page's form), whether it signs, whether its URL is secret, its
//! default rate limit, how its settings parse and how its answers are judged.
//! `GET /api/v1/channel-types`, the admin page's forms, the OpenAPI text and parsing are derived
//! from [`REGISTRY`] (`registry`).
//!
//! A type's own settings (Splunk's token and index, Sentinel's app registration) are a JSON
//! object stored with the channel (`settings`). The type parses them into its own typed form,
//! a [`Prepared`], when the channel is saved ([`configure`]) and when it is loaded into a
//! [`Target`]; requests are built from that form, never from the JSON. The event payload (SPEC
//! section 4) is stored once at ingestion; a prepared channel turns one payload, or a batch of
//! them, into the [`Request`] its receiver expects, sent by the [`Transport`] it names
//! (`request`).
//!
//! The outbound exchange (`crate::outbound`) sends what was built, applies the outbound guard
//! and the timeout, fetches the access token a type asks for, and reads `Retry-After`, the same
//! for every type; the actors only learn how many deliveries one request may carry
//! ([`Batching`]). Dependencies run one way: `outbound` and the actors use this module, which
//! uses only `crate::domain`.

use std::sync::Arc;

pub use crate::domain::attempt::Verdict;
/// What reads put before the last four characters of a credential.
pub use crate::domain::channel::{masked, MASK};
use crate::domain::Invalid;
pub use registry::{register, ChannelKind, UnknownType, REGISTRY};
pub use request::{json_body, pack, parse_payload, post, single, Batching, HttpPost, Item, Mail, MailAuth, MailServer, MailTls, Method, Request, Sending, Transport, ANSWER_BYTES};
pub use settings::{configure, shown, Config, Setting, BATCH_SETTINGS};
pub use target::{Target, Unsendable};

pub mod autotask;
pub mod connectwise;
pub mod email;
pub mod jira;
mod registry;
mod request;
pub mod pagerduty;
pub mod sentinel;
pub mod servicenow;
pub mod settings;
pub mod slack;
pub mod splunk;
mod target;
pub mod teams;
pub mod text;
pub mod ticket;
pub mod webhook;

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
    /// Where the grant is made; a path (`/oauth_token.do`, ServiceNow's) is on the channel's own
    /// URL, made whole by `Target::new`.
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

    /// A SIEM: receives every event, so rules' `suppress` and `group` do not apply to it, and a
    /// silence holds it only when it names the channel (SPEC section 16).
    fn is_siem(&self) -> bool {
        false
    }

    /// The settings it takes besides `url`, `headers` and `rate_limit_per_second`.
    fn settings(&self) -> &'static [Setting] {
        &[]
    }

    /// Its channels keep incidents (SPEC section 17): their deliveries carry an incident key,
    /// made when they are, and those of one incident are attempted one at a time, oldest first.
    /// Such a type's settings hold [`settings::INCIDENT_SETTINGS`] and its prepared form answers
    /// [`Prepared::incidents`].
    fn keeps_incidents(&self) -> bool {
        false
    }

    /// Each incident of its channels belongs to one tenant (ConnectWise, Autotask: one customer
    /// per ticket): its key always holds `/tenant/id`, and a rule that groups across tenants
    /// (its `group.by` without `/tenant/id`) is refused with 422 when it names such a channel.
    fn one_tenant_per_incident(&self) -> bool {
        false
    }

    /// A ticketing system (Jira, ServiceNow, ConnectWise, Autotask): its prepared form answers
    /// [`Prepared::tickets`], and its Test checks (or, asked to, opens a test ticket).
    fn opens_tickets(&self) -> bool {
        false
    }

    /// What the API calls the channel's URL (`endpoint` for Sentinel).
    fn url_field(&self) -> &'static str {
        "url"
    }

    /// The URL a new channel gets when none is given (PagerDuty's Events API); `None`: it
    /// must be given.
    fn default_url(&self) -> Option<&'static str> {
        None
    }

    /// The channel's address is a server's host name (or IP address) rather than a URL: email's
    /// SMTP `host`. It is stored and guarded like a URL's host.
    fn address_is_host(&self) -> bool {
        false
    }

    /// Parses a channel's whole settings (a change merged into the stored ones, or the stored
    /// ones) into what its requests are built from: once, when the channel is saved or loaded.
    /// `Err` names the field and what to fix.
    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid>;

    /// What an answer means: `status` and the first bytes of the body, as text. By default (every
    /// receiver that speaks plain HTTP): a 2xx is delivered, `410 Gone` disables the channel, any
    /// other status is retried.
    fn judge(&self, status: u16, body: &str) -> Verdict {
        let _ = body;
        standard_verdict(status)
    }
}

/// A channel's settings as its type parsed them (Vector's sinks are built from a typed config
/// the same way): how many deliveries a request carries, the grant its token comes from, and
/// the requests themselves. A type without settings is its own prepared form.
pub trait Prepared: Send + Sync {
    /// The request that delivers `items` (each an event's section 4 payload, as stored), as many
    /// of them as fit, from the first.
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request;

    /// How many deliveries one request carries.
    fn batching(&self) -> Batching {
        Batching::ONE
    }

    /// The client credentials a request needs a token from, if any.
    fn credentials(&self) -> Option<ClientCredentials> {
        None
    }

    /// For the types that keep incidents (SPEC section 17: tickets, pages, mail threads): where
    /// an event's incident key is read and how long a quiet incident stays open. `None`: every
    /// delivery stands alone.
    fn incidents(&self) -> Option<IncidentSettings> {
        None
    }

    /// What a delivered request wrote to its item's incident (the page's `dedup_key`, the first
    /// message of a mail thread), recorded with the attempt. By default: that it was written to.
    fn wrote(&self, item: &Item<'_>, transport: &Transport) -> Wrote {
        let _ = (item, transport);
        Wrote::default()
    }

    /// For the ticketing types (SPEC section 17): the system an attempt holds a conversation
    /// with (read, note, create, search) instead of sending one request.
    fn tickets(&self) -> Option<&dyn ticket::TicketSystem> {
        None
    }

    /// What parsing filled in or put in its normal form (defaults, Sentinel's `authority`
    /// without its trailing `/`), stored over the settings given; by default nothing.
    fn filled_in(&self) -> Config {
        Config::new()
    }
}

/// How a channel keeps incidents (SPEC section 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSettings {
    /// JSON pointers into an event's payload whose values make its incident key (a grouped
    /// notification's key is its group's).
    pub by: Vec<String>,
    /// An incident not written to for this long is over: the next event opens a new one.
    pub reopen_window_ms: i64,
}

/// What a delivered request wrote to its incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wrote {
    pub ticket: Option<crate::domain::incident::Ticket>,
    pub thread: Option<crate::domain::incident::MailThread>,
}

impl Wrote {
    /// As recorded for `item`'s incident (`None`: the item has none).
    pub fn for_item(self, channel_id: &str, item: &Item<'_>) -> Option<crate::domain::incident::IncidentWrite> {
        item.incident.map(|incident| crate::domain::incident::IncidentWrite {
            channel_id: channel_id.to_string(),
            key_hash: incident.key.hash.clone(),
            marker: incident.marker.clone(),
            ticket: self.ticket,
            thread: self.thread,
            settles_create: false,
        })
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
