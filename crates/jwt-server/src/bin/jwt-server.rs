use clap::Parser as _;
use jwt_server::config::{Cli, Command, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Keygen { alg, key_dir, force }) => jwt_server::keys::keygen(alg, &key_dir, force)
            .map(|path| println!("wrote {alg} key to {}", path.display()))
            .map_err(anyhow::Error::from),
        Some(Command::HashPassword) => auth_core::server::hash_password_command(),
        None => run(cli.args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwt-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
