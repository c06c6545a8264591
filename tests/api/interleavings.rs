//! What the review found by driving the router through interleavings: a channel toggled, moved
//! or deleted while an attempt is in flight, clients that reset right after a commit, a receiver
//! whose body stalls after a 2xx, and a rule whose last channel was deleted.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spscan_router::domain::retry::RetrySchedule;

use crate::helpers::*;

/// The arrival times of every request carrying this event id.
fn arrivals(receiver: &Receiver, event_id: &str) -> Vec<Instant> {
    receiver.received().iter().filter(|c| c.headers["webhook-id"] == event_id).map(|c| c.at).collect()
}

/// Ingests one event; returns its event id and its (only) delivery id.
async fn one_delivery(app: &TestApp) -> (String, String) {
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    (answer.body["event_id"].as_str().unwrap().to_string(), answer.body["deliveries"][0]["id"].as_str().unwrap().to_string())
}

/// A router retrying after 2 s, three times, and a channel at a receiver that takes 1 s to
/// answer 500: long enough that a change made "during an attempt" or "before the retry" lands
/// there even when a loaded machine answers the test's requests slowly.
async fn slow_failing_channel() -> (TestApp, Receiver, String) {
    let app = spawn_app_with(|s| s.retry_schedule = RetrySchedule::parse("2s,2s,2s").unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Slow(1_000, 500));
    let channel = app.soc_channel_for_contoso(&receiver).await;
    (app, receiver, channel["id"].as_str().unwrap().to_string())
}

async fn set_enabled(app: &TestApp, channel_id: &str, enabled: bool) {
    let answer = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "enabled": enabled })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

