//! Where and how a channel delivers ([`Target`]): what the delivery actors and the exchange know
//! of a channel, built once from its stored row when routing is loaded (or a person presses
//! Test or Redeliver). Building it parses the channel's settings with its type; a channel whose
//! settings do not parse gets no target, so nothing is sent to it ([`Unsendable`]).

use std::net::IpAddr;
use std::sync::Arc;

use super::{Batching, ChannelKind, ClientCredentials, Config, Item, Prepared, Request, Sending, UnknownType};
use crate::domain::channel::{CustomHeaders, RateLimit, SigningSecret};
use crate::domain::Invalid;

/// Where and how a channel delivers. Its `Debug` shows no credential (settings, secrets and
/// headers are left out), so a target can be logged.
#[derive(Clone)]
pub struct Target {
    pub channel_id: String,
    /// The channel's type: how a delivery's answer is judged.
    pub kind: ChannelKind,
    pub url: String,
    /// The URL's host when it is an IP literal (checked before each send).
    pub host_ip: Option<IpAddr>,
    pub headers: CustomHeaders,
    /// Secrets that sign each request, each until its expiry (none for the current one).
    pub secrets: Vec<(SigningSecret, Option<i64>)>,
    /// Most requests per second the channel's actor sends (`None`: no limit).
    pub rate_limit: Option<RateLimit>,
    /// How many deliveries one request carries.
    pub batching: Batching,
    /// The grant an access token comes from, for types that need one.
    pub credentials: Option<ClientCredentials>,
    /// The settings as stored: only compared, to tell a changed channel from the one its actor
    /// serves (what requests are built from is `prepared`, parsed from them).
    config: Config,
    /// The settings as the channel's type parsed them: what its requests are built from.
    prepared: Arc<dyn Prepared>,
}

impl PartialEq for Target {
    /// `prepared` is parsed from `kind` and `config`: comparing those compares it.
    fn eq(&self, other: &Self) -> bool {
        self.channel_id == other.channel_id
            && self.kind == other.kind
            && self.url == other.url
            && self.host_ip == other.host_ip
            && self.headers == other.headers
            && self.secrets == other.secrets
            && self.rate_limit == other.rate_limit
            && self.batching == other.batching
            && self.credentials == other.credentials
            && self.config == other.config
    }
}

impl Eq for Target {}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("channel_id", &self.channel_id)
            .field("kind", &self.kind)
            .field("batching", &self.batching)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The target of a channel of type `kind` with these settings, parsed by the type; `Err`
    /// names the setting that does not parse.
    pub fn new(
        channel_id: String,
        kind: ChannelKind,
        url: String,
        headers: CustomHeaders,
        secrets: Vec<(SigningSecret, Option<i64>)>,
        config: Config,
    ) -> Result<Self, Invalid> {
        // A URL's host, or the host itself for the types whose address is one (email).
        let host_ip = url.parse::<IpAddr>().ok().or_else(|| url::Url::parse(&url).ok().and_then(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        }));
        let prepared = kind.channel_type().prepare(&config)?;
        let (batching, mut credentials) = (prepared.batching(), prepared.credentials());
        if let Some(grant) = credentials.as_mut().filter(|c| c.token_url.starts_with('/')) {
            grant.token_url = format!("{}{}", url.trim_end_matches('/'), grant.token_url);
        }
        Ok(Self { channel_id, kind, url, host_ip, headers, secrets, rate_limit: None, batching, credentials, config, prepared })
    }

    pub fn with_rate_limit(self, rate_limit: Option<RateLimit>) -> Self {
        Self { rate_limit, ..self }
    }

    /// The request that delivers as many of `items` as the channel's type puts in one, from
    /// the first.
    pub fn request(&self, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        self.prepared.request(self, items, sending)
    }

    /// How the channel keeps incidents, if its type does.
    pub fn incidents(&self) -> Option<super::IncidentSettings> {
        self.prepared.incidents()
    }

    /// The ticketing system the channel's attempts converse with, if its type is one.
    pub fn tickets(&self) -> Option<&dyn super::ticket::TicketSystem> {
        self.prepared.tickets()
    }

    /// What a delivered request wrote to its item's incident.
    pub fn wrote(&self, item: &Item<'_>, transport: &super::Transport) -> super::Wrote {
        self.prepared.wrote(item, transport)
    }

    /// The secrets that sign a request made at `now`: the current one, and a previous one
    /// until its expiry.
    pub fn signing_secrets(&self, now: i64) -> Vec<&SigningSecret> {
        self.secrets.iter().filter(|(_, until)| until.is_none_or(|t| now < t)).map(|(s, _)| s).collect()
    }
}

/// Why nothing is sent to a stored channel: it is shown with this error, and its deliveries
/// wait, pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsendable {
    /// This release does not know its type.
    UnknownType(UnknownType),
    /// Its stored settings do not parse (the database was edited by hand, or by a release that
    /// read them otherwise).
    Settings(Invalid),
}

impl From<UnknownType> for Unsendable {
    fn from(unknown: UnknownType) -> Self {
        Unsendable::UnknownType(unknown)
    }
}

impl From<Invalid> for Unsendable {
    fn from(invalid: Invalid) -> Self {
        Unsendable::Settings(invalid)
    }
}

impl std::fmt::Display for Unsendable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsendable::UnknownType(unknown) => unknown.fmt(f),
            Unsendable::Settings(invalid) => write!(
                f,
                "the channel's stored settings do not parse ({}: {}); nothing is sent to the channel until they are changed",
                invalid.field, invalid.message
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_out_secret_signs_until_it_expires() {
        let current = SigningSecret::generate();
        let previous = SigningSecret::generate();
        let target = Target::new(
            "ch_1".into(),
            ChannelKind::WEBHOOK,
            "https://[::1]:8443/hook".into(),
            CustomHeaders::default(),
            vec![(current.clone(), None), (previous.clone(), Some(1_000))],
            Config::new(),
        )
        .unwrap();
        assert_eq!(target.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(target.signing_secrets(999), vec![&current, &previous]);
        assert_eq!(target.signing_secrets(1_000), vec![&current]);
    }

    #[test]
    fn stored_settings_that_no_longer_parse_leave_the_channel_without_a_target() {
        let splunk = ChannelKind::parse("type", "splunk").unwrap();
        let mut config = Config::new();
        config.insert("token".into(), "1a2b-3c4d".into());
        config.insert("batch_size".into(), 5000.into());
        let target = |config| Target::new("ch_1".into(), splunk, "https://hec.example".into(), CustomHeaders::default(), Vec::new(), config);
        let refused = Unsendable::from(target(config.clone()).unwrap_err());
        assert!(matches!(&refused, Unsendable::Settings(invalid) if invalid.field == "batch_size"), "{refused:?}");
        assert!(refused.to_string().contains("nothing is sent to the channel"), "{refused}");
        config.insert("batch_size".into(), 5.into());
        assert_eq!(target(config).unwrap().batching.size, 5);
    }
}
