//! `authbench-goose`: user journeys against the authbench servers (see the `journeys`
//! crate). Exit status 0 only when every checked response was right.

use std::process::ExitCode;

use clap::Parser as _;
use journeys::{cli::Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let interrupts = match run::interrupts() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("authbench-goose: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match run::run(cli, interrupts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authbench-goose: {e:#}");
            ExitCode::FAILURE
        }
    }
}
