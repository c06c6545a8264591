//! The Office 365 Management Activity API's settings (`O365_*`, SPEC section 14): all or
//! nothing, each checked; the client secret never shows in `Debug` or in an error.

use std::time::Duration;

use super::{parse, Cli, SettingError};
use crate::domain::token::MIN_TOKEN_LEN;

/// The Office 365 Management Activity API, when `O365_CLIENT_ID` is set (SPEC section 14).
#[derive(Clone)]
pub struct O365Settings {
    pub client_id: String,
    pub client_secret: String,
    /// `https://login.microsoftonline.com`, or a test's token endpoint.
    pub authority: String,
    /// `https://manage.office.com/api/v1.0`, or a test's.
    pub api_root: String,
    pub poll_interval: Duration,
    /// What notifications must carry in `Webhook-AuthID`; unset, notifications are refused.
    pub webhook_auth_id: Option<String>,
}

impl std::fmt::Debug for O365Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "O365Settings({} at {} via {}, every {:?})", self.client_id, self.api_root, self.authority, self.poll_interval)
    }
}

impl O365Settings {
    /// The token endpoint for one Microsoft tenant.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority.trim_end_matches('/'))
    }

    /// The `O365_*` settings: all or nothing, each checked; `None` without `O365_CLIENT_ID`.
    pub(super) fn from_cli(cli: &Cli) -> Result<Option<Self>, SettingError> {
        let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let Some(client_id) = set(&cli.o365_client_id) else {
            if set(&cli.o365_webhook_auth_id).is_some() || set(&cli.o365_client_secret).is_some() {
                let problem = "must be set when O365_CLIENT_SECRET or O365_WEBHOOK_AUTH_ID is: the router fetches audit content as that app registration";
                return Err(SettingError::new("O365_CLIENT_ID", "o365-client-id", "", problem));
            }
            return Ok(None);
        };
        let client_secret = set(&cli.o365_client_secret).ok_or_else(|| {
            SettingError::new("O365_CLIENT_SECRET", "o365-client-secret", "", "must be set with O365_CLIENT_ID (the app registration's client secret)")
        })?;
        let url = |variable: &'static str, flag: &'static str, value: &str| -> Result<String, SettingError> {
            let value = value.trim().trim_end_matches('/');
            match url::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => Ok(value.to_string()),
                _ => Err(SettingError::new(variable, flag, value, "is not an http(s) address without a query")),
            }
        };
        let authority = url("O365_AUTHORITY", "o365-authority", &cli.o365_authority)?;
        let api_root = url("O365_API_ROOT", "o365-api-root", &cli.o365_api_root)?;
        let poll_interval = parse::duration(
            "O365_POLL_INTERVAL", "o365-poll-interval", &cli.o365_poll_interval,
            Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
            "is not a duration between 1s and 24h, such as 15m",
        )?;
        let webhook_auth_id = match set(&cli.o365_webhook_auth_id) {
            Some(id) if id.len() < MIN_TOKEN_LEN || id.len() > 512 || id.chars().any(|c| !c.is_ascii_graphic()) => {
                let problem = format!("must be {MIN_TOKEN_LEN} to 512 visible ASCII characters without spaces");
                return Err(SettingError::new("O365_WEBHOOK_AUTH_ID", "o365-webhook-auth-id", "****", problem));
            }
            other => other,
        };
        Ok(Some(Self { client_id, client_secret, authority, api_root, poll_interval, webhook_auth_id }))
    }
}
