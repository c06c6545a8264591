//! `spscan-router`: the router's command (see `cli`).

fn main() -> std::process::ExitCode {
    spscan_router::cli::run(std::env::args_os())
}
