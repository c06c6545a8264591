//! `pagerduty`: PagerDuty's Events API v2 (SPEC section 17). Each delivery is one `trigger`
//! event POSTed to `url` (default [`EVENTS_URL`]) with the integration's `routing_key`; its
//! `dedup_key` is the delivery's incident marker, so every event of one incident (the values at
//! `incident_by`, or a grouping rule's group) lands on one PagerDuty alert until the incident
//! has been quiet for `reopen_window`. The `payload` carries a one-line `summary` (at most
//! [`SUMMARY_MAX`] characters), the `source` (the site, else the tenant), the severity mapped to
//! PagerDuty's (critical → critical, high → error, medium → warning, low → info), the event's
//! time, its type as `class`, its tenant as `group`, and the whole event as `custom_details`.
//!
//! PagerDuty answers `202` (taken), `400` (the event is invalid: final, with PagerDuty's own
//! errors), `429` and 5xx (retried). A Test sends an `info` event outside any incident.
//!
//! Event data is data here, never markup: PagerDuty shows `summary` and `custom_details` as
//! text, and no `links` or `images` are made from event data.

use std::sync::Arc;

use serde_json::{json, Value};

use super::settings::{self, INCIDENT_SETTINGS};
use super::text::group::{group_summary, is_notification};
use super::text::{cut, printable, summary};
use super::{json_body, parse_payload, single, ChannelType, Config, IncidentSettings, Item, Prepared, Presentation, Request, Sending, Setting, Target, Transport, Verdict, Wrote};
use crate::domain::incident::Ticket;
use crate::domain::Invalid;

/// Where events go unless the channel says otherwise (PagerDuty's EU service account uses
/// `https://events.eu.pagerduty.com/v2/enqueue`).
pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's limit on `payload.summary`.
pub const SUMMARY_MAX: usize = 1024;

pub struct PagerDuty;

const SETTINGS: &[Setting] = &[
    Setting::text("routing_key", "Integration key")
        .secret()
        .required()
        .help("The Events API v2 integration key of a PagerDuty service (Service → Integrations). Write-only: shown as ••••last4."),
    INCIDENT_SETTINGS[0],
    INCIDENT_SETTINGS[1],
];

impl ChannelType for PagerDuty {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "pagerduty",
            label: "PagerDuty",
            help: "PagerDuty's Events API v2; leave it empty for the default (use events.eu.pagerduty.com for an EU account).",
            url_label: "Events API URL",
            url_placeholder: EVENTS_URL,
            headers_in_form: false,
        }
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn keeps_incidents(&self) -> bool {
        true
    }

    fn default_url(&self) -> Option<&'static str> {
        Some(EVENTS_URL)
    }

    /// The Events API takes about 120 events a minute per integration key.
    fn default_rate_limit(&self) -> Option<u32> {
        Some(2)
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(PagerDutyChannel::parse(config)?))
    }

    fn judge(&self, status: u16, body: &str) -> Verdict {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let errors: Vec<&str> = answer["errors"].as_array().map(|e| e.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let said = match (answer["message"].as_str(), errors.is_empty()) {
            (Some(message), false) => format!("PagerDuty: {message}: {}", errors.join("; ")),
            (Some(message), true) => format!("PagerDuty: {message}"),
            (None, _) => String::new(),
        };
        let said = cut(&said, 300);
        match status {
            200..=299 => Verdict::Delivered,
            400 => Verdict::Final(format!("{said}; the event was refused as invalid, not retried").trim_start_matches("; ").to_string()),
            401 | 403 => Verdict::Final("PagerDuty refused the integration key: check `routing_key` (an Events API v2 integration of the service), not retried".into()),
            404 => Verdict::Final("the channel's `url` answered 404: it is not PagerDuty's Events API (…/v2/enqueue on events.pagerduty.com, or events.eu.pagerduty.com for an EU account), not retried".into()),
            _ => Verdict::Retry(said),
        }
    }
}

/// A PagerDuty channel's settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyChannel {
    routing_key: String,
    incidents: IncidentSettings,
}

