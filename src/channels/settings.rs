//! A type's own settings as the API and the database hold them: a JSON object ([`Config`]) stored
//! with the channel, described field by field by the type's [`Setting`]s (which the admin page's
//! form and `GET /api/v1/channel-types` show). [`configure`] merges a create or a change into
//! what is stored and has the type parse the result (`ChannelType::prepare`), so nothing is
//! stored that its type cannot parse; [`shown`] masks credentials for reads. The parsers the
//! types share (a bounded text, `batch_size` and `batch_wait`) are here too.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Batching, ChannelKind};
use crate::domain::channel::{masked, MASK};
use crate::domain::Invalid;

/// A type's settings, as stored: a JSON object.
pub type Config = Map<String, Value>;

/// One setting of a type, as named in the API and asked for by the admin page's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// What the form calls it.
    pub label: &'static str,
    /// One line of help under the field; empty for none.
    pub help: &'static str,
    /// What the empty field shows (often the default).
    pub placeholder: &'static str,
    /// A whole number rather than text.
    pub number: bool,
    /// Write-only: reads show only its last four characters.
    pub secret: bool,
    /// Must be given when the channel is created.
    pub required: bool,
    /// Changing it sends the type's credentials somewhere else, so they must be given again
    /// (Sentinel's `authority` and `directory_id`, like the URL).
    pub moves_credentials: bool,
}

impl Setting {
    /// An optional text setting; the builders below say the rest.
    pub const fn text(name: &'static str, label: &'static str) -> Self {
        Setting { name, label, help: "", placeholder: "", number: false, secret: false, required: false, moves_credentials: false }
    }

    pub const fn help(self, help: &'static str) -> Self {
        Setting { help, ..self }
    }

    pub const fn placeholder(self, placeholder: &'static str) -> Self {
        Setting { placeholder, ..self }
    }

    pub const fn number(self) -> Self {
        Setting { number: true, ..self }
    }

    pub const fn secret(self) -> Self {
        Setting { secret: true, ..self }
    }

    pub const fn required(self) -> Self {
        Setting { required: true, ..self }
    }

    pub const fn moves_credentials(self) -> Self {
        Setting { moves_credentials: true, ..self }
    }
}

/// The settings of a batching type (Splunk, Sentinel), read by [`batching`].
pub const BATCH_SETTINGS: [Setting; 2] = [
    Setting::text("batch_size", "Batch size").number().placeholder("100").help("Most deliveries in one request (1–1000)."),
    Setting::text("batch_wait", "Batch wait").placeholder("200ms").help("How long to wait to fill a batch (e.g. 200ms, 1s; at most 10s)."),
];

/// The settings of a new channel (`current` is `None`) or of a changed one, merged and parsed by
/// the type, with what parsing filled in (defaults) written over them: a setting given as `null`
/// goes back to its default; a credential sent back masked, as reads show it, keeps its value.
pub fn configure(kind: ChannelKind, given: Config, current: Option<&Config>) -> Result<Config, Invalid> {
    let channel_type = kind.channel_type();
    let settings = channel_type.settings();
    let mut config = current.cloned().unwrap_or_default();
    for (name, value) in given {
        let Some(setting) = settings.iter().find(|s| s.name == name) else {
            let known: Vec<String> = settings.iter().map(|s| format!("`{}`", s.name)).collect();
            let takes = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(Invalid::new(
                crate::domain::tenant::clip(&name),
                format!("is not a setting of {} channels (they take {takes})", kind.as_str()),
            ));
        };
        match value {
            Value::Null if setting.required => {
                return Err(Invalid::new(name, format!("is required for {} channels and cannot be removed", kind.as_str())))
            }
            Value::Null => {
                config.remove(&name);
            }
            Value::String(text) if setting.secret && text.contains(MASK) => {
                let kept = config.get(&name).and_then(Value::as_str).is_some_and(|stored| masked(stored) == text);
                if !kept {
                    return Err(Invalid::new(name, format!("holds `{MASK}`, the mask reads show; send the whole new value, or leave it out to keep the current one")));
                }
            }
            value => {
                config.insert(name, value);
            }
        }
    }
    for setting in settings.iter().filter(|s| s.required) {
        if !config.contains_key(setting.name) {
            return Err(Invalid::new(setting.name, format!("is required for {} channels", kind.as_str())));
        }
    }
    let prepared = channel_type.prepare(&config)?;
    // Written over the given settings, so they keep the order they were given in.
    config.extend(prepared.filled_in());
    Ok(config)
}

/// The settings as reads show them: credentials masked.
pub fn shown(kind: ChannelKind, config: &Config) -> Config {
    let settings = kind.channel_type().settings();
    config
        .iter()
        .map(|(name, value)| {
            let secret = settings.iter().any(|s| s.name == name && s.secret);
            match value.as_str() {
                Some(text) if secret => (name.clone(), Value::String(masked(text))),
                _ => (name.clone(), value.clone()),
            }
        })
        .collect()
}

