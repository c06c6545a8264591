//! Test material: what the people being watched can put in an event (mentions, disguised links,
//! Markdown, entities, line breaks, very long and multibyte text), and random events built from
//! it, for the Slack and Teams renderers' tests to prove that event data stays text.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

/// The site URL of a well-behaved event.
pub const SITE: &str = "https://contoso.sharepoint.com/sites/Finance";

/// Values an attacker would try in any field of an event.
pub fn values() -> Vec<String> {
    let mut values: Vec<String> = [
        // Slack mentions and links.
        "<!channel>",
        "<!here> please look",
        "<!everyone>",
        "<@U123ABC>",
        "<#C123ABC|general>",
        "<!subteam^S0123|@security-team>",
        "<https://evil.example/phish|https://contoso.sharepoint.com/sites/Finance>",
        "<https://evil.example/phish>",
        "https://evil.example/login?x=|https://contoso.sharepoint.com/sites/Finance",
        "https://contoso.sharepoint.com@evil.example/sites/Finance",
        "https://evil.example/a>b<c|d&e",
        "https://evil.example/\u{202E}moc.tniopearahs",
        "a|b||c",
        "R&D & Co",
        // Pre-escaped text and entities.
        "&lt;!channel&gt;",
        "&amp;lt;@U123&amp;gt;",
        "&#60;!here&#62; &#91;x&#93;&#40;https://evil.example&#41;",
        // Markdown.
        "[Open Contoso SharePoint](https://evil.example/phish)",
        "![logo](https://evil.example/pixel.png)",
        "[a]: https://evil.example/ref",
        "**bold** __bold__ _italic_ *italic* ~~strike~~ ~strike~ `code` ```block```",
        "\\[escaped\\]\\(https://evil.example\\)",
        "\\",
        "](",
        "- item",
        "1. first",
        "# Heading",
        "> quote",
        "<at>Admin</at> <b>bold</b> <a href=\"https://evil.example\">Contoso</a>",
        "{{DATE(2017-02-14T06:08:39Z, SHORT)}} ${secret}",
        // Line breaks that would start a new field, list or quote.
        "Shared Documents\n*Site*\nhttps://contoso.sharepoint.com/sites/Finance",
        "one\r\n- two\n1. three\n# four\n> five\u{2028}<!here>\u{2029}six\u{85}seven",
        // Multibyte.
        "Résumé 📄 外部ユーザー@example.jp 👨‍👩‍👧 🏳️‍🌈",
        "",
        " ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push("<!channel> & [x](https://evil.example) ".repeat(300));
    values.push("🔥&".repeat(3000));
    values.push(format!("https://contoso.sharepoint.com/sites/{}", "x|".repeat(2500)));
    values.push("x".repeat(5000));
    values
}

/// Payloads that carry `value` in every field a renderer reads: the tenant's name, the event id,
/// each permission field in turn and all at once, a storage event's site, and an event type of
/// no known category whose `data` has it as a key and as a value.
pub fn payloads(value: &str) -> Vec<Value> {
    let fields = ["site_url", "resource_path", "principal", "access_level", "permission_type", "actor"];
    let mut data = Map::new();
    for field in fields {
        data.insert(field.to_string(), json!(field));
    }
    data.insert("site_url".into(), json!(SITE));
    let permission = |data: &Map<String, Value>, tenant: &str, id: &str| {
        json!({"event_id": id, "event": "permission.external_share_created", "timestamp": "2026-11-28T15:36:08Z",
               "severity": "critical", "tenant": {"id": "contoso", "display_name": tenant}, "data": data})
    };
    let mut payloads = vec![permission(&data, value, "evt_1"), permission(&data, "Contoso", value)];
    for field in fields {
        let mut one = data.clone();
        one.insert(field.to_string(), json!(value));
        payloads.push(permission(&one, "Contoso", "evt_1"));
    }
    let mut all = data.clone();
    for field in fields {
        all.insert(field.to_string(), json!(value));
    }
    payloads.push(permission(&all, value, value));
    payloads.push(json!({"event_id": value, "event": "storage.quota_exceeded", "timestamp": value, "severity": "medium",
        "tenant": {"display_name": value}, "data": {"site_url": value, "current_usage": 10, "quota": 10}}));
    payloads.push(json!({"event_id": value, "event": "custom.thing_happened", "severity": "low", "tenant": {"display_name": value},
        "data": {value: value, "site_url": value, "nested": {value: [value, 1, null]}}}));
    payloads
}

/// Notifications (`alert.group`), built as the router builds them, that carry `value` in their
/// key (a site, a tenant name, and an absent path), their rule's name and every field of their
/// events ([`payloads`]): all those events in one (more than a summary lists), and one alone.
pub fn notifications(value: &str) -> Vec<Value> {
    let events: Vec<String> = payloads(value).iter().map(Value::to_string).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut key = Map::new();
    key.insert("/data/site_url".into(), json!(value));
    key.insert("/tenant/display_name".into(), json!(value));
    key.insert("/data/actor".into(), Value::Null);
    [&events[..], &events[1..2]].iter().map(|events| notification(value, &key, events, 3)).collect()
}

/// A random notification: up to 105 random events ([`random_payload`]) under a key of random
/// values taken from the first.
pub fn random_notification(rng: &mut impl Rng) -> Value {
    let most = if rng.gen_bool(0.1) { 105 } else { 12 };
    let events: Vec<Value> = (0..rng.gen_range(1..=most)).map(|_| random_payload(rng)).collect();
    let mut key = Map::new();
    for pointer in ["/data/site_url", "/data/principal", "/tenant/display_name"] {
        if rng.gen_bool(0.6) {
            key.insert(pointer.into(), events[0].pointer(pointer).cloned().unwrap_or(Value::Null));
        }
    }
    let events: Vec<String> = events.iter().map(Value::to_string).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    notification("Rule", &key, &events, rng.gen_range(0..1000))
}

fn notification(rule_name: &str, key: &Map<String, Value>, events: &[&str], earlier: u64) -> Value {
    use crate::domain::notification::{Collected, Notification};
    use crate::domain::severity::Severity;
    let all = Collected::of(events);
    let body = Notification { event_id: "grp_1", timestamp_ms: 0, rule_id: "rule_1", rule_name, group_id: "agrp_1", key, earlier, max_severity: Severity::Critical, listed: events, all }.body();
    serde_json::from_str(&body).expect("a notification is JSON")
}

/// A random event: any category, up to 8,000 `data` keys, keys and values up to 5,000
/// characters (hostile, multibyte, nested, numbers, null, booleans). Long text is rare and
/// bounded in total so a few hundred events render in a few seconds of a debug build.
pub fn random_payload(rng: &mut impl Rng) -> Value {
    let values = values();
    let mut budget = 200_000usize;
    let event = *["permission.external_share_created", "permission.anonymous_link_created", "storage.quota_exceeded",
        "storage.threshold_exceeded", "storage.quota_changed", "custom.thing_happened", "sharepoint.site_deleted", "x.y"]
        .choose(rng)
        .unwrap();
    let keys = match rng.gen_range(0..20) {
        0..=11 => rng.gen_range(0..20),
        12..=18 => rng.gen_range(20..600),
        _ => rng.gen_range(600..8000),
    };
    let mut data = Map::new();
    for known in ["site_url", "resource_path", "principal", "access_level", "permission_type", "actor", "current_usage", "quota", "threshold"] {
        if rng.gen_bool(0.7) {
            let value = match known {
                "current_usage" | "quota" | "threshold" if rng.gen_bool(0.8) => json!(rng.gen_range(0u64..1 << 45)),
                "site_url" if rng.gen_bool(0.5) => json!(SITE),
                _ => random_value(rng, &values, &mut budget, 0),
            };
            data.insert(known.to_string(), value);
        }
    }
    for _ in 0..keys {
        let key = random_text(rng, &values, &mut budget);
        let value = random_value(rng, &values, &mut budget, 0);
        data.insert(key, value);
    }
    let tenant = if rng.gen_bool(0.2) { Value::Null } else { json!({"id": "contoso", "display_name": random_text(rng, &values, &mut budget)}) };
    json!({"event_id": random_text(rng, &values, &mut budget), "event": event, "timestamp": "2026-11-28T15:36:08Z",
           "severity": *["critical", "high", "medium", "low"].choose(rng).unwrap(), "tenant": tenant, "data": data})
}

fn random_value(rng: &mut impl Rng, values: &[String], budget: &mut usize, depth: usize) -> Value {
    match rng.gen_range(0..10) {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => json!(rng.gen_range(-1e12..1e12)),
        3 if depth < 2 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_value(rng, values, budget, depth + 1)).collect()),
        4 if depth < 2 => Value::Object(
            (0..rng.gen_range(0..4)).map(|_| (random_text(rng, values, budget), random_value(rng, values, budget, depth + 1))).collect(),
        ),
        _ => json!(random_text(rng, values, budget)),
    }
}

