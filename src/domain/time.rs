//! Instants as the router stores them: milliseconds since the Unix epoch, UTC. Portable across
//! SQLite and PostgreSQL (a BIGINT) and trivially ordered; rendered as RFC 3339 at the edge.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current instant.
pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// RFC 3339 in UTC with millisecond precision (`2026-11-28T15:36:08.123Z`).
pub fn rfc3339(ms: Millis) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 3339 in UTC, whole seconds when there is no fraction (the payload's `timestamp`).
pub fn rfc3339_compact(ms: Millis) -> String {
    let at = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    let format = if ms % 1000 == 0 { SecondsFormat::Secs } else { SecondsFormat::Millis };
    at.to_rfc3339_opts(format, true)
}

/// Parses an RFC 3339 instant (any offset) into milliseconds.
pub fn parse_rfc3339(value: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(value).ok().map(|at| at.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_rfc3339() {
        let ms = parse_rfc3339("2026-11-28T15:36:08Z").unwrap();
        assert_eq!(rfc3339_compact(ms), "2026-11-28T15:36:08Z");
        assert_eq!(rfc3339(ms + 5), "2026-11-28T15:36:08.005Z");
        assert_eq!(parse_rfc3339("2026-11-28T16:36:08+01:00"), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
