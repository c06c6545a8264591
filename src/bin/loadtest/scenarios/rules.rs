//! Scenario `rules` (issue 28): an MSP's 1,000 rules with conditions, exactly one of which
//! matches each event. Two measurements:
//!
//! - **matching**, apart from ingestion: the router's own decision (`RuleIndex::decide`, as the
//!   rule matcher calls it), in this process, over the same 1,000 rules parsed by the router's
//!   parsers from the JSON the scenario posts, for many events of every tenant and site: µs per
//!   event (target at most 20). Beside it, for the record: the linear decision without the
//!   index, and the worst case, rules with no leaf the index can use (only `contains`, `regex`,
//!   `suffix`), once kept per tenant and once all for every tenant.
//! - **throughput**: the router with those rules set up through the API, driven exactly as the
//!   `throughput` scenario drives it (batches of 100), against the mean of two plain
//!   `throughput` runs in the same run, one before and one after (target: at least 0.9 of it).
//!   The one matching rule sends to channel 0; every other rule sends to channel 1, which must
//!   receive nothing.
//!
//! The rules: 50 tenants (`bench`, the tenant of the benchmark's event, and `tenant-01`…), 19
//! per tenant, one per site (3–5 leaves: the site (`eq`, or `prefix` for every fourth), the
//! principal (`regex`: the partner domains shared to), the access level (`in`), then the
//! severity (`in`) and the link type (`in`)), and 50 for every tenant (anyone-links by file
//! type, filed under `/data/permission_type`; shares to consumer mail domains, checked for every
//! event).

use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use spscan_router::domain::event::{EventInput, NewEvent, TenantRef};
use spscan_router::domain::limits::Limits;
use spscan_router::domain::routing::{decide, ChannelFacts, EventView, RoutingRule, RuleIndex};
use spscan_router::domain::rule::{self, NoiseInput, RuleFilter};
use spscan_router::domain::severity::Severity;
use spscan_router::domain::tenant::Tenant;

use super::{check_row, drive, receiver, wait_until};
use crate::router::RouterProcess;
use crate::{Measure, Plan};

const TENANTS: usize = 50;
/// The sites of each tenant, one rule each: none is a prefix of another.
const SITES: [&str; 19] = [
    "Finance", "HR", "Legal", "Sales", "Marketing", "Engineering", "Operations", "Board", "IT", "Procurement", "Research", "Support",
    "Projects", "Facilities", "Compliance", "Training", "Partners", "Executive", "Archive",
];
const GLOBAL_RULES: usize = 50;
/// Rules in all: 50 × 19 + 50.
pub const RULES: usize = TENANTS * SITES.len() + GLOBAL_RULES;
/// Most µs one event's matching may cost.
const TARGET_US: f64 = 20.0;
/// Least share of the plain throughput kept with the rules.
const TARGET_RATIO: f64 = 0.9;

/// Which leaves the rules use.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// As an MSP writes them: `eq` and `in` among the leaves, per tenant.
    Realistic,
    /// Only `contains`, `regex` and `suffix`: no leaf the index can file a rule under.
    Unindexable,
    /// As `Unindexable`, and every rule for every tenant: each is checked for each event.
    UnindexableEveryTenant,
}

fn tenant_id(t: usize) -> String {
    if t == 0 {
        "bench".into()
    } else {
        format!("tenant-{t:02}")
    }
}

/// A tenant's site: the benchmark's own event is `bench`'s Finance site.
fn site_url(t: usize, k: usize) -> String {
    let host = if t == 0 { "contoso".to_string() } else { tenant_id(t) };
    format!("https://{host}.sharepoint.com/sites/{}", SITES[k])
}

