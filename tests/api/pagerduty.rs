//! PagerDuty (SPEC section 17) against a local receiver that answers as the Events API v2 does:
//! one alert per incident (a stable `dedup_key`, the incident's marker), another for another key,
//! severities mapped, the summary cut at 1,024 characters, `429` retried, `400` final with
//! PagerDuty's words, the page recorded on the delivery, and Test sending an `info` event.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";
const ACCEPTED: &str = r#"{"status":"success","message":"Event processed","dedup_key":"from-pagerduty"}"#;

async fn pagerduty_channel(app: &TestApp, receiver: &Receiver, extra: Value) -> String {
    let given = extra.clone();
    let mut input = json!({"name": "On call", "type": "pagerduty", "url": receiver.url("/v2/enqueue"), "routing_key": ROUTING_KEY});
    input.as_object_mut().unwrap().extend(given.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["routing_key"], "••••bcde", "write-only: {}", answer.body);
    let window = extra.get("reopen_window").cloned().unwrap_or(json!("1day"));
    assert_eq!(answer.body["reopen_window"], window, "the default filled in: {}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&id]).await;
    app.create_tenant("contoso").await;
    id
}

fn at_site(severity: &str, site: &str) -> Value {
    let mut event = permission_event("contoso", "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event
}

on_both_backends! {
    #[actix_web::test]
    async fn each_incident_is_one_pagerduty_alert_and_a_throttled_event_is_retried() {
        let receiver = Receiver::start().await;
        receiver.script(&[Reply::Said(202, ACCEPTED), Reply::RetryAfter(429, "1"), Reply::Said(202, ACCEPTED)]);
        let app = spawn_app_with(|s| s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("1s").unwrap()).await;
        pagerduty_channel(&app, &receiver, json!({})).await;
        let finance = "https://contoso.sharepoint.com/sites/Finance";
        let mut ids = Vec::new();
        // Two events of one incident (tenant, type, site), one of another site; one after the other.
        for event in [at_site("high", finance), at_site("critical", finance), at_site("low", "https://contoso.sharepoint.com/sites/HR")] {
            let answer = app.ingest(event).await;
            let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
            app.wait_for_status(&id, "succeeded", Duration::from_secs(15)).await;
            ids.push(id);
        }
        let got = receiver.received();
        assert_eq!(got.len(), 4, "three events, one of them throttled once and sent again");
        let bodies: Vec<Value> = got.iter().map(|c| c.json()).collect();
        for body in &bodies {
            assert_eq!((&body["routing_key"], &body["event_action"]), (&json!(ROUTING_KEY), &json!("trigger")), "{body}");
        }
        let key = |b: &Value| b["dedup_key"].as_str().unwrap().to_string();
        assert!(key(&bodies[0]).starts_with("spscan-") && key(&bodies[0]).len() == 27, "{}", key(&bodies[0]));
        assert_eq!(key(&bodies[0]), key(&bodies[1]), "one incident, one alert");
        assert_eq!(key(&bodies[1]), key(&bodies[2]), "the retry keeps its dedup_key");
        assert_ne!(key(&bodies[0]), key(&bodies[3]), "another site is another incident");
        let severities: Vec<&Value> = [0, 2, 3].iter().map(|i| &bodies[*i]["payload"]["severity"]).collect();
        assert_eq!(severities, [&json!("error"), &json!("critical"), &json!("info")]);
        assert_eq!(bodies[0]["payload"]["source"], finance);
        assert_eq!(bodies[0]["payload"]["custom_details"]["data"]["site_url"], finance);
        // Each delivery names its page.
        for (id, body) in ids.iter().zip([&bodies[0], &bodies[2], &bodies[3]]) {
            let delivery = app.delivery(id).await;
            assert_eq!(delivery["ticket"]["id"], body["dedup_key"], "{delivery}");
        }
        assert_eq!(app.delivery(&ids[1]).await["attempt_count"], 2);
        // What was sent, as the delivery page shows it: the integration key masked in the body.
        let shown = app.delivery(&ids[0]).await["attempts"][0]["request"].clone();
        let body: Value = serde_json::from_str(shown["body"].as_str().unwrap()).unwrap();
        assert_eq!((&body["routing_key"], &body["dedup_key"]), (&json!("••••bcde"), &bodies[0]["dedup_key"]), "{shown}");
        assert!(!shown.to_string().contains(ROUTING_KEY), "the integration key leaked: {shown}");
    }

    #[actix_web::test]
    async fn pagerduty_refusing_an_event_is_final_and_says_why() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Said(400, r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.source' is missing or blank"]}"#));
        let app = spawn_app().await;
        pagerduty_channel(&app, &receiver, json!({"incident_by": "/tenant/id", "reopen_window": "2h"})).await;
        let mut event = at_site("medium", "https://contoso.sharepoint.com/sites/Finance");
        event["data"]["principal"] = json!(format!("<b>{}</b>", "y".repeat(2000)));
        let answer = app.ingest(event).await;
        let delivery = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 1, "not retried: {delivery}");
        let error = delivery["last_error"].as_str().unwrap();
        assert!(error.contains("Event object is invalid: 'payload.source' is missing or blank"), "{error}");
        assert_eq!(delivery["ticket"], Value::Null, "nothing was opened");
        let body = receiver.received()[0].json();
        assert_eq!(body["payload"]["severity"], "warning");
        let summary = body["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), 1024, "cut to PagerDuty's limit");
        assert!(summary.contains("<b>yyy"), "event data is sent as text, as it is");
    }

    #[actix_web::test]
    async fn deliveries_of_one_incident_go_one_at_a_time_in_ingestion_order_and_incidents_in_parallel() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Slow(250, 202));
        let app = spawn_app().await;
        pagerduty_channel(&app, &receiver, json!({"incident_by": "/tenant/id, /data/site_url", "rate_limit_per_second": 100})).await;
        let sites = ["https://contoso.sharepoint.com/sites/A", "https://contoso.sharepoint.com/sites/B"];
        // Eight events, alternating between two incidents, in one batch, then two more alone.
        let mut events: Vec<Value> = (0..8).map(|i| at_site("high", sites[i % 2])).collect();
        for (i, event) in events.iter_mut().enumerate() {
            event["event_id"] = json!(format!("evt-{i:02}"));
        }
        let order: Vec<String> = (0..10).map(|i| format!("evt-{i:02}")).collect();
        let started = std::time::Instant::now();
        assert_eq!(app.ingest(json!({ "events": events })).await.status, 202);
        for i in 8..10 {
            let mut event = at_site("high", sites[i % 2]);
            event["event_id"] = json!(order[i]);
            assert_eq!(app.ingest(event).await.status, 202);
        }
        receiver.wait_for(10, None, Duration::from_secs(20)).await;
        assert_one_at_a_time_in_order(&receiver, &order, 250);
        let incidents = by_incident(&receiver);
        assert_eq!(incidents.len(), 2);
        assert!(incidents.values().all(|a| a.len() == 5));
        // The two incidents went side by side, not ten slow answers in a row: a request of one
        // arrived while a request of the other was still waiting for its answer (250 ms), which
        // one request at a time for the whole channel can never do.
        let mut arrivals: Vec<Vec<std::time::Instant>> = incidents.values().map(|a| a.iter().map(|(_, at)| *at).collect()).collect();
        let (first, second) = (arrivals.remove(0), arrivals.remove(0));
        let side_by_side = first.iter().any(|a| second.iter().any(|b| *a.max(b) - *a.min(b) < Duration::from_millis(200)));
        assert!(side_by_side, "the incidents went one after the other: {first:?} / {second:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

#[actix_web::test]
async fn a_delivery_waiting_behind_an_earlier_one_of_its_incident_says_which() {
    let receiver = Receiver::start().await;
    // The first is refused for now and waits for its retry (30 s by default); the second waits behind it.
    receiver.script(&[Reply::Status(503)]);
    receiver.reply_with(Reply::Said(202, ACCEPTED));
    let app = spawn_app().await;
    pagerduty_channel(&app, &receiver, json!({})).await;
    let finance = "https://contoso.sharepoint.com/sites/Finance";
    let first = app.ingest(at_site("high", finance)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    receiver.wait_for(1, None, Duration::from_secs(10)).await;
    let second = app.ingest(at_site("high", finance)).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let other = app.ingest(at_site("high", "https://contoso.sharepoint.com/sites/HR")).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    app.wait_for_status(&other, "succeeded", Duration::from_secs(10)).await;
    let waiting = app.delivery(&second).await;
    assert_eq!((&waiting["status"], &waiting["attempt_count"], &waiting["waiting_for"]), (&json!("pending"), &json!(0), &json!(first)), "{waiting}");
    assert_eq!(app.delivery(&first).await["waiting_for"], Value::Null);
    assert_eq!(receiver.received().len(), 2, "the first once, the other incident's; the second waits");
}

#[actix_web::test]
async fn the_pagerduty_test_button_sends_an_info_event_outside_any_incident() {
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Said(202, ACCEPTED));
    let app = spawn_app().await;
    let channel = pagerduty_channel(&app, &receiver, json!({})).await;
    for _ in 0..2 {
        let answer = app.post(&format!("/api/v1/channels/{channel}/test"), json!({})).await;
        assert_eq!((answer.status, &answer.body["ok"]), (200, &json!(true)), "{}", answer.body);
    }
    let bodies: Vec<Value> = receiver.received().iter().map(|c| c.json()).collect();
    assert_eq!(bodies[0]["payload"]["severity"], "info");
    assert!(bodies[0]["payload"]["summary"].as_str().unwrap().contains("(test)"));
    assert!(bodies[0]["dedup_key"].as_str().unwrap().starts_with("spscan-test-"));
    assert_ne!(bodies[0]["dedup_key"], bodies[1]["dedup_key"], "each Test pages anew");
    // A channel without a URL gets the Events API's.
    let answer = app.post("/api/v1/channels", json!({"name": "Default URL", "type": "pagerduty", "routing_key": ROUTING_KEY})).await;
    assert_eq!((answer.status, &answer.body["url"]), (201, &json!("https://events.pagerduty.com/v2/enqueue")), "{}", answer.body);
    let refused = app.post("/api/v1/channels", json!({"name": "Bad", "type": "pagerduty", "routing_key": "short"})).await;
    assert_eq!((refused.status, &refused.body["field"]), (422, &json!("routing_key")), "{}", refused.body);
}

/// The requests of each `dedup_key`, in arrival order: (event id, arrival).
fn by_incident(receiver: &Receiver) -> std::collections::HashMap<String, Vec<(String, std::time::Instant)>> {
    let mut incidents: std::collections::HashMap<String, Vec<(String, std::time::Instant)>> = std::collections::HashMap::new();
    for request in receiver.received() {
        let body = request.json();
        incidents.entry(body["dedup_key"].as_str().unwrap().to_string()).or_default().push((body["payload"]["custom_details"]["event_id"].as_str().unwrap().to_string(), request.at));
    }
    incidents
}

/// Each incident's events arrived one at a time (each after the previous one's slow answer) and
/// in the order they were ingested (`order`: event ids, oldest first).
fn assert_one_at_a_time_in_order(receiver: &Receiver, order: &[String], answer_ms: u64) {
    for (key, arrivals) in by_incident(receiver) {
        let ids: Vec<&String> = arrivals.iter().map(|(id, _)| id).collect();
        let mut expected = ids.clone();
        expected.sort_by_key(|id| order.iter().position(|o| o == *id));
        assert_eq!(ids, expected, "incident {key}: sent out of ingestion order");
        for pair in arrivals.windows(2) {
            let gap = pair[1].1.duration_since(pair[0].1);
            assert!(gap >= Duration::from_millis(answer_ms - 20), "incident {key}: {} arrived {gap:?} after {}, before its answer", pair[1].0, pair[0].0);
        }
    }
}

#[actix_web::test]
async fn two_instances_send_one_incidents_events_one_at_a_time_in_order() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            receiver.reply_with(Reply::Slow(200, 202));
            let start = |id: &str| {
                start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("INSTANCE_ID", id), ("RUST_LOG", "info")]).0
            };
            let (a, b) = (start("instance-a"), start("instance-b"));
            a.api.create_tenant("contoso").await;
            let channel = a.api.post("/api/v1/channels", json!({"name": "On call", "type": "pagerduty", "url": receiver.url("/v2/enqueue"), "routing_key": ROUTING_KEY, "rate_limit_per_second": 100})).await;
            assert_eq!(channel.status, 201, "{}", channel.body);
            a.api.route_everything_to(&[channel.body["id"].as_str().unwrap()]).await;
            // Both instances route to it before the events go: a probe event of a site of its own
            // (another incident) through each, until each makes a delivery.
            for instance in [&a, &b] {
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                loop {
                    let mut probe = at_site("low", "https://contoso.sharepoint.com/sites/Probe");
                    probe["event_id"] = json!(format!("probe-{}", ulid::Ulid::new()));
                    if !instance.api.ingest(probe).await.body["deliveries"].as_array().unwrap().is_empty() {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "an instance did not pick up the rule");
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // One incident; its events ingested through both instances in turn.
            let order: Vec<String> = (0..8).map(|i| format!("evt-two-{i:02}")).collect();
            for (i, id) in order.iter().enumerate() {
                let mut event = at_site("high", "https://contoso.sharepoint.com/sites/Finance");
                event["event_id"] = json!(id);
                let via = if i % 2 == 0 { &a } else { &b };
                let answer = via.api.ingest(event).await;
                assert_eq!((answer.status, answer.body["deliveries"].as_array().map(Vec::len)), (202, Some(1)), "{}", answer.body);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while by_incident(&receiver).values().flatten().filter(|(id, _)| id.starts_with("evt-two")).count() < 8 {
                assert!(std::time::Instant::now() < deadline, "not every event arrived: {:?}", by_incident(&receiver));
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            assert_one_at_a_time_in_order(&receiver, &order, 200);
            let finance: Vec<_> = by_incident(&receiver).into_values().filter(|a| a.iter().any(|(id, _)| id.starts_with("evt-two"))).collect();
            assert_eq!((finance.len(), finance[0].len()), (1, 8), "one alert, every event once");
        })
        .await;
}

/// In the admin page: a PagerDuty channel added from the form with its URL left empty gets the
/// Events API's, and a delivery's page says which page (dedup_key) it wrote to.
#[actix_web::test]
async fn a_pagerduty_channel_added_from_the_form_and_its_page_on_the_delivery() {
    use crate::browser::{browser, DESKTOP};
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Said(202, ACCEPTED));
    let app = spawn_app().await;
    app.create_tenant("contoso").await;
    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&app.base).await;
    browser.go(&app.base, "#/channels").await;
    browser.click_button("", "Add channel").await;
    let form = "//form[@aria-label='Add channel']";
    browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("pagerduty").await.unwrap();
    browser.fill(form, "Name", "On call").await;
    browser.fill(form, "Integration key", ROUTING_KEY).await;
    browser.click_button(form, "Save").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let channel = loop {
        let items = app.get("/api/v1/channels").await.body["items"].clone();
        if let Some(c) = items.as_array().unwrap().iter().find(|c| c["name"] == "On call") {
            break c.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the form did not create the channel");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((&channel["type"], &channel["url"], &channel["routing_key"]), (&json!("pagerduty"), &json!("https://events.pagerduty.com/v2/enqueue"), &json!("••••bcde")));
    // Pointed at the local receiver, then one event.
    let id = channel["id"].as_str().unwrap();
    assert_eq!(app.patch(&format!("/api/v1/channels/{id}"), json!({"url": receiver.url("/v2/enqueue"), "routing_key": ROUTING_KEY})).await.status, 200);
    app.route_everything_to(&[id]).await;
    let answer = app.ingest(at_site("critical", "https://contoso.sharepoint.com/sites/Finance")).await;
    let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
    let page = delivery["ticket"]["id"].as_str().unwrap().to_string();
    browser.go(&app.base, &format!("#/logs/{delivery_id}")).await;
    browser.wait_for_text(&format!("[data-ticket='{page}'] code"), &page).await;
    browser.assert_no_problems("a PagerDuty channel from the form and its delivery").await;
    browser.client.clone().close().await.unwrap();
}
