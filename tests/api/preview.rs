//! The rule preview (`POST /api/v1/rules/preview`, SPEC section 16) against real rules, groups
//! and suppression windows: every rule says whether it matches and why not, each channel what
//! would happen and which rule decides it, and trying an event leaves no trace.

use fantoccini::Locator;
use serde_json::{json, Value};
use spscan_router::domain::time::{now_ms, parse_rfc3339, rfc3339};
use spscan_router::store::groups;

use crate::browser::browser;
use crate::helpers::*;

const HOUR: i64 = 3_600_000;

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

/// The next `weekday` (0 = Monday) at `hour`:00 UTC, at least a day from now.
fn next(weekday: i64, hour: i64) -> i64 {
    const DAY: i64 = 24 * HOUR;
    let tomorrow = now_ms() / DAY + 1;
    // 1970-01-01 was a Thursday (3).
    let ahead = (weekday - (tomorrow + 3) % 7).rem_euclid(7);
    (tomorrow + ahead) * DAY + hour * HOUR
}

/// The open group of a rule and channel for `SITE`, as stored: `(id, flush_at)`.
async fn open_group(app: &TestApp, rule: &Value, channel: &Value) -> Option<(String, i64)> {
    let (rule, channel) = (rule["id"].as_str().unwrap().to_string(), channel["id"].as_str().unwrap().to_string());
    use spscan_router::domain::noise::{group_hash, GroupSpec};
    let settings = GroupSpec::parse(&json!({"by": ["/data/site_url"], "wait": "10m", "interval": "20m"}), "group").unwrap();
    let key = group_hash(&json!({"/data/site_url": SITE}).to_string(), &settings);
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
        let before = now_ms();
        let rules = preview(&app, share("a@gmail.com", "high")).await;
        let first = &rules[0]["channels"][0];
        assert_eq!((first["outcome"].as_str(), first["group_id"].clone()), (Some("group"), Value::Null));
        let send_at = at_ms(&first["send_at"]);
        assert!(send_at >= before + 600_000 - 1_000 && send_at <= now_ms() + 600_000 + 1_000, "now + wait: {first}");

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
        let before = now_ms();
        let first = app.ingest(share("guest@gmail.com", "medium")).await;
        assert_eq!(first.body["deliveries"][0]["status"], "pending");
        let first_id = first.body["deliveries"][0]["id"].clone();

        let rules = preview(&app, share("guest@gmail.com", "medium")).await;
        let repeat = &rules[0]["channels"][0];
        assert_eq!((repeat["outcome"].as_str(), repeat["suppressed_by"].clone()), (Some("suppressed"), first_id.clone()), "{repeat}");
        let until = at_ms(&repeat["until"]);
        assert!(until >= before + 3_600_000 && until <= now_ms() + 3_600_000, "an hour after the first: {repeat}");

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
        let before = now_ms();
        let ingested = app.ingest(fabrikam).await;
        assert_eq!(ingested.status, 202, "the event id was free: {}", ingested.body);
        assert_eq!(ingested.body["deliveries"][0]["status"], "grouped");
        let (_, flush_at) = open_group(&app, &rule, &channel).await.expect("opened now");
        assert!(flush_at >= before + 600_000, "the full wait from the real event");
        assert!(receiver.received().is_empty());
    }

    #[actix_web::test]
    async fn a_rule_outside_its_active_hours_says_so_and_a_silenced_pair_names_its_silence() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        let office = app
            .create_rule(json!({"name": "Office hours", "event_types": ["permission.*"], "channel_ids": [channel["id"]], "priority": 10,
                                "active_hours": {"timezone": "Europe/London", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"}}))
            .await;
        let pager = app.create_rule(json!({"name": "Pager", "event_types": ["permission.*"], "channel_ids": [channel["id"]], "priority": 20})).await;
        let (saturday, monday) = (next(5, 15), next(0, 10));
        let at = |instant: i64| {
            let mut event = share("guest@gmail.com", "high");
            event["at"] = json!(rfc3339(instant));
            event
        };

        let weekend = preview(&app, at(saturday)).await;
        let closed = of(&weekend, "Office hours");
        assert_eq!((closed["matched"].clone(), closed["reason"]["kind"].clone(), closed["reason"]["path"].clone()), (json!(false), json!("active_hours"), Value::Null));
        assert_eq!(closed["reason"]["detail"], format!("at {} the rule is outside its active hours (Mon–Fri 08:00–18:00 Europe/London)", rfc3339(saturday)));
        assert_eq!(of(&weekend, "Pager")["channels"][0]["decided_by"], pager["id"], "the pager takes the weekend");
        let weekday = preview(&app, at(monday)).await;
        assert_eq!(of(&weekday, "Office hours")["channels"][0]["decided_by"], office["id"]);
        assert_eq!(of(&weekday, "Pager")["channels"][0]["decided_by"], office["id"], "office hours come first on a Monday");

        let silence = app
            .post("/api/v1/silences", json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"},
                                              "starts_at": rfc3339(monday - HOUR), "ends_at": rfc3339(monday + HOUR),
                                              "comment": "Migration", "created_by": "ana@msp.example"}))
            .await;
        assert_eq!(silence.status, 201, "{}", silence.body);
        let silenced = preview(&app, at(monday)).await;
        for rule in &silenced {
            let pair = &rule["channels"][0];
            assert_eq!((pair["decided_by"].clone(), pair["outcome"].as_str(), pair["silence_id"].clone()), (office["id"].clone(), Some("silenced"), silence.body["id"].clone()), "{rule}");
            assert_eq!((pair["group_id"].clone(), pair["suppressed_by"].clone()), (Value::Null, Value::Null));
        }
        assert_eq!(preview(&app, at(monday + 2 * HOUR)).await[0]["channels"][0]["outcome"], "send", "the silence has ended by then");
        assert_eq!(preview(&app, share("guest@gmail.com", "high")).await.len(), 2, "now: the silence has not started");
    }

    #[actix_web::test]
    async fn active_hours_follow_the_zones_wall_clock_across_midnight_and_a_clock_change() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.create_tenant("contoso").await;
        app.create_rule(json!({"name": "Friday night", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                               "active_hours": {"timezone": "Europe/London", "days": ["fri"], "from": "22:00", "to": "06:00"}}))
            .await;
        // 01:30–02:30 on the night the clocks go forward (2027-03-28 01:00 GMT → 02:00 BST): 01:30
        // never happens, so the window starts when the clock passes it, at 02:00 BST (01:00 UTC).
        app.create_rule(json!({"name": "Spring forward", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                               "active_hours": {"timezone": "Europe/London", "days": ["sun"], "from": "01:30", "to": "02:30"}}))
            .await;
        // The same wall-clock window on the night the clocks go back (2027-10-31 02:00 BST →
        // 01:00 GMT): 01:30 happens twice, inside both times.
        app.create_rule(json!({"name": "Fall back", "event_types": ["permission.*"], "channel_ids": [channel["id"]],
                               "active_hours": {"timezone": "Europe/London", "days": ["sun"], "from": "01:30", "to": "01:45"}}))
            .await;
        let matched = |rules: &[Value], name: &str| of(rules, name)["matched"].as_bool().unwrap();
        let at = |instant: &str| {
            let mut event = share("guest@gmail.com", "high");
            event["at"] = json!(instant);
            event
        };
        for (instant, rule, expected) in [
            ("2027-01-01T21:59:00Z", "Friday night", false),
            ("2027-01-01T22:00:00Z", "Friday night", true),
            ("2027-01-02T05:59:00Z", "Friday night", true),
            ("2027-01-02T06:00:00Z", "Friday night", false),
            ("2027-01-03T03:00:00Z", "Friday night", false),
            ("2027-01-01T03:00:00Z", "Friday night", false),
            ("2027-03-28T00:59:00Z", "Spring forward", false),
            ("2027-03-28T01:00:00Z", "Spring forward", true),
            ("2027-03-28T01:29:00Z", "Spring forward", true),
            ("2027-03-28T01:30:00Z", "Spring forward", false),
            ("2027-10-31T00:29:00Z", "Fall back", false),
            ("2027-10-31T00:35:00Z", "Fall back", true),
            ("2027-10-31T01:00:00Z", "Fall back", false),
            ("2027-10-31T01:35:00Z", "Fall back", true),
            ("2027-10-31T01:45:00Z", "Fall back", false),
        ] {
            assert_eq!(matched(&preview(&app, at(instant)).await, rule), expected, "{rule} at {instant}");
        }
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

/// The Rules page's "Try an event": a rule with two conditions and grouping, made through the
/// API, a group opened by a real event; trying a similar event says the rule matches and the
/// event joins that group, trying another names the condition that fails.
#[actix_web::test]
async fn a_person_tries_an_event_on_the_rules_page_and_sees_it_join_a_group() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let channel = app.create_channel("SOC", &receiver.url("/")).await;
    app.create_tenant("contoso").await;
    let rule = app
        .create_rule(json!({"name": "Gmail edits by site", "event_types": ["permission.*"], "channel_ids": [channel["id"]], "priority": 10,
                            "conditions": {"all": [{"path": "/data/access_level", "op": "eq", "value": "edit"},
                                                   {"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}]},
                            "group": {"by": ["/data/site_url"], "wait": "10m", "interval": "20m"}}))
        .await;
    let everything = app.create_rule(json!({"name": "Everything", "event_types": ["*"], "channel_ids": [channel["id"]]})).await;
    let ingested = app.ingest(share("first@gmail.com", "high")).await;
    assert_eq!(ingested.body["deliveries"][0]["status"], "grouped", "{}", ingested.body);
    let (group_id, _) = open_group(&app, &rule, &channel).await.expect("a group is open");

    let browser = browser().await;
    browser.sign_in(&app.base).await;
    browser.client.find(Locator::LinkText("Rules")).await.unwrap().click().await.unwrap();
    let form = "//form[@aria-label='Try an event']";
    let sample = browser.wait_for("form[aria-label='Try an event'] textarea").await.prop("value").await.unwrap().unwrap_or_default();
    let sample: Value = serde_json::from_str(&sample).expect("the sample is JSON");
    assert_eq!((sample["event"].as_str(), sample["tenant_id"].as_str()), (Some("permission.external_share_created"), Some("contoso")), "{sample}");

    let label = "Event (JSON, as for POST /api/v1/events)";
    browser.fill(form, label, &share("second@gmail.com", "medium").to_string()).await;
    browser.click_button(form, "Try").await;
    let rule_id = rule["id"].as_str().unwrap();
    let tried = browser.wait_for_text(&format!("li[data-rule-id='{rule_id}']"), "matches").await.text().await.unwrap();
    assert!(tried.contains(&format!("SOC: joins group {group_id}, sent at ")), "{tried}");
    assert!(tried.contains("decided by this rule"), "{tried}");
    let other = browser.wait_for_text(&format!("li[data-rule-id='{}']", everything["id"].as_str().unwrap()), "matches").await.text().await.unwrap();
    assert!(other.contains("decided by “Gmail edits by site”"), "{other}");
    browser.screenshot("rules-try-an-event").await;

    // An event the condition does not take: the leaf is named; an unknown tenant is refused.
    browser.fill(form, label, &share("someone@contoso.com", "medium").to_string()).await;
    browser.click_button(form, "Try").await;
    let missed = browser.wait_for_text(&format!("li[data-rule-id='{rule_id}']"), "no match").await.text().await.unwrap();
    assert!(missed.contains(r#"/data/principal holds "someone@contoso.com""#) && missed.contains("(at conditions.all[1])"), "{missed}");
    browser.fill(form, label, &permission_event("nobody", "permission.external_share_created", "high").to_string()).await;
    browser.click_button(form, "Try").await;
    browser.wait_for_text("[data-field='event'] .error", "no tenant `nobody`").await;
    browser.only_refused(422, "/api/v1/rules/preview").await;
    browser.assert_no_problems("trying events").await;

    let log = app.get("/api/v1/deliveries").await.body;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "only the real event's delivery: {log}");
    browser.client.clone().close().await.unwrap();
}