/// The request bodies of `POST /rules`, in the order they are created: rule `i` of tenant `t`
/// and site `k` is `i = t × 19 + k`, then the rules for every tenant. The rule for `bench`'s
/// Finance site sends to `matching`, every other rule to `other`.
fn rule_bodies(shape: Shape, matching: &str, other: &str) -> Vec<Value> {
    let plain = shape == Shape::Realistic;
    let mut bodies = Vec::with_capacity(RULES);
    for t in 0..TENANTS {
        for (k, site) in SITES.iter().enumerate() {
            let url = site_url(t, k);
            let mut leaves = vec![
                match (plain, k % 4) {
                    (true, 3) => json!({"path": "/data/site_url", "op": "prefix", "value": url}),
                    (true, _) => json!({"path": "/data/site_url", "op": "eq", "value": url}),
                    (false, _) => json!({"path": "/data/site_url", "op": "contains", "value": url.trim_start_matches("https://")}),
                },
                json!({"path": "/data/principal", "op": "regex", "value": format!("[^@]+@(?:example\\.net|partner-{k}\\.com)")}),
                if plain {
                    json!({"path": "/data/access_level", "op": "in", "value": ["edit", "full_control"]})
                } else {
                    json!({"path": "/data/access_level", "op": "regex", "value": "edit|full_control"})
                },
            ];
            if k % 3 >= 1 {
                leaves.push(if plain {
                    json!({"path": "/severity", "op": "in", "value": ["high", "critical"]})
                } else {
                    json!({"path": "/severity", "op": "regex", "value": "high|critical"})
                });
            }
            if k % 3 == 2 {
                leaves.push(if plain {
                    json!({"path": "/data/permission_type", "op": "in", "value": ["specific_people_link", "anyone_link"]})
                } else {
                    json!({"path": "/data/permission_type", "op": "suffix", "value": "_link"})
                });
            }
            let channel = if t == 0 && k == 0 { matching } else { other };
            let tenant = if shape == Shape::UnindexableEveryTenant { Value::Null } else { json!(tenant_id(t)) };
            bodies.push(json!({
                "name": format!("{} {site}: shares to partners", tenant_id(t)), "tenant_id": tenant,
                "event_types": ["permission.*"], "min_severity": "medium", "channel_ids": [channel], "conditions": {"all": leaves}
            }));
        }
    }
    for g in 0..GLOBAL_RULES {
        let conditions = if g % 2 == 0 {
            let kind = if plain {
                json!({"path": "/data/permission_type", "op": "eq", "value": "anyone_link"})
            } else {
                json!({"path": "/data/permission_type", "op": "contains", "value": "anyone"})
            };
            json!({"all": [kind, {"path": "/data/resource_path", "op": "regex", "value": format!(".*\\.(?:xlsx|docx|pdf|ext{g})")}, {"path": "/data/access_level", "op": "contains", "value": "edit"}]})
        } else {
            json!({"all": [
                {"path": "/data/principal", "op": "regex", "value": format!(".*@(?:gmail|outlook|yahoo|hotmail|mail{g})\\.com")},
                {"path": "/data/site_url", "op": "contains", "value": "/sites/"},
                {"path": "/data/access_level", "op": "suffix", "value": "edit"}
            ]})
        };
        bodies.push(json!({"name": format!("every tenant {g}"), "event_types": ["permission.*", "sharing.*"], "min_severity": "low", "channel_ids": [other], "conditions": conditions}));
    }
    bodies
}

