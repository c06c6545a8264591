//! Noise control (SPEC section 16) through the API with real receivers: conditions, priority,
//! suppression, grouping into notifications, and the 422s of malformed rule fields.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn share(site: &str, principal: &str, severity: &str) -> Value {
    let mut event = permission_event("contoso", "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event["data"]["principal"] = json!(principal);
    event
}

async fn ingest_batch(app: &TestApp, events: Vec<Value>) -> Vec<Value> {
    let answer = app.post("/api/v1/events", json!({ "events": events })).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.body["results"].as_array().unwrap().iter().flat_map(|r| r["deliveries"].as_array().unwrap().clone()).collect()
}

/// Waits until the rules preview says the first rule's first channel would get `outcome` for
/// `event` (a window or a silence ending is seen by the preview as by ingestion).
async fn wait_for_outcome(app: &TestApp, event: Value, outcome: &str, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let preview = app.post("/api/v1/rules/preview", event.clone()).await;
        if preview.body["rules"][0]["channels"][0]["outcome"] == outcome {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not `{outcome}` yet: {}", preview.body);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

const SITE_A: &str = "https://contoso.sharepoint.com/sites/Finance";
const SITE_B: &str = "https://contoso.sharepoint.com/sites/HR";

on_both_backends! {
    #[actix_web::test]
    async fn a_burst_becomes_one_notification_then_a_follow_up_holds_only_the_new_events() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let rule = app
            .create_rule(json!({"name": "Shares by site", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                                "group": {"by": ["/data/site_url"], "wait": "1s", "interval": "2s"}}))
            .await;
        assert_eq!(rule["group"], json!({"by": ["/data/site_url"], "wait": "1s", "interval": "2s"}));

        // 200 shares of one folder, and 3 on another site.
        let burst: Vec<Value> = (0..200).map(|i| share(SITE_A, &format!("guest{i}@gmail.com"), if i == 150 { "critical" } else { "high" })).collect();
        let deliveries = ingest_batch(&app, burst).await;
        assert_eq!(deliveries.len(), 200);
        assert!(deliveries.iter().all(|d| d["status"] == "grouped"), "{:?}", deliveries[0]);
        let other = ingest_batch(&app, (0..3).map(|i| share(SITE_B, &format!("x{i}@gmail.com"), "medium")).collect()).await;
        assert!(other.iter().all(|d| d["status"] == "grouped"));

        let got = receiver.wait_for(2, None, Duration::from_secs(10)).await;
        let bodies: Vec<Value> = got.iter().map(|c| c.json()).collect();
        let a = bodies.iter().find(|b| b["group"]["key"]["/data/site_url"] == SITE_A).expect("site A's notification");
        let b = bodies.iter().find(|b| b["group"]["key"]["/data/site_url"] == SITE_B).expect("site B's notification");
        assert_eq!(a["event"], "alert.group");
        assert!(a["event_id"].as_str().unwrap().starts_with("grp_"));
        assert_eq!(a["rule"], json!({"id": rule["id"], "name": "Shares by site"}));
        assert_eq!((a["group"]["count"].as_u64(), a["group"]["earlier"].as_u64()), (Some(200), Some(0)));
        assert_eq!(a["group"]["max_severity"], "critical");
        // The oldest 100 are listed, as stored; the rest are counted.
        let listed: Vec<&str> = a["events"].as_array().unwrap().iter().map(|e| e["data"]["principal"].as_str().unwrap()).collect();
        assert_eq!((listed.len(), listed[0], listed[99], &a["truncated"]), (100, "guest0@gmail.com", "guest99@gmail.com", &json!(true)));
        assert_eq!((&a["severity"], &a["tenant"]["id"]), (&json!("critical"), &json!("contoso")), "the highest severity of all 200; their one tenant");
        assert_eq!(b["group"]["count"], 3);
        assert_ne!(a["group"]["id"], b["group"]["id"]);
        assert!(signature_is_valid(channel["secret"].as_str().unwrap(), &got[0]), "a notification is signed as usual");

        // A grouped delivery links its notification, which was delivered; it cannot be
        // redelivered itself.
        let grouped = app.delivery(deliveries[0]["id"].as_str().unwrap()).await;
        assert_eq!(grouped["status"], "grouped");
        assert_eq!(grouped["rule_id"], rule["id"]);
        let notification_id = grouped["notification_id"].as_str().expect("linked to its notification").to_string();
        let notification = app.wait_for_status(&notification_id, "succeeded", Duration::from_secs(5)).await;
        assert_eq!(notification["event"], "alert.group");
        assert_eq!(notification["group_id"], a["group"]["id"]);
        let refused = app.post(&format!("/api/v1/deliveries/{}/redeliver", deliveries[0]["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap().contains(&notification_id), "{}", refused.body);

        // Later events of site A go into a follow-up holding only them.
        ingest_batch(&app, (0..5).map(|i| share(SITE_A, &format!("late{i}@gmail.com"), "low")).collect()).await;
        let got = receiver.wait_for(3, None, Duration::from_secs(10)).await;
        let follow_up = got[2].json();
        assert_eq!(follow_up["group"]["id"], a["group"]["id"]);
        assert_eq!((follow_up["group"]["count"].as_u64(), follow_up["group"]["earlier"].as_u64()), (Some(5), Some(200)));
        assert_eq!(follow_up["events"].as_array().unwrap().len(), 5);
        assert_eq!(follow_up["severity"], "low", "the highest of this notification");
        assert_eq!(follow_up["group"]["max_severity"], "critical", "the highest so far in the group");
        assert!(follow_up["events"].as_array().unwrap().iter().all(|e| e["data"]["principal"].as_str().unwrap().starts_with("late")));
        assert_ne!(follow_up["event_id"], a["event_id"], "every notification has its own event_id");
    }

    #[actix_web::test]
    async fn a_repeat_within_the_window_is_suppressed_unless_more_severe() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Once a day per guest", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                               "suppress": {"by": ["/data/principal"], "for": "24h"}}))
            .await;
        let first = app.ingest(share(SITE_A, "guest@gmail.com", "medium")).await;
        let first_id = first.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(first.body["deliveries"][0]["status"], "pending");
        let repeat = app.ingest(share(SITE_B, "guest@gmail.com", "low")).await;
        assert_eq!(repeat.body["deliveries"][0]["status"], "suppressed");
        let same = app.ingest(share(SITE_B, "guest@gmail.com", "medium")).await;
        assert_eq!(same.body["deliveries"][0]["status"], "suppressed");
        let other = app.ingest(share(SITE_A, "other@gmail.com", "medium")).await;
        assert_eq!(other.body["deliveries"][0]["status"], "pending", "another key");
        let worse = app.ingest(share(SITE_A, "guest@gmail.com", "critical")).await;
        assert_eq!(worse.body["deliveries"][0]["status"], "pending", "more severe than the event that opened the window");
        let after_worse = app.ingest(share(SITE_A, "guest@gmail.com", "high")).await;
        let after_worse = app.delivery(after_worse.body["deliveries"][0]["id"].as_str().unwrap()).await;
        assert_eq!(after_worse["status"], "suppressed");
        assert_eq!(after_worse["suppressed_by"], worse.body["deliveries"][0]["id"], "the new window is the critical event's");

        let suppressed = app.delivery(repeat.body["deliveries"][0]["id"].as_str().unwrap()).await;
        assert_eq!(suppressed["suppressed_by"], first_id.as_str());
        receiver.wait_for(3, None, Duration::from_secs(5)).await;
        // A suppressed delivery can be sent alone, once.
        let sent = app.post(&format!("/api/v1/deliveries/{}/redeliver", suppressed["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        assert_eq!(sent.body["status"], "succeeded");
        let got = receiver.wait_for(4, None, Duration::from_secs(5)).await;
        assert_eq!(got[3].json()["data"]["site_url"], SITE_B);
        let log = app.get("/api/v1/deliveries?status=suppressed").await;
        assert_eq!(log.body["items"].as_array().unwrap().len(), 2);
    }

    #[actix_web::test]
    async fn the_lowest_priority_rule_decides_and_conditions_pick_the_events() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let everything = app.create_rule(json!({"name": "Everything", "event_types": ["*"], "channel_ids": [channel["id"]]})).await;
        let gmail = app
            .create_rule(json!({"name": "Gmail edits", "event_types": ["permission.*"], "channel_ids": [channel["id"]], "priority": 10,
                                "conditions": {"all": [{"path": "/data/principal", "op": "suffix", "value": "@GMAIL.com", "case_insensitive": true},
                                                       {"path": "/data/access_level", "op": "eq", "value": "edit"}]},
                                "suppress": {"for": "1h"}}))
            .await;
        assert_eq!(gmail["priority"], 10);
        assert_eq!(everything["priority"], 100);
        let first = app.ingest(share(SITE_A, "a@gmail.com", "low")).await;
        let second = app.ingest(share(SITE_A, "b@gmail.com", "low")).await;
        let outsider = app.ingest(share(SITE_A, "a@example.net", "low")).await;
        let d = |a: &Answer| a.body["deliveries"].as_array().unwrap().clone();
        assert_eq!(d(&first).len(), 1, "one delivery per (event, channel)");
        assert_eq!(d(&first)[0]["status"], "pending");
        assert_eq!(d(&second)[0]["status"], "suppressed", "the gmail rule decides: one per hour");
        assert_eq!(d(&outsider)[0]["status"], "pending", "the condition fails: the other rule takes it");
        assert_eq!(app.delivery(d(&second)[0]["id"].as_str().unwrap()).await["rule_id"], gmail["id"]);
        assert_eq!(app.delivery(d(&outsider)[0]["id"].as_str().unwrap()).await["rule_id"], everything["id"]);

        // A PATCH can take a field away with null.
        let patched = app.patch(&format!("/api/v1/rules/{}", gmail["id"].as_str().unwrap()), json!({"suppress": null, "priority": null})).await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        assert_eq!((patched.body["suppress"].clone(), patched.body["priority"].clone()), (Value::Null, json!(100)));
        assert!(patched.body["conditions"].is_object());
    }

    #[actix_web::test]
    async fn outside_its_active_hours_a_rule_lets_another_take_the_event() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Pager", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let every_day = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
        // Never active (the whole week, inverted) and always active (the whole week).
        let never = app
            .create_rule(json!({"name": "Office hours", "event_types": ["*"], "channel_ids": [channel["id"]], "priority": 1,
                                "active_hours": {"timezone": "europe/london", "days": every_day, "from": "00:00", "to": "24:00", "invert": true}}))
            .await;
        assert_eq!(never["active_hours"]["timezone"], "Europe/London", "stored as the zone database spells it");
        let always = app
            .create_rule(json!({"name": "After hours", "event_types": ["*"], "channel_ids": [channel["id"]], "priority": 2,
                                "active_hours": [{"timezone": "UTC", "days": every_day, "from": "00:00", "to": "24:00"}]}))
            .await;
        let answer = app.ingest(share(SITE_A, "a@gmail.com", "high")).await;
        let delivery = app.delivery(answer.body["deliveries"][0]["id"].as_str().unwrap()).await;
        assert_eq!(delivery["rule_id"], always["id"]);
        let unknown = app
            .post("/api/v1/rules", json!({"name": "R", "event_types": ["*"], "channel_ids": [channel["id"]],
                                          "active_hours": {"timezone": "Mars/Olympus", "days": ["mon"], "from": "08:00", "to": "18:00"}}))
            .await;
        assert_eq!((unknown.status, unknown.body["field"].as_str()), (422, Some("active_hours.timezone")), "{}", unknown.body);
    }

    #[actix_web::test]
    async fn editing_a_rules_grouping_closes_its_open_groups_and_new_events_open_new_ones() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let rule = app
            .create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]],
                                "group": {"by": ["/data/site_url"], "wait": "0s", "interval": "1h"}}))
            .await;
        app.ingest(share(SITE_A, "first@gmail.com", "high")).await;
        let first = receiver.wait_for(1, None, Duration::from_secs(5)).await[0].json();
        // Joins the open group, whose next flush is an hour away.
        let waiting = app.ingest(share(SITE_A, "second@gmail.com", "high")).await;
        let waiting_id = waiting.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let changed = app.patch(&format!("/api/v1/rules/{}", rule["id"].as_str().unwrap()), json!({"group": {"by": ["/data/site_url"], "wait": "1s", "interval": "1h"}})).await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        app.ingest(share(SITE_A, "third@gmail.com", "high")).await;
        let second = receiver.wait_for(2, None, Duration::from_secs(5)).await[1].json();
        assert_ne!(second["group"]["id"], first["group"]["id"], "a new group with the new settings");
        assert_eq!((second["group"]["count"].as_u64(), second["group"]["earlier"].as_u64()), (Some(1), Some(0)));
        assert_eq!(second["events"][0]["data"]["principal"], "third@gmail.com");
        let closed = app.delivery(&waiting_id).await;
        assert_eq!((closed["status"].as_str(), closed["notification_id"].as_str()), (Some("grouped"), None), "the closed group sends it at its own flush time");
    }

    #[actix_web::test]
    async fn a_group_opened_with_a_rules_old_grouping_does_not_hold_events_routed_with_the_new() {
        use spscan_router::domain::noise::{key_of, GroupSpec};
        use spscan_router::domain::routing::Joining;
        use spscan_router::domain::time::now_ms;
        use spscan_router::store::groups::Noise;
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let old = json!({"by": ["/data/site_url"], "wait": "1h", "interval": "1h"});
        let rule = app.create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]], "group": old})).await;
        let rule_id = rule["id"].as_str().unwrap().to_string();
        let changed = app.patch(&format!("/api/v1/rules/{rule_id}"), json!({"group": {"by": ["/data/site_url"], "wait": "0s", "interval": "1h"}})).await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        // An ingestion routed with the old settings (just before the edit, or on an instance that
        // has not reloaded) commits after it and opens a group with them.
        let settings = GroupSpec::parse(&old, "group").unwrap();
        let (key, key_text) = key_of(&settings.by, &json!({"data": {"site_url": SITE_A}}));
        let stale = Joining { key_hash: spscan_router::domain::noise::group_hash(&key_text, &settings), key, key_text, settings, rule_name: "Grouped".into() };
        let channel_id = channel["id"].as_str().unwrap().to_string();
        app.handle
            .store()
            .write(move |conn| Noise::lock(conn, std::iter::once((rule_id.as_str(), channel_id.as_str(), None, Some(&stale))), now_ms()).map(|_| ()))
            .await
            .unwrap();
        // An event routed with the rule as it is now goes out after the new `wait` (none), not
        // held for an hour in the stale group.
        let sent = app.ingest(share(SITE_A, "first@gmail.com", "high")).await;
        assert_eq!(sent.body["deliveries"][0]["status"], "grouped", "{}", sent.body);
        let notification = receiver.wait_for(1, None, Duration::from_secs(5)).await[0].json();
        assert_eq!((notification["group"]["count"].as_u64(), notification["events"][0]["data"]["principal"].as_str()), (Some(1), Some("first@gmail.com")));
    }

    #[actix_web::test]
    async fn a_silence_holds_matching_pairs_until_it_ends_and_bulk_redelivery_undoes_it() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        let silence = app
            .post("/api/v1/silences", json!({"matchers": {"path": "/data/site_url", "op": "eq", "value": SITE_A},
                                             "duration": "1h", "comment": "Finance migration", "created_by": "ana@msp.example"}))
            .await;
        assert_eq!(silence.status, 201, "{}", silence.body);
        let silence_id = silence.body["id"].as_str().unwrap().to_string();
        let held = app.ingest(share(SITE_A, "a@gmail.com", "critical")).await;
        assert_eq!(held.body["deliveries"][0]["status"], "silenced");
        let held_id = held.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(app.delivery(&held_id).await["silence_id"], silence_id.as_str());
        let other = app.ingest(share(SITE_B, "a@gmail.com", "critical")).await;
        assert_eq!(other.body["deliveries"][0]["status"], "pending");
        receiver.wait_for(1, None, Duration::from_secs(5)).await;

        // The undo: send what the silence held.
        let undo = app.post("/api/v1/deliveries/redeliver", json!({"silence_id": silence_id})).await;
        assert_eq!((undo.status, undo.body["count"].as_u64()), (202, Some(1)), "{}", undo.body);
        let got = receiver.wait_for(2, None, Duration::from_secs(5)).await;
        assert_eq!(got[1].json()["data"]["site_url"], SITE_A);
        app.wait_for_status(&held_id, "succeeded", Duration::from_secs(5)).await;

        let ended = app.delete(&format!("/api/v1/silences/{silence_id}")).await;
        assert_eq!(ended.status, 200, "{}", ended.body);
        let after = app.ingest(share(SITE_A, "a@gmail.com", "critical")).await;
        assert_eq!(after.body["deliveries"][0]["status"], "pending", "an ended silence holds nothing");
    }

    #[actix_web::test]
    async fn a_silence_created_while_a_group_waits_holds_its_events_at_the_flush() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]],
                               "suppress": {"by": ["/data/principal"], "for": "1h"},
                               "group": {"by": ["/data/site_url"], "wait": "5s", "interval": "1h"}}))
            .await;
        let grouped = ingest_batch(&app, (0..3).map(|i| share(SITE_A, &format!("g{i}@gmail.com"), "high")).collect()).await;
        let other = ingest_batch(&app, vec![share(SITE_B, "h@gmail.com", "high")]).await;
        assert!(grouped.iter().chain(&other).all(|d| d["status"] == "grouped"));
        let silence = app
            .post("/api/v1/silences", json!({"matchers": {"path": "/data/site_url", "op": "eq", "value": SITE_A},
                                             "duration": "1h", "comment": "c", "created_by": "me"}))
            .await;
        assert_eq!(silence.status, 201);
        for delivery in &grouped {
            let held = app.wait_for_status(delivery["id"].as_str().unwrap(), "silenced", Duration::from_secs(10)).await;
            assert_eq!(held["silence_id"], silence.body["id"]);
        }
        // Site B's group was flushed in the same pass: its notification is the only request.
        let got = receiver.wait_for(1, None, Duration::from_secs(10)).await;
        assert_eq!(got[0].json()["group"]["key"]["/data/site_url"], SITE_B);
        assert_eq!(receiver.received().len(), 1);
        // A silenced event opened no suppression window: once the silence ends, the same
        // principal is not suppressed (by a delivery that was never sent).
        assert_eq!(app.delete(&format!("/api/v1/silences/{}", silence.body["id"].as_str().unwrap())).await.status, 200);
        wait_for_outcome(&app, share(SITE_A, "g0@gmail.com", "high"), "group", Duration::from_secs(5)).await;
        let again = app.ingest(share(SITE_A, "g0@gmail.com", "high")).await;
        assert_eq!(again.body["deliveries"][0]["status"], "grouped");
    }

    #[actix_web::test]
    async fn a_repeat_suppressed_behind_an_event_silenced_at_its_flush_is_sent_after_all() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Once per guest", "event_types": ["*"], "channel_ids": [channel["id"]],
                               "suppress": {"by": ["/data/principal"], "for": "1h"},
                               "group": {"by": [], "wait": "5s", "interval": "1h"}}))
            .await;
        let with_file = |file: &str| {
            let mut event = share(SITE_A, "z@gmail.com", "high");
            event["data"]["resource_path"] = json!(file);
            event
        };
        let first = app.ingest(with_file("secret.docx")).await.body["deliveries"][0].clone();
        assert_eq!(first["status"], "grouped");
        let repeat = app.ingest(with_file("public.docx")).await.body["deliveries"][0].clone();
        assert_eq!((repeat["status"].as_str(), app.delivery(repeat["id"].as_str().unwrap()).await["suppressed_by"].as_str()), (Some("suppressed"), first["id"].as_str()));
        let later = app.ingest(with_file("later.docx")).await.body["deliveries"][0].clone();
        assert_eq!(later["status"], "suppressed");
        // A silence for the first event only, made while its group waits.
        let silence = app
            .post("/api/v1/silences", json!({"matchers": {"path": "/data/resource_path", "op": "eq", "value": "secret.docx"},
                                             "duration": "1h", "comment": "c", "created_by": "me"}))
            .await;
        assert_eq!(silence.status, 201, "{}", silence.body);
        app.wait_for_status(first["id"].as_str().unwrap(), "silenced", Duration::from_secs(10)).await;
        // The repeat no silence holds is sent on its own, and the later one is now its repeat.
        let sent = app.wait_for_status(repeat["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10)).await;
        assert_eq!(sent["suppressed_by"], Value::Null);
        let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(got[0].json()["data"]["resource_path"], "public.docx");
        let still = app.delivery(later["id"].as_str().unwrap()).await;
        assert_eq!((still["status"].as_str(), still["suppressed_by"].as_str()), (Some("suppressed"), repeat["id"].as_str()));
        let next = app.ingest(with_file("next.docx")).await.body["deliveries"][0].clone();
        assert_eq!(app.delivery(next["id"].as_str().unwrap()).await["suppressed_by"], repeat["id"], "the window is the repeat's now");
        assert_eq!(receiver.received().len(), 1);
    }

    #[actix_web::test]
    async fn a_suppression_window_lasts_the_rules_current_for() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let rule = app
            .create_rule(json!({"name": "Once", "event_types": ["*"], "channel_ids": [channel["id"]], "suppress": {"by": ["/data/principal"], "for": "1h"}}))
            .await;
        assert_eq!(app.ingest(share(SITE_A, "z@gmail.com", "high")).await.body["deliveries"][0]["status"], "pending");
        assert_eq!(app.ingest(share(SITE_A, "z@gmail.com", "high")).await.body["deliveries"][0]["status"], "suppressed");
        // Shortened to one second: the window opened under an hour ends a second after it opened.
        let rule_path = format!("/api/v1/rules/{}", rule["id"].as_str().unwrap());
        assert_eq!(app.patch(&rule_path, json!({"suppress": {"by": ["/data/principal"], "for": "1s"}})).await.status, 200);
        wait_for_outcome(&app, share(SITE_A, "z@gmail.com", "high"), "send", Duration::from_secs(10)).await;
        assert_eq!(app.ingest(share(SITE_A, "z@gmail.com", "high")).await.body["deliveries"][0]["status"], "pending");
        // Lengthened: a window opened under one second lasts an hour.
        assert_eq!(app.patch(&rule_path, json!({"suppress": {"by": ["/data/principal"], "for": "1h"}})).await.status, 200);
        wait_for_outcome(&app, share(SITE_A, "z@gmail.com", "high"), "suppressed", Duration::from_secs(10)).await;
        actix_web::rt::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(app.ingest(share(SITE_A, "z@gmail.com", "high")).await.body["deliveries"][0]["status"], "suppressed", "over a second after it opened");
    }

    #[actix_web::test]
    async fn a_siem_receives_every_event_unless_a_silence_names_it() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let webhook = app.create_channel("Chat", &receiver.url("/")).await;
        let siem = app.post("/api/v1/channels", json!({"name": "Splunk", "type": "splunk", "url": "http://127.0.0.1:9", "token": "00000000-0000-4000-8000-000000000000"})).await;
        assert_eq!(siem.status, 201, "{}", siem.body);
        let siem = siem.body;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Quiet", "event_types": ["*"], "channel_ids": [webhook["id"], siem["id"]],
                               "suppress": {"for": "1h"}, "group": {"wait": "1h", "interval": "1h"}}))
            .await;
        let status_of = |answer: &Answer, channel: &Value| {
            answer.body["deliveries"].as_array().unwrap().iter().find(|d| d["channel_id"] == channel["id"]).unwrap()["status"].as_str().unwrap().to_string()
        };
        let first = app.ingest(share(SITE_A, "a@gmail.com", "high")).await;
        let second = app.ingest(share(SITE_A, "a@gmail.com", "high")).await;
        assert_eq!((status_of(&first, &webhook), status_of(&first, &siem)), ("grouped".into(), "pending".into()));
        assert_eq!((status_of(&second, &webhook), status_of(&second, &siem)), ("suppressed".into(), "pending".into()));
        let anywhere = json!({"matchers": {"path": "/data/site_url", "op": "eq", "value": SITE_B}, "duration": "1h", "comment": "c", "created_by": "me"});
        assert_eq!(app.post("/api/v1/silences", anywhere).await.status, 201);
        let silenced = app.ingest(share(SITE_B, "b@gmail.com", "high")).await;
        assert_eq!((status_of(&silenced, &webhook), status_of(&silenced, &siem)), ("silenced".into(), "pending".into()), "a SIEM is exempt unless named");
        let named = json!({"matchers": {"path": "/data/site_url", "op": "eq", "value": SITE_B}, "duration": "1h", "comment": "c", "created_by": "me", "channel_ids": [siem["id"]]});
        assert_eq!(app.post("/api/v1/silences", named).await.status, 201);
        let silenced = app.ingest(share(SITE_B, "c@gmail.com", "high")).await;
        assert_eq!(status_of(&silenced, &siem), "silenced");
    }

    #[actix_web::test]
    async fn keys_of_any_length_group_and_suppress() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Long keys", "event_types": ["*"], "channel_ids": [channel["id"]],
                               "suppress": {"by": ["/data/principal"], "for": "1h"}, "group": {"by": ["/data/site_url"], "wait": "0s", "interval": "1h"}}))
            .await;
        let long = "x".repeat(6_000);
        let first = app.ingest(share(&format!("https://contoso.sharepoint.com/sites/{long}"), &format!("{long}@gmail.com"), "high")).await;
        assert_eq!(first.status, 202, "{}", first.body);
        assert_eq!(first.body["deliveries"][0]["status"], "grouped");
        let repeat = app.ingest(share(&format!("https://contoso.sharepoint.com/sites/{long}"), &format!("{long}@gmail.com"), "high")).await;
        assert_eq!((repeat.status, repeat.body["deliveries"][0]["status"].as_str()), (202, Some("suppressed")), "{}", repeat.body);
        let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
        assert_eq!(got[0].json()["group"]["key"]["/data/site_url"], format!("https://contoso.sharepoint.com/sites/{long}"));
    }

    #[actix_web::test]
    async fn reordering_a_rules_channels_keeps_its_groups_and_a_deleted_rules_notification_keeps_its_name() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let a = app.create_channel("A", &receiver.url("/a")).await;
        let b = app.create_channel("B", &receiver.url("/b")).await;
        app.create_tenant("contoso").await;
        let rule = app
            .create_rule(json!({"name": "Finance watch", "event_types": ["*"], "channel_ids": [a["id"], b["id"]],
                                "group": {"wait": "2s", "interval": "1h"}}))
            .await;
        let path = format!("/api/v1/rules/{}", rule["id"].as_str().unwrap());
        let first = app.ingest(share(SITE_A, "a@gmail.com", "high")).await;
        assert_eq!(app.patch(&path, json!({"channel_ids": [b["id"], a["id"]]})).await.status, 200);
        let second = app.ingest(share(SITE_A, "b@gmail.com", "high")).await;
        let group_of = |answer: &Answer, channel: &Value| {
            let id = answer.body["deliveries"].as_array().unwrap().iter().find(|d| d["channel_id"] == channel["id"]).unwrap()["id"].as_str().unwrap().to_string();
            id
        };
        let (d1, d2) = (app.delivery(&group_of(&first, &a)).await, app.delivery(&group_of(&second, &a)).await);
        assert_eq!(d1["group_id"], d2["group_id"], "the same channels in another order: the group stays open");
        assert_eq!(app.delete(&path).await.status, 204);
        let got = receiver.wait_for(2, None, Duration::from_secs(10)).await;
        for request in got {
            let body = request.json();
            assert_eq!(body["rule"]["name"], "Finance watch", "named after the deleted rule");
            assert_eq!(body["group"]["count"], 2);
        }
    }

    #[actix_web::test]
    async fn a_preview_past_an_open_groups_flush_does_not_promise_it() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]], "group": {"wait": "1h", "interval": "1h"}})).await;
        let real = app.ingest(share(SITE_A, "a@gmail.com", "high")).await;
        let group_id = app.delivery(real.body["deliveries"][0]["id"].as_str().unwrap()).await["group_id"].clone();
        let now = app.post("/api/v1/rules/preview", share(SITE_A, "b@gmail.com", "high")).await;
        assert_eq!(now.body["rules"][0]["channels"][0]["group_id"], group_id);
        let mut later = share(SITE_A, "b@gmail.com", "high");
        later["at"] = json!("2030-01-01T00:00:00Z");
        let later = app.post("/api/v1/rules/preview", later).await;
        let pair = &later.body["rules"][0]["channels"][0];
        assert_eq!((pair["outcome"].as_str(), pair["group_id"].clone(), pair["send_at"].as_str()), (Some("group"), Value::Null, Some("2030-01-01T01:00:00.000Z")), "{pair}");
    }

    #[actix_web::test]
    async fn malformed_noise_fields_are_refused_naming_the_path_and_nothing_is_saved() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Shares", &receiver.url("/")).await;
        let rule = |extra: Value| {
            let mut rule = json!({"name": "R", "event_types": ["*"], "channel_ids": [channel["id"]]});
            rule.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            rule
        };
        let cases = [
            (json!({"conditions": {"any": [{"path": "/a", "op": "eq", "value": 1}, {"path": "/b", "op": "exists", "value": true}, {"path": "/c", "op": "gt", "value": "5"}]}}), "conditions.any[2].value"),
            (json!({"conditions": {"all": [{"path": "data/x", "op": "eq", "value": 1}]}}), "conditions.all[0].path"),
            (json!({"conditions": {"all": [{"path": "/x", "op": "like", "value": 1}]}}), "conditions.all[0].op"),
            (json!({"conditions": {"path": "/x", "op": "regex", "value": "(unclosed"}}), "conditions.value"),
            (json!({"group": {"wait": "10m", "interval": "5m"}}), "group.wait"),
            (json!({"group": {"interval": "2d"}}), "group.interval"),
            (json!({"suppress": {"by": ["/data/principal"]}}), "suppress.for"),
            (json!({"priority": "high"}), "priority"),
        ];
        for (extra, path) in cases {
            let answer = app.post("/api/v1/rules", rule(extra.clone())).await;
            assert_eq!(answer.status, 422, "{extra}: {}", answer.body);
            assert_eq!(answer.body["errors"][0]["field"].as_str().or(answer.body["field"].as_str()), Some(path), "{extra}: {}", answer.body);
        }
        assert_eq!(app.get("/api/v1/rules").await.body["items"].as_array().unwrap().len(), 0, "nothing was saved");
    }

    #[actix_web::test]
    async fn a_group_killed_during_its_wait_sends_one_notification_with_every_event_after_the_restart() {
        let database = TestDatabase::new();
        let receiver = Receiver::start().await;
        let mut first = start_router(&database.url);
        first.api.create_tenant("contoso").await;
        let channel = first.api.create_channel("Shares", &receiver.url("/")).await;
        first
            .api
            .create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]],
                                "group": {"by": ["/data/site_url"], "wait": "5s", "interval": "1h"}}))
            .await;
        let events: Vec<Value> = (0..50).map(|i| share(SITE_A, &format!("g{i}@gmail.com"), "high")).collect();
        let answer = first.api.post("/api/v1/events", json!({ "events": events })).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let acknowledged: Vec<String> = answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()).collect();
        first.child.kill().expect("SIGKILL during the group's wait");
        first.child.wait().unwrap();
        assert!(receiver.received().is_empty(), "nothing was sent before the kill");

        let second = start_router(&database.url);
        let got = receiver.wait_for(1, None, Duration::from_secs(15)).await;
        let notification = got[0].json();
        let mut sent: Vec<String> = notification["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect();
        sent.sort();
        let mut expected = acknowledged.clone();
        expected.sort();
        assert_eq!(sent, expected, "every acknowledged event, once");
        assert_eq!(notification["group"]["count"], 50);
        let grouped = second.api.get("/api/v1/deliveries?status=grouped&limit=500").await;
        assert!(grouped.body["items"].as_array().unwrap().iter().all(|d| d["notification_id"].is_string()));
        assert_eq!(receiver.received().len(), 1, "one notification");
    }
}

