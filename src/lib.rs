//! SPScan Alert Router: takes Microsoft 365 change events (from SPScan, or Office 365 audit
//! records), matches them against alert rules and delivers them to each rule's channels
//! (webhooks, Slack, Teams, Splunk, Sentinel), durably and with retries.
//!
//! This file only lists the modules; `startup` is where they are wired together.

pub mod actors;
pub mod dispatch;
pub mod channels;
pub mod cli;
pub mod domain;
pub mod error;
pub mod handle;
pub mod http_guard;
pub mod instance;
pub mod listener;
pub mod metrics;
pub mod outbound;
pub mod retention;
pub mod routes;
pub mod settings;
pub mod sources;
pub mod startup;
pub mod store;
pub mod tokens;
