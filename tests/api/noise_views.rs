//! What the admin page reads about noise control (SPEC section 16), on both backends: a
//! channel's counts of the last 24 hours keep grouped and suppressed deliveries apart from
//! failures, and the log lists the deliveries one notification carried.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

on_both_backends! {
    #[actix_web::test]
    async fn a_channel_counts_grouped_and_suppressed_deliveries_apart_and_the_log_lists_a_notifications_events() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Once per guest, grouped", "event_types": ["permission.*"], "channel_ids": [channel_id],
                               "suppress": {"by": ["/data/principal"], "for": "1h"}, "group": {"by": [], "wait": "1s", "interval": "2s"}}))
            .await;
        let share = |principal: &str| {
            let mut event = permission_event("contoso", "permission.external_share_created", "high");
            event["data"]["principal"] = json!(principal);
            event
        };
        let statuses: Vec<String> = {
            let mut statuses = Vec::new();
            for principal in ["a@gmail.com", "a@gmail.com", "b@gmail.com"] {
                let answer = app.ingest(share(principal)).await;
                statuses.push(answer.body["deliveries"][0]["status"].as_str().unwrap().to_string());
            }
            statuses
        };
        assert_eq!(statuses, ["grouped", "suppressed", "grouped"]);
        receiver.wait_for(1, None, Duration::from_secs(10)).await;

        let grouped = app.get("/api/v1/deliveries?status=grouped").await;
        assert_eq!(grouped.status, 200, "{}", grouped.body);
        let notification_id = grouped.body["items"][0]["notification_id"].as_str().expect("the group flushed").to_string();
        app.wait_for_status(&notification_id, "succeeded", Duration::from_secs(10)).await;
        let carried = app.get(&format!("/api/v1/deliveries?notification_id={notification_id}")).await.body;
        let carried = carried["items"].as_array().unwrap();
        assert_eq!(carried.len(), 2, "{carried:?}");
        assert!(carried.iter().all(|d| d["status"] == "grouped" && d["notification_id"] == notification_id.as_str()));
        let none = app.get("/api/v1/deliveries?notification_id=dlv_00000000000000000000000000").await.body;
        assert_eq!(none["items"], json!([]));

        let stats = app.get(&format!("/api/v1/channels/{channel_id}")).await.body["stats"].clone();
        assert_eq!(
            (&stats["grouped_24h"], &stats["suppressed_24h"], &stats["silenced_24h"]),
            (&json!(2), &json!(1), &json!(0)),
            "{stats:#}"
        );
        assert_eq!((&stats["succeeded_24h"], &stats["failed_24h"], &stats["pending_24h"]), (&json!(1), &json!(0), &json!(0)), "only the notification was sent: {stats:#}");
    }
}
