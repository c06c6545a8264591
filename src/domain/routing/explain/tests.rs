use serde_json::json;

use super::*;
use crate::domain::condition::Condition;
use crate::domain::event::{EventData, EventType, NewEvent, TenantRef};
use crate::domain::noise::{GroupSpec, SuppressSpec};
use crate::domain::routing::{decide, sort, ChannelFacts, RuleNoise};
use crate::domain::rule::{parse_event_types, RuleFilter};

const AT: Millis = 1_000_000;

fn share(principal: &str, severity: Severity) -> NewEvent {
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

fn rule(id: &str, priority: i32, channels: &[&str], noise: RuleNoise) -> RoutingRule {
    RoutingRule {
        id: id.into(),
        name: format!("Rule {id}"),
        enabled: true,
        created_at: 0,
        filter: RuleFilter {
            tenant_id: None,
            event_types: parse_event_types(&["permission.*".into()], &Default::default()).unwrap(),
            min_severity: Severity::Low,
        },
        noise: RuleNoise { priority, ..noise },
        channel_ids: channels.iter().map(|c| c.to_string()).collect(),
    }
}

fn grouped(wait: &str) -> RuleNoise {
    RuleNoise { group: Some(GroupSpec::parse(&json!({"by": ["/data/site_url"], "wait": wait}), "group").unwrap()), ..Default::default() }
}

fn suppressed() -> RuleNoise {
    RuleNoise { suppress: Some(SuppressSpec::parse(&json!({"by": ["/data/principal"], "for": "1h"}), "suppress").unwrap()), ..Default::default() }
}

/// Runs the preview as the route does: decide, read the state wanted, explain.
fn preview(rules: &mut [RoutingRule], event: &NewEvent, state: impl FnOnce(&[PairKey], &[PairKey]) -> NoiseState) -> Vec<Explanation> {
    sort(rules);
    let view = EventView::new(event, None);
    let enabled = |id: &str| (id != "ch_off").then_some(ChannelFacts { siem: id == "ch_siem" });
    let decisions = decide(rules, &[], &enabled, &view, AT);
    let (windows, groups) = NoiseState::wanted(&decisions);
    explain(rules, &decisions, &state(&windows, &groups), &view, AT)
}

fn none(_: &[PairKey], _: &[PairKey]) -> NoiseState {
    NoiseState::default()
}

#[test]
fn every_rule_gets_its_first_reason_in_words() {
    let mut disabled = rule("r_disabled", 1, &["ch"], RuleNoise::default());
    disabled.enabled = false;
    let mut storage = rule("r_type", 2, &["ch"], RuleNoise::default());
    storage.filter.event_types = parse_event_types(&["storage.*".into(), "sharing.link_created".into()], &Default::default()).unwrap();
    let mut high = rule("r_severity", 3, &["ch"], RuleNoise::default());
    high.filter.min_severity = Severity::High;
    let mut fabrikam = rule("r_tenant", 4, &["ch"], RuleNoise::default());
    fabrikam.filter.tenant_id = Some("fabrikam".into());
    let gmail = Condition::parse(
        &json!({"any": [{"path": "/severity", "op": "eq", "value": "critical"}, {"all": [{"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}]}]}),
        "conditions",
    )
    .unwrap();
    let condition = rule("r_condition", 5, &["ch"], RuleNoise { conditions: Some(gmail), ..Default::default() });
    let mut rules = vec![condition, fabrikam, high, storage, disabled];
    let got = preview(&mut rules, &share("someone@contoso.com", Severity::Low), none);
    let reasons: Vec<(&str, &str, Option<&str>)> = got
        .iter()
        .map(|e| {
            let reason = e.reason.as_ref().expect("no rule matches");
            let path = match &reason.miss {
                Miss::Condition(path) => Some(path.as_str()),
                _ => None,
            };
            (reason.miss.kind(), reason.detail.as_str(), path)
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("disabled", "the rule is disabled", None),
            ("event_type", "the event type permission.external_share_created is not among the rule's event types (storage.*, sharing.link_created)", None),
            ("severity", "the event's severity low is below the rule's minimum high", None),
            ("tenant", "the event's tenant contoso is not the rule's tenant fabrikam", None),
            (
                "condition",
                r#"none of its 2 alternatives holds (conditions.any[0]: /severity holds "low"; the condition wants it equal to "critical"; conditions.any[1].all[0]: /data/principal holds "someone@contoso.com"; the condition wants it to be text that ends with "@gmail.com")"#,
                Some("conditions")
            ),
        ],
        "in decision order (priority)"
    );
    assert!(got.iter().all(|e| e.channels.is_empty()), "a rule that does not match lists no channel");
}

#[test]
fn each_channel_names_its_deciding_rule_and_what_it_would_do() {
    let mut rules = vec![
        rule("r_all", 100, &["ch_a", "ch_b", "ch_off", "ch_siem"], RuleNoise::default()),
        rule("r_grouping", 10, &["ch_b", "ch_siem"], grouped("45s")),
    ];
    let got = preview(&mut rules, &share("x@gmail.com", Severity::High), none);
    assert_eq!(got[0].rule_id, "r_grouping", "the lower priority first, as they decide");
    let channels = |e: &Explanation| e.channels.iter().map(|c| (c.channel_id.clone(), c.decided_by.clone(), c.outcome.clone())).collect::<Vec<_>>();
    let new_group = Some(Outcome::Group { group_id: None, send_at: AT + 45_000 });
    assert_eq!(
        channels(&got[0]),
        [("ch_b".into(), Some("r_grouping".into()), new_group.clone()), ("ch_siem".into(), Some("r_grouping".into()), Some(Outcome::Send))],
        "no group open: one would open, sent `wait` from now; a SIEM is sent every event"
    );
    assert_eq!(
        channels(&got[1]),
        [
            ("ch_a".into(), Some("r_all".into()), Some(Outcome::Send)),
            ("ch_b".into(), Some("r_grouping".into()), new_group),
            ("ch_off".into(), None, None),
            ("ch_siem".into(), Some("r_grouping".into()), Some(Outcome::Send)),
        ],
        "a channel another rule decides says so; a disabled channel gets nothing"
    );
}

#[test]
fn an_open_group_is_joined_and_an_open_window_suppresses_unless_the_event_is_more_severe() {
    let mut rules = vec![rule("r_group", 1, &["ch_g"], grouped("30s")), rule("r_once", 2, &["ch_s"], suppressed())];
    let state = |severity: Severity, until: Millis| {
        move |windows: &[PairKey], groups: &[PairKey]| {
            let hash = crate::domain::noise::key_hash;
            assert_eq!(windows, [("r_once".into(), "ch_s".into(), hash(r#"{"/data/principal":"x@gmail.com"}"#))]);
            let settings = GroupSpec::parse(&json!({"by": ["/data/site_url"], "wait": "30s"}), "group").unwrap();
            let group = crate::domain::noise::group_hash(r#"{"/data/site_url":"https://t/sites/a"}"#, &settings);
            assert_eq!(groups, [("r_group".into(), "ch_g".into(), group)]);
            NoiseState {
                // `suppressed()` suppresses for an hour.
                windows: windows.iter().map(|k| (k.clone(), Window { delivery_id: "dlv_first".into(), severity, opened_at: until - 3_600_000 })).collect(),
                groups: groups.iter().map(|k| (k.clone(), OpenGroup { id: "agrp_1".into(), flush_at: AT + 7_000 })).collect(),
            }
        }
    };
    let outcomes = |got: Vec<Explanation>| got.into_iter().map(|e| e.channels[0].outcome.clone().unwrap()).collect::<Vec<_>>();
    let joined = Outcome::Group { group_id: Some("agrp_1".into()), send_at: AT + 7_000 };
    let event = share("x@gmail.com", Severity::High);
    assert_eq!(
        outcomes(preview(&mut rules, &event, state(Severity::High, AT + 1))),
        [joined.clone(), Outcome::Suppressed { by: "dlv_first".into(), until: AT + 1 }]
    );
    assert_eq!(outcomes(preview(&mut rules, &event, state(Severity::Medium, AT + 1)))[1], Outcome::Send, "more severe than the event that opened it");
    assert_eq!(outcomes(preview(&mut rules, &event, state(Severity::High, AT)))[1], Outcome::Send, "the window has ended");
}
