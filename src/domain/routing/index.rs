//! The rule index: which of the rules can match an event, found without checking each of them
//! (as Alertmanager's routing tree spares it walking every route). Built once per reload of the
//! rules, never per event; [`RuleIndex::decide`] answers exactly what the linear
//! [`super::decide`] answers over the same rules.
//!
//! Two cuts, each leaving out only rules that could not match:
//! - **tenant**: a rule for one tenant sees only that tenant's events; a rule for every tenant
//!   sees them all;
//! - **a required equality**: a rule whose conditions require an `eq` or `in` on a pointer
//!   ([`Condition::required_equalities`]) whose values are all strings or numbers is filed under
//!   each of those values; an event meets it only if it holds one of them there, so it is a
//!   candidate only for the events whose value at that pointer it is filed under.
//!
//! Every other enabled rule is a candidate for every event of its tenants. Candidates are checked
//! in decision order (their place among the sorted rules) by the same [`RoutingRule::check`], so
//! the deciding rule for each channel is the one the linear decision finds. Disabled rules are
//! never candidates (they never match).

use std::collections::HashMap;

use serde_json::Value;

use super::{decide_among, sort, ChannelFacts, Decision, EventView, RoutingRule};
use crate::domain::condition::{find, pointer_tokens, Condition};
use crate::domain::silence::Silence;
use crate::domain::time::Millis;

/// The rules in decision order, and where each can match.
#[derive(Default)]
pub struct RuleIndex {
    rules: Vec<RoutingRule>,
    /// Rules for every tenant.
    every_tenant: Scope,
    /// Rules for one tenant, by its id.
    by_tenant: HashMap<String, Scope>,
}

/// The rules of one tenant scope: those always checked, and those filed by a value.
#[derive(Default)]
struct Scope {
    /// Places (in the sorted rules) of the rules checked for every event of the scope.
    always: Vec<usize>,
    /// One entry per pointer some rule of the scope is filed under.
    by_value: Vec<ValueIndex>,
}

/// The rules filed under the values at one pointer.
struct ValueIndex {
    pointer: String,
    /// `pointer`'s tokens, split once.
    tokens: Vec<String>,
    texts: HashMap<String, Vec<usize>>,
    /// By [`number_key`].
    numbers: HashMap<u64, Vec<usize>>,
}

/// A number's key: equal numbers (as the conditions compare them: `1` equals `1.0`, `0` equals
/// `-0.0`) have equal keys. Unequal ones may share a key (two large integers one `f64` apart):
/// the index only narrows, the rule's own check decides.
fn number_key(number: f64) -> u64 {
    if number == 0.0 {
        0f64.to_bits()
    } else {
        number.to_bits()
    }
}

/// The equality a rule is filed under: the required one whose pointer tells the scope's rules
/// apart best (most distinct values among them, per value of this leaf; the first of equals);
/// `None` if none is made of strings and numbers only.
fn filing<'a>(conditions: &'a Condition, distinct: &HashMap<&str, usize>) -> Option<(&'a str, &'a [Value])> {
    let mut best = None;
    let mut best_score = -1.0;
    for (pointer, values) in indexable(conditions) {
        let score = distinct.get(pointer).copied().unwrap_or(0) as f64 / values.len().max(1) as f64;
        if score > best_score {
            (best, best_score) = (Some((pointer, values)), score);
        }
    }
    best
}

/// The required equalities a rule can be filed under: values all strings or numbers.
fn indexable(conditions: &Condition) -> impl Iterator<Item = (&str, &[Value])> {
    conditions.required_equalities().into_iter().filter(|(_, values)| values.iter().all(|v| v.is_string() || v.as_f64().is_some()))
}

