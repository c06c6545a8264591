//! Alert rules: which events (type patterns, minimum severity, tenant) go to which channels.

use super::event::{EventPattern, EventType};
use super::severity::Severity;
use super::tenant::parse_tenant_id;
use super::limits::Limits;
use super::{bounded_text, Invalid};


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
}
