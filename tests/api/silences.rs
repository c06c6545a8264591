//! Silences through the API (SPEC section 16): set, listed, read and ended (an ended one stays
//! listed), their status over time, refusals naming the field, and the admin page's "Silence
//! similar" in a real browser.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};
use spscan_router::domain::time::{now_ms, parse_rfc3339, rfc3339};
use spscan_router::store::{instances, silences};

use crate::browser::browser;
use crate::helpers::*;

const HOUR: i64 = 3_600_000;

fn contoso_for(duration: &str) -> Value {
    json!({
        "matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"},
        "duration": duration,
        "comment": "Migration weekend",
        "created_by": "ana@msp.example",
    })
}

impl Api {
    async fn create_silence(&self, body: Value) -> Value {
        let answer = self.post("/api/v1/silences", body).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }

    async fn silence(&self, id: &str) -> Value {
        let answer = self.get(&format!("/api/v1/silences/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    /// Waits until the silence reads as `status`.
    async fn wait_for_silence(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let silence = self.silence(id).await;
            if silence["status"] == status {
                return silence;
            }
            assert!(Instant::now() < deadline, "silence {id} did not become {status} within {within:?}: {silence:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn instant(value: &Value) -> i64 {
    parse_rfc3339(value.as_str().unwrap()).unwrap_or_else(|| panic!("{value} is an RFC 3339 time"))
}

on_both_backends! {
    #[actix_web::test]
    async fn a_silence_is_set_listed_read_and_ended_and_an_ended_one_stays_listed() {
        let app = spawn_app().await;
        let before = now_ms();
        let answer = app.post("/api/v1/silences", contoso_for("2h")).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        let silence = answer.body;
        let id = silence["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("sil_"), "{id}");
        assert_eq!(silence["status"], "active");
        assert_eq!(silence["matchers"], json!({"path": "/tenant/id", "op": "eq", "value": "contoso"}));
        assert_eq!((&silence["comment"], &silence["created_by"]), (&json!("Migration weekend"), &json!("ana@msp.example")));
        assert_eq!((&silence["channel_ids"], &silence["rule_ids"]), (&Value::Null, &Value::Null));
        let (starts_at, ends_at) = (instant(&silence["starts_at"]), instant(&silence["ends_at"]));
        assert!(starts_at >= before && starts_at <= now_ms(), "starts now by default: {silence}");
        assert_eq!(ends_at - starts_at, 2 * HOUR);
        assert_eq!(silence["created_at"], silence["starts_at"]);
        assert_eq!(app.silence(&id).await, silence);
        assert_eq!(app.get("/api/v1/silences").await.body, json!({"items": [silence]}));

        let ended = app.delete(&format!("/api/v1/silences/{id}")).await;
        assert_eq!(ended.status, 200, "{}", ended.body);
        assert_eq!(ended.body["status"], "expired");
        let ended_at = instant(&ended.body["ends_at"]);
        assert!(ended_at >= starts_at && ended_at <= now_ms(), "ends now: {}", ended.body);
        assert_eq!(ended.body["updated_at"], ended.body["ends_at"]);
        assert_eq!((&ended.body["starts_at"], &ended.body["comment"]), (&silence["starts_at"], &silence["comment"]));
        let listed = app.get("/api/v1/silences").await.body;
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "an ended silence stays listed: {listed}");
        assert_eq!(listed["items"][0]["status"], "expired");
        let again = app.delete(&format!("/api/v1/silences/{id}")).await;
        assert_eq!((again.status, &again.body), (200, &ended.body), "ending an ended silence changes nothing");

        assert_eq!(app.get("/api/v1/silences/sil_unknown").await.status, 404);
        assert_eq!(app.delete("/api/v1/silences/sil_unknown").await.status, 404);
        let ingest_token = app.with_token(Some(INGEST_TOKEN));
        assert_eq!(ingest_token.post("/api/v1/silences", contoso_for("2h")).await.status, 403, "setting a silence takes the admin token");
    }

    #[actix_web::test]
    async fn a_silence_is_pending_then_active_then_expired() {
        let app = spawn_app().await;
        let now = now_ms();
        let started = app.create_silence(json!({"matchers": {"path": "/event", "op": "prefix", "value": "storage."},
            "starts_at": rfc3339(now - HOUR), "duration": "2h", "comment": "Quota alerts known", "created_by": "ops"})).await;
        assert_eq!(started["status"], "active", "started an hour ago: {started}");
        assert_eq!(instant(&started["ends_at"]), now + HOUR, "the duration counts from starts_at");

        let soon = app.create_silence(json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"},
            "starts_at": rfc3339(now + 3_000), "ends_at": rfc3339(now + 6_000), "comment": "Soon", "created_by": "ops"})).await;
        let id = soon["id"].as_str().unwrap();
        assert_eq!(soon["status"], "pending", "{soon}");
        app.wait_for_silence(id, "active", Duration::from_secs(10)).await;
        app.wait_for_silence(id, "expired", Duration::from_secs(10)).await;

        // A pending silence ended now never starts: its window is empty.
        let later = app.create_silence(json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"},
            "starts_at": rfc3339(now + HOUR), "duration": "1h", "comment": "Later", "created_by": "ops"})).await;
        let ended = app.delete(&format!("/api/v1/silences/{}", later["id"].as_str().unwrap())).await.body;
        assert_eq!((&ended["status"], &ended["starts_at"]), (&json!("expired"), &ended["ends_at"]), "{ended}");

        let listed: Vec<Value> = app.get("/api/v1/silences").await.body["items"].as_array().unwrap().iter().map(|s| s["id"].clone()).collect();
        assert_eq!(listed, [later["id"].clone(), soon["id"].clone(), started["id"].clone()], "newest first");
    }

    #[actix_web::test]
    async fn a_refused_silence_is_a_422_naming_the_field_and_stores_nothing() {
        let app = spawn_app().await;
        let now = now_ms();
        let with = |changes: Value| {
            let mut body = contoso_for("2h");
            for (k, v) in changes.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        for (body, field) in [
            (with(json!({"matchers": {"any": [{"path": "/event", "op": "eq", "value": "x"}, {"path": "/event", "op": "like", "value": "x"}]}})), "matchers.any[1].op"),
            (with(json!({"ends_at": rfc3339(now + HOUR)})), "duration"),
            (json!({"matchers": {"path": "/event", "op": "exists", "value": true}, "starts_at": rfc3339(now + 2 * HOUR), "ends_at": rfc3339(now + HOUR), "comment": "c", "created_by": "me"}), "ends_at"),
            (with(json!({"channel_ids": ["ch_01JD7Y2Q8V3K4M5N6P7Q8R9S0T"]})), "channel_ids"),
            (with(json!({"rule_ids": ["rule_01JD7Y2Q8V3K4M5N6P7Q8R9S0T"]})), "rule_ids"),
            (with(json!({"reason": "typo of comment"})), "reason"),
            (with(json!({"comment": " "})), "comment"),
            (with(json!({"duration": "soon"})), "duration"),
        ] {
            let answer = app.post("/api/v1/silences", body.clone()).await;
            assert_eq!(answer.status, 422, "{body}: {}", answer.body);
            assert!(answer.content_type.starts_with("application/problem+json"), "{}", answer.content_type);
            assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
            assert!(answer.body["detail"].as_str().is_some_and(|d| d.len() > field.len() + 5), "{}", answer.body);
        }
        assert_eq!(app.get("/api/v1/silences").await.body, json!({"items": []}), "nothing stored");
    }

    #[actix_web::test]
    async fn a_silence_narrowed_to_channels_and_rules_keeps_each_once_and_every_change_reloads_routing() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        let rule_id = app.get("/api/v1/rules").await.body["items"][0]["id"].clone();
        let version = || app.handle.store().read(instances::routing_version);
        let before = version().await.unwrap();
        let silence = app.create_silence(json!({"matchers": {"path": "/data/site_url", "op": "eq", "value": "https://contoso.sharepoint.com/sites/Finance"},
            "duration": "30m", "comment": "Finance migration", "created_by": "ana", "channel_ids": [channel_id, channel_id], "rule_ids": [rule_id]})).await;
        assert_eq!((&silence["channel_ids"], &silence["rule_ids"]), (&json!([channel_id]), &json!([rule_id])));
        let created = version().await.unwrap();
        assert!(created > before, "setting a silence bumps the routing version, so every instance reloads");

        // What matching reads: every silence not ended yet, parsed, pending ones too.
        let pending = app.create_silence(json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"},
            "starts_at": rfc3339(now_ms() + HOUR), "duration": "1h", "comment": "Later", "created_by": "ops"})).await;
        let current = app.handle.store().read(|conn| silences::current(conn, now_ms())).await.unwrap();
        let ids: Vec<&str> = current.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [silence["id"].as_str().unwrap(), pending["id"].as_str().unwrap()]);
        let payload = json!({"tenant": {"id": "contoso"}, "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance"}});
        let rule = rule_id.as_str().unwrap();
        assert!(current[0].holds(now_ms(), rule, &channel_id, false, &payload));
        assert!(!current[0].holds(now_ms(), rule, "ch_other", false, &payload), "another channel");
        assert!(!current[1].holds(now_ms(), rule, &channel_id, false, &payload), "not started");

        let ended = app.delete(&format!("/api/v1/silences/{}", silence["id"].as_str().unwrap())).await.body;
        assert!(version().await.unwrap() > created, "ending one bumps it too");
        let current = app.handle.store().read(|conn| silences::current(conn, now_ms())).await.unwrap();
        assert_eq!(current.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [pending["id"].as_str().unwrap()]);

        // Listed until five days after its end.
        let ended_at = instant(&ended["ends_at"]);
        let listed_at = |now: i64| app.handle.store().read(move |conn| silences::list(conn, now));
        let five_days = 5 * 24 * HOUR;
        assert_eq!(listed_at(ended_at + five_days - 1).await.unwrap().len(), 2);
        let later = listed_at(ended_at + five_days).await.unwrap();
        assert_eq!(later.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [pending["id"].as_str().unwrap()], "gone from the list five days after it ended");
    }
}