/// Mostly short text, sometimes one of [`values`], rarely up to 5,000 characters while the
/// event's budget lasts.
fn random_text(rng: &mut impl Rng, values: &[String], budget: &mut usize) -> String {
    const ALPHABET: &[char] = &['a', 'Z', '0', ' ', '.', '-', '#', '<', '>', '&', '|', '!', '@', '*', '_', '~', '`', '[', ']', '(', ')',
        '\\', '\n', '\r', 'é', '外', '🔥', '\u{202E}', '\u{2028}', '\u{200B}', '\t'];
    if rng.gen_bool(0.1) {
        let value = values.choose(rng).unwrap();
        if value.len() <= *budget {
            *budget -= value.len();
            return value.clone();
        }
    }
    // A random run of a fixed random sequence of the alphabet: random enough, and a few draws
    // instead of one per character (the generator is slow in a debug build).
    static SEQUENCE: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    let sequence = SEQUENCE.get_or_init(|| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        (0..10_000).map(|_| *ALPHABET.choose(&mut rng).unwrap()).collect()
    });
    let long = rng.gen_bool(0.02) && *budget >= 5000;
    let len = if long { rng.gen_range(0..5000) } else { rng.gen_range(0..24) };
    *budget = budget.saturating_sub(len);
    let start = rng.gen_range(0..=sequence.len() - len);
    sequence[start..start + len].iter().collect()
}

/// A text of a Teams card stayed text: each Markdown character follows a backslash, `](` never
/// appears, it is one line, and nothing starts a list or a heading.
pub fn assert_teams_text(text: &str) {
    assert!(!text.contains("]("), "{text:?}");
    assert!(!text.contains(['\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}']), "{text:?}");
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            assert!(chars.next().is_some_and(|next| next.is_ascii_punctuation()), "a dangling backslash in {text:?}");
        } else {
            assert!(!"*_~`[]()<>&".contains(c), "a bare {c:?} in {text:?}");
        }
    }
    let start = text.trim_start_matches([' ', '\t']);
    assert!(!start.starts_with(['-', '+', '#', '=']), "a list or heading marker in {text:?}");
    let numbered = start.trim_start_matches(|c: char| c.is_ascii_digit());
    if numbered.len() < start.len() {
        assert!(!numbered.strip_prefix('.').is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace)), "{text:?}");
    }
}
