//! Slack: an Incoming Webhook message in Block Kit (SPEC section 12): a `header` with the severity
//! marker and the event's title, a `section` of fields (tenant, site, resource, principal, access;
//! storage events in human units; at most [`FIELDS_MAX`], the last saying how many more there
//! were), a `context` with the type, `event_id` and time, and a `text` fallback of one line. Every
//! text is cut to Slack's limits on a character boundary; a link is only made when its whole URL
//! fits.
//!
//! Event data is text, never markup: every value from the event goes through
//! [`slack_escape_cut`] and the only link is
//! [`slack_link`]'s, whose text is the URL it opens; `mrkdwn` texts are
//! `verbatim`, so Slack adds no links or mentions of its own (see `text/slack_mrkdwn.rs`).
//!
//! A notification (`alert.group`) is one summary message instead: see [`group`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::text::group::is_notification;
use super::text::{cut, facts, more_facts, slack_escape_cut, slack_link, summary, test_note, title, Fact};
use super::{json_body, parse_payload, single, ChannelType, Config, Item, Prepared, Presentation, Request, Sending, Target, Verdict};
use crate::domain::Invalid;

pub mod group;

pub struct Slack;

impl ChannelType for Slack {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "slack",
            label: "Slack",
            help: "An Incoming Webhook of your Slack app (api.slack.com/apps → Incoming Webhooks). The URL is a secret: it is shown masked once saved.",
            url_label: "Slack webhook URL",
            url_placeholder: "https://hooks.slack.com/services/…",
            headers_in_form: false,
        }
    }

    fn url_is_secret(&self) -> bool {
        true
    }

    /// Slack takes about one message per second per webhook.
    fn default_rate_limit(&self) -> Option<u32> {
        Some(1)
    }

    fn prepare(&self, _config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(Slack))
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

impl Prepared for Slack {
    fn request(&self, _target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        let payload = parse_payload(items[0].payload);
        let body = if is_notification(&payload) { group::render(&payload) } else { render(&payload) };
        single(json_body(&body), Vec::new())
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

/// The Block Kit body for an event payload (section 4).
pub fn render(payload: &Value) -> Value {
    let severity = payload["severity"].as_str().unwrap_or("low");
    let event = payload["event"].as_str().unwrap_or("event");
    // `plain_text` is shown as written (Slack parses nothing in it); only the line breaks go.
    let header = cut(&format!("{} {}: {}{}", marker(severity), severity.to_uppercase(), title(event), test_note(payload)), HEADER_MAX)
        .replace(['\n', '\r'], " ");
    let mut facts = facts(payload);
    if facts.len() > FIELDS_MAX {
        let hidden = facts.len() - (FIELDS_MAX - 1);
        facts.truncate(FIELDS_MAX - 1);
        facts.push(more_facts(hidden));
    }
    let fields: Vec<Value> = facts.iter().map(field).collect();
    let context = format!(
        "`{}` · {} · {}",
        slack_escape_cut(event, CONTEXT_PART_MAX),
        slack_escape_cut(payload["event_id"].as_str().unwrap_or_default(), CONTEXT_PART_MAX),
        slack_escape_cut(payload["timestamp"].as_str().unwrap_or_default(), CONTEXT_PART_MAX)
    );
    let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } })];
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    blocks.push(json!({ "type": "context", "elements": [mrkdwn(context)] }));
    let fallback = format!("{} {}", marker(severity), slack_escape_cut(&summary(payload), TEXT_MAX - 2));
    json!({ "text": fallback, "blocks": blocks })
}

/// Longest part of the context line (type, event id, time): three of them and the separators stay
/// under [`TEXT_MAX`].
const CONTEXT_PART_MAX: usize = 900;

/// One field: the label in bold, then the value, or a link when the fact is an https URL that fits whole.
fn field(fact: &Fact) -> Value {
    let label = format!("*{}*\n", slack_escape_cut(&fact.label, LABEL_MAX));
    let room = FIELD_MAX.saturating_sub(label.chars().count());
    // A link whose URL would be cut is shown as text: a cut link leads nowhere.
    let link = if fact.link { slack_link(&fact.value).filter(|link| link.chars().count() <= room) } else { None };
    mrkdwn(format!("{label}{}", link.unwrap_or_else(|| slack_escape_cut(&fact.value, room))))
}

