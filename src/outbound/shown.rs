//! What an attempt sent, as the delivery page shows it ([`SentRequest`]): the method, the URL,
//! the headers and the body exactly as they went out, with every credential masked before
//! anything is kept (a secret webhook URL's path, `Authorization`, the channel's custom header
//! values, credential-looking query parameters and the URL's password), and the answer's
//! headers. Nothing here is ever stored unmasked.

use actix_web::web::Bytes;

use crate::channels::{masked, MASK};
use crate::domain::channel::masked_url;

/// Most bytes of a body kept: the rest is dropped, and the view says how many there were.
pub const BODY_KEPT: usize = 64 * 1024;

/// Most answer headers kept, and most bytes of each value.
const ANSWER_HEADERS: usize = 64;
const HEADER_VALUE_KEPT: usize = 1024;

/// A request as it was sent, credentials masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The first [`BODY_KEPT`] bytes of the body as text; `None`: the body was the delivery's
    /// payload as stored, byte for byte (a webhook's), so it is not kept twice.
    pub body: Option<String>,
    /// How many bytes the body had in all.
    pub body_bytes: usize,
    /// The answer's headers (`None`: no answer came).
    pub answer_headers: Option<Vec<(String, String)>>,
}

/// Query parameters whose value is masked in a URL that is shown.
fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["token", "key", "secret", "sig", "password", "passwd", "auth", "code", "credential"].iter().any(|w| name.contains(w))
}

/// The URL as it may be shown: all of a secret URL's path masked (Slack, Teams); otherwise its
/// password and credential-looking query values.
pub fn shown_url(url: &str, secret: bool) -> String {
    if secret {
        return masked_url(url);
    }
    let Ok(mut parsed) = url::Url::parse(url) else { return MASK.into() };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(MASK));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_credential_name(&k) { MASK.to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// A header value of the type's own (`Authorization: Splunk …`): the scheme word kept, the
/// credential masked.
pub fn shown_authorization(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, credential)) => format!("{scheme} {}", masked(credential)),
        None => masked(value),
    }
}

/// Puts a header the way the client does (`insert_header`: a later one of the same name
/// replaces an earlier one).
pub fn put(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value));
}

/// The body as kept: `None` when it is `payload` itself, else its first [`BODY_KEPT`] bytes (cut at
/// a character boundary) as text.
pub fn kept_body(body: &Bytes, payload: Option<&Bytes>) -> Option<String> {
    if payload.is_some_and(|p| p == body) {
        return None;
    }
    Some(head(&String::from_utf8_lossy(body), BODY_KEPT).to_string())
}

/// The first bytes of `text`, at most `max`, cut at a character boundary.
pub fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An answer's headers as kept: the first [`ANSWER_HEADERS`], each value cut to
/// [`HEADER_VALUE_KEPT`] bytes, cookies masked.
pub fn answer_headers(headers: &awc::http::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .take(ANSWER_HEADERS)
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            let value = if name.as_str().eq_ignore_ascii_case("set-cookie") { MASK.to_string() } else { head(&value, HEADER_VALUE_KEPT).to_string() };
            (name.as_str().to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_keeps_no_credential() {
        assert_eq!(shown_url("https://hooks.slack.com/services/T0/B0/abcdefXYZ9", true), "https://hooks.slack.com/••••XYZ9");
        assert_eq!(shown_url("https://user:pw@example.com/hook?api_key=s3cret&site=a", false), "https://user:%E2%80%A2%E2%80%A2%E2%80%A2%E2%80%A2@example.com/hook?api_key=%E2%80%A2%E2%80%A2%E2%80%A2%E2%80%A2&site=a");
        assert_eq!(shown_url("https://example.com/hook", false), "https://example.com/hook");
        assert_eq!(shown_authorization("Splunk 1a2b3c4d-5e6f-7a8b"), "Splunk ••••7a8b");
    }

    #[test]
    fn a_long_body_is_cut_at_a_character_boundary() {
        let body = Bytes::from("é".repeat(BODY_KEPT));
        let kept = kept_body(&body, None).unwrap();
        assert!(kept.len() <= BODY_KEPT && kept.len() > BODY_KEPT - 2);
        assert_eq!(kept_body(&body, Some(&body)), None);
    }
}
