//! How an event is routed (SPEC section 16): which rules match it, which rule decides each
//! (event, channel) pair, and what happens to the pair: silenced, or sent (after an optional
//! suppression check and grouping, which need the database's state and happen when the event is
//! stored). Pure: the rule matcher decides every event through a [`RuleIndex`] (built once per
//! reload, in `routing/index.rs`; the same answer as [`decide`] over every rule); the preview
//! ([`explain`], in `routing/explain.rs`) calls [`decide`], then says for every rule why it
//! matches or not.
//!
//! Order for a pair: the deciding rule is the matching rule with the lowest `priority`, then the
//! oldest (rules are given sorted, [`sort`]); then silences; then suppression; then grouping.
//! SIEM channels (`splunk`, `sentinel`) ignore `suppress` and `group`.

use std::cell::{Cell, OnceCell};

use serde_json::{Map, Value};

use super::active_hours::ActiveHours;
use super::condition::Condition;
use super::event::{NewEvent, TenantRef};
use super::noise::{group_hash, key_hash, key_of, GroupSpec, SuppressSpec};
use super::rule::RuleFilter;
use super::silence::Silence;
use super::tenant::Tenant;
use super::time::Millis;

mod explain;
mod index;
pub use explain::{explain, ChannelOutcome, Explanation, NoiseState, OpenGroup, Outcome, PairKey, Reason, Window};
pub use index::RuleIndex;

/// Priority of a rule that does not give one.
pub const DEFAULT_PRIORITY: i32 = 100;

/// A rule's noise-control fields, parsed.
#[derive(Debug, Clone)]
pub struct RuleNoise {
    pub priority: i32,
    pub conditions: Option<Condition>,
    pub active_hours: Option<ActiveHours>,
    pub suppress: Option<SuppressSpec>,
    pub group: Option<GroupSpec>,
}

impl Default for RuleNoise {
    fn default() -> Self {
        Self { priority: DEFAULT_PRIORITY, conditions: None, active_hours: None, suppress: None, group: None }
    }
}

/// A rule as routing sees it.
#[derive(Debug, Clone)]
pub struct RoutingRule {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// Milliseconds; the older of two rules of one priority decides.
    pub created_at: Millis,
    pub filter: RuleFilter,
    pub noise: RuleNoise,
    pub channel_ids: Vec<String>,
}

/// Why a rule does not match an event: the first reason, in the order checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    Disabled,
    EventType,
    Severity,
    Tenant,
    /// The condition node that failed (`conditions.any[1]`).
    Condition(String),
    ActiveHours,
}

impl Miss {
    pub fn kind(&self) -> &'static str {
        match self {
            Miss::Disabled => "disabled",
            Miss::EventType => "event_type",
            Miss::Severity => "severity",
            Miss::Tenant => "tenant",
            Miss::Condition(_) => "condition",
            Miss::ActiveHours => "active_hours",
        }
    }
}

/// An event's section 4 payload as a JSON value, built the first time a rule or a silence needs
/// it (most rules need only the type, severity and tenant).
pub struct EventView<'a> {
    event: &'a NewEvent,
    /// The tenant as registered, for an event that names it by id.
    registered: Option<&'a Tenant>,
    /// The event's `data` already parsed, if the caller has it (moved into the payload).
    data: Cell<Option<Map<String, Value>>>,
    value: OnceCell<Value>,
}

impl<'a> EventView<'a> {
    pub fn new(event: &'a NewEvent, registered: Option<&'a Tenant>) -> Self {
        Self { event, registered, data: Cell::new(None), value: OnceCell::new() }
    }

    /// As [`EventView::new`], with the event's `data` already parsed ([`EventData::take_parsed`]),
    /// so the payload does not parse its text again.
    ///
    /// [`EventData::take_parsed`]: super::event::EventData::take_parsed
    pub fn with_data(event: &'a NewEvent, registered: Option<&'a Tenant>, data: Option<Map<String, Value>>) -> Self {
        Self { data: Cell::new(data), ..Self::new(event, registered) }
    }

    pub fn event(&self) -> &NewEvent {
        self.event
    }

    /// The payload a webhook receives (without `test`).
    pub fn payload(&self) -> &Value {
        self.value.get_or_init(|| {
            let tenant = match &self.event.tenant {
                TenantRef::Full(tenant) => serde_json::to_value(tenant).unwrap_or(Value::Null),
                TenantRef::Registered(id) => match self.registered {
                    Some(tenant) => serde_json::to_value(tenant).unwrap_or(Value::Null),
                    None => serde_json::json!({ "id": id }),
                },
                TenantRef::Router => Value::Null,
            };
            let data = match self.data.take() {
                Some(data) => Value::Object(data),
                None => serde_json::from_str(self.event.data.json()).unwrap_or(Value::Object(Map::new())),
            };
            serde_json::json!({
                "event_id": self.event.id,
                "event": self.event.event_type.as_str(),
                "timestamp": super::time::rfc3339_compact(self.event.occurred_at),
                "severity": self.event.severity.as_str(),
                "tenant": tenant,
                "data": data,
            })
        })
    }
}

