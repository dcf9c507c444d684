//! End to end: `authbench-goose` starts real servers on loopback, walks short journeys
//! against them and exits 0 only when every response was right — and non-zero when the
//! servers answer wrongly (instance-local sessions behind round-robin, the wrong server
//! kind), when interrupted, or when asked to load anything but loopback.
//!
//! Each test is a separate process run on its own ports and private redis-server, so the
//! tests run in parallel (about 10 s in all on 2 cores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead as _, BufReader},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

fn goose_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_authbench-goose"))
}

/// The server binaries live next to authbench-goose (built once if missing).
fn ensure_servers() -> &'static Path {
    test_support::server_binaries(goose_bin().parent().unwrap())
}

/// A short journey run: 4 users, all started at once, 3 s.
const SHORT: [&str; 9] =
    ["--users", "4", "--increase-rate", "4", "--run-time", "3s", "-q", "--no-print-metrics", "--max-duration=60s"];

fn goose(args: &[&str]) -> Output {
    ensure_servers();
    Command::new(goose_bin()).args(args).stdin(Stdio::null()).output().expect("run authbench-goose")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `N` of the closing `PASS (N requests, 0 failed)`.
fn passed_requests(stdout: &str) -> u64 {
    let line = stdout.lines().find(|l| l.starts_with("authbench-goose: PASS (")).expect("a PASS line");
    line.trim_start_matches("authbench-goose: PASS (").split(' ').next().unwrap().parse().unwrap()
}

fn journeys_pass(system: &str, names: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let report_arg = report.display().to_string();
    let mut args = vec!["--system", system, "--report-file", &report_arg];
    args.extend(SHORT);
    let out = goose(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{system} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{system} journeys, 2 instance(s) (sticky)")), "{stdout}");
    let requests = passed_requests(&stdout);
    assert!(requests >= 10, "only {requests} requests in 3 s:\n{stdout}");
    let html = std::fs::read_to_string(&report).expect("the report file");
    for name in names {
        assert!(html.contains(name), "{name} missing from the report");
        assert!(stdout.contains(name.split_once(' ').unwrap().1), "{name} missing from the summary:\n{stdout}");
    }
}

#[test]
fn session_redis_journeys_pass() {
    journeys_pass(
        "session-redis",
        &[
            "POST /login",
            "GET /me",
            "GET /admin (admin)",
            "GET /admin (user)",
            "POST /logout",
            "GET /me (after logout)",
        ],
    );
}

#[test]
fn session_memory_journeys_pass_when_sticky() {
    journeys_pass("session-memory", &["POST /login", "GET /me", "POST /logout", "GET /me (after logout)"]);
}

#[test]
fn jwt_hs256_journeys_pass() {
    journeys_pass(
        "jwt-hs256",
        &[
            "POST /login",
            "GET /me",
            "GET /admin (admin)",
            "POST /refresh",
            "GET /me (after refresh)",
            "POST /logout",
            "POST /refresh (after logout)",
        ],
    );
}

#[test]
fn instance_local_sessions_behind_round_robin_fail_the_run() {
    let mut args = vec!["--system", "session-memory", "--lb", "round-robin"];
    args.extend(SHORT);
    let out = goose(&args);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "round-robin over in-memory sessions passed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("authbench-goose: FAIL"), "{stderr}");
    assert!(stderr.contains("/me: expected 200 OK, got 401 Unauthorized"), "{stderr}");
}

#[test]
fn a_server_of_the_wrong_kind_fails_validation() {
    ensure_servers();
    // A session server, walked as if it were a JWT server: logins answer 200, but with no
    // tokens in the body — a status check alone would pass.
    let mut server = Command::new(ensure_servers().join("session-server"))
        .args(["--listen", "127.0.0.1:0", "--store", "memory", "--demo-users", "10"])
        .args(["--demo-password", "demo-password"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect("a ready line").to_owned();
    let mut args = vec!["--system", "jwt-hs256", "--host", &url];
    args.extend(SHORT);
    let out = goose(&args);
    let _ = server.kill();
    let _ = server.wait();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "jwt journeys passed against a session server:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("against {url} (not started here)")), "{stdout}");
    assert!(stderr.contains("/login: no access_token"), "{stderr}");
}

#[test]
fn only_loopback_targets_are_accepted() {
    // `.invalid` never resolves: even a broken check could not send anything anywhere.
    let out = goose(&["--system", "jwt-hs256", "--host", "http://not-loopback.invalid:1", "--run-time", "1s"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("only loopback targets are allowed"), "{stderr}");
    let out = goose(&["--system", "session-redis", "--redis-url", "redis://cache.invalid:6379", "--run-time", "1s"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("only loopback targets are allowed"), "{stderr}");
}

#[test]
fn an_interrupt_stops_goose_and_the_servers_and_fails_the_run() {
    ensure_servers();
    let mut child = Command::new(goose_bin())
        .args(["--system", "session-memory", "--users", "2", "--run-time", "60s", "-q", "--no-print-metrics"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addrs: Vec<String> =
        first.split_whitespace().filter_map(|w| w.strip_prefix("http://")).map(str::to_owned).collect();
    assert_eq!(addrs.len(), 2, "{first}");
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?} to stop", started.elapsed());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "an interrupted run passed");
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
    for addr in addrs {
        assert!(TcpStream::connect(&addr).is_err(), "{addr} still accepts connections after the run");
    }
}
