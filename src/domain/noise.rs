//! A rule's `suppress` and `group` settings (SPEC section 16), parsed once when the rule is
//! saved, and the key an event has under them: the values at their `by` pointers.
//!
//! Limits: at most [`MAX_BY`] pointers in `by`; `group`: 0 ≤ `wait` ≤ `interval` ≤ 24 h with
//! `interval` at least 1 s (defaults 30 s and 5 min); `suppress.for` from 1 s to 30 days.
//! Durations are written as `30s`, `5m`, `2h`, `1h 30m` (humantime).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::condition::parse_pointer;
use super::Invalid;

/// Most pointers in a `by` list.
pub const MAX_BY: usize = 8;
/// Longest `group.interval` (and so `group.wait`).
pub const MAX_GROUP_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Shortest `group.interval`.
pub const MIN_GROUP_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `suppress.for`.
pub const MAX_SUPPRESS: Duration = Duration::from_secs(30 * 24 * 3600);
/// Shortest `suppress.for`.
pub const MIN_SUPPRESS: Duration = Duration::from_secs(1);
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// `group`: events with equal values at `by` are collected and sent as one notification `wait`
/// after the first, then every `interval` while new ones arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub by: Vec<String>,
    pub wait: Duration,
    pub interval: Duration,
}

/// `suppress`: a repeat (equal values at `by`) within `for` of an event that was sent is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressSpec {
    pub by: Vec<String>,
    pub window: Duration,
}

impl GroupSpec {
    pub fn parse(value: &Value, field: &str) -> Result<Self, Invalid> {
        let object = object_of(value, field, &["by", "wait", "interval"], "{\"by\":[\"/data/site_url\"],\"wait\":\"30s\",\"interval\":\"5m\"}")?;
        let by = parse_by(object.get("by"), field)?;
        let wait = optional_duration(object.get("wait"), &format!("{field}.wait"))?.unwrap_or(DEFAULT_WAIT);
        let interval = optional_duration(object.get("interval"), &format!("{field}.interval"))?.unwrap_or(DEFAULT_INTERVAL);
        if interval < MIN_GROUP_INTERVAL || interval > MAX_GROUP_INTERVAL {
            return Err(Invalid::new(format!("{field}.interval"), format!("is {}; it must be from 1s to 24h", show(interval))));
        }
        if wait > interval {
            return Err(Invalid::new(
                format!("{field}.wait"),
                format!("is {} but `interval` is {}; `wait` must not be longer than `interval`", show(wait), show(interval)),
            ));
        }
        Ok(Self { by, wait, interval })
    }

    pub fn to_json(&self) -> Value {
        json!({ "by": self.by, "wait": show(self.wait), "interval": show(self.interval) })
    }

    /// "one message per site every 5m (the first 30s after the first event)".
    pub fn describe(&self) -> String {
        let per = if self.by.is_empty() { "one message per rule and channel".to_string() } else { format!("one message per {}", self.by.join(" + ")) };
        format!("{per} every {}, the first {} after its first event", show(self.interval), show(self.wait))
    }
}

impl SuppressSpec {
    pub fn parse(value: &Value, field: &str) -> Result<Self, Invalid> {
        let object = object_of(value, field, &["by", "for"], "{\"by\":[\"/data/site_url\"],\"for\":\"24h\"}")?;
        let by = parse_by(object.get("by"), field)?;
        let at = format!("{field}.for");
        let window = optional_duration(object.get("for"), &at)?.ok_or_else(|| Invalid::new(&at, "is required: how long repeats are not sent, such as \"24h\""))?;
        if window < MIN_SUPPRESS || window > MAX_SUPPRESS {
            return Err(Invalid::new(at, format!("is {}; it must be from 1s to 30 days", show(window))));
        }
        Ok(Self { by, window })
    }

    pub fn to_json(&self) -> Value {
        json!({ "by": self.by, "for": show(self.window) })
    }
}

/// The values at `by` in an event's payload, as an object in `by`'s order (an absent path is
/// `null`), each in canonical form ([`canonical`]), and its text (what identifies a group or a
/// suppression window): values conditions call equal make one key.
pub fn key_of(by: &[String], payload: &Value) -> (Map<String, Value>, String) {
    let mut key = Map::with_capacity(by.len());
    for pointer in by {
        key.insert(pointer.clone(), payload.pointer(pointer).map_or(Value::Null, canonical));
    }
    let text = serde_json::to_string(&key).expect("JSON values serialise");
    (key, text)
}

/// A value in one form for every way of writing it: object keys sorted, a whole number as an
/// integer (`1.0`, `1e0` and `1` are `1`; `-0.0` is `0`), as conditions compare them.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => match n.as_f64() {
            // Whole and within the integers a float holds exactly.
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => Value::from(f as i64),
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// What identifies a key in the database: the SHA-256 of its canonical text, in hex (a key's
/// values come from event data and may be long; an index entry may not).
pub fn key_hash(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What identifies a group in the database: [`key_hash`] of its key's canonical text with the
/// settings it opens with, so an ingestion routed with a rule's old grouping (just before an
/// edit, or on an instance that has not reloaded yet) opens a group of its own, which ends on
/// its own timers, rather than holding the rule's new settings off a group it opened.
pub fn group_hash(key_text: &str, settings: &GroupSpec) -> String {
    key_hash(&format!("{}\n{key_text}", settings.to_json()))
}

/// A duration as people write it, in hours at most: `30s`, `5m`, `24h`, `1h 30m`, `720h`.
pub fn show(duration: Duration) -> String {
    let secs = duration.as_secs();
    let parts = [(secs / 3600, "h"), (secs % 3600 / 60, "m"), (secs % 60, "s"), (u64::from(duration.subsec_millis()), "ms")];
    let shown: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    if shown.is_empty() { "0s".into() } else { shown.join(" ") }
}

fn object_of<'a>(value: &'a Value, field: &str, allowed: &[&str], example: &str) -> Result<&'a Map<String, Value>, Invalid> {
    let object = value.as_object().ok_or_else(|| Invalid::new(field, format!("must be an object such as {example}")))?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Invalid::new(
            format!("{field}.{unknown}"),
            format!("is not a field of `{field}`; it takes {}", allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")),
        ));
    }
    Ok(object)
}

