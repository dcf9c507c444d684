use clap::Parser as _;
use session_server::config::{Cli, Command, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::HashPassword) => auth_core::server::hash_password_command(),
        None => run(cli.args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
