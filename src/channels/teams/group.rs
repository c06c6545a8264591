//! Microsoft Teams: a notification (`alert.group`, SPEC section 16) as one Adaptive Card: a title
//! coloured by severity holding the summary line `<count> × <title> — <key values>`, one
//! `TextBlock` per event listed (up to ten, one line each), a subtle line saying what was left out
//! (`and N more (M sent earlier)`), and a `FactSet` with the rule, the group, the notification's
//! id and time, and the group's highest severity so far.
//!
//! The parts come from `text::group`; every one is event data and goes through [`teams_escape`]
//! like a single event's values. The card has no action and no link. It stays under
//! [`BODY_MAX`] bytes whatever the events: every value is cut shorter until it fits.

use serde_json::{json, Value};

use super::{colour, BODY_MAX};
use crate::channels::text::group::{group_summary, GroupSummary};
use crate::channels::text::{cut, teams_escape};

/// The message body for a notification's payload.
pub fn render(payload: &Value) -> Value {
    let summary = group_summary(payload);
    // Start generous; cut every value shorter until the body fits.
    let mut room = 1000;
    loop {
        let body = render_with(payload, &summary, room);
        let fits = serde_json::to_vec(&body).map_or(0, |b| b.len()) <= BODY_MAX;
        if fits || room <= 20 {
            return body;
        }
        room /= 2;
    }
}

/// The card with every value cut to `room` characters before it is escaped.
fn render_with(payload: &Value, summary: &GroupSummary, room: usize) -> Value {
    let severity = payload["severity"].as_str().unwrap_or("low");
    let text = |value: &str| teams_escape(&cut(value, room));
    let heading = teams_escape(&cut(&format!("{}: {}", severity.to_uppercase(), summary.headline), room.min(400)));
    let mut blocks = vec![json!({ "type": "TextBlock", "text": heading, "weight": "Bolder", "size": "Medium", "color": colour(severity), "wrap": true })];
    for item in &summary.items {
        blocks.push(json!({ "type": "TextBlock", "text": format!("• {}", text(item)), "wrap": true, "spacing": "Small" }));
    }
    if let Some(more) = &summary.more {
        blocks.push(json!({ "type": "TextBlock", "text": teams_escape(more), "isSubtle": true, "wrap": true, "spacing": "Small" }));
    }
    let fact = |title: &str, value: &str| json!({ "title": teams_escape(title), "value": text(value) });
    let read = |value: &Value| value.as_str().unwrap_or_default().to_string();
    blocks.push(json!({ "type": "FactSet", "facts": [
        fact("Rule", &read(&payload["rule"]["name"])),
        fact("Group", &read(&payload["group"]["id"])),
        fact("Notification id", &read(&payload["event_id"])),
        fact("Time", &read(&payload["timestamp"])),
        fact("Highest so far", &read(&payload["group"]["max_severity"]).to_uppercase()),
    ]}));
    let card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": blocks,
    });
    json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channels::text::hostile;
    use crate::channels::text::group::ITEMS_MAX;
    use rand::SeedableRng;

    /// Every text of the card: the TextBlocks, then each fact's title and value.
    fn texts(body: &Value) -> Vec<String> {
        let card = &body["attachments"][0]["content"];
        let mut texts = Vec::new();
        for block in card["body"].as_array().unwrap() {
            if let Some(text) = block["text"].as_str() {
                texts.push(text.to_string());
            }
            for fact in block["facts"].as_array().into_iter().flatten() {
                texts.push(fact["title"].as_str().unwrap().to_string());
                texts.push(fact["value"].as_str().unwrap().to_string());
            }
        }
        texts
    }

    /// One card under 28 KB, without actions, and event data stayed text: each Markdown
    /// character follows a backslash, `](` never appears, nothing starts a list or a heading,
    /// every text is one line.
    fn check(body: &Value) {
        assert_eq!(body["type"], "message");
        let attachments = body["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        let card = &attachments[0]["content"];
        assert_eq!(card["version"], "1.4");
        assert!(card.get("actions").is_none());
        let blocks = card["body"].as_array().unwrap();
        assert!(blocks.len() <= ITEMS_MAX + 3);
        let text = serde_json::to_string(body).unwrap();
        assert!(text.len() <= BODY_MAX, "{} bytes", text.len());
        for text in texts(body) {
            hostile::assert_teams_text(&text);
        }
    }

    #[test]
    fn the_test_sample_is_one_card_listing_its_events() {
        let payload: Value = serde_json::from_str(&crate::domain::notification::render_test("grp_t", 0)).unwrap();
        let body = render(&payload);
        check(&body);
        let texts = texts(&body);
        let card = &body["attachments"][0]["content"];
        assert_eq!(card["body"][0]["color"], "attention");
        assert_eq!(texts[0], r"CRITICAL: 3 × External share created \(test\) — https://spscan-test.sharepoint.com/sites/Finance");
        assert_eq!(texts[1], r"• MEDIUM: External share created \(test\) in SPScan test tenant: Shared Documents/Q3 forecast.xlsx \(outsider@example.net\)");
        assert_eq!(card["body"].as_array().unwrap().len(), 5, "heading, three items, the facts");
        assert!(texts.contains(&r"grp\_t".to_string()), "{texts:?}");
    }

    #[test]
    fn past_ten_events_the_rest_and_the_earlier_ones_are_counted() {
        let body = render(&hostile::notifications("Contoso")[0]);
        check(&body);
        let texts = texts(&body);
        assert!(texts[1..=ITEMS_MAX].iter().all(|t| t.starts_with("• ")), "{texts:?}");
        assert_eq!(texts[ITEMS_MAX + 1], r"and 1 more \(3 sent earlier\)");
    }

    #[test]
    fn links_and_mentions_in_keys_and_events_stay_text() {
        for value in ["<https://evil.example|click>", "[x](https://evil.example)", "<!channel>", "@here"] {
            for (i, payload) in hostile::notifications(value).iter().enumerate() {
                let body = render(payload);
                check(&body);
                let escaped = teams_escape(value);
                let texts = texts(&body);
                assert!(texts[0].ends_with(&format!("— {escaped} / {escaped} / \\(none\\)")), "{}", texts[0]);
                if i == 0 {
                    assert!(texts[1].contains(&format!(" in {escaped}")), "{}", texts[1]);
                }
            }
        }
    }

    #[test]
    fn hostile_values_everywhere_stay_text_under_28_kb() {
        for value in hostile::values() {
            for payload in hostile::notifications(&value) {
                check(&render(&payload));
            }
        }
    }

    #[test]
    fn random_notifications_stay_under_28_kb_and_stay_text() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9_0a1e);
        for _ in 0..30 {
            check(&render(&hostile::random_notification(&mut rng)));
        }
    }
}
