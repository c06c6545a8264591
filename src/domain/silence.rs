//! Silences (SPEC section 16): for a window of time, matching (event, channel) pairs are not sent.
//! [`NewSilence::parse`] reads the body of `POST /silences` once, naming the field at fault
//! (`matchers.all[0].op`, `ends_at`); [`Silence`] is a stored silence as matching uses it, and
//! [`Silence::holds`] is the one place that decides whether it holds a pair.
//!
//! Invariants of a parsed [`NewSilence`]: `matchers` is a checked conditions tree over the
//! section 4 payload; `starts_at < ends_at`, `now < ends_at`, the window is at most
//! [`MAX_LENGTH`] long and starts at most [`MAX_LENGTH`] from now; `comment` and `created_by` are
//! non-blank single-line text (Alertmanager requires both too); `channel_ids` and `rule_ids`,
//! when given, each list 1 to [`MAX_IDS`] ids, duplicates removed (whether they exist is the
//! store's question). Instants are Unix milliseconds, written as RFC 3339 at the edge.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::condition::Condition;
use super::limits::Limits;
use super::tenant::clip;
use super::time::{parse_rfc3339, Millis};
use super::{bounded_text, Invalid};

/// Longest window of one silence (a year), and how far ahead one may start.
pub const MAX_LENGTH: Duration = Duration::from_secs(365 * 24 * 3600);
/// Longest `comment`, in characters.
pub const MAX_COMMENT: usize = 1_000;
/// Most ids in `channel_ids` or `rule_ids`.
pub const MAX_IDS: usize = 100;
/// How long an ended silence is still listed.
pub const LISTED_AFTER_END: Duration = Duration::from_secs(5 * 24 * 3600);

/// The fields `POST /silences` takes.
const FIELDS: [&str; 8] = ["matchers", "starts_at", "ends_at", "duration", "comment", "created_by", "channel_ids", "rule_ids"];

/// Where a silence stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SilenceStatus {
    /// Not started yet.
    Pending,
    /// Holding matching pairs now.
    Active,
    /// Ended (at its `ends_at`, or ended early).
    Expired,
}

impl SilenceStatus {
    /// The status of the window `[starts_at, ends_at)` at `now`.
    pub fn of(starts_at: Millis, ends_at: Millis, now: Millis) -> Self {
        if now >= ends_at {
            Self::Expired
        } else if now < starts_at {
            Self::Pending
        } else {
            Self::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expired => "expired",
        }
    }
}

/// A stored silence, as matching uses it.
#[derive(Debug, Clone)]
pub struct Silence {
    pub id: String,
    pub matchers: Condition,
    pub starts_at: Millis,
    pub ends_at: Millis,
    /// `None`: every channel (but the SIEM ones).
    pub channel_ids: Option<Vec<String>>,
    /// `None`: whichever rule decides the pair.
    pub rule_ids: Option<Vec<String>>,
}

impl Silence {
    /// Does this silence hold the (event, channel) pair decided by `rule_id` at `at` (ms)?
    /// `starts_at <= at < ends_at`; narrowed by `channel_ids` / `rule_ids` when given; channels
    /// of a SIEM type (`siem == true`: splunk, sentinel) are exempt unless named in
    /// `channel_ids`; `matchers` are evaluated on the section 4 payload.
    pub fn holds(&self, at: Millis, rule_id: &str, channel_id: &str, siem: bool, payload: &Value) -> bool {
        if !(self.starts_at <= at && at < self.ends_at) {
            return false;
        }
        if self.rule_ids.as_ref().is_some_and(|ids| !ids.iter().any(|id| id == rule_id)) {
            return false;
        }
        let named = self.channel_ids.as_ref().map(|ids| ids.iter().any(|id| id == channel_id));
        match named {
            Some(false) => return false,
            None if siem => return false,
            _ => {}
        }
        self.matchers.matches(payload)
    }

    pub fn status(&self, now: Millis) -> SilenceStatus {
        SilenceStatus::of(self.starts_at, self.ends_at, now)
    }
}

/// The parsed body of `POST /silences`.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Condition,
    /// The tree as the client wrote it (what is stored and shown).
    pub matchers_json: Value,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub comment: String,
    pub created_by: String,
    pub channel_ids: Option<Vec<String>>,
    pub rule_ids: Option<Vec<String>>,
}

