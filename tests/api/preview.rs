//! The rule preview (`POST /api/v1/rules/preview`, SPEC section 16) against real rules, groups
//! and suppression windows: every rule says whether it matches and why not, each channel what
//! would happen and which rule decides it, and trying an event leaves no trace.

use serde_json::{json, Value};
use spscan_router::domain::time::{parse_rfc3339, rfc3339};
use spscan_router::store::groups;

use crate::helpers::*;

const SITE: &str = "https://contoso.sharepoint.com/sites/Finance";

fn share(principal: &str, severity: &str) -> Value {
    let mut event = permission_event("contoso", "permission.external_share_created", severity);
    event["data"]["principal"] = json!(principal);
    event
}

async fn preview(app: &TestApp, body: Value) -> Vec<Value> {
    let answer = app.post("/api/v1/rules/preview", body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["rules"].as_array().expect("rules").clone()
}

/// The preview of the rule named `name`.
fn of<'a>(rules: &'a [Value], name: &str) -> &'a Value {
    rules.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no rule {name} in {rules:#?}"))
}

fn at_ms(value: &Value) -> i64 {
    parse_rfc3339(value.as_str().unwrap_or_else(|| panic!("an instant: {value}"))).unwrap()
}

/// The open group of a rule and channel for `SITE`, as stored: `(id, flush_at)`.
async fn open_group(app: &TestApp, rule: &Value, channel: &Value) -> Option<(String, i64)> {
    let (rule, channel) = (rule["id"].as_str().unwrap().to_string(), channel["id"].as_str().unwrap().to_string());
    let key = json!({"/data/site_url": SITE}).to_string();
    app.handle.store().read(move |conn| groups::find_open_group(conn, &rule, &channel, &key)).await.unwrap()
}

