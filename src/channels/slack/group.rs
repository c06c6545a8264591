//! Slack: a notification (`alert.group`, SPEC section 16) as one message: a `header` with the
//! severity marker and the summary line `<count> × <title> — <key values>`, a `section` listing
//! up to ten events one line each and then what was left out (`and N more (M sent earlier)`),
//! and a `context` with the rule, the notification's id and time (and the group's highest
//! severity when it is above this notification's). The `text` fallback is the summary line.
//!
//! The parts come from `text::group`; every one is event data and goes through
//! [`slack_escape_cut`] like a single event's values. The message holds no link at all (the
//! site of each event is in its own single message's log entry), and its `mrkdwn` texts are
//! `verbatim`, so Slack adds no links or mentions of its own. Within Slack's limits whatever
//! the events: a header of [`HEADER_MAX`], items of [`ITEM_MAX`] so the section stays under
//! [`TEXT_MAX`], four blocks.

use serde_json::{json, Value};

use super::{marker, mrkdwn, CONTEXT_PART_MAX, HEADER_MAX, TEXT_MAX};
use crate::channels::text::group::{group_summary, ITEMS_MAX};
use crate::channels::text::{cut, slack_escape_cut};

/// Longest item line, escaped: ten of them, their bullets and the closing line stay under
/// [`TEXT_MAX`].
pub const ITEM_MAX: usize = 280;
/// Longest closing line (`and N more (M sent earlier)`).
const MORE_MAX: usize = 80;

const _: () = assert!(ITEMS_MAX * (ITEM_MAX + 3) + MORE_MAX <= TEXT_MAX);

