//! `POST /api/v1/channel-types/{type}/preview`: the body a channel of a type would send, before
//! the channel exists, compared byte for byte with what real receivers get from a delivery and
//! from **Test**; hostile event data escaped as in a real delivery; bad input refused with 422
//! naming the field (404 for a type there is not).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// An event whose data holds what the people being watched might write to fool a reader.
fn hostile_event() -> Value {
    json!({
        "event_id": "spscan-hostile-1",
        "event": "permission.external_share_created",
        "timestamp": "2026-11-28T15:36:08Z",
        "severity": "critical",
        "tenant_id": "contoso",
        "data": {
            "site_url": "https://contoso.sharepoint.com/sites/Finance",
            "resource_path": "[Open Contoso SharePoint](https://evil.example/phish) <!channel>",
            "permission_type": "specific_people_link",
            "principal": "<@U123ABC> <https://evil.example/phish|https://contoso.sharepoint.com> R&D",
            "access_level": "**edit** <b>bold</b>"
        }
    })
}

/// Replaces every RFC 3339 second (the sample's `timestamp`, new each time) with `T`.
fn without_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        let is_time = i + 20 <= text.len()
            && text.is_char_boundary(i + 20)
            && bytes[i + 4] == b'-'
            && bytes[i + 10] == b'T'
            && bytes[i + 19] == b'Z'
            && text[i..i + 4].bytes().all(|b| b.is_ascii_digit());
        if is_time {
            out.push('T');
            i += 20;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

on_both_backends! {
    #[actix_web::test]
    async fn the_preview_is_exactly_the_body_a_slack_teams_or_webhook_delivery_sends_and_escapes_hostile_data() {
        let app = spawn_app().await;
        app.create_tenant("contoso").await;
        let mut receivers = Vec::new();
        let mut ids = Vec::new();
        for kind in ["slack", "teams", "webhook"] {
            let receiver = Receiver::start().await;
            let channel = app.post("/api/v1/channels", json!({"name": kind, "type": kind, "url": receiver.url("/hook")})).await;
            assert_eq!(channel.status, 201, "{}", channel.body);
            ids.push(channel.body["id"].as_str().unwrap().to_string());
            receivers.push((kind, receiver));
        }
        app.route_everything_to(&ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
        assert_eq!(app.ingest(hostile_event()).await.status, 202);

        for (kind, receiver) in &receivers {
            let got = receiver.wait_for(1, None, Duration::from_secs(10)).await[0].body.clone();
            let preview = app.post(&format!("/api/v1/channel-types/{kind}/preview"), json!({"event": hostile_event()})).await;
            assert_eq!(preview.status, 200, "{kind}: {}", preview.body);
            assert_eq!((&preview.body["type"], &preview.body["event_id"]), (&json!(kind), &json!("spscan-hostile-1")));
            let text = preview.body["body_text"].as_str().unwrap();
            assert_eq!(text.as_bytes(), &got[..], "{kind}: the preview differs from what the receiver got");
            assert_eq!(preview.body["body"], serde_json::from_slice::<Value>(&got).unwrap(), "{kind}");
        }
        // Event data stays text: no Slack mention or disguised link, no Teams Markdown link.
        let slack = app.post("/api/v1/channel-types/slack/preview", json!({"event": hostile_event()})).await.body["body_text"].as_str().unwrap().to_string();
        for raw in ["<!channel>", "<@U123ABC>", "<https://evil.example/phish|"] {
            assert!(!slack.contains(raw), "Slack preview holds {raw} as markup: {slack}");
        }
        assert!(slack.contains("&lt;!channel&gt;") && slack.contains("R&amp;D"), "{slack}");
        let teams = app.post("/api/v1/channel-types/teams/preview", json!({"event": hostile_event()})).await.body["body_text"].as_str().unwrap().to_string();
        for raw in ["[Open Contoso SharePoint](https://evil.example/phish)", "**edit**"] {
            assert!(!teams.contains(raw), "Teams preview holds {raw} as Markdown: {teams}");
        }
        // Nothing was stored by the previews: one event, three deliveries.
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"].as_array().unwrap().len(), 3);
    }

    #[actix_web::test]
    async fn the_preview_of_the_sample_event_is_what_test_sends() {
        let app = spawn_app().await;
        for kind in ["slack", "teams"] {
            let receiver = Receiver::start().await;
            let channel = app.post("/api/v1/channels", json!({"name": kind, "type": kind, "url": receiver.url("/hook")})).await.body;
            let tested = app.post(&format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap()), json!({})).await.body;
            assert_eq!(tested["ok"], true, "{tested}");
            let sent = String::from_utf8(receiver.received()[0].body.clone()).unwrap();
            let preview = app.request("POST", &format!("/api/v1/channel-types/{kind}/preview"), Some(Vec::new())).await;
            assert_eq!(preview.status, 200, "{}", preview.body);
            // The sample's id is new each time; Teams writes it with its `_` escaped (`evt\\_…` in JSON).
            let (ours, theirs) = (preview.body["event_id"].as_str().unwrap(), tested["event_id"].as_str().unwrap());
            let teams_form = |id: &str| id.replacen('_', "\\\\_", 1);
            let shown = preview.body["body_text"].as_str().unwrap().replace(ours, theirs).replace(&teams_form(ours), &teams_form(theirs));
            assert_eq!(without_times(&shown), without_times(&sent), "{kind}: the preview of the sample is not what Test sent");
            assert!(shown.contains("(test)"), "{kind}: {shown}");
        }
    }

    #[actix_web::test]
    async fn a_preview_with_bad_input_is_refused_naming_the_field() {
        let app = spawn_app().await;
        let unknown = app.post("/api/v1/channel-types/carrier-pigeon/preview", json!({})).await;
        assert_eq!((unknown.status, unknown.content_type.as_str()), (404, "application/problem+json"), "{}", unknown.body);
        assert!(unknown.body["detail"].as_str().unwrap().contains("`slack`"), "{}", unknown.body);
        for (body, field) in [
            (json!({"event": {"event": "Not A Type", "severity": "high", "tenant_id": "contoso", "data": {}}}), "event.event"),
            (json!({"event": permission_event("nobody", "permission.external_share_created", "high")}), "event.tenant_id"),
            (json!({"event": 3}), "event"),
            (json!({"settings": "token"}), "settings"),
            (json!({"sample": "group"}), "sample"),
            (json!([1]), "body"),
        ] {
            let answer = app.post("/api/v1/channel-types/slack/preview", body.clone()).await;
            assert_eq!((answer.status, answer.content_type.as_str()), (422, "application/problem+json"), "{body}: {}", answer.body);
            assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
        }
        // A type whose body needs its settings says which one.
        let splunk = app.post("/api/v1/channel-types/splunk/preview", json!({})).await;
        assert_eq!((splunk.status, splunk.body["field"].as_str()), (422, Some("settings.token")), "{}", splunk.body);
        let splunk = app.post("/api/v1/channel-types/splunk/preview", json!({"settings": {"token": "1a2b3c4d-0000-4000-8000-000000000000"}})).await;
        assert_eq!(splunk.status, 200, "{}", splunk.body);
        assert_eq!(splunk.body["body"]["event"]["test"], true, "{}", splunk.body);
        let malformed = app.request("POST", "/api/v1/channel-types/slack/preview", Some(b"{".to_vec())).await;
        assert_eq!(malformed.status, 400, "{}", malformed.body);
        let ingest = app.with_token(Some(INGEST_TOKEN)).post("/api/v1/channel-types/slack/preview", json!({})).await;
        assert_eq!(ingest.status, 403, "the ingest token only sends events");
    }
}