on_both_backends! {
    #[actix_web::test]
    async fn every_rule_says_whether_it_matches_or_the_first_reason_it_does_not() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        let off = app.create_channel("Paused", &receiver.url("/paused")).await;
        assert_eq!(app.patch(&format!("/api/v1/channels/{}", off["id"].as_str().unwrap()), json!({"enabled": false})).await.status, 200);
        app.create_tenant("contoso").await;
        app.create_tenant("fabrikam").await;
        let ch = channel["id"].clone();
        app.create_rule(json!({"name": "Off", "event_types": ["*"], "channel_ids": [ch], "enabled": false})).await;
        app.create_rule(json!({"name": "Storage", "event_types": ["storage.*"], "channel_ids": [ch]})).await;
        app.create_rule(json!({"name": "Critical", "event_types": ["*"], "min_severity": "critical", "channel_ids": [ch]})).await;
        app.create_rule(json!({"name": "Fabrikam", "event_types": ["*"], "tenant_id": "fabrikam", "channel_ids": [ch]})).await;
        app.create_rule(json!({"name": "Gmail edits", "event_types": ["permission.*"], "channel_ids": [ch],
                               "conditions": {"all": [{"path": "/data/access_level", "op": "eq", "value": "edit"},
                                                      {"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}]}}))
            .await;
        let everything = app.create_rule(json!({"name": "Everything", "event_types": ["*"], "channel_ids": [ch, off["id"]]})).await;

        let rules = preview(&app, share("someone@contoso.com", "high")).await;
        assert_eq!(rules.len(), 6, "every rule, enabled or not: {rules:#?}");
        let reason = |name: &str| {
            let rule = of(&rules, name);
            assert_eq!((rule["matched"].clone(), rule["channels"].clone()), (json!(false), json!([])), "{rule}");
            (rule["reason"]["kind"].as_str().unwrap().to_string(), rule["reason"]["detail"].as_str().unwrap().to_string(), rule["reason"]["path"].clone())
        };
        assert_eq!(reason("Off"), ("disabled".into(), "the rule is disabled".into(), Value::Null));
        assert_eq!(reason("Storage").0, "event_type");
        assert_eq!(reason("Storage").1, "the event type permission.external_share_created is not among the rule's event types (storage.*)");
        assert_eq!(reason("Critical").1, "the event's severity high is below the rule's minimum critical");
        assert_eq!(reason("Fabrikam"), ("tenant".into(), "the event's tenant contoso is not the rule's tenant fabrikam".into(), Value::Null));
        let (kind, detail, path) = reason("Gmail edits");
        assert_eq!((kind.as_str(), path), ("condition", json!("conditions.all[1]")), "the leaf that failed");
        assert_eq!(detail, r#"/data/principal holds "someone@contoso.com"; the condition wants it to be text that ends with "@gmail.com""#);

        let matched = of(&rules, "Everything");
        assert_eq!((matched["matched"].clone(), matched["reason"].clone()), (json!(true), Value::Null));
        assert_eq!(
            matched["channels"],
            json!([
                {"channel_id": ch, "decided_by": everything["id"], "outcome": "send", "group_id": null, "send_at": null,
                 "suppressed_by": null, "until": null, "silence_id": null},
                {"channel_id": off["id"], "decided_by": null, "outcome": null, "group_id": null, "send_at": null,
                 "suppressed_by": null, "until": null, "silence_id": null},
            ]),
            "sent at once; the disabled channel gets nothing"
        );
        let gmail = preview(&app, share("guest@gmail.com", "high")).await;
        assert_eq!(of(&gmail, "Gmail edits")["matched"], true);
    }

    #[actix_web::test]
    async fn a_channel_names_the_rule_of_lower_priority_that_decides_it() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let everything = app.create_rule(json!({"name": "Everything", "event_types": ["*"], "channel_ids": [channel["id"]]})).await;
        let by_site = app
            .create_rule(json!({"name": "By site", "event_types": ["permission.*"], "channel_ids": [channel["id"]], "priority": 10,
                                "group": {"by": ["/data/site_url"], "wait": "10m", "interval": "20m"}}))
            .await;
        let at = "2026-11-28T15:36:08Z";
        let mut event = share("guest@gmail.com", "high");
        event["at"] = json!(at);
        let rules = preview(&app, event).await;
        assert_eq!(rules.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["By site", "Everything"], "in decision order");
        for rule in &rules {
            let decided = &rule["channels"][0];
            assert_eq!(decided["decided_by"], by_site["id"], "{rule}");
            assert_eq!((decided["outcome"].as_str(), decided["group_id"].clone()), (Some("group"), Value::Null), "no group open yet: {rule}");
            assert_eq!(at_ms(&decided["send_at"]), parse_rfc3339(at).unwrap() + 600_000, "`wait` after `at`");
        }
        assert_ne!(rules[1]["rule_id"], by_site["id"]);
        assert_eq!(rules[1]["rule_id"], everything["id"]);
    }

    #[actix_web::test]
    async fn a_grouped_event_would_join_the_group_a_real_event_opened() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let rule = app
            .create_rule(json!({"name": "By site", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                                "group": {"by": ["/data/site_url"], "wait": "10m", "interval": "20m"}}))
            .await;
        let before = spscan_router::domain::time::now_ms();
        let rules = preview(&app, share("a@gmail.com", "high")).await;
        let first = &rules[0]["channels"][0];
        assert_eq!((first["outcome"].as_str(), first["group_id"].clone()), (Some("group"), Value::Null));
        let send_at = at_ms(&first["send_at"]);
        assert!(send_at >= before + 600_000 - 1_000 && send_at <= spscan_router::domain::time::now_ms() + 600_000 + 1_000, "now + wait: {first}");

        let ingested = app.ingest(share("b@gmail.com", "high")).await;
        assert_eq!(ingested.body["deliveries"][0]["status"], "grouped", "{}", ingested.body);
        let (group_id, flush_at) = open_group(&app, &rule, &channel).await.expect("the real event opened a group");
        for _ in 0..2 {
            let rules = preview(&app, share("c@gmail.com", "low")).await;
            let joins = &rules[0]["channels"][0];
            assert_eq!((joins["outcome"].as_str(), joins["group_id"].as_str()), (Some("group"), Some(group_id.as_str())), "{joins}");
            assert_eq!(at_ms(&joins["send_at"]), flush_at, "sent at the open group's flush");
        }
        let grouped = app.delivery(ingested.body["deliveries"][0]["id"].as_str().unwrap()).await;
        assert_eq!(grouped["group_id"], group_id.as_str());
    }

    #[actix_web::test]
    async fn a_repeat_would_be_suppressed_by_the_delivery_that_opened_the_window() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Once an hour per guest", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                               "suppress": {"by": ["/data/principal"], "for": "1h"}}))
            .await;
        let before = spscan_router::domain::time::now_ms();
        let first = app.ingest(share("guest@gmail.com", "medium")).await;
        assert_eq!(first.body["deliveries"][0]["status"], "pending");
        let first_id = first.body["deliveries"][0]["id"].clone();

        let rules = preview(&app, share("guest@gmail.com", "medium")).await;
        let repeat = &rules[0]["channels"][0];
        assert_eq!((repeat["outcome"].as_str(), repeat["suppressed_by"].clone()), (Some("suppressed"), first_id.clone()), "{repeat}");
        let until = at_ms(&repeat["until"]);
        assert!(until >= before + 3_600_000 && until <= spscan_router::domain::time::now_ms() + 3_600_000, "an hour after the first: {repeat}");

        let worse = preview(&app, share("guest@gmail.com", "critical")).await;
        assert_eq!(worse[0]["channels"][0]["outcome"], "send", "more severe than the event that opened the window");
        let other = preview(&app, share("other@gmail.com", "medium")).await;
        assert_eq!(other[0]["channels"][0]["outcome"], "send", "another key");
        let mut later = share("guest@gmail.com", "medium");
        later["at"] = json!(rfc3339(until));
        assert_eq!(preview(&app, later).await[0]["channels"][0]["outcome"], "send", "the window has ended by then");

        let repeat = app.ingest(share("guest@gmail.com", "medium")).await;
        let stored = app.delivery(repeat.body["deliveries"][0]["id"].as_str().unwrap()).await;
        assert_eq!((stored["status"].as_str(), stored["suppressed_by"].clone()), (Some("suppressed"), first_id), "as the preview said");
    }

    #[actix_web::test]
    async fn trying_events_leaves_no_trace() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let rule = app
            .create_rule(json!({"name": "By site", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                                "group": {"by": ["/data/site_url"], "wait": "10m", "interval": "20m"},
                                "suppress": {"by": ["/data/principal"], "for": "1h"}}))
            .await;
        // A new tenant given in full is used, not registered; a client's event id is not taken.
        let mut fabrikam = share("guest@gmail.com", "high");
        fabrikam.as_object_mut().unwrap().remove("tenant_id");
        fabrikam["tenant"] = json!({"id": "fabrikam", "display_name": "Fabrikam", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"});
        fabrikam["event_id"] = json!("spscan-try-1");
        for _ in 0..3 {
            let rules = preview(&app, fabrikam.clone()).await;
            assert_eq!(rules[0]["channels"][0]["outcome"], "group");
            assert_eq!(preview(&app, share("guest@gmail.com", "high")).await[0]["channels"][0]["group_id"], Value::Null);
        }
        assert_eq!(app.get("/api/v1/tenants/fabrikam").await.status, 404, "no tenant registered");
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"], json!([]), "no delivery");
        assert!(open_group(&app, &rule, &channel).await.is_none(), "no group opened");

        // The first real event opens the group with the full wait and is not suppressed.
        let before = spscan_router::domain::time::now_ms();
        let ingested = app.ingest(fabrikam).await;
        assert_eq!(ingested.status, 202, "the event id was free: {}", ingested.body);
        assert_eq!(ingested.body["deliveries"][0]["status"], "grouped");
        let (_, flush_at) = open_group(&app, &rule, &channel).await.expect("opened now");
        assert!(flush_at >= before + 600_000, "the full wait from the real event");
        assert!(receiver.received().is_empty());
    }

    #[actix_web::test]
    async fn a_preview_refuses_what_ingestion_refuses_naming_the_field() {
        let app = spawn_app().await;
        app.create_tenant("contoso").await;
        let ingested = app.ingest(permission_event("nobody", "permission.external_share_created", "high")).await;
        let previewed = app.post("/api/v1/rules/preview", permission_event("nobody", "permission.external_share_created", "high")).await;
        assert_eq!((previewed.status, ingested.status), (422, 422), "{}", previewed.body);
        assert_eq!(previewed.body["field"], "tenant_id");
        assert_eq!(previewed.body["detail"], ingested.body["detail"], "the same refusal as ingestion");
        let cases = [
            (json!({"severity": "high", "tenant_id": "contoso"}), "event"),
            (json!({"event": "permission.external_share_created", "severity": "urgent", "tenant_id": "contoso"}), "severity"),
            ({ let mut e = permission_event("contoso", "permission.external_share_created", "high"); e["at"] = json!("yesterday"); e }, "at"),
            ({ let mut e = permission_event("contoso", "permission.external_share_created", "high"); e["at"] = json!(5); e }, "at"),
            ({ let mut e = permission_event("contoso", "permission.external_share_created", "high"); e["data"].as_object_mut().unwrap().remove("principal"); e }, "data.principal"),
            (json!({"events": [permission_event("contoso", "permission.external_share_created", "high")]}), "events"),
        ];
        for (body, field) in cases {
            let answer = app.post("/api/v1/rules/preview", body.clone()).await;
            assert_eq!(answer.status, 422, "{body}: {}", answer.body);
            assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
        }
    }
}
