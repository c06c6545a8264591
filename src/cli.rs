//! The `spscan-router` command: parse settings from the environment and flags, start logging,
//! run the router until stopped. Kept in the library so the benchmark can run the very same
//! router as a child process of itself (`loadtest` needs no second binary to be built).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::settings::{Cli, Settings};
use crate::startup::Application;

/// Runs the router with these command-line arguments (the first is the program name).
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            // One line, as for a bad value: clap's first line says what is wrong.
            let text = err.to_string();
            let line = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            eprintln!("spscan-router: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::from_cli(cli) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("spscan-router: {err}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone()).await?;
        let mut addr: std::net::SocketAddr = settings.bind_addr.parse()?;
        addr.set_port(app.port());
        log::info!(
            "SPScan Alert Router {} listening on http://{addr} (database {}, instance {})",
            env!("CARGO_PKG_VERSION"),
            settings.database.describe(),
            settings.instance_id
        );
        app.run_until_stopped().await?;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("spscan-router: {err:#}");
            ExitCode::FAILURE
        }
    }
}