impl RoutingRule {
    /// Does the rule match the event at `at` (the moment of ingestion)? The first reason if not.
    pub fn check(&self, view: &EventView<'_>, at: Millis) -> Result<(), Miss> {
        self.check_event(view.event())?;
        if let Some(conditions) = &self.noise.conditions {
            if let Some(node) = conditions.first_failure(view.payload()) {
                return Err(Miss::Condition(node.to_string()));
            }
        }
        if self.noise.active_hours.as_ref().is_some_and(|hours| !hours.contains(at)) {
            return Err(Miss::ActiveHours);
        }
        Ok(())
    }

    /// Whether the rule matches, as [`RoutingRule::check`] decides, without finding the reason
    /// (routing's hot path: the cheapest conditions first, the active hours before them).
    pub fn matches(&self, view: &EventView<'_>, at: Millis) -> bool {
        self.check_event(view.event()).is_ok()
            && !self.noise.active_hours.as_ref().is_some_and(|hours| !hours.contains(at))
            && self.noise.conditions.as_ref().is_none_or(|conditions| conditions.matches(view.payload()))
    }

    /// The checks on the event's own fields.
    fn check_event(&self, event: &NewEvent) -> Result<(), Miss> {
        if !self.enabled {
            return Err(Miss::Disabled);
        }
        if !self.filter.event_types.iter().any(|p| p.matches(&event.event_type)) {
            return Err(Miss::EventType);
        }
        if event.severity < self.filter.min_severity {
            return Err(Miss::Severity);
        }
        if self.filter.tenant_id.as_deref().is_some_and(|t| t != event.tenant.id()) {
            return Err(Miss::Tenant);
        }
        Ok(())
    }
}

/// Orders rules as they decide: lowest priority first, then the oldest, then by id.
pub fn sort(rules: &mut [RoutingRule]) {
    rules.sort_by(|a, b| (a.noise.priority, a.created_at, &a.id).cmp(&(b.noise.priority, b.created_at, &b.id)));
}

/// What routing knows of a channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelFacts {
    /// A SIEM (`splunk`, `sentinel`): receives every event; ignores `suppress` and `group`.
    pub siem: bool,
}

/// The decision for one (event, channel) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub channel_id: String,
    /// The rule that decides the pair.
    pub rule_id: String,
    pub fate: Fate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// In a silence's window: recorded, not sent.
    Silenced { silence_id: String },
    /// Sent, unless `suppress` finds a window open for its key; grouped if `group` is given.
    Send { suppress: Option<Suppression>, group: Option<Joining> },
}

/// The suppression window an event's pair falls under.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// What identifies the window: [`key_hash`] of the values at `by`.
    pub key: String,
    pub window_ms: i64,
}

/// The group an event's pair joins (or opens).
#[derive(Debug, Clone, PartialEq)]
pub struct Joining {
    pub key: Map<String, Value>,
    /// Canonical text of `key`.
    pub key_text: String,
    /// What identifies the group ([`group_hash`] of `key_text` and `settings`).
    pub key_hash: String,
    /// The settings a new group opens with.
    pub settings: GroupSpec,
    /// The rule's name as routing knew it: a group keeps it, for its notifications' sake, should
    /// the rule be deleted before the group sends.
    pub rule_name: String,
}

/// Every (event, channel) pair the event makes: for each channel named by a matching rule (in
/// decision order) and known to `channel` (enabled), the deciding rule's fate for it. `rules`
/// are sorted ([`sort`]); `silences` are those not ended.
pub fn decide(
    rules: &[RoutingRule],
    silences: &[Silence],
    channel: &dyn Fn(&str) -> Option<ChannelFacts>,
    view: &EventView<'_>,
    at: Millis,
) -> Vec<Decision> {
    decide_among(rules, silences, channel, view, at)
}

/// As [`decide`], over the rules given in decision order; the rule matcher gives those its
/// [`RuleIndex`] finds can match, which decides the same.
pub fn decide_among<'r>(
    rules: impl IntoIterator<Item = &'r RoutingRule>,
    silences: &[Silence],
    channel: &dyn Fn(&str) -> Option<ChannelFacts>,
    view: &EventView<'_>,
    at: Millis,
) -> Vec<Decision> {
    let mut decisions: Vec<Decision> = Vec::new();
    for rule in rules {
        if !rule.matches(view, at) {
            continue;
        }
        for channel_id in &rule.channel_ids {
            if decisions.iter().any(|d| &d.channel_id == channel_id) {
                continue;
            }
            let Some(facts) = channel(channel_id) else { continue };
            decisions.push(Decision { channel_id: channel_id.clone(), rule_id: rule.id.clone(), fate: fate(rule, silences, channel_id, facts, view, at) });
        }
    }
    decisions
}

