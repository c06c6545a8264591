//! What the Overview and the Channels page read: `GET /stats/deliveries` counts what really
//! happened to real deliveries (per hour, by status) and times real attempts (p50/p95), and
//! `POST /channels/{id}/probe` (Probe now) closes an open circuit without waiting for its
//! cooldown.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spscan_router::domain::breaker::BreakerPolicy;
use spscan_router::domain::retry::RetrySchedule;

use crate::helpers::*;

async fn stats(app: &TestApp, query: &str) -> Value {
    let answer = app.get(&format!("/api/v1/stats/deliveries{query}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn channel<'a>(stats: &'a Value, id: &str) -> &'a Value {
    stats["channels"].as_array().unwrap().iter().find(|c| c["channel_id"] == id).unwrap_or_else(|| panic!("no {id} in {stats:#}"))
}

/// The sum over every hourly bucket of `status`.
fn total(buckets: &Value, status: &str) -> i64 {
    buckets.as_array().unwrap().iter().map(|b| b[status].as_i64().unwrap()).sum()
}

/// Nearest-rank percentile, as a person computes it from the attempts' durations.
fn nearest_rank(sorted: &[i64], p: usize) -> i64 {
    sorted[(p * sorted.len()).div_ceil(100) - 1]
}

async fn health(app: &TestApp, channel_id: &str) -> Value {
    app.get(&format!("/api/v1/channels/{channel_id}")).await.body["health"].clone()
}

on_both_backends! {
    #[actix_web::test]
    async fn the_hourly_counts_are_what_happened_and_p50_p95_are_the_attempts_own_times() {
        let ok = Receiver::start().await;
        // Two of the ten answers take 2 s: the p95 is one of them, the median is not (even when a
        // loaded machine slows the other eight).
        ok.script(&[Reply::Slow(2_000, 200), Reply::Slow(2_000, 200)]);
        let broken = Receiver::start().await;
        broken.reply_with(Reply::Status(500));
        let app = spawn_app_with(|s| {
            s.retry_schedule = RetrySchedule::new(vec![]);
            s.breaker.failures = 100_000;
        })
        .await;
        app.create_tenant("contoso").await;
        let soc = app.create_channel("SOC", &ok.url("/soc")).await["id"].as_str().unwrap().to_string();
        let bad = app.create_channel("Broken", &broken.url("/broken")).await["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&soc, &bad]).await;
        let silence = app
            .post("/api/v1/silences", json!({"matchers": {"path": "/severity", "op": "eq", "value": "low"}, "duration": "1h", "comment": "quiet", "created_by": "tests"}))
            .await;
        assert_eq!(silence.status, 201, "{}", silence.body);
        let events: Vec<Value> = (0..10)
            .map(|_| permission_event("contoso", "permission.external_share_created", "high"))
            .chain((0..3).map(|_| permission_event("contoso", "permission.external_share_created", "low")))
            .collect();
        assert_eq!(app.ingest(json!({ "events": events })).await.status, 202);

        // Once every attempt is recorded: 10 succeeded and 10 failed, 3 silenced per channel.
        let deadline = Instant::now() + Duration::from_secs(20);
        let body = loop {
            let body = stats(&app, "").await;
            if total(&body["hourly"], "succeeded") == 10 && total(&body["hourly"], "failed") == 10 {
                break body;
            }
            assert!(Instant::now() < deadline, "never all delivered: {body:#}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((body["hours"].as_i64(), body["pending_threshold_s"].as_i64()), (Some(24), Some(300)));
        let hourly = body["hourly"].as_array().unwrap();
        assert_eq!(hourly.len(), 24);
        for (status, count) in [("succeeded", 10), ("failed", 10), ("silenced", 6), ("pending", 0), ("grouped", 0), ("suppressed", 0), ("cancelled", 0)] {
            assert_eq!(total(&body["hourly"], status), count, "{status}: {body:#}");
        }
        // Whole UTC hours, oldest first, ending with the current one (where these all are,
        // unless the hour turned while the test ran).
        let hour_ms = 3_600_000;
        let now = chrono::Utc::now().timestamp_millis();
        let last = chrono::DateTime::parse_from_rfc3339(hourly[23]["hour"].as_str().unwrap()).unwrap().timestamp_millis();
        assert!(last == now / hour_ms * hour_ms || last == now / hour_ms * hour_ms - hour_ms, "{}", hourly[23]["hour"]);
        assert_eq!(hourly[23]["succeeded"].as_i64().unwrap() + hourly[22]["succeeded"].as_i64().unwrap(), 10);
        assert_eq!(body["since"], hourly[0]["hour"]);

        let soc_stats = channel(&body, &soc);
        let bad_stats = channel(&body, &bad);
        assert_eq!((total(&soc_stats["hourly"], "succeeded"), total(&soc_stats["hourly"], "silenced"), total(&soc_stats["hourly"], "failed")), (10, 3, 0));
        assert_eq!((total(&bad_stats["hourly"], "failed"), total(&bad_stats["hourly"], "silenced"), total(&bad_stats["hourly"], "succeeded")), (10, 3, 0));
        assert_eq!((soc_stats["attempts"].as_i64(), bad_stats["attempts"].as_i64()), (Some(10), Some(10)));
        assert_eq!((soc_stats["pending"].as_i64(), soc_stats["pending_over_threshold"].as_i64()), (Some(0), Some(0)));

        // p50 and p95 are exactly the nearest ranks of the attempts the alert log shows.
        let list = app.get(&format!("/api/v1/deliveries?channel_id={soc}&status=succeeded&limit=50")).await.body;
        let mut durations = Vec::new();
        for d in list["items"].as_array().unwrap() {
            let delivery = app.delivery(d["id"].as_str().unwrap()).await;
            durations.extend(delivery["attempts"].as_array().unwrap().iter().map(|a| a["duration_ms"].as_i64().unwrap()));
        }
        durations.sort_unstable();
        assert_eq!(durations.len(), 10);
        assert_eq!((soc_stats["p50_ms"].as_i64(), soc_stats["p95_ms"].as_i64()), (Some(nearest_rank(&durations, 50)), Some(nearest_rank(&durations, 95))));
        assert!(soc_stats["p95_ms"].as_i64().unwrap() >= 2_000 && soc_stats["p50_ms"].as_i64().unwrap() < 2_000, "{soc_stats:#}");

        // The last attempted delivery and its outcome.
        assert_eq!((&soc_stats["last_delivery"]["status"], &soc_stats["last_delivery"]["status_code"]), (&json!("succeeded"), &json!(200)));
        assert_eq!((&bad_stats["last_delivery"]["status"], &bad_stats["last_delivery"]["status_code"]), (&json!("failed"), &json!(500)));

        // A shorter window, and what is refused.
        assert_eq!(stats(&app, "?hours=1").await["hourly"].as_array().unwrap().len(), 1);
        for (query, status) in [("?hours=0", 422), ("?hours=169", 422), ("?hours=many", 400), ("?channel=x", 400)] {
            let refused = app.get(&format!("/api/v1/stats/deliveries{query}")).await;
            assert_eq!(refused.status, status, "{query}: {}", refused.body);
            assert!(refused.content_type.starts_with("application/problem+json"), "{query}");
        }
    }

    #[actix_web::test]
    async fn probe_now_closes_an_open_circuit_at_once_once_the_receiver_is_fixed() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        let app = spawn_app_with(|s| {
            // Ten minutes before the next probe would go by itself.
            s.breaker = BreakerPolicy { failures: 3, cooldown: Duration::from_secs(600) };
            s.delivery_concurrency = 1;
        })
        .await;
        let channel_id = app.soc_channel_for_contoso(&receiver).await["id"].as_str().unwrap().to_string();
        // Closed: nothing to probe.
        let closed = app.post(&format!("/api/v1/channels/{channel_id}/probe"), json!({})).await;
        assert_eq!((closed.status, &closed.body["probing"], &closed.body["state"]), (200, &json!(false), &json!("closed")), "{}", closed.body);

        let events: Vec<Value> = (0..10).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = app.ingest(json!({ "events": events })).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let deadline = Instant::now() + Duration::from_secs(10);
        while health(&app, &channel_id).await["state"] != "open" {
            assert!(Instant::now() < deadline, "the circuit never opened");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        // The Overview's numbers: ten wait, and the channel's last delivery failed.
        let waiting = channel(&stats(&app, "").await, &channel_id).clone();
        assert_eq!(waiting["pending"], 10, "{waiting:#}");
        assert_eq!(waiting["last_delivery"]["status_code"], 500, "{waiting:#}");

        receiver.reply_with(Reply::Status(200));
        let asked = Instant::now();
        let probe = app.post(&format!("/api/v1/channels/{channel_id}/probe"), json!({})).await;
        assert_eq!(probe.status, 202, "{}", probe.body);
        assert_eq!((&probe.body["state"], &probe.body["probing"], &probe.body["pending"]), (&json!("half_open"), &json!(true), &json!(10)));
        // Delivered, all ten, and the circuit closed: long before its ten minutes.
        let ids: Vec<String> = answer.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect();
        for id in &ids {
            app.wait_for_status(id, "succeeded", Duration::from_secs(15)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while health(&app, &channel_id).await["state"] != "closed" {
            assert!(Instant::now() < deadline, "the circuit did not close: {}", health(&app, &channel_id).await);
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(asked.elapsed() < Duration::from_secs(60));
        assert_eq!(health(&app, &channel_id).await["consecutive_failures"], 0);

        // A disabled channel has nothing to probe; an unknown one is 404.
        assert_eq!(app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"enabled": false})).await.status, 200);
        let refused = app.post(&format!("/api/v1/channels/{channel_id}/probe"), json!({})).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap().contains("enable it"), "{}", refused.body);
        assert_eq!(app.post("/api/v1/channels/ch_nope/probe", json!({})).await.status, 404);
    }
}
