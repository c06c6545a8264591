//! Every knob, typed, from environment variables and the matching command-line flags (a flag
//! wins over its variable). `--help` lists each with its default. A bad value stops the start
//! with one line naming the variable and what it accepts.

use std::time::Duration;

use clap::Parser;

use crate::domain::limits::Limits;
use crate::domain::network::TargetPolicy;
use crate::outbound::Names;
use crate::retention::Retention;
use crate::store::Database;
use crate::domain::breaker::{BreakerPolicy, MAX_COOLDOWN};
use crate::domain::retry::{RetryPolicy, RetrySchedule, MAX_JITTER, MAX_RETRY_AFTER_LIMIT};
use crate::domain::token::MIN_TOKEN_LEN;

/// The command line; every flag also reads the environment variable named beside it.
#[derive(Debug, Parser)]
#[command(name = "spscan-router", version, about = "SPScan Alert Router: routes Microsoft 365 change events to webhooks.")]
pub struct Cli {
    /// Where the database is: a SQLite file path (or sqlite://path), or postgres://user@host:port/db
    /// for PostgreSQL (several instances may share one).
    #[arg(long, env = "DATABASE_URL", default_value = "spscan-router.db", hide_env_values = true)]
    pub database_url: String,
    /// Address and port the API and admin page listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: String,
    /// Delays before each retry of a failed delivery, comma-separated (units ms, s, m, h).
    #[arg(long, env = "RETRY_SCHEDULE", default_value = "30s,2m,10m")]
    pub retry_schedule: String,
    /// How much each retry delay varies either way, as a share (0.1 is ±10 %; 0 turns it off; at most 0.5).
    #[arg(long, env = "RETRY_JITTER", default_value = "0.1")]
    pub retry_jitter: String,
    /// Longest wait a receiver's Retry-After (on 429 or 503) is honoured for (units s, m, h, d; at most 7d).
    #[arg(long, env = "MAX_RETRY_AFTER", default_value = "1h")]
    pub max_retry_after: String,
    /// Consecutive failed attempts that open a channel's circuit (nothing is sent until a probe succeeds).
    #[arg(long, env = "BREAKER_FAILURES", default_value = "10")]
    pub breaker_failures: String,
    /// How long an open circuit waits before its probe (doubling after each failed probe, up to 10m).
    #[arg(long, env = "BREAKER_COOLDOWN", default_value = "60s")]
    pub breaker_cooldown: String,
    /// A channel failing without a success for this long is disabled (its deliveries wait; 1m to 90d).
    #[arg(long, env = "DISABLE_AFTER", default_value = "5d")]
    pub disable_after: String,
    /// Longest one delivery attempt may take, connect to last byte.
    #[arg(long, env = "DELIVERY_TIMEOUT", default_value = "30s")]
    pub delivery_timeout: String,
    /// Most requests open at once to one channel.
    #[arg(long, env = "DELIVERY_CONCURRENCY", default_value = "16")]
    pub delivery_concurrency: String,
    /// Most deliveries one channel holds in memory; the rest wait in the database.
    #[arg(long, env = "CHANNEL_QUEUE", default_value = "1024")]
    pub channel_queue: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "1048576")]
    pub max_body_bytes: String,
    /// Most events in one batch ingestion request.
    #[arg(long, env = "MAX_BATCH_EVENTS", default_value = "1000")]
    pub max_batch_events: String,
    /// Longest name of a channel or rule, or display name of a tenant, in characters.
    #[arg(long, env = "MAX_NAME_LENGTH", default_value = "200")]
    pub max_name_length: String,
    /// Longest channel URL, in characters.
    #[arg(long, env = "MAX_URL_LENGTH", default_value = "2048")]
    pub max_url_length: String,
    /// Most custom request headers on one channel.
    #[arg(long, env = "MAX_CHANNEL_HEADERS", default_value = "20")]
    pub max_channel_headers: String,
    /// Longest custom header value, in bytes.
    #[arg(long, env = "MAX_HEADER_VALUE_LENGTH", default_value = "2048")]
    pub max_header_value_length: String,
    /// Largest `data` object of one event, serialised, in bytes.
    #[arg(long, env = "MAX_EVENT_DATA_BYTES", default_value = "65536")]
    pub max_event_data_bytes: String,
    /// Most event type patterns on one rule.
    #[arg(long, env = "MAX_RULE_EVENT_TYPES", default_value = "50")]
    pub max_rule_event_types: String,
    /// Most target channels on one rule.
    #[arg(long, env = "MAX_RULE_CHANNELS", default_value = "100")]
    pub max_rule_channels: String,
    /// Database connections in the pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value = "8")]
    pub database_pool_size: String,
    /// This instance's id among those sharing a PostgreSQL database (default: host name and process id).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Bearer token that may do everything (at least 16 characters). Unset: generated on the first start and printed once.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token that may only POST /api/v1/events. Unset: generated on the first start and printed once.
    #[arg(long, env = "INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
    /// Bearer token that may only read GET /metrics (at least 16 characters); the admin token may too.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Networks deliveries may reach despite the built-in refusals (loopback, private, link-local, …): comma-separated CIDRs.
    #[arg(long, env = "ALLOWED_TARGET_NETWORKS", default_value = "")]
    pub allowed_target_networks: String,
    /// How long succeeded and cancelled deliveries (with their attempts) and unused events are kept (1s to 10 years).
    #[arg(long, env = "RETENTION", default_value = "30d")]
    pub retention: String,
    /// How long failed deliveries are kept (1s to 10 years).
    #[arg(long, env = "FAILED_RETENTION", default_value = "90d")]
    pub failed_retention: String,
    /// How long a stop (SIGTERM, SIGINT) waits for requests and attempts in flight to finish and be recorded (0s to 10m).
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: String,
    /// How log lines are written: text, or json (one JSON object per line).
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Office 365: the app registration's client id; set, the router fetches audit content of every tenant with a microsoft_tenant_id.
    #[arg(long, env = "O365_CLIENT_ID")]
    pub o365_client_id: Option<String>,
    /// Office 365: the app registration's client secret (required with O365_CLIENT_ID).
    #[arg(long, env = "O365_CLIENT_SECRET", hide_env_values = true)]
    pub o365_client_secret: Option<String>,
    /// Office 365: where tokens come from ({authority}/{tenant}/oauth2/v2.0/token).
    #[arg(long, env = "O365_AUTHORITY", default_value = "https://login.microsoftonline.com")]
    pub o365_authority: String,
    /// Office 365: the Management Activity API's root.
    #[arg(long, env = "O365_API_ROOT", default_value = "https://manage.office.com/api/v1.0")]
    pub o365_api_root: String,
    /// Office 365: how often every tenant's available content is listed, to fetch what no notification announced (1s to 24h).
    #[arg(long, env = "O365_POLL_INTERVAL", default_value = "15m")]
    pub o365_poll_interval: String,
    /// Office 365: the authId given to subscriptions/start; notifications must carry it in Webhook-AuthID (at least 16 characters).
    #[arg(long, env = "O365_WEBHOOK_AUTH_ID", hide_env_values = true)]
    pub o365_webhook_auth_id: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `env_logger`'s lines, for people.
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `message`), for log shippers.
    Json,
}

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
}

