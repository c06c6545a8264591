//! The `spscan-router` command: parse settings from the environment and flags, start logging,
//! run the router until stopped. Kept in the library so the benchmark can run the very same
//! router as a child process of itself (`loadtest` needs no second binary to be built).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use std::io::Write;

use crate::settings::{Cli, LogFormat, Settings};
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
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if settings.log_format == LogFormat::Json {
        logger.format(|out, record| {
            let line = serde_json::json!({
                "ts": crate::domain::time::rfc3339(crate::domain::time::now_ms()),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(out, "{line}")
        });
    }
    logger.init();
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
        app.run_until(stop_signal(), settings.shutdown_grace).await?;
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

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C), saying which.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        log::error!("cannot listen for SIGTERM and SIGINT; stop the router with SIGKILL (nothing acknowledged is lost)");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    log::info!("{name} received");
}
