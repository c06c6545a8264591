//! The index against the linear decision: a few told cases, then many random rule sets and
//! events (a seeded generator, so a failure is reproducible) where both must decide alike.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::*;
use crate::domain::event::{EventData, EventType, NewEvent, TenantRef};
use crate::domain::routing::{decide, RuleNoise};
use crate::domain::rule::{parse_event_types, RuleFilter};
use crate::domain::severity::Severity;

fn rule(id: &str, tenant: Option<&str>, conditions: Value, channel: &str) -> RoutingRule {
    RoutingRule {
        id: id.into(),
        name: id.into(),
        enabled: true,
        created_at: 0,
        filter: RuleFilter { tenant_id: tenant.map(str::to_string), event_types: parse_event_types(&["*".into()], &Default::default()).unwrap(), min_severity: Severity::Low },
        noise: RuleNoise { conditions: Some(Condition::parse(&conditions, "conditions").unwrap()), ..Default::default() },
        channel_ids: vec![channel.into()],
    }
}

fn share(tenant: &str, site: &str, severity: Severity) -> NewEvent {
    let data = json!({"site_url": site, "principal": "x@gmail.com", "access_level": "edit"});
    NewEvent {
        id: "evt_1".into(),
        event_type: EventType::parse("e", "permission.external_share_created").unwrap(),
        occurred_at: 0,
        severity,
        tenant: TenantRef::Registered(tenant.into()),
        data: EventData::new(data.as_object().unwrap()),
    }
}

fn ids<'a>(rules: impl Iterator<Item = &'a RoutingRule>) -> Vec<&'a str> {
    rules.map(|r| r.id.as_str()).collect()
}

