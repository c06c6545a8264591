//! Retention (SPEC section 15): with a short `RETENTION`, succeeded deliveries, their attempts and
//! the events no delivery uses any more are purged; failed ones only after `FAILED_RETENTION`;
//! pending deliveries and their events never.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spscan_router::retention::Retention;

use crate::helpers::*;

/// Waits until `path` answers `status`.
async fn wait_for_answer(app: &TestApp, path: &str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let answer = app.get(path).await;
        if answer.status == status {
            return;
        }
        assert!(Instant::now() < deadline, "{path} still answers {}: {}", answer.status, answer.body);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one delivery of an event.
async fn delivery_of(app: &TestApp, event_id: &str) -> String {
    let answer = app.get(&format!("/api/v1/deliveries?event_id={event_id}")).await;
    answer.body["items"][0]["id"].as_str().unwrap_or_else(|| panic!("no delivery for {event_id}: {}", answer.body)).to_string()
}

fn event(id: &str, event: &str) -> Value {
    let mut value = permission_event("contoso", event, "high");
    value["event_id"] = json!(id);
    value
}

/// An app whose events of type `…_created` go to a receiver that takes them, `…_revoked` to one
/// that always fails, and `…_updated` to one that asks to be called again in an hour.
async fn app_with(retention: Retention) -> (TestApp, [Receiver; 3]) {
    let app = spawn_app_with(move |settings| settings.retention = retention).await;
    app.create_tenant("contoso").await;
    let receivers = [Receiver::start().await, Receiver::start().await, Receiver::start().await];
    receivers[1].reply_with(Reply::Status(500));
    receivers[2].reply_with(Reply::RetryAfter(429, "3600"));
    for (receiver, event) in receivers.iter().zip(["permission.external_share_created", "permission.external_share_revoked", "permission.external_share_updated"]) {
        let channel = app.create_channel(event, &receiver.url("/")).await;
        app.create_rule(json!({"name": event, "event_types": [event], "channel_ids": [channel["id"]]})).await;
    }
    (app, receivers)
}

on_both_backends! {
    #[actix_web::test]
    async fn a_short_retention_purges_what_is_finished_and_never_what_is_pending() {
        let (app, _receivers) = app_with(Retention { keep: Duration::from_secs(2), keep_failed: Duration::from_secs(3600) }).await;
        for (id, kind) in [("done-1", "permission.external_share_created"), ("done-2", "permission.external_share_created"),
            ("failed-1", "permission.external_share_revoked"), ("waiting-1", "permission.external_share_updated"), ("unrouted-1", "permission.inheritance_broken")] {
            assert_eq!(app.ingest(event(id, kind)).await.status, 202);
        }
        let done = [delivery_of(&app, "done-1").await, delivery_of(&app, "done-2").await];
        let (failed, waiting) = (delivery_of(&app, "failed-1").await, delivery_of(&app, "waiting-1").await);
        app.wait_for_status(&failed, "failed", Duration::from_secs(10)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.delivery(&waiting).await["attempts"].as_array().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the throttled delivery was attempted");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }

        // Two seconds after they succeeded, the succeeded deliveries go, with their attempts.
        for id in &done {
            wait_for_answer(&app, &format!("/api/v1/deliveries/{id}"), 404, Duration::from_secs(15)).await;
        }
        // The pending one and the failed one (kept an hour) stay, whole.
        let kept = app.delivery(&waiting).await;
        assert_eq!((kept["status"].as_str(), kept["attempts"].as_array().unwrap().len()), (Some("pending"), 1), "{kept:#}");
        assert_eq!(app.delivery(&failed).await["attempts"].as_array().unwrap().len(), 4, "the failed delivery and its attempts stay");
        // Events: the pending delivery's is kept (a duplicate), the purged ones are gone (new
        // again), and so is the event no rule matched.
        assert_eq!(app.ingest(event("waiting-1", "permission.external_share_updated")).await.status, 200, "still stored");
        assert_eq!(app.ingest(event("failed-1", "permission.external_share_revoked")).await.status, 200, "still stored");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The unmatched event goes once it is two seconds old.
            let answer = app.ingest(event("unrouted-1", "permission.inheritance_broken")).await;
            if answer.status == 202 {
                break;
            }
            assert!(Instant::now() < deadline, "the unmatched event was not purged");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(app.ingest(event("done-1", "permission.external_share_created")).await.status, 202, "purged with its delivery: new again");
    }

    #[actix_web::test]
    async fn failed_deliveries_have_their_own_retention() {
        let (app, _receivers) = app_with(Retention { keep: Duration::from_secs(3600), keep_failed: Duration::from_secs(1) }).await;
        assert_eq!(app.ingest(event("done-1", "permission.external_share_created")).await.status, 202);
        assert_eq!(app.ingest(event("failed-1", "permission.external_share_revoked")).await.status, 202);
        let (done, failed) = (delivery_of(&app, "done-1").await, delivery_of(&app, "failed-1").await);
        app.wait_for_status(&done, "succeeded", Duration::from_secs(10)).await;
        wait_for_answer(&app, &format!("/api/v1/deliveries/{failed}"), 404, Duration::from_secs(15)).await;
        assert_eq!(app.delivery(&done).await["status"], "succeeded", "kept for RETENTION");
        assert_eq!(app.ingest(event("failed-1", "permission.external_share_revoked")).await.status, 202, "its event went with it");
    }
}
