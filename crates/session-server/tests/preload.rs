//! `--preload-sessions` (the live-sessions axis's way into session-memory) and the purge
//! counters on `/metrics`, over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use session_server::id::SessionId;

fn file_with(lines: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), lines).unwrap();
    f
}

#[tokio::test]
async fn preloaded_sessions_answer_as_if_their_users_had_logged_in() {
    let (admin, user) = (SessionId::generate().encode(), SessionId::generate().encode());
    let file = file_with(&format!("{admin} user0 admin\n\n{user} user3 user\n"));
    let path = file.path().to_str().unwrap();
    let server = TestServer::start("preload-1", &["--store", "memory", "--preload-sessions", path]).await;
    let http = client();
    expect_me(&me(&http, &server, &admin).await, "user0", "admin", "preload-1");
    expect_me(&me(&http, &server, &user).await, "user3", "user", "preload-1");
    get(&http, &server.at("/admin"), Some(&cookie(&user))).await.assert_error(403, "forbidden");
    // Logout ends a preloaded session like any other.
    post_empty(&http, &server.at("/logout"), Some(&cookie(&user))).await;
    me(&http, &server, &user).await.assert_error(401, "unauthenticated");
    me(&http, &server, &SessionId::generate().encode()).await.assert_error(401, "unauthenticated");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_preload_file_stops_the_start_with_its_line() {
    let id = SessionId::generate().encode();
    let cases = [
        (format!("{id} user0\n"), "line 1: expected `<session id> <user> <role>`"),
        (format!("{id} user0 admin\nnot-an-id user1 user\n"), "line 2: not a session ID"),
        (format!("{id} user0 root\n"), "role \"root\" is not admin or user"),
        (format!("{id} nobody user\n"), "unknown user \"nobody\""),
        (format!("{id} user1 admin\n"), "user1 has the role user, not admin"),
    ];
    for (text, expected) in cases {
        let file = file_with(&text);
        let argv = ["session-server", "--demo-users", "5", "--store", "memory", "--preload-sessions"];
        let mut argv: Vec<&str> = argv.to_vec();
        argv.push(file.path().to_str().unwrap());
        let cli = <session_server::config::Cli as clap::Parser>::try_parse_from(&argv).unwrap();
        let err = session_server::config::build(&cli.args).await.expect_err("must not start");
        assert!(format!("{err:#}").contains(expected), "{text:?}: {err:#}");
    }
    let cli = <session_server::config::Cli as clap::Parser>::try_parse_from([
        "session-server",
        "--store",
        "redis",
        "--preload-sessions",
        "/nonexistent",
    ])
    .unwrap();
    let err = session_server::config::build(&cli.args).await.expect_err("must not start");
    assert!(format!("{err:#}").contains("--preload-sessions applies to --store memory only"), "{err:#}");
}

#[tokio::test]
async fn purges_are_counted_on_metrics() {
    // Idle 400 ms: the memory store purges every 100 ms.
    let server = TestServer::start("purge-1", &["--store", "memory", "--idle-timeout", "400ms"]).await;
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = get(&http, &server.at("/metrics"), None).await.body;
        let runs: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("authbench_purges_total "))
            .expect("authbench_purges_total on /metrics")
            .parse()
            .unwrap();
        assert!(text.contains("authbench_purge_seconds_total "), "{text}");
        if runs >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no purge counted within 5 s: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}
