//! What an email says: the subject and the two parts of the message for one event
//! ([`render`]) or for a grouped notification ([`render_group`]: its summary, up to ten events,
//! "and N more"), from the pieces every human-facing format shares (`super::super::text`).
//!
//! Event data is text, never markup: in the HTML part every value goes through
//! [`html_escape`], and the page has no remote image and no link at all (a site URL is shown as
//! text). Every value is cut ([`VALUE_MAX`]) and kept on one line after its label, so nothing an
//! event says can pose as another line, a header or a MIME boundary.

use serde_json::Value;

use super::super::text::group::group_summary;
use super::super::text::{cut, facts, html_escape, more_facts, test_note, title, Fact};

/// Longest subject, in characters.
pub const SUBJECT_MAX: usize = 200;
/// Longest value shown, in characters; the rest is cut with `…`.
pub const VALUE_MAX: usize = 2000;
/// Most facts of one event shown; the rest is one line, "and N more fields".
pub const FACTS_MAX: usize = 40;

/// A message's subject and its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `[SPScan] HIGH: <what> (<tenant>)`, one line, cut to [`SUBJECT_MAX`].
fn subject(payload: &Value, what: &str) -> String {
    let prefix = if payload["test"] == true { "[SPScan TEST]" } else { "[SPScan]" };
    let severity = payload["severity"].as_str().unwrap_or("unknown").to_uppercase();
    let tenant = payload["tenant"]["display_name"].as_str().map(|t| format!(" ({t})")).unwrap_or_default();
    one_line(&cut(&format!("{prefix} {severity}: {what}{tenant}"), SUBJECT_MAX))
}

fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() || c == '\u{2028}' || c == '\u{2029}' { ' ' } else { c }).collect()
}

/// The page around a message's HTML body: inline styles only, nothing fetched.
fn page(heading: &str, inner: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body style=\"font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#1b1b1b\">\
         <h2 style=\"font-size:18px;margin:0 0 12px\">{heading}</h2>{inner}\
         <p style=\"color:#666;font-size:12px;margin-top:16px\">Sent by the SPScan Alert Router.</p></body></html>"
    )
}

/// The message for one event payload (section 4).
pub fn render(payload: &Value) -> Rendered {
    let severity = payload["severity"].as_str().unwrap_or("unknown");
    let event = payload["event"].as_str().unwrap_or("event");
    let heading = format!("{}: {}{}", severity.to_uppercase(), title(event), test_note(payload));
    let mut rows: Vec<Fact> = facts(payload);
    if rows.len() > FACTS_MAX {
        let hidden = rows.len() - FACTS_MAX;
        rows.truncate(FACTS_MAX);
        rows.push(more_facts(hidden));
    }
    for (label, key) in [("Event id", "event_id"), ("Time", "timestamp"), ("Type", "event")] {
        rows.push(Fact { label: label.into(), value: payload[key].as_str().unwrap_or_default().to_string(), link: false });
    }
    let rows: Vec<(String, String)> = rows.into_iter().map(|f| (one_line(&cut(&f.label, 200)), one_line(&cut(&f.value, VALUE_MAX)))).collect();
    let heading = one_line(&cut(&heading, 300));
    let mut text = format!("{heading}\n\n");
    for (label, value) in &rows {
        text.push_str(&format!("{label}: {value}\n"));
    }
    let table: String = rows
        .iter()
        .map(|(label, value)| format!("<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{}</th><td style=\"padding:2px 0\">{}</td></tr>", html_escape(label), html_escape(value)))
        .collect();
    let html = page(&html_escape(&heading), &format!("<table style=\"border-collapse:collapse\">{table}</table>"));
    Rendered { subject: subject(payload, &title(event)), text, html }
}

