//! Change events as SPScan sends them to the ingestion endpoint (and as the Office 365 mapping
//! makes them), their parsed form, and the event type patterns rules select them by.
//!
//! An event type is `category.action` (lowercase letters, digits and `_`, dot-separated). The
//! `data` of the two known categories (`permission`, `storage`) is checked for the fields the
//! payload promises receivers; other categories pass their `data` object through untouched.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ids;
use super::limits::Limits;
use super::severity::Severity;
use super::tenant::{clip, parse_tenant_id, Tenant, TenantInput};
use super::time::{now_ms, parse_rfc3339, Millis};
use super::Invalid;

/// Longest event type or event type pattern accepted.
pub const MAX_EVENT_TYPE: usize = 128;
/// Longest client-chosen `event_id` accepted.
pub const MAX_EVENT_ID: usize = 128;

/// An event type such as `permission.external_share_created`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventType(String);

impl EventType {
    pub fn parse(field: &str, value: &str) -> Result<Self, Invalid> {
        if value.len() > MAX_EVENT_TYPE {
            return Err(Invalid::new(field, format!("must be at most {MAX_EVENT_TYPE} characters")));
        }
        if is_dotted_name(value, 2) {
            Ok(Self(value.to_string()))
        } else {
            Err(Invalid::new(
                field,
                format!(
                    "`{}` is not an event type; use `category.action` in lowercase letters, digits and `_`, \
                     e.g. permission.external_share_created",
                    clip(value)
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn category(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
    }
}

/// True for `min_segments` or more non-empty segments of `[a-z0-9_]`, separated by dots.
fn is_dotted_name(value: &str, min_segments: usize) -> bool {
    value.len() <= MAX_EVENT_TYPE
        && value.split('.').count() >= min_segments
        && value
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
}

/// A rule's event type filter: `*`, a prefix wildcard such as `permission.*`, or an exact type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPattern {
    Any,
    Prefix(String),
    Exact(EventType),
}

impl EventPattern {
    pub fn parse(field: &str, value: &str) -> Result<Self, Invalid> {
        if value == "*" {
            return Ok(Self::Any);
        }
        if let Some(prefix) = value.strip_suffix(".*") {
            if is_dotted_name(prefix, 1) {
                return Ok(Self::Prefix(format!("{prefix}.")));
            }
        } else if let Ok(exact) = EventType::parse(field, value) {
            return Ok(Self::Exact(exact));
        }
        Err(Invalid::new(
            field,
            format!(
                "`{}` is not an event type pattern; use `*`, a prefix such as `permission.*`, or an exact type \
                 such as `storage.quota_exceeded`",
                clip(value)
            ),
        ))
    }

    pub fn matches(&self, event_type: &EventType) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(prefix) => event_type.as_str().starts_with(prefix.as_str()),
            Self::Exact(exact) => exact == event_type,
        }
    }

    /// The pattern as clients write it.
    pub fn to_text(&self) -> String {
        match self {
            Self::Any => "*".to_string(),
            Self::Prefix(prefix) => format!("{prefix}*"),
            Self::Exact(exact) => exact.as_str().to_string(),
        }
    }
}

/// One event as sent to `POST /api/v1/events` or to the in-process handle.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Event, example = example)]
pub struct EventInput {
    /// The event's id, for de-duplication: the same id again is answered `200` with
    /// `duplicate: true` and delivered nowhere. Absent: the router gives one (`evt_…`).
    #[serde(default)]
    pub event_id: Option<String>,
    /// The event type, `category.action`, e.g. `sharing.anonymous_link_created`.
    pub event: String,
    /// When it happened (RFC 3339); absent: now.
    #[serde(default)]
    pub timestamp: Option<String>,
    #[schema(value_type = Severity)]
    pub severity: String,
    /// The tenant in full (registers or renames it), or `tenant_id` of a registered one.
    #[serde(default)]
    pub tenant: Option<TenantInput>,
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub tenant_id: Option<String>,
    /// The event's details (a JSON object); `sharing` and `storage` events must carry the
    /// fields the README lists.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// An event as SPScan sends one (the API document's example).
pub fn example() -> Value {
    serde_json::json!({
        "event_id": "spscan-change-1",
        "event": "permission.external_share_created",
        "severity": "high",
        "tenant": {"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"},
        "data": {
            "site_url": "https://contoso.sharepoint.com/sites/Finance",
            "resource_path": "Shared Documents/Q3 forecast.xlsx",
            "permission_type": "specific_people_link",
            "principal": "outsider@example.net",
            "access_level": "edit"
        }
    })
}

/// Which tenant an event belongs to: a full object (registers or renames the tenant) or the id
/// of a registered one.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantRef {
    Full(Tenant),
    Registered(String),
    /// The router's own events (`router.*`) belong to no tenant: stored with an empty tenant id
    /// (no tenant can have it), sent with `"tenant": null`, matched only by rules for all tenants.
    Router,
}

impl TenantRef {
    pub fn id(&self) -> &str {
        match self {
            Self::Full(tenant) => &tenant.id,
            Self::Registered(id) => id,
            Self::Router => "",
        }
    }
}

/// A parsed change event, ready to be matched and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub event_type: EventType,
    pub occurred_at: Millis,
    pub severity: Severity,
    pub tenant: TenantRef,
    pub data: EventData,
}

/// An event's `data` object, serialised once when the event is parsed (on the request's own
/// thread), so that storing it costs the single database writer no JSON work. An event parsed
/// from a request also keeps the object itself until the rule matcher takes it
/// ([`EventData::take_parsed`]), so conditions read it without parsing the text again.
#[derive(Debug, Clone)]
pub struct EventData {
    raw: Box<serde_json::value::RawValue>,
    parsed: Option<Map<String, Value>>,
}

impl EventData {
    /// Serialises a `data` object.
    pub fn new(data: &Map<String, Value>) -> Self {
        let json = serde_json::to_string(data).expect("a JSON object always serialises");
        Self { raw: serde_json::value::RawValue::from_string(json).expect("serde_json writes valid JSON"), parsed: None }
    }

