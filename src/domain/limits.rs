//! The size limits on what clients send. Each is a setting (see `settings`); the defaults are
//! documented in the README. Identifier formats (event ids, event types, tenant ids, header
//! names) have fixed lengths and are not settings.

/// Every configurable limit, with the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Longest name: channel, rule, tenant display name (characters).
    pub max_name: usize,
    /// Longest channel URL (characters).
    pub max_url: usize,
    /// Most custom headers on one channel.
    pub max_headers: usize,
    /// Longest custom header value (bytes).
    pub max_header_value: usize,
    /// Largest `data` object of one event, serialised (bytes).
    pub max_event_data_bytes: usize,
    /// Most event type patterns on one rule.
    pub max_rule_event_types: usize,
    /// Most target channels on one rule.
    pub max_rule_channels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch_events: 1000,
            max_name: 200,
            max_url: 2048,
            max_headers: 20,
            max_header_value: 2048,
            max_event_data_bytes: 64 * 1024,
            max_rule_event_types: 50,
            max_rule_channels: 100,
        }
    }
}