impl Scope {
    /// Files the rules at `places` (a scope's rules, in decision order).
    fn build(rules: &[RoutingRule], places: Vec<usize>) -> Self {
        // How many distinct values each pointer has among the scope's rules: the more, the
        // fewer rules share one.
        let mut values_at: HashMap<&str, std::collections::HashSet<String>> = HashMap::new();
        for &place in &places {
            for (pointer, values) in rules[place].noise.conditions.iter().flat_map(indexable) {
                values_at.entry(pointer).or_default().extend(values.iter().map(Value::to_string));
            }
        }
        let distinct: HashMap<&str, usize> = values_at.into_iter().map(|(p, v)| (p, v.len())).collect();
        let mut scope = Scope::default();
        for place in places {
            let Some((pointer, values)) = rules[place].noise.conditions.as_ref().and_then(|c| filing(c, &distinct)) else {
                scope.always.push(place);
                continue;
            };
            let index = match scope.by_value.iter().position(|i| i.pointer == pointer) {
                Some(i) => &mut scope.by_value[i],
                None => {
                    scope.by_value.push(ValueIndex { pointer: pointer.to_string(), tokens: pointer_tokens(pointer), texts: HashMap::new(), numbers: HashMap::new() });
                    scope.by_value.last_mut().expect("just pushed")
                }
            };
            for value in values {
                let bucket = match value {
                    Value::String(text) => index.texts.entry(text.clone()).or_default(),
                    Value::Number(n) => index.numbers.entry(number_key(n.as_f64().unwrap_or_default())).or_default(),
                    // Only strings and numbers are filed (`indexable`).
                    _ => continue,
                };
                // An `in` may list a value twice; the rule is filed once under it.
                if bucket.last() != Some(&place) {
                    bucket.push(place);
                }
            }
        }
        scope
    }

    /// Adds the places of this scope's rules that can match the event.
    fn candidates(&self, view: &EventView<'_>, found: &mut Vec<usize>) {
        found.extend_from_slice(&self.always);
        for index in &self.by_value {
            let bucket = match find(view.payload(), &index.tokens) {
                Some(Value::String(text)) => index.texts.get(text.as_str()),
                Some(Value::Number(n)) => n.as_f64().and_then(|f| index.numbers.get(&number_key(f))),
                // Absent, or a value no string or number equals: no rule filed here can match.
                _ => None,
            };
            found.extend(bucket.into_iter().flatten());
        }
    }
}

impl RuleIndex {
    /// Indexes `rules` (put in decision order, [`sort`]).
    pub fn new(mut rules: Vec<RoutingRule>) -> Self {
        sort(&mut rules);
        let mut every_tenant = Vec::new();
        let mut by_tenant: HashMap<String, Vec<usize>> = HashMap::new();
        for (place, rule) in rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            match &rule.filter.tenant_id {
                None => every_tenant.push(place),
                Some(tenant) => by_tenant.entry(tenant.clone()).or_default().push(place),
            }
        }
        let every_tenant = Scope::build(&rules, every_tenant);
        let by_tenant = by_tenant.into_iter().map(|(tenant, places)| (tenant, Scope::build(&rules, places))).collect();
        Self { rules, every_tenant, by_tenant }
    }

    /// Every rule, in decision order.
    pub fn rules(&self) -> &[RoutingRule] {
        &self.rules
    }

    /// The rules that can match the event, in decision order.
    pub fn candidates<'s>(&'s self, view: &EventView<'_>) -> impl Iterator<Item = &'s RoutingRule> {
        let mut found = Vec::new();
        self.every_tenant.candidates(view, &mut found);
        if let Some(scope) = self.by_tenant.get(view.event().tenant.id()) {
            scope.candidates(view, &mut found);
        }
        // Each rule is filed once in one scope, and an event's value at a pointer finds one
        // bucket: no place comes twice.
        found.sort_unstable();
        found.into_iter().map(|place| &self.rules[place])
    }

    /// [`super::decide`] over the rules that can match: the same decisions.
    pub fn decide(&self, silences: &[Silence], channel: &dyn Fn(&str) -> Option<ChannelFacts>, view: &EventView<'_>, at: Millis) -> Vec<Decision> {
        decide_among(self.candidates(view), silences, channel, view, at)
    }
}

#[cfg(test)]
mod tests;
