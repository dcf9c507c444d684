//! What the end-to-end tests share: the authbench binary, the server binaries next to it,
//! and a lock that keeps tests which start server processes apart.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

/// These tests start and count server processes (one kills one); running them at the
/// same time would make them see each other's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn authbench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_authbench"))
}

/// The server binaries live next to authbench. `cargo test --workspace` builds them; a
/// lone `cargo test -p harness` may not have, so build them once here.
pub fn ensure_servers() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = authbench().parent().unwrap().to_path_buf();
        if !dir.join("session-server").is_file() || !dir.join("jwt-server").is_file() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "session-server", "-p", "jwt-server", "--bins"])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the servers failed");
        }
        dir
    })
}

pub fn run(args: &[&str]) -> Output {
    ensure_servers();
    Command::new(authbench()).args(args).stdin(Stdio::null()).output().expect("run authbench")
}
