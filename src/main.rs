//! `spscan-router`: parse settings, start logging, run the router until stopped.

use std::process::ExitCode;

use clap::Parser;
use spscan_router::settings::{Cli, Settings};
use spscan_router::startup::Application;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
            "SPScan Alert Router {} listening on http://{addr} (database {})",
            env!("CARGO_PKG_VERSION"),
            settings.database_path
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