#[test]
fn only_the_rules_of_the_events_tenant_and_site_are_checked_in_decision_order() {
    let site = |s: &str| json!({"all": [{"path": "/data/site_url", "op": "eq", "value": s}, {"path": "/data/principal", "op": "regex", "value": ".*@gmail\\.com"}]});
    let index = RuleIndex::new(vec![
        rule("r1_contoso_finance", Some("contoso"), site("https://c/sites/Finance"), "ch_1"),
        rule("r2_contoso_hr", Some("contoso"), site("https://c/sites/HR"), "ch_1"),
        rule("r3_fabrikam_finance", Some("fabrikam"), site("https://c/sites/Finance"), "ch_1"),
        rule("r4_any_tenant_high", None, json!({"path": "/severity", "op": "in", "value": ["high", "critical"]}), "ch_2"),
        rule("r5_any_tenant_gmail", None, json!({"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}), "ch_3"),
    ]);
    let event = share("contoso", "https://c/sites/Finance", Severity::High);
    let view = EventView::new(&event, None);
    assert_eq!(ids(index.candidates(&view)), ["r1_contoso_finance", "r4_any_tenant_high", "r5_any_tenant_gmail"]);
    let low = share("fabrikam", "https://c/sites/Legal", Severity::Low);
    let view = EventView::new(&low, None);
    assert_eq!(ids(index.candidates(&view)), ["r5_any_tenant_gmail"], "no rule of fabrikam's names Legal; low is not high");
    let all = |_: &str| Some(ChannelFacts { siem: false });
    assert_eq!(index.decide(&[], &all, &view, 0), decide(index.rules(), &[], &all, &view, 0));
}

#[test]
fn numbers_are_found_as_the_conditions_compare_them() {
    let index = RuleIndex::new(vec![
        rule("r1", None, json!({"path": "/data/n", "op": "eq", "value": 1.0}), "ch"),
        rule("r2", None, json!({"path": "/data/n", "op": "in", "value": [0, "1"]}), "ch"),
    ]);
    for (n, expected) in [(json!(1), vec!["r1"]), (json!(-0.0), vec!["r2"]), (json!("1"), vec!["r2"]), (json!(true), vec![])] {
        let mut event = share("contoso", "s", Severity::High);
        event.data = EventData::new(json!({"n": n}).as_object().unwrap());
        assert_eq!(ids(index.candidates(&EventView::new(&event, None))), expected, "{n}");
    }
}

/// A small world of values, so that random rules and events often meet.
const SITES: [&str; 4] = ["https://c/sites/Finance", "https://c/sites/HR", "https://f/sites/Finance", "https://c/sites/Finance/Sub"];
const PRINCIPALS: [&str; 3] = ["x@gmail.com", "ann@contoso.com", "bob@partner.net"];
const LEVELS: [&str; 3] = ["edit", "view", "full_control"];
const TENANTS: [&str; 4] = ["contoso", "fabrikam", "adatum", "unknown"];
const CHANNELS: [&str; 5] = ["ch_1", "ch_2", "ch_3", "ch_siem", "ch_disabled"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A value as conditions may name one, or an event may hold one: strings, numbers that are equal
/// in several spellings, and the other JSON kinds.
fn value(rng: &mut StdRng, path: &str) -> Value {
    match (path, rng.gen_range(0..10)) {
        (_, 0) => pick(rng, &[json!(1), json!(1.0), json!(0), json!(-0.0), json!(2.5), json!("1")]).clone(),
        (_, 1) => pick(rng, &[json!(null), json!(true), json!(["edit"]), json!({"a": 1})]).clone(),
        ("/data/site_url", _) => json!(pick(rng, &SITES)),
        ("/data/principal", _) => json!(pick(rng, &PRINCIPALS)),
        ("/data/access_level", _) => json!(pick(rng, &LEVELS)),
        ("/severity", _) => json!(pick(rng, &Severity::ALL).as_str()),
        ("/tenant/id", _) => json!(pick(rng, &TENANTS)),
        _ => pick(rng, &[json!(1), json!(1.0), json!(0), json!(-0.0), json!(-0), json!("1")]).clone(),
    }
}

fn leaf(rng: &mut StdRng) -> Value {
    let path = *pick(rng, &["/data/site_url", "/data/principal", "/data/access_level", "/severity", "/tenant/id", "/data/n", "/data/absent"]);
    // Mostly the operators the index reads, so rules are often filed.
    match rng.gen_range(0..12) {
        0..=3 => json!({"path": path, "op": "eq", "value": value(rng, path)}),
        4..=5 => {
            let values: Vec<Value> = (0..rng.gen_range(0..4)).map(|_| value(rng, path)).collect();
            json!({"path": path, "op": "in", "value": values})
        }
        6 => json!({"path": path, "op": "neq", "value": value(rng, path)}),
        7 => json!({"path": path, "op": "nin", "value": [value(rng, path)]}),
        8 => json!({"path": path, "op": "prefix", "value": "https://c/", "case_insensitive": rng.gen_bool(0.5)}),
        9 => json!({"path": path, "op": "regex", "value": ".*@(gmail\\.com|partner\\.net)"}),
        10 => json!({"path": path, "op": "gte", "value": 1}),
        _ => json!({"path": path, "op": "exists", "value": rng.gen_bool(0.5)}),
    }
}

fn tree(rng: &mut StdRng, depth: usize) -> Value {
    let children = |rng: &mut StdRng| (0..rng.gen_range(1..4)).map(|_| tree(rng, depth + 1)).collect::<Vec<_>>();
    match (depth, rng.gen_range(0..10)) {
        (3.., _) | (_, 0..=3) => leaf(rng),
        (_, 4..=7) => json!({"all": children(rng)}),
        (_, 8) => json!({"any": children(rng)}),
        _ => json!({"not": tree(rng, depth + 1)}),
    }
}

fn random_rule(rng: &mut StdRng, n: usize) -> RoutingRule {
    let types: &[&str] = match rng.gen_range(0..4) {
        0 => &["*"],
        1 => &["permission.*"],
        2 => &["sharing.*", "storage.*"],
        _ => &["permission.external_share_created"],
    };
    let channels: Vec<String> = CHANNELS.iter().filter(|_| rng.gen_bool(0.4)).map(|c| c.to_string()).collect();
    RoutingRule {
        id: format!("rule_{n:03}"),
        name: format!("rule {n}"),
        enabled: rng.gen_bool(0.9),
        // Few distinct times, so rules of one priority are often equally old.
        created_at: rng.gen_range(0..5),
        filter: RuleFilter {
            tenant_id: rng.gen_bool(0.5).then(|| pick(rng, &TENANTS).to_string()),
            event_types: parse_event_types(&types.iter().map(|t| t.to_string()).collect::<Vec<_>>(), &Default::default()).unwrap(),
            min_severity: *pick(rng, &Severity::ALL),
        },
        noise: RuleNoise {
            priority: *pick(rng, &[10, 100, 100, 100]),
            conditions: rng.gen_bool(0.85).then(|| Condition::parse(&tree(rng, 1), "conditions").unwrap()),
            ..Default::default()
        },
        channel_ids: if channels.is_empty() { vec!["ch_1".into()] } else { channels },
    }
}

fn random_event(rng: &mut StdRng) -> NewEvent {
    let mut data = serde_json::Map::new();
    for (key, path) in [("site_url", "/data/site_url"), ("principal", "/data/principal"), ("access_level", "/data/access_level"), ("n", "/data/n")] {
        if rng.gen_bool(0.9) {
            data.insert(key.into(), value(rng, path));
        }
    }
    NewEvent {
        id: "evt_1".into(),
        event_type: EventType::parse("e", *pick(rng, &["permission.external_share_created", "sharing.anonymous_link_created"])).unwrap(),
        occurred_at: 0,
        severity: *pick(rng, &Severity::ALL),
        tenant: TenantRef::Registered(pick(rng, &TENANTS).to_string()),
        data: EventData::new(&data),
    }
}

#[test]
fn the_index_decides_exactly_as_checking_every_rule_over_many_random_rule_sets() {
    let mut rng = StdRng::seed_from_u64(28);
    let channel = |id: &str| (id != "ch_disabled").then_some(ChannelFacts { siem: id == "ch_siem" });
    let (mut events, mut narrowed, mut matched) = (0, 0, 0);
    for set in 0..400 {
        let rules: Vec<RoutingRule> = (0..rng.gen_range(0..40)).map(|n| random_rule(&mut rng, n)).collect();
        let index = RuleIndex::new(rules);
        for _ in 0..60 {
            let event = random_event(&mut rng);
            let view = EventView::new(&event, None);
            let linear = decide(index.rules(), &[], &channel, &view, 0);
            assert_eq!(index.decide(&[], &channel, &view, 0), linear, "rule set {set}, event {:?}", event.data.json());
            events += 1;
            narrowed += usize::from(index.candidates(&view).count() < index.rules().len());
            matched += usize::from(!linear.is_empty());
        }
    }
    // The cases are not vacuous: most events are decided from fewer rules, and many match.
    assert!(narrowed * 2 > events && matched * 5 > events, "{narrowed} narrowed and {matched} matched of {events}");
}