/// What the deciding rule does with one pair: silences first, then suppression and grouping.
pub fn fate(rule: &RoutingRule, silences: &[Silence], channel_id: &str, facts: ChannelFacts, view: &EventView<'_>, at: Millis) -> Fate {
    if let Some(silence) = silences.iter().find(|s| s.holds(at, &rule.id, channel_id, facts.siem, view.payload())) {
        return Fate::Silenced { silence_id: silence.id.clone() };
    }
    if facts.siem {
        return Fate::Send { suppress: None, group: None };
    }
    let suppress = rule.noise.suppress.as_ref().map(|spec| Suppression { key: key_hash(&key_of(&spec.by, view.payload()).1), window_ms: spec.window.as_millis() as i64 });
    let group = rule.noise.group.as_ref().map(|spec| {
        let (key, key_text) = key_of(&spec.by, view.payload());
        Joining { key_hash: group_hash(&key_text, spec), key, key_text, settings: spec.clone(), rule_name: rule.name.clone() }
    });
    Fate::Send { suppress, group }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventData, EventType};
    use crate::domain::rule::parse_event_types;
    use crate::domain::severity::Severity;
    use serde_json::json;

    fn event(principal: &str, severity: Severity) -> NewEvent {
        let data = json!({"principal": principal, "site_url": "https://t/sites/a"});
        NewEvent {
            id: "evt_1".into(),
            event_type: EventType::parse("e", "permission.external_share_created").unwrap(),
            occurred_at: 0,
            severity,
            tenant: TenantRef::Registered("contoso".into()),
            data: EventData::new(data.as_object().unwrap()),
        }
    }

    fn rule(id: &str, priority: i32, created_at: i64, channels: &[&str], noise: RuleNoise) -> RoutingRule {
        RoutingRule {
            id: id.into(),
            name: id.into(),
            enabled: true,
            created_at,
            filter: RuleFilter {
                tenant_id: None,
                event_types: parse_event_types(&["permission.*".into()], &Default::default()).unwrap(),
                min_severity: Severity::Low,
            },
            noise: RuleNoise { priority, ..noise },
            channel_ids: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn gmail() -> Condition {
        Condition::parse(&json!({"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}), "conditions").unwrap()
    }

    #[test]
    fn the_lowest_priority_then_the_oldest_rule_decides_each_channel() {
        let grouped = RuleNoise { group: Some(GroupSpec::parse(&json!({"by": ["/data/site_url"]}), "group").unwrap()), ..Default::default() };
        let mut rules = vec![
            rule("rule_b", 100, 2, &["ch_1", "ch_2"], RuleNoise::default()),
            rule("rule_a", 100, 1, &["ch_2"], grouped),
            rule("rule_c", 10, 3, &["ch_3"], RuleNoise { conditions: Some(gmail()), ..Default::default() }),
        ];
        sort(&mut rules);
        assert_eq!(rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rule_c", "rule_a", "rule_b"]);
        let all = |_: &str| Some(ChannelFacts { siem: false });
        let share = event("someone@contoso.com", Severity::High);
        let decisions = decide(&rules, &[], &all, &EventView::new(&share, None), 0);
        let deciders: Vec<(&str, &str)> = decisions.iter().map(|d| (d.channel_id.as_str(), d.rule_id.as_str())).collect();
        assert_eq!(deciders, [("ch_2", "rule_a"), ("ch_1", "rule_b")], "rule_c's condition fails; rule_a is older than rule_b");
        assert!(matches!(&decisions[0].fate, Fate::Send { group: Some(j), .. } if j.key_text == r#"{"/data/site_url":"https://t/sites/a"}"#));

        let gmail_share = event("x@gmail.com", Severity::High);
        let decisions = decide(&rules, &[], &all, &EventView::new(&gmail_share, None), 0);
        assert_eq!(decisions[0].rule_id, "rule_c");
        // A SIEM ignores grouping; an unknown (disabled) channel gets nothing.
        let siem_2 = |id: &str| (id != "ch_1").then_some(ChannelFacts { siem: id == "ch_2" });
        let decisions = decide(&rules, &[], &siem_2, &EventView::new(&share, None), 0);
        assert_eq!(decisions, vec![Decision { channel_id: "ch_2".into(), rule_id: "rule_a".into(), fate: Fate::Send { suppress: None, group: None } }]);
    }

    #[test]
    fn a_miss_names_its_first_reason() {
        let mut r = rule("rule_a", 100, 1, &["ch"], RuleNoise { conditions: Some(gmail()), ..Default::default() });
        let share = event("someone@contoso.com", Severity::Low);
        let view = EventView::new(&share, None);
        assert_eq!(r.check(&view, 0), Err(Miss::Condition("conditions".into())));
        r.filter.min_severity = Severity::High;
        assert_eq!(r.check(&view, 0), Err(Miss::Severity));
        r.filter.tenant_id = Some("fabrikam".into());
        r.filter.min_severity = Severity::Low;
        assert_eq!(r.check(&view, 0), Err(Miss::Tenant));
        r.enabled = false;
        assert_eq!(r.check(&view, 0).unwrap_err().kind(), "disabled");
        assert_eq!(view.payload()["tenant"], json!({"id": "contoso"}), "a tenant named by id and not known: its id only");
    }
}
