//! `--store postgres` over real connections: sessions shared by instances, the sliding
//! expiry written on every request or only after `--touch-after`, and failing closed when
//! the database stops or freezes, then recovering without a restart.
//!
//! Most tests use the shared PostgreSQL on 127.0.0.1:5432 in a schema of their own; the
//! outage tests start a private cluster (`harness::deploy::postgres`) they can stop, freeze
//! and start again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use harness::deploy::postgres::{DEFAULT_USER, PgSettings, Postgres, start_postgres};
use reqwest::StatusCode;

fn pg_flags(pg: &PgSchema) -> Vec<&str> {
    vec!["--store", "postgres", "--database-url", &pg.url, "--database-schema", &pg.schema]
}

/// The session row's expiry, in µs since the epoch, for the session of `user`.
fn expires_at_us(pg: &PgSchema, user: &str) -> i64 {
    pg.psql(&format!(
        "SELECT (extract(epoch FROM expires_at) * 1000000)::bigint FROM {}.sessions WHERE username = '{user}'",
        pg.schema
    ))
    .parse()
    .unwrap()
}

#[tokio::test]
async fn sessions_are_shared_and_logout_is_global() {
    let pg = PgSchema::new();
    let a = TestServer::start("pg-a", &pg_flags(&pg)).await;
    let b = TestServer::start("pg-b", &pg_flags(&pg)).await;
    let http = client();

    let id = login(&http, &a, "user0", None).await;
    expect_me(&me(&http, &a, &id).await, "user0", "admin", "pg-a");
    expect_me(&me(&http, &b, &id).await, "user0", "admin", "pg-b");
    expect_me(&get(&http, &b.at("/admin"), Some(&cookie(&id))).await, "user0", "admin", "pg-b");

    let out = post_empty(&http, &b.at("/logout"), Some(&cookie(&id))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // No propagation delay: the very next request on A is rejected.
    me(&http, &a, &id).await.assert_error(401, "unauthenticated");
    assert_eq!(pg.session_rows(), 0);

    // Another schema is another session space, even in the same database.
    let other = PgSchema::new();
    let c = TestServer::start("pg-c", &pg_flags(&other)).await;
    let id2 = login(&http, &a, "user1", None).await;
    expect_me(&me(&http, &b, &id2).await, "user1", "user", "pg-b");
    me(&http, &c, &id2).await.assert_error(401, "unauthenticated");
    assert_eq!(other.session_rows(), 0);
}

#[tokio::test]
async fn the_sliding_expiry_is_written_on_every_read_unless_touch_throttled() {
    // Every read writes: the expiry moves forward with each /me.
    let pg = PgSchema::new();
    let server = TestServer::start("touch-every", &pg_flags(&pg)).await;
    let http = client();
    let id = login(&http, &server, "user1", None).await;
    let mut last = expires_at_us(&pg, "user1");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        expect_me(&me(&http, &server, &id).await, "user1", "user", "touch-every");
        let now = expires_at_us(&pg, "user1");
        assert!(now > last, "each read slides the expiry ({last} → {now})");
        last = now;
    }

    // Throttled: reads within --touch-after of the last write leave the row alone ...
    let pg = PgSchema::new();
    let mut flags = pg_flags(&pg);
    flags.extend(["--idle-timeout", "3s", "--touch-after", "1s"]);
    let server = TestServer::start("touch-1s", &flags).await;
    let id = login(&http, &server, "user2", None).await;
    let written = expires_at_us(&pg, "user2");
    let updates = |pg: &PgSchema| -> i64 {
        pg.psql(&format!(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE schemaname = '{}' AND relname = 'sessions'",
            pg.schema
        ))
        .parse()
        .unwrap_or(0)
    };
    let _ = updates(&pg);
    for _ in 0..5 {
        expect_me(&me(&http, &server, &id).await, "user2", "user", "touch-1s");
    }
    assert_eq!(expires_at_us(&pg, "user2"), written, "reads inside the touch interval write nothing");

    // ... the first read after it writes once, and the session lives on past the idle
    // timeout counted from login as long as it is used.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    expect_me(&me(&http, &server, &id).await, "user2", "user", "touch-1s");
    let rewritten = expires_at_us(&pg, "user2");
    assert!(rewritten > written + 1_000_000, "slid by the time since the last write ({written} → {rewritten})");
    assert_eq!(expires_at_us(&pg, "user2"), rewritten);
    expect_me(&me(&http, &server, &id).await, "user2", "user", "touch-1s");
    assert_eq!(expires_at_us(&pg, "user2"), rewritten, "and not again right after");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        expect_me(&me(&http, &server, &id).await, "user2", "user", "touch-1s");
    }
    // An unused session still ends: 3 s idle at most.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    me(&http, &server, &id).await.assert_error(401, "unauthenticated");
}

async fn private_postgres(logs: &std::path::Path) -> Postgres {
    start_postgres(DEFAULT_USER, PgSettings::default(), None, logs)
        .await
        .expect("a private PostgreSQL (initdb, postgres)")
}