/// The router's settings, parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SQLite file or the PostgreSQL server.
    pub database: Database,
    /// This instance's id among those sharing a database.
    pub instance_id: String,
    pub bind_addr: String,
    pub retry_schedule: RetrySchedule,
    /// Share by which each retry delay varies either way (`RETRY_JITTER`).
    pub retry_jitter: f64,
    /// Longest `Retry-After` honoured (`MAX_RETRY_AFTER`).
    pub max_retry_after: Duration,
    /// When circuits open and for how long (`BREAKER_FAILURES`, `BREAKER_COOLDOWN`).
    pub breaker: BreakerPolicy,
    /// Continuous failure after which a channel is disabled (`DISABLE_AFTER`).
    pub disable_after: Duration,
    pub delivery_timeout: Duration,
    pub delivery_concurrency: usize,
    pub channel_queue: usize,
    /// Size limits on what clients send.
    pub limits: Limits,
    pub database_pool_size: u32,
    /// `None`: use the generated token whose hash is in the database (or generate one).
    pub admin_token: Option<String>,
    pub ingest_token: Option<String>,
    /// May read `/metrics` (`METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    /// Where deliveries may go.
    pub targets: TargetPolicy,
    /// What is purged when (`RETENTION`, `FAILED_RETENTION`).
    pub retention: Retention,
    /// How long a stop waits for work in flight (`SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// How log lines are written (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// The Office 365 Management Activity API (`O365_*`); `None`: not used.
    pub o365: Option<O365Settings>,
    /// How channel host names are resolved (the system resolver unless an embedding program or
    /// a test sets its own); every address is still checked against `targets`.
    pub names: Names,
}

