//! Refresh-token stores under pressure: concurrent rotation of one token, several instances
//! sharing (or not sharing) a store, what Redis holds, and a Redis outage (fail closed,
//! recover without a restart).
//!
//! The shared Redis at 127.0.0.1:6379 is only touched under a per-test key prefix; the
//! outage test starts and kills its own `redis-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use auth_core::{Role, wire::MeResponse};
use aws_lc_rs::digest;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use jwt_server::keys::Alg;
use reqwest::StatusCode;
use serde_json::json;

fn me_body(user: &str, role: Role, instance: &str) -> MeResponse {
    MeResponse { user: user.into(), role, instance: instance.into() }
}

// ---------------------------------------------------------------------------------------
// Concurrent rotation: exactly one winner
// ---------------------------------------------------------------------------------------

const RACERS: usize = 16;

async fn concurrent_refreshes_have_one_winner(store: Store) {
    let keys = KeyDir::new(&[Alg::Es256]);
    let server = store.start("race-1", Alg::Es256, &keys, &[]).await;
    let http = client();
    let t = login(&http, &server, "user1").await;

    // Open the connections first, so the requests really arrive together.
    let clients: Vec<reqwest::Client> = (0..RACERS).map(|_| client()).collect();
    for c in &clients {
        assert_eq!(get(c, &server.at("/healthz"), None).await.status, StatusCode::OK);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let url = server.at("/refresh");
            let token = t.refresh_token.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                post_json(&c, &url, &json!({ "refresh_token": token })).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == StatusCode::OK {
            winners.push(assert_token_response(&r));
        } else {
            r.assert_invalid_grant();
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of {RACERS} concurrent refreshes may succeed");
    // The losers presented a used token: reuse, so the family (the winner's too) is revoked.
    refresh(&http, &server, &winners[0].refresh_token).await.assert_invalid_grant();
    // The winner's access token is a normal token all the same.
    assert_eq!(me(&http, &server, &winners[0].access_token).await, me_body("user1", Role::User, "race-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_have_one_winner_memory() {
    concurrent_refreshes_have_one_winner(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_have_one_winner_redis() {
    concurrent_refreshes_have_one_winner(Store::redis()).await;
}

// ---------------------------------------------------------------------------------------
// Several instances
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn redis_store_is_shared_but_access_tokens_outlive_logout() {
    let keys = KeyDir::new(&[Alg::Rs256]);
    let store = Store::redis();
    let a = store.start("node-a", Alg::Rs256, &keys, &[]).await;
    let b = store.start("node-b", Alg::Rs256, &keys, &[]).await;
    let http = client();

    // Same key directory: the kid and the JWKS agree.
    let jwks_a = get(&http, &a.at("/.well-known/jwks.json"), None).await.json();
    let jwks_b = get(&http, &b.at("/.well-known/jwks.json"), None).await.json();
    assert_eq!(jwks_a, jwks_b);

    let first = login(&http, &a, "user0").await;
    assert_eq!(me(&http, &b, &first.access_token).await, me_body("user0", Role::Admin, "node-b"));
    let r = get(&http, &b.at("/admin"), Some(&first.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // A refresh token from A rotates on B; B's successor works on A.
    let second = assert_token_response(&refresh(&http, &b, &first.refresh_token).await);
    assert_eq!(me(&http, &a, &second.access_token).await, me_body("user0", Role::Admin, "node-a"));

    // Logout on B revokes the family for A at once…
    let r = post_json(&http, &b.at("/logout"), &json!({"refresh_token": second.refresh_token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    refresh(&http, &a, &second.refresh_token).await.assert_invalid_grant();
    refresh(&http, &b, &second.refresh_token).await.assert_invalid_grant();

    // …but the access tokens issued before the logout stay valid on A (and B) until their
    // exp: nothing is consulted on /me. This is the JWT revocation gap the benchmark's
    // revocation experiment measures; session-server has no such window.
    let exp = claims(&first.access_token).exp;
    let now = auth_core::unix_millis() / 1000;
    assert!(exp > now + 200, "the token is far from its exp ({exp} vs {now}), so only revocation could stop it");
    assert_eq!(me(&http, &a, &first.access_token).await, me_body("user0", Role::Admin, "node-a"));
    assert_eq!(me(&http, &a, &second.access_token).await, me_body("user0", Role::Admin, "node-a"));
    let r = get(&http, &a.at("/admin"), Some(&first.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(me(&http, &b, &first.access_token).await, me_body("user0", Role::Admin, "node-b"));
}

#[tokio::test]
async fn memory_stores_share_access_tokens_but_not_refresh_tokens() {
    let keys = KeyDir::new(&[Alg::EdDsa]);
    let a = Store::Memory.start("mem-a", Alg::EdDsa, &keys, &[]).await;
    let b = Store::Memory.start("mem-b", Alg::EdDsa, &keys, &[]).await;
    let http = client();

    let t = login(&http, &a, "user1").await;
    assert_eq!(me(&http, &a, &t.access_token).await, me_body("user1", Role::User, "mem-a"));
    assert_eq!(me(&http, &b, &t.access_token).await, me_body("user1", Role::User, "mem-b"));
    // B never saw A's refresh token.
    refresh(&http, &b, &t.refresh_token).await.assert_invalid_grant();
    // That failure did not consume or revoke anything on A.
    let next = assert_token_response(&refresh(&http, &a, &t.refresh_token).await);
    // And logout on B cannot reach A's family.
    let r = post_json(&http, &b.at("/logout"), &json!({"refresh_token": next.refresh_token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_token_response(&refresh(&http, &a, &next.refresh_token).await);
}

// ---------------------------------------------------------------------------------------
// What Redis holds
// ---------------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn redis_holds_only_hashes_of_refresh_tokens_with_expiry() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let store = Store::redis();
    let Store::Redis(prefix) = &store else { unreachable!() };
    let server = store.start("keys-1", Alg::Hs256, &keys, &["--refresh-ttl", "1h"]).await;
    let http = client();
    let t = login(&http, &server, "user1").await;
    let family = claims(&t.access_token).sid;

    let raw = URL_SAFE_NO_PAD.decode(&t.refresh_token).unwrap();
    let sha = hex(digest::digest(&digest::SHA256, &raw).as_ref());
    let token_key = format!("{}rt:{sha}", prefix.prefix);
    let family_key = format!("{}fam:{family}", prefix.prefix);
    let mut found = prefix.keys();
    found.sort();
    let mut expected = vec![family_key.clone(), token_key.clone()];
    expected.sort();
    assert_eq!(found, expected);

    let mut conn = redis::Client::open(SHARED_REDIS).unwrap().get_connection().unwrap();
    let record: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(&token_key).query(&mut conn).unwrap();
    assert_eq!(record.get("fam"), Some(&family));
    assert_eq!(record.get("user").map(String::as_str), Some("user1"));
    assert_eq!(record.get("role").map(String::as_str), Some("user"));
    assert_eq!(record.get("used").map(String::as_str), Some("0"));
    assert!(record.values().all(|v| !v.contains(&t.refresh_token)), "the token itself is never stored: {record:?}");
    for key in [&token_key, &family_key] {
        let pttl: i64 = redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        assert!((3_500_000..=3_600_000).contains(&pttl), "{key} expires with the 1h refresh TTL: {pttl}");
    }

    // Rotation marks the old record used (kept for reuse detection) and adds the successor.
    let next = assert_token_response(&refresh(&http, &server, &t.refresh_token).await);
    let used: Option<String> = redis::cmd("HGET").arg(&token_key).arg("used").query(&mut conn).unwrap();
    assert_eq!(used.as_deref(), Some("1"));
    assert_eq!(prefix.keys().len(), 3);
    // Logout deletes the family key; the token records simply expire.
    let r = post_json(&http, &server.at("/logout"), &json!({"refresh_token": next.refresh_token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let exists: i64 = redis::cmd("EXISTS").arg(&family_key).query(&mut conn).unwrap();
    assert_eq!(exists, 0);
}

// ---------------------------------------------------------------------------------------
// Redis outage: fail closed, recover without restart
// ---------------------------------------------------------------------------------------

/// A store outage must answer 503 quickly: well past `--store-timeout 300ms` means a hang.
const FAIL_FAST: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn redis_outage_fails_closed_and_recovers_without_restart() {
    if RedisServer::skip_test() {
        return;
    }
    // Declared before the prefix, so the prefix is cleaned while this server still runs.
    let mut redis_server = RedisServer::start(free_port());
    let url = redis_server.url();
    let prefix = RedisPrefix::on(&url);
    let keys = KeyDir::new(&[Alg::Es256]);
    let flags =
        ["--refresh-store", "redis", "--redis-url", &url, "--redis-prefix", &prefix.prefix, "--store-timeout", "300ms"];
    let server = TestServer::start("outage-1", Alg::Es256, &keys, &flags).await;
    let http = client();

    let t = login(&http, &server, "user1").await;
    let t = assert_token_response(&refresh(&http, &server, &t.refresh_token).await);

    redis_server.kill();

    for round in 0..3 {
        let started = Instant::now();
        let r = refresh(&http, &server, &t.refresh_token).await;
        let took = started.elapsed();
        r.assert_store_unavailable();
        assert!(took < FAIL_FAST, "round {round}: /refresh took {took:?} to fail");

        let started = Instant::now();
        let r = try_login(&http, &server, "user1", DEMO_PASSWORD).await;
        let took = started.elapsed();
        r.assert_store_unavailable();
        assert!(took < FAIL_FAST, "round {round}: /login took {took:?} to fail");

        // Logout cannot revoke anything now; it must not claim it did.
        let r = Reply::read(http.post(server.at("/logout")).bearer_auth(&t.access_token).send().await.unwrap()).await;
        r.assert_store_unavailable();

        // Access tokens need no store: they keep working through the outage.
        assert_eq!(me(&http, &server, &t.access_token).await, me_body("user1", Role::User, "outage-1"));
        // Wrong passwords too: the failed-login counter lives in Redis, and a login that
        // cannot be counted is refused, never let through unthrottled (tests/throttle.rs).
        let started = Instant::now();
        try_login(&http, &server, "user1", "wrong").await.assert_store_unavailable();
        assert!(started.elapsed() < FAIL_FAST, "round {round}: wrong-password /login took {:?}", started.elapsed());
    }
    let metrics = get(&http, &server.at("/metrics"), None).await.body;
    assert!(metrics.contains("authbench_http_requests_total{route=\"/refresh\",status=\"503\"} 3\n"), "{metrics}");
    assert!(metrics.contains("authbench_http_requests_total{route=\"/login\",status=\"503\"} 6\n"), "{metrics}");
    assert!(!metrics.contains("authbench_store_errors_total{op=\"rotate\"} 0\n"), "{metrics}");

    // Same port, empty data: the running server reconnects by itself.
    redis_server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        let r = try_login(&http, &server, "user1", DEMO_PASSWORD).await;
        if r.status == StatusCode::OK {
            break assert_token_response(&r);
        }
        r.assert_store_unavailable();
        assert!(Instant::now() < deadline, "/login still fails 10 s after Redis came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_token_response(&refresh(&http, &server, &recovered.refresh_token).await);
    // The restarted Redis lost the old family: its token is unknown, never "valid".
    refresh(&http, &server, &t.refresh_token).await.assert_invalid_grant();
}

#[tokio::test]
async fn redis_that_stops_answering_fails_closed_within_the_store_timeout() {
    if RedisServer::skip_test() {
        return;
    }
    let redis_server = RedisServer::start(free_port());
    let url = redis_server.url();
    let prefix = RedisPrefix::on(&url);
    let keys = KeyDir::new(&[Alg::EdDsa]);
    let flags =
        ["--refresh-store", "redis", "--redis-url", &url, "--redis-prefix", &prefix.prefix, "--store-timeout", "300ms"];
    let server = TestServer::start("stall-1", Alg::EdDsa, &keys, &flags).await;
    let http = client();
    let t = login(&http, &server, "user2").await;

    // A frozen Redis keeps its connections open but never answers: only the timeout helps.
    redis_server.signal("STOP");
    let started = Instant::now();
    let r = refresh(&http, &server, &t.refresh_token).await;
    let took = started.elapsed();
    redis_server.signal("CONT");
    r.assert_store_unavailable();
    assert!(took >= Duration::from_millis(290), "answered in {took:?}, before the store timeout: not from the store?");
    assert!(took < FAIL_FAST, "/refresh took {took:?} with --store-timeout 300ms");
    assert_eq!(me(&http, &server, &t.access_token).await, me_body("user2", Role::User, "stall-1"));

    // Thawed, it serves again without a restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = try_login(&http, &server, "user2", DEMO_PASSWORD).await;
        if r.status == StatusCode::OK {
            assert_token_response(&r);
            break;
        }
        r.assert_store_unavailable();
        assert!(Instant::now() < deadline, "/login still fails 10 s after Redis resumed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Preloaded refresh-token families (authbench's live-sessions axis)
// ---------------------------------------------------------------------------------------

async fn preloaded_families_sit_beside_real_ones(store: Store) {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let server = store.start("preload-1", Alg::Hs256, &keys, &["--preload-refresh-families", "500"]).await;
    let http = client();
    // The server works as ever: login, refresh, logout, reuse detection.
    let t = login(&http, &server, "user2").await;
    let next = assert_token_response(&refresh(&http, &server, &t.refresh_token).await);
    refresh(&http, &server, &t.refresh_token).await.assert_invalid_grant();
    refresh(&http, &server, &next.refresh_token).await.assert_invalid_grant();
    if let Store::Redis(prefix) = &store {
        let families = prefix.keys().iter().filter(|k| k.starts_with(&format!("{}fam:", prefix.prefix))).count();
        assert_eq!(families, 500, "the 500 preloaded families are in Redis (the test's own was revoked)");
    }
    server.stop().await;
}

#[tokio::test]
async fn preloaded_families_sit_beside_real_ones_memory() {
    preloaded_families_sit_beside_real_ones(Store::Memory).await;
}

#[tokio::test]
async fn preloaded_families_sit_beside_real_ones_redis() {
    preloaded_families_sit_beside_real_ones(Store::redis()).await;
}

#[tokio::test]
async fn preloading_families_needs_demo_users() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let key_dir = keys.arg();
    let argv = ["jwt-server", "--key-dir", &key_dir, "--users-file", "/dev/null", "--preload-refresh-families", "3"];
    let cli = <jwt_server::config::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let err = jwt_server::config::build(&cli.args).await.expect_err("must not start");
    assert!(format!("{err:#}").contains("give --demo-users"), "{err:#}");
}