/// Most deliveries one request may carry.
pub const MAX_BATCH_SIZE: u64 = 1000;
/// Longest `batch_wait`.
pub const MAX_BATCH_WAIT: Duration = Duration::from_secs(10);
/// Defaults: 100 deliveries, 200 ms.
pub const DEFAULT_BATCHING: Batching = Batching { size: 100, wait: Duration::from_millis(200) };

/// A text setting: absent, or a non-empty text of at most `max` characters without control
/// characters.
pub fn text(config: &Config, name: &str, max: usize) -> Result<Option<String>, Invalid> {
    match config.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control) => Ok(Some(s.clone())),
        Some(_) => Err(Invalid::new(name, format!("must be a text of 1 to {max} characters, without line breaks"))),
    }
}

/// A list setting as given: a JSON array of texts, or one text of items separated by commas or
/// semicolons (what the admin page's form sends); empty items are dropped. `None`: not given.
pub fn list(config: &Config, name: &str) -> Result<Option<Vec<String>>, Invalid> {
    match config.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| Invalid::new(format!("{name}[{i}]"), "must be a text")))
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(Invalid::new(name, "must be a list of texts (or one text of items separated by commas)")),
    }
}

/// An object setting as given: a JSON object, or one text holding one (what the admin page's
/// form sends). `None`: not given.
pub fn object(config: &Config, name: &str) -> Result<Option<Map<String, Value>>, Invalid> {
    let parsed;
    let value = match config.get(name) {
        None => return Ok(None),
        Some(Value::String(text)) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|_| Invalid::new(name, "must be a JSON object (the form takes it as JSON text)"))?;
            &parsed
        }
        Some(value) => value,
    };
    match value {
        Value::Object(object) => Ok(Some(object.clone())),
        _ => Err(Invalid::new(name, "must be a JSON object")),
    }
}

/// `batch_size` and `batch_wait` ([`BATCH_SETTINGS`]), or their defaults.
pub fn batching(config: &Config) -> Result<Batching, Invalid> {
    let size = match config.get("batch_size") {
        None => DEFAULT_BATCHING.size as u64,
        Some(v) => v.as_u64().filter(|n| (1..=MAX_BATCH_SIZE).contains(n)).ok_or_else(|| {
            Invalid::new("batch_size", format!("must be a whole number of deliveries per request from 1 to {MAX_BATCH_SIZE}; got {v}"))
        })?,
    };
    let wait = match config.get("batch_wait") {
        None => DEFAULT_BATCHING.wait,
        Some(v) => v
            .as_str()
            .and_then(|s| humantime::parse_duration(s).ok())
            .filter(|d| *d <= MAX_BATCH_WAIT)
            .ok_or_else(|| Invalid::new("batch_wait", format!("must be a duration such as `200ms` or `1s`, at most 10s; got {v}")))?,
    };
    Ok(Batching { size: size as usize, wait })
}

/// The settings of the types that keep incidents (SPEC section 17), read by [`incidents`].
pub const INCIDENT_SETTINGS: [Setting; 2] = [
    Setting::text("incident_by", "Incident by")
        .placeholder("/tenant/id, /event, /data/site_url")
        .help("Events with the same values at these paths are one incident (JSON pointers, comma-separated). A rule that groups uses its group instead."),
    Setting::text("reopen_window", "Reopen window")
        .placeholder("24h")
        .help("An incident nobody wrote to for this long is over; the next event opens a new one (1m to 30d)."),
];
/// Longest `reopen_window`.
pub const MAX_REOPEN_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default `reopen_window`.
pub const DEFAULT_REOPEN_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most `incident_by` paths.
pub const MAX_INCIDENT_PATHS: usize = 10;

/// `incident_by` (a list of JSON pointers, as a JSON array or one comma-separated text) and
/// `reopen_window` ([`INCIDENT_SETTINGS`]), or their defaults.
pub fn incidents(config: &Config) -> Result<super::IncidentSettings, Invalid> {
    let example = "JSON pointers such as /tenant/id, /event, /data/site_url";
    let by: Vec<String> = match config.get("incident_by") {
        None => crate::domain::incident::DEFAULT_INCIDENT_BY.iter().map(|p| p.to_string()).collect(),
        Some(Value::String(text)) => text.split(',').map(|p| p.trim().to_string()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| p.as_str().map(str::to_string).ok_or_else(|| Invalid::new("incident_by", format!("item {} is not a text: give {example}", i + 1))))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Invalid::new("incident_by", format!("must be a list (or one comma-separated text) of {example}"))),
    };
    if by.is_empty() || by.len() > MAX_INCIDENT_PATHS {
        return Err(Invalid::new("incident_by", format!("must hold 1 to {MAX_INCIDENT_PATHS} {example}")));
    }
    for (i, path) in by.iter().enumerate() {
        let what = if path.is_empty() { "is empty".to_string() } else { format!("`{}`", crate::domain::tenant::clip(path)) };
        let bad = !path.starts_with('/') || path.len() > 200 || path.chars().any(char::is_control) || path.split('~').skip(1).any(|rest| !rest.starts_with(['0', '1']));
        if bad {
            return Err(Invalid::new("incident_by", format!("item {} ({what}) is not a JSON pointer: give {example}", i + 1)));
        }
        if by[..i].contains(path) {
            return Err(Invalid::new("incident_by", format!("item {} ({what}) is given twice", i + 1)));
        }
    }
    let window = match config.get("reopen_window") {
        None => DEFAULT_REOPEN_WINDOW,
        Some(v) => v
            .as_str()
            .and_then(|s| humantime::parse_duration(s).ok())
            .filter(|d| *d >= Duration::from_secs(60) && *d <= MAX_REOPEN_WINDOW)
            .ok_or_else(|| Invalid::new("reopen_window", format!("must be a duration from 1m to 30d, such as `24h`; got {v}")))?,
    };
    Ok(super::IncidentSettings { by, reopen_window_ms: window.as_millis() as i64 })
}