/// PagerDuty's severity for an event's.
pub fn severity(ours: &str) -> &'static str {
    match ours {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    }
}

/// The one line PagerDuty shows: a notification's headline, or an event's summary, without
/// control or bidirectional-override characters (event data could reorder or hide what is shown).
fn summary_of(payload: &Value) -> String {
    let line = if is_notification(payload) {
        let group = group_summary(payload);
        let severity = payload["severity"].as_str().unwrap_or("unknown").to_uppercase();
        format!("{severity}: {}", group.headline)
    } else {
        summary(payload)
    };
    cut(&printable(&line), SUMMARY_MAX)
}

impl PagerDutyChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let key_needed = "must be the 32-character integration key of an Events API v2 integration (letters and digits)";
        let routing_key = match config.get("routing_key") {
            Some(Value::String(key)) if key.trim() != key => return Err(Invalid::new("routing_key", format!("{key_needed}, without spaces around it"))),
            Some(Value::String(key)) => key.clone(),
            _ => return Err(Invalid::new("routing_key", key_needed)),
        };
        if routing_key.len() != 32 || !routing_key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Invalid::new("routing_key", key_needed));
        }
        Ok(Self { routing_key, incidents: settings::incidents(config)? })
    }

    /// The Events API body for one stored payload; `dedup_key` is the incident's marker (a Test,
    /// outside any incident, gets a key of its own).
    pub fn event(&self, item: &Item<'_>) -> Value {
        let payload = parse_payload(item.payload);
        let is_test = payload["test"] == Value::Bool(true);
        let dedup_key = match item.incident {
            Some(incident) => incident.marker.clone(),
            None => format!("spscan-test-{}", item.delivery_id),
        };
        let severity = if is_test { "info" } else { severity(payload["severity"].as_str().unwrap_or("low")) };
        // A Test's summary says the severity PagerDuty gets.
        let mut payload = payload;
        if is_test {
            payload["severity"] = Value::from("info");
        }
        let tenant = &payload["tenant"];
        let source = payload["data"]["site_url"].as_str().or(tenant["display_name"].as_str()).or(tenant["id"].as_str()).unwrap_or("SPScan");
        json!({
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "client": "SPScan Alert Router",
            "payload": {
                "summary": summary_of(&payload),
                "source": cut(source, 255),
                "severity": severity,
                "timestamp": payload["timestamp"],
                "class": payload["event"],
                "group": tenant["id"],
                "component": "SPScan",
                "custom_details": payload,
            },
        })
    }
}

impl Prepared for PagerDutyChannel {
    /// The delivery page shows the body with the integration key masked.
    fn request(&self, _target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        let mut event = self.event(&items[0]);
        let body = json_body(&event);
        event["routing_key"] = Value::String(crate::channels::masked(&self.routing_key));
        single(body, Vec::new()).shown_as(json_body(&event))
    }

    fn incidents(&self) -> Option<IncidentSettings> {
        Some(self.incidents.clone())
    }

    /// The page is known by its `dedup_key`.
    fn wrote(&self, item: &Item<'_>, _transport: &Transport) -> Wrote {
        let ticket = item.incident.map(|incident| Ticket::new(incident.marker.clone(), Some(incident.marker.clone()), None));
        Wrote { ticket, thread: None }
    }

