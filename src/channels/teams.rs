//! Microsoft Teams: a Workflows webhook message carrying one Adaptive Card 1.4 (SPEC section 12):
//! a title coloured by severity, a `FactSet` (tenant, site, resource, principal, access, event id,
//! time) and an `Action.OpenUrl` to the site when it is an https URL. The whole body stays under
//! [`BODY_MAX`] bytes: long values are cut until it fits.

use serde_json::{json, Value};

use super::text::{cut, facts, is_link, test_note, title};
use super::{json_body, parse_payload, single, Item, Sending, standard_verdict, ChannelType, Request, Verdict};
use crate::outbound::Target;

pub struct Teams;

impl ChannelType for Teams {
    fn request(&self, _target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        single(json_body(&render(&parse_payload(items[0].payload))), Vec::new())
    }

    /// Teams answers `200` or `202`. When it throttles a webhook it may still answer `200`, with
    /// the HTTP 429 it met inside the body (`… returned HTTP error 429 …`): that attempt is retried.
    fn judge(&self, status: u16, body: &str) -> Verdict {
        if (200..=299).contains(&status) && reports_throttling(body) {
            return Verdict::Retry("Teams reports it throttled the message (an HTTP 429 inside the answer)".into());
        }
        standard_verdict(status)
    }
}

/// Whether an answer's body says the message met an HTTP 429 on its way into Teams.
fn reports_throttling(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    lower.contains("http error 429")
        || lower.contains("\"statuscode\":429")
        || lower.contains("\"statuscode\": 429")
        || lower.contains("too many requests")
}

/// Teams refuses cards larger than about 28 KB.
pub const BODY_MAX: usize = 28_000;

fn colour(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "attention",
        "medium" => "warning",
        _ => "default",
    }
}

/// The message body for an event payload (section 4).
pub fn render(payload: &Value) -> Value {
    // Start generous, then cut every value shorter until the body fits.
    let mut room = 4000;
    loop {
        let body = render_with(payload, room);
        if serde_json::to_vec(&body).map_or(0, |b| b.len()) <= BODY_MAX || room <= 40 {
            return body;
        }
        room /= 2;
    }
}

fn render_with(payload: &Value, room: usize) -> Value {
    let severity = payload["severity"].as_str().unwrap_or("low");
    let event = payload["event"].as_str().unwrap_or("event");
    let mut facts: Vec<Value> =
        facts(payload).iter().map(|f| json!({ "title": cut(&f.label, room.min(200)), "value": cut(&f.value, room) })).collect();
    facts.push(json!({ "title": "Event id", "value": cut(payload["event_id"].as_str().unwrap_or_default(), room) }));
    facts.push(json!({ "title": "Time", "value": payload["timestamp"].as_str().unwrap_or_default() }));
    facts.push(json!({ "title": "Type", "value": cut(event, room) }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "text": cut(&format!("{}: {}{}", severity.to_uppercase(), title(event), test_note(payload)), room.min(200)),
              "weight": "Bolder", "size": "Medium", "color": colour(severity), "wrap": true },
            { "type": "FactSet", "facts": facts }
        ]
    });
    // Only a link that fits whole is offered.
    if let Some(site) = payload["data"]["site_url"].as_str().filter(|s| is_link(s) && s.len() <= room) {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Open site", "url": site }]);
    }
    json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &Value) {
        assert_eq!(body["type"], "message");
        let attachments = body["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0]["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(attachments[0]["content"]["version"], "1.4");
        assert!(attachments[0]["content"]["body"].as_array().unwrap().iter().any(|b| b["type"] == "FactSet"));
        let text = serde_json::to_string(body).unwrap();
        assert!(text.len() <= BODY_MAX, "{} bytes", text.len());
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), body);
    }

    #[test]
    fn a_high_event_is_an_attention_card_with_facts_and_a_site_link() {
        let payload = json!({"event_id": "evt_1", "event": "permission.anonymous_link_created", "timestamp": "2026-11-28T15:36:08Z",
            "severity": "high", "tenant": {"display_name": "Contoso Ltd"},
            "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance", "resource_path": "Shared Documents/Q3.xlsx",
                     "principal": "Anyone with the link", "access_level": "view"}});
        let body = render(&payload);
        check(&body);
        let card = &body["attachments"][0]["content"];
        assert_eq!(card["body"][0]["color"], "attention");
        assert_eq!(card["actions"][0]["url"], "https://contoso.sharepoint.com/sites/Finance");
        let facts = card["body"][1]["facts"].as_array().unwrap();
        assert!(facts.iter().any(|f| f["title"] == "Event id" && f["value"] == "evt_1"));
    }

    #[test]
    fn huge_and_foreign_values_are_cut_until_the_card_fits() {
        let payload = json!({"event_id": "evt_2", "event": "storage.quota_exceeded", "timestamp": "2026-11-28T15:36:08Z",
            "severity": "medium", "tenant": {"display_name": "Ünïcødé 🏢 ".repeat(3000)},
            "data": {"site_url": format!("http://intranet/{}", "p".repeat(10_000)), "current_usage": 1u64 << 40, "quota": 1u64 << 40, "threshold": 100}});
        let body = render(&payload);
        check(&body);
        let card = &body["attachments"][0]["content"];
        assert_eq!(card["body"][0]["color"], "warning");
        assert!(card.get("actions").is_none(), "http is not offered as a link");
    }

    #[test]
    fn a_200_that_reports_throttling_is_retried() {
        assert_eq!(Teams.judge(202, ""), Verdict::Delivered);
        assert_eq!(Teams.judge(200, "1"), Verdict::Delivered);
        let throttled = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0";
        assert!(matches!(Teams.judge(200, throttled), Verdict::Retry(r) if r.contains("throttled")));
        assert!(matches!(Teams.judge(200, r#"{"error":{"statusCode":429}}"#), Verdict::Retry(_)));
        assert!(matches!(Teams.judge(410, ""), Verdict::Disable(_)));
        assert!(matches!(Teams.judge(400, "bad card"), Verdict::Retry(_)));
    }
}
