//! Where and how a channel delivers ([`Target`]): what the delivery actors and the exchange know
//! of a channel, built once from its stored row when routing is loaded.

use std::net::IpAddr;

use super::{Batching, ChannelKind, ClientCredentials, Config};
use crate::domain::channel::{CustomHeaders, RateLimit, SigningSecret};

/// Where and how a channel delivers. Its `Debug` shows no credential (settings, secrets and
/// headers are left out), so a target can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub channel_id: String,
    /// The channel's type: what a delivery's request looks like and how its answer is judged.
    pub kind: ChannelKind,
    pub url: String,
    /// The URL's host when it is an IP literal (checked before each send).
    pub host_ip: Option<IpAddr>,
    pub headers: CustomHeaders,
    /// Secrets that sign each request, each until its expiry (none for the current one).
    pub secrets: Vec<(SigningSecret, Option<i64>)>,
    /// Most requests per second the channel's actor sends (`None`: no limit).
    pub rate_limit: Option<RateLimit>,
    /// The settings of the channel's type (Splunk's token, Sentinel's rule …).
    pub config: Config,
    /// How many deliveries one request carries.
    pub batching: Batching,
    /// The grant an access token comes from, for types that need one.
    pub credentials: Option<ClientCredentials>,
}

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
    pub fn new(
        channel_id: String,
        kind: ChannelKind,
        url: String,
        headers: CustomHeaders,
        secrets: Vec<(SigningSecret, Option<i64>)>,
    ) -> Self {
        let host_ip = url::Url::parse(&url).ok().and_then(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        });
        let config = Config::new();
        let channel_type = kind.channel_type();
        let (batching, credentials) = (channel_type.batching(&config), channel_type.credentials(&config));
        Self { channel_id, kind, url, host_ip, headers, secrets, rate_limit: None, config, batching, credentials }
    }

    /// With the settings of its type (and the batching and credentials they give).
    pub fn with_config(self, config: Config) -> Self {
        let channel_type = self.kind.channel_type();
        let (batching, credentials) = (channel_type.batching(&config), channel_type.credentials(&config));
        Self { config, batching, credentials, ..self }
    }

    pub fn with_rate_limit(self, rate_limit: Option<RateLimit>) -> Self {
        Self { rate_limit, ..self }
    }

    /// The secrets that sign a request made at `now`: the current one, and a previous one
    /// until its expiry.
    pub fn signing_secrets(&self, now: i64) -> Vec<&SigningSecret> {
        self.secrets.iter().filter(|(_, until)| until.is_none_or(|t| now < t)).map(|(s, _)| s).collect()
    }
}
