//! Microsoft Teams: a Workflows webhook message carrying one Adaptive Card 1.4 (SPEC section 12):
//! a title coloured by severity, a `FactSet` (tenant, site, resource, principal, access, event id,
//! time) and an `Action.OpenUrl` to the site when it is an https URL, titled with the host it
//! opens. The whole body stays under [`BODY_MAX`] bytes whatever the event: past [`FACTS_MAX`]
//! facts the rest is one fact, "and N more fields"; then values are cut, then facts dropped, until
//! the serialized body fits.
//!
//! Event data is text, never markup: every value from the event goes through
//! [`teams_escape`] (see `text/teams_markdown.rs`), so nothing an event
//! says becomes a link, emphasis or a list; the only link is the action.
//!
//! A notification (`alert.group`) is one summary card instead: see [`group`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::text::group::is_notification;
use super::text::{cut, facts, link_target, more_facts, teams_escape, test_note, title, Fact};
use super::{json_body, parse_payload, single, standard_verdict, ChannelType, Config, Item, Prepared, Presentation, Request, Sending, Target, Verdict};
use crate::domain::Invalid;

pub mod group;

pub struct Teams;

impl ChannelType for Teams {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "teams",
            label: "Microsoft Teams",
            help: "In the Teams channel: Workflows → “Post to a channel when a webhook request is received”; paste its URL. It is shown masked once saved.",
            url_label: "Workflows webhook URL",
            url_placeholder: "https://…logic.azure.com/workflows/…",
            headers_in_form: false,
        }
    }

    fn url_is_secret(&self) -> bool {
        true
    }

    /// Teams takes about four messages per second per webhook.
    fn default_rate_limit(&self) -> Option<u32> {
        Some(4)
    }

    fn prepare(&self, _config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(Teams))
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

impl Prepared for Teams {
    fn request(&self, _target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        let payload = parse_payload(items[0].payload);
        let body = if is_notification(&payload) { group::render(&payload) } else { render(&payload) };
        single(json_body(&body), Vec::new())
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

/// Most facts of the event shown before the rest is summed up as "and N more fields" (the event
/// id, time and type follow them).
pub const FACTS_MAX: usize = 25;

/// The message body for an event payload (section 4).
pub fn render(payload: &Value) -> Value {
    let facts = facts(payload);
    // Start generous; cut every value shorter, then show fewer facts, until the body fits.
    let (mut shown, mut room) = (FACTS_MAX, 4000);
    loop {
        let body = render_with(payload, &facts, shown, room);
        let fits = serde_json::to_vec(&body).map_or(0, |b| b.len()) <= BODY_MAX;
        if fits || (room <= 40 && shown == 0) {
            return body;
        }
        if room > 40 {
            room /= 2;
        } else {
            shown /= 2;
        }
    }
}

/// The body with the first `shown` facts (and one for the rest) and every value cut to `room`
/// characters before it is escaped.
fn render_with(payload: &Value, facts: &[Fact], shown: usize, room: usize) -> Value {
    let severity = payload["severity"].as_str().unwrap_or("low");
    let event = payload["event"].as_str().unwrap_or("event");
    let fact = |title: &str, value: &str| json!({ "title": teams_escape(&cut(title, room.min(200))), "value": teams_escape(&cut(value, room)) });
    let mut rows: Vec<Value> = facts.iter().take(shown).map(|f| fact(&f.label, &f.value)).collect();
    if facts.len() > shown {
        let more = more_facts(facts.len() - shown);
        rows.push(fact(&more.label, &more.value));
    }
    rows.push(fact("Event id", payload["event_id"].as_str().unwrap_or_default()));
    rows.push(fact("Time", payload["timestamp"].as_str().unwrap_or_default()));
    rows.push(fact("Type", event));
    let heading = teams_escape(&cut(&format!("{}: {}", severity.to_uppercase(), title(event)), room.min(200)));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "text": format!("{heading}{}", test_note(payload)),
              "weight": "Bolder", "size": "Medium", "color": colour(severity), "wrap": true },
            { "type": "FactSet", "facts": rows }
        ]
    });
    if let Some(action) = site_action(payload["data"]["site_url"].as_str().unwrap_or_default(), room) {
        card["actions"] = json!([action]);
    }
    json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }]
    })
}

