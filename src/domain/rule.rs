//! Alert rules: which events (type patterns, minimum severity, tenant) go to which channels.

use super::event::{EventPattern, EventType};
use super::severity::Severity;
use super::tenant::parse_tenant_id;
use super::limits::Limits;
use super::{bounded_text, Invalid};
use super::active_hours::ActiveHours;
use super::condition::Condition;
use super::noise::{GroupSpec, SuppressSpec};
use super::routing::RuleNoise;


/// What a rule selects, without its identity or targets: the part matching needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFilter {
    /// `None` selects every tenant.
    pub tenant_id: Option<String>,
    pub event_types: Vec<EventPattern>,
    pub min_severity: Severity,
}

impl RuleFilter {
    /// Does an event of this type, severity and tenant trigger the rule?
    pub fn matches(&self, event_type: &EventType, severity: Severity, tenant_id: &str) -> bool {
        severity >= self.min_severity
            && self.tenant_id.as_deref().is_none_or(|t| t == tenant_id)
            && self.event_types.iter().any(|p| p.matches(event_type))
    }
}

pub fn parse_name(value: &str, limits: &Limits) -> Result<String, Invalid> {
    bounded_text("name", value, limits.max_name)
}

pub fn parse_tenant(value: Option<&str>) -> Result<Option<String>, Invalid> {
    value.map(|t| parse_tenant_id("tenant_id", t)).transpose()
}

/// At least one and at most `max_rule_event_types` patterns, duplicates removed.
pub fn parse_event_types(values: &[String], limits: &Limits) -> Result<Vec<EventPattern>, Invalid> {
    if values.is_empty() {
        return Err(Invalid::new("event_types", "must list at least one event type or pattern, e.g. [\"permission.*\"]"));
    }
    if values.len() > limits.max_rule_event_types {
        return Err(Invalid::new("event_types", format!("has {} entries; the limit is {}", values.len(), limits.max_rule_event_types)));
    }
    let mut patterns: Vec<EventPattern> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let pattern = EventPattern::parse(&format!("event_types[{i}]"), value)?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// At least one and at most `max_rule_channels` channel ids, duplicates removed. Whether they
/// exist is the store's question.
/// A rule's target channels, each once. Only a disabled rule may have none: that is where a rule
/// ends up when its last channel is deleted, and it stays editable until it gets a channel again.
pub fn parse_channel_ids(values: &[String], enabled: bool, limits: &Limits) -> Result<Vec<String>, Invalid> {
    if values.is_empty() && enabled {
        return Err(Invalid::new(
            "channel_ids",
            "must list at least one channel id for an enabled rule (a rule without channels must stay disabled)",
        ));
    }
    if values.len() > limits.max_rule_channels {
        return Err(Invalid::new("channel_ids", format!("has {} entries; the limit is {}", values.len(), limits.max_rule_channels)));
    }
    let mut ids: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if !ids.contains(value) {
            ids.push(value.clone());
        }
    }
    Ok(ids)
}

/// Lowest and highest `priority`.
pub const PRIORITIES: std::ops::RangeInclusive<i64> = 0..=1_000_000;

/// A rule's noise-control fields as the client wrote them (each absent or `null` when unset),
/// parsed into [`RuleNoise`]; errors name the path in the rule (`conditions.any[2].value`).
#[derive(Debug, Clone, Default)]
pub struct NoiseInput {
    pub priority: Option<serde_json::Value>,
    pub conditions: Option<serde_json::Value>,
    pub active_hours: Option<serde_json::Value>,
    pub suppress: Option<serde_json::Value>,
    pub group: Option<serde_json::Value>,
}

fn given(value: &Option<serde_json::Value>) -> Option<&serde_json::Value> {
    value.as_ref().filter(|v| !v.is_null())
}

impl NoiseInput {
    pub fn parse(&self) -> Result<RuleNoise, Invalid> {
        let priority = match given(&self.priority) {
            None => super::routing::DEFAULT_PRIORITY,
            Some(value) => match value.as_i64() {
                Some(n) if PRIORITIES.contains(&n) => n as i32,
                _ => {
                    return Err(Invalid::new(
                        "priority",
                        format!("must be a whole number from {} to {} (lower decides first; default 100)", PRIORITIES.start(), PRIORITIES.end()),
                    ))
                }
            },
        };
        Ok(RuleNoise {
            priority,
            conditions: given(&self.conditions).map(|v| Condition::parse(v, "conditions")).transpose()?,
            active_hours: given(&self.active_hours).map(|v| ActiveHours::parse(v, "active_hours")).transpose()?,
            suppress: given(&self.suppress).map(|v| SuppressSpec::parse(v, "suppress")).transpose()?,
            group: given(&self.group).map(|v| GroupSpec::parse(v, "group")).transpose()?,
        })
    }

