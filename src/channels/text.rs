//! What every vendor format needs from an event payload: a title, a severity people see at a
//! glance, facts in human words and units, and text cut to a vendor's limits without breaking a
//! character.
//!
//! The facts are the event's own words, written in part by the people being watched: they are
//! text, never markup. Each format escapes them at its edge with its own module here, which any
//! renderer of that format uses, the summaries of grouped notifications ([`group`]) included:
//! Slack `mrkdwn` with [`slack_escape`], [`slack_escape_cut`] and [`slack_link`]; Teams Adaptive
//! Card Markdown with [`teams_escape`]; HTML mail with [`html_escape`]. A site is offered as a link only when [`link_target`]
//! accepts it.

use serde_json::Value;

pub mod group;
#[cfg(test)]
pub mod hostile;
mod html_mail;
mod slack_mrkdwn;
mod teams_markdown;

pub use html_mail::html_escape;
pub use slack_mrkdwn::{slack_escape, slack_escape_cut, slack_link};
pub use teams_markdown::teams_escape;

/// Cuts `text` to at most `max` characters, ending with `…` when it was cut (never inside a
/// character: Rust strings are UTF-8 and this counts characters, not bytes).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` without control or bidirectional-override characters (each becomes a space): event
/// data could otherwise reorder or hide what a system that shows plain text shows (PagerDuty's
/// summary, a ticket's title and description).
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') { ' ' } else { c }).collect()
}

/// `permission.external_share_created` → `External share created`; an unknown shape is shown as
/// it is.
pub fn title(event_type: &str) -> String {
    let action = event_type.rsplit('.').next().unwrap_or(event_type);
    let words = action.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => event_type.to_string(),
    }
}

/// Bytes in binary units, one decimal: `4831838208` → `4.5 GiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One fact of an event: a label and its value, in the order people read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: String,
    pub value: String,
    /// The value is an https URL a person may open.
    pub link: bool,
}

fn fact(label: &str, value: String, link: bool) -> Fact {
    Fact { label: label.to_string(), value, link }
}

/// A JSON value as a person reads it: strings as they are, anything else as compact JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a URL can be offered as a link: see [`link_target`].
pub fn is_link(url: &str) -> bool {
    link_target(url).is_some()
}

/// The URL a link may open, parsed, when `url` is a plain https address written exactly as a
/// browser would read it: printable ASCII only (no look-alike slash such as U+2215, no Cyrillic
/// `с` in `сontoso`, no invisible or direction characters), already in its normal form (so no
/// `\` that a browser reads as `/`, no dot segments, no host in another spelling), and nothing
/// before the host (`https://contoso.sharepoint.com@evil.example/` opens evil.example). So what a
/// message shows is, character for character, what a click opens. Anything else is shown as text.
pub fn link_target(url: &str) -> Option<url::Url> {
    if !url.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let plain = parsed.scheme() == "https" && parsed.host_str().is_some() && parsed.username().is_empty() && parsed.password().is_none();
    // The normal form differs from what was written when a parser and a reader could disagree
    // (a bare host gains only its `/`).
    let normal = parsed.as_str() == url || (parsed.path() == "/" && parsed.query().is_none() && parsed.as_str().strip_suffix('/') == Some(url));
    (plain && normal).then_some(parsed)
}

/// Whether `c` ends a line in Markdown or `mrkdwn`: escaped values are kept on one line, so a
/// value cannot pose as another field or start a list.
fn breaks_line(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The fact that stands for the facts a message has no room for.
pub fn more_facts(hidden: usize) -> Fact {
    fact("More", format!("and {hidden} more fields"), false)
}

/// The facts of an event payload (section 4): tenant, then site, resource, principal and access
/// for permission events; usage, quota and threshold in human units for storage events; for
/// any other type, every field of its `data` in order.
pub fn facts(payload: &Value) -> Vec<Fact> {
    let mut facts = Vec::new();
    let tenant = &payload["tenant"];
    if let Some(name) = tenant["display_name"].as_str() {
        facts.push(fact("Tenant", name.to_string(), false));
    }
    let data = payload["data"].as_object().cloned().unwrap_or_default();
    let event = payload["event"].as_str().unwrap_or_default();
    let text = |key: &str| data.get(key).map(plain).filter(|s| !s.is_empty());
    if let Some(site) = text("site_url") {
        let link = is_link(&site);
        facts.push(fact("Site", site, link));
    }
    if event.starts_with("storage.") {
        let usage = data.get("current_usage").and_then(Value::as_f64);
        let quota = data.get("quota").and_then(Value::as_f64);
        match (usage, quota) {
            (Some(usage), Some(quota)) if quota > 0.0 => {
                facts.push(fact("Usage", format!("{} of {} ({:.1} %)", bytes(usage), bytes(quota), usage / quota * 100.0), false));
            }
            (Some(usage), _) => facts.push(fact("Usage", bytes(usage), false)),
            (None, Some(quota)) => facts.push(fact("Quota", bytes(quota), false)),
            _ => {}
        }
        if let Some(threshold) = data.get("threshold").and_then(Value::as_f64) {
            facts.push(fact("Threshold", format!("{threshold} % of quota"), false));
        }
    } else if event.starts_with("permission.") {
        // Only the router's own words (`specific_people_link`, `full_control`) read better with
        // spaces; a path or a principal is shown exactly as it is (`first_last@contoso.com`).
        for (key, label, words) in [("resource_path", "Resource", false), ("principal", "Principal", false), ("access_level", "Access", true), ("permission_type", "Permission", true)] {
            if let Some(value) = text(key) {
                facts.push(fact(label, if words { value.replace('_', " ") } else { value }, false));
            }
        }
        if let Some(actor) = text("actor") {
            facts.push(fact("Changed by", actor, false));
        }
    } else {
        for (key, value) in &data {
            if key == "site_url" {
                continue;
            }
            facts.push(fact(&title(key), plain(value), false));
        }
    }
    facts
}

/// ` (test)` after the title of the sample **Test** sends, nothing otherwise.
pub fn test_note(payload: &Value) -> &'static str {
    if payload["test"] == Value::Bool(true) {
        " (test)"
    } else {
        ""
    }
}

