//! Which events go where: event type patterns, severity, tenant scope, duplicates.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

on_both_backends! {
    #[actix_web::test]
    async fn rules_filter_on_event_type_pattern_and_minimum_severity() {
        let app = spawn_app().await;
        let shares = Receiver::start().await;
        let everything = Receiver::start().await;
        let quota = Receiver::start().await;
        let shares_ch = app.create_channel("Shares", &shares.url("/")).await;
        let all_ch = app.create_channel("All", &everything.url("/")).await;
        let quota_ch = app.create_channel("Quota", &quota.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Shares", "event_types": ["permission.*"], "min_severity": "high", "channel_ids": [shares_ch["id"]]})).await;
        app.create_rule(json!({"name": "All", "event_types": ["*"], "min_severity": "low", "channel_ids": [all_ch["id"]]})).await;
        app.create_rule(json!({"name": "Quota", "event_types": ["storage.quota_exceeded"], "min_severity": "low", "channel_ids": [quota_ch["id"]]})).await;

        let storage = |event: &str| {
            json!({"event": event, "severity": "medium", "tenant_id": "contoso",
                   "data": {"site_url": "https://contoso.sharepoint.com/sites/HR", "current_usage": 95, "quota": 100, "threshold": 90}})
        };
        let cases = [
            (permission_event("contoso", "permission.external_share_created", "critical"), vec!["Shares", "All"]),
            (permission_event("contoso", "permission.anonymous_link_created", "medium"), vec!["All"]),
            (storage("storage.quota_exceeded"), vec!["All", "Quota"]),
            (storage("storage.threshold_exceeded"), vec!["All"]),
        ];
        let names = |body: &serde_json::Value| {
            let mut names: Vec<&str> = body["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let id = d["channel_id"].as_str().unwrap();
                    if id == shares_ch["id"] { "Shares" } else if id == all_ch["id"] { "All" } else { "Quota" }
                })
                .collect();
            names.sort();
            names
        };
        for (event, mut expected) in cases {
            let answer = app.ingest(event.clone()).await;
            assert_eq!(answer.status, 202, "{}", answer.body);
            expected.sort();
            assert_eq!(names(&answer.body), expected, "{}", event["event"]);
        }
        everything.wait_for(4, None, Duration::from_secs(5)).await;
        shares.wait_for(1, None, Duration::from_secs(5)).await;
        quota.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(shares.received()[0].json()["severity"], "critical");
        assert_eq!(quota.received()[0].json()["data"]["threshold"], 90);
    }

    #[actix_web::test]
    async fn a_tenant_scoped_rule_only_sees_its_tenant() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Contoso SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_tenant("fabrikam").await;
        app.create_rule(json!({"name": "Contoso only", "tenant_id": "contoso", "event_types": ["*"], "channel_ids": [channel["id"]]})).await;

        let other = app.ingest(permission_event("fabrikam", "permission.site_admin_added", "critical")).await;
        assert_eq!(other.status, 202);
        assert_eq!(other.body["deliveries"].as_array().unwrap().len(), 0);
        let mine = app.ingest(permission_event("contoso", "permission.site_admin_added", "low")).await;
        assert_eq!(mine.body["deliveries"].as_array().unwrap().len(), 1);
        let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(got[0].json()["tenant"]["id"], "contoso");
        let log = app.get("/api/v1/deliveries?tenant_id=fabrikam").await;
        assert_eq!(log.body["items"].as_array().unwrap().len(), 0);
    }

    #[actix_web::test]
    async fn a_duplicate_event_id_is_not_delivered_twice() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let mut event = permission_event("contoso", "permission.external_share_created", "high");
        event["event_id"] = json!("spscan-change-42");

        let first = app.ingest(event.clone()).await;
        assert_eq!(first.status, 202);
        assert_eq!(first.body["duplicate"], false);
        let second = app.ingest(event.clone()).await;
        assert_eq!(second.status, 200);
        assert_eq!(second.body["duplicate"], true);
        assert_eq!(second.body["deliveries"], json!([]));
        // Also inside one batch, and across a batch and an earlier single event.
        let batch = app.ingest(json!({"events": [event.clone(), event.clone()]})).await;
        assert_eq!(batch.status, 202);
        assert!(batch.body["results"].as_array().unwrap().iter().all(|r| r["duplicate"] == true));

        let log = app.get("/api/v1/deliveries?event_id=spscan-change-42").await;
        let items = log.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "one delivery for the event, however often it was sent");
        app.wait_for_status(items[0]["id"].as_str().unwrap(), "succeeded", Duration::from_secs(5)).await;
        assert_eq!(receiver.received().len(), 1);
    }

    #[actix_web::test]
    async fn a_disabled_rule_matches_nothing() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let rule = app.create_rule(json!({"name": "Off", "event_types": ["*"], "enabled": false, "channel_ids": [channel["id"]]})).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(answer.body["deliveries"].as_array().unwrap().len(), 0);
        let on = app.patch(&format!("/api/v1/rules/{}", rule["id"].as_str().unwrap()), json!({"enabled": true})).await;
        assert_eq!(on.status, 200);
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(answer.body["deliveries"].as_array().unwrap().len(), 1, "the change applies to the very next event");
    }
}