    fn filled_in(&self) -> Config {
        settings::incidents_stored(&self.incidents)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::web::Bytes;

    use super::*;
    use crate::domain::incident::{IncidentKey, IncidentView};

    fn channel() -> PagerDutyChannel {
        let config: Config = serde_json::from_value(json!({"routing_key": "R0123456789abcdef0123456789abcde"})).unwrap();
        PagerDutyChannel::parse(&config).unwrap()
    }

    #[test]
    fn an_event_becomes_a_trigger_whose_dedup_key_is_its_incidents_marker() {
        let mut payload: Value = serde_json::from_str(&crate::domain::payload::render_test("evt_1")).unwrap();
        payload.as_object_mut().unwrap().remove("test");
        payload["severity"] = json!("high");
        payload["data"]["principal"] = json!(format!("Ev\u{202e}il\u{0007}\u{0000}{}", "x".repeat(3000)));
        let bytes = Bytes::from(payload.to_string());
        let incident = IncidentView::new(IncidentKey::from_value(&json!({"k": 1})), "spscan-0123456789abcdef0123".into(), 0);
        let item = Item { incident: Some(&incident), ..Item::new("evt_1", "dlv_1", &bytes) };
        let event = channel().event(&item);
        assert_eq!((&event["event_action"], &event["dedup_key"]), (&json!("trigger"), &json!("spscan-0123456789abcdef0123")));
        assert_eq!(event["payload"]["severity"], "error");
        let summary = event["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), SUMMARY_MAX, "cut to PagerDuty's limit");
        assert!(summary.contains("Ev il") && !summary.chars().any(|c| c.is_control() || c == '\u{202e}'), "{summary}");
        assert_eq!(event["payload"]["custom_details"], payload);
        assert_eq!(event["payload"]["source"], payload["data"]["site_url"]);
    }

    #[test]
    fn severities_map_and_a_test_is_info() {
        assert_eq!(["critical", "high", "medium", "low"].map(severity), ["critical", "error", "warning", "info"]);
        let mut payload: Value = serde_json::from_str(&crate::domain::payload::render_test("evt_t")).unwrap();
        payload["severity"] = json!("critical");
        let bytes = Bytes::from(payload.to_string());
        let event = channel().event(&Item::new("evt_t", "dlv_test_1", &bytes));
        assert_eq!((&event["payload"]["severity"], &event["dedup_key"]), (&json!("info"), &json!("spscan-test-dlv_test_1")));
        assert!(event["payload"]["summary"].as_str().unwrap().starts_with("INFO: "), "{}", event["payload"]["summary"]);
    }

    #[test]
    fn answers_are_judged_as_specified() {
        assert_eq!(PagerDuty.judge(202, r#"{"status":"success","dedup_key":"k"}"#), Verdict::Delivered);
        let refused = PagerDuty.judge(400, r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#);
        assert!(matches!(&refused, Verdict::Final(why) if why.contains("Event object is invalid: Length of 'routing_key' is incorrect")), "{refused:?}");
        assert!(matches!(PagerDuty.judge(429, ""), Verdict::Retry(_)));
        assert!(matches!(PagerDuty.judge(503, ""), Verdict::Retry(_)));
    }

    #[test]
    fn settings_are_checked_and_defaults_filled_in() {
        let bad: Config = serde_json::from_value(json!({"routing_key": "short"})).unwrap();
        assert_eq!(PagerDuty.prepare(&bad).err().unwrap().field, "routing_key");
        let bad: Config = serde_json::from_value(json!({"routing_key": "R0123456789abcdef0123456789abcde", "reopen_window": "10s"})).unwrap();
        assert_eq!(PagerDuty.prepare(&bad).err().unwrap().field, "reopen_window");
        let bad: Config = serde_json::from_value(json!({"routing_key": "R0123456789abcdef0123456789abcde", "incident_by": "tenant"})).unwrap();
        assert_eq!(PagerDuty.prepare(&bad).err().unwrap().field, "incident_by");
        for (given, says) in [("/a,,/b", "item 2 (is empty)"), ("/a, /b, /a", "item 3 (`/a`) is given twice"), ("/data/x~2", "item 1 (`/data/x~2`) is not a JSON pointer")] {
            let bad: Config = serde_json::from_value(json!({"routing_key": "R0123456789abcdef0123456789abcde", "incident_by": given})).unwrap();
            let refused = PagerDuty.prepare(&bad).err().unwrap();
            assert!(refused.field == "incident_by" && refused.message.contains(says), "{given}: {refused:?}");
        }
        let filled = channel().filled_in();
        assert_eq!((&filled["incident_by"], &filled["reopen_window"]), (&json!(["/tenant/id", "/event", "/data/site_url"]), &json!("1day")));
    }
}