#[actix_web::test]
async fn two_instances_ingesting_one_burst_send_one_notification_holding_every_event_once() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::on(Backend::Postgres);
            let receiver = Receiver::start().await;
            let start = |id: &str| start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("INSTANCE_ID", id)]).0;
            let (a, b) = (start("instance-a"), start("instance-b"));
            a.api.create_tenant("contoso").await;
            let channel = a.api.create_channel("Shares", &receiver.url("/")).await;
            a.api
                .create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]],
                                    "group": {"by": ["/data/site_url"], "wait": "5s", "interval": "1h"}}))
                .await;
            // Until b routes too (within 2 s): probes on a site of their own.
            // (Judged by when each probe was sent: a busy machine may answer late.)
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            loop {
                let sent = std::time::Instant::now();
                let answer = b.api.ingest(share("https://probe", "p@x", "low")).await;
                if !answer.body["deliveries"].as_array().unwrap().is_empty() {
                    break;
                }
                assert!(sent < deadline, "instance b never routed");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            let batches = (0..20).map(|i| {
                let api = if i % 2 == 0 { &a.api } else { &b.api };
                let events: Vec<Value> = (0..10).map(|j| share(SITE_A, &format!("g{i}-{j}@gmail.com"), "high")).collect();
                async move { api.post("/api/v1/events", json!({ "events": events })).await }
            });
            let answers = futures_util::future::join_all(batches).await;
            let mut acknowledged: Vec<String> = Vec::new();
            for answer in answers {
                assert_eq!(answer.status, 202, "{}", answer.body);
                acknowledged.extend(answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()));
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let site_a = loop {
                let site_a: Vec<Value> =
                    receiver.received().iter().map(|c| c.json()).filter(|n| n["group"]["key"]["/data/site_url"] == SITE_A).collect();
                let count: u64 = site_a.iter().map(|n| n["group"]["count"].as_u64().unwrap()).sum();
                if count >= 200 {
                    break site_a;
                }
                assert!(std::time::Instant::now() < deadline, "only {count} of 200 events were in notifications");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            };
            assert_eq!(site_a.len(), 1, "one notification for the window");
            let mut sent: Vec<String> = site_a[0]["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect();
            assert_eq!(site_a[0]["group"]["count"], 200);
            assert_eq!(site_a[0]["truncated"], true, "at most 100 listed");
            sent.sort();
            sent.dedup();
            assert_eq!(sent.len(), 100);
            // Every event is in exactly this notification: each grouped delivery names it.
            let grouped = a.api.get("/api/v1/deliveries?status=grouped&limit=500").await;
            let notification_ids: std::collections::HashSet<&str> = grouped.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| acknowledged.contains(&d["event_id"].as_str().unwrap().to_string()))
                .map(|d| d["notification_id"].as_str().expect("in a notification"))
                .collect();
            assert_eq!(notification_ids.len(), 1);
        })
        .await;
}

