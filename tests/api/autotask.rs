//! `autotask` (SPEC section 17) against a local Autotask stand-in (`ticket_systems`): the zone
//! discovered once, one ticket per incident in the company the tenant maps to (or the default)
//! with later events as internal notes, a ticket completed or deleted by a person (or a note
//! refused) followed by a new one that links it, Autotask's refusals (`401`, an unknown company,
//! `429` with `Retry-After`), a create made but answered `500` found by its marker (in the UDF,
//! or in the title), and Test.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::ticket_systems::{deliver, ticketing_router as app, WITHIN};
use crate::ticket_systems::{start_autotask, Fault, Op, Tickets, AUTOTASK_CODE, AUTOTASK_QUEUE, AUTOTASK_SECRET, AUTOTASK_USER};

const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";
const HR: &str = "https://contoso.sharepoint.com/sites/HR";

/// An Autotask channel (contoso → company 174, every other tenant → 0) with a rule sending every
/// event of tenants `contoso` and `fabrikam` to it.
async fn autotask_channel(app: &TestApp, autotask: &Tickets, extra: Value) -> String {
    let mut input = json!({
        "name": "MSP Autotask", "type": "autotask", "url": format!("{}/atservicesrest", autotask.base),
        "username": AUTOTASK_USER, "api_secret": AUTOTASK_SECRET, "integration_code": AUTOTASK_CODE,
        "queue_id": AUTOTASK_QUEUE,
        // As the admin page's form sends it: JSON text.
        "companies": r#"{"contoso": 174, "default": 0}"#,
        "rate_limit_per_second": 50,
    });
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!((&answer.body["api_secret"], &answer.body["integration_code"]), (&json!("••••9c1e"), &json!("••••7b3d")), "write-only: {}", answer.body);
    assert_eq!(answer.body["companies"], json!({"contoso": "174", "default": "0"}), "stored as an object: {}", answer.body);
    assert_eq!(answer.body["priority"], json!({"critical": 4, "high": 1, "medium": 2, "low": 3}), "the defaults filled in: {}", answer.body);
    assert_eq!(answer.body["incident_by"][0], "/tenant/id", "one customer per ticket: {}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&id]).await;
    app.create_tenant("contoso").await;
    app.create_tenant("fabrikam").await;
    id
}

fn at_site(tenant: &str, severity: &str, site: &str) -> Value {
    let mut event = permission_event(tenant, "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event["data"]["resource_path"] = json!(format!("{site}/Shared Documents"));
    event
}

fn zone_requests(autotask: &Tickets) -> usize {
    autotask.requests().iter().filter(|(_, p, _)| p.contains("zoneInformation")).count()
}

on_both_backends! {
    #[actix_web::test]
    async fn one_ticket_per_incident_in_the_tenants_company_later_events_as_internal_notes_the_zone_discovered_once() {
        let autotask = start_autotask();
        let app = app(Duration::from_secs(120)).await;
        autotask_channel(&app, &autotask, json!({})).await;
        let mut first = at_site("contoso", "high", FINANCE);
        // Event data that is long, and would be markup or a line break anywhere else.
        first["data"]["principal"] = json!(format!("<b>x</b>\n[code]{}\u{202E}", "y".repeat(400)));
        let created = deliver(&app, first, "succeeded").await;
        let later = deliver(&app, at_site("contoso", "critical", FINANCE), "succeeded").await;
        let other = deliver(&app, at_site("fabrikam", "low", HR), "succeeded").await;
        let tickets = autotask.wait_for(2, 1, WITHIN).await;
        assert_eq!(tickets.len(), 2, "one ticket per incident");
        let (contoso, fabrikam) = (&tickets[0], &tickets[1]);
        assert_eq!((contoso.notes.len(), fabrikam.notes.len()), (1, 0), "the later event is a note");
        assert_eq!(zone_requests(&autotask), 1, "the zone is discovered once and kept: {:?}", autotask.requests());
        // The ticket: company by tenant, queue, status New, priority by severity, the marker whole
        // at the end of a title cut to 255.
        let fields = &contoso.created;
        assert_eq!((&fields["companyID"], &fields["queueID"], &fields["status"], &fields["priority"]), (&json!(174), &json!(AUTOTASK_QUEUE), &json!(1), &json!(1)));
        assert_eq!((&fabrikam.created["companyID"], &fabrikam.created["priority"]), (&json!(0), &json!(3)), "the default company, low → Low");
        let title = fields["title"].as_str().unwrap();
        assert_eq!(title.chars().count(), 255, "{title}");
        assert!(title.starts_with("HIGH: External share created") && title.ends_with(&format!(" [{}]", contoso.marker)), "{title}");
        assert!(contoso.marker.starts_with("spscan-") && contoso.marker.len() == 27, "{}", contoso.marker);
        assert!(fields.get("userDefinedFields").is_none(), "no marker UDF named: {fields}");
        let description = fields["description"].as_str().unwrap();
        assert!(description.contains("Principal: <b>x</b> (code]yyy"), "event data as one line of text: {description}");
        assert!(!description.contains('\u{202E}'));
        assert!(description.contains(&format!("SPScan incident marker: {}", contoso.marker)), "{description}");
        // The note is internal, of the default type, and carries the later event.
        let note = &contoso.notes[0];
        assert_eq!((&note["publish"], &note["noteType"]), (&json!(2), &json!(1)), "{note}");
        assert!(note["title"].as_str().unwrap().starts_with("CRITICAL: External share created"), "{note}");
        // Each delivery names its ticket (a link to it in Autotask's web zone) and its company.
        let link = |id: &str| format!("{}/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID={id}", autotask.base);
        for (delivery, ticket, company) in [(&created, contoso, json!({"id": "174", "source": "map"})), (&later, contoso, json!({"id": "174", "source": "map"})), (&other, fabrikam, json!({"id": "0", "source": "default"}))] {
            assert_eq!(delivery["ticket"]["id"], json!(ticket.id), "{delivery}");
            assert_eq!(delivery["ticket"]["url"], json!(link(&ticket.id)), "{delivery}");
            assert_eq!(delivery["company"], company, "{delivery}");
        }
        // The requests went to the zone; the delivery page shows the API user, not its secret
        // or integration code.
        let attempt = &later["attempts"][0]["request"];
        assert_eq!(attempt["url"], json!(format!("{}/ATServicesRest/V1.0/Tickets/{}/Notes", autotask.base, contoso.id)), "{attempt}");
        let header = |name: &str| attempt["headers"].as_array().unwrap().iter().find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name)).map(|h| h["value"].clone());
        assert_eq!(header("UserName"), Some(json!(AUTOTASK_USER)));
        assert_eq!((header("Secret"), header("ApiIntegrationCode")), (Some(json!("••••9c1e")), Some(json!("••••7b3d"))));
        assert!(!attempt.to_string().contains(AUTOTASK_SECRET) && !attempt.to_string().contains(AUTOTASK_CODE), "{attempt}");
    }

    #[actix_web::test]
    async fn a_completed_or_deleted_ticket_or_a_refused_note_is_followed_by_a_new_ticket_that_links_it() {
        let autotask = start_autotask();
        let app = app(Duration::from_secs(120)).await;
        autotask_channel(&app, &autotask, json!({})).await;
        deliver(&app, at_site("contoso", "high", FINANCE), "succeeded").await;
        let first = autotask.wait_for(1, 0, WITHIN).await[0].clone();
        // Complete (status 5): the next event opens a new ticket that names the old one.
        autotask.close(&first.id);
        let second_delivery = deliver(&app, at_site("contoso", "high", FINANCE), "succeeded").await;
        let second = autotask.wait_for(2, 0, WITHIN).await[1].clone();
        assert_ne!(second.marker, first.marker, "a new ticket, a new marker");
        let follows = |t: &crate::ticket_systems::Ticket| t.created["description"].as_str().unwrap().to_string();
        let link = format!("{}/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID={}", autotask.base, first.id);
        assert!(follows(&second).contains(&format!("Follows {} ({link})", first.id)), "{}", follows(&second));
        assert_eq!(second_delivery["ticket"]["id"], json!(second.id));
        // Deleted (read as no item): the same.
        autotask.delete(&second.id);
        deliver(&app, at_site("contoso", "high", FINANCE), "succeeded").await;
        let third = autotask.wait_for(3, 0, WITHIN).await[2].clone();
        assert!(follows(&third).contains(&format!("Follows {}", second.id)), "{}", follows(&third));
        // A note refused with 403 (the ticket was locked after it was read): the same.
        autotask.fault(Op::Note, Fault::Status(403, r#"{"errors":["User does not have permission to add notes to this ticket."]}"#));
        deliver(&app, at_site("contoso", "high", FINANCE), "succeeded").await;
        let tickets = autotask.wait_for(4, 0, WITHIN).await;
        assert!(follows(&tickets[3]).contains(&format!("Follows {}", third.id)));
        assert!(tickets.iter().all(|t| t.notes.is_empty()));
    }

    #[actix_web::test]
    async fn autotasks_refusals_are_final_with_their_words_and_a_throttled_request_waits_as_asked() {
        let autotask = start_autotask();
        let app = app(Duration::from_secs(120)).await;
        let channel = autotask_channel(&app, &autotask, json!({})).await;
        // 429 with Retry-After: retried after the wait, then made.
        autotask.fault(Op::Create, Fault::RetryAfter(429, "2"));
        let answer = app.ingest(at_site("contoso", "high", FINANCE)).await;
        let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let made = app.wait_for_status(&id, "succeeded", WITHIN).await;
        assert_eq!(made["attempts"][0]["status_code"], 429, "{made}");
        assert!(ms(&made["attempts"][1]["started_at"]) - ms(&made["attempts"][0]["started_at"]) >= 1_900, "waited as asked: {made}");
        assert_eq!(autotask.tickets().len(), 1, "a 429 made nothing");
        // A tenant mapped to a company Autotask does not have: final, error kind `mapping`.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"companies": {"contoso": 174, "fabrikam": 9999, "default": 0}})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let unmapped = deliver(&app, at_site("fabrikam", "high", HR), "failed").await;
        assert_eq!(unmapped["attempt_count"], 1, "{unmapped}");
        assert_eq!(unmapped["last_error_kind"], "mapping", "{unmapped}");
        assert!(unmapped["last_error"].as_str().unwrap().contains("Autotask: Reference value on field: companyID of type: Company does not exist"), "{unmapped}");
        // Credentials refused: final, naming them.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"api_secret": "revoked-secret-0000"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let unauthorized = deliver(&app, at_site("contoso", "high", HR), "failed").await;
        assert_eq!(unauthorized["attempt_count"], 1);
        assert!(unauthorized["last_error"].as_str().unwrap().contains("check `username`, `api_secret` and `integration_code`"), "{unauthorized}");
        assert_eq!(autotask.tickets().len(), 1);
    }

    #[actix_web::test]
    async fn a_create_made_but_answered_500_is_found_by_its_marker_in_the_udf_or_the_title_not_made_twice() {
        let autotask = start_autotask();
        let app = app(Duration::from_secs(2)).await;
        let channel = autotask_channel(&app, &autotask, json!({"marker_udf": "SPScan marker"})).await;
        for (site, searched) in [(FINANCE, json!({"op": "eq", "field": "SPScan marker", "udf": true})), (HR, json!({"op": "contains", "field": "title"}))] {
            if site == HR {
                let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"marker_udf": null})).await;
                assert_eq!(moved.status, 200, "{}", moved.body);
            }
            let before = autotask.tickets().len();
            autotask.fault(Op::Create, Fault::MadeThen500);
            let answer = app.ingest(at_site("contoso", "high", site)).await;
            let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
            // A later event of the incident waits behind it.
            let later = app.ingest(at_site("contoso", "critical", site)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
            let delivered = app.wait_for_status(&id, "succeeded", WITHIN).await;
            app.wait_for_status(&later, "succeeded", WITHIN).await;
            let tickets = autotask.tickets();
            assert_eq!(tickets.len(), before + 1, "one ticket: {:?}", autotask.requests());
            let ticket = tickets.last().unwrap();
            assert_eq!(ticket.notes.len(), 1, "the later event is its note");
            assert_eq!(delivered["ticket"]["id"], json!(ticket.id));
            assert_eq!(delivered["ticket"]["key"], json!(ticket.key), "a ticket found by a search has its number");
            let attempts = delivered["attempts"].as_array().unwrap();
            assert_eq!(attempts.len(), 2, "{delivered}");
            assert!(ms(&attempts[1]["started_at"]) - ms(&attempts[0]["started_at"]) >= 1_900, "the search waited CREATE_SETTLE: {delivered}");
            assert!(attempts[1]["request"]["url"].as_str().unwrap().ends_with("/V1.0/Tickets/query"), "found by a search: {}", attempts[1]);
            let (_, _, query) = autotask.requests().into_iter().rev().find(|(_, p, _)| p.ends_with("/Tickets/query")).unwrap();
            let mut expected = searched.clone();
            expected["value"] = json!(ticket.marker);
            assert_eq!(query["filter"], json!([expected]), "{query}");
            if site == FINANCE {
                assert_eq!(ticket.created["userDefinedFields"], json!([{"name": "SPScan marker", "value": ticket.marker}]));
            }
        }
    }

    #[actix_web::test]
    async fn test_checks_the_credentials_queue_and_every_company_creating_nothing_and_creates_a_marked_ticket_when_asked() {
        let autotask = start_autotask();
        let app = app(Duration::from_secs(120)).await;
        let channel = autotask_channel(&app, &autotask, json!({})).await;
        let tested = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(tested.status, 200, "{}", tested.body);
        assert_eq!(tested.body["ok"], true, "{}", tested.body);
        assert_eq!(tested.body["checked"], json!(["the credentials", format!("queue {AUTOTASK_QUEUE}"), "company 0", "company 174"]));
        assert!(autotask.tickets().is_empty(), "nothing created");
        let created = app.post(&format!("/api/v1/channels/{channel}/test"), json!({"create": true})).await;
        assert_eq!(created.body["ok"], true, "{}", created.body);
        let tickets = autotask.tickets();
        assert_eq!(tickets.len(), 1);
        assert!(tickets[0].created["title"].as_str().unwrap().starts_with("[SPScan TEST] "), "{:?}", tickets[0].created);
        assert_eq!(created.body["ticket"]["id"], json!(tickets[0].id), "{}", created.body);
        // A company Autotask does not have, a queue it does not have, then a bad secret: Test says which.
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"companies": {"contoso": 176, "default": 0}})).await;
        let wrong = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(wrong.body["ok"], false);
        assert!(wrong.body["error"].as_str().unwrap().contains("company 176 was not found"), "{}", wrong.body);
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"companies": {"default": 0}, "queue_id": 9})).await;
        let wrong = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert!(wrong.body["error"].as_str().unwrap().contains("queue 9 was not found"), "{}", wrong.body);
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"queue_id": AUTOTASK_QUEUE, "api_secret": "revoked-secret-0000"})).await;
        let refused = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains("checking the credentials") && error.contains("`api_secret`"), "{}", refused.body);
        assert_eq!(autotask.tickets().len(), 1, "no check created anything");
    }
}

#[actix_web::test]
async fn a_search_lagging_30_seconds_behind_creates_still_ends_with_one_ticket() {
    let autotask = start_autotask();
    autotask.search_lag(Duration::from_secs(30));
    let app = app(Duration::from_secs(31)).await;
    autotask_channel(&app, &autotask, json!({})).await;
    autotask.fault(Op::Create, Fault::MadeThen500);
    let answer = app.ingest(at_site("contoso", "high", FINANCE)).await;
    let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivered = app.wait_for_status(&id, "succeeded", Duration::from_secs(60)).await;
    let tickets = autotask.tickets();
    assert_eq!(tickets.len(), 1, "one ticket: {:?}", autotask.requests());
    assert_eq!(delivered["ticket"]["id"], json!(tickets[0].id));
    let searches = autotask.requests().iter().filter(|(_, p, _)| p.ends_with("/Tickets/query")).count();
    assert_eq!(searches, 1, "one search, once the index shows the ticket");
}