/// The one link a card holds: the exact site URL, when it is a plain https address that fits
/// whole in `room`, behind a button that names the host it opens (the host as parsed, so an
/// address cannot claim another in its path or query).
fn site_action(site: &str, room: usize) -> Option<Value> {
    let target = link_target(site).filter(|_| site.len() <= room)?;
    let host = target.host_str()?;
    Some(json!({ "type": "Action.OpenUrl", "title": format!("Open site on {host}"), "url": site }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channels::text::hostile;
    use rand::SeedableRng;

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

    /// Event data stayed text: in the title and in every fact each Markdown character follows a
    /// backslash, `](` never appears, nothing starts a list or a heading, and values are on one
    /// line; the only link is the action, to the event's exact https `site_url`, titled with the
    /// host it opens.
    fn check_text_only(body: &Value, payload: &Value) {
        let card = &body["attachments"][0]["content"];
        let items = card["body"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let title = items[0]["text"].as_str().unwrap();
        let mut texts = vec![if payload["test"] == true { title.strip_suffix(" (test)").unwrap() } else { title }];
        for fact in items[1]["facts"].as_array().unwrap() {
            texts.push(fact["title"].as_str().unwrap());
            texts.push(fact["value"].as_str().unwrap());
        }
        for text in texts {
            crate::channels::text::hostile::assert_teams_text(text);
        }
        let site = payload["data"]["site_url"].as_str().unwrap_or_default();
        if let Some(actions) = card.get("actions") {
            let actions = actions.as_array().unwrap();
            assert_eq!(actions.len(), 1);
            assert_eq!(actions[0]["type"], "Action.OpenUrl");
            assert_eq!(actions[0]["url"], site, "the link opens the event's exact site_url");
            let url = url::Url::parse(site).unwrap();
            assert!(url.scheme() == "https" && url.username().is_empty() && url.password().is_none(), "{site}");
            assert_eq!(actions[0]["title"], format!("Open site on {}", url.host_str().unwrap()));
        }
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
        assert_eq!(card["actions"][0]["title"], "Open site on contoso.sharepoint.com");
        let facts = card["body"][1]["facts"].as_array().unwrap();
        // Markdown source: Teams shows `evt_1`.
        assert!(facts.iter().any(|f| f["title"] == "Event id" && f["value"] == r"evt\_1"));
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

    /// The facts of a card as (title, value) pairs.
    fn facts_of(body: &Value) -> Vec<(String, String)> {
        let facts = body["attachments"][0]["content"]["body"][1]["facts"].as_array().unwrap();
        facts.iter().map(|f| (f["title"].as_str().unwrap().to_string(), f["value"].as_str().unwrap().to_string())).collect()
    }

    #[test]
    fn a_markdown_link_in_event_data_is_shown_as_text() {
        let payload = json!({"event_id": "e", "event": "permission.external_share_created", "severity": "high", "tenant": {"display_name": "**Contoso**"},
            "data": {"site_url": hostile::SITE, "resource_path": "[Open Contoso SharePoint](https://evil.example/phish)",
                     "principal": "outsider@example.net", "access_level": "edit", "permission_type": "link"}});
        let body = render(&payload);
        check(&body);
        check_text_only(&body, &payload);
        let facts = facts_of(&body);
        assert!(facts.contains(&("Resource".into(), r"\[Open Contoso SharePoint\]\(https://evil.example/phish\)".into())), "{facts:?}");
        assert!(facts.contains(&("Tenant".into(), r"\*\*Contoso\*\*".into())), "{facts:?}");
    }

    #[test]
    fn the_site_button_names_the_host_it_opens() {
        let action = |site: &str| {
            let payload = json!({"event_id": "e", "event": "storage.quota_changed", "severity": "low", "tenant": null, "data": {"site_url": site}});
            render(&payload)["attachments"][0]["content"]["actions"][0].clone()
        };
        let disguised = "https://evil.example/login?x=|https://contoso.sharepoint.com/sites/Finance";
        assert_eq!(action(disguised), json!({"type": "Action.OpenUrl", "title": "Open site on evil.example", "url": disguised}));
        assert_eq!(action(hostile::SITE)["title"], "Open site on contoso.sharepoint.com");
        assert_eq!(action("https://contoso.sharepoint.com@evil.example/sites/Finance"), Value::Null, "no user before the host");
        assert_eq!(action("https://evil.example/\u{202E}moc.tniopearahs"), Value::Null, "no hidden characters");
        assert_eq!(action("javascript:alert(1)"), Value::Null);
    }

    #[test]
    fn hostile_values_in_every_field_stay_text() {
        for value in hostile::values() {
            for payload in hostile::payloads(&value) {
                let body = render(&payload);
                check(&body);
                check_text_only(&body, &payload);
            }
        }
        let body = render(&hostile::payloads("<!channel>")[0]);
        assert_eq!(body["attachments"][0]["content"]["actions"][0]["url"], hostile::SITE);
    }

    #[test]
    fn an_event_with_thousands_of_fields_stays_under_28_kb() {
        let data: serde_json::Map<String, Value> = (0..6000).map(|i| (format!("key_{i}"), json!(format!("value {i}")))).collect();
        let payload = json!({"event_id": "e", "event": "custom.many_fields", "severity": "low", "tenant": {"display_name": "Contoso"}, "data": data});
        let body = render(&payload);
        check(&body);
        let facts = facts_of(&body);
        assert_eq!(facts[1], ("Key 0".into(), "value 0".into()));
        assert!(facts.contains(&("More".into(), format!("and {} more fields", 6001 - FACTS_MAX))), "{facts:?}");
        // Escaping grows text (a backslash is four bytes once escaped and serialized): measured, not guessed.
        let data: serde_json::Map<String, Value> = (0..40).map(|i| (format!("k{i}"), json!("\\".repeat(5000)))).collect();
        let payload = json!({"event_id": "e", "event": "custom.backslashes", "severity": "low", "tenant": null, "data": data});
        check(&render(&payload));
    }

    #[test]
    fn random_events_stay_under_28_kb_and_stay_text() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x7ea5);
        for _ in 0..300 {
            let payload = hostile::random_payload(&mut rng);
            let body = render(&payload);
            check(&body);
            check_text_only(&body, &payload);
        }
    }
}