/// A setting that could not be used, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{variable} (--{flag}): `{value}` {problem}")]
pub struct SettingError {
    pub variable: &'static str,
    pub flag: &'static str,
    pub value: String,
    pub problem: String,
}

impl Settings {
    /// The defaults, with the database at `database_url` (a SQLite path or a postgres:// URL;
    /// what tests start from). Panics on a URL that does not parse.
    pub fn with_database(database_url: &str) -> Self {
        Self {
            database: Database::parse(database_url).unwrap_or_else(|e| panic!("DATABASE_URL `{database_url}` {e}")),
            instance_id: crate::instance::default_id(),
            bind_addr: "127.0.0.1:8080".into(),
            retry_schedule: RetrySchedule::default(),
            retry_jitter: RetryPolicy::default().jitter,
            max_retry_after: RetryPolicy::default().max_retry_after,
            breaker: BreakerPolicy::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            delivery_timeout: Duration::from_secs(30),
            delivery_concurrency: 16,
            channel_queue: 1024,
            limits: Limits::default(),
            database_pool_size: 8,
            admin_token: None,
            ingest_token: None,
            metrics_token: None,
            targets: TargetPolicy::default(),
            names: Names::default(),
            o365: None,
            shutdown_grace: Duration::from_secs(10),
            log_format: LogFormat::Text,
            retention: Retention::default(),
        }
    }

