//! The command line: every knob as a flag that also reads the environment variable named beside
//! it, with its default (what `--help` lists). Values stay text here: [`super::Settings::from_cli`]
//! checks each one, so a bad value is reported with its variable's name and what it accepts.
//! `--help` lists them under headings (Server, Database, Security, Delivery, Limits, Retention,
//! Office 365, Logging), in that order.

use clap::Parser;

/// The command line; every flag also reads the environment variable named beside it.
#[derive(Debug, Parser)]
#[command(
    name = "spscan-router",
    version,
    about = "SPScan Alert Router: routes Microsoft 365 change events to webhooks, Slack, Teams, Splunk, Sentinel, PagerDuty and email.",
    after_help = "Every option also reads the environment variable named beside it (the option wins).\n\
                  RUST_LOG sets the log level (env_logger syntax; default info).\n\
                  The admin page is served at the root of BIND_ADDR: http://127.0.0.1:8080/ by default."
)]
pub struct Cli {
    /// Address and port the API and admin page listen on.
    #[arg(help_heading = "Server", long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: String,
    /// This instance's id among those sharing a PostgreSQL database (default: host name and process id).
    #[arg(help_heading = "Server", long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How long a stop (SIGTERM, SIGINT) waits for requests and attempts in flight to finish and be recorded (0s to 10m).
    #[arg(help_heading = "Server", long, env = "SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: String,

    /// Where the database is: a SQLite file path (or sqlite://path), or postgres://user@host:port/db
    /// for PostgreSQL (several instances may share one).
    #[arg(help_heading = "Database", long, env = "DATABASE_URL", default_value = "spscan-router.db", hide_env_values = true)]
    pub database_url: String,
    /// Database connections in the pool.
    #[arg(help_heading = "Database", long, env = "DATABASE_POOL_SIZE", default_value = "8")]
    pub database_pool_size: String,

    /// Bearer token that may do everything (at least 16 characters). Unset: generated on the first start and printed once.
    #[arg(help_heading = "Security", long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token that may only POST /api/v1/events. Unset: generated on the first start and printed once.
    #[arg(help_heading = "Security", long, env = "INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
    /// Bearer token that may only read GET /metrics (at least 16 characters); the admin token may too.
    #[arg(help_heading = "Security", long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Networks deliveries may reach despite the built-in refusals (loopback, private, link-local, …): comma-separated CIDRs.
    #[arg(help_heading = "Security", long, env = "ALLOWED_TARGET_NETWORKS", default_value = "")]
    pub allowed_target_networks: String,

    /// Delays before each retry of a failed delivery, comma-separated (units ms, s, m, h).
    #[arg(help_heading = "Delivery", long, env = "RETRY_SCHEDULE", default_value = "30s,2m,10m")]
    pub retry_schedule: String,
    /// How much each retry delay varies either way, as a share (0.1 is ±10 %; 0 turns it off; at most 0.5).
    #[arg(help_heading = "Delivery", long, env = "RETRY_JITTER", default_value = "0.1")]
    pub retry_jitter: String,
    /// Longest wait a receiver's Retry-After (on 429 or 503) is honoured for (units s, m, h, d; at most 7d).
    #[arg(help_heading = "Delivery", long, env = "MAX_RETRY_AFTER", default_value = "1h")]
    pub max_retry_after: String,
    /// Longest one delivery attempt may take, connect to last byte.
    #[arg(help_heading = "Delivery", long, env = "DELIVERY_TIMEOUT", default_value = "30s")]
    pub delivery_timeout: String,
    /// How long after a ticket create of unknown outcome (timeout, 5xx, crash) the next attempt waits before searching the ticketing system for its marker (units s, m, h; 1s to 1h).
    #[arg(help_heading = "Delivery", long, env = "CREATE_SETTLE", default_value = "2m")]
    pub create_settle: String,
    /// Most requests open at once to one channel.
    #[arg(help_heading = "Delivery", long, env = "DELIVERY_CONCURRENCY", default_value = "16")]
    pub delivery_concurrency: String,
    /// Most deliveries one channel holds in memory (the rest wait in the database), and most finished attempts it holds unwritten before it starts no request.
    #[arg(help_heading = "Delivery", long, env = "CHANNEL_QUEUE", default_value = "1024")]
    pub channel_queue: String,
    /// Consecutive failed attempts that open a channel's circuit (nothing is sent until a probe succeeds).
    #[arg(help_heading = "Delivery", long, env = "BREAKER_FAILURES", default_value = "10")]
    pub breaker_failures: String,
    /// How long an open circuit waits before its probe (doubling after each failed probe, up to 10m).
    #[arg(help_heading = "Delivery", long, env = "BREAKER_COOLDOWN", default_value = "60s")]
    pub breaker_cooldown: String,
    /// A channel failing without a success for this long is disabled (its deliveries wait; 1m to 90d).
    #[arg(help_heading = "Delivery", long, env = "DISABLE_AFTER", default_value = "5d")]
    pub disable_after: String,

