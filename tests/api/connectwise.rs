//! `connectwise` (SPEC section 17) against a local ConnectWise PSA stand-in (`ticket_systems`):
//! one service ticket per incident with later events as internal notes, each tenant's tickets
//! under the company the `companies` map names (or its `default`), one customer per ticket
//! whatever `incident_by` says, a ticket closed or deleted by a person followed by a new one
//! that links it, the answers ConnectWise gives (`401`, an unknown company, `429` with
//! `Retry-After`), a create made but answered `500` and a search index that lags behind creates
//! (each ending with one ticket), and Test.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::ticket_systems::{a_create_answered_500_is_found_not_made_twice, a_throttled_create_waits_as_asked, deliver, start_connectwise, ticketing_router as app, Fault, Op, Ticket, Tickets, CW_API, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, WITHIN};

const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";
const HR: &str = "https://contoso.sharepoint.com/sites/HR";
const COMPANIES: &str = r#"{"contoso": "ContosoLtd", "fabrikam": "FabrikamInc", "default": "MSP-Internal"}"#;

/// A ConnectWise channel to `cw` (board Security, `contoso` and `fabrikam` mapped, the rest to
/// `MSP-Internal`) with a rule sending every event to it, and tenant `contoso`. `companies` is
/// given as JSON text, as the admin page's form sends it.
async fn cw_channel(app: &TestApp, cw: &Tickets, extra: Value) -> String {
    let mut input = json!({
        "name": "SOC ConnectWise", "type": "connectwise", "url": format!("{}{CW_API}", cw.base),
        "company_id": CW_COMPANY_ID, "public_key": CW_PUBLIC_KEY, "private_key": CW_PRIVATE_KEY, "client_id": CW_CLIENT_ID,
        "board": "Security", "companies": COMPANIES, "rate_limit_per_second": 50,
    });
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["private_key"], "••••4f2a", "write-only: {}", answer.body);
    assert_eq!(answer.body["companies"], serde_json::from_str::<Value>(COMPANIES).unwrap(), "stored as an object: {}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&id]).await;
    app.create_tenant("contoso").await;
    id
}

