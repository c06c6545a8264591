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

        // Deleting the throttled channel cancels its five pending deliveries, and its series go
        // with it; the others' stay.
        assert_eq!(app.delete(&format!("/api/v1/channels/{c}")).await.status, 204);
        expected.retain(|(s, _)| !s.contains(&c));
        let (_, samples, text) = scrape(&app, Some(METRICS_TOKEN)).await;
        assert!(!text.contains(&c), "a deleted channel's series are gone:\n{text}");
        assert!(expected.iter().all(|(series, value)| samples.get(series) == Some(value)), "{text}");
    }

    #[actix_web::test]
    async fn deleted_channels_leave_no_series_behind() {
        let app = spawn_app_with(|s| s.metrics_token = Some(METRICS_TOKEN.into())).await;
        let (ok, failing) = (Receiver::start().await, Receiver::start().await);
        failing.reply_with(Reply::Status(500));
        app.create_tenant("contoso").await;
        let kept = app.create_channel("Kept", &ok.url("/kept")).await["id"].as_str().unwrap().to_string();
        let mut gone = Vec::new();
        for round in 0..3 {
            // Ten channels created, used (successes, failures, retries) and deleted, each round.
            let ids: Vec<String> = futures_util::future::join_all((0..10).map(|i| {
                let path = format!("/{round}-{i}");
                let url = if i % 2 == 0 { ok.url(&path) } else { failing.url(&path) };
                let app = &app;
                async move { app.create_channel(&format!("Short-lived {round}-{i}"), &url).await["id"].as_str().unwrap().to_string() }
            }))
            .await;
            let mut routed: Vec<&str> = ids.iter().map(String::as_str).collect();
            routed.push(&kept);
            app.route_everything_to(&routed).await;
            assert_eq!(app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await.status, 202);
            ok.wait_for(6 * (round + 1), None, Duration::from_secs(10)).await;
            failing.wait_for(5 * (round + 1), None, Duration::from_secs(10)).await;
            let (_, _, text) = scrape(&app, Some(METRICS_TOKEN)).await;
            assert!(ids.iter().all(|id| text.contains(id.as_str())), "every channel in use has its series");
            for id in &ids {
                assert_eq!(app.delete(&format!("/api/v1/channels/{id}")).await.status, 204);
            }
            gone.extend(ids.into_iter().enumerate().map(|(i, id)| (id, format!("/{round}-{i}"))));
        }
        // Attempts in flight at the deletion are recorded after it (and make no series again):
        // wait until every request a deleted channel sent is in its log.
        let deadline = Instant::now() + Duration::from_secs(10);
        for (id, path) in &gone {
            loop {
                let sent = ok.received().iter().chain(failing.received().iter()).filter(|c| &c.path == path).count();
                let recorded = app.get(&format!("/api/v1/deliveries?channel_id={id}")).await.body["items"][0]["attempt_count"].as_u64().unwrap() as usize;
                if recorded == sent {
                    break;
                }
                assert!(Instant::now() < deadline, "{id}: {sent} sent, {recorded} recorded");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let gone: Vec<String> = gone.into_iter().map(|(id, _)| id).collect();
        let (_, samples, text) = scrape(&app, Some(METRICS_TOKEN)).await;
        let left: Vec<&String> = gone.iter().filter(|id| text.contains(id.as_str())).collect();
        assert!(left.is_empty(), "{} deleted channels still have series:\n{text}", left.len());
        let series = text.lines().filter(|l| !l.starts_with('#') && l.contains("channel_id=")).count();
        assert!(series > 0 && text.lines().filter(|l| l.contains("channel_id=")).all(|l| l.contains(&kept) || l.starts_with('#')), "{text}");
        assert_eq!(samples[&format!("spscan_deliveries_total{{channel_id=\"{kept}\",status=\"succeeded\"}}")], 3.0);
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
