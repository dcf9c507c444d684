//! What the end-to-end tests share: the authbench binary, the server binaries next to it,
//! and a lock that keeps tests which start server processes apart.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
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

/// The server binaries live next to authbench (built once if a lone `cargo test -p
/// harness` has not built them).
pub fn ensure_servers() -> &'static Path {
    test_support::server_binaries(authbench().parent().unwrap())
}

pub fn run(args: &[&str]) -> Output {
    ensure_servers();
    Command::new(authbench()).args(args).stdin(Stdio::null()).output().expect("run authbench")
}

/// Can this process create a CPU cgroup? (What `capped` must say.)
pub fn cgroups_writable() -> bool {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
    let dir = if v2.exists() {
        PathBuf::from("/sys/fs/cgroup/authbench-probe-test")
    } else {
        PathBuf::from("/sys/fs/cgroup/cpu/authbench-probe-test")
    };
    let ok = std::fs::create_dir(&dir).is_ok();
    let _ = std::fs::remove_dir(&dir);
    ok
}