    pub fn from_cli(cli: Cli) -> Result<Self, SettingError> {
        let fail = |variable: &'static str, flag: &'static str, value: &str, problem: String| SettingError {
            variable,
            flag,
            value: value.to_string(),
            problem,
        };
        let database =
            Database::parse(&cli.database_url).map_err(|p| fail("DATABASE_URL", "database-url", &redacted(&cli.database_url), p))?;
        let instance_id = match cli.instance_id.as_deref().map(str::trim) {
            None | Some("") => crate::instance::default_id(),
            Some(id) if id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()) => id.to_string(),
            Some(id) => return Err(fail("INSTANCE_ID", "instance-id", id, "must be 1 to 128 visible ASCII characters without spaces".into())),
        };
        cli.bind_addr
            .parse::<std::net::SocketAddr>()
            .map_err(|_| fail("BIND_ADDR", "bind-addr", &cli.bind_addr, "is not an address:port such as 127.0.0.1:8080 or 0.0.0.0:8080".into()))?;
        let retry_schedule = RetrySchedule::parse(&cli.retry_schedule).map_err(|p| {
            fail("RETRY_SCHEDULE", "retry-schedule", &cli.retry_schedule, format!("{p}; expected comma-separated durations such as 30s,2m,10m"))
        })?;
        let retry_jitter = cli
            .retry_jitter
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|j| (0.0..=MAX_JITTER).contains(j))
            .ok_or_else(|| fail("RETRY_JITTER", "retry-jitter", &cli.retry_jitter, format!("is not a share between 0 and {MAX_JITTER}, such as 0.1 (±10 %) or 0 (off)")))?;
        let max_retry_after = humantime::parse_duration(cli.max_retry_after.trim())
            .ok()
            .filter(|d| (Duration::from_secs(1)..=MAX_RETRY_AFTER_LIMIT).contains(d))
            .ok_or_else(|| fail("MAX_RETRY_AFTER", "max-retry-after", &cli.max_retry_after, "is not a duration between 1s and 7d, such as 1h".into()))?;
        let breaker_cooldown = humantime::parse_duration(cli.breaker_cooldown.trim())
            .ok()
            .filter(|d| (Duration::from_secs(1)..=MAX_COOLDOWN).contains(d))
            .ok_or_else(|| fail("BREAKER_COOLDOWN", "breaker-cooldown", &cli.breaker_cooldown, "is not a duration between 1s and 10m, such as 60s".into()))?;
        let disable_after = humantime::parse_duration(cli.disable_after.trim())
            .ok()
            .filter(|d| (Duration::from_secs(60)..=Duration::from_secs(90 * 24 * 3600)).contains(d))
            .ok_or_else(|| fail("DISABLE_AFTER", "disable-after", &cli.disable_after, "is not a duration between 1m and 90d, such as 5d".into()))?;
        let delivery_timeout = humantime::parse_duration(cli.delivery_timeout.trim())
            .ok()
            .filter(|d| (Duration::from_millis(1)..=Duration::from_secs(300)).contains(d))
            .ok_or_else(|| fail("DELIVERY_TIMEOUT", "delivery-timeout", &cli.delivery_timeout, "is not a duration between 1ms and 5m, such as 30s".into()))?;
        let count = |variable, flag, value: &str, min: usize, max: usize| {
            value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| fail(variable, flag, value, format!("is not a whole number between {min} and {max}")))
        };
        let token = |variable: &'static str, flag: &'static str, value: &Option<String>| match value {
            Some(t) if t.len() < MIN_TOKEN_LEN || t.chars().any(|c| !c.is_ascii_graphic()) => Err(fail(
                variable,
                flag,
                "****",
                format!("must be at least {MIN_TOKEN_LEN} visible ASCII characters without spaces"),
            )),
            other => Ok(other.clone()),
        };
        let admin_token = token("ADMIN_TOKEN", "admin-token", &cli.admin_token)?;
        let ingest_token = token("INGEST_TOKEN", "ingest-token", &cli.ingest_token)?;
        let metrics_token = token("METRICS_TOKEN", "metrics-token", &cli.metrics_token)?;
        if admin_token.is_some() && admin_token == ingest_token {
            return Err(fail("INGEST_TOKEN", "ingest-token", "****", "must differ from ADMIN_TOKEN".into()));
        }
        let targets = TargetPolicy::parse(&cli.allowed_target_networks)
            .map_err(|p| fail("ALLOWED_TARGET_NETWORKS", "allowed-target-networks", &cli.allowed_target_networks, p))?;
        let o365 = o365(&cli, &fail)?;
        let shutdown_grace = humantime::parse_duration(cli.shutdown_grace.trim())
            .ok()
            .filter(|d| *d <= Duration::from_secs(600))
            .ok_or_else(|| fail("SHUTDOWN_GRACE", "shutdown-grace", &cli.shutdown_grace, "is not a duration between 0s and 10m, such as 10s".into()))?;
        let log_format = match cli.log_format.trim().to_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(fail("LOG_FORMAT", "log-format", &cli.log_format, "is not text or json".into())),
        };
        let kept = |variable: &'static str, flag: &'static str, value: &str| {
            humantime::parse_duration(value.trim())
                .ok()
                .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(3650 * 24 * 3600)).contains(d))
                .ok_or_else(|| fail(variable, flag, value, "is not a duration between 1s and 3650d, such as 30d".into()))
        };
        let retention = Retention { keep: kept("RETENTION", "retention", &cli.retention)?, keep_failed: kept("FAILED_RETENTION", "failed-retention", &cli.failed_retention)? };
        Ok(Self {
            metrics_token,
            retention,
            o365,
            shutdown_grace,
            log_format,
            admin_token,
            ingest_token,
            targets,
            names: Names::default(),
            database,
            instance_id,
            bind_addr: cli.bind_addr.clone(),
            retry_schedule,
            retry_jitter,
            max_retry_after,
            breaker: BreakerPolicy {
                failures: count("BREAKER_FAILURES", "breaker-failures", &cli.breaker_failures, 1, 10_000)? as u32,
                cooldown: breaker_cooldown,
            },
            disable_after,
            delivery_timeout,
            delivery_concurrency: count("DELIVERY_CONCURRENCY", "delivery-concurrency", &cli.delivery_concurrency, 1, 1024)?,
            channel_queue: count("CHANNEL_QUEUE", "channel-queue", &cli.channel_queue, 2, 1_000_000)?,
            limits: Limits {
                max_body_bytes: count("MAX_BODY_BYTES", "max-body-bytes", &cli.max_body_bytes, 1024, 64 * 1024 * 1024)?,
                max_batch_events: count("MAX_BATCH_EVENTS", "max-batch-events", &cli.max_batch_events, 1, 10_000)?,
                max_name: count("MAX_NAME_LENGTH", "max-name-length", &cli.max_name_length, 1, 10_000)?,
                max_url: count("MAX_URL_LENGTH", "max-url-length", &cli.max_url_length, 16, 65_536)?,
                max_headers: count("MAX_CHANNEL_HEADERS", "max-channel-headers", &cli.max_channel_headers, 0, 100)?,
                max_header_value: count("MAX_HEADER_VALUE_LENGTH", "max-header-value-length", &cli.max_header_value_length, 1, 65_536)?,
                max_event_data_bytes: count("MAX_EVENT_DATA_BYTES", "max-event-data-bytes", &cli.max_event_data_bytes, 2, 16 * 1024 * 1024)?,
                max_rule_event_types: count("MAX_RULE_EVENT_TYPES", "max-rule-event-types", &cli.max_rule_event_types, 1, 10_000)?,
                max_rule_channels: count("MAX_RULE_CHANNELS", "max-rule-channels", &cli.max_rule_channels, 1, 10_000)?,
            },
            database_pool_size: count("DATABASE_POOL_SIZE", "database-pool-size", &cli.database_pool_size, 1, 64)? as u32,
        })
    }
}

