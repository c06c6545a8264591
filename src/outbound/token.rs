//! Access tokens for the types that need one (Sentinel) and for the router's own requests (the
//! Office 365 feed): the OAuth 2.0 client-credentials grant (RFC 6749 section 4.4) and a cache
//! that keeps each token until five minutes before it expires, one fetch at a time per grant.
//! The grant is one form POST and one JSON answer, made by the HTTP transport through the same
//! guarded client as deliveries, so the token endpoint passes the outbound guard like any URL.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{failure, left, Outbound};
use crate::channels::ClientCredentials;
use crate::domain::attempt::AttemptOutcome;
use crate::domain::retry::ErrorKind;
use crate::domain::time::now_ms;

/// How long before its expiry a cached token is replaced.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// A bearer token and when to stop using it (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access_token: String,
    pub use_until: i64,
}

/// The form fields of the grant; `scope` only when there is one (ServiceNow grants its
/// default scope to a request that names none).
pub fn form(credentials: &ClientCredentials) -> Vec<(&'static str, &str)> {
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", credentials.client_id.as_str()), ("client_secret", credentials.client_secret.as_str())];
    if !credentials.scope.is_empty() {
        form.push(("scope", credentials.scope.as_str()));
    }
    form
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Reads a token endpoint's answer: the token from a 2xx, or what the endpoint said was wrong
/// (Entra ID's `error_description` names the cause: `AADSTS7000215: Invalid client secret…`).
pub fn read_answer(status: u16, body: &[u8], now: i64) -> Result<Token, String> {
    if (200..300).contains(&status) {
        let granted: Granted =
            serde_json::from_slice(body).map_err(|e| format!("the token endpoint answered {status} without a token ({e})"))?;
        // Entra ID sends `expires_in` as a number; some servers as a string.
        let lifetime = match granted.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let use_until = now + lifetime * 1000 - REFRESH_BEFORE.as_millis() as i64;
        return Ok(Token { access_token: granted.access_token, use_until });
    }
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let said = answer["error_description"].as_str().or(answer["error"].as_str()).map(|s| {
        let line = s.lines().next().unwrap_or(s);
        format!(": {}", crate::channels::text::cut(line, 300))
    });
    Err(format!("the token endpoint answered HTTP {status}{}", said.unwrap_or_default()))
}

/// What is known of one grant's token: the token, and the last failure to get one (Unix ms).
#[derive(Debug, Default)]
pub struct Slot {
    pub token: Option<Token>,
    pub failed: Option<(i64, AttemptOutcome)>,
}

/// The token of one grant, behind an async lock: requests that find no good token wait for the
/// one fetching it, so a burst of requests (or of `401`s) costs one token request, not one each;
/// and when that fetch fails, the requests that were waiting for it fail with it rather than
/// each trying (and timing out) in turn.
pub type TokenSlot = Rc<tokio::sync::Mutex<Slot>>;

/// Tokens by grant, for one HTTP client (one channel's actor, or one API worker).
#[derive(Default, Clone)]
pub struct TokenCache(Rc<RefCell<HashMap<ClientCredentials, TokenSlot>>>);

impl TokenCache {
    /// The slot of a grant.
    pub fn slot(&self, credentials: &ClientCredentials) -> TokenSlot {
        Rc::clone(self.0.borrow_mut().entry(credentials.clone()).or_default())
    }
}

/// A held token still good at `now` and not the one the receiver just refused.
pub fn usable<'a>(held: &'a Option<Token>, now: i64, refused: Option<&str>) -> Option<&'a Token> {
    held.as_ref().filter(|t| now < t.use_until && Some(t.access_token.as_str()) != refused)
}

impl Outbound {
    /// A token for the grant: the cached one unless it is the one just `refused`, or a new one
    /// from the token endpoint. One fetch at a time per grant; the others wait for it.
    pub(super) async fn token(&self, credentials: &ClientCredentials, refused: Option<&str>, deadline: Instant) -> Result<String, AttemptOutcome> {
        let asked_at = now_ms();
        let slot = self.tokens.slot(credentials);
        let Ok(mut held) = actix_web::rt::time::timeout(left(deadline), slot.lock()).await else {
            return Err(failure(ErrorKind::Token, format!("no access token within {}", humantime::format_duration(self.timeout))));
        };
        if let Some(token) = usable(&held.token, now_ms(), refused) {
            return Ok(token.access_token.clone());
        }
        if let Some((_, failure)) = held.failed.as_ref().filter(|(at, _)| *at >= asked_at) {
            return Err(failure.clone());
        }
        let fetched = self.http.grant(credentials, deadline).await;
        match &fetched {
            Ok(token) => {
                held.token = Some(token.clone());
                held.failed = None;
            }
            Err(failure) => held.failed = Some((now_ms(), failure.clone())),
        }
        fetched.map(|token| token.access_token)
    }

    /// A bearer token for a grant (cached; one fetch at a time per grant), for requests the
    /// router makes on its own behalf (the Office 365 content fetcher). `refused`: the token the
    /// API just refused, to be replaced.
    pub async fn bearer(&self, credentials: &ClientCredentials, refused: Option<&str>) -> Result<String, String> {
        let deadline = Instant::now() + self.timeout;
        self.token(credentials, refused, deadline).await.map_err(|failed| failed.error.unwrap_or_else(|| "no access token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_used_until_five_minutes_before_it_expires() {
        let token = read_answer(200, br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}"#, 1_000_000).unwrap();
        assert_eq!(token, Token { access_token: "eyJ0".into(), use_until: 1_000_000 + 3_599_000 - 300_000 });
        let held = Some(token.clone());
        assert_eq!(usable(&held, 1_000_000, None), Some(&token));
        assert_eq!(usable(&held, token.use_until, None), None, "expired (less five minutes)");
        assert_eq!(usable(&held, 1_000_000, Some("eyJ0")), None, "refused by the receiver");
        assert_eq!(usable(&held, 1_000_000, Some("older")), Some(&token), "another request already replaced the refused one");
    }

    #[test]
    fn a_grant_without_a_scope_asks_for_none() {
        let credentials = |scope: &str| ClientCredentials { token_url: "https://x".into(), client_id: "id".into(), client_secret: "s".into(), scope: scope.into() };
        let names = |scope: &str| form(&credentials(scope)).iter().map(|(name, _)| *name).collect::<Vec<_>>();
        assert_eq!(names(""), ["grant_type", "client_id", "client_secret"], "ServiceNow's default scope");
        assert_eq!(names("https://monitor.azure.com/.default"), ["grant_type", "client_id", "client_secret", "scope"]);
    }

    #[test]
    fn a_refusal_says_what_entra_id_said() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}"#;
        let err = read_answer(401, body, 0).unwrap_err();
        assert_eq!(err, "the token endpoint answered HTTP 401: AADSTS7000215: Invalid client secret provided.");
        assert!(read_answer(200, b"<html>", 0).unwrap_err().contains("without a token"));
    }
}
