//! STUB (replaced by the `silence` branch): silences.
use super::condition::Condition;
#[derive(Debug, Clone)]
pub struct Silence { pub id: String, pub matchers: Condition, pub starts_at: i64, pub ends_at: i64, pub channel_ids: Option<Vec<String>>, pub rule_ids: Option<Vec<String>> }
impl Silence {
    pub fn holds(&self, at: i64, rule_id: &str, channel_id: &str, siem: bool, payload: &serde_json::Value) -> bool {
        let _ = (at, rule_id, channel_id, siem, payload); false
    }
}