/// The `O365_*` settings: all or nothing, each checked.
fn o365(cli: &Cli, fail: &impl Fn(&'static str, &'static str, &str, String) -> SettingError) -> Result<Option<O365Settings>, SettingError> {
    let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let Some(client_id) = set(&cli.o365_client_id) else {
        if set(&cli.o365_webhook_auth_id).is_some() || set(&cli.o365_client_secret).is_some() {
            return Err(fail("O365_CLIENT_ID", "o365-client-id", "", "must be set when O365_CLIENT_SECRET or O365_WEBHOOK_AUTH_ID is: the router fetches audit content as that app registration".into()));
        }
        return Ok(None);
    };
    let client_secret = set(&cli.o365_client_secret)
        .ok_or_else(|| fail("O365_CLIENT_SECRET", "o365-client-secret", "", "must be set with O365_CLIENT_ID (the app registration's client secret)".into()))?;
    let url = |variable: &'static str, flag: &'static str, value: &str| -> Result<String, SettingError> {
        let value = value.trim().trim_end_matches('/');
        match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => Ok(value.to_string()),
            _ => Err(fail(variable, flag, value, "is not an http(s) address without a query".into())),
        }
    };
    let authority = url("O365_AUTHORITY", "o365-authority", &cli.o365_authority)?;
    let api_root = url("O365_API_ROOT", "o365-api-root", &cli.o365_api_root)?;
    let poll_interval = humantime::parse_duration(cli.o365_poll_interval.trim())
        .ok()
        .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(d))
        .ok_or_else(|| fail("O365_POLL_INTERVAL", "o365-poll-interval", &cli.o365_poll_interval, "is not a duration between 1s and 24h, such as 15m".into()))?;
    let webhook_auth_id = match set(&cli.o365_webhook_auth_id) {
        Some(id) if id.len() < MIN_TOKEN_LEN || id.len() > 512 || id.chars().any(|c| !c.is_ascii_graphic()) => {
            return Err(fail("O365_WEBHOOK_AUTH_ID", "o365-webhook-auth-id", "****", format!("must be {MIN_TOKEN_LEN} to 512 visible ASCII characters without spaces")))
        }
        other => other,
    };
    Ok(Some(O365Settings { client_id, client_secret, authority, api_root, poll_interval, webhook_auth_id }))
}

