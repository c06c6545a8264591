//! Grouped notifications as receivers get them (SPEC section 16), through the **Test** button's
//! `{"sample":"group"}`: a webhook gets the signed `alert.group` body, Slack and Teams one
//! summary message, each checked by a receiver on 127.0.0.1 the way the vendor would.

use serde_json::{json, Value};

use crate::channel_types::{slack_format, teams_format};
use crate::helpers::*;

const SITE: &str = "https://spscan-test.sharepoint.com/sites/Finance";

on_both_backends! {
    #[actix_web::test]
    async fn a_group_test_sends_a_webhook_a_signed_alert_group_body_and_logs_nothing() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/hook")).await;
        let id = channel["id"].as_str().unwrap();

        let test = app.post(&format!("/api/v1/channels/{id}/test"), json!({"sample": "group"})).await;
        assert_eq!(test.status, 200, "{}", test.body);
        assert_eq!(test.body["ok"], true, "{}", test.body);
        let notification_id = test.body["event_id"].as_str().unwrap();
        assert!(notification_id.starts_with("grp_"), "{notification_id}");

        let received = receiver.received();
        assert_eq!(received.len(), 1);
        let sent = &received[0];
        assert!(signature_is_valid(channel["secret"].as_str().unwrap(), sent), "the notification is signed like any payload");
        assert_eq!(sent.headers["webhook-id"], notification_id);
        let body = sent.json();
        assert_eq!(body["event"], "alert.group");
        assert_eq!(body["event_id"], notification_id);
        assert_eq!(body["test"], true);
        assert_eq!(body["severity"], "critical");
        assert_eq!(body["tenant"]["id"], "spscan-test");
        assert!(body["rule"]["id"].is_string() && body["rule"]["name"].is_string(), "{body}");
        let group = &body["group"];
        assert!(group["id"].as_str().unwrap().starts_with("agrp_"), "{group}");
        assert_eq!(group["key"], json!({"/data/site_url": SITE}));
        assert_eq!((&group["count"], &group["earlier"], &group["max_severity"]), (&json!(3), &json!(0), &json!("critical")));
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| e["data"]["site_url"] == SITE && e["test"] == true && e["event_id"].as_str().unwrap().starts_with("evt_")));
        assert!(body.get("truncated").is_none());

        // A second press is a new notification of a new group; neither is in the alert log.
        let again = app.post(&format!("/api/v1/channels/{id}/test"), json!({"sample": "group"})).await;
        assert_ne!(again.body["event_id"], test.body["event_id"]);
        assert_ne!(receiver.received()[1].json()["group"]["id"], group["id"]);
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"], json!([]));
    }

    #[actix_web::test]
    async fn a_group_test_sends_slack_and_teams_one_summary_message() {
        let slack = Receiver::start().await;
        slack.check_format(slack_format);
        slack.reply_with(Reply::Said(200, "ok"));
        let teams = Receiver::start().await;
        teams.check_format(teams_format);
        teams.reply_with(Reply::Status(202));
        let app = spawn_app().await;
        for (kind, receiver) in [("slack", &slack), ("teams", &teams)] {
            let channel = app.post("/api/v1/channels", json!({"name": kind, "type": kind, "url": receiver.url("/hook")})).await;
            assert_eq!(channel.status, 201, "{}", channel.body);
            let test = app.post(&format!("/api/v1/channels/{}/test", channel.body["id"].as_str().unwrap()), json!({"sample": "group"})).await;
            assert_eq!(test.body["ok"], true, "{kind}: {}", test.body);
            assert_eq!(receiver.violations(), Vec::<String>::new());
            assert_eq!(receiver.received().len(), 1, "one message for the whole group");
        }
        let summary = format!("3 × External share created (test) — {SITE}");
        let message = slack.received()[0].json();
        assert_eq!(message["blocks"][0]["text"]["text"], format!("🔴 CRITICAL: {summary}"));
        assert_eq!(message["text"], format!("🔴 CRITICAL: {summary}"));
        let items = message["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(items.lines().count(), 3, "{items}");
        assert!(items.lines().all(|line| line.starts_with("• ") && line.contains("SPScan test tenant")), "{items}");
        let card: Value = teams.received()[0].json();
        let heading = card["attachments"][0]["content"]["body"][0]["text"].as_str().unwrap();
        assert_eq!(heading, format!("CRITICAL: {}", summary.replace('(', r"\(").replace(')', r"\)")));
    }

    #[actix_web::test]
    async fn a_test_without_a_body_sends_the_event_and_an_unknown_sample_is_refused() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/hook")).await;
        let path = format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap());

        // The admin page's button sends no body.
        let plain = app.request("POST", &path, None).await;
        assert_eq!(plain.body["ok"], true, "{}", plain.body);
        assert_eq!(receiver.received()[0].json()["event"], "permission.external_share_created");

        for (body, field) in [(json!({"sample": "groups"}), "sample"), (json!({"sample": true}), "sample"), (json!({"sampel": "group"}), "sampel")] {
            let refused = app.post(&path, body.clone()).await;
            assert_eq!(refused.status, 422, "{body}: {}", refused.body);
            assert_eq!(refused.content_type, "application/problem+json");
            assert_eq!(refused.body["field"], field, "{}", refused.body);
        }
        assert_eq!(receiver.received().len(), 1, "nothing is sent for a refused Test");
    }
}