fn event(tenant: &str, severity: &str, site: &str) -> Value {
    let mut event = permission_event(tenant, "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event
}

/// The ticket's page in the PSA, as the stand-in's host serves the API.
fn link(cw: &Tickets, ticket: &Ticket) -> String {
    format!("{}/v4_6_release/services/system_io/Service/fv_sr100_request.rsp?companyName={CW_COMPANY_ID}&service_recid={}", cw.base, ticket.id)
}

fn description(ticket: &Ticket) -> &str {
    ticket.created["initialDescription"].as_str().unwrap()
}

on_both_backends! {
    #[actix_web::test]
    async fn one_ticket_per_incident_later_events_as_internal_notes_and_another_key_another_ticket() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(120)).await;
        let channel = cw_channel(&app, &cw, json!({})).await;
        let shown = app.get(&format!("/api/v1/channels/{channel}")).await.body;
        assert_eq!(shown["rate_limit_per_second"], 50);
        assert_eq!(shown["incident_by"][0], "/tenant/id", "{shown}");
        let mut first = event("contoso", "high", FINANCE);
        // Event data from the people watched: controls, bidi overrides, markup, a long value.
        first["data"]["principal"] = json!("[click](https://evil.example) <b>x</b>\u{202E}\nnext line");
        first["data"]["resource_path"] = json!(format!("Shared Documents/{}.xlsx", "Q3 forecast ".repeat(30)));
        let created = deliver(&app, first, "succeeded").await;
        let later = deliver(&app, event("contoso", "critical", FINANCE), "succeeded").await;
        let other = deliver(&app, event("contoso", "low", HR), "succeeded").await;
        let tickets = cw.wait_for(2, 1, WITHIN).await;
        assert_eq!(tickets.len(), 2, "one ticket per incident");
        let (finance, hr) = (&tickets[0], &tickets[1]);
        assert_eq!(finance.notes.len(), 1, "the later event is a note");
        assert!(hr.notes.is_empty());
        // The ticket: board, company, summary within 100 characters, the marker in externalXRef.
        let body = &finance.created;
        assert_eq!((&body["board"], &body["company"]), (&json!({"name": "Security"}), &json!({"identifier": "ContosoLtd"})));
        assert!(finance.marker.starts_with("spscan-") && finance.marker.len() == 27, "{}", finance.marker);
        assert_eq!(body["externalXRef"], json!(finance.marker));
        assert_ne!(finance.marker, hr.marker);
        let summary = body["summary"].as_str().unwrap();
        assert!(summary.starts_with("HIGH: External share created"), "{summary}");
        assert!(summary.chars().count() <= 100, "{summary}");
        let text = description(finance);
        assert!(text.contains("- Principal: [click](https://evil.example) <b>x</b>  next line"), "event data as one line of text: {text}");
        assert!(!text.contains('\u{202E}'), "{text}");
        assert!(text.ends_with(&format!("SPScan incident marker: {} (the router finds this ticket by it: leave it in place)", finance.marker)), "{text}");
        // The note is internal and carries the later event.
        let note = &finance.notes[0];
        assert_eq!((&note["internalAnalysisFlag"], &note["detailDescriptionFlag"], &note["resolutionFlag"]), (&json!(true), &json!(false), &json!(false)));
        assert!(note["text"].as_str().unwrap().starts_with("CRITICAL: External share created"), "{note}");
        // Each delivery names its ticket, with the link people open, and the company it went to.
        for (delivery, ticket) in [(&created, finance), (&later, finance), (&other, hr)] {
            assert_eq!(delivery["ticket"], json!({"id": ticket.id, "key": format!("#{}", ticket.id), "url": link(&cw, ticket)}), "{delivery}");
            assert_eq!(delivery["company"], json!({"id": "ContosoLtd", "source": "map"}), "{delivery}");
        }
        // The later event read the ticket's state before its note; the keys are masked on the
        // delivery page.
        let attempt = &later["attempts"][0]["request"];
        assert!(attempt["url"].as_str().unwrap().ends_with(&format!("{CW_API}/service/tickets/{}/notes", finance.id)), "{attempt}");
        assert!(!attempt.to_string().contains(CW_PRIVATE_KEY), "{attempt}");
        let reads: Vec<_> = cw.requests().into_iter().filter(|(m, p, _)| m == "GET" && p.contains("/service/tickets/")).collect();
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert!(reads[0].1.ends_with("?fields=id,closedFlag,status"), "{reads:?}");
    }

    #[actix_web::test]
    async fn each_tenant_has_its_own_ticket_under_its_mapped_company_and_an_unmapped_tenant_goes_to_the_default() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(120)).await;
        // Incidents keyed by the event alone would mix customers: the tenant is added to the key.
        let channel = cw_channel(&app, &cw, json!({"incident_by": "/event"})).await;
        let shown = app.get(&format!("/api/v1/channels/{channel}")).await.body;
        assert_eq!(shown["incident_by"], json!(["/tenant/id", "/event"]), "{shown}");
        app.create_tenant("fabrikam").await;
        app.create_tenant("northwind").await;
        let contoso = deliver(&app, event("contoso", "high", FINANCE), "succeeded").await;
        let fabrikam = deliver(&app, event("fabrikam", "high", FINANCE), "succeeded").await;
        let northwind = deliver(&app, event("northwind", "high", FINANCE), "succeeded").await;
        // The same event of contoso again: its note, not another customer's ticket.
        let again = deliver(&app, event("contoso", "medium", HR), "succeeded").await;
        let tickets = cw.wait_for(3, 1, WITHIN).await;
        assert_eq!(tickets.len(), 3, "one ticket per customer: {:?}", cw.requests());
        let companies: Vec<&Value> = tickets.iter().map(|t| &t.created["company"]["identifier"]).collect();
        assert_eq!(companies, [&json!("ContosoLtd"), &json!("FabrikamInc"), &json!("MSP-Internal")]);
        assert_eq!(tickets[0].notes.len(), 1, "contoso's later event joined its ticket");
        for (delivery, ticket, company) in [(&contoso, &tickets[0], json!({"id": "ContosoLtd", "source": "map"})), (&fabrikam, &tickets[1], json!({"id": "FabrikamInc", "source": "map"})), (&northwind, &tickets[2], json!({"id": "MSP-Internal", "source": "default"})), (&again, &tickets[0], json!({"id": "ContosoLtd", "source": "map"}))] {
            assert_eq!(delivery["ticket"]["id"], json!(ticket.id), "{delivery}");
            assert_eq!(delivery["company"], company, "{delivery}");
        }
    }

    #[actix_web::test]
    async fn a_closed_or_deleted_ticket_or_a_refused_note_is_followed_by_a_new_ticket_that_links_it() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(120)).await;
        cw_channel(&app, &cw, json!({})).await;
        deliver(&app, event("contoso", "high", FINANCE), "succeeded").await;
        let first = cw.wait_for(1, 0, WITHIN).await[0].clone();
        // Closed by a technician (closedFlag): the next event opens a new ticket naming the old.
        cw.close(&first.id);
        let second_delivery = deliver(&app, event("contoso", "high", FINANCE), "succeeded").await;
        let second = cw.wait_for(2, 0, WITHIN).await[1].clone();
        assert_ne!(second.marker, first.marker, "a new ticket, a new marker");
        assert!(description(&second).contains(&format!("Follows #{} ({}), which was closed or deleted.", first.id, link(&cw, &first))), "{}", description(&second));
        assert_eq!(second_delivery["ticket"]["key"], json!(format!("#{}", second.id)));
        assert_eq!(second.created["company"]["identifier"], "ContosoLtd", "still the customer's");
        // Deleted: the same.
        cw.delete(&second.id);
        deliver(&app, event("contoso", "high", FINANCE), "succeeded").await;
        let third = cw.wait_for(3, 0, WITHIN).await[2].clone();
        assert!(description(&third).contains(&format!("Follows #{}", second.id)), "{}", description(&third));
        // A note refused with 403 (the member may no longer add notes to it): the same.
        cw.fault(Op::Note, Fault::Status(403, r#"{"code":"Forbidden","message":"You do not have permission to add notes to this ticket."}"#));
        deliver(&app, event("contoso", "high", FINANCE), "succeeded").await;
        let tickets = cw.wait_for(4, 0, WITHIN).await;
        assert!(description(&tickets[3]).contains(&format!("Follows #{}", third.id)));
        assert!(tickets.iter().all(|t| t.notes.is_empty()));
    }

    #[actix_web::test]
    async fn an_unknown_company_is_a_mapping_failure_refused_keys_are_final_and_a_throttled_request_waits_as_asked() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(120)).await;
        let channel = cw_channel(&app, &cw, json!({})).await;
        a_throttled_create_waits_as_asked(&app, &cw, event("contoso", "high", FINANCE)).await;
        // A tenant mapped to a company ConnectWise does not have: final, error kind `mapping`,
        // ConnectWise's words in the error.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"companies": {"fabrikam": "Fabrikam", "default": "MSP-Internal"}})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        app.create_tenant("fabrikam").await;
        let unmapped = deliver(&app, event("fabrikam", "high", FINANCE), "failed").await;
        assert_eq!(unmapped["attempt_count"], 1, "{unmapped}");
        assert_eq!(unmapped["last_error_kind"], "mapping", "{unmapped}");
        let error = unmapped["last_error"].as_str().unwrap();
        assert!(error.contains("ConnectWise: ticket object is invalid; company: Company 'Fabrikam' was not found."), "{unmapped}");
        // Another refusal of the create (a board renamed in ConnectWise) is final, not `mapping`.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"board": "Help Desk"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let board = deliver(&app, event("contoso", "high", HR), "failed").await;
        assert_eq!(board["last_error_kind"], "http_status", "{board}");
        assert!(board["last_error"].as_str().unwrap().contains("board: The board is invalid"), "{board}");
        // Keys refused: final, naming them.
        let moved = app.patch(&format!("/api/v1/channels/{channel}"), json!({"board": "Security", "private_key": "revoked-key-0000"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let unauthorized = deliver(&app, event("contoso", "high", "https://contoso.sharepoint.com/sites/Board"), "failed").await;
        assert_eq!(unauthorized["attempt_count"], 1);
        let error = unauthorized["last_error"].as_str().unwrap();
        assert!(error.contains("`public_key` and `private_key`"), "{unauthorized}");
        assert_eq!(cw.tickets().len(), 1, "nothing refused was made");
    }

    #[actix_web::test]
    async fn a_create_made_but_answered_500_is_found_by_its_marker_not_made_twice() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(2)).await;
        cw_channel(&app, &cw, json!({})).await;
        let (delivered, noted) = a_create_answered_500_is_found_not_made_twice(&app, &cw, event("contoso", "high", FINANCE), event("contoso", "critical", FINANCE)).await;
        assert_eq!(noted["company"], json!({"id": "ContosoLtd", "source": "map"}), "{noted}");
        let tickets = cw.tickets();
        let attempts = delivered["attempts"].as_array().unwrap();
        let search = attempts[1]["request"]["url"].as_str().unwrap();
        assert!(search.contains(&format!("{CW_API}/service/tickets?conditions=externalXRef%3D%22{}%22", tickets[0].marker)), "found by a search: {}", attempts[1]);
    }

    #[actix_web::test]
    async fn test_checks_the_keys_board_and_every_mapped_company_creating_nothing_and_creates_a_marked_ticket_when_asked() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(120)).await;
        let channel = cw_channel(&app, &cw, json!({})).await;
        let tested = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(tested.status, 200, "{}", tested.body);
        assert_eq!(tested.body["ok"], true, "{}", tested.body);
        assert_eq!(tested.body["checked"], json!(["the credentials", "board Security", "company MSP-Internal", "company ContosoLtd", "company FabrikamInc"]));
        assert!(cw.tickets().is_empty(), "nothing created");
        let created = app.post(&format!("/api/v1/channels/{channel}/test"), json!({"create": true})).await;
        assert_eq!(created.body["ok"], true, "{}", created.body);
        let tickets = cw.tickets();
        assert_eq!(tickets.len(), 1);
        assert!(tickets[0].created["summary"].as_str().unwrap().starts_with("[SPScan TEST] "), "{:?}", tickets[0].created);
        assert_eq!(tickets[0].created["company"]["identifier"], "MSP-Internal", "the Test sample's tenant is not mapped: {:?}", tickets[0].created);
        assert_eq!(created.body["ticket"], json!({"id": tickets[0].id, "key": format!("#{}", tickets[0].id), "url": link(&cw, &tickets[0])}));
        // A company ConnectWise does not have, a board it does not have, then a bad key: Test
        // says which.
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"companies": {"contoso": "Contoso", "default": "MSP-Internal"}})).await;
        let wrong = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!(wrong.body["ok"], false);
        assert!(wrong.body["error"].as_str().unwrap().contains("company Contoso was not found"), "{}", wrong.body);
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"companies": COMPANIES, "board": "Help Desk"})).await;
        let wrong = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert!(wrong.body["error"].as_str().unwrap().contains("board Help Desk was not found"), "{}", wrong.body);
        app.patch(&format!("/api/v1/channels/{channel}"), json!({"board": "Security", "private_key": "revoked-key-0000"})).await;
        let refused = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains("checking the credentials") && error.contains("`private_key`"), "{}", refused.body);
        assert_eq!(cw.tickets().len(), 1, "no check created anything");
    }

    #[actix_web::test]
    async fn settings_that_cannot_reach_connectwise_are_refused_naming_the_field() {
        let cw = start_connectwise();
        let app = app(Duration::from_secs(120)).await;
        let base = json!({"name": "CW", "type": "connectwise", "url": format!("{}{CW_API}", cw.base), "company_id": CW_COMPANY_ID, "public_key": CW_PUBLIC_KEY, "private_key": CW_PRIVATE_KEY, "client_id": CW_CLIENT_ID, "board": "Security", "companies": COMPANIES});
        for (change, field) in [
            (json!({"companies": {"contoso": "ContosoLtd"}}), "companies"),
            (json!({"companies": "{not json"}), "companies"),
            (json!({"client_id": "my integration"}), "client_id"),
            (json!({"public_key": "abc:def"}), "public_key"),
        ] {
            let mut input = base.clone();
            input.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
            let answer = app.post("/api/v1/channels", input).await;
            assert_eq!(answer.status, 422, "{change}: {}", answer.body);
            assert!(answer.body.to_string().contains(field), "{change}: {}", answer.body);
        }
        let kinds = app.get("/api/v1/channel-types").await.body;
        let kind = kinds["items"].as_array().unwrap().iter().find(|t| t["type"] == "connectwise").expect("listed").clone();
        assert_eq!(kind["rate_limit_per_second"], 1, "{kind}");
    }
}

