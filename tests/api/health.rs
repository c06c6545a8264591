//! Endpoint health: receivers that misbehave on purpose, and the circuit breaker that stops the
//! router from hammering them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spscan_router::domain::breaker::BreakerPolicy;
use spscan_router::domain::retry::RetrySchedule;

use crate::helpers::*;

/// A router whose circuits open after 5 failures for 1 s (then 2 s, 4 s …), one request at a
/// time per channel, and a channel to `receiver` that every event goes to; `count` events sent.
async fn breaker_app(receiver: &Receiver, count: usize) -> (TestApp, String, Vec<String>) {
    let app = spawn_app_with(|s| {
        s.breaker = BreakerPolicy { failures: 5, cooldown: Duration::from_secs(1) };
        s.delivery_concurrency = 1;
    })
    .await;
    let channel = app.soc_channel_for_contoso(receiver).await;
    let channel_id = channel["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&channel_id]).await;
    let events: Vec<Value> = (0..count).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
    let answer = app.ingest(json!({ "events": events })).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let deliveries = answer.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect();
    (app, channel_id, deliveries)
}

async fn health(app: &TestApp, channel_id: &str) -> Value {
    let answer = app.get(&format!("/api/v1/channels/{channel_id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["health"].clone()
}

/// Waits until the channel's stored health matches `pred`.
async fn wait_for_health(app: &TestApp, channel_id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(app, channel_id).await;
        if pred(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "health never became {what}: {h:#}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A channel whose receiver answers `500`, whose circuit opened after three failures (for ten
/// minutes) with ten deliveries behind it; and the ingestion's answer.
async fn open_circuit_with_a_backlog() -> (TestApp, Receiver, String, Answer) {
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Status(500));
    let app = spawn_app_with(|s| {
        s.breaker = BreakerPolicy { failures: 3, cooldown: Duration::from_secs(600) };
        s.delivery_concurrency = 1;
    })
    .await;
    let channel = app.soc_channel_for_contoso(&receiver).await;
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let events: Vec<Value> = (0..10).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
    let answer = app.ingest(json!({ "events": events })).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    wait_for_health(&app, &channel_id, "open", |h| h["state"] == "open").await;
    (app, receiver, channel_id, answer)
}

/// A router that does not retry and never opens a circuit, a channel whose receiver answers
/// `500`, and `count` events sent to it (each fails once, then is `failed`).
async fn failing_once(count: usize) -> (TestApp, Receiver, String) {
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Status(500));
    let app = spawn_app_with(|s| {
        s.retry_schedule = RetrySchedule::new(vec![]);
        s.breaker.failures = 100_000;
    })
    .await;
    let channel_id = app.soc_channel_for_contoso(&receiver).await["id"].as_str().unwrap().to_string();
    let events: Vec<Value> = (0..count).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
    assert_eq!(app.ingest(json!({ "events": events })).await.status, 202);
    (app, receiver, channel_id)
}

on_both_backends! {
    #[actix_web::test]
    async fn bulk_redelivery_of_500_failed_deliveries_arrives_at_the_channels_pace_and_all_succeed() {
        let (app, receiver, channel_id) = failing_once(500).await;
        receiver.wait_for(500, None, Duration::from_secs(20)).await;
        let app = &app;
        let count = |body: Value| async move { app.post("/api/v1/deliveries/redeliver", body).await };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let dry = count(json!({ "channel_id": channel_id, "dry_run": true })).await;
            assert_eq!(dry.status, 200, "{}", dry.body);
            if dry.body["count"] == 500 {
                break;
            }
            assert!(Instant::now() < deadline, "not all 500 failed: {}", dry.body);
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        receiver.reply_with(Reply::Status(200));
        let paced = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "rate_limit_per_second": 200 })).await;
        assert_eq!(paced.status, 200, "{}", paced.body);

        let answer = count(json!({ "channel_id": channel_id })).await;
        assert_eq!((answer.status, answer.body["count"].as_i64()), (202, Some(500)), "{}", answer.body);
        let got = receiver.wait_for(1000, None, Duration::from_secs(30)).await;
        // At the channel's pace (200/s), not all at once: 500 take at least 2.49 s.
        let times: Vec<Instant> = got[500..].iter().map(|c| c.at).collect();
        assert_paced(&times, Duration::from_millis(5), Duration::from_millis(250));
        let mut ids: Vec<&str> = got[500..].iter().map(|c| c.headers["webhook-id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 500, "each delivery redelivered once");
        // All succeeded, each with one manual attempt after its failed one, and nothing is left.
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(json!({ "channel_id": channel_id, "status": "succeeded", "dry_run": true })).await.body["count"] != 500 {
            assert!(Instant::now() < deadline, "not every redelivered delivery is recorded as succeeded");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let one = app.get(&format!("/api/v1/deliveries?channel_id={channel_id}&limit=1")).await.body["items"][0]["id"].as_str().unwrap().to_string();
        let delivery = app.delivery(&one).await;
        assert_eq!(delivery["attempts"][1]["trigger"], "manual", "{delivery:#}");
        assert_eq!(count(json!({ "channel_id": channel_id })).await.body["count"], 0, "nothing failed is left");
    }

    #[actix_web::test]
    async fn two_bulk_redeliveries_at_once_each_count_only_what_they_queued() {
        let (app, receiver, channel_id) = failing_once(60).await;
        let app = &app;
        let redeliver = |body: Value| async move { app.post("/api/v1/deliveries/redeliver", body).await };
        let deadline = Instant::now() + Duration::from_secs(20);
        while redeliver(json!({ "channel_id": channel_id, "dry_run": true })).await.body["count"] != 60 {
            assert!(Instant::now() < deadline, "not all 60 failed");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        receiver.reply_with(Reply::Status(200));
        let channel = format!("/api/v1/channels/{channel_id}");
        // The failed ones, then four times the succeeded ones: two requests at once each time.
        // The channel is disabled while they race, so no redelivered one can succeed again (and
        // be taken by the later request, as it should) before both have answered, however slowly
        // a loaded machine serves them.
        for (round, status) in ["failed", "succeeded", "succeeded", "succeeded", "succeeded"].into_iter().enumerate() {
            assert_eq!(app.patch(&channel, json!({ "enabled": false })).await.status, 200);
            let filter = json!({ "channel_id": channel_id, "status": status });
            let (a, b) = futures_util::future::join(redeliver(filter.clone()), redeliver(filter)).await;
            assert_eq!((a.status, b.status), (202, 202), "{} {}", a.body, b.body);
            let counts = (a.body["count"].as_i64().unwrap(), b.body["count"].as_i64().unwrap());
            assert_eq!(counts.0 + counts.1, 60, "round {round}: each answer counts what it queued, together the 60: {counts:?}");
            assert_eq!(receiver.received().len(), 60 * (round + 1), "round {round}: a disabled channel sends nothing");
            assert_eq!(app.patch(&channel, json!({ "enabled": true })).await.status, 200);
            receiver.wait_for(60 * (round + 2), None, Duration::from_secs(20)).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while redeliver(json!({ "channel_id": channel_id, "status": "succeeded", "dry_run": true })).await.body["count"] != 60 {
                assert!(Instant::now() < deadline, "not every redelivered delivery is recorded as succeeded");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut ids: Vec<String> = receiver.received().iter().map(|c| c.headers["webhook-id"].clone()).collect();
        ids.sort_unstable();
        assert_eq!(ids.len(), 360, "the first attempts, then each delivery once per redelivery");
        ids.dedup();
        assert_eq!(ids.len(), 60);
    }

    #[actix_web::test]
    async fn a_bulk_redelivery_that_fails_again_leaves_the_delivery_failed_without_retries() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        let app = spawn_app_with(|s| s.retry_schedule = RetrySchedule::new(vec![])).await;
        app.soc_channel_for_contoso(&receiver).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        app.wait_for_status(&delivery_id, "failed", Duration::from_secs(5)).await;
        let answer = app.post("/api/v1/deliveries/redeliver", json!({})).await;
        assert_eq!((answer.status, answer.body["count"].as_i64()), (202, Some(1)), "{}", answer.body);
        receiver.wait_for(2, None, Duration::from_secs(5)).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let delivery = loop {
            let delivery = app.delivery(&delivery_id).await;
            if delivery["attempt_count"] == 2 && delivery["status"] == "failed" {
                break delivery;
            }
            assert!(Instant::now() < deadline, "{delivery:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(delivery["attempts"][1]["trigger"], "manual");
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received().len(), 2, "a failed manual attempt is not retried");
    }

    #[actix_web::test]
    async fn a_410_disables_the_channel_another_channel_hears_of_it_and_enabling_it_resumes_the_backlog() {
        let gone = Receiver::start().await;
        gone.reply_with(Reply::Status(410));
        let ops = Receiver::start().await;
        let app = spawn_app_with(|s| s.delivery_concurrency = 1).await;
        let channel = app.soc_channel_for_contoso(&gone).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        app.create_rule(json!({"name": "Contoso", "tenant_id": "contoso", "event_types": ["permission.*"], "channel_ids": [&channel_id]})).await;
        let ops_channel = app.create_channel("Ops", &ops.url("/ops")).await;
        app.create_rule(json!({"name": "Router", "tenant_id": null, "event_types": ["router.*"], "channel_ids": [ops_channel["id"]]})).await;
        // Three events at once, before the first attempt is answered (a disabled channel gets no
        // new deliveries at all).
        let events: Vec<Value> = (0..3).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = app.ingest(json!({ "events": events })).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let deliveries: Vec<String> =
            answer.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect();
        // The router's own event reaches the other channel.
        let told = ops.wait_for(1, None, Duration::from_secs(10)).await;
        let event = told[0].json();
        assert_eq!(event["event"], "router.channel_disabled", "{event:#}");
        assert_eq!(event["severity"], "high");
        assert!(event["tenant"].is_null(), "{event:#}");
        assert_eq!(event["data"]["channel_id"], channel_id.as_str());
        assert_eq!(event["data"]["channel_name"], "SOC");
        assert!(event["data"]["reason"].as_str().unwrap().contains("410"), "{event:#}");
        let logged = app.get("/api/v1/deliveries?event_type=router.channel_disabled").await.body;
        assert_eq!(logged["items"].as_array().unwrap().len(), 1, "{logged:#}");
        assert!(logged["items"][0]["tenant_id"].is_null(), "{logged:#}");
        assert_eq!(logged["items"][0]["channel_id"], ops_channel["id"]);
        let read = app.get(&format!("/api/v1/channels/{channel_id}")).await.body;
        assert_eq!(read["enabled"], false, "{read:#}");
        assert!(read["disabled_reason"].as_str().unwrap().contains("410 Gone"), "{read:#}");
        assert!(read["disabled_at"].is_string(), "{read:#}");
        assert_eq!(gone.received().len(), 1, "one 410 is enough");
        // Nothing is lost: the deliveries wait, and flow once a person enables the channel.
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        for id in &deliveries {
            assert_eq!(app.delivery(id).await["status"], "pending");
        }
        assert_eq!(gone.received().len(), 1, "sent to a disabled channel");
        gone.reply_with(Reply::Status(200));
        let enabled = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "enabled": true })).await;
        assert_eq!(enabled.status, 200, "{}", enabled.body);
        assert!(enabled.body["disabled_reason"].is_null() && enabled.body["disabled_at"].is_null(), "{}", enabled.body);
        for id in &deliveries {
            app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
        }
        assert_eq!(ops.received().len(), 1, "told once");
    }

    #[actix_web::test]
    async fn a_channel_failing_for_disable_after_is_disabled_with_the_reason() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        let app = spawn_app_with(|s| {
            s.disable_after = Duration::from_secs(1);
            s.breaker = BreakerPolicy { failures: 1000, cooldown: Duration::from_secs(1) };
            s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse(&vec!["200ms"; 20].join(",")).unwrap();
        })
        .await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&channel_id]).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let read = loop {
            let read = app.get(&format!("/api/v1/channels/{channel_id}")).await.body;
            if read["enabled"] == false {
                break read;
            }
            assert!(Instant::now() < deadline, "never disabled: {read:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        };
        let reason = read["disabled_reason"].as_str().unwrap();
        assert!(reason.contains("failing without a success since") && reason.contains("DISABLE_AFTER 1s"), "{reason}");
        // By the router's own times: disabled a second or more after the first failure began.
        let first = &app.delivery(&delivery_id).await["attempts"][0];
        let span = ms(&read["disabled_at"]) - ms(&first["started_at"]);
        assert!(span >= 1_000, "disabled after failing for only {span} ms");
        assert_eq!(app.delivery(&delivery_id).await["status"], "pending", "the delivery waits for the channel");
    }

    #[actix_web::test]
    async fn a_rate_limit_of_5_per_second_holds_under_a_burst_of_100() {
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        let limited = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "rate_limit_per_second": 5 })).await;
        assert_eq!(limited.status, 200, "{}", limited.body);
        assert_eq!(limited.body["rate_limit_per_second"], 5);
        app.route_everything_to(&[&channel_id]).await;
        let events: Vec<Value> = (0..100).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        assert_eq!(app.ingest(json!({ "events": events })).await.status, 202);
        let got = receiver.wait_for(100, None, Duration::from_secs(40)).await;
        let mut times: Vec<Instant> = got.iter().map(|c| c.at).collect();
        times.sort();
        // One request every 200 ms: 100 take at least 19.6 s.
        assert_paced(&times, Duration::from_millis(200), Duration::from_millis(500));
        let total = times[99] - times[0];
        assert!(total < Duration::from_secs(25), "100 requests at 5/s took {total:?}");
        // Without the limit, the next burst goes at the channel's concurrency.
        let unlimited = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "rate_limit_per_second": null })).await;
        assert!(unlimited.body["rate_limit_per_second"].is_null(), "{}", unlimited.body);
        let events: Vec<Value> = (0..100).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        assert_eq!(app.ingest(json!({ "events": events })).await.status, 202);
        let started = Instant::now();
        receiver.wait_for(200, None, Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "the limit stayed after it was removed");
    }

    #[actix_web::test]
    async fn a_receiver_failing_every_request_gets_one_probe_per_cooldown_once_the_circuit_opens() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        let (app, channel_id, deliveries) = breaker_app(&receiver, 20).await;

        let opened = receiver.wait_for(5, None, Duration::from_secs(5)).await;
        let h = wait_for_health(&app, &channel_id, "open", |h| h["state"] == "open").await;
        assert_eq!(h["consecutive_failures"], 5, "{h:#}");
        assert!(h["open_until"].is_string(), "{h:#}");
        // Without the breaker, 20 deliveries × 4 attempts would keep coming every 100–400 ms.
        let fifth = opened[4].at;
        actix_web::rt::time::sleep(Duration::from_millis(700)).await;
        let while_open = receiver.received().iter().filter(|c| c.at > fifth && c.at < fifth + Duration::from_millis(900)).count();
        assert_eq!(while_open, 0, "attempts went on while the circuit was open");
        // Then one probe after 1 s, which fails and reopens it for 2 s, then the next probe.
        let got = receiver.wait_for(7, None, Duration::from_secs(6)).await;
        let (sixth, seventh) = (got[5].at, got[6].at);
        assert!(sixth - fifth >= Duration::from_millis(950), "first probe after {:?}", sixth - fifth);
        assert!(seventh - sixth >= Duration::from_millis(1950), "second probe after {:?}", seventh - sixth);
        assert!(seventh - sixth < Duration::from_millis(3500), "second probe after {:?}", seventh - sixth);
        assert_eq!(receiver.received().len(), 7, "more than one probe per cooldown");
        // The health is stored with the probe's attempt, a moment after the receiver saw it.
        wait_for_health(&app, &channel_id, "7 failures in a row", |h| h["consecutive_failures"] == 7).await;
        // The deliveries waiting behind the circuit did not use up their retries.
        for id in &deliveries {
            let delivery = app.delivery(id).await;
            assert_eq!(delivery["status"], "pending", "{delivery:#}");
            assert!(delivery["attempt_count"].as_i64().unwrap() <= 1, "{delivery:#}");
        }
    }

    #[actix_web::test]
    async fn a_successful_probe_closes_the_circuit_and_releases_the_backlog() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(503));
        let (app, channel_id, deliveries) = breaker_app(&receiver, 30).await;
        wait_for_health(&app, &channel_id, "open", |h| h["state"] == "open").await;
        receiver.reply_with(Reply::Status(200));
        // The probe succeeds, and every delivery then arrives.
        for id in &deliveries {
            app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
        }
        let h = wait_for_health(&app, &channel_id, "closed", |h| h["state"] == "closed").await;
        assert_eq!(h["consecutive_failures"], 0, "{h:#}");
        assert!(h["open_until"].is_null(), "{h:#}");
    }

    #[actix_web::test]
    async fn a_redelivery_or_test_that_succeeds_closes_an_open_circuit_and_the_backlog_flows_at_once() {
        for press in ["redeliver", "test"] {
            let (app, receiver, channel_id, answer) = open_circuit_with_a_backlog().await;
            let first = answer.body["results"][0]["deliveries"][0]["id"].as_str().unwrap().to_string();
            // A person fixes the receiver and presses Redeliver (or Test): it goes past the open
            // circuit, succeeds, and the circuit closes: the backlog does not wait ten minutes.
            receiver.reply_with(Reply::Status(200));
            let pressed = match press {
                "redeliver" => app.post(&format!("/api/v1/deliveries/{first}/redeliver"), json!({})).await,
                _ => app.post(&format!("/api/v1/channels/{channel_id}/test"), json!({})).await,
            };
            assert_eq!(pressed.status, 200, "{press}: {}", pressed.body);
            wait_for_health(&app, &channel_id, "closed", |h| h["state"] == "closed" && h["consecutive_failures"] == 0).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while app.get(&format!("/api/v1/deliveries?channel_id={channel_id}&status=succeeded&limit=100")).await.body["items"].as_array().unwrap().len() < 10 {
                assert!(Instant::now() < deadline, "{press}: the backlog did not flow after the circuit closed");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    #[actix_web::test]
    async fn enabling_a_channel_again_closes_its_circuit_and_its_backlog_flows_at_once() {
        let (app, receiver, channel_id, _) = open_circuit_with_a_backlog().await;
        receiver.reply_with(Reply::Status(200));
        let disabled = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "enabled": false })).await;
        assert_eq!(disabled.body["health"]["state"], "open", "disabling keeps the circuit: {}", disabled.body);
        let enabled = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({ "enabled": true })).await;
        assert_eq!(enabled.body["health"]["state"], "closed", "{}", enabled.body);
        // Not ten minutes: the ten deliveries arrive now.
        let got = receiver.wait_for(13, None, Duration::from_secs(5)).await;
        assert_eq!(got.iter().filter(|c| c.answered == Some(200)).count(), 10);
    }
}