/// A rule body parsed by the router's own parsers into what routing sees (created in order).
fn routing_rule(i: usize, body: &Value) -> RoutingRule {
    let limits = Limits::default();
    let texts = |key: &str| body[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect::<Vec<_>>();
    let noise = NoiseInput { conditions: Some(body["conditions"].clone()), ..Default::default() }.parse().expect("the rule's conditions parse");
    RoutingRule {
        id: format!("rule_{i:04}"),
        name: body["name"].as_str().unwrap().into(),
        enabled: true,
        created_at: i as i64,
        filter: RuleFilter {
            tenant_id: rule::parse_tenant(body["tenant_id"].as_str()).unwrap(),
            event_types: rule::parse_event_types(&texts("event_types"), &limits).unwrap(),
            min_severity: Severity::parse("min_severity", body["min_severity"].as_str().unwrap()).unwrap(),
        },
        noise,
        channel_ids: rule::parse_channel_ids(&texts("channel_ids"), true, &limits).unwrap(),
    }
}

/// Event `seq` as SPScan sends it: every tenant and site in turn, shared to a guest or a
/// partner; with the rule (its place among the per-tenant rules) that must decide it.
fn msp_event(seq: usize) -> (NewEvent, usize) {
    let (t, k) = (seq % TENANTS, (seq / TENANTS) % SITES.len());
    let principal = if seq % 2 == 0 { format!("guest{}@example.net", seq % 97) } else { format!("ann@partner-{k}.com") };
    let input = json!({
        "event_id": format!("m{seq}"), "event": "permission.external_share_created",
        "severity": if seq % 3 == 0 { "critical" } else { "high" }, "tenant_id": tenant_id(t),
        "data": {"site_url": site_url(t, k), "resource_path": format!("Shared Documents/Report {seq}.xlsx"),
                 "permission_type": "specific_people_link", "principal": principal,
                 "access_level": if seq % 5 == 0 { "full_control" } else { "edit" }}
    });
    let input: EventInput = serde_json::from_value(input).expect("an event input");
    (NewEvent::parse(input, &Limits::default()).expect("the event parses"), t * SITES.len() + k)
}

/// Tenant `t` (`bench` with the Microsoft id the other scenarios register it with).
fn tenant(t: usize) -> Tenant {
    let microsoft_tenant_id = if t == 0 { "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd".to_string() } else { format!("00000000-0000-4000-8000-{t:012x}") };
    Tenant { id: tenant_id(t), display_name: format!("Tenant {t}"), microsoft_tenant_id }
}

/// The tenants as the rule matcher holds them (registered; events name them by id).
fn registered_tenants() -> HashMap<String, Tenant> {
    (0..TENANTS).map(|t| (tenant_id(t), tenant(t))).collect()
}

/// What one in-process timing found.
struct Timing {
    build_ms: f64,
    indexed_us: f64,
    linear_us: f64,
}

/// Times the router's decision over `events` with the rules of `shape`, after checking that each
/// event is decided by exactly its own rule, the same with and without the index.
fn time_matching(shape: Shape, events: &[(NewEvent, usize)], tenants: &HashMap<String, Tenant>) -> Timing {
    let rules: Vec<RoutingRule> = rule_bodies(shape, "ch_0", "ch_1").iter().enumerate().map(|(i, body)| routing_rule(i, body)).collect();
    let started = Instant::now();
    let index = RuleIndex::new(rules);
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let enabled: HashMap<String, ChannelFacts> = ["ch_0", "ch_1"].iter().map(|c| (c.to_string(), ChannelFacts { siem: false })).collect();
    let channel = |id: &str| enabled.get(id).copied();
    let at = spscan_router::domain::time::now_ms();
    // As the rule matcher sees an event: with its tenant as registered, and its `data` parsed by
    // the request (off the matcher's thread, so parsed here before the clock starts).
    fn view<'a>(event: &'a NewEvent, tenants: &'a HashMap<String, Tenant>, data: Option<Map<String, Value>>) -> EventView<'a> {
        let registered = match &event.tenant {
            TenantRef::Registered(id) => tenants.get(id),
            _ => None,
        };
        EventView::with_data(event, registered, data)
    }
    let parsed = |events: &[(NewEvent, usize)]| -> Vec<Option<Map<String, Value>>> {
        events.iter().map(|(event, _)| serde_json::from_str(event.data.json()).ok()).collect()
    };
    // Checked first (not timed): one decision each, by the event's own rule, as without the index.
    for (event, own) in events.iter().step_by(97) {
        let decided = index.decide(&[], &channel, &view(event, tenants, None), at);
        assert_eq!(decided.len(), 1, "one channel for {}", event.id);
        assert_eq!(decided[0].rule_id, format!("rule_{own:04}"), "the event's own rule decides {}", event.id);
        assert_eq!(decide(index.rules(), &[], &channel, &view(event, tenants, None), at), decided, "the index decides as the linear decision");
    }
    let mut data = parsed(events);
    let started = Instant::now();
    for ((event, _), data) in events.iter().zip(&mut data) {
        black_box(index.decide(&[], &channel, &view(event, tenants, data.take()), at));
    }
    let indexed_us = started.elapsed().as_secs_f64() * 1e6 / events.len() as f64;
    let sample = &events[..events.len().min(10_000)];
    let mut data = parsed(sample);
    let started = Instant::now();
    for ((event, _), data) in sample.iter().zip(&mut data) {
        black_box(decide(index.rules(), &[], &channel, &view(event, tenants, data.take()), at));
    }
    let linear_us = started.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
    Timing { build_ms, indexed_us, linear_us }
}

/// Matching apart from ingestion: the three rule shapes over the same events.
fn matching(events: usize) -> Vec<Measure> {
    let tenants = registered_tenants();
    let events: Vec<(NewEvent, usize)> = (0..events).map(msp_event).collect();
    let mut rows = Vec::new();
    for (shape, label) in [
        (Shape::Realistic, "realistic"),
        (Shape::Unindexable, "no indexable leaf, per tenant"),
        (Shape::UnindexableEveryTenant, "no indexable leaf, every tenant"),
    ] {
        // The worst cases cost up to a hundred times more per event: fewer of them say as much.
        let events = if shape == Shape::Realistic { &events[..] } else { &events[..events.len().min(20_000)] };
        let n = events.len();
        let timing = time_matching(shape, events, &tenants);
        let note = format!("{RULES} rules, {n} events; without the index {:.1} µs; index built in {:.1} ms", timing.linear_us, timing.build_ms);
        let ok = shape != Shape::Realistic || timing.indexed_us <= TARGET_US;
        let metric = match shape {
            Shape::Realistic => "matching µs/event".to_string(),
            _ => format!("matching µs/event ({label})"),
        };
        rows.push(Measure::new("rules", &metric, format!("{:.2}", timing.indexed_us), &note, ok).value(timing.indexed_us));
    }
    rows
}

/// Tenants, the two channels and the rules, through the API. Answers how long it took.
async fn setup(router: &Rc<RouterProcess>, urls: [String; 2]) -> Duration {
    let started = Instant::now();
    for tenant in (0..TENANTS).map(tenant) {
        let (status, body) = router.post("/tenants", &serde_json::to_value(&tenant).unwrap()).await;
        assert_eq!(status, 201, "{body}");
    }
    let mut channels = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let (status, body) = router.post("/channels", &json!({"name": format!("rules-{i}"), "url": url})).await;
        assert_eq!(status, 201, "{body}");
        channels.push(body["id"].as_str().unwrap().to_string());
    }
    // A few in flight: each change reloads the rule matcher (and rebuilds its index).
    let bodies = Rc::new(rule_bodies(Shape::Realistic, &channels[0], &channels[1]));
    let next = Rc::new(std::cell::Cell::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (router, bodies, next) = (router.clone(), bodies.clone(), next.clone());
        tasks.push(actix_web::rt::spawn(async move {
            while next.get() < bodies.len() {
                let i = next.get();
                next.set(i + 1);
                let (status, body) = router.post("/rules", &bodies[i]).await;
                assert_eq!(status, 201, "rule {i}: {body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// The scenario: matching in process, then the run with the rules between two plain throughput
/// runs, compared with their mean (this machine's rate drifts by a fifth from one run to the
/// next; bracketing keeps the drift out of the ratio).
pub async fn rules(plan: &Plan) -> Vec<Measure> {
    let mut rows = matching(if plan.duration < Duration::from_secs(10) { 20_000 } else { 100_000 });
    let before = plain(plan, "before", &mut rows).await;

    let receiver = receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    let took = setup(&router, [receiver.url(0), receiver.url(1)]).await;
    rows.push(Measure::new("rules", "setup s", format!("{:.1}", took.as_secs_f64()), &format!("{} tenants, {RULES} rules through the API", TENANTS), true));
    let started = Instant::now();
    let acked = drive(&router, &receiver, 1, 100, plan.duration).await;
    wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || router.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    let note = format!("{acked} events, 100 per request, {RULES} rules, one matches");
    rows.push(Measure::new("rules", "delivered/s", format!("{rate:.0}"), &note, true).value(rate));
    rows.push(check_row("rules", receiver.check(0, acked)));
    let strays = receiver.delivered(1);
    rows.push(Measure::new("rules", "other rules matched", strays.to_string(), "deliveries to the channel of the 999 others", strays == 0));
    drop(router);
    let after = plain(plan, "after", &mut rows).await;
    let plain_rate = (before + after) / 2.0;
    let ratio = rate / plain_rate;
    let note = format!("target at least {TARGET_RATIO}; against the mean of the plain runs before and after, {plain_rate:.0}/s");
    rows.push(Measure::new("rules", "ratio to plain", format!("{ratio:.3}"), &note, ratio >= TARGET_RATIO).value(ratio));
    rows
}

/// A plain `throughput` run (batches of 100, one rule): its rate, also added to `rows`.
async fn plain(plan: &Plan, when: &str, rows: &mut Vec<Measure>) -> f64 {
    let plain = super::throughput(plan, "throughput", 100, 8).await;
    let rate = plain[0].value.expect("throughput measures a rate");
    let metric = format!("plain delivered/s ({when})");
    rows.push(Measure::new("rules", &metric, plain[0].shown.clone(), &format!("the throughput scenario: {}", plain[0].note), plain[1].ok).value(rate));
    rate
}
