//! The `livecount` binary: parses arguments and runs one command; any error is one line on
//! stderr and exit status 1 (2 for bad arguments, from clap).

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = livecount_cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIVECOUNT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match livecount_cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("livecount: {}", error.line());
            ExitCode::FAILURE
        }
    }
}