#[actix_web::test]
async fn an_open_circuit_survives_a_restart_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("router.db").to_string_lossy().into_owned();
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Status(500));
    let env = [
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INGEST_TOKEN", INGEST_TOKEN),
        ("BREAKER_FAILURES", "3"),
        ("BREAKER_COOLDOWN", "60s"),
        ("DELIVERY_CONCURRENCY", "1"),
    ];
    let (mut router, _, _) = start_router_with(&database, &env);
    let api = router.api.with_token(Some(ADMIN_TOKEN));
    let channel = api.soc_channel_for_contoso(&receiver).await;
    let channel_id = channel["id"].as_str().unwrap().to_string();
    api.route_everything_to(&[&channel_id]).await;
    for _ in 0..5 {
        assert_eq!(api.ingest(permission_event("contoso", "permission.external_share_created", "high")).await.status, 202);
    }
    receiver.wait_for(3, None, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.get(&format!("/api/v1/channels/{channel_id}")).await.body["health"]["state"] != "open" {
        assert!(Instant::now() < deadline, "the circuit did not open");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    router.stop();

    let (router, _, _) = start_router_with(&database, &env);
    let api = router.api.with_token(Some(ADMIN_TOKEN));
    let health = api.get(&format!("/api/v1/channels/{channel_id}")).await.body["health"].clone();
    assert_eq!(health["state"], "open", "{health:#}");
    assert_eq!(health["consecutive_failures"], 3, "{health:#}");
    // Deliveries are due every 200 ms (the test schedule), but the circuit holds them back.
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 3, "attempts were sent through an open circuit after the restart");
}

