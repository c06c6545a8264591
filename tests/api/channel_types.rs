//! Slack and Teams channels: receivers on 127.0.0.1 that check every body the way the vendor
//! would (answering `400` to one that breaks a rule), and answer as the vendors do.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// Slack's rules for an Incoming Webhook message.
pub fn slack_format(body: &[u8]) -> Result<(), String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON in UTF-8: {e}"))?;
    let text = body["text"].as_str().ok_or("no `text` fallback")?;
    if text.trim().is_empty() || text.chars().count() > 40_000 {
        return Err(format!("`text` is empty or too long ({} characters)", text.chars().count()));
    }
    let blocks = body["blocks"].as_array().ok_or("no `blocks`")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("{} blocks", blocks.len()));
    }
    if blocks[0]["type"] != "header" {
        return Err("the first block is not a header".into());
    }
    for block in blocks {
        match block["type"].as_str() {
            Some("header") => {
                let header = block["text"]["text"].as_str().ok_or("a header without text")?;
                if header.is_empty() || header.chars().count() > 150 || block["text"]["type"] != "plain_text" {
                    return Err(format!("header of {} characters", header.chars().count()));
                }
            }
            // A section of text (a grouped notification's list of events), at most 3,000 characters.
            Some("section") if block.get("text").is_some() => {
                let text = block["text"]["text"].as_str().ok_or("a section whose text is not a text object")?;
                if text.is_empty() || text.chars().count() > 3000 {
                    return Err(format!("a section text of {} characters", text.chars().count()));
                }
            }
            Some("section") => {
                let fields = block["fields"].as_array().ok_or("a section without fields")?;
                if fields.is_empty() || fields.len() > 10 {
                    return Err(format!("a section with {} fields", fields.len()));
                }
                for field in fields {
                    let text = field["text"].as_str().ok_or("a field without text")?;
                    if text.is_empty() || text.chars().count() > 2000 {
                        return Err(format!("a field of {} characters", text.chars().count()));
                    }
                }
            }
            Some("context") => {
                let elements = block["elements"].as_array().ok_or("a context without elements")?;
                if elements.is_empty() || elements.len() > 10 || elements.iter().any(|e| e["text"].as_str().is_none_or(|t| t.chars().count() > 3000)) {
                    return Err("a context element breaks the limits".into());
                }
            }
            other => return Err(format!("an unexpected block {other:?}")),
        }
    }
    Ok(())
}

/// Teams' rules for a Workflows webhook message with an Adaptive Card.
pub fn teams_format(raw: &[u8]) -> Result<(), String> {
    if raw.len() >= 28 * 1024 {
        return Err(format!("{} bytes; Teams refuses cards of 28 KB", raw.len()));
    }
    let body: Value = serde_json::from_slice(raw).map_err(|e| format!("not JSON in UTF-8: {e}"))?;
    if body["type"] != "message" {
        return Err("`type` is not `message`".into());
    }
    let attachments = body["attachments"].as_array().ok_or("no attachments")?;
    if attachments.len() != 1 || attachments[0]["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Err("not exactly one Adaptive Card attachment".into());
    }
    let card = &attachments[0]["content"];
    if card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
        return Err(format!("not an Adaptive Card 1.4: {} {}", card["type"], card["version"]));
    }
    let items = card["body"].as_array().ok_or("a card without body")?;
    if items.first().is_none_or(|title| title["type"] != "TextBlock" || title["text"].as_str().is_none_or(str::is_empty)) {
        return Err("the card has no title".into());
    }
    let facts = items.iter().find(|b| b["type"] == "FactSet").and_then(|f| f["facts"].as_array()).ok_or("no FactSet")?;
    if facts.is_empty() || facts.iter().any(|f| f["title"].as_str().is_none() || f["value"].as_str().is_none()) {
        return Err("a FactSet without facts, or a fact without title and value".into());
    }
    for action in card["actions"].as_array().into_iter().flatten() {
        if action["type"] != "Action.OpenUrl" || !action["url"].as_str().is_some_and(|u| u.starts_with("https://")) {
            return Err(format!("an action that is not an https link: {action}"));
        }
    }
    Ok(())
}