#[actix_web::test]
async fn a_silence_created_through_one_instance_holds_on_the_other_within_two_seconds() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::on(Backend::Postgres);
            let receiver = Receiver::start().await;
            let start = |id: &str| start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("INSTANCE_ID", id)]).0;
            let (a, b) = (start("instance-a"), start("instance-b"));
            a.api.create_tenant("contoso").await;
            let channel = a.api.create_channel("Shares", &receiver.url("/")).await;
            a.api.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            loop {
                let sent = std::time::Instant::now();
                if !b.api.ingest(share(SITE_B, "p@x", "low")).await.body["deliveries"].as_array().unwrap().is_empty() {
                    break;
                }
                assert!(sent < deadline, "instance b never routed");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            let silence = a
                .api
                .post("/api/v1/silences", json!({"matchers": {"path": "/data/site_url", "op": "eq", "value": SITE_A},
                                                 "duration": "1h", "comment": "c", "created_by": "me"}))
                .await;
            assert_eq!(silence.status, 201);
            let created = std::time::Instant::now();
            loop {
                // Each probe is judged by when it was sent, not by when a busy machine answered it.
                let sent = std::time::Instant::now();
                let answer = b.api.ingest(share(SITE_A, "x@gmail.com", "high")).await;
                if answer.body["deliveries"][0]["status"] == "silenced" {
                    break;
                }
                assert!(sent - created < Duration::from_secs(2), "instance b still sends what the silence holds after 2 s");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
}

/// Events for many keys, in batches, for the PostgreSQL interleaving tests.
fn mixed_batch(round: usize, size: usize) -> Value {
    let events: Vec<Value> = (0..size).map(|i| share(&format!("https://contoso.sharepoint.com/sites/s{}", (round * 7 + i * 13) % 23), &format!("p{}@gmail.com", i % 5), "high")).collect();
    json!({ "events": events })
}

#[actix_web::test]
async fn rule_changes_interleaved_with_grouping_ingestion_never_fail_on_postgres() {
    Backend::Postgres
        .run(async {
            let app = spawn_app().await;
            let receiver = Receiver::start().await;
            let channel = app.create_channel("Shares", &receiver.url("/")).await;
            app.create_tenant("contoso").await;
            let rule = app
                .create_rule(json!({"name": "Grouped", "event_types": ["*"], "channel_ids": [channel["id"]],
                                    "suppress": {"by": ["/data/principal", "/data/site_url"], "for": "1h"},
                                    "group": {"by": ["/data/site_url"], "wait": "0s", "interval": "1s"}}))
                .await;
            let path = format!("/api/v1/rules/{}", rule["id"].as_str().unwrap());
            for round in 0..15 {
                let ingests = (0..4).map(|k| app.post("/api/v1/events", mixed_batch(round * 4 + k, 10)));
                let interval = if round % 2 == 0 { "2s" } else { "1s" };
                let change = app.patch(&path, json!({"group": {"by": ["/data/site_url"], "wait": "0s", "interval": interval}}));
                let (answers, changed) = tokio::join!(futures_util::future::join_all(ingests), change);
                assert_eq!(changed.status, 200, "round {round}: {}", changed.body);
                for answer in answers {
                    assert_eq!(answer.status, 202, "round {round}: {}", answer.body);
                }
            }
        })
        .await;
}

#[actix_web::test]
async fn a_channel_deleted_while_its_groups_fill_and_flush_leaves_nothing_waiting_on_postgres() {
    Backend::Postgres
        .run(async {
            let app = spawn_app().await;
            let receiver = Receiver::start().await;
            app.create_tenant("contoso").await;
            let mut deleted = Vec::new();
            for round in 0..6 {
                let channel = app.create_channel(&format!("C{round}"), &receiver.url("/")).await;
                let id = channel["id"].as_str().unwrap().to_string();
                app.create_rule(json!({"name": format!("R{round}"), "event_types": ["*"], "channel_ids": [id],
                                       "suppress": {"by": ["/data/principal", "/data/site_url"], "for": "1h"},
                                       "group": {"by": ["/data/site_url"], "wait": "0s", "interval": "1s"}}))
                    .await;
                let ingests = (0..6).map(|k| app.post("/api/v1/events", mixed_batch(round * 6 + k, 10)));
                let delete = async {
                    actix_web::rt::time::sleep(Duration::from_millis(30)).await;
                    app.delete(&format!("/api/v1/channels/{id}")).await
                };
                let (answers, gone) = tokio::join!(futures_util::future::join_all(ingests), delete);
                assert_eq!(gone.status, 204, "round {round}: {}", gone.body);
                for answer in answers {
                    assert_eq!(answer.status, 202, "round {round}: {}", answer.body);
                }
                deleted.push(id);
            }
            // Whatever raced the deletes: no notification waits for a deleted channel, and no event
            // waits in a group of one (a flush finds the channel gone and cancels them).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            for id in &deleted {
                loop {
                    let pending = app.get(&format!("/api/v1/deliveries?channel_id={id}&status=pending&limit=500")).await;
                    let grouped = app.get(&format!("/api/v1/deliveries?channel_id={id}&status=grouped&limit=500")).await;
                    let waiting = grouped.body["items"].as_array().unwrap().iter().filter(|d| d["notification_id"].is_null()).count();
                    let pending = pending.body["items"].as_array().unwrap().len();
                    if pending == 0 && waiting == 0 {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "channel {id}: {pending} pending, {waiting} grouped without a notification");
                    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
        .await;
}