/// Retry `/me` until it stops answering 503 (each 503 must be a proper one); returns the
/// first other answer.
async fn until_recovered(http: &reqwest::Client, server: &TestServer, id: &str) -> Reply {
    let back = Instant::now();
    loop {
        let r = me(http, server, id).await;
        if r.status != StatusCode::SERVICE_UNAVAILABLE {
            eprintln!("recovered {:?} after the database came back", back.elapsed());
            return r;
        }
        check_503(&r, "/me while reconnecting");
        assert!(back.elapsed() < Duration::from_secs(10), "still 503 ten seconds after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_outage_fails_closed_with_503_and_recovers_without_restart() {
    let logs = tempfile::tempdir().unwrap();
    let mut pg = private_postgres(logs.path()).await;
    let server = TestServer::start(
        "pg-outage",
        &["--store", "postgres", "--database-url", &pg.url, "--store-timeout", "300ms", "--database-pool", "4"],
    )
    .await;
    let http = client();
    let id = login(&http, &server, "user0", None).await;
    expect_me(&me(&http, &server, &id).await, "user0", "admin", "pg-outage");

    pg.stop().await;
    for _ in 0..5 {
        let started = Instant::now();
        let r = me(&http, &server, &id).await;
        assert!(started.elapsed() < Duration::from_secs(1), "/me took {:?}", started.elapsed());
        check_503(&r, "/me while the database is down");
    }
    check_503(&get(&http, &server.at("/admin"), Some(&cookie(&id))).await, "/admin");
    check_503(&post_empty(&http, &server.at("/logout"), Some(&cookie(&id))).await, "/logout");
    // The login throttle lives in the same database: fail closed, no hash, no session.
    check_503(&post_json(&http, &server.at("/login"), &credentials("user1", DEMO_PASSWORD), None).await, "/login");
    assert_eq!(get(&http, &server.at("/healthz"), None).await.status, StatusCode::OK);
    get(&http, &server.at("/me"), None).await.assert_error(401, "unauthenticated");

    // Back, with its data: the same server process reconnects and the session is still valid
    // (a database keeps what it committed, unlike our Redis without persistence).
    pg.restart().await.unwrap();
    expect_me(&until_recovered(&http, &server, &id).await, "user0", "admin", "pg-outage");
    let id2 = login(&http, &server, "user1", None).await;
    expect_me(&me(&http, &server, &id2).await, "user1", "user", "pg-outage");
    server.stop().await;
}

#[tokio::test]
async fn a_frozen_database_fails_closed_and_answers_resume_in_order() {
    let logs = tempfile::tempdir().unwrap();
    let pg = private_postgres(logs.path()).await;
    let server = TestServer::start(
        "pg-stall",
        &["--store", "postgres", "--database-url", &pg.url, "--store-timeout", "300ms", "--database-pool", "4"],
    )
    .await;
    let http = client();
    let admin = login(&http, &server, "user0", None).await;
    let user = login(&http, &server, "user1", None).await;

    let burst = |n: usize| {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (id, name) = if i % 2 == 0 { (admin.clone(), "user0") } else { (user.clone(), "user1") };
            let (http, url) = (http.clone(), server.at("/me"));
            set.spawn(async move {
                let started = Instant::now();
                let r = get(&http, &url, Some(&cookie(&id))).await;
                (name, r, started.elapsed())
            });
        }
        set.join_all()
    };

    // Frozen (SIGSTOP on the postmaster and every backend): connections stay up, nothing
    // answers. More requests than pooled connections, so some also wait for the pool.
    let pids = std::process::Command::new("pgrep").args(["-P", &pg.process.pid.to_string()]).output().unwrap();
    let mut frozen: Vec<String> = String::from_utf8_lossy(&pids.stdout).split_whitespace().map(str::to_owned).collect();
    frozen.push(pg.process.pid.to_string());
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill").arg(sig).args(&frozen).status().unwrap();
        assert!(status.success(), "kill {sig} {frozen:?}");
    };
    signal("-STOP");
    for (name, r, took) in burst(10).await {
        assert!(took < Duration::from_secs(1), "/me for {name} took {took:?}");
        check_503(&r, &format!("/me for {name} while the database is frozen"));
    }

    // Thawed: late answers to abandoned statements must not reach new requests.
    signal("-CONT");
    let back = Instant::now();
    loop {
        let results = burst(20).await;
        if results.iter().any(|(_, r, _)| r.status == StatusCode::SERVICE_UNAVAILABLE) {
            assert!(back.elapsed() < Duration::from_secs(10), "still 503 ten seconds after SIGCONT");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for (name, r, _) in results {
            let role = if name == "user0" { "admin" } else { "user" };
            expect_me(&r, name, role, "pg-stall");
        }
        break;
    }
}

#[tokio::test]
async fn an_unlogged_table_is_what_was_asked_for_and_a_mismatch_is_refused() {
    let pg = PgSchema::new();
    let mut flags = pg_flags(&pg);
    flags.push("--unlogged");
    let server = TestServer::start("unlogged", &flags).await;
    let http = client();
    let id = login(&http, &server, "user3", None).await;
    expect_me(&me(&http, &server, &id).await, "user3", "user", "unlogged");
    let persistence =
        pg.psql(&format!("SELECT relpersistence FROM pg_class WHERE oid = '{}.sessions'::regclass", pg.schema));
    assert_eq!(persistence, "u");

    // The same schema without --unlogged: refused at start, not silently changed.
    let cli = <session_server::config::Cli as clap::Parser>::try_parse_from(
        ["session-server", "--demo-users", "1"].into_iter().chain(pg_flags(&pg)),
    )
    .unwrap();
    let err = session_server::config::build(&cli.args).await.unwrap_err();
    assert!(format!("{err:#}").contains("exists as an UNLOGGED table"), "{err:#}");
}