/// A `mrkdwn` text object. `verbatim`: Slack leaves its text as written, turning no bare URL,
/// `#channel` or `@name` in it into a link or a mention.
fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channels::text::hostile;
    use rand::SeedableRng;

    /// Slack's limits: header, fields, section and context texts, blocks, the whole message.
    fn check_limits(body: &Value) {
        let fallback = body["text"].as_str().unwrap();
        assert!(!fallback.is_empty() && fallback.chars().count() <= TEXT_MAX);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(!header.is_empty() && header.chars().count() <= HEADER_MAX, "{header}");
        let mut total = fallback.chars().count() + header.chars().count();
        for block in blocks {
            if let Some(fields) = block["fields"].as_array() {
                assert!(!fields.is_empty() && fields.len() <= FIELDS_MAX);
                for field in fields {
                    let text = field["text"].as_str().unwrap();
                    assert!(!text.is_empty() && text.chars().count() <= FIELD_MAX, "{field}");
                    total += text.chars().count();
                }
            }
            if let Some(elements) = block["elements"].as_array() {
                assert!(!elements.is_empty() && elements.len() <= 10);
                for element in elements {
                    let text = element["text"].as_str().unwrap();
                    assert!(!text.is_empty() && text.chars().count() <= TEXT_MAX, "{element}");
                    total += text.chars().count();
                }
            }
        }
        // Slack cuts messages past 40,000 characters.
        assert!(total <= 40_000, "{total} characters");
        // Valid JSON all through, and it survives a round trip as UTF-8.
        let text = serde_json::to_string(body).unwrap();
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), body);
    }

    /// Event data stayed text: no `mrkdwn` text holds a mention or a `<` other than the one link
    /// the router makes, whose text is its URL and whose URL is the event's exact `site_url`
    /// (with `&` as `&amp;` and `|`, `<`, `>` percent-encoded); every `&` starts an entity the
    /// router wrote; values are on one line; Slack adds no links or mentions (`verbatim`).
    fn check_text_only(body: &Value, payload: &Value) {
        let site = payload["data"]["site_url"].as_str().unwrap_or_default();
        let expected = site.replace('&', "&amp;").replace('|', "%7C").replace('<', "%3C").replace('>', "%3E");
        let mut texts = vec![(body["text"].as_str().unwrap(), false)];
        for block in body["blocks"].as_array().unwrap() {
            for text in block["fields"].as_array().into_iter().chain(block["elements"].as_array()).flatten() {
                assert_eq!(text["type"], "mrkdwn");
                assert_eq!(text["verbatim"], true, "{text}");
                texts.push((text["text"].as_str().unwrap(), block["type"] == "section"));
            }
        }
        for (text, field) in texts {
            for mention in ["<!", "<@", "<#"] {
                assert!(!text.contains(mention), "{mention} in {text:?}");
            }
            assert_eq!(text.matches('\n').count(), usize::from(field), "one line per value: {text:?}");
            assert!(!text.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}']), "{text:?}");
            let mut rest = text;
            let mut outside = String::new();
            while let Some(open) = rest.find('<') {
                outside.push_str(&rest[..open]);
                let close = rest[open..].find('>').map(|c| open + c).unwrap_or_else(|| panic!("an unclosed < in {text:?}"));
                let inner = &rest[open + 1..close];
                let (url, shown) = inner.split_once('|').unwrap_or_else(|| panic!("a <…> that is not a link: {inner:?}"));
                assert!(field && site.starts_with("https://"), "a link outside the site field: {text:?}");
                assert_eq!(url, shown, "a link's text is its URL");
                assert_eq!(url, expected, "a link goes to the event's site_url");
                assert!(!inner.contains('<'));
                rest = &rest[close + 1..];
            }
            outside.push_str(rest);
            assert!(!outside.contains('>'), "a stray > in {text:?}");
            for (at, _) in outside.match_indices('&') {
                let entity = &outside[at..];
                assert!(["&amp;", "&lt;", "&gt;"].iter().any(|e| entity.starts_with(e)), "a bare & in {text:?}");
            }
        }
        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
        assert!(!header.contains(['\n', '\r']));
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

    #[test]
    fn a_site_url_with_a_pipe_cannot_disguise_its_link() {
        let disguised = "https://evil.example/login?x=|https://contoso.sharepoint.com/sites/Finance";
        let payload = json!({"event_id": "e", "event": "permission.external_share_created", "severity": "high", "tenant": null,
            "data": {"site_url": disguised, "resource_path": "x", "principal": "y", "access_level": "edit", "permission_type": "z"}});
        let body = render(&payload);
        check_limits(&body);
        check_text_only(&body, &payload);
        let shown = "https://evil.example/login?x=%7Chttps://contoso.sharepoint.com/sites/Finance";
        assert_eq!(body["blocks"][1]["fields"][0]["text"], format!("*Site*\n<{shown}|{shown}>"));
    }

    #[test]
    fn hostile_values_in_every_field_stay_text() {
        for value in hostile::values() {
            for payload in hostile::payloads(&value) {
                let body = render(&payload);
                check_limits(&body);
                check_text_only(&body, &payload);
            }
        }
        // The well-behaved site in those payloads is still a link.
        let body = render(&hostile::payloads("<!channel>")[0]);
        let site = body["blocks"][1]["fields"][1]["text"].as_str().unwrap();
        assert_eq!(site, format!("*Site*\n<{0}|{0}>", hostile::SITE));
    }

    #[test]
    fn an_event_with_thousands_of_fields_shows_nine_and_says_how_many_more() {
        let data: serde_json::Map<String, Value> = (0..6000).map(|i| (format!("key_{i}"), json!(format!("value {i}")))).collect();
        let payload = json!({"event_id": "e", "event": "custom.many_fields", "severity": "low", "tenant": {"display_name": "Contoso"}, "data": data});
        let body = render(&payload);
        check_limits(&body);
        let fields = body["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), FIELDS_MAX);
        assert_eq!(fields[FIELDS_MAX - 1]["text"], "*More*\nand 5992 more fields");
    }

    #[test]
    fn random_events_stay_within_slack_limits_and_stay_text() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eca_1e75);
        for _ in 0..300 {
            let payload = hostile::random_payload(&mut rng);
            let body = render(&payload);
            check_limits(&body);
            check_text_only(&body, &payload);
        }
    }
}
