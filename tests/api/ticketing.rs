//! What every ticketing type (SPEC section 17) must hold through the real binary, against its
//! local stand-in: `kill -9` after the system made the ticket and before the router learnt of it
//! ends with one ticket (the restarted router waits `CREATE_SETTLE` and finds it by its marker,
//! on both backends), and two instances on one PostgreSQL database taking one incident's events
//! at once make one ticket holding every event once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::ticket_systems::*;

/// One ticketing system: its stand-in, the channel that writes to it, and how its search for a
/// marker is recognised among the requests an attempt made.
struct System {
    start: fn() -> Tickets,
    channel: fn(&Tickets) -> Value,
    search: &'static str,
}

const JIRA: System = System {
    start: start_jira,
    channel: |s| json!({"name": "SOC Jira", "type": "jira", "url": s.base, "email": JIRA_EMAIL, "api_token": JIRA_TOKEN, "project_key": "SOC"}),
    search: "/rest/api/3/search/jql",
};
const SERVICENOW: System = System {
    start: start_servicenow,
    channel: |s| json!({"name": "SOC ServiceNow", "type": "servicenow", "url": s.base, "username": SN_USER, "password": SN_PASSWORD}),
    search: "sysparm_query=correlation_id",
};
const CONNECTWISE: System = System {
    start: start_connectwise,
    channel: |s| json!({"name": "PSA", "type": "connectwise", "url": format!("{}{CW_API}", s.base), "company_id": CW_COMPANY_ID, "public_key": CW_PUBLIC_KEY,
        "private_key": CW_PRIVATE_KEY, "client_id": CW_CLIENT_ID, "board": CW_BOARD, "companies": {"contoso": "ContosoLtd", "default": "MSP-Internal"}}),
    search: "conditions=externalXRef",
};
const AUTOTASK: System = System {
    start: start_autotask,
    channel: |s| json!({"name": "MSP Autotask", "type": "autotask", "url": format!("{}/atservicesrest", s.base), "username": AUTOTASK_USER,
        "api_secret": AUTOTASK_SECRET, "integration_code": AUTOTASK_CODE, "queue_id": AUTOTASK_QUEUE, "companies": {"contoso": 174, "default": 0}}),
    search: "/Tickets/query",
};

const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";

fn at_site(severity: &str, site: &str, id: &str) -> Value {
    let mut event = permission_event("contoso", "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event["event_id"] = json!(id);
    event
}

/// The channel (at most 50 requests a second, so the test does not wait on the default 1) and a
/// rule sending every event of `contoso` to it.
async fn channel(api: &Api, system: &System, tickets: &Tickets) -> String {
    let mut input = (system.channel)(tickets);
    input["rate_limit_per_second"] = json!(50);
    let answer = api.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    api.route_everything_to(&[&id]).await;
    api.create_tenant("contoso").await;
    id
}

/// Every request's body and address as one text (to find event ids in what the system got).
fn everything_received(tickets: &Tickets) -> String {
    tickets.tickets().iter().map(|t| format!("{} {}", t.created, t.notes.iter().map(Value::to_string).collect::<String>())).collect()
}

async fn killed_between_create_and_record(system: System) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        backend
            .run(async {
                let database = TestDatabase::new();
                let tickets = (system.start)();
                tickets.fault(Op::Create, Fault::MadeThenHang);
                let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("CREATE_SETTLE", "2s"), ("RUST_LOG", "info")];
                let (mut first, _, _) = start_router_with(&database.url, &env);
                channel(&first.api, &system, &tickets).await;
                let answer = first.api.ingest(at_site("high", FINANCE, "evt-crash-1")).await;
                assert_eq!(answer.status, 202, "{}", answer.body);
                let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
                // The ticket is made; its answer never comes; the router dies.
                tickets.wait_for(1, 0, WITHIN).await;
                first.child.kill().expect("SIGKILL");
                first.child.wait().unwrap();
                let (mut second, _, _) = start_router_with(&database.url, &env);
                let later = second.api.ingest(at_site("critical", FINANCE, "evt-crash-2")).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
                let delivered = second.api.wait_for_status(&id, "succeeded", Duration::from_secs(30)).await;
                second.api.wait_for_status(&later, "succeeded", Duration::from_secs(30)).await;
                let held = tickets.tickets();
                assert_eq!(held.len(), 1, "one ticket after the crash ({:?}): {:?}", Backend::current(), tickets.requests());
                assert_eq!(held[0].notes.len(), 1, "the later event is its note");
                assert!(delivered["ticket"]["id"].is_string(), "{delivered}");
                let searched = delivered["attempts"].as_array().unwrap().iter().any(|a| a["request"]["url"].as_str().is_some_and(|u| u.contains(system.search)));
                assert!(searched, "found by its marker: {delivered}");
                second.stop();
            })
            .await;
    }
}

