//! `spscan-router`: the router's command (see `cli`).

/// mimalloc for every allocation of the process, SQLite's included (`override`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    spscan_router::cli::run(std::env::args_os())
}
