//! The `session-server` binary as the harness uses it: flags, the ready line, SIGTERM,
//! and clear one-line errors (no panic, no backtrace) for bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader},
    process::{Child, ChildStdout, Command},
};

const BIN: &str = env!("CARGO_BIN_EXE_session-server");

/// The binary with a clean environment for its own flags (so a developer's exported
/// AUTHBENCH_* variables cannot change what a test means) and backtraces on, so that a
/// panic would be visible in stderr.
fn session_server(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AUTHBENCH_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("RUST_BACKTRACE", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Run to completion (at most 10 s); returns status, stdout, stderr.
async fn run_to_end(cmd: &mut Command) -> (ExitStatus, String, String) {
    let child = cmd.spawn().expect("spawn session-server");
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("session-server did not exit within 10 s")
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[track_caller]
fn assert_clean_failure(status: ExitStatus, stdout: &str, stderr: &str) {
    assert!(!status.success(), "expected failure, got {status}");
    assert!(status.code().is_some(), "killed by a signal: {status}");
    assert!(!stderr.contains("panicked") && !stderr.contains("stack backtrace"), "panic:\n{stderr}");
    assert!(!stdout.contains("listening on"), "printed a ready line: {stdout:?}");
    assert!(!stderr.trim().is_empty(), "no message on stderr");
}

/// Wait for the ready line; returns the base URL.
async fn ready_line(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
        .await
        .expect("no ready line within 10 s")
        .unwrap();
    assert!(n > 0, "stdout closed before the ready line");
    let url = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("listening on "))
        .unwrap_or_else(|| panic!("first stdout line is not the ready line: {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url["http://127.0.0.1:".len()..].parse().unwrap();
    assert_ne!(port, 0, "the ready line names the bound port, not :0");
    url.to_owned()
}

async fn sigterm(child: &Child) {
    let pid = child.id().expect("still running");
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -TERM {pid}");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

#[tokio::test]
async fn binary_prints_ready_line_serves_and_exits_cleanly_on_sigterm() {
    let started = Instant::now();
    let mut child = session_server(&["--listen", "127.0.0.1:0", "--demo-users", "10000", "--instance-id", "bin-test"])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let url = ready_line(&mut stdout).await;
    assert!(started.elapsed() < Duration::from_secs(5), "10 000 demo users took {:?} to start", started.elapsed());

    {
        let http = client();
        let health = http.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);

        // The last of the 10 000 demo users exists; the next one does not.
        let login = |user: &str| {
            http.post(format!("{url}/login"))
                .header("content-type", "application/json")
                .body(serde_json::json!({"username": user, "password": "demo-password"}).to_string())
                .send()
        };
        let ok = login("user9999").await.unwrap();
        assert_eq!(ok.status(), 200);
        let set_cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
        let sid = set_cookie.split(';').next().unwrap().to_owned();
        let me = http.get(format!("{url}/me")).header("cookie", &sid).send().await.unwrap();
        assert_eq!(me.status(), 200);
        assert_eq!(
            me.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"user": "user9999", "role": "user", "instance": "bin-test"})
        );
        assert_eq!(login("user10000").await.unwrap().status(), 401);
    } // client dropped: no idle keep-alive connection left open

    sigterm(&child).await;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("no exit within 5 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");

    // Exactly one ready line, nothing else on stdout; nothing alarming on stderr.
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "", "stdout after the ready line");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn environment_variables_configure_the_binary() {
    let mut cmd = session_server(&[]);
    cmd.env("AUTHBENCH_LISTEN", "127.0.0.1:0")
        .env("AUTHBENCH_INSTANCE_ID", "from-env")
        .env("AUTHBENCH_DEMO_USERS", "3")
        .env("AUTHBENCH_STORE", "memory");
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let url = ready_line(&mut stdout).await;
    {
        let http = client();
        let ok = http
            .post(format!("{url}/login"))
            .header("content-type", "application/json")
            .body(r#"{"username":"user0","password":"demo-password"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let sid = ok.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let me = http.get(format!("{url}/me")).header("cookie", sid).send().await.unwrap();
        assert_eq!(
            me.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"user": "user0", "role": "admin", "instance": "from-env"})
        );
    }
    sigterm(&child).await;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn help_names_the_environment_variable_of_every_flag() {
    let (status, stdout, _) = run_to_end(&mut session_server(&["--help"])).await;
    assert!(status.success());
    for (flag, var) in [
        ("--listen", "AUTHBENCH_LISTEN"),
        ("--instance-id", "AUTHBENCH_INSTANCE_ID"),
        ("--store", "AUTHBENCH_STORE"),
        ("--redis-url", "AUTHBENCH_REDIS_URL"),
        ("--redis-prefix", "AUTHBENCH_REDIS_PREFIX"),
        ("--demo-users", "AUTHBENCH_DEMO_USERS"),
        ("--demo-password", "AUTHBENCH_DEMO_PASSWORD"),
        ("--idle-timeout", "AUTHBENCH_IDLE_TIMEOUT"),
        ("--absolute-timeout", "AUTHBENCH_ABSOLUTE_TIMEOUT"),
        ("--store-timeout", "AUTHBENCH_STORE_TIMEOUT"),
    ] {
        assert!(stdout.contains(flag), "--help lacks {flag}:\n{stdout}");
        assert!(stdout.contains(&format!("[env: {var}=")), "--help lacks {var}:\n{stdout}");
    }
}

#[tokio::test]
async fn bad_flag_values_fail_with_a_message_and_no_backtrace() {
    let (status, stdout, stderr) = run_to_end(&mut session_server(&["--store", "nope", "--demo-users", "1"])).await;
    assert_clean_failure(status, &stdout, &stderr);
    assert_eq!(status.code(), Some(2), "clap usage error");
    assert!(stderr.contains("invalid value 'nope' for '--store <STORE>'"), "{stderr}");
    assert!(stderr.contains("memory") && stderr.contains("redis"), "lists the possible values: {stderr}");

    for args in [
        ["--idle-timeout", "0s", "--demo-users", "1"],
        ["--absolute-timeout", "soon", "--demo-users", "1"],
        ["--store-timeout", "0ms", "--demo-users", "1"],
        ["--demo-users", "lots", "--store", "memory"],
    ] {
        let (status, stdout, stderr) = run_to_end(&mut session_server(&args)).await;
        assert_clean_failure(status, &stdout, &stderr);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        let expected = format!("invalid value '{}' for '{}", args[1], args[0]);
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }

    // No users at all is refused up front.
    let (status, stdout, stderr) = run_to_end(&mut session_server(&[])).await;
    assert_clean_failure(status, &stdout, &stderr);
    assert!(stderr.contains("--demo-users"), "{stderr}");
}

#[tokio::test]
async fn unreachable_redis_fails_at_start_with_a_message_naming_redis() {
    let started = Instant::now();
    let (status, stdout, stderr) = run_to_end(&mut session_server(&[
        "--store",
        "redis",
        "--redis-url",
        "redis://127.0.0.1:1",
        "--demo-users",
        "1",
    ]))
    .await;
    assert_clean_failure(status, &stdout, &stderr);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("Redis"), "{stderr}");
    assert!(stderr.contains("redis://127.0.0.1:1"), "names the URL: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn port_in_use_fails_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stdout, stderr) = run_to_end(&mut session_server(&["--listen", &addr, "--demo-users", "1"])).await;
    assert_clean_failure(status, &stdout, &stderr);
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    drop(taken);
}

#[tokio::test]
async fn postgres_flags_fail_at_start_with_one_line_naming_the_problem() {
    // (args, what stderr must say, exit code: 2 for a clap usage error, 1 otherwise)
    let pg = test_support::PgSchema::new();
    let cases: [(&[&str], &str, i32); 6] = [
        // Unreachable: names the URL (never its password).
        (
            &["--store", "postgres", "--database-url", "postgres://u:hunter2@127.0.0.1:1/db"],
            "cannot connect to PostgreSQL at postgres://u:***@127.0.0.1:1/db",
            1,
        ),
        (&["--store", "postgres", "--database-url", "redis://127.0.0.1:6379"], "starts with postgres://", 1),
        (&["--store", "postgres", "--database-schema", "Robert'); DROP TABLE x"], "a schema name is", 2),
        (
            &["--store", "memory", "--touch-after", "1m"],
            "--touch-after and --unlogged apply to --store postgres only",
            1,
        ),
        (
            &[
                "--store",
                "postgres",
                "--database-url",
                &pg.url,
                "--database-schema",
                &pg.schema,
                "--touch-after",
                "30m",
            ],
            "must be shorter than the idle timeout",
            1,
        ),
        (&["--store", "postgres", "--database-pool", "0"], "invalid value '0' for '--database-pool", 2),
    ];
    for (args, expected, code) in cases {
        let mut all = args.to_vec();
        all.extend(["--demo-users", "1"]);
        let (status, stdout, stderr) = run_to_end(&mut session_server(&all)).await;
        assert_clean_failure(status, &stdout, &stderr);
        assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "printed a password: {stderr}");
        if code == 1 {
            assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
        }
    }
}

#[tokio::test]
async fn session_cache_flags_fail_at_start_with_one_line_naming_the_problem() {
    // (args, what stderr must say, exit code: 2 for a clap usage error, 1 otherwise)
    let cases: [(&[&str], &str, i32); 5] = [
        (&["--store", "memory", "--session-cache-ttl", "1s"], "--session-cache-ttl applies to --store redis only", 1),
        (
            &["--store", "redis", "--session-cache-ttl", "30m"],
            "--session-cache-ttl (30m) must be above zero and shorter than --idle-timeout (30m)",
            1,
        ),
        (&["--store", "redis", "--session-cache-ttl", "1s", "--session-cache-size", "0"], "at least 1", 1),
        (&["--store", "redis", "--session-cache-ttl", "soon"], "invalid value 'soon' for '--session-cache-ttl", 2),
        (
            &["--store", "redis", "--session-cache-ttl", "1s", "--redis-url", "redis://127.0.0.1:1"],
            "redis://127.0.0.1:1",
            1,
        ),
    ];
    for (args, expected, code) in cases {
        let mut all = args.to_vec();
        all.extend(["--demo-users", "1"]);
        let (status, stdout, stderr) = run_to_end(&mut session_server(&all)).await;
        assert_clean_failure(status, &stdout, &stderr);
        assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        if code == 1 {
            assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
        }
    }
}

#[tokio::test]
async fn a_redis_that_is_not_a_formed_cluster_is_refused_at_start() {
    // The shared Redis runs without cluster mode.
    for (args, expected) in [
        (&["--store", "redis-cluster", "--redis-url", "redis://127.0.0.1:6379"][..], "Redis Cluster"),
        (
            &["--store", "redis-cluster", "--redis-url", "redis://127.0.0.1:1,redis://127.0.0.1:2"][..],
            "redis://127.0.0.1:1",
        ),
        (&["--store", "redis-cluster", "--redis-url", ","][..], "no Redis Cluster node given"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--demo-users", "1"]);
        let started = Instant::now();
        let (status, stdout, stderr) = run_to_end(&mut session_server(&all)).await;
        assert_clean_failure(status, &stdout, &stderr);
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", started.elapsed());
    }
}