/// The message for a notification (`alert.group`): its summary (section 16), then up to ten
/// events, one line each, then "and N more".
pub fn render_group(payload: &Value) -> Rendered {
    let summary = group_summary(payload);
    let severity = payload["severity"].as_str().unwrap_or("unknown");
    let headline = one_line(&cut(&summary.headline, 300));
    let items: Vec<String> = summary.items.iter().map(|i| one_line(&cut(i, VALUE_MAX))).collect();
    let mut text = format!("{}: {headline}\n\n", severity.to_uppercase());
    for item in &items {
        text.push_str(&format!("- {item}\n"));
    }
    if let Some(more) = &summary.more {
        text.push_str(&format!("{more}\n"));
    }
    if let Some(rule) = payload["rule"]["name"].as_str() {
        text.push_str(&format!("\nRule: {}\n", one_line(&cut(rule, 200))));
    }
    let list: String = items.iter().map(|i| format!("<li>{}</li>", html_escape(i))).collect();
    let more = summary.more.as_deref().map(|m| format!("<p>{}</p>", html_escape(m))).unwrap_or_default();
    let html = page(&html_escape(&format!("{}: {headline}", severity.to_uppercase())), &format!("<ul>{list}</ul>{more}"));
    Rendered { subject: subject(payload, &headline), text, html }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::text::hostile;
    use serde_json::json;

    #[test]
    fn a_notification_is_one_message_with_its_summary() {
        let payload: Value = serde_json::from_str(&crate::domain::notification::render_test("grp_1", 0)).unwrap();
        let rendered = render_group(&payload);
        let summary = group_summary(&payload);
        assert!(rendered.subject.starts_with("[SPScan TEST] CRITICAL: ") || rendered.subject.starts_with("[SPScan] CRITICAL: "), "{}", rendered.subject);
        assert!(rendered.text.contains(&summary.headline), "{}", rendered.text);
        for item in &summary.items {
            assert!(rendered.text.contains(item.as_str()));
            assert!(rendered.html.contains(&format!("<li>{}</li>", html_escape(item))));
        }
    }

    /// Nothing in an HTML part came from event data as markup: every `<` starts one of the tags
    /// the renderer writes, and there is no link and no image.
    fn assert_inert(html: &str) {
        const TAGS: [&str; 16] = ["<!DOCTYPE html>", "<html>", "</html>", "<head>", "</head>", "<meta ", "<body ", "</body>", "<h2 ", "</h2>", "<table ", "</table>", "<tr>", "</tr>", "<t", "</t"];
        for (i, _) in html.match_indices('<') {
            let rest = &html[i..];
            let known = TAGS.iter().any(|t| rest.starts_with(t)) || ["<ul>", "</ul>", "<li>", "</li>", "<p>", "<p ", "</p>"].iter().any(|t| rest.starts_with(t));
            assert!(known, "markup from event data at {i}: {}", &rest[..rest.len().min(60)]);
            if rest.starts_with("<t") || rest.starts_with("</t") {
                assert!(["<th ", "</th>", "<td ", "</td>", "<tr>", "</tr>", "<table ", "</table>"].iter().any(|t| rest.starts_with(t)), "{}", &rest[..rest.len().min(60)]);
            }
        }
        assert!(!html.contains("<a ") && !html.contains("<img"), "{html}");
    }

    #[test]
    fn hostile_values_in_every_field_stay_text() {
        for value in hostile::values().into_iter().chain(["<img src=x onerror=alert(1)>".to_string(), "[click](http://evil)".to_string()]) {
            for payload in hostile::payloads(&value) {
                let rendered = render(&payload);
                assert_inert(&rendered.html);
                assert!(!rendered.subject.contains('\n') && !rendered.subject.contains('\r'));
                assert!(rendered.subject.chars().count() <= SUBJECT_MAX);
            }
            for payload in hostile::notifications(&value) {
                let rendered = render_group(&payload);
                assert_inert(&rendered.html);
                assert!(!rendered.subject.contains('\n'));
            }
        }
        let payload = json!({"event_id": "e", "event": "permission.external_share_created", "severity": "high", "tenant": {"display_name": "Contoso"},
            "data": {"principal": "<img src=x onerror=alert(1)>", "resource_path": "[click](http://evil)"}});
        let rendered = render(&payload);
        assert!(rendered.html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(rendered.text.contains("Principal: <img src=x onerror=alert(1)>"), "plain text shows it as it is");
    }

    #[test]
    fn long_values_are_cut() {
        let payload = json!({"event_id": "e", "event": "custom.x", "severity": "low", "tenant": {"display_name": "T".repeat(1000)}, "data": {"blob": "x".repeat(100_000)}});
        let rendered = render(&payload);
        assert!(rendered.subject.chars().count() <= SUBJECT_MAX);
        assert!(rendered.text.len() < 3 * VALUE_MAX + 1000, "{}", rendered.text.len());
    }
}
