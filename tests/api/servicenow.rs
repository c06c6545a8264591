//! `servicenow` (SPEC section 17) against a local ServiceNow instance stand-in
//! (`ticket_systems`): one incident record per incident with later events as work notes (event
//! data that would be markup in a journal field made text), another key another record, a
//! record closed or deleted by a person (or a work note refused) followed by a new one that
//! links it, the answers the Table API gives (`401`, `400`, `429` with `Retry-After`), a create
//! made but answered `500` or never answered (one record each), OAuth client credentials instead
//! of a user, and Test.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::jira::at_site;
use crate::ticket_systems::{deliver, ticketing_router as app};
use crate::ticket_systems::*;

const WITHIN: Duration = Duration::from_secs(15);
const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";
const HR: &str = "https://contoso.sharepoint.com/sites/HR";

/// A ServiceNow channel to `instance` signing in as the integration user (unless `extra` says
/// otherwise), with a rule sending every event of `contoso` to it.
async fn servicenow_channel(app: &TestApp, instance: &Tickets, extra: Value) -> String {
    let mut input = json!({"name": "SOC ServiceNow", "type": "servicenow", "url": instance.base, "username": SN_USER, "password": SN_PASSWORD, "rate_limit_per_second": 50});
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["table"], "incident", "the default filled in: {}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&id]).await;
    app.create_tenant("contoso").await;
    id
}

/// The delivery's `ticket` as a read shows it for the stand-in's record `t`.
fn shown_ticket(instance: &Tickets, t: &Ticket) -> Value {
    json!({"id": sn_sys_id(t), "key": sn_number(t), "url": format!("{}/nav_to.do?uri=incident.do?sys_id={}", instance.base, sn_sys_id(t))})
}