/// The admin page: "Silence similar" on an alert log row opens the form pre-filled with the
/// delivery's tenant, event type and site; the silence is listed as active, then ended.
#[actix_web::test]
async fn a_person_silences_events_like_one_in_the_alert_log_and_ends_the_silence_in_the_browser() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    app.soc_channel_for_contoso(&receiver).await;
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    let delivery = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    app.wait_for_status(&delivery, "succeeded", Duration::from_secs(10)).await;

    let browser = browser().await;
    browser.sign_in(&app.base).await;
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    browser.wait_for_text(&format!("tr[data-delivery-id='{delivery}']"), "succeeded").await;
    browser.screenshot("alert-logs-silence-similar").await;
    browser.click_button(&format!("//tr[@data-delivery-id='{delivery}']"), "Silence similar").await;
    browser.wait_for_text("h1", "Silences").await;
    let form = "//form[@aria-label='Add silence']";
    let value = |css: &'static str| {
        let client = browser.client.clone();
        async move { client.find(Locator::Css(css)).await.unwrap().prop("value").await.unwrap().unwrap_or_default() }
    };
    browser.wait_for("form[aria-label='Add silence']").await;
    assert_eq!(value("form[aria-label='Add silence'] select[name='tenant']").await, "contoso");
    assert_eq!(value("form[aria-label='Add silence'] input[name='event']").await, "permission.external_share_created");
    assert_eq!(value("form[aria-label='Add silence'] input[name='site']").await, "https://contoso.sharepoint.com/sites/Finance");

    browser.screenshot("silences-form").await;

    // A duration the router does not read is shown by its field.
    browser.fill(form, "Duration", "soon").await;
    browser.fill(form, "Comment", "Finance site migration").await;
    browser.fill(form, "Created by", "ana@msp.example").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("[data-field='duration'] .error", "not a duration").await;
    browser.only_refused(422, "/api/v1/silences").await;
    browser.fill(form, "Duration", "2h").await;
    browser.click_button(form, "Save").await;

    let row = browser.wait_for_text("tr[data-silence-id]", "active").await.text().await.unwrap();
    for shown in ["tenant is \"contoso\"", "event type is \"permission.external_share_created\"", "site is \"https://contoso.sharepoint.com/sites/Finance\"", "Finance site migration", "ana@msp.example"] {
        assert!(row.contains(shown), "{shown} in {row}");
    }
    let silence = app.get("/api/v1/silences").await.body["items"][0].clone();
    assert_eq!(silence["matchers"], json!({"all": [
        {"path": "/tenant/id", "op": "eq", "value": "contoso"},
        {"path": "/event", "op": "eq", "value": "permission.external_share_created"},
        {"path": "/data/site_url", "op": "eq", "value": "https://contoso.sharepoint.com/sites/Finance"},
    ]}));
    assert_eq!(instant(&silence["ends_at"]) - instant(&silence["starts_at"]), 2 * HOUR);
    browser.screenshot("silences").await;

    browser.click_button("//tr[@data-silence-id]", "End now").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let question = loop {
        if let Ok(text) = browser.client.get_alert_text().await {
            break text;
        }
        assert!(Instant::now() < deadline, "End now did not ask first");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(question.contains("Finance site migration"), "{question}");
    browser.client.accept_alert().await.unwrap();
    browser.wait_for_text("tr[data-silence-id] .badge", "expired").await;
    assert_eq!(app.silence(silence["id"].as_str().unwrap()).await["status"], "expired");
    browser.assert_no_problems("silencing from the alert log").await;
    browser.client.clone().close().await.unwrap();
}
