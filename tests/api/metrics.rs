//! `GET /metrics` after known traffic: the counters and histogram counts equal what happened.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// The samples of a scrape: `name{labels}` → value.
async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, HashMap<String, f64>, String) {
    let mut request = http_client().get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.unwrap();
    let text = String::from_utf8(response.body().limit(8 << 20).await.unwrap().to_vec()).unwrap();
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.rsplit_once(' ').map(|(series, value)| (series.to_string(), value.parse().unwrap_or(f64::NAN))))
        .collect();
    (response.status().as_u16(), samples, text)
}

/// Waits until every series has its value (counters follow their commit by a moment).
async fn wait_for_samples(app: &TestApp, expected: &[(String, f64)]) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, samples, text) = scrape(app, Some(METRICS_TOKEN)).await;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(series, value)| samples.get(series) != Some(value))
            .map(|(series, value)| format!("{series}: expected {value}, got {:?}", samples.get(series)))
            .collect();
        if wrong.is_empty() {
            return samples;
        }
        assert!(Instant::now() < deadline, "{wrong:#?}\n{text}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_backends! {
    #[actix_web::test]
    async fn metrics_count_events_deliveries_by_status_and_attempts_by_outcome() {
        let app = spawn_app_with(|settings| {
            settings.metrics_token = Some(METRICS_TOKEN.into());
            // The counts below follow the retry schedule, not the breaker.
            settings.breaker.failures = 10_000;
        })
        .await;
        // Only the admin token or METRICS_TOKEN may scrape.
        assert_eq!(scrape(&app, None).await.0, 401);
        assert_eq!(scrape(&app, Some(INGEST_TOKEN)).await.0, 403, "a token the router knows, not allowed to scrape");
        assert_eq!(scrape(&app, Some(ADMIN_TOKEN)).await.0, 200);

        let (ok, failing, throttled) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
        failing.reply_with(Reply::Status(500));
        throttled.reply_with(Reply::RetryAfter(429, "3600"));
        app.create_tenant("contoso").await;
        let a = app.create_channel("Ok", &ok.url("/")).await["id"].as_str().unwrap().to_string();
        let b = app.create_channel("Failing", &failing.url("/")).await["id"].as_str().unwrap().to_string();
        let c = app.create_channel("Throttled", &throttled.url("/")).await["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&a, &b, &c]).await;
        for i in 0..5 {
            let mut event = permission_event("contoso", "permission.external_share_created", "high");
            event["event_id"] = json!(format!("metrics-{i}"));
            assert_eq!(app.ingest(event.clone()).await.status, 202);
            if i == 0 {
                assert_eq!(app.ingest(event).await.status, 200, "a duplicate is not an event more");
            }
        }
        throttled.wait_for(5, None, Duration::from_secs(10)).await;
        let series = |name: &str, channel: &str, label: &str, value: &str| format!("{name}{{channel_id=\"{channel}\",{label}=\"{value}\"}}");
        let mut expected = vec![
            ("spscan_events_ingested_total".to_string(), 5.0),
            ("spscan_ingest_duration_seconds_count".to_string(), 6.0),
            (series("spscan_deliveries_total", &a, "status", "pending"), 5.0),
            (series("spscan_deliveries_total", &a, "status", "succeeded"), 5.0),
            (series("spscan_deliveries_total", &b, "status", "pending"), 5.0),
            (series("spscan_deliveries_total", &b, "status", "failed"), 5.0),
            (series("spscan_deliveries_total", &c, "status", "pending"), 5.0),
            (series("spscan_attempts_total", &a, "outcome", "success"), 5.0),
            // The schedule (100, 200, 400 ms): four attempts each.
            (series("spscan_attempts_total", &b, "outcome", "http_status"), 20.0),
            (series("spscan_attempts_total", &c, "outcome", "http_status"), 5.0),
            (format!("spscan_attempt_duration_seconds_count{{channel_id=\"{a}\"}}"), 5.0),
            (format!("spscan_attempt_duration_seconds_count{{channel_id=\"{b}\"}}"), 20.0),
            (format!("spscan_pending_deliveries{{channel_id=\"{a}\"}}"), 0.0),
            (format!("spscan_pending_deliveries{{channel_id=\"{c}\"}}"), 5.0),
            (format!("spscan_channel_circuit_open{{channel_id=\"{b}\"}}"), 0.0),
        ];
        let samples = wait_for_samples(&app, &expected).await;
        assert!(samples["spscan_store_commit_duration_seconds_count"] >= 10.0, "every write transaction is timed");
        assert!(samples.contains_key("process_cpu_seconds_total") && samples.contains_key("process_resident_memory_bytes"), "process metrics");
        assert!(!samples.contains_key(&series("spscan_attempts_total", &a, "outcome", "http_status")), "no failure was counted for the channel that took everything");

        // A manual redelivery that fails again is one attempt more, and no status entered; a bulk
        // redelivery makes five pending again, and they fail again.
        let failed_id = app.get(&format!("/api/v1/deliveries?channel_id={b}&limit=1")).await.body["items"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(app.post(&format!("/api/v1/deliveries/{failed_id}/redeliver"), json!({})).await.status, 200);
        let duration_b = format!("spscan_attempt_duration_seconds_count{{channel_id=\"{b}\"}}");
        for (series_name, value) in expected.iter_mut() {
            if *series_name == series("spscan_attempts_total", &b, "outcome", "http_status") || *series_name == duration_b {
                *value = 21.0;
            }
        }
        wait_for_samples(&app, &expected).await;
        let bulk = app.post("/api/v1/deliveries/redeliver", json!({"status": "failed", "channel_id": b})).await;
        assert_eq!((bulk.status, bulk.body["count"].as_i64()), (202, Some(5)), "{}", bulk.body);
        for (series_name, value) in expected.iter_mut() {
            if *series_name == series("spscan_attempts_total", &b, "outcome", "http_status") || *series_name == duration_b {
                *value = 26.0;
            } else if *series_name == series("spscan_deliveries_total", &b, "status", "pending") || *series_name == series("spscan_deliveries_total", &b, "status", "failed") {
                *value = 10.0;
            }
        }
        wait_for_samples(&app, &expected).await;

        // Deleting the throttled channel cancels its five pending deliveries.
        assert_eq!(app.delete(&format!("/api/v1/channels/{c}")).await.status, 204);
        expected.retain(|(s, _)| !s.starts_with("spscan_pending_deliveries{channel_id=\"") || !s.contains(&c));
        expected.push((series("spscan_deliveries_total", &c, "status", "cancelled"), 5.0));
        let samples = wait_for_samples(&app, &expected).await;
        assert!(!samples.contains_key(&format!("spscan_pending_deliveries{{channel_id=\"{c}\"}}")), "a deleted channel has no gauge");
    }

    #[actix_web::test]
    async fn an_open_circuit_shows_in_its_gauge() {
        let app = spawn_app_with(|settings| {
            settings.breaker.failures = 2;
            settings.breaker.cooldown = Duration::from_secs(60);
        })
        .await;
        let failing = Receiver::start().await;
        failing.reply_with(Reply::Status(503));
        app.create_tenant("contoso").await;
        let channel = app.create_channel("Failing", &failing.url("/")).await["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&channel]).await;
        assert_eq!(app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await.status, 202);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, samples, text) = scrape(&app, Some(ADMIN_TOKEN)).await;
            assert_eq!(status, 200);
            if samples.get(&format!("spscan_channel_circuit_open{{channel_id=\"{channel}\"}}")) == Some(&1.0) {
                break;
            }
            assert!(Instant::now() < deadline, "the circuit did not show open:\n{text}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
