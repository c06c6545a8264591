//! STUB (replaced by the `notify` branch).
use super::severity::Severity;
pub const MAX_LISTED: usize = 100;
pub const NOTIFICATION_EVENT: &str = "alert.group";
pub struct Notification<'a> {
    pub event_id: &'a str, pub timestamp_ms: i64, pub rule_id: &'a str, pub rule_name: &'a str, pub group_id: &'a str,
    pub key: &'a serde_json::Map<String, serde_json::Value>, pub earlier: u64, pub max_severity: Severity, pub events: &'a [&'a str],
}
impl Notification<'_> {
    pub fn body(&self) -> String {
        let events: Vec<serde_json::Value> = self.events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        serde_json::json!({"event": NOTIFICATION_EVENT, "event_id": self.event_id, "rule": {"id": self.rule_id, "name": self.rule_name},
          "group": {"id": self.group_id, "key": self.key, "count": events.len(), "earlier": self.earlier, "max_severity": self.max_severity.as_str()}, "events": events}).to_string()
    }
}
