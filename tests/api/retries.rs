//! Failures: the retry schedule, giving up, redelivering by hand, timeouts and isolation.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

async fn one_channel_app(receiver: &Receiver) -> (TestApp, String) {
    let app = spawn_app().await;
    let channel = app.create_channel("SOC", &receiver.url("/hook")).await;
    app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    (app, channel["id"].as_str().unwrap().to_string())
}

async fn ingest_one(app: &TestApp) -> (String, String) {
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let event_id = answer.body["event_id"].as_str().unwrap().to_string();
    (event_id, answer.body["deliveries"][0]["id"].as_str().unwrap().to_string())
}

on_both_backends! {
    #[actix_web::test]
    async fn a_receiver_that_fails_twice_then_succeeds_gets_three_attempts() {
        let receiver = Receiver::start().await;
        receiver.script(&[Reply::Status(503), Reply::Status(500)]);
        let (app, _) = one_channel_app(&receiver).await;
        let (event_id, delivery_id) = ingest_one(&app).await;

        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 3);
        let attempts = delivery["attempts"].as_array().unwrap();
        let codes: Vec<_> = attempts.iter().map(|a| a["status_code"].as_i64().unwrap()).collect();
        assert_eq!(codes, vec![503, 500, 200]);
        assert_eq!(attempts[0]["error_kind"], "http_status");
        assert!(attempts[2]["error_kind"].is_null());
        let got = receiver.received();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|c| c.headers["webhook-id"] == event_id), "the same event id on every retry");
    }

    #[actix_web::test]
    async fn a_failing_endpoint_is_retried_three_times_on_the_schedule_then_marked_failed() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        let (app, channel_id) = one_channel_app(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;

        let delivery = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 4);
        assert!(delivery["next_attempt_at"].is_null());
        assert_eq!(delivery["last_status_code"], 500);
        let got = receiver.received();
        assert_eq!(got.len(), 4, "four attempts in all, no more");
        for (i, delay) in TEST_SCHEDULE.iter().enumerate() {
            let gap = got[i + 1].at - got[i].at;
            assert!(gap >= Duration::from_millis(*delay), "retry {} came after {gap:?}, before its {delay} ms delay", i + 1);
            // Late only by what a busy machine adds, never by a whole default delay (30 s).
            assert!(gap < Duration::from_millis(delay + 5_000), "retry {} came late: {gap:?}", i + 1);
        }

        let failed = app.get(&format!("/api/v1/deliveries?status=failed&channel_id={channel_id}")).await;
        let items = failed.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], delivery_id.as_str());
        assert_eq!(items[0]["last_error"], "HTTP 500 Internal Server Error");
        // Nothing more arrives after the delivery failed.
        actix_web::rt::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.received().len(), 4);
    }

    #[actix_web::test]
    async fn a_failed_delivery_can_be_redelivered_by_hand() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(502));
        let (app, _) = one_channel_app(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;
        app.wait_for_status(&delivery_id, "failed", Duration::from_secs(10)).await;

        // Still failing: the manual attempt is recorded, the delivery stays failed, nothing is scheduled.
        let again = app.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"), json!({})).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body["status"], "failed");
        assert_eq!(again.body["attempt_count"], 5);
        assert_eq!(again.body["attempts"][4]["trigger"], "manual");
        assert!(again.body["next_attempt_at"].is_null());

        receiver.reply_with(Reply::Status(200));
        let fixed = app.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"), json!({})).await;
        assert_eq!(fixed.status, 200);
        assert_eq!(fixed.body["status"], "succeeded");
        assert_eq!(fixed.body["attempts"][5]["status_code"], 200);
        assert_eq!(fixed.body["attempts"][5]["trigger"], "manual");
        assert_eq!(receiver.received().len(), 6);

        let missing = app.post("/api/v1/deliveries/dlv_nope/redeliver", json!({})).await;
        assert_eq!(missing.status, 404);
    }

    #[actix_web::test]
    async fn a_hanging_receiver_times_out_without_delaying_other_channels() {
        // One request at a time per channel: if channels shared a pipeline, the first hanging request
        // would hold up everything behind it for the whole timeout.
        let app = spawn_app_with(|s| {
            s.delivery_timeout = Duration::from_secs(3);
            s.delivery_concurrency = 1;
        })
        .await;
        let stuck = Receiver::start().await;
        stuck.reply_with(Reply::Hang);
        let healthy = Receiver::start().await;
        let stuck_channel = app.create_channel("Stuck", &stuck.url("/")).await;
        let healthy_channel = app.create_channel("Healthy", &healthy.url("/")).await;
        app.route_everything_to(&[stuck_channel["id"].as_str().unwrap(), healthy_channel["id"].as_str().unwrap()]).await;
        app.create_tenant("contoso").await;

        let started = std::time::Instant::now();
        for _ in 0..5 {
            app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        }
        healthy.wait_for(5, None, Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(3), "the healthy channel waited for the stuck one: {:?}", started.elapsed());

        let log = app.get(&format!("/api/v1/deliveries?channel_id={}", stuck_channel["id"].as_str().unwrap())).await;
        // The log lists the newest first; the oldest is attempted first.
        let first = log.body["items"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let delivery = app.delivery(&first).await;
            if delivery["attempt_count"].as_i64().unwrap() >= 1 {
                assert_eq!(delivery["attempts"][0]["error_kind"], "timeout");
                assert!(delivery["attempts"][0]["duration_ms"].as_i64().unwrap() >= 3000);
                assert_eq!(delivery["status"], "pending", "a timeout is retried");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no timeout recorded: {delivery:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[actix_web::test]
    async fn redirects_are_not_followed() {
        let elsewhere = Receiver::start().await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::RedirectTo(elsewhere.port()));
        let (app, _) = one_channel_app(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;
        let delivery = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempts"][0]["error_kind"], "redirect");
        assert_eq!(delivery["attempts"][0]["status_code"], 301);
        assert!(delivery["attempts"][0]["error"].as_str().unwrap().contains("redirected to http://127.0.0.1"), "{delivery}");
        assert_eq!(receiver.received().len(), 4);
        assert!(elsewhere.received().is_empty(), "the redirect target was never requested");
    }

    #[actix_web::test]
    async fn a_receiver_answering_binary_garbage_is_logged_and_retried_like_any_failure() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Binary(500));
        let (app, channel_id) = one_channel_app(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;
        let delivery = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 4);
        let excerpt = delivery["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(!excerpt.is_empty() && excerpt.len() <= 1024, "{} bytes", excerpt.len());
        // The channel keeps working: the Test button and the next event get through.
        receiver.reply_with(Reply::Binary(200));
        let test = app.post(&format!("/api/v1/channels/{channel_id}/test"), json!({})).await;
        assert_eq!(test.body["ok"], true, "{}", test.body);
        let (_, next) = ingest_one(&app).await;
        app.wait_for_status(&next, "succeeded", Duration::from_secs(5)).await;
    }

    #[actix_web::test]
    async fn redelivering_a_pending_delivery_by_hand_does_not_use_up_its_retries() {
        let app = spawn_app_with(|s| {
            s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("400ms,400ms,400ms").unwrap()
        })
        .await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        app.soc_channel_for_contoso(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        for _ in 0..2 {
            let manual = app.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"), json!({})).await;
            assert_eq!(manual.body["status"], "pending", "a failed manual attempt leaves the schedule running");
        }
        let delivery = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(10)).await;
        let triggers: Vec<&str> = delivery["attempts"].as_array().unwrap().iter().map(|a| a["trigger"].as_str().unwrap()).collect();
        assert_eq!(triggers.iter().filter(|t| **t == "scheduled").count(), 4, "{triggers:?}");
        assert_eq!(triggers.iter().filter(|t| **t == "manual").count(), 2, "{triggers:?}");
    }

    #[actix_web::test]
    async fn a_429_with_retry_after_in_seconds_is_not_retried_sooner() {
        let receiver = Receiver::start().await;
        receiver.script(&[Reply::RetryAfter(429, "2")]);
        let (app, _) = one_channel_app(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 2, "{delivery:#}");
        assert!(delivery["attempts"][0]["error"].as_str().unwrap().contains("asked to wait 2s"), "{delivery:#}");
        let got = receiver.received();
        let gap = got[1].at - got[0].at;
        // The schedule alone would retry after 100 ms.
        assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
        assert!(gap < Duration::from_secs(10), "retried only after {gap:?}");
    }

    #[actix_web::test]
    async fn a_503_with_retry_after_as_a_date_is_honoured_up_to_max_retry_after() {
        let receiver = Receiver::start().await;
        // An HTTP date well ahead, so it is still ahead when a loaded machine gets round to the
        // answer (it was three seconds once, and a busy CI run took longer than that).
        let at: &'static str = Box::leak(httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60)).into_boxed_str());
        receiver.script(&[Reply::RetryAfter(503, at), Reply::RetryAfter(429, "3600")]);
        let app = spawn_app_with(|s| s.max_retry_after = Duration::from_secs(1)).await;
        let channel = app.create_channel("SOC", &receiver.url("/hook")).await;
        app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        app.create_tenant("contoso").await;
        let (_, delivery_id) = ingest_one(&app).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(15)).await;
        assert_eq!(delivery["attempt_count"], 3, "{delivery:#}");
        let got = receiver.received();
        // MAX_RETRY_AFTER of 1 s caps both asks: the date's and the hour's.
        for pair in got.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= Duration::from_millis(950), "retried after {gap:?}, sooner than the capped ask");
            // Uncapped, the waits would be a minute and an hour.
            assert!(gap < Duration::from_secs(10), "retried after {gap:?}: the cap of 1 s was not applied");
        }
    }

    #[actix_web::test]
    async fn retry_after_on_other_statuses_is_not_a_reason_to_wait() {
        let receiver = Receiver::start().await;
        receiver.script(&[Reply::RetryAfter(500, "30")]);
        let (app, _) = one_channel_app(&receiver).await;
        let (_, delivery_id) = ingest_one(&app).await;
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(15)).await;
        let got = receiver.received();
        // Obeyed, it would be 30 s; the schedule says 100 ms.
        assert!(got[1].at - got[0].at < Duration::from_secs(10), "a 500's Retry-After was obeyed");
    }

    #[actix_web::test]
    async fn retries_of_deliveries_that_failed_together_are_spread_by_the_jitter() {
        let receiver = Receiver::start().await;
        receiver.script(&[Reply::Status(500); 20]);
        let app = spawn_app_with(|s| {
            s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("5s").unwrap();
            s.retry_jitter = 0.2;
            // Twenty failures in a row would open the circuit and hold the retries back.
            s.breaker.failures = 1000;
        })
        .await;
        let channel = app.create_channel("SOC", &receiver.url("/hook")).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&channel_id]).await;
        app.create_tenant("contoso").await;
        let batch: Vec<_> = (0..20).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = app.ingest(json!({ "events": batch })).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        // Each retry is scheduled 5 s ± 20 % after its failure, as the router recorded them
        // (read while they wait: at least 4 s).
        let deadline = Instant::now() + Duration::from_secs(10);
        let waiting = loop {
            let log = app.get(&format!("/api/v1/deliveries?channel_id={channel_id}&limit=50")).await.body;
            let items = log["items"].as_array().unwrap().clone();
            if items.len() == 20 && items.iter().all(|d| d["attempt_count"] == 1 && d["next_attempt_at"].is_string()) {
                break items;
            }
            assert!(Instant::now() < deadline, "the 20 first attempts were not all recorded: {log:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        };
        let mut delays = Vec::new();
        for item in &waiting {
            let delivery = app.delivery(item["id"].as_str().unwrap()).await;
            let failed_at = ms(&delivery["attempts"][0]["started_at"]) + delivery["attempts"][0]["duration_ms"].as_i64().unwrap();
            delays.push(ms(&item["next_attempt_at"]) - failed_at);
        }
        let (shortest, longest) = (*delays.iter().min().unwrap(), *delays.iter().max().unwrap());
        // ±20 % of 5 s, plus the moment between the answer and the recording.
        assert!(shortest >= 4_000, "a retry scheduled {shortest} ms after its failure: {delays:?}");
        assert!(longest <= 6_500, "a retry scheduled {longest} ms after its failure: {delays:?}");
        assert!(longest - shortest >= 300, "retries not spread: {delays:?}");
        // And they come no sooner.
        let got = receiver.wait_for(40, None, Duration::from_secs(20)).await;
        for first in got.iter().filter(|c| c.answered == Some(500)) {
            let id = &first.headers["webhook-id"];
            let retry = got.iter().find(|c| &c.headers["webhook-id"] == id && c.answered == Some(200)).expect("each was retried");
            assert!(retry.at - first.at >= Duration::from_millis(3_950), "a retry came after {:?}", retry.at - first.at);
        }
    }

}
