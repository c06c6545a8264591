//! `sentinel`: Microsoft Sentinel through the Azure Monitor Logs Ingestion API (SPEC section 12).
//! Deliveries go in batches: one request POSTs a JSON array of records (at most `batch_size`,
//! the body at most [`BODY_MAX`]) to
//! `{endpoint}/dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}?api-version=2023-01-01`
//! with a bearer token from the app registration's client credentials (fetched and cached by the
//! outbound exchange). Azure answers `204`; `401` gets a new token once; `403` (the app may not
//! write to the rule) is final; `413` splits the batch. The settings are parsed once, into a
//! [`SentinelChannel`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::settings::{self, BATCH_SETTINGS};
use super::{pack, parse_payload, post, Batching, ChannelType, ClientCredentials, Config, Item, Prepared, Presentation, Request, Sending, Setting, Target, Verdict};
use crate::domain::Invalid;

/// The Logs Ingestion API takes at most 1 MB per call.
pub const BODY_MAX: usize = 1_000_000;
pub const API_VERSION: &str = "2023-01-01";
pub use super::settings::DEFAULT_AUTHORITY;
/// The scope of a Logs Ingestion token.
pub const SCOPE: &str = "https://monitor.azure.com/.default";

pub struct Sentinel;

const SETTINGS: &[Setting] = &[
    Setting::text("dcr_immutable_id", "Rule immutable ID").required().placeholder("dcr-…").help("The data collection rule’s immutable ID (its JSON view)."),
    Setting::text("stream_name", "Stream").required().placeholder("Custom-SPScanAlerts_CL"),
    Setting::text("directory_id", "Directory (tenant) ID")
        .required()
        .moves_credentials()
        .placeholder("00000000-0000-0000-0000-000000000000")
        .help("The Entra tenant of the app registration."),
    Setting::text("client_id", "Application (client) ID").required(),
    Setting::text("client_secret", "Client secret").secret().required().help("Write-only: shown as ••••last4."),
    Setting::text("authority", "Authority").moves_credentials().placeholder(DEFAULT_AUTHORITY).help("Only for sovereign clouds."),
    BATCH_SETTINGS[0],
    BATCH_SETTINGS[1],
];

/// The ingestion URL of a data collection rule's stream.
pub fn ingestion_url(endpoint: &str, dcr_immutable_id: &str, stream_name: &str) -> String {
    format!("{}/dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}?api-version={API_VERSION}", endpoint.trim_end_matches('/'))
}

/// A section 4 payload as a record of the stream (the table schema is in the README). A
/// notification (`alert.group`) never goes to a SIEM (the router does not group for them); should
/// one arrive, it is one record whose `Data` is the whole notification, its events included.
pub fn record(payload: &Value) -> Value {
    let notification = payload["event"] == crate::domain::notification::NOTIFICATION_EVENT;
    let data = if notification { payload } else { &payload["data"] };
    let tenant = &payload["tenant"];
    json!({
        "TimeGenerated": payload["timestamp"],
        "EventId": payload["event_id"],
        "EventType": payload["event"],
        "Severity": payload["severity"],
        "TenantId": tenant["id"],
        "TenantName": tenant["display_name"],
        "MicrosoftTenantId": tenant["microsoft_tenant_id"],
        "SiteUrl": data["site_url"],
        "ResourcePath": data["resource_path"],
        "Principal": data["principal"],
        "PermissionType": data["permission_type"],
        "AccessLevel": data["access_level"],
        "Data": data,
    })
}

impl ChannelType for Sentinel {
    fn is_siem(&self) -> bool {
        true
    }

    fn presentation(&self) -> Presentation {
        Presentation {
            name: "sentinel",
            label: "Microsoft Sentinel",
            help: "The data collection endpoint (or the rule’s own logs ingestion endpoint).",
            url_label: "Ingestion endpoint",
            url_placeholder: "https://….ingest.monitor.azure.com",
            headers_in_form: false,
        }
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn url_field(&self) -> &'static str {
        "endpoint"
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(SentinelChannel::parse(config)?))
    }

    fn judge(&self, status: u16, body: &str) -> Verdict {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let said = answer["error"]["message"].as_str().map(|m| format!("Azure: {}", super::text::cut(m, 300))).unwrap_or_default();
        match status {
            200..=299 => Verdict::Delivered,
            401 => Verdict::Unauthorized,
            403 => Verdict::Final(
                format!("{said}; the app registration may not write to this data collection rule (give it the Monitoring Metrics Publisher role on the rule), not retried")
                    .trim_start_matches("; ")
                    .to_string(),
            ),
            413 => Verdict::TooLarge,
            410 => super::standard_verdict(status),
            _ => Verdict::Retry(said),
        }
    }
}

