//! Row types: what the tables hold, one struct per shape read or written.

use diesel::prelude::*;

use super::schema::{alert_groups, attempts, channel_health, channels, deliveries, events, instances, rules, sent_requests, silences, suppression_windows, tenants};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tenants, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct TenantRow {
    pub id: String,
    pub display_name: String,
    pub microsoft_tenant_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = channels, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct ChannelRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub enabled: bool,
    /// JSON object of custom request headers.
    pub headers: String,
    pub secret: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// The secret before the last rotation, still signing until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// Most requests per second to the channel; `None`: no limit beyond its concurrency.
    pub rate_limit_per_second: Option<i32>,
    /// Why the router disabled the channel by itself; `None` if a person did, or it is enabled.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    /// When the `router.channel_disabled` event about it was stored.
    pub disabled_told_at: Option<i64>,
    /// JSON object: the settings of the channel's type (credentials included).
    pub config: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rules, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct RuleRow {
    pub id: String,
    pub name: String,
    pub tenant_id: Option<String>,
    /// JSON array of event type patterns.
    pub event_types: String,
    pub min_severity: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The lowest decides when several matching rules name one channel (default 100).
    pub priority: i32,
    /// JSON: the noise-control fields as the API takes them; NULL when unset.
    pub conditions: Option<String>,
    pub active_hours: Option<String>,
    pub suppress: Option<String>,
    pub group_spec: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
/// Owned, not borrowed: diesel caches the prepared statement of a multi-row insert only for rows
/// of a `'static` type (`insert_rows!`).
pub struct EventRow {
    pub id: String,
    pub event_type: String,
    pub severity: &'static str,
    pub tenant_id: String,
    pub occurred_at: i64,
    pub payload: String,
    pub received_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = deliveries, treat_none_as_default_value = false, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub channel_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub severity: String,
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<i32>,
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Attempts made on the retry schedule (manual ones excluded).
    pub scheduled_attempt_count: i32,
    /// The instance that holds it (PostgreSQL, several instances).
    pub lease_owner: Option<String>,
    /// Set while a bulk redelivery waits: the status to go back to if its attempt fails.
    pub redeliver_from: Option<String>,
    /// The rule that decided it (NULL for tests' and older deliveries).
    pub rule_id: Option<String>,
    /// `grouped`: the group it joined, and the notification it went out in once flushed.
    pub group_id: Option<String>,
    pub notification_id: Option<String>,
    /// `suppressed`: the delivery that opened the window.
    pub suppressed_by: Option<String>,
    /// `silenced`: the silence.
    pub silence_id: Option<String>,
    /// The ticket, page or message it wrote to (SPEC section 17), as JSON `{"id","key","url"}`.
    pub ticket: Option<String>,
    /// The incident it belongs to, for a channel that keeps incidents: its key's hash.
    pub incident_hash: Option<String>,
}

impl DeliveryRow {
    /// A new delivery, pending and due `now`, leased to `owner` (shared store), decided by
    /// `rule_id`; the caller sets what noise control decided.
    #[allow(clippy::too_many_arguments)]
    pub fn pending(id: String, event_id: String, channel_id: String, tenant_id: String, event_type: String, severity: String, rule_id: String, now: i64, owner: Option<&str>) -> Self {
        Self {
            id,
            event_id,
            channel_id,
            tenant_id,
            event_type,
            severity,
            status: crate::domain::delivery::DeliveryStatus::Pending.as_str().into(),
            attempt_count: 0,
            next_attempt_at: Some(now),
            last_status_code: None,
            last_error_kind: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            scheduled_attempt_count: 0,
            lease_owner: owner.map(str::to_string),
            redeliver_from: None,
            rule_id: Some(rule_id),
            group_id: None,
            notification_id: None,
            suppressed_by: None,
            silence_id: None,
            ticket: None,
            incident_hash: None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = alert_groups, treat_none_as_default_value = false, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct GroupRow {
    pub id: String,
    pub rule_id: String,
    pub channel_id: String,
    /// Canonical JSON object: path → value at `by`.
    pub group_key: String,
    /// SHA-256 (hex) of `group_key`: what identifies the group.
    pub key_hash: String,
    /// JSON: the `group` settings it opened with.
    pub settings: String,
    pub opened_at: i64,
    pub flush_at: i64,
    pub last_flush_at: Option<i64>,
    pub notifications: i32,
    /// Events sent in the group's earlier notifications.
    pub earlier: i32,
    pub max_severity: Option<String>,
    pub closing: bool,
    /// Set when its rule is deleted: the name its notification gives.
    pub rule_name: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = suppression_windows, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SuppressionRow {
    pub rule_id: String,
    pub channel_id: String,
    pub window_key: String,
    pub delivery_id: String,
    pub severity: String,
    pub opened_at: i64,
    pub until: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = silences, treat_none_as_default_value = false, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SilenceRow {
    pub id: String,
    /// JSON: a conditions tree.
    pub matchers: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub comment: String,
    pub created_by: String,
    /// JSON arrays; NULL for any.
    pub channel_ids: Option<String>,
    pub rule_ids: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attempts, treat_none_as_default_value = false, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct AttemptRow {
    pub delivery_id: String,
    pub number: i32,
    pub triggered_by: String,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    /// Shared by the deliveries sent in one request (batching types).
    pub request_id: Option<String>,
    pub request_size: Option<i32>,
}

/// What an attempt sent, credentials masked (`outbound::shown`); `headers` and `answer_headers`
/// are JSON arrays of `[name, value]`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sent_requests, treat_none_as_default_value = false, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SentRequestRow {
    pub id: String,
    pub method: String,
    pub url: String,
    pub headers: String,
    pub body: Option<String>,
    pub body_bytes: i64,
    pub answer_headers: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = instances, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct InstanceRow {
    pub id: String,
    pub version: String,
    pub started_at: i64,
    pub last_seen_at: i64,
}

/// A channel's circuit breaker as stored (a `None` is written as NULL: a closed circuit has no
/// `open_until`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = channel_health, treat_none_as_null = true, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct HealthRow {
    pub channel_id: String,
    pub consecutive_failures: i32,
    pub failing_since: Option<i64>,
    pub open_until: Option<i64>,
    pub cooldown_ms: i64,
    pub updated_at: i64,
}

impl HealthRow {
    pub fn of(channel_id: &str, health: &crate::domain::breaker::Health, now: i64) -> Self {
        Self {
            channel_id: channel_id.to_string(),
            consecutive_failures: health.consecutive_failures.min(i32::MAX as u32) as i32,
            failing_since: health.failing_since,
            open_until: health.open_until,
            cooldown_ms: health.cooldown_ms,
            updated_at: now,
        }
    }

    pub fn to_health(&self) -> crate::domain::breaker::Health {
        crate::domain::breaker::Health {
            consecutive_failures: self.consecutive_failures.max(0) as u32,
            failing_since: self.failing_since,
            open_until: self.open_until,
            cooldown_ms: self.cooldown_ms,
        }
    }
}