    /// Keeps the object this was serialised from (`data` must be it).
    fn keep(mut self, data: Map<String, Value>) -> Self {
        self.parsed = Some(data);
        self
    }

    /// The object as JSON text.
    pub fn json(&self) -> &str {
        self.raw.get()
    }

    /// The object as it goes into a payload.
    pub fn raw(&self) -> &serde_json::value::RawValue {
        &self.raw
    }

    /// The object itself, if it is still kept from the parse (once: it is moved out).
    pub fn take_parsed(&mut self) -> Option<Map<String, Value>> {
        self.parsed.take()
    }
}

impl PartialEq for EventData {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl NewEvent {
    pub fn parse(input: EventInput, limits: &Limits) -> Result<Self, Invalid> {
        let id = match input.event_id {
            Some(id) => parse_event_id(&id)?,
            None => ids::new_id(ids::EVENT),
        };
        let event_type = EventType::parse("event", &input.event)?;
        let occurred_at = match input.timestamp {
            Some(ts) => parse_rfc3339(&ts).ok_or_else(|| {
                Invalid::new("timestamp", format!("`{}` is not an RFC 3339 time such as 2026-11-28T15:36:08Z", clip(&ts)))
            })?,
            None => now_ms(),
        };
        let severity = Severity::parse("severity", &input.severity)?;
        let tenant = match (input.tenant, input.tenant_id) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new("tenant_id", "give either `tenant` or `tenant_id`, not both"))
            }
            (Some(tenant), None) => TenantRef::Full(Tenant::parse(tenant, limits).map_err(|e| e.within("tenant"))?),
            (None, Some(id)) => TenantRef::Registered(parse_tenant_id("tenant_id", &id)?),
            (None, None) => {
                return Err(Invalid::new(
                    "tenant",
                    "missing; give a `tenant` object or the `tenant_id` of a registered tenant",
                ))
            }
        };
        let data = match input.data {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(Invalid::new("data", "must be a JSON object")),
        };
        let data = check_data(&event_type, &data, limits)?.keep(data);
        Ok(Self { id, event_type, occurred_at, severity, tenant, data })
    }
}

/// A client-chosen event id: 1–128 characters of letters, digits, `_`, `-`, `.` and `:`.
fn parse_event_id(value: &str) -> Result<String, Invalid> {
    let ok = !value.is_empty()
        && value.len() <= MAX_EVENT_ID
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Invalid::new(
            "event_id",
            format!("`{}` is not an event id; use 1–{MAX_EVENT_ID} letters, digits, `_`, `-`, `.` or `:`", clip(value)),
        ))
    }
}

