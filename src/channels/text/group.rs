//! A notification (`alert.group`, SPEC section 16) as people read it in a chat message: one
//! headline `<count> × <title> — <key values joined by " / ">`, then up to [`ITEMS_MAX`] items,
//! one line per event (the line a single event's message falls back to, [`summary`]: severity,
//! title, tenant, resource or site, principal), then what was left out: `and N more` (N = count
//! − items shown) and `(M sent earlier)` when the group sent notifications before.
//!
//! The title is the event type's when every listed event has the same type; a group whose `by`
//! does not hold `/event` may mix types, and then it is the first event's title followed by
//! `and other events`, so the headline never claims the count is all of one kind. A key value
//! that is absent from the events (`null`) reads `(none)`; a group with no key (`by: []`) has no
//! ` — …` part.
//!
//! Every part is plain text on one line, not yet escaped: it is event data, and each format
//! escapes it at its edge like a single event's (Slack with `slack_escape_cut`, Teams with
//! `teams_escape`).

use serde_json::Value;

use super::{breaks_line, cut, plain, summary, test_note, title};
use crate::domain::notification::NOTIFICATION_EVENT;

/// Most events a summary lists one by one.
pub const ITEMS_MAX: usize = 10;
/// Longest key value in the headline: one long value leaves room for the others.
pub const KEY_VALUE_MAX: usize = 100;

/// Whether a payload is a notification (`"event": "alert.group"`) rather than one event.
pub fn is_notification(payload: &Value) -> bool {
    payload["event"] == NOTIFICATION_EVENT
}

/// The parts of a notification's message, unescaped, each on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// `12 × External share created — https://contoso.sharepoint.com/sites/Finance / Contoso`.
    pub headline: String,
    /// One line per event shown, oldest first.
    pub items: Vec<String>,
    /// `and 2 more (5 sent earlier)`, `and 2 more`, `(5 sent earlier)`, or nothing.
    pub more: Option<String>,
}

/// The summary of a notification's body (see the module's comment).
pub fn group_summary(payload: &Value) -> GroupSummary {
    let events = payload["events"].as_array().map(Vec::as_slice).unwrap_or_default();
    let group = &payload["group"];
    let count = group["count"].as_u64().unwrap_or(events.len() as u64);
    let earlier = group["earlier"].as_u64().unwrap_or(0);
    let mut headline = format!("{count} × {}{}", group_title(events), test_note(payload));
    let keys: Vec<String> = group["key"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, value)| if value.is_null() { "(none)".to_string() } else { cut(&plain(value), KEY_VALUE_MAX) })
        .collect();
    if !keys.is_empty() {
        headline.push_str(" — ");
        headline.push_str(&keys.join(" / "));
    }
    let items: Vec<String> = events.iter().take(ITEMS_MAX).map(|event| one_line(&summary(event))).collect();
    let hidden = count.saturating_sub(items.len() as u64);
    let more = match (hidden, earlier) {
        (0, 0) => None,
        (hidden, 0) => Some(format!("and {hidden} more")),
        (0, earlier) => Some(format!("({earlier} sent earlier)")),
        (hidden, earlier) => Some(format!("and {hidden} more ({earlier} sent earlier)")),
    };
    GroupSummary { headline: one_line(&headline), items, more }
}

/// The title of what the notification carries (see the module's comment).
fn group_title(events: &[Value]) -> String {
    let types: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap_or("event")).collect();
    match types.first() {
        None => "Events".to_string(),
        Some(first) if types.iter().all(|t| t == first) => title(first),
        Some(first) => format!("{} and other events", title(first)),
    }
}

/// `text` with every line break a space.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if breaks_line(c) { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, resource: &str) -> Value {
        json!({"event_id": "e", "event": kind, "severity": "high", "tenant": {"id": "contoso", "display_name": "Contoso"},
               "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance", "resource_path": resource, "principal": "outsider@example.net"}})
    }

    fn notification(events: Vec<Value>, count: u64, earlier: u64, key: Value) -> Value {
        json!({"event": "alert.group", "event_id": "grp_1", "severity": "high", "rule": {"id": "rule_1", "name": "Shares"},
               "group": {"id": "agrp_1", "key": key, "count": count, "earlier": earlier, "max_severity": "high"}, "tenant": null, "events": events})
    }

    #[test]
    fn a_summary_counts_titles_and_keys_its_events() {
        let events: Vec<Value> = (0..12).map(|i| event("permission.external_share_created", &format!("Doc {i}.xlsx"))).collect();
        let key = json!({"/data/site_url": "https://contoso.sharepoint.com/sites/Finance", "/tenant/display_name": "Contoso", "/data/actor": null});
        let summary = group_summary(&notification(events, 12, 5, key));
        assert_eq!(summary.headline, "12 × External share created — https://contoso.sharepoint.com/sites/Finance / Contoso / (none)");
        assert_eq!(summary.items.len(), ITEMS_MAX);
        assert_eq!(summary.items[0], "HIGH: External share created in Contoso: Doc 0.xlsx (outsider@example.net)");
        assert_eq!(summary.more.as_deref(), Some("and 2 more (5 sent earlier)"));
    }

    #[test]
    fn what_was_left_out_is_said_in_every_combination() {
        let one = || vec![event("permission.x", "a")];
        assert_eq!(group_summary(&notification(one(), 1, 0, json!({}))).more, None);
        assert_eq!(group_summary(&notification(one(), 1, 7, json!({}))).more.as_deref(), Some("(7 sent earlier)"));
        // 150 collected, 100 listed, 1 shown.
        assert_eq!(group_summary(&notification(one(), 150, 0, json!({}))).more.as_deref(), Some("and 149 more"));
    }

    #[test]
    fn mixed_types_say_so_and_no_key_means_no_dash() {
        let events = vec![event("storage.quota_exceeded", "a"), event("permission.external_share_created", "b")];
        let summary = group_summary(&notification(events, 2, 0, json!({})));
        assert_eq!(summary.headline, "2 × Quota exceeded and other events");
    }

    #[test]
    fn key_values_are_cut_and_kept_on_one_line() {
        let key = json!({"/data/resource_path": format!("line one\nline two{}", "x".repeat(500)), "/data/n": 3});
        let summary = group_summary(&notification(vec![event("permission.x", "a\u{2028}b")], 1, 0, key));
        assert!(!summary.headline.contains(['\n', '\u{2028}']), "{}", summary.headline);
        assert!(summary.headline.ends_with("… / 3"), "{}", summary.headline);
        assert!(!summary.items[0].contains('\u{2028}'));
    }
}