impl NewSilence {
    /// Reads a `POST /silences` body at `now`: `matchers` (required), `starts_at` (RFC 3339,
    /// default now), exactly one of `ends_at` (RFC 3339) and `duration` (`2h`, `1h 30m`, counted
    /// from `starts_at`), `comment` and `created_by` (required), `channel_ids` and `rule_ids`
    /// (optional, `null` for any). Any other field is refused.
    pub fn parse(body: &Value, now: Millis, limits: &Limits) -> Result<Self, Invalid> {
        let Some(object) = body.as_object() else {
            return Err(Invalid::new("", "the body must be a JSON object such as {\"matchers\":{…},\"duration\":\"2h\",\"comment\":\"…\",\"created_by\":\"…\"}"));
        };
        if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let known = FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            return Err(Invalid::new(clip(unknown), format!("is not a field of a silence; it takes {known}")));
        }
        let given = |key: &str| object.get(key).filter(|v| !v.is_null());
        let matchers_json = given("matchers")
            .ok_or_else(|| Invalid::new("matchers", "is required: a conditions tree such as {\"path\":\"/tenant/id\",\"op\":\"eq\",\"value\":\"contoso\"}"))?
            .clone();
        let matchers = Condition::parse(&matchers_json, "matchers")?;
        let starts_at = match given("starts_at") {
            Some(value) => instant(value, "starts_at")?,
            None => now,
        };
        let max_ms = MAX_LENGTH.as_millis() as Millis;
        if starts_at > now + max_ms {
            return Err(Invalid::new("starts_at", "is more than a year ahead; a silence starts within a year"));
        }
        let (ends_at, end_field) = match (given("ends_at"), given("duration")) {
            (Some(_), Some(_)) => return Err(Invalid::new("duration", "give either `ends_at` or `duration`, not both")),
            (None, None) => return Err(Invalid::new("ends_at", "is required, or `duration` instead (such as \"2h\")")),
            (Some(value), None) => (instant(value, "ends_at")?, "ends_at"),
            (None, Some(value)) => (starts_at + duration(value)?, "duration"),
        };
        if ends_at <= starts_at {
            return Err(Invalid::new(end_field, "must end after `starts_at`"));
        }
        if ends_at <= now {
            return Err(Invalid::new(end_field, "ends in the past; a silence must end later than now"));
        }
        if ends_at - starts_at > max_ms {
            return Err(Invalid::new(end_field, "makes the silence longer than a year, the most one may last"));
        }
        Ok(Self {
            matchers,
            matchers_json,
            starts_at,
            ends_at,
            comment: text(given("comment"), "comment", MAX_COMMENT)?,
            created_by: text(given("created_by"), "created_by", limits.max_name)?,
            channel_ids: ids(given("channel_ids"), "channel_ids", "a channel id such as ch_01JD7Y2Q8V3K4M5N6P7Q8R9S0T")?,
            rule_ids: ids(given("rule_ids"), "rule_ids", "a rule id such as rule_01JD7Y2Q8V3K4M5N6P7Q8R9S0T")?,
        })
    }
}

fn instant(value: &Value, field: &str) -> Result<Millis, Invalid> {
    let text = value.as_str().ok_or_else(|| Invalid::new(field, "must be an RFC 3339 time as a string, such as \"2026-12-05T18:00:00Z\""))?;
    parse_rfc3339(text.trim()).ok_or_else(|| Invalid::new(field, format!("`{}` is not an RFC 3339 time such as 2026-12-05T18:00:00Z", clip(text))))
}

fn duration(value: &Value) -> Result<Millis, Invalid> {
    let field = "duration";
    let text = value.as_str().ok_or_else(|| Invalid::new(field, "must be a duration as a string, such as \"2h\" or \"1h 30m\""))?;
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|_| Invalid::new(field, format!("`{}` is not a duration; write it as 30m, 2h, 3d or 1h 30m", clip(text))))?;
    if parsed.is_zero() {
        return Err(Invalid::new(field, "must be longer than zero"));
    }
    if parsed > MAX_LENGTH {
        return Err(Invalid::new(field, "is longer than a year, the most a silence may last"));
    }
    Ok(parsed.as_millis() as Millis)
}