/// A database URL as it may be shown: any password replaced by `****` (even in a URL that does
/// not parse).
fn redacted(url: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, SettingError> {
        let mut argv = vec!["spscan-router"];
        argv.extend_from_slice(args);
        Settings::from_cli(Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.database, Database::Sqlite("spscan-router.db".into()));
        assert_eq!(settings.bind_addr, "127.0.0.1:8080");
        assert_eq!(settings.retry_schedule, RetrySchedule::default());
        assert_eq!(settings.delivery_timeout, Duration::from_secs(30));
        assert_eq!(settings.retry_jitter, 0.1);
        assert_eq!(settings.max_retry_after, Duration::from_secs(3600));
        assert_eq!(settings.breaker, BreakerPolicy { failures: 10, cooldown: Duration::from_secs(60) });
        assert_eq!(settings.disable_after, Duration::from_secs(5 * 24 * 3600));
        assert_eq!(settings.limits, Limits::default(), "the flags' defaults are the documented limits");
    }

    #[test]
    fn shutdown_grace_and_log_format() {
        let settings = parse(&[]).unwrap();
        assert_eq!((settings.shutdown_grace, settings.log_format), (Duration::from_secs(10), LogFormat::Text));
        assert_eq!(parse(&["--shutdown-grace", "0s", "--log-format", "JSON"]).unwrap().log_format, LogFormat::Json);
        assert_eq!(parse(&["--shutdown-grace", "11m"]).unwrap_err().variable, "SHUTDOWN_GRACE");
        assert_eq!(parse(&["--log-format", "xml"]).unwrap_err().variable, "LOG_FORMAT");
        assert_eq!(settings.retention, Retention { keep: Duration::from_secs(30 * 86400), keep_failed: Duration::from_secs(90 * 86400) });
        assert_eq!(parse(&["--retention", "0s"]).unwrap_err().variable, "RETENTION");
        assert_eq!(parse(&["--failed-retention", "soon"]).unwrap_err().variable, "FAILED_RETENTION");
        assert_eq!(parse(&["--retention", "5s"]).unwrap().retention.every(), Duration::from_millis(2500));
    }

    #[test]
    fn office_365_settings_come_together_or_not_at_all() {
        assert!(parse(&[]).unwrap().o365.is_none());
        let id = ["--o365-client-id", "c1d2", "--o365-client-secret", "s3cr3t"];
        let o365 = parse(&id).unwrap().o365.unwrap();
        assert_eq!((o365.api_root.as_str(), o365.authority.as_str()), ("https://manage.office.com/api/v1.0", "https://login.microsoftonline.com"));
        assert_eq!((o365.poll_interval, o365.webhook_auth_id.clone()), (Duration::from_secs(900), None));
        assert_eq!(o365.token_url("t1"), "https://login.microsoftonline.com/t1/oauth2/v2.0/token");
        assert!(!format!("{o365:?}").contains("s3cr3t"));
        assert_eq!(parse(&["--o365-client-id", "c1d2"]).unwrap_err().variable, "O365_CLIENT_SECRET");
        assert_eq!(parse(&["--o365-webhook-auth-id", "0123456789abcdef"]).unwrap_err().variable, "O365_CLIENT_ID");
        let with = |extra: &[&'static str]| parse(&[&id[..], extra].concat());
        assert_eq!(with(&["--o365-webhook-auth-id", "short"]).unwrap_err().variable, "O365_WEBHOOK_AUTH_ID");
        assert_eq!(with(&["--o365-webhook-auth-id", "0123456789abcdef"]).unwrap().o365.unwrap().webhook_auth_id.as_deref(), Some("0123456789abcdef"));
        assert_eq!(with(&["--o365-poll-interval", "0s"]).unwrap_err().variable, "O365_POLL_INTERVAL");
        assert_eq!(with(&["--o365-api-root", "manage.office.com"]).unwrap_err().variable, "O365_API_ROOT");
        assert_eq!(with(&["--o365-authority", "ftp://login"]).unwrap_err().variable, "O365_AUTHORITY");
        assert_eq!(with(&["--o365-api-root", "http://127.0.0.1:9/api/v1.0/"]).unwrap().o365.unwrap().api_root, "http://127.0.0.1:9/api/v1.0");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = parse(&["--retry-schedule", "30s,soon"]).unwrap_err();
        assert_eq!(err.variable, "RETRY_SCHEDULE");
        assert!(err.to_string().contains("30s,2m,10m"), "{err}");
        assert_eq!(parse(&["--bind-addr", "localhost"]).unwrap_err().variable, "BIND_ADDR");
        assert_eq!(parse(&["--database-url", "postgres://x/y"]).unwrap().database, Database::Postgres("postgres://x/y".into()));
        assert_eq!(parse(&["--database-url", "postgres:///y"]).unwrap_err().variable, "DATABASE_URL");
        let err = parse(&["--database-url", "postgres://u:hunter2@/y"]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(parse(&["--instance-id", "has space"]).unwrap_err().variable, "INSTANCE_ID");
        assert_eq!(parse(&["--delivery-timeout", "0s"]).unwrap_err().variable, "DELIVERY_TIMEOUT");
        assert_eq!(parse(&["--retry-jitter", "0"]).unwrap().retry_jitter, 0.0);
        for bad in ["-0.1", "0.6", "ten", "NaN"] {
            assert_eq!(parse(&[&format!("--retry-jitter={bad}")]).unwrap_err().variable, "RETRY_JITTER", "{bad}");
        }
        assert_eq!(parse(&["--max-retry-after", "10m"]).unwrap().max_retry_after, Duration::from_secs(600));
        assert_eq!(parse(&["--breaker-failures", "0"]).unwrap_err().variable, "BREAKER_FAILURES");
        assert_eq!(parse(&["--disable-after", "30s"]).unwrap_err().variable, "DISABLE_AFTER");
        assert_eq!(parse(&["--disable-after", "12h"]).unwrap().disable_after, Duration::from_secs(12 * 3600));
        assert_eq!(parse(&["--breaker-cooldown", "11m"]).unwrap_err().variable, "BREAKER_COOLDOWN");
        assert_eq!(parse(&["--breaker-cooldown", "2m"]).unwrap().breaker.cooldown, Duration::from_secs(120));
        for bad in ["0s", "8d", "later"] {
            assert_eq!(parse(&["--max-retry-after", bad]).unwrap_err().variable, "MAX_RETRY_AFTER", "{bad}");
        }
        assert_eq!(parse(&["--database-url", "sqlite:///tmp/x.db"]).unwrap().database, Database::Sqlite("/tmp/x.db".into()));
        assert_eq!(parse(&["--allowed-target-networks", "10.0.0.0/33"]).unwrap_err().variable, "ALLOWED_TARGET_NETWORKS");
    }

    #[test]
    fn a_short_token_is_refused_without_showing_it() {
        let err = parse(&["--admin-token", "short-secret"]).unwrap_err();
        assert_eq!(err.variable, "ADMIN_TOKEN");
        assert!(!err.to_string().contains("short-secret"), "{err}");
        let err = parse(&["--admin-token", "same-token-0123456789", "--ingest-token", "same-token-0123456789"]).unwrap_err();
        assert_eq!(err.variable, "INGEST_TOKEN");
    }
}
