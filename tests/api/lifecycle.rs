//! Channels switched off and removed: what happens to their deliveries.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

on_both_backends! {
    #[actix_web::test]
    async fn a_disabled_channel_gets_no_new_deliveries_and_its_retries_stop_until_it_is_enabled() {
        let app = spawn_app_with(|s| {
            // Retries 2 s apart: the disabling lands before the first, however busy the machine.
            s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("2s,2s,2s").unwrap()
        })
        .await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(500));
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        let channel_id = channel["id"].as_str().unwrap();
        app.route_everything_to(&[channel_id]).await;
        app.create_tenant("contoso").await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        receiver.wait_for(1, None, Duration::from_secs(5)).await;

        let off = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"enabled": false})).await;
        assert_eq!(off.status, 200);
        assert_eq!(off.body["enabled"], false);
        let seen = receiver.received().len();
        let new = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(new.body["deliveries"].as_array().unwrap().len(), 0, "no deliveries for a disabled channel");
        // Well past the next retry time: nothing is sent, the delivery waits.
        actix_web::rt::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(receiver.received().len(), seen, "retries stopped while disabled");
        assert_eq!(app.delivery(&delivery_id).await["status"], "pending");

        receiver.reply_with(Reply::Status(200));
        app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"enabled": true})).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(5)).await;
        assert_eq!(delivery["attempts"].as_array().unwrap().last().unwrap()["status_code"], 200);
    }

    #[actix_web::test]
    async fn deleting_a_channel_cancels_its_pending_deliveries_and_the_log_keeps_them() {
        let app = spawn_app_with(|s| s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("5s").unwrap()).await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Status(503));
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        let channel_id = channel["id"].as_str().unwrap();
        let rule = app.route_everything_to(&[channel_id]).await;
        app.create_tenant("contoso").await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        app.wait_for_attempts(&delivery_id, 1, Duration::from_secs(5)).await;

        let deleted = app.delete(&format!("/api/v1/channels/{channel_id}")).await;
        assert_eq!(deleted.status, 204);
        assert_eq!(app.get(&format!("/api/v1/channels/{channel_id}")).await.status, 404);
        let delivery = app.delivery(&delivery_id).await;
        assert_eq!(delivery["status"], "cancelled");
        assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1, "the attempt history stays");
        let log = app.get("/api/v1/deliveries?status=cancelled").await;
        assert_eq!(log.body["items"][0]["id"], delivery_id.as_str());
        // The rule no longer targets it.
        let rule = app.get(&format!("/api/v1/rules/{}", rule["id"].as_str().unwrap())).await;
        assert_eq!(rule.body["channel_ids"], json!([]));
        let redeliver = app.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"), json!({})).await;
        assert_eq!(redeliver.status, 409);
        assert_eq!(redeliver.content_type, "application/problem+json");
    }

    #[actix_web::test]
    async fn a_changed_channel_url_is_used_for_the_next_delivery() {
        let app = spawn_app().await;
        let old = Receiver::start().await;
        let new = Receiver::start().await;
        let channel = app.create_channel("SOC", &old.url("/")).await;
        let channel_id = channel["id"].as_str().unwrap();
        app.route_everything_to(&[channel_id]).await;
        app.create_tenant("contoso").await;
        app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        old.wait_for(1, None, Duration::from_secs(5)).await;
        let moved = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"url": new.url("/moved")})).await;
        assert_eq!(moved.status, 200);
        assert!(moved.body.get("secret").is_none(), "the secret is never shown again");
        app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let got = new.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(got[0].path, "/moved");
        assert!(signature_is_valid(channel["secret"].as_str().unwrap(), &got[0]));
        assert_eq!(old.received().len(), 1);
    }

    #[actix_web::test]
    async fn an_attempt_in_flight_when_its_channel_is_disabled_is_still_recorded() {
        // A 3 s timeout: the disabling lands while the attempt hangs, however busy the machine.
        let app = spawn_app_with(|s| s.delivery_timeout = Duration::from_secs(3)).await;
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Hang);
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        receiver.wait_for(1, None, Duration::from_secs(5)).await;
        let off = app.patch(&format!("/api/v1/channels/{}", channel["id"].as_str().unwrap()), json!({"enabled": false})).await;
        assert_eq!(off.status, 200);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let delivery = app.delivery(&delivery_id).await;
            if delivery["attempt_count"] == 1 {
                assert_eq!(delivery["attempts"][0]["error_kind"], "timeout");
                assert_eq!(delivery["status"], "pending", "it waits for the channel to come back");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the attempt made before disabling was never recorded");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        // Its retry would be due 100 ms later; while disabled nothing is sent.
        actix_web::rt::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.received().len(), 1, "nothing more is sent while disabled");
        // Paused, not lost: enabled again, it is delivered.
        receiver.reply_with(Reply::Status(200));
        app.patch(&format!("/api/v1/channels/{}", channel["id"].as_str().unwrap()), json!({"enabled": true})).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(5)).await;
        assert_eq!(delivery["attempt_count"], 2);
    }
}