/// The one line a notification shows: severity, title, tenant, the object and the principal.
pub fn summary(payload: &Value) -> String {
    let severity = payload["severity"].as_str().unwrap_or("unknown").to_uppercase();
    let mut line = format!("{severity}: {}{}", title(payload["event"].as_str().unwrap_or("event")), test_note(payload));
    if let Some(tenant) = payload["tenant"]["display_name"].as_str() {
        line.push_str(&format!(" in {tenant}"));
    }
    let data = &payload["data"];
    if let Some(object) = data["resource_path"].as_str().or(data["site_url"].as_str()).filter(|s| !s.is_empty()) {
        line.push_str(&format!(": {object}"));
    }
    if let Some(principal) = data["principal"].as_str().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" ({principal})"));
    }
    line.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cutting_counts_characters_and_marks_the_cut() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdef", 4), "abc…");
        let emoji = "🔥".repeat(100);
        let cut_emoji = cut(&emoji, 10);
        assert_eq!(cut_emoji.chars().count(), 10);
        assert!(cut_emoji.starts_with("🔥🔥") && cut_emoji.ends_with('…'));
    }

    #[test]
    fn titles_units_and_facts_read_like_words() {
        assert_eq!(title("permission.external_share_created"), "External share created");
        assert_eq!(title("storage.quota_exceeded"), "Quota exceeded");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(4_831_838_208.0), "4.5 GiB");
        let storage = json!({"event": "storage.threshold_exceeded", "severity": "medium",
            "tenant": {"display_name": "Contoso"}, "data": {"site_url": "https://contoso.sharepoint.com/sites/HR",
            "current_usage": 96_636_764_160u64, "quota": 107_374_182_400u64, "threshold": 90}});
        let facts = facts(&storage);
        let usage = facts.iter().find(|f| f.label == "Usage").unwrap();
        assert_eq!(usage.value, "90.0 GiB of 100.0 GiB (90.0 %)");
        assert!(facts.iter().any(|f| f.label == "Site" && f.link));
        let unknown = json!({"event": "custom.thing_happened", "severity": "low", "tenant": null, "data": {"colour": "red", "count": 3}});
        let facts = super::facts(&unknown);
        assert_eq!(facts.iter().map(|f| (f.label.as_str(), f.value.as_str())).collect::<Vec<_>>(), vec![("Colour", "red"), ("Count", "3")]);
        assert_eq!(summary(&unknown), "LOW: Thing happened");
        let shared = json!({"event": "permission.external_share_created", "severity": "high", "tenant": null,
            "data": {"resource_path": "Shared_Documents/Q3_plan.xlsx", "principal": "first_last@example.net", "access_level": "full_control", "permission_type": "specific_people_link"}});
        let shown: Vec<(String, String)> = super::facts(&shared).into_iter().map(|f| (f.label, f.value)).collect();
        let shown: Vec<(&str, &str)> = shown.iter().map(|(l, v)| (l.as_str(), v.as_str())).collect();
        assert_eq!(shown, [("Resource", "Shared_Documents/Q3_plan.xlsx"), ("Principal", "first_last@example.net"), ("Access", "full control"), ("Permission", "specific people link")]);
    }

    #[test]
    fn a_link_is_offered_only_when_it_reads_exactly_as_it_opens() {
        for shown in [
            "https://contoso.sharepoint.com/sites/Finance",
            "https://contoso.sharepoint.com",
            "https://contoso.sharepoint.com/sites/Q3%20plan?web=1",
            "https://evil.example/login?x=|https://contoso.sharepoint.com/sites/Finance",
        ] {
            assert!(link_target(shown).is_some(), "{shown} is a plain address");
        }
        for disguised in [
            // Look-alike slashes put contoso's name into a host of evil.com.
            "https://contoso.sharepoint.com\u{2215}sites\u{2215}Finance.evil.com/",
            "https://contoso.sharepoint.com\u{2044}sites.evil.com/",
            "https://contoso.sharepoint.com\u{29F8}x.evil.com/",
            "https://contoso.sharepoint.com\u{2571}x.evil.com/",
            // A Cyrillic с.
            "https://\u{0441}ontoso.sharepoint.com/",
            // A backslash browsers read as a slash, other parsers as part of the user name.
            "https://contoso.sharepoint.com\\@evil.example/",
            "https://contoso.sharepoint.com@evil.example/",
            "https://contoso.sharepoint.com/sites/../../evil",
            "https://CONTOSO.sharepoint.com/",
            "http://contoso.sharepoint.com/",
            "https://contoso.sharepoint.com/\u{202E}moc.live",
            "https://contoso.sharepoint.com/ x",
        ] {
            assert!(link_target(disguised).is_none(), "{disguised} must be shown as text");
        }
    }
}