#[actix_web::test]
async fn a_disabled_channel_whose_event_was_lost_to_a_crash_is_told_once_at_the_next_start() {
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("router.db").to_string_lossy().into_owned();
    let gone = Receiver::start().await;
    let ops = Receiver::start().await;
    let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN)];
    let (mut router, _, _) = start_router_with(&database, &env);
    let api = router.api.with_token(Some(ADMIN_TOKEN));
    let channel = api.create_channel("Old ticketing", &gone.url("/")).await;
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let ops_channel = api.create_channel("Ops", &ops.url("/ops")).await;
    api.create_rule(json!({"name": "Router", "tenant_id": null, "event_types": ["router.*"], "channel_ids": [ops_channel["id"]]})).await;
    router.stop();
    // What a crash right after the disabling commit leaves: disabled with a reason, not told.
    let mut conn = diesel::SqliteConnection::establish(&database).unwrap();
    diesel::sql_query("UPDATE channels SET enabled = 0, disabled_reason = 'the receiver answered 410 Gone: the URL is gone for good', disabled_at = 1 WHERE id = ?")
        .bind::<diesel::sql_types::Text, _>(&channel_id)
        .execute(&mut conn)
        .unwrap();
    drop(conn);

    let (router, _, _) = start_router_with(&database, &env);
    let told = ops.wait_for(1, None, Duration::from_secs(10)).await;
    let event = told[0].json();
    assert_eq!(event["event"], "router.channel_disabled", "{event:#}");
    assert_eq!(event["data"]["channel_id"], channel_id.as_str());
    // Reloads (any change) and a second start do not tell again.
    let api = router.api.with_token(Some(ADMIN_TOKEN));
    assert_eq!(api.patch(&format!("/api/v1/channels/{}", ops_channel["id"].as_str().unwrap()), json!({"name": "Ops room"})).await.status, 200);
    drop(router);
    let (_router, _, _) = start_router_with(&database, &env);
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    // The router is dropped (killed) right after the notice arrived: if its outcome was not yet
    // written, the same notice is delivered again (at least once); a second notice is a new event.
    let notices: std::collections::HashSet<String> = ops.received().iter().map(|r| r.headers["webhook-id"].clone()).collect();
    assert_eq!(notices.len(), 1, "told more than once: {notices:?}");
}
