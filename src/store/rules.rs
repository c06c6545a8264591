//! Queries on `rules` and `rule_channels`, and the routing snapshot the RuleMatcher holds.

use std::collections::HashMap;

use diesel::prelude::*;

use super::models::{ChannelRow, RuleRow};
use super::schema::{channels, rule_channels, rules, tenants};
use super::{write, Conn, StoreError};
use crate::domain::event::EventPattern;
use crate::domain::rule::{RuleFilter, StoredNoise};
use crate::domain::routing::RoutingRule;
use crate::domain::severity::Severity;
use crate::domain::Invalid;

/// A rule with its target channels, in the order given.
#[derive(Debug, Clone)]
pub struct RuleWithChannels {
    pub row: RuleRow,
    pub channel_ids: Vec<String>,
}

/// A new or fully restated rule, already parsed.
pub struct RuleSpec {
    pub name: String,
    pub tenant_id: Option<String>,
    pub event_types: Vec<EventPattern>,
    pub min_severity: Severity,
    pub channel_ids: Vec<String>,
    pub enabled: bool,
    /// Priority, conditions, active hours, suppression and grouping, as stored.
    pub noise: StoredNoise,
}

/// Everything the RuleMatcher needs: enabled rules and live, enabled channels.
pub struct RoutingSnapshot {
    /// In the order they decide (`routing::sort`).
    pub rules: Vec<RoutingRule>,
    /// Silences not ended yet.
    pub silences: Vec<crate::domain::silence::Silence>,
    /// Registered tenants, for the payload conditions are evaluated on.
    pub tenants: HashMap<String, crate::domain::tenant::Tenant>,
    pub channels: Vec<ChannelRow>,
    /// The stored circuit-breaker health of those channels that have one.
    pub health: std::collections::HashMap<String, crate::domain::breaker::Health>,
    /// Channels the router disabled whose event is not stored yet: `(id, name, reason)`.
    pub untold: Vec<(String, String, String)>,
}

pub fn list(conn: &mut Conn) -> Result<Vec<RuleWithChannels>, StoreError> {
    let rows: Vec<RuleRow> = rules::table.order(rules::id.asc()).select(RuleRow::as_select()).load(conn)?;
    attach_channels(conn, rows)
}

pub fn get(conn: &mut Conn, id: &str) -> Result<RuleWithChannels, StoreError> {
    let row = rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("rule"))?;
    Ok(attach_channels(conn, vec![row])?.remove(0))
}

pub fn create(conn: &mut Conn, id: &str, spec: &RuleSpec, now: i64) -> Result<RuleWithChannels, StoreError> {
    write(conn, |conn| {
        check_references(conn, spec)?;
        let row = RuleRow {
            id: id.to_string(),
            name: spec.name.clone(),
            tenant_id: spec.tenant_id.clone(),
            event_types: patterns_json(&spec.event_types),
            min_severity: spec.min_severity.as_str().to_string(),
            enabled: spec.enabled,
            created_at: now,
            updated_at: now,
            priority: spec.noise.priority,
            conditions: spec.noise.conditions.clone(),
            active_hours: spec.noise.active_hours.clone(),
            suppress: spec.noise.suppress.clone(),
            group_spec: spec.noise.group.clone(),
        };
        diesel::insert_into(rules::table).values(&row).execute(conn)?;
        set_channels(conn, id, &spec.channel_ids)?;
        Ok(RuleWithChannels { row, channel_ids: spec.channel_ids.clone() })
    })
}

