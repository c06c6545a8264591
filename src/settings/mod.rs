//! Every knob, typed, from environment variables and the matching command-line flags (a flag
//! wins over its variable). `--help` lists each with its default. A bad value stops the start
//! with one line naming the variable and what it accepts.
//!
//! The flags and their defaults are in `flags.rs` ([`Cli`]), how one value's text is checked in
//! `parse.rs`, the Office 365 settings in `o365.rs`; this file turns the whole command line into
//! [`Settings`], in the order the errors are reported.

mod flags;
mod o365;
mod parse;

use std::time::Duration;

use crate::domain::breaker::{BreakerPolicy, MAX_COOLDOWN};
use crate::domain::limits::Limits;
use crate::domain::network::TargetPolicy;
use crate::domain::retry::{RetryPolicy, RetrySchedule, MAX_JITTER, MAX_RETRY_AFTER_LIMIT};
use crate::outbound::Names;
use crate::retention::Retention;
use crate::store::Database;

pub use flags::Cli;
pub use o365::O365Settings;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `env_logger`'s lines, for people.
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `message`), for log shippers.
    Json,
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
    /// How long a ticketing system's search may lag behind a create (`CREATE_SETTLE`).
    pub create_settle: Duration,
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

impl SettingError {
    /// `value` as it may be shown: a secret is given as `****`.
    fn new(variable: &'static str, flag: &'static str, value: &str, problem: impl Into<String>) -> Self {
        Self { variable, flag, value: value.to_string(), problem: problem.into() }
    }
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
            create_settle: crate::outbound::DEFAULT_CREATE_SETTLE,
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