fn text(value: Option<&Value>, field: &str, max: usize) -> Result<String, Invalid> {
    let what = if field == "comment" { "why the silence is set" } else { "who set the silence" };
    let value = value.ok_or_else(|| Invalid::new(field, format!("is required: {what}")))?;
    let text = value.as_str().ok_or_else(|| Invalid::new(field, format!("must be text: {what}")))?;
    bounded_text(field, text, max)
}

/// `null` or absent: any; otherwise 1 to [`MAX_IDS`] ids, each once, in the order given.
fn ids(value: Option<&Value>, field: &str, example: &str) -> Result<Option<Vec<String>>, Invalid> {
    let Some(value) = value else { return Ok(None) };
    let list = value.as_array().ok_or_else(|| Invalid::new(field, "must be an array of ids, or null for any"))?;
    if list.is_empty() {
        return Err(Invalid::new(field, "must list at least one id; leave it out (or null) for any"));
    }
    if list.len() > MAX_IDS {
        return Err(Invalid::new(field, format!("has {} ids; the limit is {MAX_IDS}", list.len())));
    }
    let mut found: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let id = item.as_str().filter(|s| !s.trim().is_empty() && s.len() <= 64).ok_or_else(|| Invalid::new(format!("{field}[{i}]"), format!("must be {example}")))?;
        if !found.iter().any(|f| f == id) {
            found.push(id.to_string());
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: Millis = 1_800_000_000_000;
    const HOUR: Millis = 3_600_000;

    fn body(extra: Value) -> Value {
        let mut body = json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"}, "duration": "2h", "comment": "Migration weekend", "created_by": "ana@msp.example"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    }

    fn parse(extra: Value) -> Result<NewSilence, Invalid> {
        NewSilence::parse(&body(extra), NOW, &Limits::default())
    }

    fn at(ms: Millis) -> String {
        crate::domain::time::rfc3339(ms)
    }

    #[test]
    fn a_silence_starts_now_by_default_and_lasts_its_duration() {
        let silence = parse(json!({"channel_ids": ["ch_1", "ch_2", "ch_1"], "comment": "  Migration weekend "})).unwrap();
        assert_eq!((silence.starts_at, silence.ends_at), (NOW, NOW + 2 * HOUR));
        assert_eq!(silence.channel_ids, Some(vec!["ch_1".to_string(), "ch_2".to_string()]), "duplicates removed, order kept");
        assert_eq!(silence.rule_ids, None);
        assert_eq!(silence.comment, "Migration weekend");
        assert_eq!(silence.matchers_json, json!({"path": "/tenant/id", "op": "eq", "value": "contoso"}));

        let later = parse(json!({"duration": null, "starts_at": at(NOW + HOUR), "ends_at": at(NOW + 3 * HOUR), "rule_ids": null})).unwrap();
        assert_eq!((later.starts_at, later.ends_at), (NOW + HOUR, NOW + 3 * HOUR));
        let started = parse(json!({"starts_at": at(NOW - HOUR), "duration": "90m"})).unwrap();
        assert_eq!(started.ends_at, NOW + HOUR / 2, "the duration counts from starts_at");
        assert!(parse(json!({"duration": "365days"})).is_ok(), "a year is the longest");
    }

    #[test]
    fn a_refused_silence_names_the_field_at_fault() {
        for (extra, field) in [
            (json!({"matchers": {"any": [{"path": "/event", "op": "eq", "value": "x"}, {"path": "/event", "op": "like", "value": "x"}]}}), "matchers.any[1].op"),
            (json!({"matchers": null}), "matchers"),
            (json!({"ends_at": at(NOW + HOUR)}), "duration"),
            (json!({"duration": null}), "ends_at"),
            (json!({"duration": null, "ends_at": "tomorrow"}), "ends_at"),
            (json!({"duration": null, "starts_at": at(NOW + 2 * HOUR), "ends_at": at(NOW + HOUR)}), "ends_at"),
            (json!({"duration": null, "starts_at": at(NOW - 2 * HOUR), "ends_at": at(NOW - HOUR)}), "ends_at"),
            (json!({"starts_at": at(NOW - 3 * HOUR)}), "duration"),
            (json!({"duration": "0s"}), "duration"),
            (json!({"duration": "soon"}), "duration"),
            (json!({"duration": 7200}), "duration"),
            (json!({"duration": "400days"}), "duration"),
            (json!({"starts_at": at(NOW - HOUR), "duration": null, "ends_at": at(NOW + 366 * 24 * HOUR)}), "ends_at"),
            (json!({"starts_at": at(NOW + 400 * 24 * HOUR)}), "starts_at"),
            (json!({"starts_at": 1_800_000_000}), "starts_at"),
            (json!({"comment": "   "}), "comment"),
            (json!({"comment": null}), "comment"),
            (json!({"comment": "x".repeat(MAX_COMMENT + 1)}), "comment"),
            (json!({"created_by": 42}), "created_by"),
            (json!({"created_by": "line\nbreak"}), "created_by"),
            (json!({"channel_ids": []}), "channel_ids"),
            (json!({"channel_ids": "ch_1"}), "channel_ids"),
            (json!({"channel_ids": ["ch_1", 2]}), "channel_ids[1]"),
            (json!({"rule_ids": [""]}), "rule_ids[0]"),
            (json!({"rule_ids": (0..=MAX_IDS).map(|i| format!("rule_{i}")).collect::<Vec<_>>()}), "rule_ids"),
            (json!({"end": "2h"}), "end"),
        ] {
            let refused = parse(extra.clone()).expect_err(&extra.to_string());
            assert_eq!(refused.field, field, "{extra}: {refused}");
            assert!(!refused.message.is_empty());
        }
        assert!(NewSilence::parse(&json!([]), NOW, &Limits::default()).is_err());
    }

    fn silence(channel_ids: Option<&[&str]>, rule_ids: Option<&[&str]>) -> Silence {
        let list = |ids: Option<&[&str]>| ids.map(|ids| ids.iter().map(|s| s.to_string()).collect());
        Silence {
            id: "sil_1".into(),
            matchers: Condition::parse(&json!({"all": [{"path": "/tenant/id", "op": "eq", "value": "contoso"}, {"path": "/data/site_url", "op": "prefix", "value": "https://contoso.sharepoint.com/sites/Fin"}]}), "matchers").unwrap(),
            starts_at: NOW,
            ends_at: NOW + HOUR,
            channel_ids: list(channel_ids),
            rule_ids: list(rule_ids),
        }
    }

    fn payload(tenant: &str) -> Value {
        json!({"event": "permission.external_share_created", "tenant": {"id": tenant}, "data": {"site_url": "https://contoso.sharepoint.com/sites/Finance"}})
    }

    #[test]
    fn a_silence_holds_matching_pairs_within_its_window() {
        let any = silence(None, None);
        assert!(any.holds(NOW, "rule_a", "ch_soc", false, &payload("contoso")), "from starts_at");
        assert!(any.holds(NOW + HOUR - 1, "rule_a", "ch_soc", false, &payload("contoso")));
        assert!(!any.holds(NOW + HOUR, "rule_a", "ch_soc", false, &payload("contoso")), "ends_at is exclusive");
        assert!(!any.holds(NOW - 1, "rule_a", "ch_soc", false, &payload("contoso")), "not yet");
        assert!(!any.holds(NOW, "rule_a", "ch_soc", false, &payload("fabrikam")), "the matchers decide");
        assert_eq!((any.status(NOW - 1), any.status(NOW), any.status(NOW + HOUR)), (SilenceStatus::Pending, SilenceStatus::Active, SilenceStatus::Expired));
    }

    #[test]
    fn channel_and_rule_ids_narrow_a_silence_and_siem_channels_are_exempt_unless_named() {
        let event = payload("contoso");
        let any = silence(None, None);
        assert!(!any.holds(NOW, "rule_a", "ch_splunk", true, &event), "a SIEM receives every event");
        let named = silence(Some(&["ch_soc", "ch_splunk"]), None);
        assert!(named.holds(NOW, "rule_a", "ch_splunk", true, &event), "unless the silence names it");
        assert!(named.holds(NOW, "rule_a", "ch_soc", false, &event));
        assert!(!named.holds(NOW, "rule_a", "ch_teams", false, &event), "a channel not named");
        let by_rule = silence(None, Some(&["rule_a"]));
        assert!(by_rule.holds(NOW, "rule_a", "ch_soc", false, &event));
        assert!(!by_rule.holds(NOW, "rule_b", "ch_soc", false, &event), "another rule decides the pair");
    }
}