/// Tenant `contoso` and a channel of `kind` at `path` on the receiver that every event goes to,
/// with `extra` fields in the create request. Returns the create answer.
async fn vendor_channel(app: &TestApp, kind: &str, receiver: &Receiver, path: &str, extra: Value) -> Value {
    let mut input = json!({"name": format!("{kind} alerts"), "type": kind, "url": receiver.url(path)});
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    app.route_everything_to(&[answer.body["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    answer.body
}

/// Events of every shape a vendor message must render: a permission event, one with a
/// 10,000-character path, non-ASCII names and emoji, a storage event and a type the router does
/// not know. Returns their delivery ids.
async fn ingest_every_shape(app: &TestApp) -> Vec<String> {
    let long = permission_event("contoso", "permission.anonymous_link_created", "critical");
    let mut long = long.clone();
    long["data"]["resource_path"] = json!(format!("Documents partagés/{}", "Résumé 📄 ".repeat(1111)).chars().take(10_000).collect::<String>());
    long["data"]["principal"] = json!("外部ユーザー 🕵️ <&> @example.jp");
    long["data"]["site_url"] = json!(format!("https://contoso.sharepoint.com/sites/{}", "ü".repeat(3000)));
    let events = json!({"events": [
        permission_event("contoso", "permission.external_share_created", "high"),
        long,
        {"event": "storage.threshold_exceeded", "severity": "medium", "tenant_id": "contoso",
         "data": {"site_url": "https://contoso.sharepoint.com/sites/HR", "current_usage": 96_636_764_160u64, "quota": 107_374_182_400u64, "threshold": 90}},
        {"event": "custom.backup_missed", "severity": "low", "tenant_id": "contoso", "data": {"job": "Nightly 🌙", "missed_runs": 3}},
    ]});
    let answer = app.ingest(events).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect()
}

fn field_texts(slack: &Value) -> Vec<String> {
    slack["blocks"][1]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap().to_string()).collect()
}

/// The facts of a Teams card as Teams shows them: its Markdown escapes (`\_`, `\<`) read.
fn facts_of(teams: &Value) -> Vec<(String, String)> {
    let card = &teams["attachments"][0]["content"];
    let set = card["body"].as_array().unwrap().iter().find(|b| b["type"] == "FactSet").unwrap();
    let shown = |text: &str| {
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('\\', Some(next)) if next.is_ascii_punctuation() => out.push(chars.next().unwrap()),
                _ => out.push(c),
            }
        }
        out
    };
    set["facts"].as_array().unwrap().iter().map(|f| (shown(f["title"].as_str().unwrap()), shown(f["value"].as_str().unwrap()))).collect()
}