    /// The settings the command line (and the environment under it) gives, each value checked;
    /// the first bad one is the error.
    pub fn from_cli(cli: Cli) -> Result<Self, SettingError> {
        let database = Database::parse(&cli.database_url)
            .map_err(|p| SettingError::new("DATABASE_URL", "database-url", &parse::redacted(&cli.database_url), p))?;
        let instance_id = match cli.instance_id.as_deref().map(str::trim) {
            None | Some("") => crate::instance::default_id(),
            Some(id) if id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()) => id.to_string(),
            Some(id) => return Err(SettingError::new("INSTANCE_ID", "instance-id", id, "must be 1 to 128 visible ASCII characters without spaces")),
        };
        cli.bind_addr
            .parse::<std::net::SocketAddr>()
            .map_err(|_| SettingError::new("BIND_ADDR", "bind-addr", &cli.bind_addr, "is not an address:port such as 127.0.0.1:8080 or 0.0.0.0:8080"))?;
        let retry_schedule = RetrySchedule::parse(&cli.retry_schedule).map_err(|p| {
            SettingError::new("RETRY_SCHEDULE", "retry-schedule", &cli.retry_schedule, format!("{p}; expected comma-separated durations such as 30s,2m,10m"))
        })?;
        let retry_jitter = cli
            .retry_jitter
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|j| (0.0..=MAX_JITTER).contains(j))
            .ok_or_else(|| {
                let problem = format!("is not a share between 0 and {MAX_JITTER}, such as 0.1 (±10 %) or 0 (off)");
                SettingError::new("RETRY_JITTER", "retry-jitter", &cli.retry_jitter, problem)
            })?;
        let max_retry_after = parse::duration(
            "MAX_RETRY_AFTER", "max-retry-after", &cli.max_retry_after,
            Duration::from_secs(1)..=MAX_RETRY_AFTER_LIMIT,
            "is not a duration between 1s and 7d, such as 1h",
        )?;
        let breaker_cooldown = parse::duration(
            "BREAKER_COOLDOWN", "breaker-cooldown", &cli.breaker_cooldown,
            Duration::from_secs(1)..=MAX_COOLDOWN,
            "is not a duration between 1s and 10m, such as 60s",
        )?;
        let disable_after = parse::duration(
            "DISABLE_AFTER", "disable-after", &cli.disable_after,
            Duration::from_secs(60)..=Duration::from_secs(90 * 24 * 3600),
            "is not a duration between 1m and 90d, such as 5d",
        )?;
        let delivery_timeout = parse::duration(
            "DELIVERY_TIMEOUT", "delivery-timeout", &cli.delivery_timeout,
            Duration::from_millis(1)..=Duration::from_secs(300),
            "is not a duration between 1ms and 5m, such as 30s",
        )?;
        let create_settle = parse::duration(
            "CREATE_SETTLE", "create-settle", &cli.create_settle,
            Duration::from_secs(1)..=Duration::from_secs(3600),
            "is not a duration between 1s and 1h, such as 2m",
        )?;
        let admin_token = parse::token("ADMIN_TOKEN", "admin-token", &cli.admin_token)?;
        let ingest_token = parse::token("INGEST_TOKEN", "ingest-token", &cli.ingest_token)?;
        let metrics_token = parse::token("METRICS_TOKEN", "metrics-token", &cli.metrics_token)?;
        if admin_token.is_some() && admin_token == ingest_token {
            return Err(SettingError::new("INGEST_TOKEN", "ingest-token", "****", "must differ from ADMIN_TOKEN"));
        }
        let targets = TargetPolicy::parse(&cli.allowed_target_networks)
            .map_err(|p| SettingError::new("ALLOWED_TARGET_NETWORKS", "allowed-target-networks", &cli.allowed_target_networks, p))?;
        let o365 = O365Settings::from_cli(&cli)?;
        let shutdown_grace = parse::duration(
            "SHUTDOWN_GRACE", "shutdown-grace", &cli.shutdown_grace,
            Duration::ZERO..=Duration::from_secs(600),
            "is not a duration between 0s and 10m, such as 10s",
        )?;
        let log_format = match cli.log_format.trim().to_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(SettingError::new("LOG_FORMAT", "log-format", &cli.log_format, "is not text or json")),
        };
        let kept = |variable, flag, value: &str| {
            let within = Duration::from_secs(1)..=Duration::from_secs(3650 * 24 * 3600);
            parse::duration(variable, flag, value, within, "is not a duration between 1s and 3650d, such as 30d")
        };
        let retention = Retention {
            keep: kept("RETENTION", "retention", &cli.retention)?,
            keep_failed: kept("FAILED_RETENTION", "failed-retention", &cli.failed_retention)?,
        };
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
                failures: parse::count("BREAKER_FAILURES", "breaker-failures", &cli.breaker_failures, 1, 10_000)? as u32,
                cooldown: breaker_cooldown,
            },
            disable_after,
            delivery_timeout,
            create_settle,
            delivery_concurrency: parse::count("DELIVERY_CONCURRENCY", "delivery-concurrency", &cli.delivery_concurrency, 1, 1024)?,
            channel_queue: parse::count("CHANNEL_QUEUE", "channel-queue", &cli.channel_queue, 2, 1_000_000)?,
            limits: Limits {
                max_body_bytes: parse::count("MAX_BODY_BYTES", "max-body-bytes", &cli.max_body_bytes, 1024, 64 * 1024 * 1024)?,
                max_batch_events: parse::count("MAX_BATCH_EVENTS", "max-batch-events", &cli.max_batch_events, 1, 10_000)?,
                max_name: parse::count("MAX_NAME_LENGTH", "max-name-length", &cli.max_name_length, 1, 10_000)?,
                max_url: parse::count("MAX_URL_LENGTH", "max-url-length", &cli.max_url_length, 16, 65_536)?,
                max_headers: parse::count("MAX_CHANNEL_HEADERS", "max-channel-headers", &cli.max_channel_headers, 0, 100)?,
                max_header_value: parse::count("MAX_HEADER_VALUE_LENGTH", "max-header-value-length", &cli.max_header_value_length, 1, 65_536)?,
                max_event_data_bytes: parse::count("MAX_EVENT_DATA_BYTES", "max-event-data-bytes", &cli.max_event_data_bytes, 2, 16 * 1024 * 1024)?,
                max_rule_event_types: parse::count("MAX_RULE_EVENT_TYPES", "max-rule-event-types", &cli.max_rule_event_types, 1, 10_000)?,
                max_rule_channels: parse::count("MAX_RULE_CHANNELS", "max-rule-channels", &cli.max_rule_channels, 1, 10_000)?,
            },
            database_pool_size: parse::count("DATABASE_POOL_SIZE", "database-pool-size", &cli.database_pool_size, 1, 64)? as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

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