/// Checks the fields receivers are promised for `permission.*` and `storage.*` events, and
/// answers the object serialised.
fn check_data(event_type: &EventType, data: &Map<String, Value>, limits: &Limits) -> Result<EventData, Invalid> {
    let serialised = EventData::new(data);
    let size = serialised.json().len();
    if size > limits.max_event_data_bytes {
        return Err(Invalid::new("data", format!("is {size} bytes serialised; the limit is {}", limits.max_event_data_bytes)));
    }
    let require_string = |name: &str| match data.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(_) => Err(Invalid::new(format!("data.{name}"), "must be a non-empty string")),
        None => Err(Invalid::new(format!("data.{name}"), format!("is required for {} events", event_type.category()))),
    };
    let require_count = |name: &str| match data.get(name) {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(()),
        Some(_) => Err(Invalid::new(format!("data.{name}"), "must be a whole number of bytes, 0 or more")),
        None => Err(Invalid::new(format!("data.{name}"), "is required for storage events")),
    };
    match event_type.category() {
        "permission" => {
            for name in ["site_url", "resource_path", "permission_type", "principal", "access_level"] {
                require_string(name)?;
            }
        }
        // A quota changed by an admin (from the audit log) carries no usage.
        "storage" if event_type.as_str() == "storage.quota_changed" => require_string("site_url")?,
        "storage" => {
            require_string("site_url")?;
            require_count("current_usage")?;
            require_count("quota")?;
            match data.get("threshold").and_then(Value::as_f64) {
                Some(t) if (0.0..=100.0).contains(&t) => {}
                Some(_) => return Err(Invalid::new("data.threshold", "must be a percentage between 0 and 100")),
                None => return Err(Invalid::new("data.threshold", "is required for storage events (a percentage, e.g. 90)")),
            }
        }
        _ => {}
    }
    Ok(serialised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: Value) -> EventInput {
        serde_json::from_value(value).unwrap()
    }

    fn permission_data() -> Value {
        json!({"site_url": "https://contoso.sharepoint.com/sites/Finance", "resource_path": "a.xlsx",
               "permission_type": "anyone_link", "principal": "x@example.net", "access_level": "view"})
    }

    #[test]
    fn event_types_are_dotted_lowercase_names() {
        assert!(EventType::parse("event", "permission.external_share_created").is_ok());
        assert!(EventType::parse("event", "a.b.c_2").is_ok());
        for bad in ["permission", "Permission.x", "permission.", ".x", "permission..x", "perm ission.x", ""] {
            assert!(EventType::parse("event", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn patterns_match_exact_prefix_and_any() {
        let share = EventType::parse("e", "permission.external_share_created").unwrap();
        let quota = EventType::parse("e", "storage.quota_exceeded").unwrap();
        let p = |s| EventPattern::parse("p", s).unwrap();
        assert!(p("*").matches(&share));
        assert!(p("permission.*").matches(&share) && !p("permission.*").matches(&quota));
        assert!(p("storage.quota_exceeded").matches(&quota) && !p("storage.quota_exceeded").matches(&share));
        assert!(!p("perm.*").matches(&share), "a prefix matches whole segments only");
        assert_eq!(p("permission.*").to_text(), "permission.*");
        for bad in ["permission*", "*.created", "Permission.*", "**", "permission"] {
            assert!(EventPattern::parse("p", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn an_event_without_id_or_timestamp_gets_both() {
        let event = NewEvent::parse(
            input(json!({
                "event": "permission.anonymous_link_created", "severity": "high", "tenant_id": "contoso",
                "data": permission_data()
            })),
            &Limits::default(),
        )
        .unwrap();
        assert!(event.id.starts_with("evt_"));
        assert!(event.occurred_at > 0);
        assert_eq!(event.tenant, TenantRef::Registered("contoso".into()));
    }

    #[test]
    fn bad_events_name_the_field_to_fix() {
        let cases = [
            (json!({"event": "x", "severity": "high", "tenant_id": "c"}), "event"),
            (json!({"event": "a.b", "severity": "urgent", "tenant_id": "c"}), "severity"),
            (json!({"event": "a.b", "severity": "low"}), "tenant"),
            (json!({"event": "a.b", "severity": "low", "tenant_id": "c", "timestamp": "noon"}), "timestamp"),
            (json!({"event": "a.b", "severity": "low", "tenant_id": "c", "event_id": "has space"}), "event_id"),
            (json!({"event": "a.b", "severity": "low", "tenant_id": "c", "data": [1]}), "data"),
            (json!({"event": "permission.x", "severity": "low", "tenant_id": "c", "data": {}}), "data.site_url"),
            (json!({"event": "storage.quota_exceeded", "severity": "low", "tenant_id": "c",
                    "data": {"site_url": "u", "current_usage": -1, "quota": 1, "threshold": 90}}), "data.current_usage"),
            (json!({"event": "a.b", "severity": "low", "tenant": {"id": "c", "display_name": "C",
                    "microsoft_tenant_id": "nope"}}), "tenant.microsoft_tenant_id"),
        ];
        for (value, field) in cases {
            let err = NewEvent::parse(input(value.clone()), &Limits::default()).unwrap_err();
            assert_eq!(err.field, field, "{value}");
        }
    }
}