/// `incident_by` and `reopen_window` as they are stored (a list, `"24h"`).
pub fn incidents_stored(incidents: &super::IncidentSettings) -> Config {
    let mut stored = Config::new();
    stored.insert("incident_by".into(), Value::from(incidents.by.clone()));
    let window = Duration::from_millis(incidents.reopen_window_ms as u64);
    stored.insert("reopen_window".into(), Value::from(humantime::format_duration(window).to_string()));
    stored
}

/// Where Entra ID issues tokens, unless a channel names a sovereign cloud's authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// An Entra ID app registration's client-credentials grant for `scope`, from the settings
/// `directory_id`, `client_id`, `client_secret` and `authority` (Sentinel's, and email's with
/// XOAUTH2), and the authority as stored (without a trailing `/`).
pub fn client_credentials(config: &Config, scope: &str) -> Result<(super::ClientCredentials, String), Invalid> {
    let required = |name: &'static str| Invalid::new(name, "is required to get an access token from the app registration");
    let directory = text(config, "directory_id", 200)?.ok_or_else(|| required("directory_id"))?;
    if !directory.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(Invalid::new("directory_id", "must be the Entra tenant of the app registration: its GUID (or its domain name)"));
    }
    let client_id = text(config, "client_id", 36)?.unwrap_or_default();
    if !is_guid(&client_id) {
        return Err(Invalid::new("client_id", "must be the app registration's application (client) id, a GUID"));
    }
    let client_secret = text(config, "client_secret", 1024)?.ok_or_else(|| required("client_secret"))?;
    let authority = text(config, "authority", 2048)?.unwrap_or_else(|| DEFAULT_AUTHORITY.to_string());
    let url = crate::domain::channel::ChannelUrl::parse(&authority, &crate::domain::limits::Limits::default()).map_err(|e| Invalid::new("authority", e.message))?;
    if !url.as_str().starts_with("https://") && !url.as_str().starts_with("http://") {
        return Err(Invalid::new("authority", "must be an https URL such as https://login.microsoftonline.com"));
    }
    let authority = authority.trim_end_matches('/').to_string();
    let credentials = super::ClientCredentials {
        token_url: format!("{authority}/{directory}/oauth2/v2.0/token"),
        client_id,
        client_secret,
        scope: scope.to_string(),
    };
    Ok((credentials, authority))
}

/// `batch_size` and `batch_wait` as they are stored (`100`, `"200ms"`).
pub fn batching_stored(batching: Batching) -> Config {
    let mut stored = Config::new();
    stored.insert("batch_size".into(), Value::from(batching.size as u64));
    stored.insert("batch_wait".into(), Value::from(humantime::format_duration(batching.wait).to_string()));
    stored
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Config {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn what_parsing_fills_in_is_stored_after_the_settings_given_in_their_order() {
        let splunk = ChannelKind::parse("type", "splunk").unwrap();
        let config = configure(splunk, object(json!({"index": "main", "token": "1a2b-3c4d", "source": "here"})), None).unwrap();
        let names: Vec<&str> = config.keys().map(String::as_str).collect();
        assert_eq!(names, ["index", "token", "source", "sourcetype", "batch_size", "batch_wait"]);
        assert_eq!(config["sourcetype"], "spscan:alert");
        assert_eq!((&config["batch_size"], &config["batch_wait"]), (&json!(100), &json!("200ms")));
        let changed = configure(splunk, object(json!({"source": null, "batch_wait": "1s"})), Some(&config)).unwrap();
        assert_eq!((&changed["source"], &changed["batch_wait"]), (&json!("spscan-router"), &json!("1s")));
        let refused = configure(splunk, object(json!({"batch_size": 0})), Some(&config)).unwrap_err();
        assert_eq!(refused.field, "batch_size");
    }
}