/// Replaces a rule's fields with `spec` (the caller merged a PATCH into the current rule).
pub fn replace(conn: &mut Conn, id: &str, spec: &RuleSpec, now: i64) -> Result<RuleWithChannels, StoreError> {
    write(conn, |conn| {
        let mut current = get(conn, id)?;
        check_references(conn, spec)?;
        diesel::update(rules::table.find(id))
            .set((
                rules::name.eq(&spec.name),
                rules::tenant_id.eq(&spec.tenant_id),
                rules::event_types.eq(patterns_json(&spec.event_types)),
                rules::min_severity.eq(spec.min_severity.as_str()),
                rules::enabled.eq(spec.enabled),
                rules::updated_at.eq(now),
                rules::priority.eq(spec.noise.priority),
                rules::conditions.eq(&spec.noise.conditions),
                rules::active_hours.eq(&spec.noise.active_hours),
                rules::suppress.eq(&spec.noise.suppress),
                rules::group_spec.eq(&spec.noise.group),
            ))
            .execute(conn)?;
        // An open group keeps the settings it opened with; a change to what it collects closes
        // it (it still sends what it holds at its flush time).
        let same_channels = current.channel_ids.len() == spec.channel_ids.len() && current.channel_ids.iter().all(|c| spec.channel_ids.contains(c));
        let regrouped = current.row.group_spec != spec.noise.group || current.row.conditions != spec.noise.conditions || !same_channels || !spec.enabled;
        if regrouped {
            super::groups::close_for_rule(conn, id, None)?;
        }
        diesel::delete(rule_channels::table.filter(rule_channels::rule_id.eq(id))).execute(conn)?;
        set_channels(conn, id, &spec.channel_ids)?;
        current.row.updated_at = now;
        let row = RuleRow {
            name: spec.name.clone(),
            tenant_id: spec.tenant_id.clone(),
            event_types: patterns_json(&spec.event_types),
            min_severity: spec.min_severity.as_str().to_string(),
            enabled: spec.enabled,
            priority: spec.noise.priority,
            conditions: spec.noise.conditions.clone(),
            active_hours: spec.noise.active_hours.clone(),
            suppress: spec.noise.suppress.clone(),
            group_spec: spec.noise.group.clone(),
            ..current.row
        };
        Ok(RuleWithChannels { row, channel_ids: spec.channel_ids.clone() })
    })
}

pub fn delete(conn: &mut Conn, id: &str) -> Result<(), StoreError> {
    write(conn, |conn| {
        let rule = get(conn, id)?;
        super::groups::close_for_rule(conn, id, Some(&rule.row.name))?;
        diesel::delete(rule_channels::table.filter(rule_channels::rule_id.eq(id))).execute(conn)?;
        diesel::delete(rules::table.find(id)).execute(conn)?;
        Ok(())
    })
}

/// The enabled rules and the live, enabled channels, for matching.
pub fn routing_snapshot(conn: &mut Conn) -> Result<RoutingSnapshot, StoreError> {
    let channels: Vec<ChannelRow> = channels::table
        .filter(channels::deleted_at.is_null())
        .filter(channels::enabled.eq(true))
        .select(ChannelRow::as_select())
        .load(conn)?;
    let rows: Vec<RuleRow> = rules::table.filter(rules::enabled.eq(true)).select(RuleRow::as_select()).load(conn)?;
    let mut rules: Vec<RoutingRule> = attach_channels(conn, rows)?.iter().filter_map(RuleWithChannels::routing).collect();
    crate::domain::routing::sort(&mut rules);
    let ids: Vec<String> = channels.iter().map(|c| c.id.clone()).collect();
    let health = super::channels::health(conn, &ids)?;
    let untold = super::channels::untold_disabled(conn)?;
    let silences = super::silences::current(conn, crate::domain::time::now_ms())?;
    let tenants = super::tenants::list(conn)?.iter().map(|row| (row.id.clone(), row.to_tenant())).collect();
    Ok(RoutingSnapshot { rules, silences, tenants, channels, health, untold })
}

impl RuleWithChannels {
    /// The stored patterns as text, as clients wrote them.
    pub fn event_type_texts(&self) -> Vec<String> {
        serde_json::from_str(&self.row.event_types).unwrap_or_default()
    }

    /// The noise-control fields as stored.
    pub fn noise(&self) -> StoredNoise {
        StoredNoise {
            priority: self.row.priority,
            conditions: self.row.conditions.clone(),
            active_hours: self.row.active_hours.clone(),
            suppress: self.row.suppress.clone(),
            group: self.row.group_spec.clone(),
        }
    }

    /// The rule as routing sees it; `None` only if the stored row no longer parses (never
    /// written so: it is left out of routing and logged).
    pub fn routing(&self) -> Option<RoutingRule> {
        let filter = self.filter()?;
        let noise = match self.noise().parse() {
            Ok(noise) => noise,
            Err(err) => {
                log::error!("rule {} ({}) is left out of routing: its stored {err}", self.row.name, self.row.id);
                return None;
            }
        };
        Some(RoutingRule {
            id: self.row.id.clone(),
            name: self.row.name.clone(),
            enabled: self.row.enabled,
            created_at: self.row.created_at,
            filter,
            noise,
            channel_ids: self.channel_ids.clone(),
        })
    }

