//! An event's journey: ingestion to every target channel, exact payload, valid signature.

use std::time::Duration;

use serde_json::json;
use spscan_router::domain::event::EventInput;

use crate::helpers::*;

on_both_backends! {
    #[actix_web::test]
    async fn a_matching_event_reaches_every_target_channel_with_the_exact_payload_and_a_valid_signature() {
        let app = spawn_app().await;
        let soc = Receiver::start().await;
        let ticketing = Receiver::start().await;
        let soc_channel = app.create_channel("SOC", &soc.url("/hooks/soc")).await;
        let ticket_channel = app.create_channel("Tickets", &ticketing.url("/hooks/tickets")).await;
        let soc_id = soc_channel["id"].as_str().unwrap();
        let ticket_id = ticket_channel["id"].as_str().unwrap();
        assert!(soc_channel["secret"].as_str().unwrap().starts_with("whsec_"));
        app.create_rule(json!({"name": "External shares", "tenant_id": null, "event_types": ["permission.*"],
                               "min_severity": "medium", "channel_ids": [soc_id, ticket_id], "enabled": true}))
            .await;

        let event = json!({
            "event_id": "evt_01JD7Y2Q8V3K4M5N6P7Q8R9S0T",
            "event": "permission.external_share_created",
            "timestamp": "2026-11-28T15:36:08Z",
            "severity": "high",
            "tenant": {"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"},
            "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance", "resource_path": "Shared Documents/Q3 forecast.xlsx",
                     "permission_type": "specific_people_link", "principal": "outsider@example.net", "access_level": "edit"}
        });
        let answer = app.ingest(event.clone()).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert_eq!(answer.body["event_id"], "evt_01JD7Y2Q8V3K4M5N6P7Q8R9S0T");
        assert_eq!(answer.body["duplicate"], false);
        assert_eq!(answer.body["deliveries"].as_array().unwrap().len(), 2);

        for (receiver, channel) in [(&soc, &soc_channel), (&ticketing, &ticket_channel)] {
            let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
            let request = &got[0];
            assert_eq!(request.json(), event, "the payload is exactly the event as ingested");
            assert_eq!(request.headers["content-type"], "application/json");
            assert!(request.headers["user-agent"].starts_with("SPScan-Alert-Router/"));
            assert_eq!(request.headers["webhook-id"], "evt_01JD7Y2Q8V3K4M5N6P7Q8R9S0T");
            assert!(signature_is_valid(channel["secret"].as_str().unwrap(), request), "signature verifies with the channel's secret");
            assert!(!signature_is_valid(if channel == &soc_channel { &ticket_channel } else { &soc_channel }["secret"].as_str().unwrap(), request));
        }

        // The tenant object registered the tenant.
        let tenant = app.get("/api/v1/tenants/contoso").await;
        assert_eq!(tenant.body["display_name"], "Contoso Ltd");
        // And the log shows both deliveries succeeded after one attempt.
        for d in answer.body["deliveries"].as_array().unwrap() {
            let delivery = app.wait_for_status(d["id"].as_str().unwrap(), "succeeded", Duration::from_secs(5)).await;
            assert_eq!(delivery["attempt_count"], 1);
            assert_eq!(delivery["attempts"][0]["status_code"], 200);
            assert_eq!(delivery["attempts"][0]["trigger"], "scheduled");
            assert_eq!(delivery["attempts"][0]["response_excerpt"], "answer 200");
            assert_eq!(delivery["payload"], event);
        }
    }

    #[actix_web::test]
    async fn custom_headers_are_sent_whole_with_every_delivery_but_reads_only_show_them_masked() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let answer = app
            .post("/api/v1/channels", json!({"name": "SIEM", "url": receiver.url("/"), "headers": {"X-Api-Key": "key-0123456789-abcd", "X-Short": "k-1"}}))
            .await;
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body["headers"], json!({"X-Api-Key": "••••abcd", "X-Short": "••••"}), "values are credentials: masked from the first answer on");
        let id = answer.body["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/channels/{id}");
        for read in [app.get(&path).await.body, app.get("/api/v1/channels").await.body["items"][0].clone()] {
            assert_eq!(read["headers"], json!({"X-Api-Key": "••••abcd", "X-Short": "••••"}), "{read}");
        }
        app.route_everything_to(&[&id]).await;
        app.create_tenant("contoso").await;
        app.ingest(permission_event("contoso", "permission.anonymous_link_created", "low")).await;
        let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!((got[0].headers["x-api-key"].as_str(), got[0].headers["x-short"].as_str()), ("key-0123456789-abcd", "k-1"));

        // A change that leaves the headers out keeps them; a read sent back whole (masked values
        // and all, as the admin page's form does) keeps them too, with one value changed.
        assert_eq!(app.patch(&path, json!({"name": "SIEM 2"})).await.status, 200);
        let edited = app.patch(&path, json!({"headers": {"X-Api-Key": "••••abcd", "X-Short": "k-2"}})).await;
        assert_eq!((edited.status, &edited.body["headers"]), (200, &json!({"X-Api-Key": "••••abcd", "X-Short": "••••"})), "{}", edited.body);
        // A mask that is not the current value's is no value.
        let wrong = app.patch(&path, json!({"headers": {"X-Api-Key": "••••zzzz"}})).await;
        assert_eq!((wrong.status, wrong.body["field"].as_str()), (422, Some("headers.X-Api-Key")), "{}", wrong.body);
        // Moving the channel elsewhere takes the credentials again.
        let moved = app.patch(&path, json!({"url": receiver.url("/elsewhere")})).await;
        assert_eq!((moved.status, moved.body["field"].as_str()), (422, Some("headers")), "{}", moved.body);
        let moved = app.patch(&path, json!({"url": receiver.url("/elsewhere"), "headers": {"X-Api-Key": "key-0123456789-abcd", "X-Short": "k-2"}})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        app.ingest(permission_event("contoso", "permission.anonymous_link_created", "low")).await;
        let got = receiver.wait_for(2, None, Duration::from_secs(5)).await;
        assert_eq!((got[1].headers["x-api-key"].as_str(), got[1].headers["x-short"].as_str()), ("key-0123456789-abcd", "k-2"));
        assert_eq!(app.patch(&path, json!({"headers": null})).await.body["headers"], json!({}));
    }

    #[actix_web::test]
    async fn a_batch_is_delivered_event_by_event_and_answered_in_order() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let events: Vec<_> = (0..20)
            .map(|i| {
                let mut e = permission_event("contoso", "permission.site_admin_added", "high");
                e["event_id"] = json!(format!("batch-{i}"));
                e
            })
            .collect();
        let answer = app.ingest(json!({ "events": events })).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let results = answer.body["results"].as_array().unwrap();
        assert_eq!(results.len(), 20);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r["event_id"], format!("batch-{i}"));
            assert_eq!(r["deliveries"].as_array().unwrap().len(), 1);
        }
        for r in results {
            app.wait_for_status(r["deliveries"][0]["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10)).await;
        }
        let got = receiver.received();
        assert_eq!(got.len(), 20, "each event arrives once, no more");
        let mut ids: Vec<String> = got.iter().map(|c| c.json()["event_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        let mut expected: Vec<String> = (0..20).map(|i| format!("batch-{i}")).collect();
        expected.sort();
        assert_eq!(ids, expected);
    }

    #[actix_web::test]
    async fn a_program_embedding_the_router_ingests_through_the_handle() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let input: EventInput = serde_json::from_value(permission_event("contoso", "permission.broad_access_granted", "critical")).unwrap();
        let result = app.handle.ingest_one(input.clone()).await.expect("ingested");
        assert!(!result.duplicate);
        assert_eq!(result.deliveries.len(), 1);
        let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(got[0].json()["event_id"], result.event_id.as_str());

        // Same semantics as HTTP: an unknown tenant is refused, naming the field.
        let mut stranger = input;
        stranger.tenant_id = Some("nobody".into());
        let err = app.handle.ingest_one(stranger).await.unwrap_err();
        assert!(err.to_string().contains("tenant_id"), "{err}");
    }

    #[actix_web::test]
    async fn the_test_button_reports_a_good_and_a_failing_receiver() {
        let app = spawn_app().await;
        let good = Receiver::start().await;
        let bad = Receiver::start().await;
        bad.reply_with(Reply::Status(500));
        let good_channel = app.create_channel("Good", &good.url("/ok")).await;
        let bad_channel = app.create_channel("Bad", &bad.url("/broken")).await;

        let ok = app.post(&format!("/api/v1/channels/{}/test", good_channel["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body["ok"], true);
        assert_eq!(ok.body["status_code"], 200);
        assert_eq!(ok.body["response_excerpt"], "answer 200");
        assert!(ok.body["duration_ms"].is_number());
        let sample = &good.received()[0];
        assert_eq!(sample.json()["test"], true);
        assert_eq!(sample.json()["event"], "permission.external_share_created");
        assert!(signature_is_valid(good_channel["secret"].as_str().unwrap(), sample));

        let failed = app.post(&format!("/api/v1/channels/{}/test", bad_channel["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(failed.status, 200);
        assert_eq!(failed.body["ok"], false);
        assert_eq!(failed.body["status_code"], 500);
        assert_eq!(failed.body["error_kind"], "http_status");
        // A test send is never retried (wait past the whole retry schedule) and leaves nothing in
        // the alert log.
        actix_web::rt::time::sleep(Duration::from_millis(TEST_SCHEDULE.iter().sum::<u64>() + 300)).await;
        assert_eq!(bad.received().len(), 1);
        let log = app.get("/api/v1/deliveries").await;
        assert_eq!(log.body["items"].as_array().unwrap().len(), 0);
    }

    #[actix_web::test]
    async fn a_test_send_to_a_closed_port_reports_a_connect_error() {
        let app = spawn_app().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let channel = app.create_channel("Nowhere", &format!("http://127.0.0.1:{port}/")).await;
        let answer = app.post(&format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(answer.body["ok"], false);
        assert_eq!(answer.body["error_kind"], "connect");
        assert!(answer.body["status_code"].is_null());
    }

    #[actix_web::test]
    async fn failures_are_classified_as_dns_and_tls_errors() {
        let app = spawn_app().await;
        let plain = Receiver::start().await;
        let unknown = app.create_channel("Unknown host", "http://no-such-host.invalid/hook").await;
        let not_tls = app.create_channel("Not TLS", &plain.url("/").replace("http://", "https://")).await;
        let test = |channel: &serde_json::Value| format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap());
        let answer = app.post(&test(&unknown), json!({})).await;
        assert_eq!(answer.body["error_kind"], "dns", "{}", answer.body);
        let answer = app.post(&test(&not_tls), json!({})).await;
        assert_eq!(answer.body["error_kind"], "tls", "{}", answer.body);
    }

    #[actix_web::test]
    async fn a_channel_that_falls_behind_keeps_its_backlog_in_the_database_and_delivers_all_of_it_once() {
        // A queue of 4 and one request at a time: most of the 60 deliveries wait in the database.
        let app = spawn_app_with(|s| {
            s.channel_queue = 4;
            s.delivery_concurrency = 1;
        })
        .await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let events: Vec<_> = (0..60).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        for chunk in events.chunks(20) {
            assert_eq!(app.ingest(json!({ "events": chunk })).await.status, 202);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let done = app.get("/api/v1/deliveries?status=succeeded&limit=500").await.body["items"].as_array().unwrap().len();
            if done == 60 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "only {done} of 60 deliveries succeeded");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let got = receiver.received();
        assert_eq!(got.len(), 60, "every delivery was recorded after exactly one request: nothing twice");
        let mut ids: Vec<String> = got.iter().map(|c| c.json()["event_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 60, "every event once");
    }

    #[actix_web::test]
    async fn concurrent_requests_written_together_each_get_their_own_answer() {
        // Requests that arrive while others are being written are merged into one transaction;
        // a bad request among them must fail alone, a duplicate must be a duplicate once.
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        let event = |i: usize, tenant: &str| {
            let mut event = permission_event(tenant, "permission.external_share_created", "high");
            event["event_id"] = json!(format!("evt_together_{i}"));
            event
        };
        let mut requests = Vec::new();
        for i in 0..150 {
            let body = match i % 10 {
                3 => event(i, "nobody"),
                // The same event id as the request before it.
                5 => event(i - 1, "contoso"),
                // A batch whose second event names an unknown tenant: none of it is stored.
                7 => json!({"events": [event(i, "contoso"), event(1000 + i, "nobody")]}),
                _ => event(i, "contoso"),
            };
            let app = &app;
            requests.push(async move { (i, app.ingest(body).await) });
        }
        let answers = futures_util::future::join_all(requests).await;
        let mut stored = Vec::new();
        for (i, answer) in &answers {
            match i % 10 {
                3 => {
                    assert_eq!(answer.status, 422, "request {i}: {}", answer.body);
                    assert_eq!(answer.body["field"], "tenant_id", "request {i}: {}", answer.body);
                }
                7 => {
                    assert_eq!(answer.status, 422, "request {i}: {}", answer.body);
                    assert_eq!(answer.body["field"], "events[1].tenant_id", "request {i}: {}", answer.body);
                }
                4 | 5 => {
                    assert!(answer.status == 202 || answer.status == 200, "request {i}: {} {}", answer.status, answer.body);
                    if answer.status == 202 {
                        stored.push(answer.body["event_id"].as_str().unwrap().to_string());
                    }
                }
                _ => {
                    assert_eq!(answer.status, 202, "request {i}: {}", answer.body);
                    stored.push(answer.body["event_id"].as_str().unwrap().to_string());
                }
            }
        }
        // Of each pair sharing an event id, exactly one was stored.
        let expected: usize = (0..150).filter(|i| ![3, 5, 7].contains(&(i % 10))).count();
        assert_eq!(stored.len(), expected, "{stored:?}");
        let got = receiver.wait_for(expected, None, Duration::from_secs(20)).await;
        let mut ids: Vec<String> = got.iter().map(|c| c.headers["webhook-id"].clone()).collect();
        ids.sort();
        stored.sort();
        assert_eq!(ids, stored, "every stored event arrives once, and nothing refused arrives");
    }

}

#[actix_web::test]
async fn a_receiver_that_closes_each_connection_without_saying_so_gets_every_delivery_at_the_first_attempt() {
    let (base, answered) = closing_http10_receiver(|_| (200, "ok".into()));
    let url = format!("{base}/hook");
    let app = spawn_app_with(|s| s.delivery_concurrency = 1).await;
    let channel = app.create_channel("Python receiver", &url).await;
    app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    let events: Vec<_> = (0..3).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
    let answer = app.ingest(json!({ "events": events })).await;
    assert_eq!(answer.status, 202);
    let ids: Vec<String> = answer.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect();
    for id in &ids {
        let delivery = app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1, "one attempt, not a failure and a retry: {delivery}");
    }
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 3);
}
