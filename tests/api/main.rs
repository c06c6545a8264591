//! The router's integration tests: one binary, real HTTP receivers on 127.0.0.1, real SQLite
//! files in temp dirs and real PostgreSQL databases. Every router test runs on both backends:
//! as named (SQLite) and again under `…::postgres::` (see `helpers::Backend`).

/// Runs each test twice: on SQLite (as named) and on PostgreSQL (in a `postgres` module).
macro_rules! on_both_backends {
    ($($(#[$meta:meta])* async fn $name:ident() $body:block)*) => {
        $( $(#[$meta])* async fn $name() { $crate::helpers::Backend::Sqlite.run(async move $body).await } )*
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* async fn $name() { $crate::helpers::Backend::Postgres.run(async move $body).await } )*
        }
    };
}

mod bad_input;
mod autotask;
mod binary;
mod browser;
mod browser_first_run;
mod browser_logs;
mod browser_noise;
mod browser_overview;
mod browser_screens;
mod channel_preview;
pub mod channel_types;
mod crud;
mod delivery;
mod email;
mod health;
mod helpers;
mod instances;
mod interleavings;
mod connectwise;
pub mod jira;
mod servicenow;
mod lifecycle;
mod logs_search;
mod matching;
mod metrics;
mod noise;
mod notifications;
mod noise_views;
mod openapi;
mod overview;
pub mod o365;
pub mod o365_feed;
mod outage;
mod preview;
mod retention;
mod retries;
mod pagerduty;
mod security;
pub mod siem;
mod silences;
mod smtp_server;
mod startup;
mod throwaway_type;
mod ticket_systems;
mod ticketing;
