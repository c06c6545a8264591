//! The list of channel types ([`REGISTRY`], plus those [`register`]ed at run time) and a
//! channel's type as the rest of the router holds it ([`ChannelKind`]). A type is found by its
//! name only here; a stored name this release does not know fails closed ([`UnknownType`]).

use std::sync::RwLock;

use super::{autotask, connectwise, email, jira, pagerduty, sentinel, servicenow, slack, splunk, teams, webhook, ChannelType};
use crate::domain::channel::RateLimit;
use crate::domain::Invalid;

/// Every channel type this release knows, in the order the API and the admin page list them:
/// the one place a type is registered.
pub const REGISTRY: &[&dyn ChannelType] = &[&webhook::Webhook, &slack::Slack, &teams::Teams, &splunk::Splunk, &sentinel::Sentinel, &pagerduty::PagerDuty, &email::Email, &jira::Jira, &servicenow::ServiceNow, &connectwise::ConnectWise, &autotask::Autotask];

/// Types added at run time (by a test, or a program embedding the router), after [`REGISTRY`].
static REGISTERED: RwLock<Vec<&'static dyn ChannelType>> = RwLock::new(Vec::new());

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

    pub fn keeps_incidents(self) -> bool {
        self.0.keeps_incidents()
    }

    pub fn is_signed(self) -> bool {
        self.0.signs()
    }

    pub fn url_is_secret(self) -> bool {
        self.0.url_is_secret()
    }

    pub fn one_tenant_per_incident(self) -> bool {
        self.0.one_tenant_per_incident()
    }

    pub fn is_siem(self) -> bool {
        self.0.is_siem()
    }

    pub fn default_rate_limit(self) -> Option<RateLimit> {
        self.0.default_rate_limit().map(RateLimit::from_stored_u32)
    }
}
