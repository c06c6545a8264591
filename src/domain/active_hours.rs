//! STUB (replaced by the `hours` branch): a rule's active hours.
use serde_json::Value;
use super::Invalid;
#[derive(Debug, Clone)]
pub struct ActiveHours(Value);
impl ActiveHours {
    pub fn parse(value: &Value, _field: &str) -> Result<ActiveHours, Invalid> { Ok(Self(value.clone())) }
    pub fn contains(&self, _at: i64) -> bool { true }
    pub fn to_json(&self) -> Value { self.0.clone() }
    pub fn describe(&self) -> String { String::new() }
}
