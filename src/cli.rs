//! The `spscan-router` command: parse settings from the environment and flags, start logging,
//! run the router until stopped. Kept in the library so the benchmark can run the very same
//! router as a child process of itself (`loadtest` needs no second binary to be built).
//!
//! How the process ends is decided here, in this order: the router stops
//! (`Application::run_until`), the main thread's actix system is dropped inside its runtime, the
//! runtime is shut down, and only then does the process exit, so nothing of the system is left
//! for the thread-local destructors the exit runs (see `end`).

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::rt::SystemRunner;

use clap::Parser;

use std::io::Write;

use anyhow::Context;

use crate::settings::{Cli, LogFormat, Settings};
use crate::startup::Application;

/// Runs the router with these command-line arguments (the first is the program name).
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    crate::store::sqlite::configure_process();
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
    // The runtime is kept apart from the system so that `end` can drop the system inside it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => Arc::new(runtime),
        Err(err) => {
            eprintln!("spscan-router: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let system = actix_web::rt::System::with_tokio_rt({
        let runtime = Arc::clone(&runtime);
        move || runtime
    });
    let result = system.block_on(serve(settings));
    end(system, runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("spscan-router: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the router and serves until a stop signal, then stops gracefully.
async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Listening before anything else: a stop during the start (migrations, waiting for the
    // database) is a graceful stop as soon as the router is up, not a kill.
    let stop = stop_signal()?;
    let app = Application::build(settings.clone()).await?;
    let mut addr: std::net::SocketAddr = settings.bind_addr.parse()?;
    addr.set_port(app.port());
    log::info!(
        "SPScan Alert Router {} listening on http://{addr} (database {}, instance {})",
        env!("CARGO_PKG_VERSION"),
        settings.database.describe(),
        settings.instance_id
    );
    // The start line, on standard output beside any token just printed: where to go, and with what.
    println!("Admin page: {} (sign in with {})", admin_page(addr), app.admin_token().in_words());
    app.run_until(stop, settings.shutdown_grace).await?;
    Ok(())
}

/// The admin page's address as a browser on this machine reaches it: an unspecified bind address
/// (`0.0.0.0`, `::`) is reached through loopback.
fn admin_page(mut addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/")
}

/// Ends the main thread's actix system before the process exits. The exit destroys the main
/// thread's thread-locals, among them its handle on the actix `System`, while the HTTP workers'
/// threads may still be ending: each drops its own handle from a thread-local destructor, after
/// its tokio thread-locals are gone, and the last handle dropped wakes the system's controller
/// task. Were that task still alive in the main thread's `LocalSet`, the wake would read the
/// worker's destroyed `LocalSet` thread-local and panic (`AccessError`: "thread local panicked
/// on drop"). So the system goes first, here: dropping it drops every task of the main thread
/// (the actors, their HTTP clients and connection pools, their timers, the database handles), and
/// a later wake finds a finished task and does nothing.
fn end(system: SystemRunner, runtime: Arc<tokio::runtime::Runtime>) {
    {
        // Inside the runtime: what is dropped may still use it (a connection closing arms a timer).
        let _inside = runtime.enter();
        drop(system);
    }
    // The system held the only other reference. A blocking database call left over does not hold
    // the exit past the grace: the runtime is shut down without waiting for it.
    if let Ok(runtime) = Arc::try_unwrap(runtime) {
        runtime.shutdown_background();
    }
}

/// Listens for SIGTERM and SIGINT (Ctrl-C) from now on; the future resolves at the first,
/// saying which.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log::info!("{name} received");
    })
}
