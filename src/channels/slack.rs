//! Slack: an Incoming Webhook message in Block Kit (SPEC section 12): a `header` with the severity
//! marker and the event's title, a `section` of fields (tenant, site, resource, principal, access;
//! storage events in human units), a `context` with the type, `event_id` and time, and a `text`
//! fallback of one line. Every text is cut to Slack's limits on a character boundary; a link is
//! only made when its whole URL fits.

use serde_json::{json, Value};

use super::text::{cut, facts, summary, test_note, title};
use super::{json_body, parse_payload, single, Item, Sending, ChannelType, Request, Verdict};
use crate::outbound::Target;

pub struct Slack;

impl ChannelType for Slack {
    fn request(&self, _target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        single(json_body(&render(&parse_payload(items[0].payload))), Vec::new())
    }

    /// Slack answers `200 ok`; its errors name the cause in the body (`invalid_payload`,
    /// `channel_is_archived`, `no_service`, …).
    fn judge(&self, status: u16, body: &str) -> Verdict {
        let said = body.trim();
        let cause = if said.is_empty() { String::new() } else { format!(" ({})", super::text::cut(said, 100)) };
        match status {
            200..=299 => Verdict::Delivered,
            410 => Verdict::Disable(format!("Slack answered 410 Gone{cause}: the Slack channel is archived or the webhook was removed")),
            404 => Verdict::Disable(format!("Slack answered 404 Not Found{cause}: the Slack channel or the webhook no longer exists")),
            400 => Verdict::Final(format!("Slack refused the message{cause}; it is not retried")),
            403 => Verdict::Final(format!("Slack refused the webhook{cause}; it is not retried")),
            _ => Verdict::Retry(String::new()),
        }
    }
}

/// Slack's limits: header text, a section field, section and fallback text, fields per section.
pub const HEADER_MAX: usize = 150;
pub const FIELD_MAX: usize = 2000;
pub const TEXT_MAX: usize = 3000;
pub const FIELDS_MAX: usize = 10;
/// Longest field label shown (labels of unknown event types come from their `data` keys).
const LABEL_MAX: usize = 200;

