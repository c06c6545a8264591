//! `jira` (SPEC section 17) against a local Jira Cloud stand-in (`ticket_systems`): one issue per
//! incident with later events as internal comments, another key another issue, a ticket closed
//! or deleted by a person followed by a new one that links it, the answers Jira gives (`401`,
//! `400`, `404`, `429` with `Retry-After`), a create made but answered `500` and a search index
//! that lags behind creates (each ending with one issue), and Test.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::ticket_systems::{start_jira, Fault, Op, Tickets, JIRA_EMAIL, JIRA_TOKEN};

const WITHIN: Duration = Duration::from_secs(15);
const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";
const HR: &str = "https://contoso.sharepoint.com/sites/HR";

/// A router whose retries come after 1 s and whose searches wait `settle` after an unknown create.
pub async fn app(settle: Duration) -> TestApp {
    spawn_app_with(move |s| {
        s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("1s,1s,1s,1s").unwrap();
        s.create_settle = settle;
    })
    .await
}

/// A Jira channel to `jira` (project SOC) with a rule sending every event of `contoso` to it.
pub async fn jira_channel(app: &TestApp, jira: &Tickets, extra: Value) -> String {
    let mut input = json!({"name": "SOC Jira", "type": "jira", "url": jira.base, "email": JIRA_EMAIL, "api_token": JIRA_TOKEN, "project_key": "SOC", "rate_limit_per_second": 50});
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["api_token"], "••••4f2a", "write-only: {}", answer.body);
    assert_eq!(answer.body["issue_type"], "Task", "the default filled in: {}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&id]).await;
    app.create_tenant("contoso").await;
    id
}

pub fn at_site(severity: &str, site: &str) -> Value {
    let mut event = permission_event("contoso", "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event
}

/// Ingests `event` and waits until its delivery is `status`.
pub async fn deliver(app: &TestApp, event: Value, status: &str) -> Value {
    let answer = app.ingest(event).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), status, WITHIN).await
}