    /// Largest request body accepted, in bytes.
    #[arg(help_heading = "Limits", long, env = "MAX_BODY_BYTES", default_value = "1048576")]
    pub max_body_bytes: String,
    /// Most events in one batch ingestion request.
    #[arg(help_heading = "Limits", long, env = "MAX_BATCH_EVENTS", default_value = "1000")]
    pub max_batch_events: String,
    /// Largest `data` object of one event, serialised, in bytes.
    #[arg(help_heading = "Limits", long, env = "MAX_EVENT_DATA_BYTES", default_value = "65536")]
    pub max_event_data_bytes: String,
    /// Longest name of a channel or rule, or display name of a tenant, in characters.
    #[arg(help_heading = "Limits", long, env = "MAX_NAME_LENGTH", default_value = "200")]
    pub max_name_length: String,
    /// Longest channel URL, in characters.
    #[arg(help_heading = "Limits", long, env = "MAX_URL_LENGTH", default_value = "2048")]
    pub max_url_length: String,
    /// Most custom request headers on one channel.
    #[arg(help_heading = "Limits", long, env = "MAX_CHANNEL_HEADERS", default_value = "20")]
    pub max_channel_headers: String,
    /// Longest custom header value, in bytes.
    #[arg(help_heading = "Limits", long, env = "MAX_HEADER_VALUE_LENGTH", default_value = "2048")]
    pub max_header_value_length: String,
    /// Most event type patterns on one rule.
    #[arg(help_heading = "Limits", long, env = "MAX_RULE_EVENT_TYPES", default_value = "50")]
    pub max_rule_event_types: String,
    /// Most target channels on one rule.
    #[arg(help_heading = "Limits", long, env = "MAX_RULE_CHANNELS", default_value = "100")]
    pub max_rule_channels: String,

    /// How long succeeded and cancelled deliveries (with their attempts) and unused events are kept (1s to 10 years).
    #[arg(help_heading = "Retention", long, env = "RETENTION", default_value = "30d")]
    pub retention: String,
    /// How long failed deliveries are kept (1s to 10 years).
    #[arg(help_heading = "Retention", long, env = "FAILED_RETENTION", default_value = "90d")]
    pub failed_retention: String,

    /// Office 365: the app registration's client id; set, the router fetches audit content of every tenant with a microsoft_tenant_id.
    #[arg(help_heading = "Office 365", long, env = "O365_CLIENT_ID")]
    pub o365_client_id: Option<String>,
    /// Office 365: the app registration's client secret (required with O365_CLIENT_ID).
    #[arg(help_heading = "Office 365", long, env = "O365_CLIENT_SECRET", hide_env_values = true)]
    pub o365_client_secret: Option<String>,
    /// Office 365: the authId given to subscriptions/start; notifications must carry it in Webhook-AuthID (at least 16 characters).
    #[arg(help_heading = "Office 365", long, env = "O365_WEBHOOK_AUTH_ID", hide_env_values = true)]
    pub o365_webhook_auth_id: Option<String>,
    /// Office 365: how often every tenant's available content is listed, to fetch what no notification announced (1s to 24h).
    #[arg(help_heading = "Office 365", long, env = "O365_POLL_INTERVAL", default_value = "15m")]
    pub o365_poll_interval: String,
    /// Office 365: where tokens come from ({authority}/{tenant}/oauth2/v2.0/token).
    #[arg(help_heading = "Office 365", long, env = "O365_AUTHORITY", default_value = "https://login.microsoftonline.com")]
    pub o365_authority: String,
    /// Office 365: the Management Activity API's root.
    #[arg(help_heading = "Office 365", long, env = "O365_API_ROOT", default_value = "https://manage.office.com/api/v1.0")]
    pub o365_api_root: String,

    /// How log lines are written: text, or json (one JSON object per line).
    #[arg(help_heading = "Logging", long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}
