//! Incidents (SPEC section 17): what makes two events one ticket, page or mail thread. An
//! event's incident key is its rule's group key when the rule groups, else the values at the
//! channel's `incident_by` paths; the router keeps, per (channel, key), the ticket it opened (or
//! the first message of a mail thread) and the marker every ticket carries, since none of these
//! systems takes an idempotency key. This module holds the pure parts: the key, the marker and
//! what a channel's type is told of an incident when it builds a request ([`IncidentView`]).

use serde_json::Value;

use super::noise::{canonical, key_hash};

/// The paths an incident key is read from when the channel sets none and the rule does not group.
pub const DEFAULT_INCIDENT_BY: [&str; 3] = ["/tenant/id", "/event", "/data/site_url"];

/// An incident key: the values that make events one incident, in canonical JSON (key order and
/// number spelling do not matter), and the hash the store indexes it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentKey {
    /// Canonical JSON text: an object of path → value (a missing value is `null`).
    pub text: String,
    pub hash: String,
}

impl IncidentKey {
    /// The key of `payload` (an event's section 4 payload) read at `paths` (JSON pointers).
    pub fn of(payload: &Value, paths: &[String]) -> Self {
        let values: serde_json::Map<String, Value> = paths.iter().map(|p| (p.clone(), payload.pointer(p).cloned().unwrap_or(Value::Null))).collect();
        Self::from_value(&Value::Object(values))
    }

    /// The incident key of a stored payload: a grouped notification's is its group's key (SPEC
    /// section 16: a rule that groups sends only notifications), an event's the values at `by`.
    pub fn of_payload(payload: &Value, by: &[String]) -> Self {
        match payload.pointer("/group/key") {
            Some(key) if payload["event"] == super::notification::NOTIFICATION_EVENT => {
                Self::of_group(payload.pointer("/rule/id").and_then(Value::as_str).unwrap_or_default(), key)
            }
            _ => Self::of(payload, by),
        }
    }

    /// A grouping rule's group as an incident: the rule and the group's key (a group is per rule
    /// and channel, so two rules grouping by the same paths are two incidents).
    pub fn of_group(rule_id: &str, key: &Value) -> Self {
        Self::from_value(&serde_json::json!({ "rule": rule_id, "group": key }))
    }

    /// A key given as a value already (a rule's group key).
    pub fn from_value(value: &Value) -> Self {
        let text = canonical(value).to_string();
        let hash = key_hash(&text);
        Self { text, hash }
    }
}

/// The marker a ticket (or a page's `dedup_key`) carries: `spscan-` and the first 20 hex digits
/// of SHA-256 over the channel id, the key as canonical JSON and the time (Unix ms) the router
/// decided to open it, each followed by a NUL.
pub fn marker(channel_id: &str, key: &IncidentKey, decided_at: i64) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for part in [channel_id.as_bytes(), key.text.as_bytes(), decided_at.to_string().as_bytes()] {
        digest.update(part);
        digest.update([0u8]);
    }
    let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("spscan-{}", &hex[..20])
}

/// What a channel's type is told of the incident a delivery belongs to when it builds the
/// request: the marker, when it was opened, and what was opened so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentView {
    pub key: IncidentKey,
    pub marker: String,
    /// Unix ms.
    pub opened_at: i64,
    /// The ticket the router opened for it, if any.
    pub ticket: Option<Ticket>,
    /// The first message of its mail thread, if one was sent.
    pub thread: Option<MailThread>,
    /// A create that may have gone through without the router learning its ticket (a
    /// ticketing type's timeout, 5xx or crash): the next attempt searches for the marker first.
    pub create: Option<PendingCreate>,
    /// The closed or deleted ticket of this incident that its next ticket links to.
    pub previous: Option<Ticket>,
}

impl IncidentView {
    /// A new incident: nothing opened for it yet.
    pub fn new(key: IncidentKey, marker: String, opened_at: i64) -> Self {
        Self { key, marker, opened_at, ticket: None, thread: None, create: None, previous: None }
    }
}

/// A create request that went out for an incident and whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCreate {
    /// When it was about to be sent (Unix ms): a search waits `CREATE_SETTLE` from then.
    pub started_at: i64,
    /// The delivery whose attempt sent it: if the search finds the ticket, that delivery is in it.
    pub delivery_id: String,
}

