//! `jira` (SPEC section 17) against a local Jira Cloud stand-in (`ticket_systems`): one issue per
//! incident with later events as internal comments, another key another issue, a ticket closed
//! or deleted by a person followed by a new one that links it, the answers Jira gives (`401`,
//! `400`, `404`, `429` with `Retry-After`), a create made but answered `500` and a search index
//! that lags behind creates (each ending with one issue), and Test.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::ticket_systems::{a_create_answered_500_is_found_not_made_twice, a_throttled_create_waits_as_asked, deliver, start_jira, ticketing_router as app, Fault, Op, Tickets, JIRA_EMAIL, JIRA_TOKEN, WITHIN};

const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";
const HR: &str = "https://contoso.sharepoint.com/sites/HR";

/// A Jira channel to `jira` (project SOC) with a rule sending every event of `contoso` to it.
pub async fn jira_channel(app: &Api, jira: &Tickets, extra: Value) -> String {
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
        a_throttled_create_waits_as_asked(&app, &jira, at_site("high", FINANCE)).await;
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
        let (delivered, _) = a_create_answered_500_is_found_not_made_twice(&app, &jira, at_site("high", FINANCE), at_site("critical", FINANCE)).await;
        assert_eq!(delivered["ticket"]["key"], json!(jira.tickets()[0].key));
        let attempts = delivered["attempts"].as_array().unwrap();
        assert!(attempts[1]["request"]["url"].as_str().unwrap().ends_with("/rest/api/3/search/jql"), "found by a search: {}", attempts[1]);
    }

    #[actix_web::test]
    async fn a_persons_redeliver_while_the_incidents_issue_is_being_made_makes_no_second_issue() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        jira_channel(&app, &jira, json!({})).await;
        // The first event of the incident fails for good (refused), the second is being made slowly.
        jira.fault(Op::Create, Fault::Status(400, r#"{"errorMessages":["Field 'labels' cannot be set."],"errors":{}}"#));
        let failed = deliver(&app, at_site("high", FINANCE), "failed").await;
        jira.fault(Op::Create, Fault::SlowMade(3_500));
        let second = app.ingest(at_site("critical", FINANCE)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let deadline = std::time::Instant::now() + WITHIN;
        while jira.requests().iter().filter(|(m, p, _)| m == "POST" && p == "/rest/api/3/issue").count() < 2 {
            assert!(std::time::Instant::now() < deadline, "the second create did not start");
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        // A person presses Redeliver on the first while the second's issue is being made.
        let redelivered = app.post(&format!("/api/v1/deliveries/{}/redeliver", failed["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(redelivered.status, 200, "{}", redelivered.body);
        let manual = redelivered.body["attempts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((&manual["trigger"], &manual["error_kind"]), (&json!("manual"), &json!("incident")), "{manual}");
        app.wait_for_status(&second, "succeeded", WITHIN).await;
        assert_eq!(jira.tickets().len(), 1, "no second issue: {:?}", jira.requests());
        // Once it is made, a Redeliver comments on it.
        let again = app.post(&format!("/api/v1/deliveries/{}/redeliver", failed["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(again.body["status"], "succeeded", "{}", again.body);
        assert_eq!(jira.wait_for(1, 1, WITHIN).await.len(), 1);
    }

    #[actix_web::test]
    async fn events_waiting_behind_the_create_become_one_comment_after_it() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        jira_channel(&app, &jira, json!({})).await;
        jira.fault(Op::Create, Fault::SlowMade(3_000));
        let first = app.ingest(at_site("high", FINANCE)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        // Five more of the incident while its issue is being made.
        let mut events: Vec<Value> = (0..5).map(|_| at_site("medium", FINANCE)).collect();
        events[2]["severity"] = json!("critical");
        events[4]["data"]["principal"] = json!("[code]<b>x</b>[/code]");
        let batch = app.ingest(json!({ "events": events })).await;
        let later: Vec<String> = batch.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect();
        app.wait_for_status(&first, "succeeded", WITHIN).await;
        for id in &later {
            app.wait_for_status(id, "succeeded", WITHIN).await;
        }
        let tickets = jira.wait_for(1, 1, WITHIN).await;
        assert_eq!(tickets.len(), 1);
        assert_eq!(tickets[0].notes.len(), 1, "one comment for the five: {:?}", tickets[0].notes);
        let comment = adf_text(&tickets[0].notes[0]["body"]);
        assert!(comment.starts_with("CRITICAL: 5 × External share created"), "{comment}");
        assert_eq!(comment.matches("External share created in contoso Ltd").count(), 5, "{comment}");
        // Each names the issue and the one request that carried them all.
        let requests: Vec<Value> = futures_util::future::join_all(later.iter().map(|id| app.delivery(id))).await.into_iter().map(|d| {
            assert_eq!(d["ticket"]["key"], json!(tickets[0].key), "{d}");
            d["attempts"][0]["request_id"].clone()
        }).collect();
        assert!(requests[0].is_string() && requests.iter().all(|r| *r == requests[0]), "{requests:?}");
    }

    #[actix_web::test]
    async fn a_sign_in_page_answered_200_in_place_of_the_issue_is_no_reason_for_a_new_issue() {
        let jira = start_jira();
        let app = app(Duration::from_secs(120)).await;
        jira_channel(&app, &jira, json!({})).await;
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        // A proxy in front of Jira answers the read with its own page, once.
        jira.fault(Op::Read, Fault::Status(200, "<html><body>Sign in to continue</body></html>"));
        let later = deliver(&app, at_site("critical", FINANCE), "succeeded").await;
        let first = &later["attempts"][0];
        assert_eq!(first["error_kind"], "http_status", "{later}");
        assert!(first["error"].as_str().unwrap().contains("something other than JSON"), "{later}");
        let tickets = jira.wait_for(1, 1, WITHIN).await;
        assert_eq!(tickets.len(), 1, "the open issue got the comment: {:?}", jira.requests());
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

/// In the admin page: a Jira channel added from the form the registry generates; Test checks
/// without creating, Test ticket opens a marked issue and links it, and a delivery's page links
/// the issue it wrote to.
#[actix_web::test]
async fn a_jira_channel_added_from_the_form_is_tested_and_its_issue_linked() {
    use crate::browser::{browser, DESKTOP};
    let jira = start_jira();
    let app = app(Duration::from_secs(120)).await;
    app.create_tenant("contoso").await;
    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&app.base).await;
    browser.go(&app.base, "#/channels").await;
    browser.click_button("", "Add channel").await;
    let form = "//form[@aria-label='Add channel']";
    browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("jira").await.unwrap();
    browser.wait_for_text("form[aria-label='Add channel'] label", "Jira site URL").await;
    browser.fill(form, "Name", "SOC Jira").await;
    browser.fill(form, "Jira site URL", &jira.base).await;
    browser.fill(form, "Account email", JIRA_EMAIL).await;
    browser.fill(form, "API token", JIRA_TOKEN).await;
    browser.fill(form, "Project key", "SOC").await;
    browser.click_button(form, "Save").await;
    let row = "//tr[td//strong[normalize-space()='SOC Jira']]";
    browser.click_button(row, "Test").await;
    browser.wait_for_text("[data-test-result='ok']", "Checked the credentials, project SOC, issue type Task in SOC").await;
    browser.wait_for_text("[data-test-result='ok']", "Nothing was created").await;
    assert!(jira.tickets().is_empty(), "Test created nothing");
    browser.click_button(row, "Test ticket").await;
    let link = browser.wait_for_text("[data-test-result='ok'] [data-test-ticket] a", "SOC-1").await;
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some(format!("{}/browse/SOC-1", jira.base).as_str()));
    assert_eq!(jira.tickets().len(), 1);
    // An event: the delivery's page links its issue.
    let channel = app.get("/api/v1/channels").await.body["items"][0]["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&channel]).await;
    let delivery = deliver(&app, at_site("high", FINANCE), "succeeded").await;
    let id = delivery["id"].as_str().unwrap();
    browser.go(&app.base, &format!("#/logs/{id}")).await;
    let issue = browser.wait_for_text("[data-ticket] a", "SOC-2").await;
    assert_eq!(issue.attr("href").await.unwrap().as_deref(), Some(format!("{}/browse/SOC-2", jira.base).as_str()));
    browser.assert_no_problems("a Jira channel from the form, tested, and its issue on a delivery").await;
    browser.client.clone().close().await.unwrap();
}
