//! A notification (SPEC section 16): what a group sends when it flushes, as its webhook body
//! `{"event":"alert.group","event_id","timestamp","rule","group","severity","tenant","events"}`.
//! The store builds one from the group's events (their section 4 payloads, as stored) when the
//! group flushes; the body is then stored and sent like any payload: a webhook sends and signs
//! these bytes, Slack and Teams render a summary of them (`crate::channels`).
//!
//! Invariants of a body: `group.count` is every event of the notification, listed or not; at
//! most [`MAX_LISTED`] are listed, oldest first, each embedded verbatim (the bytes stored at
//! ingestion, not re-serialised); `"truncated": true` appears only when some are not listed.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::ids;
use super::severity::Severity;
use super::time::{rfc3339_compact, Millis};

/// Most events listed in one body; beyond them the body says `"truncated": true`.
pub const MAX_LISTED: usize = 100;
/// The `event` of a notification's body.
pub const NOTIFICATION_EVENT: &str = "alert.group";
/// Prefix of a notification's `event_id`: `ids::new_id(ID_PREFIX)` → `grp_01J…`, new for every
/// notification (receivers de-duplicate on it).
pub const ID_PREFIX: &str = "grp";
/// Prefix of a group's id (`agrp_01J…`), the same for every notification of the group.
pub const GROUP_ID_PREFIX: &str = "agrp";

/// One notification of a group, as it flushes.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    /// New for every notification (`grp_…`).
    pub event_id: &'a str,
    /// When it was flushed.
    pub timestamp_ms: Millis,
    pub rule_id: &'a str,
    pub rule_name: &'a str,
    /// The same for every notification of one group (`agrp_…`).
    pub group_id: &'a str,
    /// The group's key: each `by` pointer and the value at it (`null` where absent).
    pub key: &'a Map<String, Value>,
    /// Events sent in the group's earlier notifications.
    pub earlier: u64,
    /// The highest severity so far in the group, this notification included.
    pub max_severity: Severity,
    /// The section 4 payloads (JSON text, as stored) of the events listed, oldest first: the
    /// oldest [`MAX_LISTED`] of the notification's (any beyond are not read).
    pub listed: &'a [&'a str],
    /// What the notification says of all its events, listed or not.
    pub all: Collected<'a>,
}

/// What a notification says of all its events, listed or not: read from the stored deliveries
/// (their severity and tenant columns) so a flush need not read every event's payload.
#[derive(Debug, Clone, Copy)]
pub struct Collected<'a> {
    /// Every event of the notification.
    pub count: u64,
    /// The highest severity among them.
    pub severity: Severity,
    /// The newest event's payload when every event has the same tenant id (the body's `tenant`
    /// is its tenant object), else `None`.
    pub newest_of_one_tenant: Option<&'a str>,
}