on_both_backends! {
    #[actix_web::test]
    async fn one_record_per_incident_later_events_as_work_notes_without_markup_and_another_key_another_record() {
        let instance = start_servicenow();
        let app = app(Duration::from_secs(120)).await;
        servicenow_channel(&app, &instance, json!({"assignment_group": SN_GROUP})).await;
        let hostile = "[code]<img src=x onerror=alert(1)>[/code]\u{202E}\nnext @[6816f79cc0a8016401c5a33be04be441:Abel Tuter]";
        let mut first = at_site("high", FINANCE);
        first["data"]["principal"] = json!(hostile);
        let created = deliver(&app, first, "succeeded").await;
        let mut second = at_site("critical", FINANCE);
        second["data"]["principal"] = json!(hostile);
        let later = deliver(&app, second, "succeeded").await;
        let other = deliver(&app, at_site("low", HR), "succeeded").await;
        let tickets = instance.wait_for(2, 1, WITHIN).await;
        assert_eq!(tickets.len(), 2, "one record per incident");
        let (finance, hr) = (&tickets[0], &tickets[1]);
        assert_eq!(finance.notes.len(), 1, "the later event is a work note");
        assert!(hr.notes.is_empty());
        // The record: urgency and impact from the severity, the marker as correlation_id.
        let fields = &finance.created;
        assert_eq!((&fields["urgency"], &fields["impact"]), (&json!("1"), &json!("2")), "high: {fields}");
        assert_eq!((&hr.created["urgency"], &hr.created["impact"]), (&json!("3"), &json!("3")), "low");
        assert_eq!(fields["correlation_id"], json!(finance.marker));
        assert!(finance.marker.starts_with("spscan-") && finance.marker.len() == 27, "{}", finance.marker);
        assert_ne!(finance.marker, hr.marker);
        assert_eq!(fields["assignment_group"], SN_GROUP);
        assert!(fields.get("caller_id").is_none(), "not set, not sent: {fields}");
        let short = fields["short_description"].as_str().unwrap();
        assert!(short.starts_with("HIGH: External share created") && short.chars().count() <= 160, "{short}");
        let description = fields["description"].as_str().unwrap();
        assert!(description.contains(&format!("SPScan incident marker: {}", finance.marker)), "{description}");
        // The work note is internal, says the later event, and holds no markup ServiceNow renders.
        let note = &finance.notes[0];
        assert_eq!(note.as_object().unwrap().keys().collect::<Vec<_>>(), ["work_notes"], "internal only: {note}");
        let text = note["work_notes"].as_str().unwrap();
        assert!(text.starts_with("CRITICAL: External share created"), "{text}");
        for written in [text, description] {
            assert!(!written.to_lowercase().contains("[code]") && !written.to_lowercase().contains("[/code]"), "no [code] tag: {written}");
            assert!(!written.contains("@["), "no mention: {written}");
            assert!(!written.contains('\u{202E}'), "no bidi override: {written}");
            assert!(written.contains("(code]<img src=x onerror=alert(1)>(/code]  next @(6816f79cc0a8016401c5a33be04be441:Abel Tuter]"), "the value kept as one line of text: {written}");
        }
        // Each delivery names its record, with the link people open.
        for (delivery, ticket) in [(&created, finance), (&later, finance), (&other, hr)] {
            assert_eq!(delivery["ticket"], shown_ticket(&instance, ticket), "{delivery}");
        }
        // The later event read the record before its work note (a PATCH); the password is not shown.
        let attempt = &later["attempts"][0]["request"];
        assert_eq!(attempt["method"], "PATCH");
        assert!(attempt["url"].as_str().unwrap().contains(&format!("/api/now/table/incident/{}", sn_sys_id(finance))), "{attempt}");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SN_USER}:{SN_PASSWORD}"));
        assert!(!attempt.to_string().contains(SN_PASSWORD) && !attempt.to_string().contains(&basic), "{attempt}");
        let reads: Vec<_> = instance.requests().into_iter().filter(|(m, p, _)| m == "GET" && p.contains("/api/now/table/incident/")).collect();
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert!(reads[0].1.ends_with("?sysparm_fields=active,number,sys_id"), "{reads:?}");
    }

    #[actix_web::test]
    async fn a_closed_or_deleted_record_or_a_refused_work_note_is_followed_by_a_new_record_that_links_it() {
        let instance = start_servicenow();
        let app = app(Duration::from_secs(120)).await;
        servicenow_channel(&app, &instance, json!({})).await;
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let first = instance.wait_for(1, 0, WITHIN).await[0].clone();
        // Resolved and closed (active=false): the next event opens a new record naming the old.
        instance.close(&first.id);
        let second_delivery = deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let second = instance.wait_for(2, 0, WITHIN).await[1].clone();
        assert_ne!(second.marker, first.marker, "a new record, a new marker");
        let description = second.created["description"].as_str().unwrap();
        let link = format!("{}/nav_to.do?uri=incident.do?sys_id={}", instance.base, sn_sys_id(&first));
        assert!(description.contains(&format!("Follows {} ({link}), which was closed or deleted.", sn_number(&first))), "{description}");
        assert_eq!(second_delivery["ticket"]["key"], json!(sn_number(&second)));
        // Deleted (a read answers 404 No Record found): the same.
        instance.delete(&second.id);
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let third = instance.wait_for(3, 0, WITHIN).await[2].clone();
        assert!(third.created["description"].as_str().unwrap().contains(&format!("Follows {}", sn_number(&second))));
        // A work note refused with 403 (an ACL after the read): the same.
        instance.fault(Op::Note, Fault::Status(403, r#"{"error":{"message":"Operation Failed","detail":"ACL Exception Update Failed due to security constraints"},"status":"failure"}"#));
        deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let tickets = instance.wait_for(4, 0, WITHIN).await;
        assert!(tickets[3].created["description"].as_str().unwrap().contains(&format!("Follows {}", sn_number(&third))));
        assert!(tickets.iter().all(|t| t.notes.is_empty()));
    }

    #[actix_web::test]
    async fn servicenows_refusals_are_final_with_its_words_and_a_throttled_request_waits_as_asked() {
        let instance = start_servicenow();
        let app = app(Duration::from_secs(120)).await;
        let channel = servicenow_channel(&app, &instance, json!({})).await;
        // 429 with Retry-After: retried after the wait, then made.
        instance.fault(Op::Create, Fault::RetryAfter(429, "2"));
        let answer = app.ingest(at_site("high", FINANCE)).await;
        let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let throttled = app.wait_for_attempts(&id, 1, WITHIN).await;
        assert_eq!(throttled["attempts"][0]["status_code"], 429);
        let made = app.wait_for_status(&id, "succeeded", WITHIN).await;
        let ms = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp_millis();
        assert!(ms(&made["attempts"][1]["started_at"]) - ms(&made["attempts"][0]["started_at"]) >= 1_900, "waited as asked: {made}");
        assert_eq!(instance.tickets().len(), 1, "a 429 made nothing; no search was needed");
        // 400 with ServiceNow's words: final, the words in the error.
        instance.fault(Op::Create, Fault::Status(400, r#"{"error":{"message":"Operation Failed","detail":"Data Policy Exception: Category is mandatory"},"status":"failure"}"#));
        let refused = deliver(&app, at_site("high", HR), "failed").await;
        assert_eq!(refused["attempt_count"], 1);
        assert!(refused["last_error"].as_str().unwrap().contains("ServiceNow: Operation Failed: Data Policy Exception: Category is mandatory"), "{refused}");
        // A table the instance does not have: final, ServiceNow naming it.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"table": "incidnt"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let missing = deliver(&app, at_site("high", "https://contoso.sharepoint.com/sites/Legal"), "failed").await;
        assert!(missing["last_error"].as_str().unwrap().contains("ServiceNow: Invalid table incidnt"), "{missing}");
        // Credentials refused (401 User Not Authenticated): final, naming them.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"table": "incident", "password": "changed-by-someone"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let unauthorized = deliver(&app, at_site("high", "https://contoso.sharepoint.com/sites/Board"), "failed").await;
        assert_eq!(unauthorized["attempt_count"], 1);
        assert!(unauthorized["last_error"].as_str().unwrap().contains("check `username` and `password`"), "{unauthorized}");
        assert_eq!(instance.tickets().len(), 1);
    }

    #[actix_web::test]
    async fn a_create_made_but_answered_500_is_found_by_its_correlation_id_not_made_twice() {
        let instance = start_servicenow();
        let app = app(Duration::from_secs(2)).await;
        servicenow_channel(&app, &instance, json!({})).await;
        instance.fault(Op::Create, Fault::MadeThen500);
        let answer = app.ingest(at_site("high", FINANCE)).await;
        let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        // A later event of the incident waits behind it.
        let later = app.ingest(at_site("critical", FINANCE)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let delivered = app.wait_for_status(&id, "succeeded", WITHIN).await;
        app.wait_for_status(&later, "succeeded", WITHIN).await;
        let tickets = instance.tickets();
        assert_eq!(tickets.len(), 1, "one record: {:?}", instance.requests());
        assert_eq!(tickets[0].notes.len(), 1, "the later event is its work note");
        assert_eq!(delivered["ticket"], shown_ticket(&instance, &tickets[0]));
        let attempts = delivered["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{delivered}");
        let search = attempts[1]["request"]["url"].as_str().unwrap();
        assert!(search.contains("/api/now/table/incident?sysparm_query=correlation_id") && search.contains(&tickets[0].marker), "found by a search: {}", attempts[1]);
    }

    #[actix_web::test]
    async fn a_create_made_but_never_answered_is_found_by_its_correlation_id_not_made_twice() {
        let instance = start_servicenow();
        let app = spawn_app_with(|s| {
            s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("1s,1s,1s,1s").unwrap();
            s.create_settle = Duration::from_secs(2);
            s.delivery_timeout = Duration::from_millis(800);
        })
        .await;
        servicenow_channel(&app, &instance, json!({})).await;
        // The instance makes the record, then the answer never comes (a connection lost, a crash).
        instance.fault(Op::Create, Fault::MadeThenHang);
        let delivered = deliver(&app, at_site("high", FINANCE), "succeeded").await;
        let tickets = instance.tickets();
        assert_eq!(tickets.len(), 1, "one record: {:?}", instance.requests());
        assert_eq!(delivered["ticket"], shown_ticket(&instance, &tickets[0]));
        assert_eq!(delivered["attempts"][0]["error_kind"], "timeout", "{delivered}");
        let creates = instance.requests().iter().filter(|(m, _, _)| m == "POST").count();
        assert_eq!(creates, 1, "never created again: {:?}", instance.requests());
    }

    #[actix_web::test]
    async fn an_oauth_application_signs_in_with_client_credentials_instead_of_a_user() {
        let instance = start_servicenow();
        let app = app(Duration::from_secs(120)).await;
        // One way of signing in, never both or neither.
        let both = app.post("/api/v1/channels", json!({"name": "x", "type": "servicenow", "url": instance.base, "username": SN_USER, "password": SN_PASSWORD, "client_id": SN_CLIENT_ID, "client_secret": SN_CLIENT_SECRET})).await;
        assert_eq!((both.status, &both.body["field"]), (422, &json!("client_id")), "{}", both.body);
        let neither = app.post("/api/v1/channels", json!({"name": "x", "type": "servicenow", "url": instance.base})).await;
        assert_eq!((neither.status, &neither.body["field"]), (422, &json!("username")), "{}", neither.body);
        let input = json!({"name": "SOC ServiceNow", "type": "servicenow", "url": instance.base, "client_id": SN_CLIENT_ID, "client_secret": SN_CLIENT_SECRET, "rate_limit_per_second": 50});
        let answer = app.post("/api/v1/channels", input).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body["client_secret"], "••••77aa", "write-only: {}", answer.body);
        let channel = answer.body["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&channel]).await;
        app.create_tenant("contoso").await;
        let delivered = deliver(&app, at_site("medium", FINANCE), "succeeded").await;
        let record = &instance.wait_for(1, 0, WITHIN).await[0];
        assert_eq!((&record.created["urgency"], &record.created["impact"]), (&json!("2"), &json!("2")), "medium");
        // The token came from the instance's /oauth_token.do (no scope asked for), and went as a bearer.
        let grants: Vec<_> = instance.requests().into_iter().filter(|(m, p, _)| m == "POST" && p == "/oauth_token.do").collect();
        assert_eq!(grants.len(), 1, "{grants:?}");
        assert_eq!(grants[0].2, json!(["grant_type=client_credentials", format!("client_id={SN_CLIENT_ID}"), format!("client_secret={SN_CLIENT_SECRET}")]));
        let shown = &delivered["attempts"][0]["request"];
        assert!(shown.to_string().contains("Bearer ••••") && !shown.to_string().contains(SN_ACCESS_TOKEN), "{shown}");
        // A later event reuses the token.
        deliver(&app, at_site("medium", FINANCE), "succeeded").await;
        assert_eq!(instance.wait_for(1, 1, WITHIN).await.len(), 1);
        assert_eq!(instance.requests().iter().filter(|(_, p, _)| p == "/oauth_token.do").count(), 1, "cached");
        // A Test with a revoked secret says the token endpoint refused it.
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"client_secret": "revoked-secret-0000"})).await;
        let refused = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(refused.body["ok"], false, "{}", refused.body);
        assert!(refused.body["error"].as_str().unwrap().contains("token endpoint answered HTTP 401"), "{}", refused.body);
    }

    #[actix_web::test]
    async fn test_checks_the_credentials_table_and_assignment_group_creating_nothing_and_creates_a_marked_record_when_asked() {
        let instance = start_servicenow();
        let app = app(Duration::from_secs(120)).await;
        let channel = servicenow_channel(&app, &instance, json!({"assignment_group": SN_GROUP})).await;
        let tested = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(tested.status, 200, "{}", tested.body);
        assert_eq!(tested.body["ok"], true, "{}", tested.body);
        assert_eq!(tested.body["checked"], json!(["the credentials and table incident", format!("assignment group {SN_GROUP}")]));
        assert!(instance.tickets().is_empty(), "nothing created");
        let created = app.post(&format!("/api/v1/channels/{channel}/test"), json!({"create": true})).await;
        assert_eq!(created.body["ok"], true, "{}", created.body);
        let tickets = instance.tickets();
        assert_eq!(tickets.len(), 1);
        assert!(tickets[0].created["short_description"].as_str().unwrap().starts_with("[SPScan TEST] "), "{:?}", tickets[0].created);
        assert_eq!(created.body["ticket"], shown_ticket(&instance, &tickets[0]));
        // A group the instance does not have, then a wrong password: Test says which.
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"assignment_group": "0a52d3dcd7011200f2d224837e6103f2"})).await;
        let wrong = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(wrong.body["ok"], false);
        assert!(wrong.body["error"].as_str().unwrap().contains("assignment group 0a52d3dcd7011200f2d224837e6103f2 was not found"), "{}", wrong.body);
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"assignment_group": null, "password": "changed-by-someone"})).await;
        let refused = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains("checking the credentials and table incident") && error.contains("`password`"), "{}", refused.body);
        assert_eq!(instance.tickets().len(), 1, "no check created anything");
    }
}

#[actix_web::test]
async fn a_search_lagging_30_seconds_behind_creates_still_ends_with_one_record() {
    let instance = start_servicenow();
    instance.search_lag(Duration::from_secs(30));
    let app = app(Duration::from_secs(31)).await;
    servicenow_channel(&app, &instance, json!({})).await;
    instance.fault(Op::Create, Fault::MadeThen500);
    let answer = app.ingest(at_site("high", FINANCE)).await;
    let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivered = app.wait_for_status(&id, "succeeded", Duration::from_secs(60)).await;
    let tickets = instance.tickets();
    assert_eq!(tickets.len(), 1, "one record: {:?}", instance.requests());
    assert_eq!(delivered["ticket"]["key"], json!(sn_number(&tickets[0])));
    let searches = instance.requests().iter().filter(|(_, p, _)| p.contains("sysparm_query=correlation_id")).count();
    assert_eq!(searches, 1, "one search, once the index shows the record");
}