/// A Sentinel channel's settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelChannel {
    dcr_immutable_id: String,
    stream_name: String,
    /// Without a trailing `/`.
    authority: String,
    credentials: ClientCredentials,
    batching: Batching,
}

impl SentinelChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let dcr_immutable_id = settings::text(config, "dcr_immutable_id", 64)?.unwrap_or_default();
        if !dcr_immutable_id.strip_prefix("dcr-").is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())) {
            return Err(Invalid::new("dcr_immutable_id", "must be the rule's immutable id: `dcr-` and 32 hex digits (the rule's JSON view shows it)"));
        }
        let stream_name = settings::text(config, "stream_name", 200)?.unwrap_or_default();
        if !(stream_name.starts_with("Custom-") || stream_name.starts_with("Microsoft-"))
            || !stream_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Invalid::new("stream_name", "must be the rule's stream, such as `Custom-SPScanAlerts_CL`"));
        }
        let (credentials, authority) = settings::client_credentials(config, SCOPE)?;
        Ok(Self { dcr_immutable_id, stream_name, authority, credentials, batching: settings::batching(config)? })
    }
}

impl Prepared for SentinelChannel {
    fn request(&self, target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        let (body, carries) = pack(items, BODY_MAX, (b"[", b",", b"]"), |item| {
            serde_json::to_vec(&record(&parse_payload(item.payload))).expect("a record serialises")
        });
        post(Some(ingestion_url(&target.url, &self.dcr_immutable_id, &self.stream_name)), body, Vec::new(), carries)
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn credentials(&self) -> Option<ClientCredentials> {
        Some(self.credentials.clone())
    }

    fn filled_in(&self) -> Config {
        let mut filled = Config::new();
        filled.insert("authority".into(), Value::String(self.authority.clone()));
        filled.extend(settings::batching_stored(self.batching));
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_event_becomes_a_record_of_the_stream() {
        let payload: Value = serde_json::from_str(&crate::domain::payload::render_test("evt_1")).unwrap();
        let record = record(&payload);
        assert_eq!(record["EventId"], "evt_1");
        assert_eq!(record["EventType"], "permission.external_share_created");
        assert_eq!(record["MicrosoftTenantId"], "00000000-0000-4000-8000-000000000000");
        assert_eq!(record["Principal"], "outsider@example.net");
        assert_eq!(record["Data"]["access_level"], "edit");
        let (dcr_immutable_id, stream_name) = ("dcr-0123456789abcdef0123456789abcdef", "Custom-SPScanAlerts_CL");
        assert_eq!(
            ingestion_url("https://dce.westeurope-1.ingest.monitor.azure.com/", dcr_immutable_id, stream_name),
            "https://dce.westeurope-1.ingest.monitor.azure.com/dataCollectionRules/dcr-0123456789abcdef0123456789abcdef/streams/Custom-SPScanAlerts_CL?api-version=2023-01-01"
        );
    }

    #[test]
    fn a_stray_notification_is_one_record_that_keeps_its_events() {
        let payload: Value = serde_json::from_str(&crate::domain::notification::render_test("grp_1", 0)).unwrap();
        let record = record(&payload);
        assert_eq!((&record["EventId"], &record["EventType"], &record["Severity"]), (&json!("grp_1"), &json!("alert.group"), &json!("critical")));
        assert_eq!(record["Data"], payload);
    }

    #[test]
    fn azure_answers_are_judged_as_specified() {
        assert_eq!(Sentinel.judge(204, ""), Verdict::Delivered);
        assert_eq!(Sentinel.judge(401, ""), Verdict::Unauthorized);
        assert!(matches!(Sentinel.judge(403, r#"{"error":{"code":"OperationFailed","message":"The authentication token provided does not have access"}}"#), Verdict::Final(r) if r.contains("does not have access")));
        assert_eq!(Sentinel.judge(413, ""), Verdict::TooLarge);
        assert!(matches!(Sentinel.judge(503, ""), Verdict::Retry(_)));
    }
}
