//! `meridian`: start and initialize nodes, create certificates, inspect a
//! cluster, read and write keys, benchmark, a SQL shell, and a demo
//! cluster in one process.
//!
//! Every command that talks to a cluster takes `--host` (a node's QUIC
//! address) and `--certs-dir` (a directory with `ca.crt` and a node
//! certificate signed by that CA, as `meridian cert` writes them).

mod bench;
mod bench_bank;
mod bench_chaos;
mod bench_regions;
mod commands;
mod demo;
mod drill;
mod sql_shell;
mod start_config;
mod zone;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    if !cli.logs_itself() {
        init_logging(&cli);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // Printed already, in the form the command chose.
        Err(e) if e.is::<sql_shell::Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cli: &commands::Cli) {
    let default = if cli.is_server() {
        "info,openraft=warn"
    } else {
        "warn,openraft=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MERIDIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