on_both_backends! {
    #[actix_web::test]
    async fn a_channel_disabled_during_an_attempt_and_enabled_after_it_resumes_its_retries() {
        let (app, receiver, channel_id) = slow_failing_channel().await;
        let (event_id, delivery_id) = one_delivery(&app).await;
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        set_enabled(&app, &channel_id, false).await;
        // Enabled again once the attempt in flight has been answered and recorded.
        let deadline = Instant::now() + Duration::from_secs(5);
        while app.delivery(&delivery_id).await["attempt_count"] != 1 {
            assert!(Instant::now() < deadline, "the attempt in flight was never recorded");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        // Moved while disabled, so the retry goes to the good receiver whenever it comes.
        let good = Receiver::start().await;
        let moved = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"url": good.url("/")})).await;
        assert_eq!(moved.status, 200);
        set_enabled(&app, &channel_id, true).await;
        for _ in 0..5 {
            one_delivery(&app).await;
        }
        // The five new ones arrive, and the first delivery's retry comes due and succeeds too.
        good.wait_for(5, None, Duration::from_secs(5)).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 2, "{delivery:#}");
        assert_eq!(arrivals(&good, &event_id).len(), 1);
        assert_eq!(arrivals(&receiver, &event_id).len(), 1);
    }

    #[actix_web::test]
    async fn a_channel_enabled_again_during_an_attempt_does_not_send_that_delivery_twice() {
        let (app, receiver, channel_id) = slow_failing_channel().await;
        let (event_id, delivery_id) = one_delivery(&app).await;
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        set_enabled(&app, &channel_id, false).await;
        set_enabled(&app, &channel_id, true).await;
        // Four attempts in all, each a full retry delay after the one before, then failed.
        let delivery = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(30)).await;
        assert_eq!(delivery["attempt_count"], 4, "{delivery:#}");
        let times = arrivals(&receiver, &event_id);
        assert_eq!(times.len(), 4, "one request per attempt");
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_millis(2_500), "two sends {gap:?} apart: the successor sent what its predecessor held");
        }
    }

    #[actix_web::test]
    async fn a_channel_disabled_and_enabled_quickly_many_times_keeps_exactly_one_schedule() {
        let (app, receiver, channel_id) = slow_failing_channel().await;
        let (event_id, delivery_id) = one_delivery(&app).await;
        for _ in 0..6 {
            set_enabled(&app, &channel_id, false).await;
            actix_web::rt::time::sleep(Duration::from_millis(150)).await;
            set_enabled(&app, &channel_id, true).await;
            actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        }
        let delivery = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(30)).await;
        assert_eq!(delivery["attempt_count"], 4, "{delivery:#}");
        assert_eq!(arrivals(&receiver, &event_id).len(), 4);
    }

    #[actix_web::test]
    async fn a_url_changed_during_an_attempt_gets_the_retry() {
        let (app, receiver, channel_id) = slow_failing_channel().await;
        let good = Receiver::start().await;
        let (event_id, delivery_id) = one_delivery(&app).await;
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        let moved = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"url": good.url("/moved")})).await;
        assert_eq!(moved.status, 200);
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempts"][0]["status_code"], 500, "the attempt in flight is recorded as it ended");
        assert_eq!(delivery["attempts"][1]["status_code"], 200);
        assert_eq!(arrivals(&receiver, &event_id).len(), 1);
        assert_eq!(arrivals(&good, &event_id).len(), 1);
    }

    #[actix_web::test]
    async fn a_channel_deleted_during_an_attempt_records_it_and_sends_nothing_more() {
        let (app, receiver, channel_id) = slow_failing_channel().await;
        let (event_id, delivery_id) = one_delivery(&app).await;
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(app.delete(&format!("/api/v1/channels/{channel_id}")).await.status, 204);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let delivery = app.delivery(&delivery_id).await;
            if delivery["attempt_count"] == 1 {
                assert_eq!(delivery["status"], "cancelled");
                assert_eq!(delivery["attempts"][0]["status_code"], 500);
                break;
            }
            assert!(Instant::now() < deadline, "the attempt in flight was never recorded: {delivery:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        // Past the retry it would have had: nothing more was sent.
        actix_web::rt::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(arrivals(&receiver, &event_id).len(), 1);
        assert_eq!(app.delivery(&delivery_id).await["status"], "cancelled");
    }

    #[actix_web::test]
    async fn a_channel_deleted_with_attempts_in_flight_shows_what_arrived_as_succeeded_and_cancels_only_the_rest() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Slow(600, 200));
        let channel_id = app.soc_channel_for_contoso(&receiver).await["id"].as_str().unwrap().to_string();
        let events: Vec<Value> = (0..80).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = app.ingest(json!({ "events": events })).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(app.delete(&format!("/api/v1/channels/{channel_id}")).await.status, 204);
        // Every attempt in flight is recorded with what the receiver said; then the log says, for
        // each delivery, whether it arrived.
        let deadline = Instant::now() + Duration::from_secs(10);
        let items = loop {
            let arrived: HashSet<String> = receiver.received().iter().map(|c| c.headers["webhook-id"].clone()).collect();
            let items = app.get(&format!("/api/v1/deliveries?channel_id={channel_id}&limit=100")).await.body["items"].as_array().unwrap().clone();
            assert_eq!(items.len(), 80);
            let recorded = items.iter().filter(|d| d["attempt_count"] == 1).count();
            if recorded == arrived.len() && items.iter().all(|d| d["status"] != "pending") {
                break items;
            }
            assert!(Instant::now() < deadline, "{recorded} attempts recorded, {} arrived", arrived.len());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        };
        let arrived: HashSet<String> = receiver.received().iter().map(|c| c.headers["webhook-id"].clone()).collect();
        assert!(!arrived.is_empty() && arrived.len() < 80, "some were in flight, not all: {}", arrived.len());
        for delivery in &items {
            let expected = if arrived.contains(delivery["event_id"].as_str().unwrap()) { "succeeded" } else { "cancelled" };
            assert_eq!(delivery["status"], expected, "{delivery:#}");
        }
        // The one that arrived keeps its attempt, numbered as always.
        let one = items.iter().find(|d| d["status"] == "succeeded").unwrap()["id"].as_str().unwrap().to_string();
        let delivery = app.delivery(&one).await;
        assert_eq!((&delivery["attempts"][0]["number"], &delivery["attempts"][0]["status_code"]), (&json!(1), &json!(200)), "{delivery:#}");
    }

    #[actix_web::test]
    async fn a_success_after_a_failure_is_attempt_two_and_ends_the_delivery_cleanly() {
        // One event to two channels: the first succeeds at once (attempt 1); the other fails,
        // is retried, and its success is numbered 2, clears the failure and the schedule.
        let app = spawn_app_with(|s| s.retry_schedule = RetrySchedule::parse("200ms").unwrap()).await;
        app.create_tenant("contoso").await;
        let (good, bad) = (Receiver::start().await, Receiver::start().await);
        bad.script(&[Reply::Status(500)]);
        let good_id = app.create_channel("good", &good.url("/")).await["id"].as_str().unwrap().to_string();
        let bad_id = app.create_channel("bad", &bad.url("/")).await["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&good_id, &bad_id]).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        for delivery in answer.body["deliveries"].as_array().unwrap() {
            let id = delivery["id"].as_str().unwrap();
            let done = app.wait_for_status(id, "succeeded", Duration::from_secs(5)).await;
            let numbers: Vec<i64> = done["attempts"].as_array().unwrap().iter().map(|a| a["number"].as_i64().unwrap()).collect();
            if delivery["channel_id"] == good_id.as_str() {
                assert_eq!(numbers, [1], "{done:#}");
            } else {
                assert_eq!(numbers, [1, 2], "{done:#}");
                assert_eq!(done["attempts"][0]["status_code"], 500);
                assert_eq!(done["attempts"][1]["status_code"], 200);
                assert_eq!(done["last_status_code"], 200);
                assert!(done["last_error"].is_null(), "{done:#}");
            }
            assert!(done["next_attempt_at"].is_null(), "{done:#}");
        }
    }

    #[actix_web::test]
    async fn rules_and_rotations_sent_by_a_client_that_resets_at_once_still_take_effect() {
        let app = spawn_app().await;
        app.create_tenant("contoso").await;
        for i in 0..10 {
            let receiver = Receiver::start().await;
            let channel = app.create_channel(&format!("SOC {i}"), &receiver.url("/")).await;
            let event_type = format!("reset.case_{i}");
            let rule = json!({"name": format!("Reset {i}"), "event_types": [event_type], "channel_ids": [channel["id"]]});
            send_and_reset(&app.base, "POST", "/api/v1/rules", &rule, Duration::ZERO).await;
            // Routed as soon as it is stored: the first event after it gets a delivery.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let answer = app.ingest(json!({"event": event_type, "severity": "high", "tenant_id": "contoso", "data": {}})).await;
                if !answer.body["deliveries"].as_array().unwrap().is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "rule {i}, sent by a client that reset, was stored but not routed");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            receiver.wait_for(1, None, Duration::from_secs(5)).await;

            // A rotation the client never saw the answer to: the actor signs with both secrets.
            let channel_id = channel["id"].as_str().unwrap();
            send_and_reset(&app.base, "POST", &format!("/api/v1/channels/{channel_id}/rotate-secret"), &json!({}), Duration::ZERO).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while app.get(&format!("/api/v1/channels/{channel_id}")).await.body["previous_secret_expires_at"].is_null() {
                assert!(Instant::now() < deadline, "the rotation was not stored");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                app.ingest(json!({"event": event_type, "severity": "high", "tenant_id": "contoso", "data": {}})).await;
                let last = receiver.received().last().cloned().unwrap();
                if last.headers["webhook-signature"].split(' ').count() == 2 {
                    assert!(signature_is_valid(channel["secret"].as_str().unwrap(), &last), "the old secret still signs");
                    break;
                }
                assert!(Instant::now() < deadline, "rotation {i}, sent by a client that reset, never reached the channel's actor");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    #[actix_web::test]
    async fn a_redelivery_whose_client_resets_mid_attempt_is_still_recorded() {
        let app = spawn_app_with(|s| s.retry_schedule = RetrySchedule::new(vec![])).await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        app.soc_channel_for_contoso(&receiver).await;
        let (_, delivery_id) = one_delivery(&app).await;
        app.wait_for_status(&delivery_id, "failed", Duration::from_secs(5)).await;
        receiver.reply_with(Reply::Slow(500, 200));
        send_and_reset(&app.base, "POST", &format!("/api/v1/deliveries/{delivery_id}/redeliver"), &json!({}), Duration::from_millis(200)).await;
        receiver.wait_for(2, None, Duration::from_secs(5)).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(5)).await;
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[1]["trigger"], "manual");
        assert_eq!(attempts[1]["status_code"], 200);
    }

    #[actix_web::test]
    async fn a_2xx_whose_body_stalls_is_a_success_with_what_arrived_of_the_body() {
        let app = spawn_app_with(|s| s.delivery_timeout = Duration::from_millis(800)).await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::StallBody);
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let test = app.post(&format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(test.body["ok"], true, "{}", test.body);
        assert_eq!(test.body["status_code"], 200);
        assert_eq!(test.body["error_kind"], Value::Null);
        assert_eq!(test.body["response_excerpt"], "partial");
        let (_, delivery_id) = one_delivery(&app).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(5)).await;
        assert_eq!(delivery["attempt_count"], 1);
        assert_eq!(delivery["attempts"][0]["status_code"], 200);
    }

    #[actix_web::test]
    async fn a_rule_whose_last_channel_was_deleted_is_disabled_and_stays_editable() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let rule_id = app.get("/api/v1/rules").await.body["items"][0]["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/rules/{rule_id}");
        assert_eq!(app.delete(&format!("/api/v1/channels/{}", channel["id"].as_str().unwrap())).await.status, 204);
        let rule = app.get(&path).await.body;
        assert_eq!((rule["enabled"].clone(), rule["channel_ids"].clone()), (json!(false), json!([])), "{rule:#}");

        for patch in [json!({"enabled": false}), json!({"name": "Renamed"}), json!({"min_severity": "high", "channel_ids": []})] {
            let answer = app.patch(&path, patch.clone()).await;
            assert_eq!(answer.status, 200, "{patch}: {}", answer.body);
        }
        let refused = app.patch(&path, json!({"enabled": true})).await;
        assert_eq!(refused.status, 422);
        assert_eq!(refused.body["field"], "channel_ids");
        assert!(refused.body["detail"].as_str().unwrap().contains("disabled"), "{}", refused.body);

        let other = app.create_channel("Other", &receiver.url("/other")).await;
        let answer = app.patch(&path, json!({"enabled": true, "channel_ids": [other["id"]]})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let (_, delivery_id) = one_delivery(&app).await;
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(5)).await;
        // A new rule still needs a channel unless it is created disabled.
        let none = app.post("/api/v1/rules", json!({"name": "x", "event_types": ["*"], "channel_ids": []})).await;
        assert_eq!(none.status, 422);
        let draft = app.post("/api/v1/rules", json!({"name": "x", "event_types": ["*"], "channel_ids": [], "enabled": false})).await;
        assert_eq!(draft.status, 201, "{}", draft.body);
    }
}
