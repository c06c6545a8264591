//! The real binary: crash safety (SIGKILL while deliveries are pending, restart, nothing lost),
//! bad settings, tokens generated on the first start, and logs that never show a secret.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    for (variable, value) in [("RETRY_SCHEDULE", "30s,soon"), ("BIND_ADDR", "localhost"), ("DELIVERY_TIMEOUT", "forever")] {
        let output = Command::new(env!("CARGO_BIN_EXE_spscan-router"))
            .env(variable, value)
            .env("DATABASE_URL", ":memory:")
            .output()
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(variable) && stderr.contains(value), "{stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_spscan-router")).arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8(output.stderr).unwrap().trim_end().lines().count(), 1);
}

#[actix_web::test]
async fn a_sqlite_database_of_the_previous_release_upgrades_in_place_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("router.db").to_string_lossy().into_owned();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/router-0.1.0-sqlite.db"), &database).unwrap();
    let receiver = Receiver::start().await;
    let (router, log, _) = start_router_with(
        &database,
        &[("ADMIN_TOKEN", "fixture-admin-token-0123456789"), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info")],
    );
    let api = router.api.with_token(Some("fixture-admin-token-0123456789"));
    // Every channel now points at the receiver; only the pending delivery may arrive.
    for channel in api.get("/api/v1/channels").await.body["items"].as_array().unwrap() {
        let name = channel["name"].as_str().unwrap().to_lowercase();
        let moved = api.patch(&format!("/api/v1/channels/{}", channel["id"].as_str().unwrap()), json!({"url": receiver.url(&format!("/{name}"))})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
    }
    let status_of = |body: &serde_json::Value, event_id: &str| {
        body["items"].as_array().unwrap().iter().find(|d| d["event_id"] == event_id).map(|d| (d["status"].clone(), d["attempt_count"].clone()))
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = api.get("/api/v1/deliveries").await.body;
        if status_of(&log, "upgrade-pending").is_some_and(|(status, _)| status == "succeeded") {
            assert_eq!(status_of(&log, "upgrade-succeeded"), Some((json!("succeeded"), json!(1))), "history kept");
            assert_eq!(status_of(&log, "upgrade-failed"), Some((json!("failed"), json!(3))), "history kept");
            break;
        }
        assert!(Instant::now() < deadline, "the delivery pending before the upgrade was not delivered: {log:#}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Past several retry periods: the pending one arrived once, nothing final was sent again.
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    let got: Vec<String> = receiver.received().iter().map(|c| c.headers["webhook-id"].clone()).collect();
    assert_eq!(got, ["upgrade-pending"], "only the pending delivery is sent, once");
    // The new routes work on the upgraded database.
    assert_eq!(api.get("/api/v1/instances").await.body["items"].as_array().unwrap().len(), 1);
    assert!(log.lock().unwrap().contains("listening on"));
}

on_both_backends! {
    #[actix_web::test]
    async fn a_router_killed_with_sigkill_loses_no_acknowledged_event() {
        let database = TestDatabase::new();
        let database = database.url.clone();
        let failing = Receiver::start().await;
        failing.reply_with(Reply::Status(503));
        let hanging = Receiver::start().await;
        hanging.reply_with(Reply::Hang);

        let mut first = start_router(&database);
        let api = &first.api;
        api.create_tenant("contoso").await;
        let a = api.create_channel("Failing", &failing.url("/")).await;
        let b = api.create_channel("Hanging", &hanging.url("/")).await;
        api.route_everything_to(&[a["id"].as_str().unwrap(), b["id"].as_str().unwrap()]).await;

        let mut acknowledged = Vec::new();
        for i in 0..10 {
            let mut event = permission_event("contoso", "permission.external_share_created", "high");
            event["event_id"] = json!(format!("single-{i}"));
            let answer = api.ingest(event).await;
            assert_eq!(answer.status, 202);
            acknowledged.push(answer.body["event_id"].as_str().unwrap().to_string());
        }
        let batch: Vec<_> = (0..20)
            .map(|i| {
                let mut event = permission_event("contoso", "permission.anonymous_link_created", "critical");
                event["event_id"] = json!(format!("batch-{i}"));
                event
            })
            .collect();
        let answer = api.ingest(json!({ "events": batch })).await;
        assert_eq!(answer.status, 202);
        acknowledged.extend(answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()));
        assert_eq!(acknowledged.len(), 30);

        // Deliveries are in flight or waiting for a retry when the process dies.
        failing.wait_for(30, None, Duration::from_secs(20)).await;
        hanging.wait_for(1, None, Duration::from_secs(20)).await;
        first.child.kill().expect("SIGKILL");
        first.child.wait().unwrap();

        failing.reply_with(Reply::Status(200));
        hanging.reply_with(Reply::Status(200));
        let mut second = start_router(&database);

        for receiver in [&failing, &hanging] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let mut delivered: Vec<String> = receiver
                    .received()
                    .iter()
                    .filter(|c| c.answered == Some(200))
                    .map(|c| c.json()["event_id"].as_str().unwrap().to_string())
                    .collect();
                delivered.sort();
                delivered.dedup();
                if delivered.len() == acknowledged.len() {
                    break;
                }
                assert!(Instant::now() < deadline, "only {} of 30 events delivered after the restart", delivered.len());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pending = second.api.get("/api/v1/deliveries?status=pending&limit=500").await;
            if pending.body["items"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "deliveries still pending: {}", pending.body);
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let succeeded = second.api.get("/api/v1/deliveries?status=succeeded&limit=500").await;
        assert_eq!(succeeded.body["items"].as_array().unwrap().len(), 60, "30 events x 2 channels");
        second.child.kill().unwrap();
        second.child.wait().unwrap();
    }

    #[actix_web::test]
    async fn unset_tokens_are_generated_once_printed_once_and_kept_only_as_hashes() {
        let database = TestDatabase::new();
        let database = database.url.clone();
        let (mut first, log, printed) = start_router_with(&database, &[("RUST_LOG", "trace")]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !printed.lock().unwrap().contains("INGEST_TOKEN=") {
            assert!(Instant::now() < deadline, "the tokens were not printed: {}", printed.lock().unwrap());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let text = printed.lock().unwrap().clone();
        let token = |name: &str| text.lines().find_map(|l| l.trim().strip_prefix(&format!("{name}="))).unwrap().to_string();
        let (admin, ingest) = (token("ADMIN_TOKEN"), token("INGEST_TOKEN"));
        assert!(admin.starts_with("spr_admin_") && ingest.starts_with("spr_ingest_"));
        let api = first.api.with_token(Some(&admin));
        assert_eq!(api.get("/api/v1/channels").await.status, 200);
        assert_eq!(first.api.with_token(Some(&ingest)).get("/api/v1/channels").await.status, 403);
        assert_eq!(first.api.with_token(None).get("/api/v1/channels").await.status, 401);
        first.stop();
        let logged = log.lock().unwrap().clone();
        assert!(!logged.contains(&admin) && !logged.contains(&ingest), "the log never shows a token");
        let stored = everything_stored(&database);
        for token in [&admin, &ingest] {
            assert!(!stored.windows(token.len()).any(|w| w == token.as_bytes()), "the database holds no token");
        }

        // A restart keeps the same tokens and prints nothing.
        let (second, _, printed_again) = start_router_with(&database, &[("RUST_LOG", "info")]);
        assert_eq!(second.api.with_token(Some(&admin)).get("/api/v1/channels").await.status, 200);
        assert!(!printed_again.lock().unwrap().contains("TOKEN="), "printed once only");
    }

    #[actix_web::test]
    async fn a_router_killed_while_splunk_batches_are_in_flight_delivers_every_event_after_the_restart() {
        let database = TestDatabase::new();
        let database = database.url.clone();
        let hec = crate::siem::VendorReceiver::start(crate::siem::hec);
        hec.with(|v| v.hang = true);
        let mut first = start_router(&database);
        first.api.create_tenant("contoso").await;
        let channel = first
            .api
            .post("/api/v1/channels", json!({"name": "Splunk", "type": "splunk", "url": hec.base, "token": crate::siem::HEC_TOKEN,
                "index": "security", "batch_size": 50, "batch_wait": "50ms"}))
            .await;
        assert_eq!(channel.status, 201, "{}", channel.body);
        first.api.route_everything_to(&[channel.body["id"].as_str().unwrap()]).await;
        let events: Vec<_> = (0..200).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = first.api.ingest(json!({ "events": events })).await;
        assert_eq!(answer.status, 202);
        let acknowledged: std::collections::HashSet<String> =
            answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()).collect();

        // Every event is in a request the HEC has read and not answered when the router dies.
        let deadline = Instant::now() + Duration::from_secs(20);
        while hec.with(|v| v.hanging) < 200 {
            assert!(Instant::now() < deadline, "the batches never reached the HEC");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        first.child.kill().expect("SIGKILL");
        first.child.wait().unwrap();
        hec.with(|v| v.hang = false);
        let mut second = start_router(&database);
        let arrived = hec.wait_for_events(200).await;
        assert_eq!(arrived.iter().cloned().collect::<std::collections::HashSet<_>>(), acknowledged);
        assert_eq!(arrived.len(), 200, "each event answered once, after the restart");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !second.api.get("/api/v1/deliveries?status=pending").await.body["items"].as_array().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "deliveries still pending after every event arrived");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        second.child.kill().unwrap();
        second.child.wait().unwrap();
    }

    #[actix_web::test]
    async fn secrets_and_tokens_never_reach_the_log() {
        let database = TestDatabase::new();
        let database = database.url.clone();
        let receiver = Receiver::start().await;
        let (mut router, log, _) =
            start_router_with(&database, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "trace")]);
        let api = &router.api;
        api.create_tenant("contoso").await;
        let channel = api.post("/api/v1/channels", json!({"name": "SOC", "url": receiver.url("/"), "headers": {"X-Api-Key": "custom-header-secret-123"}})).await.body;
        let id = channel["id"].as_str().unwrap();
        let rotated = api.post(&format!("/api/v1/channels/{id}/rotate-secret"), json!({})).await.body;
        api.route_everything_to(&[id]).await;
        assert_eq!(api.post(&format!("/api/v1/channels/{id}/test"), json!({})).await.body["ok"], true);
        api.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        receiver.wait_for(2, None, Duration::from_secs(10)).await;
        // Vendor channels: a Slack URL, a HEC token, an app registration's secret and its token,
        // through a create, a Test and a token refused by the receiver.
        let slack = api.post("/api/v1/channels", json!({"name": "Slack", "type": "slack", "url": receiver.url("/services/T1/B1/slack-url-secret-77")})).await.body;
        assert_eq!(api.post(&format!("/api/v1/channels/{}/test", slack["id"].as_str().unwrap()), json!({})).await.body["ok"], true);
        let hec = crate::siem::VendorReceiver::start(crate::siem::hec);
        let splunk = api.post("/api/v1/channels", json!({"name": "Splunk", "type": "splunk", "url": hec.base, "token": "hec-token-secret-0042"})).await.body;
        assert_eq!(api.post(&format!("/api/v1/channels/{}/test", splunk["id"].as_str().unwrap()), json!({})).await.body["error_kind"], "http_status");
        let azure = crate::siem::VendorReceiver::start(crate::siem::azure);
        let sentinel = api
            .post("/api/v1/channels", json!({"name": "Sentinel", "type": "sentinel", "endpoint": azure.base, "dcr_immutable_id": crate::siem::DCR,
                "stream_name": crate::siem::STREAM, "directory_id": crate::siem::DIRECTORY, "client_id": crate::siem::CLIENT_ID,
                "client_secret": crate::siem::CLIENT_SECRET, "authority": azure.base}))
            .await
            .body;
        azure.with(|v| v.expire_token = true);
        assert_eq!(api.post(&format!("/api/v1/channels/{}/test", sentinel["id"].as_str().unwrap()), json!({})).await.body["ok"], true);
        let issued = azure.with(|v| v.tokens.clone());
        assert_eq!(issued.len(), 2, "one token refused, one more fetched");
        api.with_token(Some("a-wrong-token-that-is-long")).get("/api/v1/channels").await;
        router.stop();
        let log = log.lock().unwrap().clone();
        assert!(log.lines().count() > 10, "trace logging was on: {log}");
        let secrets = [
            channel["secret"].as_str().unwrap(),
            rotated["secret"].as_str().unwrap(),
            ADMIN_TOKEN,
            INGEST_TOKEN,
            "a-wrong-token-that-is-long",
            "custom-header-secret-123",
            "outsider@example.net",
            "slack-url-secret-77",
            "hec-token-secret-0042",
            crate::siem::CLIENT_SECRET,
            &issued[0],
            &issued[1],
        ];
        for secret in secrets {
            assert!(!log.contains(secret), "the log shows a secret");
            let body = secret.strip_prefix("whsec_").unwrap_or(secret);
            assert!(!log.contains(body), "the log shows a secret's body");
        }
    }
}

/// SIGTERM during load (SPEC section 15).
mod graceful {
    use super::*;

    on_both_backends! {
        #[actix_web::test]
        async fn sigterm_during_load_exits_0_within_the_grace_records_what_was_in_flight_and_loses_nothing() {
            let database = TestDatabase::new();
            let database = database.url.clone();
            let receiver = Receiver::start().await;
            // Each answer takes 400 ms: attempts are in flight when the signal comes.
            receiver.reply_with(Reply::Slow(400, 200));
            let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info"), ("SHUTDOWN_GRACE", "5s"), ("DELIVERY_CONCURRENCY", "4")];
            let (mut first, log, _) = start_router_with(&database, &env);
            first.api.create_tenant("contoso").await;
            let channel = first.api.create_channel("SOC", &receiver.url("/")).await;
            first.api.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            let mut acknowledged = Vec::new();
            for i in 0..40 {
                let mut event = permission_event("contoso", "permission.external_share_created", "high");
                event["event_id"] = json!(format!("graceful-{i}"));
                let answer = first.api.ingest(event).await;
                assert_eq!(answer.status, 202, "{}", answer.body);
                acknowledged.push(format!("graceful-{i}"));
            }
            receiver.wait_for(4, None, Duration::from_secs(10)).await;
            // A Test press waiting on a receiver that never answers (30 s timeout) must not
            // keep the grace from the attempts in flight.
            let hanging = Receiver::start().await;
            hanging.reply_with(Reply::Hang);
            let stuck = first.api.create_channel("Stuck", &hanging.url("/")).await["id"].as_str().unwrap().to_string();
            let tester = first.api.with_token(Some(ADMIN_TOKEN));
            let test_path = format!("/api/v1/channels/{stuck}/test");
            actix_web::rt::spawn(async move {
                let _ = tester.post(&test_path, json!({})).await;
            });
            hanging.wait_for(1, None, Duration::from_secs(10)).await;
            let signalled = Instant::now();
            let killed = Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
            assert!(killed.success());
            let status = loop {
                if let Some(status) = first.child.try_wait().unwrap() {
                    break status;
                }
                assert!(signalled.elapsed() < Duration::from_secs(7), "still running {:?} after SIGTERM with a 5 s grace", signalled.elapsed());
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(status.success(), "exit status {status:?}");
            first.stop();
            let sent_before = receiver.received().len();
            assert!(sent_before < acknowledged.len(), "the stop came while deliveries were still to be sent");
            {
                let log = log.lock().unwrap();
                assert!(log.contains("SIGTERM received") && log.contains("stopped: every attempt in flight was recorded"), "{log}");
            }
            // Connections are refused once it has stopped.
            assert!(http_client().get(format!("{}/healthz", first.api.base)).send().await.is_err());

            receiver.reply_with(Reply::Status(200));
            let second = start_router_with(&database, &env).0;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let succeeded = second.api.get("/api/v1/deliveries?status=succeeded&limit=500").await.body["items"].as_array().unwrap().len();
                if succeeded == acknowledged.len() {
                    break;
                }
                assert!(Instant::now() < deadline, "{succeeded} of {} delivered after the restart", acknowledged.len());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            // Every event arrived exactly once, and every request sent is one recorded attempt.
            let mut got: Vec<String> = receiver.received().iter().map(|c| c.json()["event_id"].as_str().unwrap().to_string()).collect();
            got.sort();
            let mut expected = acknowledged.clone();
            expected.sort();
            assert_eq!(got, expected, "each event once: the attempts in flight at the stop were recorded, not sent again");
            let mut attempts = 0;
            for item in second.api.get("/api/v1/deliveries?limit=500").await.body["items"].as_array().unwrap() {
                attempts += second.api.delivery(item["id"].as_str().unwrap()).await["attempts"].as_array().unwrap().len();
            }
            assert_eq!(attempts, acknowledged.len(), "one attempt recorded per request sent");
        }
        #[actix_web::test]
        async fn sigterm_while_clients_ingest_loses_no_acknowledged_event() {
            let database = TestDatabase::new();
            let database = database.url.clone();
            let receiver = Receiver::start().await;
            let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info"), ("SHUTDOWN_GRACE", "5s")];
            let (mut first, log, _) = start_router_with(&database, &env);
            first.api.create_tenant("contoso").await;
            let channel = first.api.create_channel("SOC", &receiver.url("/")).await;
            first.api.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            // Eight clients ingest batches of ten as fast as they can; the stop comes mid-stream.
            let acknowledged = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let mut clients = Vec::new();
            for client in 0..8 {
                let (api, acknowledged) = (first.api.with_token(Some(INGEST_TOKEN)), acknowledged.clone());
                clients.push(actix_web::rt::spawn(async move {
                    for batch in 0.. {
                        let events = contoso_shares(&format!("stream-{client}-{batch}"), 10);
                        let request = http_client()
                            .post(format!("{}/api/v1/events", api.base))
                            .insert_header(("Authorization", format!("Bearer {INGEST_TOKEN}")))
                            .send_json(&json!({ "events": events }));
                        match request.await {
                            Ok(response) if response.status().as_u16() == 202 => {
                                acknowledged.borrow_mut().extend(events.iter().map(|e| e["event_id"].as_str().unwrap().to_string()));
                            }
                            // Refused or cut off: not acknowledged, so the client would send it again.
                            _ => break,
                        }
                    }
                }));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while acknowledged.borrow().len() < 500 {
                assert!(Instant::now() < deadline, "ingestion is under way");
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            }
            let killed = Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
            assert!(killed.success());
            let status = first.child.wait().unwrap();
            assert!(status.success(), "exit status {status:?}: {}", log.lock().unwrap());
            for client in clients {
                client.await.unwrap();
            }
            first.stop();
            let acknowledged: Vec<String> = acknowledged.borrow().clone();

            let second = start_router_with(&database, &env).0;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let mut got: Vec<String> = receiver.received().iter().map(|c| c.json()["event_id"].as_str().unwrap().to_string()).collect();
                got.sort();
                got.dedup();
                let missing = acknowledged.iter().filter(|id| got.binary_search(id).is_err()).count();
                if missing == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{missing} of {} acknowledged events never arrived", acknowledged.len());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            drop(second);
        }
    }

    /// One walk-through in 13 ended, after "stopped: every attempt in flight was recorded", in a
    /// panic on an HTTP worker's thread (`AccessError`): the process exited while that thread was
    /// still ending. Fifty stops in a row on one database, each under light load (attempts in
    /// flight to a slow receiver, reads from clients that give up just after the signal): each
    /// exits 0 and nothing panics.
    #[actix_web::test]
    async fn stopping_the_router_fifty_times_under_light_load_never_panics() {
        let database = TestDatabase::on(Backend::Sqlite);
        let fast = Receiver::start().await;
        let slow = Receiver::start().await;
        slow.reply_with(Reply::Slow(200, 200));
        // One pooled connection: the reads queue behind each other on the workers' blocking threads.
        let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info"), ("DATABASE_POOL_SIZE", "1")];
        for run in 1..=50 {
            let (mut router, log, _) = start_router_with(&database.url, &env);
            let api = &router.api;
            if run == 1 {
                api.create_tenant("contoso").await;
                let fast_channel = api.create_channel("Fast", &fast.url("/")).await;
                let slow_channel = api.create_channel("Slow", &slow.url("/")).await;
                api.route_everything_to(&[fast_channel["id"].as_str().unwrap(), slow_channel["id"].as_str().unwrap()]).await;
            }
            let reached = slow.received().len();
            for _ in 0..3 {
                let answer = api.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
                assert_eq!(answer.status, 202, "{}", answer.body);
            }
            slow.wait_for(reached + 1, None, Duration::from_secs(10)).await;
            // Reads sent as the signal comes, whose clients give up just after: the HTTP workers
            // end at their next shutdown check, as the main thread's stop completes, each joining
            // the blocking threads its queued reads hold on its way out.
            let no_body = json!({});
            let gave_up = futures_util::future::join_all(
                (0..20).map(|_| send_and_reset(&api.base, "GET", "/api/v1/deliveries?limit=500", &no_body, Duration::from_millis(50))),
            );
            let signalled = Instant::now();
            let signal = async { assert!(Command::new("kill").args(["-TERM", &router.child.id().to_string()]).status().unwrap().success()) };
            futures_util::future::join(gave_up, signal).await;
            let status = loop {
                if let Some(status) = router.child.try_wait().unwrap() {
                    break status;
                }
                assert!(signalled.elapsed() < Duration::from_secs(15), "stop {run}: still running {:?} after SIGTERM", signalled.elapsed());
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            };
            // Everything it wrote is read once its output is closed.
            router.stop();
            let log = log.lock().unwrap();
            assert!(status.success(), "stop {run}: exit status {status:?}\n{log}");
            assert!(log.contains("stopped: every attempt in flight was recorded"), "stop {run}:\n{log}");
            assert!(!log.contains("panicked") && !log.contains("AccessError"), "stop {run} panicked:\n{log}");
        }
    }
}

/// Office 365 content across a kill and restarts.
mod office_365 {
    use super::*;

    /// The real binary's settings with the Office 365 source pointed at `feed`.
    fn router_env(feed: &crate::o365_feed::ManagementApi, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = vec![("ADMIN_TOKEN", ADMIN_TOKEN.into()), ("INGEST_TOKEN", INGEST_TOKEN.into()), ("RUST_LOG", "info".into())];
        env.extend(feed.env());
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    }

    /// Tenant `contoso` (its audit records' tenant), a channel at `receiver` and a rule sending
    /// it every event.
    async fn alert_contoso_at(api: &Api, receiver: &Receiver) {
        let tenant = api.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": crate::o365::CONTOSO_GUID})).await;
        assert_eq!(tenant.status, 201, "{}", tenant.body);
        let channel = api.create_channel("SOC", &receiver.url("/")).await;
        api.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
    }

    on_both_backends! {
        #[actix_web::test]
        async fn a_router_stopped_while_office_365_notifications_arrive_catches_up_on_start_missing_and_doubling_nothing() {
            use crate::o365_feed::*;
            let database = TestDatabase::new();
            let database = database.url.clone();
            let feed = ManagementApi::start();
            let receiver = Receiver::start().await;
            let env = router_env(&feed, &[]);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

            let (mut first, first_log, _) = start_router_with(&database, &env);
            let api = &first.api;
            alert_contoso_at(api, &receiver).await;

            // A blob notified and alerted on while the router runs.
            let before = feed.publish("c-before", click(1));
            assert_eq!(notify(api, Some(AUTH_ID), json!([before])).await.body["kept"], 1);
            wait_for_content(api, "c-before", "done").await;
            let first_delivery = api.get("/api/v1/deliveries").await.body["items"][0]["id"].as_str().unwrap().to_string();
            api.wait_for_status(&first_delivery, "succeeded", Duration::from_secs(10)).await;
            // A blob whose fetch hangs when the router is killed: kept (acknowledged), not fetched.
            feed.with(|p| p.hang_blobs = true);
            let hanging = feed.publish("c-hanging", click(2));
            assert_eq!(notify(api, Some(AUTH_ID), json!([hanging])).await.body["kept"], 1);
            let deadline = Instant::now() + Duration::from_secs(10);
            while feed.fetches("c-hanging") == 0 {
                assert!(Instant::now() < deadline, "the hanging blob is being fetched");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            first.child.kill().expect("SIGKILL");
            first.child.wait().unwrap();
            first.stop();
            feed.with(|p| p.hang_blobs = false);

            // While it is down, content piles up and its notifications go nowhere.
            for n in 3..=6 {
                let notification = feed.publish(&format!("c-down-{n}"), click(n));
                let sent = http_client()
                    .post(format!("{}/api/v1/sources/o365/notifications", first.api.base))
                    .insert_header(("Webhook-AuthID", AUTH_ID))
                    .send_json(&json!([notification]))
                    .await;
                assert!(sent.is_err(), "the router is down");
            }

            let (mut second, second_log, _) = start_router_with(&database, &env);
            for content in ["c-hanging", "c-down-3", "c-down-4", "c-down-5", "c-down-6"] {
                wait_for_content(&second.api, content, "done").await;
            }
            let expected: Vec<String> = (1..=6).map(click_event).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut got = delivered(&receiver);
                got.sort();
                if got.len() >= expected.len() {
                    assert_eq!(got, expected, "every click alerted on once, across the kill and the restart");
                    break;
                }
                assert!(Instant::now() < deadline, "only {got:?} arrived");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(feed.fetches("c-before"), 1, "a blob fetched before the kill is not fetched again");
            assert_eq!(feed.fetches("c-hanging"), 2, "the fetch the kill cut off, then once more");
            assert!((3..=6).all(|n| feed.fetches(&format!("c-down-{n}")) == 1));
            second.stop();

            // A third start lists everything again and finds nothing new.
            let listings = feed.with(|p| p.listings.len());
            let (third, third_log, _) = start_router_with(&database, &env);
            let deadline = Instant::now() + Duration::from_secs(10);
            while feed.with(|p| p.listings.len()) == listings {
                assert!(Instant::now() < deadline, "the third start lists the content");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            let contents = third.api.get("/api/v1/sources/o365/contents").await.body["items"].as_array().unwrap().len();
            assert_eq!(contents, 6);
            assert_eq!(delivered(&receiver).len(), 6, "nothing alerted twice");
            for log in [first_log, second_log, third_log] {
                let log = log.lock().unwrap();
                assert!(!log.contains(crate::siem::CLIENT_SECRET) && !log.contains(AUTH_ID), "a secret reached the log:\n{log}");
            }
        }

        /// SIGTERM while the fetcher waits on a blob: the router exits 0 within its grace (the
        /// fetch does not hold the stop), the blob stays acknowledged and is fetched at the next
        /// start, and its click alerts once.
        #[actix_web::test]
        async fn a_router_stopped_with_sigterm_mid_blob_exits_in_its_grace_and_fetches_the_blob_at_the_next_start() {
            use crate::o365_feed::*;
            let database = TestDatabase::new();
            let database = database.url.clone();
            let feed = ManagementApi::start();
            let receiver = Receiver::start().await;
            let env = router_env(&feed, &[("SHUTDOWN_GRACE", "3s")]);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

            let (mut first, first_log, _) = start_router_with(&database, &env);
            let api = &first.api;
            alert_contoso_at(api, &receiver).await;
            feed.with(|p| p.hang_blobs = true);
            let hanging = feed.publish("c-hanging", click(1));
            assert_eq!(notify(api, Some(AUTH_ID), json!([hanging])).await.body["kept"], 1);
            let deadline = Instant::now() + Duration::from_secs(10);
            while feed.fetches("c-hanging") == 0 {
                assert!(Instant::now() < deadline, "the hanging blob is being fetched");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            let signalled = Instant::now();
            assert!(Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap().success());
            let status = loop {
                if let Some(status) = first.child.try_wait().unwrap() {
                    break status;
                }
                assert!(signalled.elapsed() < Duration::from_secs(5), "still running {:?} after SIGTERM with a 3 s grace", signalled.elapsed());
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(status.success(), "exit status {status:?}\n{}", first_log.lock().unwrap());
            first.stop();
            assert_eq!(delivered(&receiver).len(), 0, "the hanging blob was not ingested");

            feed.with(|p| p.hang_blobs = false);
            let (second, _, _) = start_router_with(&database, &env);
            wait_for_content(&second.api, "c-hanging", "done").await;
            let deadline = Instant::now() + Duration::from_secs(20);
            while delivered(&receiver).is_empty() {
                assert!(Instant::now() < deadline, "the click arrives after the restart");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(delivered(&receiver), vec![click_event(1)], "the click alerted once");
            assert_eq!(feed.fetches("c-hanging"), 2, "the fetch the stop cut off, then once more");
        }
    }
}