impl<'a> Collected<'a> {
    /// From every event's payload, oldest first (when they are all at hand).
    pub fn of(events: &[&'a str]) -> Self {
        let heads: Vec<Head<'a>> = events.iter().map(|event| Head::of(event)).collect();
        let first = heads.first().and_then(Head::tenant_id);
        let one_tenant = first.is_some_and(|first| heads.iter().skip(1).all(|head| head.tenant_id().is_some_and(|id| id == first)));
        Self {
            count: events.len() as u64,
            severity: heads.iter().map(Head::severity).max().unwrap_or(Severity::Low),
            newest_of_one_tenant: events.last().copied().filter(|_| one_tenant),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    event: &'static str,
    event_id: &'a str,
    timestamp: String,
    rule: RuleRef<'a>,
    group: GroupRef<'a>,
    severity: Severity,
    tenant: Option<&'a RawValue>,
    events: Vec<&'a RawValue>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    /// Only on the sample **Test** sends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

#[derive(Serialize)]
struct RuleRef<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct GroupRef<'a> {
    id: &'a str,
    key: &'a Map<String, Value>,
    count: u64,
    earlier: u64,
    max_severity: Severity,
}

/// What a notification reads of each event: its severity and its tenant.
#[derive(Deserialize, Default)]
struct Head<'a> {
    #[serde(default, borrow)]
    severity: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tenant: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TenantId<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

impl<'a> Head<'a> {
    /// An event's head; a payload the router did not write (never the case) reads as an event
    /// of low severity without a tenant.
    fn of(event: &'a str) -> Self {
        serde_json::from_str(event).unwrap_or_default()
    }

    fn severity(&self) -> Severity {
        self.severity.as_deref().and_then(|s| Severity::parse("severity", s).ok()).unwrap_or(Severity::Low)
    }

    fn tenant_id(&self) -> Option<Cow<'a, str>> {
        let tenant: TenantId<'a> = serde_json::from_str(self.tenant?.get()).ok()?;
        Some(tenant.id)
    }
}

/// `null`, for an event whose text is not JSON (never the case: the router wrote it).
fn null() -> &'static RawValue {
    serde_json::from_str("null").expect("null is JSON")
}

impl<'a> Notification<'a> {
    /// The webhook body: `{"event":"alert.group","event_id","timestamp","rule":{"id","name"},
    /// "group":{"id","key","count","earlier","max_severity"},"severity","tenant","events":[…]}`,
    /// with `"truncated":true` after the events when more than [`MAX_LISTED`] were collected.
    /// `severity` is the highest in this notification; `tenant` is the section 4 tenant object
    /// (as the newest event carries it) when every event has the same tenant id, else `null`.
    pub fn body(&self) -> String {
        self.render(false)
    }

    fn render(&self, test: bool) -> String {
        let listed = self.listed.len().min(MAX_LISTED);
        let events = self.listed[..listed].iter().map(|event| serde_json::from_str::<&RawValue>(event).unwrap_or_else(|_| null())).collect();
        let body = Body {
            event: NOTIFICATION_EVENT,
            event_id: self.event_id,
            timestamp: rfc3339_compact(self.timestamp_ms),
            rule: RuleRef { id: self.rule_id, name: self.rule_name },
            group: GroupRef {
                id: self.group_id,
                key: self.key,
                count: self.all.count,
                earlier: self.earlier,
                max_severity: self.max_severity,
            },
            severity: self.all.severity,
            tenant: self.all.newest_of_one_tenant.and_then(|newest| Head::of(newest).tenant),
            events,
            truncated: self.all.count > listed as u64,
            test,
        };
        serde_json::to_string(&body).expect("a notification always serialises")
    }
}

/// The sample notification **Test** sends for `{"sample":"group"}`: three sample events (the
/// section 4 sample, `"test": true`) of one site, of increasing severity, in a group keyed by the
/// site, the body itself marked `"test": true`. `event_id` is its `grp_…` id.
pub fn render_test(event_id: &str, now: Millis) -> String {
    const SITE: &str = "/data/site_url";
    let samples = [
        ("Shared Documents/Q3 forecast.xlsx", "outsider@example.net", Severity::Medium),
        ("Shared Documents/Board pack.pdf", "partner@example.org", Severity::High),
        ("Shared Documents/Salaries 2026.xlsx", "guest@example.com", Severity::Critical),
    ];
    let events: Vec<String> = samples
        .iter()
        .map(|(resource, principal, severity)| {
            let mut event: Value = serde_json::from_str(&super::payload::render_test(&ids::new_id(ids::EVENT))).expect("the sample is JSON");
            event["severity"] = json!(severity.as_str());
            event["data"]["resource_path"] = json!(resource);
            event["data"]["principal"] = json!(principal);
            event.to_string()
        })
        .collect();
    let first: Value = serde_json::from_str(&events[0]).expect("the sample is JSON");
    let mut key = Map::new();
    key.insert(SITE.to_string(), first.pointer(SITE).cloned().unwrap_or(Value::Null));
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let group_id = ids::new_id(GROUP_ID_PREFIX);
    let notification = Notification {
        event_id,
        timestamp_ms: now,
        rule_id: "rule_test",
        rule_name: "SPScan test rule",
        group_id: &group_id,
        key: &key,
        earlier: 0,
        max_severity: Severity::Critical,
        listed: &events,
        all: Collected::of(&events),
    };
    notification.render(true)
}

#[cfg(test)]
mod tests;