#[actix_web::test]
async fn a_search_index_lagging_30_seconds_behind_creates_still_ends_with_one_ticket() {
    let cw = start_connectwise();
    cw.search_lag(Duration::from_secs(30));
    let app = app(Duration::from_secs(31)).await;
    cw_channel(&app, &cw, json!({})).await;
    cw.fault(Op::Create, Fault::MadeThen500);
    let answer = app.ingest(event("contoso", "high", FINANCE)).await;
    let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivered = app.wait_for_status(&id, "succeeded", Duration::from_secs(60)).await;
    let tickets = cw.tickets();
    assert_eq!(tickets.len(), 1, "one ticket: {:?}", cw.requests());
    assert_eq!(delivered["ticket"]["id"], json!(tickets[0].id));
    let searches = cw.requests().iter().filter(|(m, p, _)| m == "GET" && p.contains("/service/tickets?")).count();
    assert_eq!(searches, 1, "one search, once the index shows the ticket");
}

/// A rule of every tenant that groups without `/tenant/id` would put two customers' events in one
/// ticket: it is refused (422 naming `group.by`) when it sends to a ConnectWise channel, whether
/// it is created so or changed to it; with `/tenant/id`, or for one tenant, it is taken.
#[actix_web::test]
async fn a_rule_grouping_across_tenants_into_connectwise_is_refused() {
    let cw = start_connectwise();
    let app = app(Duration::from_secs(120)).await;
    let channel = cw_channel(&app, &cw, json!({})).await;
    let across = json!({"name": "Across", "event_types": ["*"], "min_severity": "low", "channel_ids": [channel], "group": {"by": ["/data/site_url"]}});
    let refused = app.post("/api/v1/rules", across.clone()).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["field"], "group.by", "{}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("/tenant/id"), "{}", refused.body);
    let mut per_tenant = across.clone();
    per_tenant["group"]["by"] = json!(["/tenant/id", "/data/site_url"]);
    let taken = app.post("/api/v1/rules", per_tenant).await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    let mut one_tenant = across.clone();
    one_tenant["tenant_id"] = json!("contoso");
    assert_eq!(app.post("/api/v1/rules", one_tenant).await.status, 201);
    // Changed to group across tenants: refused, and the rule stays as it was.
    let id = taken.body["id"].as_str().unwrap();
    let changed = app.patch(&format!("/api/v1/rules/{id}"), json!({"group": {"by": ["/event"]}})).await;
    assert_eq!((changed.status, &changed.body["field"]), (422, &json!("group.by")), "{}", changed.body);
    assert_eq!(app.get(&format!("/api/v1/rules/{id}")).await.body["group"]["by"], json!(["/tenant/id", "/data/site_url"]));
}
