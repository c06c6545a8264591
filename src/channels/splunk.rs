//! `splunk`: a Splunk HTTP Event Collector (SPEC section 12). Deliveries go in batches: one
//! request carries up to `batch_size` HEC envelopes, concatenated (not an array), each
//! `{"time","host","source","sourcetype","index","event":<the section 4 payload>}`, with
//! `Authorization: Splunk <token>`, the body under [`BODY_MAX`]. Splunk answers `200` with
//! `"code":0`; `400` (bad format) and `401`/`403` (token) are final; `503` (server busy, code 9)
//! and other 5xx are retried; `413` splits the batch. The settings are parsed once, into a
//! [`SplunkChannel`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::settings::{self, BATCH_SETTINGS};
use super::{pack, parse_payload, post, Batching, ChannelType, Config, Item, Prepared, Presentation, Request, Sending, Setting, Target, Verdict};
use crate::domain::time::parse_rfc3339;
use crate::domain::Invalid;

/// Largest body sent (Splunk's default `max_content_length` is 800 MB, but proxies in front of
/// HEC often stop at 1 MiB).
pub const BODY_MAX: usize = 1024 * 1024;
/// The HEC event endpoint, appended to a base URL.
pub const EVENT_PATH: &str = "/services/collector/event";
pub const DEFAULT_SOURCETYPE: &str = "spscan:alert";
pub const DEFAULT_SOURCE: &str = "spscan-router";

pub struct Splunk;

const SETTINGS: &[Setting] = &[
    Setting::text("token", "HEC token").secret().required().help("Settings → Data inputs → HTTP Event Collector. Write-only: shown as ••••last4."),
    Setting::text("index", "Index").placeholder("the token’s default index").help("Optional: an index the token may write to."),
    Setting::text("sourcetype", "Sourcetype").placeholder(DEFAULT_SOURCETYPE),
    Setting::text("source", "Source").placeholder(DEFAULT_SOURCE),
    BATCH_SETTINGS[0],
    BATCH_SETTINGS[1],
];

/// The URL events are POSTed to: the HEC base with [`EVENT_PATH`] appended, or the full URL as given.
pub fn event_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return url.to_string() };
    let path = parsed.path().trim_end_matches('/').to_string();
    let full = if path.ends_with(EVENT_PATH) { path } else { format!("{path}{EVENT_PATH}") };
    parsed.set_path(&full);
    parsed.to_string()
}

impl ChannelType for Splunk {
    fn is_siem(&self) -> bool {
        true
    }

    fn presentation(&self) -> Presentation {
        Presentation {
            name: "splunk",
            label: "Splunk (HEC)",
            help: "The HTTP Event Collector: its base URL, or the full …/services/collector/event URL.",
            url_label: "HEC URL",
            url_placeholder: "https://splunk.example.com:8088",
            headers_in_form: false,
        }
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(SplunkChannel::parse(config)?))
    }

    /// HEC answers JSON: `{"text":"Success","code":0}`, or an error code with its text.
    fn judge(&self, status: u16, body: &str) -> Verdict {
        let answer: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let said = match (answer["text"].as_str(), answer["code"].as_i64()) {
            (Some(text), Some(code)) => format!("Splunk: {text} (code {code})"),
            _ => String::new(),
        };
        match status {
            200..=299 if answer["code"].as_i64().is_none_or(|code| code == 0) => Verdict::Delivered,
            200..=299 => Verdict::Retry(said),
            400 => Verdict::Final(format!("{said}; the events were refused as malformed, not retried").trim_start_matches("; ").to_string()),
            401 | 403 => Verdict::Final(format!("{said}; the HEC token was refused (check it is enabled and may write to the index), not retried").trim_start_matches("; ").to_string()),
            413 => Verdict::TooLarge,
            410 => super::standard_verdict(status),
            _ => Verdict::Retry(said),
        }
    }
}

/// A Splunk channel's settings, parsed. No `Debug`: it holds the token.
#[derive(Clone, PartialEq, Eq)]
pub struct SplunkChannel {
    token: String,
    /// `None`: the token's default index.
    index: Option<String>,
    sourcetype: String,
    source: String,
    batching: Batching,
}

impl SplunkChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let token = settings::text(config, "token", 256)?.unwrap_or_default();
        if token.chars().any(char::is_whitespace) {
            return Err(Invalid::new("token", "must be the HEC token alone (a GUID such as `1a2b3c4d-…`), without `Splunk ` or spaces"));
        }
        // Splunk index names: lowercase letters, digits, `_` and `-`, not starting with `_` or `-`.
        let index = settings::text(config, "index", 80)?;
        if let Some(index) = &index {
            let valid = index.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
                && !index.starts_with(['_', '-']);
            if !valid {
                return Err(Invalid::new("index", "must be a Splunk index name: lowercase letters, digits, `_` and `-`, not starting with `_` or `-`"));
            }
        }
        let sourcetype = settings::text(config, "sourcetype", 200)?.unwrap_or_else(|| DEFAULT_SOURCETYPE.to_string());
        let source = settings::text(config, "source", 200)?.unwrap_or_else(|| DEFAULT_SOURCE.to_string());
        Ok(Self { token, index, sourcetype, source, batching: settings::batching(config)? })
    }
}

