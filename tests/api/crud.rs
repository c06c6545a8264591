//! Tenants, channels and rules through the API, and paging the alert log.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

on_both_backends! {
    #[actix_web::test]
    async fn tenants_can_be_registered_listed_renamed_and_deleted() {
        let app = spawn_app().await;
        let created = app.create_tenant("contoso").await;
        assert_eq!(created["id"], "contoso");
        assert_eq!(app.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "X", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"})).await.status, 409);
        let renamed = app.patch("/api/v1/tenants/contoso", json!({"display_name": "Contoso Group"})).await;
        assert_eq!(renamed.status, 200);
        assert_eq!(renamed.body["display_name"], "Contoso Group");
        assert_eq!(app.get("/api/v1/tenants").await.body["items"].as_array().unwrap().len(), 1);

        let channel = app.create_channel("SOC", "https://hooks.example.com/x").await;
        let rule = app.create_rule(json!({"name": "C", "tenant_id": "contoso", "event_types": ["*"], "channel_ids": [channel["id"]]})).await;
        let in_use = app.delete("/api/v1/tenants/contoso").await;
        assert_eq!(in_use.status, 409, "a tenant a rule uses is not deleted");
        assert!(in_use.body["detail"].as_str().unwrap().contains(rule["id"].as_str().unwrap()));
        app.delete(&format!("/api/v1/rules/{}", rule["id"].as_str().unwrap())).await;
        assert_eq!(app.delete("/api/v1/tenants/contoso").await.status, 204);
        assert_eq!(app.get("/api/v1/tenants/contoso").await.status, 404);
    }

    #[actix_web::test]
    async fn a_channel_secret_is_shown_once_and_channels_report_their_health() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let created = app.create_channel("SOC", &receiver.url("/")).await;
        let id = created["id"].as_str().unwrap();
        assert!(id.starts_with("ch_"));
        assert_eq!(created["type"], "webhook");
        assert_eq!(created["enabled"], true);
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_") && secret.len() >= 6 + 32);

        let read = app.get(&format!("/api/v1/channels/{id}")).await;
        assert!(read.body.get("secret").is_none());
        let listed = app.get("/api/v1/channels").await;
        assert!(!listed.body.to_string().contains(secret), "no later read shows the secret");

        app.route_everything_to(&[id]).await;
        app.create_tenant("contoso").await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "succeeded", Duration::from_secs(5)).await;
        let read = app.get(&format!("/api/v1/channels/{id}")).await;
        assert_eq!(read.body["stats"]["succeeded_24h"], 1);
        assert_eq!(read.body["stats"]["failed_24h"], 0);
    }

    #[actix_web::test]
    async fn rules_can_be_created_read_changed_and_deleted() {
        let app = spawn_app().await;
        let a = app.create_channel("A", "https://a.example.com/").await;
        let b = app.create_channel("B", "https://b.example.com/").await;
        let rule = app
            .create_rule(json!({"name": "External shares", "tenant_id": null, "event_types": ["permission.*", "permission.*"],
                                "min_severity": "medium", "channel_ids": [a["id"]], "enabled": true}))
            .await;
        let id = rule["id"].as_str().unwrap();
        assert!(id.starts_with("rule_"));
        assert_eq!(rule["event_types"], json!(["permission.*"]), "duplicates are folded");
        let changed = app.patch(&format!("/api/v1/rules/{id}"), json!({"channel_ids": [a["id"], b["id"]], "min_severity": "high"})).await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        assert_eq!(changed.body["channel_ids"], json!([a["id"], b["id"]]));
        assert_eq!(changed.body["min_severity"], "high");
        assert_eq!(changed.body["name"], "External shares", "fields not in the PATCH stay");
        assert_eq!(app.get("/api/v1/rules").await.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(app.delete(&format!("/api/v1/rules/{id}")).await.status, 204);
        assert_eq!(app.get(&format!("/api/v1/rules/{id}")).await.status, 404);
        assert_eq!(app.delete(&format!("/api/v1/rules/{id}")).await.status, 404);
    }

    #[actix_web::test]
    async fn the_alert_log_pages_newest_first_with_a_cursor() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let mut ids = Vec::new();
        for _ in 0..7 {
            let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
            ids.push(answer.body["deliveries"][0]["id"].as_str().unwrap().to_string());
        }
        ids.reverse();
        let mut seen = Vec::new();
        let mut path = "/api/v1/deliveries?limit=3".to_string();
        loop {
            let page = app.get(&path).await;
            assert_eq!(page.status, 200);
            seen.extend(page.body["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()));
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/deliveries?limit=3&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, ids, "every delivery once, newest first");
    }

    #[actix_web::test]
    async fn healthz_reports_the_database() {
        let app = spawn_app().await;
        let answer = app.get("/healthz").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["database"], "ok");
    }

    #[actix_web::test]
    async fn concurrent_changes_to_one_rule_both_take_effect() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let rule_id = app.get("/api/v1/rules").await.body["items"][0]["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/rules/{rule_id}");
        for i in 0..20 {
            let severity = if i % 2 == 0 { "high" } else { "low" };
            let (a, b) = futures_util::future::join(
                app.patch(&path, json!({"name": format!("Rule {i}")})),
                app.patch(&path, json!({"min_severity": severity})),
            )
            .await;
            assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
            let rule = app.get(&path).await.body;
            assert_eq!((rule["name"].as_str(), rule["min_severity"].as_str()), (Some(format!("Rule {i}").as_str()), Some(severity)), "one change undid the other");
        }
    }
}
