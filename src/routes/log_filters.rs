//! Reading the alert log's search and range parameters (`q`, `severity`, `since`, `until`), and
//! a time range that bulk redelivery reads the same way; each refusal names its parameter.

use crate::domain::severity::Severity;
use crate::domain::time::parse_rfc3339;
use crate::domain::Invalid;

/// Longest search text, in characters.
pub const MAX_SEARCH: usize = 200;

/// The search text, if any: at most [`MAX_SEARCH`] characters, no NUL (PostgreSQL text cannot
/// hold one).
pub fn search(q: Option<String>) -> Result<Option<String>, Invalid> {
    let Some(q) = q.filter(|q| !q.is_empty()) else { return Ok(None) };
    if q.chars().count() > MAX_SEARCH {
        return Err(Invalid::new("q", format!("is longer than {MAX_SEARCH} characters")));
    }
    if q.contains('\0') {
        return Err(Invalid::new("q", "holds a NUL character"));
    }
    Ok(Some(q))
}

/// The severities of `severity=high,critical` (absent or empty: any). An empty item
/// (`high,,low`, a trailing comma) is refused: it is a list that lost a value.
pub fn severities(value: Option<String>) -> Result<Vec<String>, Invalid> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else { return Ok(Vec::new()) };
    value
        .split(',')
        .map(str::trim)
        .map(|s| {
            if s.is_empty() {
                return Err(Invalid::new("severity", format!("`{value}` has an empty item; list severities separated by commas, e.g. high,critical")));
            }
            Ok(Severity::parse("severity", s)?.as_str().to_string())
        })
        .collect()
}

/// `since` and `until` (RFC 3339) as Unix ms; `until` must be later than `since`.
pub fn time_range(since: Option<String>, until: Option<String>) -> Result<(Option<i64>, Option<i64>), Invalid> {
    let instant = |field: &'static str, value: Option<String>| {
        value
            .filter(|v| !v.is_empty())
            .map(|v| parse_rfc3339(&v).ok_or_else(|| Invalid::new(field, format!("`{v}` is not an RFC 3339 time such as 2026-11-28T15:00:00Z"))))
            .transpose()
    };
    let (since, until) = (instant("since", since)?, instant("until", until)?);
    if let (Some(since), Some(until)) = (since, until) {
        if until <= since {
            return Err(Invalid::new("until", "must be later than `since`"));
        }
    }
    Ok((since, until))
}