/// The marker a person sees at a glance in the header.
fn marker(severity: &str) -> &'static str {
    match severity {
        "critical" => "🔴",
        "high" => "🟠",
        "medium" => "🟡",
        _ => "⚪",
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The Block Kit body for an event payload (section 4).
pub fn render(payload: &Value) -> Value {
    let severity = payload["severity"].as_str().unwrap_or("low");
    let event = payload["event"].as_str().unwrap_or("event");
    let header = cut(&format!("{} {}: {}{}", marker(severity), severity.to_uppercase(), title(event), test_note(payload)), HEADER_MAX);
    let fields: Vec<Value> = facts(payload)
        .into_iter()
        .take(FIELDS_MAX)
        .map(|fact| {
            let label = format!("*{}*\n", cut(&escape(&fact.label), LABEL_MAX));
            let room = FIELD_MAX.saturating_sub(label.chars().count());
            let escaped = escape(&fact.value);
            // A link whose URL would be cut is shown as text: a cut link leads nowhere.
            let value = if fact.link && escaped.chars().count() * 2 + 3 <= room {
                format!("<{escaped}|{escaped}>")
            } else {
                cut(&escaped, room)
            };
            json!({ "type": "mrkdwn", "text": format!("{label}{value}") })
        })
        .collect();
    let context = cut(
        &format!(
            "`{}` · {} · {}",
            escape(event),
            escape(payload["event_id"].as_str().unwrap_or_default()),
            escape(payload["timestamp"].as_str().unwrap_or_default())
        ),
        TEXT_MAX,
    );
    let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } })];
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": context }] }));
    json!({ "text": cut(&format!("{} {}", marker(severity), escape(&summary(payload))), TEXT_MAX), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_limits(body: &Value) {
        assert!(!body["text"].as_str().unwrap().is_empty());
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(body["blocks"][0]["text"]["text"].as_str().unwrap().chars().count() <= HEADER_MAX);
        for block in blocks {
            if let Some(fields) = block["fields"].as_array() {
                assert!(fields.len() <= FIELDS_MAX);
                for field in fields {
                    assert!(field["text"].as_str().unwrap().chars().count() <= FIELD_MAX, "{field}");
                }
            }
        }
        // Valid JSON all through, and it survives a round trip as UTF-8.
        let text = serde_json::to_string(body).unwrap();
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), body);
    }

    #[test]
    fn a_permission_event_becomes_a_header_fields_and_context() {
        let payload = json!({"event_id": "evt_1", "event": "permission.external_share_created", "timestamp": "2026-11-28T15:36:08Z",
            "severity": "high", "tenant": {"id": "contoso", "display_name": "Contoso Ltd"},
            "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance", "resource_path": "Shared Documents/Q3 forecast.xlsx",
                     "permission_type": "specific_people_link", "principal": "outsider@example.net", "access_level": "edit"}});
        let body = render(&payload);
        check_limits(&body);
        assert_eq!(body["blocks"][0]["text"]["text"], "🟠 HIGH: External share created");
        let fields = body["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(fields[0]["text"], "*Tenant*\nContoso Ltd");
        assert_eq!(fields[1]["text"], "*Site*\n<https://contoso.sharepoint.com/sites/Finance|https://contoso.sharepoint.com/sites/Finance>");
        assert!(body["text"].as_str().unwrap().contains("outsider@example.net"));
        assert!(body["blocks"][2]["elements"][0]["text"].as_str().unwrap().contains("evt_1"));
    }

    #[test]
    fn long_and_foreign_inputs_stay_within_slack_limits() {
        let long_path = format!("Shared Documents/{}", "Résumé 📄 ".repeat(1200));
        let payload = json!({"event_id": "evt_2", "event": format!("permission.{}", "very_long_action_".repeat(20)),
            "timestamp": "2026-11-28T15:36:08Z", "severity": "critical", "tenant": {"display_name": "Société Générale <&> 🏦".repeat(50)},
            "data": {"site_url": format!("https://contoso.sharepoint.com/sites/{}", "x".repeat(5000)), "resource_path": long_path,
                     "principal": "外部ユーザー@example.jp", "access_level": "edit"}});
        let body = render(&payload);
        check_limits(&body);
        // The site URL is too long to link whole: shown as cut text, never as a cut link.
        let site = body["blocks"][1]["fields"][1]["text"].as_str().unwrap();
        assert!(!site.contains('<') && site.ends_with('…'), "{site}");
        assert!(body["blocks"][1]["fields"][0]["text"].as_str().unwrap().contains("&lt;&amp;&gt;"));
    }

    #[test]
    fn slack_answers_are_judged_as_specified() {
        assert_eq!(Slack.judge(200, "ok"), Verdict::Delivered);
        assert!(matches!(Slack.judge(410, "channel_is_archived"), Verdict::Disable(r) if r.contains("channel_is_archived")));
        assert!(matches!(Slack.judge(404, "no_service"), Verdict::Disable(r) if r.contains("no_service")));
        assert!(matches!(Slack.judge(400, "invalid_payload"), Verdict::Final(r) if r.contains("invalid_payload")));
        assert!(matches!(Slack.judge(403, "action_prohibited"), Verdict::Final(_)));
        assert!(matches!(Slack.judge(429, "rate_limited"), Verdict::Retry(_)));
        assert!(matches!(Slack.judge(500, ""), Verdict::Retry(_)));
    }

    #[test]
    fn the_test_sample_says_it_is_a_test() {
        let payload: Value = serde_json::from_str(&crate::domain::payload::render_test("evt_t")).unwrap();
        let body = render(&payload);
        check_limits(&body);
        assert_eq!(body["blocks"][0]["text"]["text"], "🟠 HIGH: External share created (test)");
        assert!(body["text"].as_str().unwrap().starts_with("🟠 HIGH: External share created (test) in SPScan test tenant"));
    }

    #[test]
    fn a_huge_data_key_and_mentions_in_the_fallback_stay_harmless() {
        let payload = json!({"event_id": "e", "event": "custom.x", "severity": "low", "tenant": null,
            "data": {"k".repeat(2100): 1, "resource_path": "<!channel> & co"}});
        let body = render(&payload);
        check_limits(&body);
        let with_mention = json!({"event_id": "e", "event": "permission.x", "severity": "low", "tenant": null,
            "data": {"resource_path": "<!channel> & co", "principal": "x"}});
        assert!(render(&with_mention)["text"].as_str().unwrap().contains("&lt;!channel&gt; &amp; co"));
    }
}