/// A ticket in the system a channel writes to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ticket {
    /// The system's immutable id (Jira issue id, ServiceNow `sys_id`, …).
    pub id: String,
    /// The key people use (`SOC-42`, `INC0010001`), if the system has one.
    pub key: Option<String>,
    pub url: Option<String>,
    /// The company (ConnectWise, Autotask) the delivery was filed under; kept with the
    /// delivery, not the incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Company>,
}

impl Ticket {
    /// A ticket known by its id, key and URL.
    pub fn new(id: impl Into<String>, key: Option<String>, url: Option<String>) -> Self {
        Self { id: id.into(), key, url, company: None }
    }
}

/// The company of a PSA (ConnectWise, Autotask) a delivery was filed under, and where it came
/// from: the channel's `companies` map for the delivery's tenant, or its `default`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Company {
    pub id: String,
    /// `map` or `default`.
    pub source: String,
}

/// The first message of an incident's mail thread: later messages reply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailThread {
    /// Its `Message-ID`, with the angle brackets.
    pub message_id: String,
    /// Its subject, which replies take with `Re: ` before it.
    pub subject: String,
}

/// What a delivered attempt wrote to its incident, recorded with the attempt: the ticket (or
/// page) it wrote to, and the first message of a mail thread when it started one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentWrite {
    pub channel_id: String,
    pub key_hash: String,
    /// The marker the attempt wrote under: a write lands only while the incident still has it
    /// (an incident another attempt moved on to a new ticket keeps that one).
    pub marker: String,
    pub ticket: Option<Ticket>,
    pub thread: Option<MailThread>,
    /// The attempt settled a pending create: a ticket came back or was found, or the system
    /// refused the create (nothing was made). Recorded whether or not the attempt delivered.
    pub settles_create: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_reads_its_paths_in_canonical_form() {
        let paths: Vec<String> = DEFAULT_INCIDENT_BY.iter().map(|p| p.to_string()).collect();
        let a = IncidentKey::of(&json!({"tenant": {"id": "contoso"}, "event": "permission.x", "data": {"site_url": "https://s", "n": 1}}), &paths);
        let b = IncidentKey::of(&json!({"data": {"site_url": "https://s"}, "event": "permission.x", "tenant": {"id": "contoso", "d": 2}}), &paths);
        assert_eq!(a, b);
        assert_eq!(a.text, r#"{"/data/site_url":"https://s","/event":"permission.x","/tenant/id":"contoso"}"#);
        let missing = IncidentKey::of(&json!({"tenant": {"id": "contoso"}, "event": "permission.x"}), &paths);
        assert!(missing.text.contains(r#""/data/site_url":null"#));
        assert_ne!(missing.hash, a.hash);
    }

    #[test]
    fn a_notifications_key_is_its_rule_and_group() {
        let notification = |rule: &str| json!({"event": "alert.group", "rule": {"id": rule, "name": "R"}, "group": {"id": "agrp_1", "key": {"/data/site_url": "https://s"}}});
        let by: Vec<String> = vec!["/event".into()];
        let a = IncidentKey::of_payload(&notification("rule_a"), &by);
        assert_eq!(a, IncidentKey::of_group("rule_a", &json!({"/data/site_url": "https://s"})));
        assert_ne!(a, IncidentKey::of_payload(&notification("rule_b"), &by), "another rule grouping by the same site is another incident");
    }

    #[test]
    fn a_marker_is_twenty_hex_digits_and_changes_with_each_part() {
        let key = IncidentKey::from_value(&json!({"k": 1}));
        let m = marker("ch_1", &key, 1_000);
        assert!(m.starts_with("spscan-") && m.len() == 27 && m[7..].chars().all(|c| c.is_ascii_hexdigit()), "{m}");
        assert_eq!(m, marker("ch_1", &IncidentKey::from_value(&json!({"k": 1.0})), 1_000));
        assert_ne!(m, marker("ch_2", &key, 1_000));
        assert_ne!(m, marker("ch_1", &key, 1_001));
        assert_ne!(m, marker("ch_1", &IncidentKey::from_value(&json!({"k": 2})), 1_000));
    }
}