async fn two_instances_make_one_ticket(system: System) {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let tickets = (system.start)();
            let start = |id: &str| start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("INSTANCE_ID", id), ("RUST_LOG", "info")]).0;
            let (mut a, mut b) = (start("instance-a"), start("instance-b"));
            channel(&a.api, &system, &tickets).await;
            // Both instances route to the channel before the events go (a probe of a site of its own each).
            for (n, instance) in [&a, &b].into_iter().enumerate() {
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                let mut tries = 0;
                while instance.api.ingest(at_site("low", &format!("https://contoso.sharepoint.com/sites/Probe-{n}-{tries}"), &format!("probe-{n}-{tries}"))).await.body["deliveries"].as_array().unwrap().is_empty() {
                    assert!(std::time::Instant::now() < deadline, "an instance did not pick up the rule");
                    tries += 1;
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
            }
            tickets.wait_for(2, 0, WITHIN).await;
            let before = tickets.tickets().len();
            // Eight events of one incident, through both instances at once.
            let sends = (0..8).map(|i| {
                let via = if i % 2 == 0 { &a.api } else { &b.api };
                async move { via.ingest(at_site("high", FINANCE, &format!("evt-both-{i}"))).await }
            });
            let answers = futures_util::future::join_all(sends).await;
            assert!(answers.iter().all(|r| r.status == 202), "{:?}", answers.iter().map(|r| &r.body).collect::<Vec<_>>());
            // Every event lands once: in the ticket or in a note (several in one note when they
            // waited behind another).
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let text = everything_received(&tickets);
                if (0..8).all(|i| text.contains(&format!("evt-both-{i}"))) {
                    for i in 0..8 {
                        assert_eq!(text.matches(&format!("evt-both-{i}")).count(), 1, "evt-both-{i} once: {text}");
                    }
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "not every event landed: {:?}", tickets.requests());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(tickets.tickets().len(), before + 1, "one ticket for the incident: {:?}", tickets.requests());
            a.stop();
            b.stop();
        })
        .await;
}

#[actix_web::test]
async fn jira_killed_between_create_and_record_ends_with_one_issue() {
    killed_between_create_and_record(JIRA).await;
}

#[actix_web::test]
async fn servicenow_killed_between_create_and_record_ends_with_one_record() {
    killed_between_create_and_record(SERVICENOW).await;
}

#[actix_web::test]
async fn connectwise_killed_between_create_and_record_ends_with_one_ticket() {
    killed_between_create_and_record(CONNECTWISE).await;
}

#[actix_web::test]
async fn autotask_killed_between_create_and_record_ends_with_one_ticket() {
    killed_between_create_and_record(AUTOTASK).await;
}

#[actix_web::test]
async fn jira_two_instances_taking_one_incident_at_once_make_one_issue() {
    two_instances_make_one_ticket(JIRA).await;
}

#[actix_web::test]
async fn servicenow_two_instances_taking_one_incident_at_once_make_one_record() {
    two_instances_make_one_ticket(SERVICENOW).await;
}

#[actix_web::test]
async fn connectwise_two_instances_taking_one_incident_at_once_make_one_ticket() {
    two_instances_make_one_ticket(CONNECTWISE).await;
}

#[actix_web::test]
async fn autotask_two_instances_taking_one_incident_at_once_make_one_ticket() {
    two_instances_make_one_ticket(AUTOTASK).await;
}
