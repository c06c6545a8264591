//! How one setting's text is checked: a duration or a whole number within bounds, a bearer token,
//! each failing with a [`SettingError`] that names the variable (a token shown as `****`); and a
//! database URL as it may be shown in such an error.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::SettingError;
use crate::domain::token::MIN_TOKEN_LEN;

/// A duration such as `30s` or `5d` within `within`; `problem` says what is accepted.
pub(super) fn duration(
    variable: &'static str,
    flag: &'static str,
    value: &str,
    within: RangeInclusive<Duration>,
    problem: &str,
) -> Result<Duration, SettingError> {
    humantime::parse_duration(value.trim())
        .ok()
        .filter(|d| within.contains(d))
        .ok_or_else(|| SettingError::new(variable, flag, value, problem))
}

/// A whole number from `min` to `max`.
pub(super) fn count(variable: &'static str, flag: &'static str, value: &str, min: usize, max: usize) -> Result<usize, SettingError> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| SettingError::new(variable, flag, value, format!("is not a whole number between {min} and {max}")))
}

/// A bearer token, when one is given: at least [`MIN_TOKEN_LEN`] visible ASCII characters.
pub(super) fn token(variable: &'static str, flag: &'static str, value: &Option<String>) -> Result<Option<String>, SettingError> {
    match value {
        Some(t) if t.len() < MIN_TOKEN_LEN || t.chars().any(|c| !c.is_ascii_graphic()) => Err(SettingError::new(
            variable,
            flag,
            "****",
            format!("must be at least {MIN_TOKEN_LEN} visible ASCII characters without spaces"),
        )),
        other => Ok(other.clone()),
    }
}

/// A database URL as it may be shown: any password replaced by `****` (even in a URL that does
/// not parse).
pub(super) fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:****{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