on_both_backends! {
    #[actix_web::test]
    async fn a_channel_of_a_type_this_release_does_not_know_is_shown_with_why_and_nothing_is_sent_to_it() {
        let app = spawn_app().await;
        let (future, known) = (Receiver::start().await, Receiver::start().await);
        app.create_tenant("contoso").await;
        let future_id = app.create_channel("From a newer release", &future.url("/")).await["id"].as_str().unwrap().to_string();
        let known_id = app.create_channel("Known", &known.url("/")).await["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&future_id, &known_id]).await;
        // One event delivered to it while its type was known.
        let before = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivered = before.body["deliveries"].as_array().unwrap().iter().find(|d| d["channel_id"] == future_id.as_str()).unwrap()["id"].as_str().unwrap().to_string();
        app.wait_for_status(&delivered, "succeeded", Duration::from_secs(5)).await;
        // As a newer release would have stored it.
        let sql = format!("UPDATE channels SET kind = 'future-type' WHERE id = '{future_id}'");
        app.handle.change(move |conn| Ok(diesel::connection::SimpleConnection::batch_execute(conn, &sql)?)).await.unwrap();

        let shown = app.get(&format!("/api/v1/channels/{future_id}")).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        assert!(shown.body["type_error"].as_str().unwrap().contains("does not know the channel type `future-type`"), "{}", shown.body);
        assert!(shown.body["url"].as_str().unwrap().contains("••••"), "its URL may be a credential: {}", shown.body);
        assert!(app.get(&format!("/api/v1/channels/{known_id}")).await.body.get("type_error").is_none());
        let test = app.post(&format!("/api/v1/channels/{future_id}/test"), json!({})).await;
        assert_eq!(test.status, 409, "{}", test.body);
        let change = app.patch(&format!("/api/v1/channels/{future_id}"), json!({"name": "Renamed"})).await;
        assert_eq!((change.status, change.body["field"].as_str()), (422, Some("type")), "{}", change.body);

        // A bulk redelivery leaves it alone.
        let bulk = app.post("/api/v1/deliveries/redeliver", json!({"channel_id": future_id, "status": "succeeded"})).await;
        assert_eq!((bulk.status, bulk.body["count"].as_i64()), (202, Some(0)), "{}", bulk.body);
        assert_eq!(app.delivery(&delivered).await["status"], "succeeded");
        // An event for both: the known channel gets it; the other's delivery waits, unsent.
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        known.wait_for(2, None, Duration::from_secs(5)).await;
        let waiting = app.get(&format!("/api/v1/deliveries?channel_id={future_id}")).await.body["items"].clone();
        for delivery in waiting.as_array().unwrap().iter().filter(|d| d["id"] != delivered.as_str()) {
            assert_eq!((&delivery["status"], &delivery["attempt_count"]), (&json!("pending"), &json!(0)), "{delivery:#}");
        }
        assert_eq!(future.received().len(), 1, "a plain POST went to a channel of an unknown type");
    }

    #[actix_web::test]
    async fn a_channel_whose_stored_settings_no_longer_parse_is_shown_with_why_and_nothing_is_sent_to_it() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = vendor_channel(&app, "splunk", &receiver, "/services/collector", json!({"token": "0123456789abcdef", "batch_wait": "10ms"})).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        assert!(channel.get("type_error").is_none(), "{channel:#}");
        // As a hand edit, or a release that read settings otherwise, could leave them.
        let sql = format!(r#"UPDATE channels SET config = '{{"token": "0123456789abcdef", "batch_size": "many"}}' WHERE id = '{channel_id}'"#);
        app.handle.change(move |conn| Ok(diesel::connection::SimpleConnection::batch_execute(conn, &sql)?)).await.unwrap();

        let shown = app.get(&format!("/api/v1/channels/{channel_id}")).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        let why = shown.body["type_error"].as_str().unwrap_or_default();
        assert!(why.contains("stored settings do not parse") && why.contains("batch_size"), "{}", shown.body);
        let listed = app.get("/api/v1/channels").await.body;
        assert_eq!(listed["items"][0]["type_error"].as_str(), Some(why), "{listed:#}");
        let test = app.post(&format!("/api/v1/channels/{channel_id}/test"), json!({})).await;
        assert_eq!(test.status, 409, "{}", test.body);

        // An event for it waits, pending and unsent, until the settings are fixed.
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let waiting = app.delivery(&delivery_id).await;
        assert_eq!((&waiting["status"], &waiting["attempt_count"]), (&json!("pending"), &json!(0)), "{waiting:#}");
        let fixed = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"batch_size": 10})).await;
        assert_eq!(fixed.status, 200, "{}", fixed.body);
        assert!(fixed.body.get("type_error").is_none(), "{}", fixed.body);
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(receiver.received().len(), 1, "sent once, after the fix");
    }

    #[actix_web::test]
    async fn a_slack_channel_gets_block_kit_within_slacks_limits_for_every_kind_of_event() {
        let receiver = Receiver::start().await;
        receiver.check_format(slack_format);
        receiver.reply_with(Reply::Said(200, "ok"));
        let app = spawn_app().await;
        let channel = vendor_channel(&app, "slack", &receiver, "/services/T0001/B0002/abcdEFGH1234", json!({"rate_limit_per_second": 100})).await;
        // The URL is the credential: shown masked, and a Slack channel has no signing secret.
        assert_eq!(channel["url"], format!("http://127.0.0.1:{}/••••1234", receiver.port()), "{channel:#}");
        assert!(channel.get("secret").is_none(), "{channel:#}");
        let read = app.get(&format!("/api/v1/channels/{}", channel["id"].as_str().unwrap())).await.body;
        assert_eq!(read["url"], channel["url"]);
        assert!(!read.to_string().contains("abcdEFGH"), "{read:#}");

        let ids = ingest_every_shape(&app).await;
        for id in &ids {
            app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
        }
        assert_eq!(receiver.violations(), Vec::<String>::new());
        let got = receiver.received();
        assert_eq!(got.len(), 4);
        for request in &got {
            assert_eq!(request.path, "/services/T0001/B0002/abcdEFGH1234");
            assert_eq!(request.headers["content-type"], "application/json");
            assert!(!request.headers.contains_key("webhook-signature"), "Slack gets no Standard Webhooks headers");
        }
        let bodies: Vec<Value> = got.iter().map(Captured::json).collect();
        let by_type = |t: &str| bodies.iter().find(|b| b["blocks"].as_array().unwrap().last().unwrap().to_string().contains(t)).unwrap().clone();

        let share = by_type("permission.external_share_created");
        assert_eq!(share["blocks"][0]["text"]["text"], "🟠 HIGH: External share created");
        assert_eq!(share["text"], "🟠 HIGH: External share created in contoso Ltd: Shared Documents/Q3 forecast.xlsx (outsider@example.net)");
        let fields = field_texts(&share);
        assert!(fields.contains(&"*Site*\n<https://contoso.sharepoint.com/sites/Finance|https://contoso.sharepoint.com/sites/Finance>".to_string()), "{fields:#?}");
        assert!(fields.contains(&"*Access*\nedit".to_string()), "{fields:#?}");

        let long = by_type("permission.anonymous_link_created");
        assert!(long["blocks"][0]["text"]["text"].as_str().unwrap().starts_with("🔴 CRITICAL"));
        let fields = field_texts(&long);
        let resource = fields.iter().find(|f| f.starts_with("*Resource*")).unwrap();
        assert!(resource.ends_with('…') && resource.contains("Résumé 📄"), "cut, with its characters whole");
        assert!(fields.iter().any(|f| f.contains("外部ユーザー 🕵️ &lt;&amp;&gt; @example.jp")), "{fields:#?}");
        // The site URL is too long to link whole: it is text, never a cut link.
        assert!(fields.iter().any(|f| f.starts_with("*Site*\nhttps://contoso.sharepoint.com/sites/üü") && !f.contains('<')));

        let storage = by_type("storage.threshold_exceeded");
        assert!(field_texts(&storage).contains(&"*Usage*\n90.0 GiB of 100.0 GiB (90.0 %)".to_string()), "{storage:#}");
        let unknown = by_type("custom.backup_missed");
        assert_eq!(field_texts(&unknown)[1..], ["*Job*\nNightly 🌙".to_string(), "*Missed runs*\n3".to_string()]);
    }

    #[actix_web::test]
    async fn a_teams_channel_gets_an_adaptive_card_under_28_kb_for_every_kind_of_event() {
        let receiver = Receiver::start().await;
        receiver.check_format(teams_format);
        receiver.reply_with(Reply::Status(202));
        let app = spawn_app().await;
        let path = "/workflows/c0ffee/triggers/manual/paths/invoke?api-version=1&sig=s3cr3tS1g9";
        let channel = vendor_channel(&app, "teams", &receiver, path, json!({"rate_limit_per_second": 100})).await;
        assert_eq!(channel["url"], format!("http://127.0.0.1:{}/••••S1g9", receiver.port()), "{channel:#}");
        assert!(channel.get("secret").is_none());

        let ids = ingest_every_shape(&app).await;
        for id in &ids {
            app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
        }
        assert_eq!(receiver.violations(), Vec::<String>::new());
        let got = receiver.received();
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|r| r.path == "/workflows/c0ffee/triggers/manual/paths/invoke"));
        let bodies: Vec<Value> = got.iter().map(Captured::json).collect();
        let by_type = |t: &str| bodies.iter().find(|b| facts_of(b).iter().any(|(k, v)| k == "Type" && v == t)).unwrap().clone();

        let share = by_type("permission.external_share_created");
        let card = &share["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], "HIGH: External share created");
        assert_eq!(card["body"][0]["color"], "attention");
        assert_eq!(card["actions"][0]["url"], "https://contoso.sharepoint.com/sites/Finance");
        let facts = facts_of(&share);
        for label in ["Tenant", "Site", "Resource", "Principal", "Access", "Event id", "Time"] {
            assert!(facts.iter().any(|(k, _)| k == label), "no {label} in {facts:#?}");
        }

        let long = by_type("permission.anonymous_link_created");
        assert!(facts_of(&long).iter().any(|(k, v)| k == "Principal" && v == "外部ユーザー 🕵️ <&> @example.jp"));
        assert!(facts_of(&long).iter().any(|(k, v)| k == "Resource" && v.ends_with('…')));

        let storage = by_type("storage.threshold_exceeded");
        assert_eq!(storage["attachments"][0]["content"]["body"][0]["color"], "warning");
        assert!(facts_of(&storage).contains(&("Usage".to_string(), "90.0 GiB of 100.0 GiB (90.0 %)".to_string())));
        let unknown = by_type("custom.backup_missed");
        assert!(facts_of(&unknown).contains(&("Missed runs".to_string(), "3".to_string())));
    }

    #[actix_web::test]
    async fn slack_400_fails_at_once_404_and_410_disable_the_channel_and_429_waits() {
        let receiver = Receiver::start().await;
        receiver.check_format(slack_format);
        let app = spawn_app().await;
        let channel = vendor_channel(&app, "slack", &receiver, "/services/T1/B1/refused400", json!({"rate_limit_per_second": 100})).await;
        let channel_id = channel["id"].as_str().unwrap();

        // 400 invalid_payload: final, no retry; a person may still redeliver it.
        receiver.script(&[Reply::Said(400, "invalid_payload")]);
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let failed = app.wait_for_status(&delivery_id, "failed", Duration::from_secs(10)).await;
        assert_eq!(failed["attempt_count"], 1, "a 400 is not retried: {failed:#}");
        let error = failed["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("400") && error.contains("invalid_payload") && error.contains("not retried"), "{error}");
        receiver.script(&[Reply::Said(200, "ok")]);
        let redeliver = app.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"), json!({})).await;
        assert!(redeliver.status < 300, "{}", redeliver.body);
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(receiver.received().len(), 2);

        // 429 with Retry-After: the next attempt waits for it (the schedule alone says 100 ms).
        receiver.script(&[Reply::RetryAfter(429, "2"), Reply::Said(200, "ok")]);
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let delivered = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivered["attempt_count"], 2);
        let got = receiver.received();
        let gap = got[3].at - got[2].at;
        assert!(gap >= Duration::from_secs(2) && gap < Duration::from_secs(10), "retried after {gap:?}");

        // 404 no_service: the channel is disabled with Slack's words; the delivery waits.
        receiver.script(&[Reply::Said(404, "no_service")]);
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let read = wait_until_disabled(&app, channel_id).await;
        assert!(read["disabled_reason"].as_str().unwrap().contains("no_service"), "{read:#}");
        assert_eq!(app.delivery(&delivery_id).await["status"], "pending");
        assert_eq!(receiver.received().len(), 5, "nothing more is sent to a disabled channel");
        assert_eq!(receiver.violations(), Vec::<String>::new());

        // Enabled again, the waiting delivery goes; then 410 channel_is_archived disables it too.
        receiver.script(&[Reply::Said(200, "ok"), Reply::Said(410, "channel_is_archived")]);
        let enabled = app.patch(&format!("/api/v1/channels/{channel_id}"), json!({"enabled": true})).await;
        assert_eq!(enabled.status, 200, "{}", enabled.body);
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let read = wait_until_disabled(&app, channel_id).await;
        assert!(read["disabled_reason"].as_str().unwrap().contains("channel_is_archived"), "{read:#}");
    }

    #[actix_web::test]
    async fn a_slack_404_from_the_url_replaced_during_the_attempt_does_not_disable_the_fixed_channel() {
        let old = Receiver::start().await;
        // Slow enough (under the 5 s timeout) that the change lands during the attempt even on a
        // loaded machine.
        old.reply_with(Reply::Slow(3_500, 404));
        let new = Receiver::start().await;
        new.reply_with(Reply::Said(200, "ok"));
        let app = spawn_app().await;
        let channel = vendor_channel(&app, "slack", &old, "/services/T1/B1/oldXXXX", json!({"rate_limit_per_second": 100})).await;
        let path = format!("/api/v1/channels/{}", channel["id"].as_str().unwrap());
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        // The attempt is at the old URL when a person puts the new one in.
        old.wait_for(1, None, Duration::from_secs(5)).await;
        let fixed = app.patch(&path, json!({"url": new.url("/services/T1/B1/newYYYY")})).await;
        assert_eq!(fixed.status, 200, "{}", fixed.body);
        // The old URL's 404 arrives after the change: it fails that attempt, not the channel.
        let delivered = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivered["attempts"][0]["status_code"], 404, "{delivered:#}");
        let read = app.get(&path).await.body;
        assert!(read["enabled"] == true && read["disabled_reason"].is_null(), "{read:#}");
        assert_eq!(new.received().len(), 1);
    }

    #[actix_web::test]
    async fn a_teams_200_that_reports_throttling_is_retried_until_teams_takes_it() {
        let receiver = Receiver::start().await;
        receiver.check_format(teams_format);
        receiver.script(&[Reply::Said(
            200,
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef.0",
        )]);
        receiver.reply_with(Reply::Status(202));
        let app = spawn_app().await;
        vendor_channel(&app, "teams", &receiver, "/workflows/throttled", json!({"rate_limit_per_second": 100})).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(delivery["attempt_count"], 2, "{delivery:#}");
        assert_eq!(delivery["attempts"][0]["status_code"], 200);
        assert!(delivery["attempts"][0]["error"].as_str().unwrap().contains("throttled"), "{delivery:#}");
        assert_eq!(receiver.violations(), Vec::<String>::new());
    }

    #[actix_web::test]
    async fn slack_and_teams_channels_default_to_their_vendors_pace() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Said(200, "ok"));
        let app = spawn_app().await;
        let slack = vendor_channel(&app, "slack", &receiver, "/slack", json!({})).await;
        assert_eq!(slack["rate_limit_per_second"], 1, "{slack:#}");
        let teams = app.post("/api/v1/channels", json!({"name": "Teams", "type": "teams", "url": receiver.url("/teams")})).await;
        assert_eq!(teams.body["rate_limit_per_second"], 4, "{}", teams.body);
        let unlimited = app.post("/api/v1/channels", json!({"name": "Fast", "type": "slack", "url": receiver.url("/x"), "rate_limit_per_second": null})).await;
        assert!(unlimited.body["rate_limit_per_second"].is_null(), "{}", unlimited.body);

        let events: Vec<Value> = (0..3).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        assert_eq!(app.ingest(json!({"events": events})).await.status, 202);
        let got = receiver.wait_for(3, Some("/slack"), Duration::from_secs(10)).await;
        // One a second: the third at least a second after the first.
        assert_paced(&got.iter().map(|c| c.at).collect::<Vec<_>>(), Duration::from_secs(1), Duration::from_millis(500));
    }

    #[actix_web::test]
    async fn a_masked_url_sent_back_keeps_the_secret_url_and_a_new_one_replaces_it() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Said(200, "ok"));
        let app = spawn_app().await;
        let channel = vendor_channel(&app, "slack", &receiver, "/services/T1/B1/firstAAAA", json!({"rate_limit_per_second": 100})).await;
        let path = format!("/api/v1/channels/{}", channel["id"].as_str().unwrap());

        // A read, edited and sent back whole: the masked URL changes nothing.
        let mut edited = app.get(&path).await.body;
        edited["name"] = json!("Slack #soc");
        let kept = app.patch(&path, json!({"name": edited["name"], "url": edited["url"], "enabled": true})).await;
        assert_eq!(kept.status, 200, "{}", kept.body);
        app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        receiver.wait_for(1, Some("/services/T1/B1/firstAAAA"), Duration::from_secs(10)).await;

        // A mask that is not this channel's is refused, and says what to send.
        let wrong = app.patch(&path, json!({"url": format!("http://127.0.0.1:{}/••••ZZZZ", receiver.port())})).await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert_eq!(wrong.body["field"], "url");
        assert!(wrong.body["detail"].as_str().unwrap().contains("whole new URL"), "{}", wrong.body);

        let replaced = app.patch(&path, json!({"url": receiver.url("/services/T1/B1/secondBBBB")})).await;
        assert_eq!(replaced.status, 200, "{}", replaced.body);
        assert!(replaced.body["url"].as_str().unwrap().ends_with("/••••BBBB"), "{}", replaced.body);
        app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        receiver.wait_for(1, Some("/services/T1/B1/secondBBBB"), Duration::from_secs(10)).await;

        // Slack does not check signatures: there is no secret to rotate.
        let rotate = app.post(&format!("{path}/rotate-secret"), json!({})).await;
        assert_eq!(rotate.status, 409, "{}", rotate.body);
    }

    #[actix_web::test]
    async fn test_sends_each_vendor_its_own_sample_and_shows_the_vendors_answer() {
        let slack_receiver = Receiver::start().await;
        slack_receiver.check_format(slack_format);
        slack_receiver.reply_with(Reply::Said(200, "ok"));
        let teams_receiver = Receiver::start().await;
        teams_receiver.check_format(teams_format);
        teams_receiver.reply_with(Reply::Status(202));
        let app = spawn_app().await;
        for (kind, receiver, expect) in [("slack", &slack_receiver, 200), ("teams", &teams_receiver, 202)] {
            let channel = app.post("/api/v1/channels", json!({"name": kind, "type": kind, "url": receiver.url("/hook"), "enabled": false})).await;
            assert_eq!(channel.status, 201, "{}", channel.body);
            let test = app.post(&format!("/api/v1/channels/{}/test", channel.body["id"].as_str().unwrap()), json!({})).await;
            assert_eq!(test.status, 200, "{}", test.body);
            assert_eq!(test.body["ok"], true, "{}", test.body);
            assert_eq!(test.body["status_code"], expect);
            assert_eq!(receiver.violations(), Vec::<String>::new());
        }
        assert_eq!(slack_receiver.received()[0].json()["blocks"][0]["text"]["text"], "🟠 HIGH: External share created (test)");
        assert_eq!(
            teams_receiver.received()[0].json()["attachments"][0]["content"]["body"][0]["text"],
            "HIGH: External share created (test)"
        );
        // A refusal shows Slack's own words.
        slack_receiver.reply_with(Reply::Said(403, "action_prohibited"));
        let channel = app.post("/api/v1/channels", json!({"name": "s2", "type": "slack", "url": slack_receiver.url("/hook2")})).await;
        let test = app.post(&format!("/api/v1/channels/{}/test", channel.body["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(test.body["ok"], false, "{}", test.body);
        assert_eq!(test.body["response_excerpt"], "action_prohibited");
    }
}

async fn wait_until_disabled(app: &TestApp, channel_id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = app.get(&format!("/api/v1/channels/{channel_id}")).await.body;
        if read["enabled"] == false && !read["disabled_reason"].is_null() {
            return read;
        }
        assert!(std::time::Instant::now() < deadline, "the channel was not disabled: {read:#}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON block after `<!-- payload: {name} -->` in the README.
pub fn readme_payload(name: &str) -> Value {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let marker = format!("<!-- payload: {name} -->");
    let after = &readme[readme.find(&marker).unwrap_or_else(|| panic!("no {marker} in the README")) + marker.len()..];
    let start = after.find("```json\n").expect("a json block after the marker") + 8;
    let end = start + after[start..].find("```").unwrap();
    serde_json::from_str(&after[start..end]).unwrap_or_else(|e| panic!("the README's {name} payload is not JSON: {e}"))
}

/// The README's example event, as SPScan sends it.
pub fn readme_event() -> Value {
    json!({
        "event_id": "evt_01JD7Y2Q8V3K4M5N6P7Q8R9S0T",
        "event": "permission.external_share_created",
        "timestamp": "2026-11-28T15:36:08Z",
        "severity": "high",
        "tenant": {"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"},
        "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance", "resource_path": "Shared Documents/Q3 forecast.xlsx",
                 "permission_type": "specific_people_link", "principal": "outsider@example.net", "access_level": "edit"}
    })
}

/// The bodies a Slack and a Teams channel get for the README's example event.
pub async fn vendor_bodies_of_the_readme_event() -> (Value, Value) {
    let slack = Receiver::start().await;
    let teams = Receiver::start().await;
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (kind, receiver) in [("slack", &slack), ("teams", &teams)] {
        let channel = app.post("/api/v1/channels", json!({"name": kind, "type": kind, "url": receiver.url("/hook")})).await;
        ids.push(channel.body["id"].as_str().unwrap().to_string());
    }
    app.route_everything_to(&ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(app.ingest(readme_event()).await.status, 202);
    let slack = slack.wait_for(1, None, Duration::from_secs(10)).await[0].json();
    let teams = teams.wait_for(1, None, Duration::from_secs(10)).await[0].json();
    (slack, teams)
}

#[actix_web::test]
async fn the_readme_shows_exactly_what_slack_and_teams_get() {
    let (slack, teams) = vendor_bodies_of_the_readme_event().await;
    assert_eq!(slack_format(&serde_json::to_vec(&slack).unwrap()), Ok(()));
    assert_eq!(teams_format(&serde_json::to_vec(&teams).unwrap()), Ok(()));
    for (name, body) in [("slack", &slack), ("teams", &teams)] {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-{name}.json"));
        std::fs::write(path, serde_json::to_string_pretty(body).unwrap()).unwrap();
    }
    assert!(readme_payload("slack") == slack, "the README's Slack payload is stale; the router sends:\n{}", serde_json::to_string_pretty(&slack).unwrap());
    assert!(readme_payload("teams") == teams, "the README's Teams payload is stale; the router sends:\n{}", serde_json::to_string_pretty(&teams).unwrap());
}