fn parse_by(value: Option<&Value>, field: &str) -> Result<Vec<String>, Invalid> {
    let at = format!("{field}.by");
    let Some(value) = value else { return Ok(Vec::new()) };
    let list = value.as_array().ok_or_else(|| Invalid::new(&at, "must be an array of JSON pointers such as [\"/data/site_url\"] (or [] for one per rule and channel)"))?;
    if list.len() > MAX_BY {
        return Err(Invalid::new(&at, format!("has {} pointers; the limit is {MAX_BY}", list.len())));
    }
    let mut by: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let pointer = parse_pointer(item).map_err(|message| Invalid::new(format!("{at}[{i}]"), message))?;
        if !by.contains(&pointer) {
            by.push(pointer);
        }
    }
    Ok(by)
}

fn optional_duration(value: Option<&Value>, field: &str) -> Result<Option<Duration>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => humantime::parse_duration(text.trim())
            .map(Some)
            .map_err(|_| Invalid::new(field, format!("`{}` is not a duration; write it as 30s, 5m, 2h or 1h 30m", super::tenant::clip(text)))),
        Some(_) => Err(Invalid::new(field, "must be a duration as a string, such as \"30s\", \"5m\" or \"2h\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_conditions_call_equal_make_one_key() {
        let by = vec!["/data/k".to_string()];
        let text = |k: &str| key_of(&by, &serde_json::from_str::<Value>(&format!(r#"{{"data":{{"k":{k}}}}}"#)).unwrap()).1;
        for same in [["{\"a\":1,\"b\":2}", "{\"b\":2.0,\"a\":1}"], ["1", "1.0"], ["100", "1e2"], ["0", "-0.0"], ["[{\"y\":1,\"x\":[2]}]", "[{\"x\":[2.0],\"y\":1}]"]] {
            assert_eq!(text(same[0]), text(same[1]), "{same:?}");
        }
        for different in [["1", "\"1\""], ["1.5", "1"], ["9007199254740993", "9007199254740992"], ["[1,2]", "[2,1]"], ["null", "0"]] {
            assert_ne!(text(different[0]), text(different[1]), "{different:?}");
        }
        assert_eq!(text("null"), key_of(&by, &json!({"data": {}})).1, "an absent path groups as null");
    }

    #[test]
    fn group_defaults_and_ranges() {
        let spec = GroupSpec::parse(&json!({"by": ["/data/site_url", "/data/site_url"]}), "group").unwrap();
        assert_eq!(spec, GroupSpec { by: vec!["/data/site_url".into()], wait: DEFAULT_WAIT, interval: DEFAULT_INTERVAL });
        assert_eq!(spec.to_json(), json!({"by": ["/data/site_url"], "wait": "30s", "interval": "5m"}));
        let zero = GroupSpec::parse(&json!({"wait": "0s", "interval": "1s"}), "group").unwrap();
        assert_eq!((zero.wait, zero.interval, zero.by.len()), (Duration::ZERO, Duration::from_secs(1), 0));
        assert!(GroupSpec::parse(&json!({"wait": "24h", "interval": "24h"}), "group").is_ok());

        for (value, field) in [
            (json!({"wait": "10m", "interval": "5m"}), "group.wait"),
            (json!({"interval": "25h"}), "group.interval"),
            (json!({"interval": "0s", "wait": "0s"}), "group.interval"),
            (json!({"wait": "soon"}), "group.wait"),
            (json!({"wait": 30}), "group.wait"),
            (json!({"by": ["data/site"]}), "group.by[0]"),
            (json!({"by": "/data/site_url"}), "group.by"),
            (json!({"by": ["/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i"]}), "group.by"),
            (json!({"group_by": []}), "group.group_by"),
            (json!([]), "group"),
        ] {
            assert_eq!(GroupSpec::parse(&value, "group").unwrap_err().field, field, "{value}");
        }
    }

    #[test]
    fn suppress_needs_a_window_in_range() {
        let spec = SuppressSpec::parse(&json!({"by": ["/data/principal"], "for": "24h"}), "suppress").unwrap();
        assert_eq!(spec.window, Duration::from_secs(86_400));
        assert_eq!(spec.to_json(), json!({"by": ["/data/principal"], "for": "24h"}));
        for (value, field) in [
            (json!({"by": []}), "suppress.for"),
            (json!({"for": "31days"}), "suppress.for"),
            (json!({"for": "0s"}), "suppress.for"),
            (json!({"for": "1h", "by": [1]}), "suppress.by[0]"),
        ] {
            assert_eq!(SuppressSpec::parse(&value, "suppress").unwrap_err().field, field, "{value}");
        }
    }

    #[test]
    fn a_key_holds_the_values_at_by_and_null_for_absent_paths() {
        let payload = json!({"data": {"site_url": "https://x/sites/a", "n": 1.0}});
        let by = vec!["/data/site_url".to_string(), "/data/missing".to_string()];
        let (key, text) = key_of(&by, &payload);
        assert_eq!(Value::Object(key), json!({"/data/site_url": "https://x/sites/a", "/data/missing": null}));
        assert_eq!(text, r#"{"/data/site_url":"https://x/sites/a","/data/missing":null}"#);
        assert_eq!(key_of(&[], &payload).1, "{}");
    }
}
