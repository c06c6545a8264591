//! The shapes of `/api/v1/channels`: a channel as reads show it (settings and credentials
//! masked, its deliveries of the last 24 hours, its circuit), and what a create or a change
//! takes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::at;
use crate::channels::ChannelKind;
use crate::domain::breaker::{CircuitState, Health};
use crate::domain::channel;
use crate::domain::time::now_ms;
use crate::store::channels::ChannelStats;
use crate::store::models::ChannelRow;

/// A channel. The settings of its type (Splunk's `token`, Sentinel's `endpoint` …) are further
/// fields, credentials masked.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Channel)]
pub struct ChannelView {
    id: String,
    name: String,
    /// `webhook`, `slack`, `teams`, `splunk`, `sentinel` or `email`.
    #[serde(rename = "type")]
    kind: String,
    /// Where deliveries go; Slack's and Teams' URLs (their credential) masked.
    url: String,
    /// Only for a channel whose type this release does not know (stored by a newer release), or
    /// whose stored settings its type cannot read: why nothing is sent to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    type_error: Option<String>,
    enabled: bool,
    /// Headers sent with every request: their names, each value masked like a credential
    /// (`••••` and its last four characters; values shorter than 12 characters show nothing).
    headers: BTreeMap<String, String>,
    /// A webhook's signing secret (`whsec_…`): only in the answer to a create or a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Until when the secret before the last rotation still signs, if it does.
    previous_secret_expires_at: Option<String>,
    created_at: String,
    updated_at: String,
    /// Deliveries of the last 24 hours (on reads, not on changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<StatsView>,
    /// Most requests per second to the receiver; `null`: no limit beyond the concurrency.
    rate_limit_per_second: Option<i32>,
    /// Why the router disabled the channel by itself (`null` if a person did, or it is enabled).
    disabled_reason: Option<String>,
    disabled_at: Option<String>,
    /// The circuit breaker (as stored with the last attempts recorded).
    health: HealthView,
    /// The settings of the channel's type (Splunk's `token`, `index` …), credentials masked.
    #[serde(flatten)]
    #[schema(ignore)]
    settings: crate::channels::Config,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelList)]
pub(super) struct Channels {
    pub(super) items: Vec<ChannelView>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelHealth)]
pub(super) struct HealthView {
    state: CircuitState,
    consecutive_failures: u32,
    /// While open or half-open: when the next probe may go.
    open_until: Option<String>,
}

impl HealthView {
    fn of(health: &Health) -> Self {
        let state = health.state(now_ms());
        Self { state, consecutive_failures: health.consecutive_failures, open_until: health.open_until.map(at) }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelStats)]
pub(super) struct StatsView {
    succeeded_24h: i64,
    failed_24h: i64,
    pending_24h: i64,
    /// Held back by noise control in the last 24 hours (SPEC section 16); none of them failed.
    grouped_24h: i64,
    suppressed_24h: i64,
    silenced_24h: i64,
    pending: i64,
    last_error: Option<String>,
    last_error_at: Option<String>,
}

impl ChannelView {
    pub(super) fn of(row: ChannelRow, stats: Option<ChannelStats>, health: Option<Health>, show_secret: bool) -> Self {
        let headers = row.custom_headers().shown();
        let kind = ChannelKind::from_stored(&row.kind);
        // A type this release does not know fails closed: its URL and every setting are shown
        // masked (which of them are credentials is unknown), and nothing is sent to it.
        let type_error = match &kind {
            Err(unknown) => Some(crate::channels::Unsendable::from(unknown.clone()).to_string()),
            Ok(kind) => kind.channel_type().prepare(&row.settings()).err().map(|invalid| crate::channels::Unsendable::from(invalid).to_string()),
        };
        let (settings, url) = match kind {
            Ok(kind) => {
                let mut settings = crate::channels::shown(kind, &row.settings());
                let url_field = kind.channel_type().url_field();
                if url_field != "url" {
                    settings.insert(url_field.into(), serde_json::Value::String(row.url.clone()));
                }
                (settings, if kind.url_is_secret() { channel::masked_url(&row.url) } else { row.url.clone() })
            }
            Err(_) => {
                let text = |value: serde_json::Value| value.as_str().map_or_else(|| value.to_string(), str::to_string);
                let masked = row.settings().into_iter().map(|(name, value)| (name, serde_json::Value::String(crate::channels::masked(&text(value))))).collect();
                (masked, channel::masked_url(&row.url))
            }
        };
        let signed = kind.is_ok_and(ChannelKind::is_signed);
        Self {
            type_error,
            id: row.id,
            name: row.name,
            kind: row.kind,
            url,
            enabled: row.enabled,
            headers,
            secret: (show_secret && signed).then_some(row.secret),
            previous_secret_expires_at: row.previous_secret_expires_at.filter(|t| *t > now_ms()).map(at),
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
            stats: stats.map(|s| StatsView {
                succeeded_24h: s.succeeded_24h,
                failed_24h: s.failed_24h,
                pending_24h: s.pending_24h,
                grouped_24h: s.grouped_24h,
                suppressed_24h: s.suppressed_24h,
                silenced_24h: s.silenced_24h,
                pending: s.pending,
                last_error: s.last_error,
                last_error_at: s.last_error_at.map(at),
            }),
            rate_limit_per_second: row.rate_limit_per_second,
            disabled_reason: row.disabled_reason,
            disabled_at: row.disabled_at.map(at),
            health: HealthView::of(&health.unwrap_or_default()),
            settings,
        }
    }
}

/// A new channel. Settings of its type (Splunk's `token`, Sentinel's `endpoint` …) come as
/// further fields, checked by the type (an unknown field is refused there).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "SOC", "type": "webhook", "url": "https://soc.example.com/spscan", "headers": {"X-Api-Key": "k-123"}}))]
pub struct ChannelInput {
    pub(super) name: String,
    /// `webhook` (the default), `slack`, `teams`, `splunk`, `sentinel` or `email`.
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    /// Where deliveries go (Sentinel: `endpoint`). Refused if it resolves to an address the
    /// outbound guard refuses (private, loopback …) unless ALLOWED_TARGET_NETWORKS allows it.
    #[serde(default)]
    pub(super) url: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub(super) enabled: Option<bool>,
    /// Headers sent with every request.
    #[serde(default)]
    pub(super) headers: Option<BTreeMap<String, String>>,
    /// Most requests per second. Absent: the type's default (Slack 1, Teams 4, the others
    /// none); `null`: no limit.
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub(super) rate_limit_per_second: Option<Option<serde_json::Value>>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub(super) settings: serde_json::Map<String, serde_json::Value>,
}

/// A change: the fields given are set, the others kept.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChannelPatch {
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) name: Option<Option<String>>,
    /// Only the channel's own type: a type cannot change.
    #[serde(rename = "type", default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) kind: Option<Option<String>>,
    /// A new URL (Sentinel: `endpoint`); the masked form a read shows keeps the current one.
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) url: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<bool>)]
    pub(super) enabled: Option<Option<bool>>,
    /// Replaces every custom header; `null`: none; left out: kept. A value sent back masked as
    /// a read shows it (`••••…`) keeps that header's current value. When the URL changes, the
    /// values must be sent again whole (they are credentials, and only go where they were given
    /// for).
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub(super) headers: Option<Option<BTreeMap<String, String>>>,
    /// `null`: no limit.
    #[serde(default, deserialize_with = "crate::routes::nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub(super) rate_limit_per_second: Option<Option<serde_json::Value>>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub(super) settings: serde_json::Map<String, serde_json::Value>,
}