/// Every text node of an ADF document, joined by new lines.
fn adf_text(doc: &Value) -> String {
    let mut out = Vec::new();
    fn walk(node: &Value, out: &mut Vec<String>) {
        if node["type"] == "text" {
            out.push(node["text"].as_str().unwrap().to_string());
        }
        assert!(node.get("marks").is_none(), "no marks (links) in: {node}");
        assert!(!matches!(node["type"].as_str(), Some("mention" | "inlineCard" | "blockCard" | "emoji")), "no {node}");
        for child in node["content"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    walk(doc, &mut out);
    out.join("\n")
}

on_both_backends! {
    #[actix_web::test]
    async fn one_issue_per_incident_later_events_as_internal_comments_and_another_key_another_issue() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        jira_channel(&app, &jira, json!({"labels": "spscan, m365"})).await;
        let mut first = at_site("high", FINANCE);
        // Event data that would be a link, a mention or markup anywhere else.
        first["data"]["principal"] = json!("[click](https://evil.example) @channel <b>x</b>\u{202E}");
        let created = deliver(&app, first, "succeeded").await;
        let later = deliver(&app, at_site("critical", FINANCE), "succeeded").await;
        let other = deliver(&app, at_site("low", HR), "succeeded").await;
        let tickets = jira.wait_for(2, 1, WITHIN).await;
        assert_eq!(tickets.len(), 2, "one issue per incident");
        let (finance, hr) = (&tickets[0], &tickets[1]);
        assert_eq!(finance.notes.len(), 1, "the later event is a comment");
        assert!(hr.notes.is_empty());
        // The issue: project, type, summary, labels with the marker first.
        let fields = &finance.created["fields"];
        assert_eq!((&fields["project"]["key"], &fields["issuetype"]["name"]), (&json!("SOC"), &json!("Task")));
        assert_eq!(fields["labels"], json!([finance.marker, "spscan", "m365"]));
        assert!(finance.marker.starts_with("spscan-") && finance.marker.len() == 27, "{}", finance.marker);
        assert_ne!(finance.marker, hr.marker);
        let summary = fields["summary"].as_str().unwrap();
        assert!(summary.starts_with("HIGH: External share created"), "{summary}");
        let description = adf_text(&fields["description"]);
        assert!(description.contains("Principal: [click](https://evil.example) @channel <b>x</b> "), "event data as text: {description}");
        assert!(description.contains(&finance.marker), "{description}");
        // The comment is internal and carries the later event.
        let comment = &finance.notes[0];
        assert_eq!(comment["properties"][0], json!({"key": "sd.public.comment", "value": {"internal": true}}));
        assert!(adf_text(&comment["body"]).starts_with("CRITICAL: External share created"), "{comment}");
        // Each delivery names its issue, with the link people open.
        let base = &jira.base;
        for (delivery, ticket) in [(&created, finance), (&later, finance), (&other, hr)] {
            assert_eq!(delivery["ticket"], json!({"id": ticket.id, "key": ticket.key, "url": format!("{base}/browse/{}", ticket.key)}), "{delivery}");
        }
        // The later event read the issue's state before commenting; the credentials are masked
        // on the delivery page.
        let attempt = &later["attempts"][0]["request"];
        assert_eq!(attempt["method"], "POST");
        assert!(attempt["url"].as_str().unwrap().ends_with(&format!("/rest/api/3/issue/{}/comment", finance.id)), "{attempt}");
        assert!(!attempt.to_string().contains(JIRA_TOKEN), "{attempt}");
        let reads: Vec<_> = jira.requests().into_iter().filter(|(m, p, _)| m == "GET" && p.contains("/rest/api/3/issue/")).collect();
        assert_eq!(reads.len(), 1, "{reads:?}");
    }

    #[actix_web::test]
    async fn a_closed_or_deleted_issue_or_a_refused_comment_is_followed_by_a_new_issue_that_links_it() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        jira_channel(&app, &jira, json!({})).await;
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let first = jira.wait_for(1, 0, WITHIN).await[0].clone();
        // Closed by a person: the next event opens a new issue that names the old one.
        jira.close(&first.id);
        let second_delivery = deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let tickets = jira.wait_for(2, 0, WITHIN).await;
        let second = tickets[1].clone();
        assert_ne!(second.marker, first.marker, "a new issue, a new marker");
        let description = adf_text(&second.created["fields"]["description"]);
        assert!(description.contains(&format!("Follows {} ({}/browse/{})", first.key, jira.base, first.key)), "{description}");
        assert_eq!(second_delivery["ticket"]["key"], json!(second.key));
        // Deleted: the same.
        jira.delete(&second.id);
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let third = jira.wait_for(3, 0, WITHIN).await[2].clone();
        assert!(adf_text(&third.created["fields"]["description"]).contains(&format!("Follows {}", second.key)));
        // A comment refused with 403 (the issue was locked after it was read): the same.
        jira.fault(Op::Note, Fault::Status(403, r#"{"errorMessages":["You do not have permission to comment on this issue."],"errors":{}}"#));
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let tickets = jira.wait_for(4, 0, WITHIN).await;
        assert!(adf_text(&tickets[3].created["fields"]["description"]).contains(&format!("Follows {}", third.key)));
        assert!(tickets.iter().all(|t| t.notes.is_empty()));
    }

    #[actix_web::test]
    async fn jiras_refusals_are_final_with_its_words_and_a_throttled_request_waits_as_asked() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        let channel = jira_channel(&app, &jira, json!({})).await;
        // 429 with Retry-After: retried after the wait, then made.
        jira.fault(Op::Create, Fault::RetryAfter(429, "2"));
        let answer = app.ingest(at_site("high", FINANCE)).await;
        let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let throttled = app.wait_for_attempts(&id, 1, WITHIN).await;
        assert_eq!(throttled["attempts"][0]["status_code"], 429);
        let made = app.wait_for_status(&id, "succeeded", WITHIN).await;
        let (first, second) = (&made["attempts"][0]["started_at"], &made["attempts"][1]["started_at"]);
        let ms = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp_millis();
        assert!(ms(second) - ms(first) >= 1_900, "waited as asked: {first} → {second}");
        assert_eq!(jira.tickets().len(), 1, "a 429 made nothing; no search was needed");
        // 400 with Jira's words: final, the words in the error.
        jira.fault(Op::Create, Fault::Status(400, r#"{"errorMessages":[],"errors":{"customfield_10010":"Team is required."}}"#));
        let refused = deliver(&app, at_site("high", HR), "failed").await;
        assert_eq!(refused["attempt_count"], 1);
        assert!(refused["last_error"].as_str().unwrap().contains("Jira: customfield_10010: Team is required."), "{refused}");
        // A wrong project: 404 on create, final, naming the setting.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"project_key": "NOPE"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let missing = deliver(&app, at_site("high", "https://contoso.sharepoint.com/sites/Legal"), "failed").await;
        assert!(missing["last_error"].as_str().unwrap().contains("check `project_key`"), "{missing}");
        // Credentials refused: final, naming them.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"project_key": "SOC", "api_token": "revoked-token-0000"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let unauthorized = deliver(&app, at_site("high", "https://contoso.sharepoint.com/sites/Board"), "failed").await;
        assert_eq!(unauthorized["attempt_count"], 1);
        assert!(unauthorized["last_error"].as_str().unwrap().contains("check `email` and `api_token`"), "{unauthorized}");
    }

    #[actix_web::test]
    async fn a_create_made_but_answered_500_is_found_by_its_marker_not_made_twice() {
        let jira = start_jira();
        let app = app(Duration::from_secs(2)).await;
        jira_channel(&app, &jira, json!({})).await;
        jira.fault(Op::Create, Fault::MadeThen500);
        let answer = app.ingest(at_site("high", FINANCE)).await;
        let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        // A later event of the incident waits behind it.
        let later = app.ingest(at_site("critical", FINANCE)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let delivered = app.wait_for_status(&id, "succeeded", WITHIN).await;
        app.wait_for_status(&later, "succeeded", WITHIN).await;
        let tickets = jira.tickets();
        assert_eq!(tickets.len(), 1, "one issue: {:?}", jira.requests());
        assert_eq!(tickets[0].notes.len(), 1, "the later event is its comment");
        assert_eq!(delivered["ticket"]["key"], json!(tickets[0].key));
        let attempts = delivered["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{delivered}");
        let ms = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp_millis();
        assert!(ms(&attempts[1]["started_at"]) - ms(&attempts[0]["started_at"]) >= 1_900, "the search waited CREATE_SETTLE: {delivered}");
        assert!(attempts[1]["request"]["url"].as_str().unwrap().ends_with("/rest/api/3/search/jql"), "found by a search: {}", attempts[1]);
    }

    #[actix_web::test]
    async fn test_checks_the_credentials_project_and_issue_type_creating_nothing_and_creates_a_marked_issue_when_asked() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        let channel = jira_channel(&app, &jira, json!({})).await;
        let tested = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(tested.status, 200, "{}", tested.body);
        assert_eq!(tested.body["ok"], true, "{}", tested.body);
        assert_eq!(tested.body["checked"], json!(["the credentials", "project SOC", "issue type Task in SOC"]));
        assert!(jira.tickets().is_empty(), "nothing created");
        let created = app.post(&format!("/api/v1/channels/{channel}/test"), json!({"create": true})).await;
        assert_eq!(created.body["ok"], true, "{}", created.body);
        let tickets = jira.tickets();
        assert_eq!(tickets.len(), 1);
        assert!(tickets[0].created["fields"]["summary"].as_str().unwrap().starts_with("[SPScan TEST] "), "{:?}", tickets[0].created);
        assert_eq!(created.body["ticket"], json!({"id": tickets[0].id, "key": tickets[0].key, "url": format!("{}/browse/{}", jira.base, tickets[0].key)}));
        // An issue type the project does not have, then a bad token: Test says which.
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"issue_type": "Incident"})).await;
        let wrong = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(wrong.body["ok"], false);
        assert!(wrong.body["error"].as_str().unwrap().contains("issue type Incident in SOC was not found"), "{}", wrong.body);
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"issue_type": "Task", "api_token": "revoked-token-0000"})).await;
        let refused = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert!(refused.body["error"].as_str().unwrap().contains("checking the credentials") && refused.body["error"].as_str().unwrap().contains("`api_token`"), "{}", refused.body);
        assert_eq!(jira.tickets().len(), 1, "no check created anything");
    }
}

#[actix_web::test]
async fn a_search_index_lagging_30_seconds_behind_creates_still_ends_with_one_issue() {
    let jira = start_jira();
    jira.search_lag(Duration::from_secs(30));
    let app = app(Duration::from_secs(31)).await;
    jira_channel(&app, &jira, json!({})).await;
    jira.fault(Op::Create, Fault::MadeThen500);
    let answer = app.ingest(at_site("high", FINANCE)).await;
    let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivered = app.wait_for_status(&id, "succeeded", Duration::from_secs(60)).await;
    let tickets = jira.tickets();
    assert_eq!(tickets.len(), 1, "one issue: {:?}", jira.requests());
    assert_eq!(delivered["ticket"]["key"], json!(tickets[0].key));
    let searches = jira.requests().iter().filter(|(_, p, _)| p.ends_with("/search/jql")).count();
    assert_eq!(searches, 1, "one search, once the index shows the issue");
}