    /// The rule's filter; `None` only if the stored row no longer parses (never written so).
    pub fn filter(&self) -> Option<RuleFilter> {
        let event_types = self
            .event_type_texts()
            .iter()
            .map(|text| EventPattern::parse("event_types", text))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let min_severity = Severity::parse("min_severity", &self.row.min_severity).ok()?;
        Some(RuleFilter { tenant_id: self.row.tenant_id.clone(), event_types, min_severity })
    }
}

fn patterns_json(patterns: &[EventPattern]) -> String {
    let texts: Vec<String> = patterns.iter().map(EventPattern::to_text).collect();
    serde_json::to_string(&texts).expect("strings serialise")
}

fn check_references(conn: &mut Conn, spec: &RuleSpec) -> Result<(), StoreError> {
    if let Some(tenant_id) = &spec.tenant_id {
        let found: i64 = tenants::table.find(tenant_id).count().get_result(conn)?;
        if found == 0 {
            return Err(Invalid::new("tenant_id", format!("no tenant `{tenant_id}`; register it first or use null for every tenant")).into());
        }
    }
    let existing = super::channels::existing(conn, &spec.channel_ids)?;
    if let Some(missing) = spec.channel_ids.iter().find(|id| !existing.contains(id)) {
        return Err(Invalid::new("channel_ids", format!("no channel `{missing}`")).into());
    }
    // A PSA files each ticket under one customer (SPEC section 17): a rule of every tenant that
    // groups without `/tenant/id` would put two customers' events in one ticket.
    let group_by = spec.noise.group.as_deref().and_then(|g| serde_json::from_str::<serde_json::Value>(g).ok()).and_then(|g| crate::domain::noise::GroupSpec::parse(&g, "group").ok()).map(|g| g.by);
    if let (None, Some(by)) = (&spec.tenant_id, group_by) {
        if !by.iter().any(|p| p == "/tenant/id") {
            let kinds: Vec<(String, String, String)> = channels::table.filter(channels::id.eq_any(&spec.channel_ids)).select((channels::id, channels::name, channels::kind)).load(conn)?;
            let psa = kinds.iter().find(|(_, _, kind)| crate::channels::ChannelKind::from_stored(kind).is_ok_and(crate::channels::ChannelKind::one_tenant_per_incident));
            if let Some((id, name, kind)) = psa {
                return Err(Invalid::new(
                    "group.by",
                    format!("must hold /tenant/id: channel `{id}` ({name}) is {kind}, which files each ticket under one customer, and this rule groups events of every tenant together; add /tenant/id to group.by, or set tenant_id"),
                )
                .into());
            }
        }
    }
    Ok(())
}

fn set_channels(conn: &mut Conn, rule_id: &str, channel_ids: &[String]) -> Result<(), StoreError> {
    let rows: Vec<_> = channel_ids
        .iter()
        .enumerate()
        .map(|(i, channel_id)| {
            (
                rule_channels::rule_id.eq(rule_id),
                rule_channels::channel_id.eq(channel_id),
                rule_channels::position.eq(i as i32),
            )
        })
        .collect();
    each_backend!(conn, c => diesel::insert_into(rule_channels::table).values(&rows).execute(c))?;
    Ok(())
}

fn attach_channels(conn: &mut Conn, rows: Vec<RuleRow>) -> Result<Vec<RuleWithChannels>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let links: Vec<(String, String)> = rule_channels::table
        .filter(rule_channels::rule_id.eq_any(&ids))
        .order((rule_channels::rule_id, rule_channels::position))
        .select((rule_channels::rule_id, rule_channels::channel_id))
        .load(conn)?;
    let mut by_rule: HashMap<String, Vec<String>> = HashMap::new();
    for (rule_id, channel_id) in links {
        by_rule.entry(rule_id).or_default().push(channel_id);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let channel_ids = by_rule.remove(&row.id).unwrap_or_default();
            RuleWithChannels { row, channel_ids }
        })
        .collect())
}
