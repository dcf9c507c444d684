//! `session-redis+cached` (`--store redis --session-cache-ttl`): sessions in a real Redis,
//! a local copy in each instance, logout heard through real pub/sub. Each test uses its own
//! key prefix; the tests that count commands or stop Redis start a `redis-server` of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;

fn flags<'a>(url: &'a str, prefix: &'a str, ttl: &'a str) -> Vec<&'a str> {
    vec!["--store", "redis", "--redis-url", url, "--redis-prefix", prefix, "--session-cache-ttl", ttl]
}

/// How many times Redis ran `command` since it started (`INFO commandstats`).
fn calls(url: &str, command: &str) -> u64 {
    let mut conn = redis::Client::open(url).unwrap().get_connection_with_timeout(Duration::from_secs(2)).unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// Poll `/me` on `server` until it answers `status`; returns how long that took.
async fn until_status(
    http: &reqwest::Client,
    server: &TestServer,
    id: &str,
    status: StatusCode,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let r = me(http, server, id).await;
        if r.status == status {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "/me still {} after {within:?} (wanted {status}): {r:?}", r.status);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn copies_spare_the_store_and_logout_reaches_every_instance() {
    if RedisServer::skip_test() {
        return;
    }
    let redis = RedisServer::start(free_port());
    let url = redis.url();
    let prefix = RedisPrefix::on(&url);
    let a = TestServer::start("cached-a", &flags(&url, &prefix.prefix, "10s")).await;
    let b = TestServer::start("cached-b", &flags(&url, &prefix.prefix, "10s")).await;
    let http = client();

    let id = login(&http, &a, "user0", None).await;
    expect_me(&me(&http, &b, &id).await, "user0", "admin", "cached-b");
    let before = calls(&url, "getex");
    for _ in 0..50 {
        expect_me(&me(&http, &a, &id).await, "user0", "admin", "cached-a");
        expect_me(&me(&http, &b, &id).await, "user0", "admin", "cached-b");
    }
    assert_eq!(calls(&url, "getex") - before, 0, "100 reads within the cache lifetime cost no store command");
    assert_eq!(prefix.keys(), vec![format!("{}s:{id}", prefix.prefix)], "the session still lives in Redis");

    // Logout on A: B held a copy and must drop it when the message arrives.
    let out = post_empty(&http, &a.at("/logout"), Some(&cookie(&id))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    me(&http, &a, &id).await.assert_error(401, "unauthenticated");
    let took = until_status(&http, &b, &id, StatusCode::UNAUTHORIZED, Duration::from_secs(1)).await;
    eprintln!("logout on A refused on B after {took:?}");
    assert_eq!(prefix.keys(), Vec::<String>::new(), "logout deletes the key");
    // And it stays refused (the copy is gone, not just hidden).
    for server in [&a, &b] {
        me(&http, server, &id).await.assert_error(401, "unauthenticated");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_copy_lives_no_longer_than_the_cache_ttl() {
    let prefix = RedisPrefix::new();
    let server = TestServer::start("cached-ttl", &flags(SHARED_REDIS, &prefix.prefix, "600ms")).await;
    let http = client();
    let id = login(&http, &server, "user1", None).await;
    expect_me(&me(&http, &server, &id).await, "user1", "user", "cached-ttl");

    // Deleted behind the servers' back (no message): the copy may answer, but only until
    // it is one cache lifetime old.
    let removed = Instant::now();
    redis::cmd("DEL")
        .arg(format!("{}s:{id}", prefix.prefix))
        .query::<i64>(&mut redis::Client::open(SHARED_REDIS).unwrap().get_connection().unwrap())
        .unwrap();
    expect_me(&me(&http, &server, &id).await, "user1", "user", "cached-ttl");
    until_status(&http, &server, &id, StatusCode::UNAUTHORIZED, Duration::from_secs(2)).await;
    assert!(removed.elapsed() <= Duration::from_millis(600) + Duration::from_millis(300), "{:?}", removed.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn a_session_served_from_copies_keeps_its_sliding_expiry_in_redis() {
    let prefix = RedisPrefix::new();
    let mut f = flags(SHARED_REDIS, &prefix.prefix, "300ms");
    f.extend(["--idle-timeout", "1s"]);
    let server = TestServer::start("cached-slide", &f).await;
    let http = client();
    let id = login(&http, &server, "user1", None).await;
    let key = format!("{}s:{id}", prefix.prefix);
    // Used every 100 ms for 2.5 idle timeouts: every read after a copy's lifetime re-reads
    // (and slides) the key, so it never expires in Redis.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        expect_me(&me(&http, &server, &id).await, "user1", "user", "cached-slide");
        let ttl = prefix.pttl(&key);
        assert!(ttl > 0, "the key expired in Redis while in use (PTTL {ttl}) after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Unused: it ends within the idle timeout (at most one cache lifetime earlier).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    me(&http, &server, &id).await.assert_error(401, "unauthenticated");
    assert_eq!(prefix.pttl(&key), -2);
    server.stop().await;
}

#[tokio::test]
async fn a_lost_subscription_empties_the_copy_and_falls_through_to_redis() {
    if RedisServer::skip_test() {
        return;
    }
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let url = redis.url();
    let mut f = flags(&url, "authbench-test:cached-outage:", "30s");
    f.extend(["--store-timeout", "300ms"]);
    let server = TestServer::start("cached-outage", &f).await;
    let http = client();
    let id = login(&http, &server, "user0", None).await;
    expect_me(&me(&http, &server, &id).await, "user0", "admin", "cached-outage");

    // Redis gone: once the subscription's loss is noticed the copy is emptied, and the
    // store is asked (and fails closed), however long the copy had left.
    redis.kill();
    let took = until_status(&http, &server, &id, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(3)).await;
    eprintln!("copy dropped {took:?} after Redis died");
    check_503(&me(&http, &server, &id).await, "/me while Redis is down");
    assert_eq!(get(&http, &server.at("/healthz"), None).await.status, StatusCode::OK);

    // Redis back, empty: the session is unknown there, and the copy (30 s left) must not
    // bring it back.
    redis.restart();
    until_status(&http, &server, &id, StatusCode::UNAUTHORIZED, Duration::from_secs(5)).await;
    // The copy works again once the subscription is back.
    let id2 = login(&http, &server, "user1", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect_me(&me(&http, &server, &id2).await, "user1", "user", "cached-outage");
    let before = calls(&url, "getex");
    for _ in 0..20 {
        expect_me(&me(&http, &server, &id2).await, "user1", "user", "cached-outage");
    }
    assert_eq!(calls(&url, "getex") - before, 0, "served from the copy again after the subscription came back");
    server.stop().await;
}
