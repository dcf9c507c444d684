//! The `jwt-server` binary itself: `keygen`, the ready line, SIGTERM, and the errors a
//! wrong command line gets (docs/http-api.md, flags).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    process::{Command, Output, Stdio},
    time::Duration,
};

use common::*;
use jwt_server::keys::Alg;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_jwt-server");

/// The binary with none of the caller's `AUTHBENCH_*` variables, so only what a test says
/// counts.
fn jwt_server() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AUTHBENCH_") {
            cmd.env_remove(name);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (out, stdout, stderr)
}

#[test]
fn keygen_writes_each_key_once_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let key_dir = dir.path().join("nested/keys");
    for alg in Alg::ALL {
        let path = key_dir.join(alg.file_name());
        let (out, stdout, stderr) =
            run(jwt_server().args(["keygen", "--alg", &alg.to_string(), "--key-dir"]).arg(&key_dir));
        assert!(out.status.success(), "{alg}: {stderr}");
        assert_eq!(stdout, format!("wrote {alg} key to {}\n", path.display()));
        let written = std::fs::read(&path).unwrap();
        if alg == Alg::Hs256 {
            assert!(written.len() >= 32, "HMAC secret of {} bytes", written.len());
        } else {
            let text = String::from_utf8(written.clone()).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
            assert!(text.ends_with("-----END PRIVATE KEY-----\n"), "{text}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{alg}: a private key is readable by its owner only");
        }
        // The server can load what keygen wrote.
        jwt_server::keys::load(alg, &key_dir).unwrap_or_else(|e| panic!("{alg}: {e}"));

        // A second run must not silently replace the key (every token would stop verifying).
        let (out, stdout, stderr) =
            run(jwt_server().args(["keygen", "--alg", &alg.to_string(), "--key-dir"]).arg(&key_dir));
        assert!(!out.status.success(), "{alg}: second keygen succeeded");
        assert_eq!(stdout, "");
        assert!(stderr.contains("--force"), "{alg}: {stderr}");
        assert!(stderr.contains(alg.file_name()), "{alg}: {stderr}");
        assert_eq!(std::fs::read(&path).unwrap(), written, "{alg}: the key changed");

        // With --force it is replaced.
        let (out, _, stderr) =
            run(jwt_server().args(["keygen", "--force", "--alg", &alg.to_string(), "--key-dir"]).arg(&key_dir));
        assert!(out.status.success(), "{alg}: {stderr}");
        assert_ne!(std::fs::read(&path).unwrap(), written, "{alg}: --force kept the old key");
    }
}

#[tokio::test]
async fn server_prints_the_ready_line_serves_and_exits_cleanly_on_sigterm() {
    let keys = KeyDir::new(&[Alg::EdDsa]);
    let mut child = tokio::process::Command::from({
        let mut cmd = jwt_server();
        cmd.args(["--listen", "127.0.0.1:0", "--alg", "EdDSA", "--key-dir"])
            .arg(keys.path())
            .args(["--demo-users", "10000", "--instance-id", "bin-1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    })
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let pid = child.id().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line))
        .await
        .expect("no ready line within 20 s")
        .unwrap();
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not a ready line: {line:?}"));
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let base = format!("http://{addr}");

    let http = client();
    let r = get(&http, &format!("{base}/healthz"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json(), json!({"status": "ok"}));
    // All 10 000 demo users exist, with the documented roles.
    for (user, role) in [("user9999", "user"), ("user9990", "admin")] {
        let r = post_json(&http, &format!("{base}/login"), &json!({"username": user, "password": DEMO_PASSWORD})).await;
        let t = assert_token_response(&r);
        let r = get(&http, &format!("{base}/me"), Some(&t.access_token)).await;
        assert_eq!(r.json(), json!({"user": user, "role": role, "instance": "bin-1"}));
    }
    let r =
        post_json(&http, &format!("{base}/login"), &json!({"username": "user10000", "password": DEMO_PASSWORD})).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    // SIGTERM with an idle keep-alive connection still open: a clean, prompt exit.
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(Duration::from_secs(8), child.wait())
        .await
        .expect("still running 8 s after SIGTERM")
        .unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(status.success(), "exit status {status:?} after SIGTERM; stderr: {stderr}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "", "exactly one stdout line");
    drop(http); // kept alive until here: its idle connection was open during shutdown
}

#[test]
fn missing_key_exits_with_the_keygen_command_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let (out, stdout, stderr) = run(jwt_server()
        .args(["--listen", "127.0.0.1:0", "--alg", "ES256", "--demo-users", "1", "--key-dir"])
        .arg(&missing));
    assert!(!out.status.success());
    assert_eq!(stdout, "", "no ready line for a server that cannot start");
    let hint = format!("jwt-server keygen --alg ES256 --key-dir {}", missing.display());
    assert!(stderr.contains(&hint), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear line, no backtrace: {stderr}");

    // The same through the environment (every flag has a variable).
    let (out, _, stderr) = run(jwt_server()
        .args(["--listen", "127.0.0.1:0", "--demo-users", "1"])
        .env("AUTHBENCH_ALG", "RS256")
        .env("AUTHBENCH_KEY_DIR", &missing));
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("jwt-server keygen --alg RS256 --key-dir {}", missing.display())), "{stderr}");
}

#[test]
fn leeway_over_thirty_seconds_is_refused() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let (out, stdout, stderr) = run(jwt_server()
        .args(["--listen", "127.0.0.1:0", "--demo-users", "1", "--leeway", "60s", "--key-dir"])
        .arg(keys.path()));
    assert!(!out.status.success());
    assert_eq!(stdout, "");
    assert!(stderr.contains("--leeway") && stderr.contains("at most 30s"), "{stderr}");
}

#[test]
fn other_bad_flags_are_refused_with_a_message() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    for bad in [
        &["--access-ttl", "0s"][..],
        &["--refresh-ttl", "soon"],
        &["--alg", "HS512"],
        &["--refresh-store", "postgres"],
        &["--listen", "localhost"],
    ] {
        let (out, stdout, stderr) =
            run(jwt_server().args(["--demo-users", "1", "--key-dir"]).arg(keys.path()).args(bad));
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert_eq!(stdout, "", "{bad:?}");
        assert!(stderr.contains(bad[0]), "{bad:?}: {stderr}");
    }
}

#[test]
fn help_names_the_environment_variable_of_every_flag() {
    let (out, stdout, _) = run(jwt_server().arg("--help"));
    assert!(out.status.success());
    for var in [
        "AUTHBENCH_LISTEN",
        "AUTHBENCH_INSTANCE_ID",
        "AUTHBENCH_DEMO_USERS",
        "AUTHBENCH_DEMO_PASSWORD",
        "AUTHBENCH_ALG",
        "AUTHBENCH_KEY_DIR",
        "AUTHBENCH_ISSUER",
        "AUTHBENCH_AUDIENCE",
        "AUTHBENCH_ACCESS_TTL",
        "AUTHBENCH_REFRESH_TTL",
        "AUTHBENCH_LEEWAY",
        "AUTHBENCH_REFRESH_STORE",
        "AUTHBENCH_REDIS_URL",
        "AUTHBENCH_REDIS_PREFIX",
        "AUTHBENCH_STORE_TIMEOUT",
    ] {
        assert!(stdout.contains(&format!("[env: {var}=")), "{var} missing from --help:\n{stdout}");
    }
}