/// The Block Kit body for a notification's payload.
pub fn render(payload: &Value) -> Value {
    let summary = group_summary(payload);
    let severity = payload["severity"].as_str().unwrap_or("low");
    let line = format!("{}: {}", severity.to_uppercase(), summary.headline);
    // `plain_text` is shown as written (Slack parses nothing in it); the line has no breaks.
    let header = cut(&format!("{} {line}", marker(severity)), HEADER_MAX);
    let mut lines: Vec<String> = summary.items.iter().map(|item| format!("• {}", slack_escape_cut(item, ITEM_MAX))).collect();
    lines.extend(summary.more.iter().map(|more| slack_escape_cut(more, MORE_MAX)));
    let mut context = format!(
        "Rule {} · {} · {}",
        slack_escape_cut(payload["rule"]["name"].as_str().unwrap_or_default(), CONTEXT_PART_MAX),
        slack_escape_cut(payload["event_id"].as_str().unwrap_or_default(), CONTEXT_PART_MAX),
        slack_escape_cut(payload["timestamp"].as_str().unwrap_or_default(), CONTEXT_PART_MAX)
    );
    let highest = payload["group"]["max_severity"].as_str().unwrap_or(severity);
    if highest != severity {
        context.push_str(&format!(" · highest in the group so far: {}", slack_escape_cut(&highest.to_uppercase(), 20)));
    }
    let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } })];
    if !lines.is_empty() {
        blocks.push(json!({ "type": "section", "text": mrkdwn(lines.join("\n")) }));
    }
    blocks.push(json!({ "type": "context", "elements": [mrkdwn(context)] }));
    let fallback = format!("{} {}", marker(severity), slack_escape_cut(&line, TEXT_MAX - 2));
    json!({ "text": fallback, "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channels::text::hostile;
    use rand::SeedableRng;

    const LINE_BREAKS: [char; 7] = ['\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}'];

    /// Within Slack's limits, and event data stayed text: no `<` or `>` anywhere (the summary
    /// makes no link), every `&` starts an entity the router wrote, every `mrkdwn` text is
    /// `verbatim`, and each value is one line (the section has one line per item).
    fn check(body: &Value) {
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        let header = &blocks[0]["text"];
        assert_eq!(header["type"], "plain_text");
        let header = header["text"].as_str().unwrap();
        assert!(!header.is_empty() && header.chars().count() <= HEADER_MAX, "{header}");
        assert!(!header.contains(LINE_BREAKS), "{header:?}");
        let mut texts = vec![(body["text"].as_str().unwrap(), false)];
        for block in &blocks[1..] {
            let section = block["text"].is_object();
            for text in block["elements"].as_array().into_iter().flatten().chain(section.then_some(&block["text"])) {
                assert_eq!(text["type"], "mrkdwn");
                assert_eq!(text["verbatim"], true, "{text}");
                texts.push((text["text"].as_str().unwrap(), section));
            }
        }
        let mut total = header.chars().count();
        for (text, section) in texts {
            assert!(!text.is_empty() && text.chars().count() <= TEXT_MAX, "{} characters", text.chars().count());
            total += text.chars().count();
            if section {
                assert!(text.lines().count() <= ITEMS_MAX + 1, "{text:?}");
            } else {
                assert!(!text.contains('\n'), "{text:?}");
            }
            assert!(!text.contains(['<', '>']), "markup in {text:?}");
            assert!(!text.contains(&LINE_BREAKS[1..]), "{text:?}");
            for (at, _) in text.match_indices('&') {
                assert!(["&amp;", "&lt;", "&gt;"].iter().any(|e| text[at..].starts_with(e)), "a bare & in {text:?}");
            }
        }
        assert!(total <= 40_000, "{total} characters");
        let text = serde_json::to_string(body).unwrap();
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), body);
    }

    #[test]
    fn the_test_sample_is_one_summary_message_with_its_events_listed() {
        let payload: Value = serde_json::from_str(&crate::domain::notification::render_test("grp_t", 0)).unwrap();
        let body = render(&payload);
        check(&body);
        let site = "https://spscan-test.sharepoint.com/sites/Finance";
        assert_eq!(body["blocks"][0]["text"]["text"], format!("🔴 CRITICAL: 3 × External share created (test) — {site}"));
        assert_eq!(body["text"], format!("🔴 CRITICAL: 3 × External share created (test) — {site}"));
        let items = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(items.lines().count(), 3, "{items}");
        assert!(items.starts_with("• MEDIUM: External share created (test) in SPScan test tenant: Shared Documents/Q3 forecast.xlsx (outsider@example.net)\n"), "{items}");
        let context = body["blocks"][2]["elements"][0]["text"].as_str().unwrap();
        assert!(context.starts_with("Rule SPScan test rule · grp_t · 1970-01-01T00:00:00Z"), "{context}");
    }

    #[test]
    fn past_ten_events_the_rest_and_the_earlier_ones_are_counted() {
        let payload = &hostile::notifications("Contoso")[0];
        assert_eq!(payload["group"]["count"], 11);
        let body = render(payload);
        check(&body);
        let items = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(items.lines().count(), ITEMS_MAX + 1);
        assert_eq!(items.lines().last(), Some("and 1 more (3 sent earlier)"));
        let context = |body: &Value| body["blocks"][2]["elements"][0]["text"].as_str().unwrap().to_string();
        assert!(!context(&body).contains("highest"), "{}", context(&body));
        // A quieter notification of a group that once had a critical event says so.
        let mut quieter = payload.clone();
        quieter["severity"] = json!("medium");
        assert!(context(&render(&quieter)).ends_with(" · highest in the group so far: CRITICAL"));
    }

    #[test]
    fn links_and_mentions_in_keys_and_events_stay_text() {
        for value in ["<https://evil.example|click>", "[x](https://evil.example)", "<!channel>", "@here", "<!here> & <@U123>"] {
            for (i, payload) in hostile::notifications(value).iter().enumerate() {
                let body = render(payload);
                check(&body);
                let escaped = slack_escape_cut(value, 100);
                // The key values in the summary line, escaped as a single event's values are.
                let fallback = body["text"].as_str().unwrap();
                assert!(fallback.ends_with(&format!("— {escaped} / {escaped} / (none)")), "{fallback}");
                // `plain_text`: shown as written, Slack parses nothing in it.
                let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
                assert!(header.contains(&format!("— {value} / ")), "{header}");
                if i == 0 {
                    // The first event's tenant is named in its item line.
                    let items = body["blocks"][1]["text"]["text"].as_str().unwrap();
                    assert!(items.contains(&format!(" in {escaped}")), "{items}");
                }
            }
        }
    }

    #[test]
    fn hostile_values_everywhere_stay_text_within_slack_limits() {
        for value in hostile::values() {
            for payload in hostile::notifications(&value) {
                check(&render(&payload));
            }
        }
    }

    #[test]
    fn random_notifications_stay_within_slack_limits_and_stay_text() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9_0a1e);
        for _ in 0..30 {
            check(&render(&hostile::random_notification(&mut rng)));
        }
    }
}