impl Prepared for SplunkChannel {
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        let (body, carries) = pack(items, BODY_MAX, (b"", b"\n", b""), |item| {
            let event = parse_payload(item.payload);
            // Epoch seconds, with milliseconds when there are any.
            let ms = event["timestamp"].as_str().and_then(parse_rfc3339).unwrap_or(sending.now);
            let time = if ms % 1000 == 0 { json!(ms / 1000) } else { json!(ms as f64 / 1000.0) };
            let mut envelope = json!({ "time": time, "host": sending.host, "source": self.source, "sourcetype": self.sourcetype, "event": event });
            if let Some(index) = &self.index {
                envelope["index"] = Value::String(index.clone());
            }
            serde_json::to_vec(&envelope).expect("an envelope serialises")
        });
        post(Some(event_url(&target.url)), body, vec![("authorization", format!("Splunk {}", self.token))], carries)
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn filled_in(&self) -> Config {
        let mut filled = Config::new();
        filled.insert("sourcetype".into(), Value::String(self.sourcetype.clone()));
        filled.insert("source".into(), Value::String(self.source.clone()));
        filled.extend(settings::batching_stored(self.batching));
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_event_path_and_a_full_one_is_kept() {
        assert_eq!(event_url("https://splunk.example:8088"), "https://splunk.example:8088/services/collector/event");
        assert_eq!(event_url("https://splunk.example:8088/"), "https://splunk.example:8088/services/collector/event");
        assert_eq!(event_url("https://s.example/services/collector/event"), "https://s.example/services/collector/event");
        assert_eq!(event_url("https://s.example/prefix/services/collector/event/"), "https://s.example/prefix/services/collector/event");
    }

    #[test]
    fn hec_answers_are_judged_as_specified() {
        assert_eq!(Splunk.judge(200, r#"{"text":"Success","code":0}"#), Verdict::Delivered);
        assert!(matches!(Splunk.judge(400, r#"{"text":"Invalid data format","code":6}"#), Verdict::Final(r) if r.contains("Invalid data format (code 6)")));
        assert!(matches!(Splunk.judge(403, r#"{"text":"Invalid token","code":4}"#), Verdict::Final(_)));
        assert!(matches!(Splunk.judge(401, ""), Verdict::Final(_)));
        assert!(matches!(Splunk.judge(503, r#"{"text":"Server is busy","code":9}"#), Verdict::Retry(r) if r.contains("busy")));
        assert!(matches!(Splunk.judge(500, ""), Verdict::Retry(_)));
        assert_eq!(Splunk.judge(413, ""), Verdict::TooLarge);
    }

    #[test]
    fn a_request_is_built_from_the_settings_parsed_once() {
        let mut config = Config::new();
        config.insert("token".into(), "1a2b-3c4d".into());
        config.insert("index".into(), "alerts".into());
        let channel = SplunkChannel::parse(&config).unwrap();
        let target = Target::new("ch_1".into(), crate::channels::ChannelKind::parse("type", "splunk").unwrap(), "https://hec.example:8088".into(), Default::default(), Vec::new(), config).unwrap();
        let payload = actix_web::web::Bytes::from(crate::domain::payload::render_test("evt_1"));
        let items = [Item::new("evt_1", "dlv_1", &payload), Item::new("evt_2", "dlv_2", &payload)];
        let request = channel.request(&target, &items, Sending { now: 0, host: "router-1" });
        assert_eq!(request.carries, 2);
        let crate::channels::Transport::Http(post) = request.transport else { panic!("an HTTP POST") };
        assert_eq!(post.url.as_deref(), Some("https://hec.example:8088/services/collector/event"));
        assert_eq!(post.headers, [("authorization", "Splunk 1a2b-3c4d".to_string())]);
        let first: Value = serde_json::Deserializer::from_slice(&post.body).into_iter().next().unwrap().unwrap();
        assert_eq!((&first["index"], &first["sourcetype"], &first["host"]), (&json!("alerts"), &json!(DEFAULT_SOURCETYPE), &json!("router-1")));
        assert_eq!(target.batching, settings::DEFAULT_BATCHING);
    }

    #[test]
    fn a_stray_notification_is_one_hec_event_carrying_it_whole() {
        let config: Config = serde_json::from_value(json!({"token": "t"})).unwrap();
        let channel = SplunkChannel::parse(&config).unwrap();
        let target = Target::new("ch_1".into(), crate::channels::ChannelKind::parse("type", "splunk").unwrap(), "https://hec.example:8088".into(), Default::default(), Vec::new(), config).unwrap();
        let payload = actix_web::web::Bytes::from(crate::domain::notification::render_test("grp_1", 1_000));
        let request = channel.request(&target, &[Item::new("grp_1", "dlv_1", &payload)], Sending { now: 0, host: "router-1" });
        let crate::channels::Transport::Http(post) = request.transport else { panic!("an HTTP POST") };
        let envelope: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(envelope["event"], serde_json::from_slice::<Value>(&payload).unwrap());
        assert_eq!(envelope["time"], 1);
    }
}