    /// The fields as stored and answered: conditions as written, the others normalised.
    pub fn normalised(&self, noise: &RuleNoise) -> StoredNoise {
        StoredNoise {
            priority: noise.priority,
            conditions: given(&self.conditions).map(|v| v.to_string()),
            active_hours: noise.active_hours.as_ref().map(|h| h.to_json().to_string()),
            suppress: noise.suppress.as_ref().map(|s| s.to_json().to_string()),
            group: noise.group.as_ref().map(|g| g.to_json().to_string()),
        }
    }
}

/// The noise-control fields as stored: JSON texts (`None` when unset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredNoise {
    pub priority: i32,
    pub conditions: Option<String>,
    pub active_hours: Option<String>,
    pub suppress: Option<String>,
    pub group: Option<String>,
}

impl StoredNoise {
    /// Parsed again when loaded; `Err` only if a stored field no longer parses.
    pub fn parse(&self) -> Result<RuleNoise, Invalid> {
        let value = |text: &Option<String>| text.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose().ok().flatten();
        NoiseInput {
            priority: Some(serde_json::Value::from(self.priority)),
            conditions: value(&self.conditions),
            active_hours: value(&self.active_hours),
            suppress: value(&self.suppress),
            group: value(&self.group),
        }
        .parse()
    }

    /// As the API answers them: JSON values (`null` when unset).
    pub fn as_input(&self) -> NoiseInput {
        let value = |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
        NoiseInput {
            priority: Some(serde_json::Value::from(self.priority)),
            conditions: value(&self.conditions),
            active_hours: value(&self.active_hours),
            suppress: value(&self.suppress),
            group: value(&self.group),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(tenant: Option<&str>, types: &[&str], min: Severity) -> RuleFilter {
        let types: Vec<String> = types.iter().map(|s| s.to_string()).collect();
        RuleFilter { tenant_id: tenant.map(str::to_string), event_types: parse_event_types(&types, &Limits::default()).unwrap(), min_severity: min }
    }

    #[test]
    fn a_rule_matches_on_type_severity_and_tenant() {
        let share = EventType::parse("e", "permission.external_share_created").unwrap();
        let rule = filter(Some("contoso"), &["permission.*"], Severity::Medium);
        assert!(rule.matches(&share, Severity::High, "contoso"));
        assert!(rule.matches(&share, Severity::Medium, "contoso"));
        assert!(!rule.matches(&share, Severity::Low, "contoso"), "below the minimum severity");
        assert!(!rule.matches(&share, Severity::High, "fabrikam"), "another tenant");
        assert!(filter(None, &["*"], Severity::Low).matches(&share, Severity::Low, "fabrikam"));
    }

    #[test]
    fn rule_lists_must_not_be_empty() {
        let limits = Limits::default();
        assert_eq!(parse_event_types(&[], &limits).unwrap_err().field, "event_types");
        assert_eq!(parse_event_types(&["ok.*".into(), "Bad".into()], &limits).unwrap_err().field, "event_types[1]");
        assert_eq!(parse_channel_ids(&[], true, &limits).unwrap_err().field, "channel_ids");
        assert_eq!(parse_channel_ids(&[], false, &limits).unwrap(), Vec::<String>::new(), "a disabled rule may have none");
        assert_eq!(parse_channel_ids(&["a".into(), "a".into()], true, &limits).unwrap(), vec!["a".to_string()]);
    }

    #[test]
    fn noise_fields_parse_with_their_paths_and_round_trip() {
        use serde_json::json;
        let input = NoiseInput {
            priority: Some(json!(5)),
            conditions: Some(json!({"any": [{"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}]})),
            suppress: Some(json!({"for": "1h"})),
            group: Some(json!({"by": ["/data/site_url"]})),
            ..Default::default()
        };
        let noise = input.parse().unwrap();
        let stored = input.normalised(&noise);
        assert_eq!(stored.priority, 5);
        assert_eq!(stored.group.as_deref(), Some(r#"{"by":["/data/site_url"],"wait":"30s","interval":"5m"}"#));
        assert_eq!(stored.parse().unwrap().group, noise.group);
        assert_eq!(NoiseInput::default().parse().unwrap().priority, 100);
        for (input, field) in [
            (NoiseInput { priority: Some(json!("1")), ..Default::default() }, "priority"),
            (NoiseInput { priority: Some(json!(-1)), ..Default::default() }, "priority"),
            (NoiseInput { conditions: Some(json!({"any": [{"path": "/a", "op": "eq", "value": 1}, {"path": "/a", "op": "exists", "value": true}, {"path": "/a", "op": "gt", "value": "1"}]})), ..Default::default() }, "conditions.any[2].value"),
            (NoiseInput { group: Some(json!({"wait": "1h", "interval": "5m"})), ..Default::default() }, "group.wait"),
        ] {
            assert_eq!(input.parse().unwrap_err().field, field);
        }
    }
}
