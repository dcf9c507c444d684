//! `--revocation none|denylist|denylist-cached`: what a logout on one instance does to the
//! access token on the others, how long denylist entries live, and Redis outages (fail
//! closed, recover without a restart).
//!
//! The shared Redis at 127.0.0.1:6379 is only touched under a per-test key prefix; the
//! outage tests start and kill their own `redis-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use auth_core::{Role, wire::MeResponse};
use clap::Parser as _;
use common::*;
use jwt_server::keys::Alg;
use reqwest::StatusCode;
use serde_json::json;

fn me_body(user: &str, instance: &str) -> MeResponse {
    MeResponse { user: user.into(), role: Role::User, instance: instance.into() }
}

async fn logout_bearer(http: &reqwest::Client, s: &TestServer, access: &str) -> Reply {
    Reply::read(http.post(s.at("/logout")).bearer_auth(access).send().await.unwrap()).await
}

/// Flags for an instance on the shared Redis under `prefix`, in revocation `mode`.
fn flags<'a>(prefix: &'a RedisPrefix, mode: &'a str) -> Vec<&'a str> {
    vec![
        "--refresh-store",
        "redis",
        "--redis-url",
        SHARED_REDIS,
        "--redis-prefix",
        &prefix.prefix,
        "--revocation",
        mode,
    ]
}

fn pttl(prefix: &RedisPrefix, key: &str) -> i64 {
    let mut conn = redis::Client::open(SHARED_REDIS).unwrap().get_connection().unwrap();
    let key = format!("{}{key}", prefix.prefix);
    redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap()
}

/// Log in on A and check the token on A and B. Returns the token and a control token of
/// another user (never logged out).
async fn login_and_check(http: &reqwest::Client, a: &TestServer, b: &TestServer) -> (String, String) {
    let t = login(http, a, "user1").await;
    let control = login(http, a, "user2").await;
    assert_eq!(me(http, a, &t.access_token).await, me_body("user1", "A"));
    assert_eq!(me(http, b, &t.access_token).await, me_body("user1", "B"));
    (t.access_token, control.access_token)
}

/// [`login_and_check`], then log out on B with the bearer token.
async fn login_check_logout(http: &reqwest::Client, a: &TestServer, b: &TestServer) -> (String, String) {
    let (revoked, control) = login_and_check(http, a, b).await;
    let r = logout_bearer(http, b, &revoked).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    (revoked, control)
}

#[tokio::test]
async fn none_leaves_the_access_token_valid_after_logout() {
    let prefix = RedisPrefix::new();
    let keys = KeyDir::new(&[Alg::Hs256]);
    let a = TestServer::start("A", Alg::Hs256, &keys, &flags(&prefix, "none")).await;
    let b = TestServer::start("B", Alg::Hs256, &keys, &flags(&prefix, "none")).await;
    let http = client();
    let (revoked, _) = login_check_logout(&http, &a, &b).await;
    // The documented window: the token lives until `exp` on every instance.
    assert_eq!(me(&http, &a, &revoked).await, me_body("user1", "A"));
    assert_eq!(me(&http, &b, &revoked).await, me_body("user1", "B"));
    assert!(prefix.keys().iter().all(|k| !k.contains("deny")), "{:?}", prefix.keys());
}

#[tokio::test]
async fn denylist_rejects_the_token_at_once_on_every_instance() {
    let prefix = RedisPrefix::new();
    let keys = KeyDir::new(&[Alg::Hs256]);
    let a = TestServer::start("A", Alg::Hs256, &keys, &flags(&prefix, "denylist")).await;
    let b = TestServer::start("B", Alg::Hs256, &keys, &flags(&prefix, "denylist")).await;
    let http = client();
    let (revoked, control) = login_check_logout(&http, &a, &b).await;
    get(&http, &a.at("/me"), Some(&revoked)).await.assert_invalid_token();
    get(&http, &b.at("/me"), Some(&revoked)).await.assert_invalid_token();
    // Positive control: another user's token is not affected.
    assert_eq!(me(&http, &a, &control).await, me_body("user2", "A"));
    assert_eq!(me(&http, &b, &control).await, me_body("user2", "B"));
    let jti = claims(&revoked).jti;
    assert!(pttl(&prefix, &format!("deny:{jti}")) > 0);
    // One round trip per request, timed as a store get.
    let metrics = get(&http, &a.at("/metrics"), None).await.body;
    assert!(metrics.contains("authbench_store_errors_total{op=\"get\"} 0\n"), "{metrics}");
}

#[tokio::test]
async fn denylist_cached_rejects_the_token_within_pubsub_delivery() {
    let prefix = RedisPrefix::new();
    let keys = KeyDir::new(&[Alg::Hs256]);
    let a = TestServer::start("A", Alg::Hs256, &keys, &flags(&prefix, "denylist-cached")).await;
    let b = TestServer::start("B", Alg::Hs256, &keys, &flags(&prefix, "denylist-cached")).await;
    let http = client();
    let (revoked, control) = login_check_logout(&http, &a, &b).await;
    let logged_out = Instant::now();
    // B denied it locally before answering.
    get(&http, &b.at("/me"), Some(&revoked)).await.assert_invalid_token();
    let deadline = logged_out + Duration::from_secs(2);
    let delay = loop {
        let r = get(&http, &a.at("/me"), Some(&revoked)).await;
        if r.status == StatusCode::UNAUTHORIZED {
            r.assert_invalid_token();
            break logged_out.elapsed();
        }
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert!(Instant::now() < deadline, "A still accepts the token 2 s after logout on B");
    };
    println!("denylist-cached: revocation reached instance A {delay:?} after logout on B");
    assert_eq!(me(&http, &a, &control).await, me_body("user2", "A"));

    // An instance started after the logout loads the denylist from Redis.
    let c = TestServer::start("C", Alg::Hs256, &keys, &flags(&prefix, "denylist-cached")).await;
    get(&http, &c.at("/me"), Some(&revoked)).await.assert_invalid_token();
    assert_eq!(me(&http, &c, &control).await, me_body("user2", "C"));
}

#[tokio::test]
async fn denylist_entries_expire_with_the_token() {
    let prefix = RedisPrefix::new();
    let keys = KeyDir::new(&[Alg::Hs256]);
    let mut f = flags(&prefix, "denylist");
    f.extend_from_slice(&["--access-ttl", "2s", "--leeway", "0s"]);
    let a = TestServer::start("A", Alg::Hs256, &keys, &f).await;
    let http = client();

    // Bearer logout: the token's jti, until its exp.
    let t = login(&http, &a, "user1").await;
    assert_eq!(logout_bearer(&http, &a, &t.access_token).await.status, StatusCode::NO_CONTENT);
    let ttl = pttl(&prefix, &format!("deny:{}", claims(&t.access_token).jti));
    assert!(ttl > 0 && ttl <= 2000, "deny key PTTL {ttl} ms");
    get(&http, &a.at("/me"), Some(&t.access_token)).await.assert_invalid_token();

    // Logout by refresh token alone: the whole family (sid), until now + access-ttl.
    let t = login(&http, &a, "user3").await;
    let control = login(&http, &a, "user4").await;
    let r = post_json(&http, &a.at("/logout"), &json!({ "refresh_token": t.refresh_token })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let sid = claims(&t.access_token).sid;
    let ttl = pttl(&prefix, &format!("deny-sid:{sid}"));
    assert!(ttl > 0 && ttl <= 2000, "deny-sid key PTTL {ttl} ms");
    assert_eq!(pttl(&prefix, &format!("deny:{}", claims(&t.access_token).jti)), -2, "no jti key without a bearer");
    get(&http, &a.at("/me"), Some(&t.access_token)).await.assert_invalid_token();
    assert_eq!(me(&http, &a, &control.access_token).await, me_body("user4", "A"));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(prefix.keys().iter().all(|k| !k.contains("deny")), "{:?}", prefix.keys());
}

#[tokio::test]
async fn revocation_without_reachable_redis_is_a_startup_error() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let url = format!("redis://127.0.0.1:{}", free_port());
    for mode in ["denylist", "denylist-cached"] {
        let argv =
            ["jwt-server", "--demo-users", "1", "--key-dir", &keys.arg(), "--revocation", mode, "--redis-url", &url];
        let cli = jwt_server::config::Cli::try_parse_from(argv).unwrap();
        let err = jwt_server::config::build(&cli.args).await.expect_err("build must fail");
        let text = format!("{err:#}");
        assert!(text.contains("--revocation denylist and denylist-cached need a reachable Redis"), "{text}");
    }
    // Positive control: `none` needs no Redis.
    let argv =
        ["jwt-server", "--demo-users", "1", "--key-dir", &keys.arg(), "--revocation", "none", "--redis-url", &url];
    let cli = jwt_server::config::Cli::try_parse_from(argv).unwrap();
    assert!(jwt_server::config::build(&cli.args).await.is_ok());
}

/// Start an instance on a test-owned redis-server in `mode`, log in and check the token.
async fn outage_setup(
    mode: &str,
    redis_server: &RedisServer,
    prefix: &RedisPrefix,
    keys: &KeyDir,
) -> (TestServer, String) {
    let url = redis_server.url();
    let f = [
        "--refresh-store",
        "redis",
        "--redis-url",
        &url,
        "--redis-prefix",
        &prefix.prefix,
        "--store-timeout",
        "300ms",
        "--revocation",
        mode,
    ];
    let server = TestServer::start("A", Alg::Hs256, keys, &f).await;
    let http = client();
    let t = login(&http, &server, "user1").await;
    assert_eq!(me(&http, &server, &t.access_token).await, me_body("user1", "A"));
    (server, t.access_token)
}

/// Poll `/me` until it answers 200 again (every failure meanwhile must be the 503).
async fn wait_for_recovery(http: &reqwest::Client, server: &TestServer, access: &str) -> Duration {
    let started = Instant::now();
    loop {
        let r = get(http, &server.at("/me"), Some(access)).await;
        if r.status == StatusCode::OK {
            return started.elapsed();
        }
        r.assert_store_unavailable();
        assert!(started.elapsed() < Duration::from_secs(10), "/me still fails 10 s after Redis came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn denylist_outage_fails_closed_and_recovers() {
    if RedisServer::skip_test() {
        return;
    }
    let mut redis_server = RedisServer::start(free_port());
    let prefix = RedisPrefix::on(&redis_server.url());
    let keys = KeyDir::new(&[Alg::Hs256]);
    let (server, access) = outage_setup("denylist", &redis_server, &prefix, &keys).await;
    let http = client();

    redis_server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        get(&http, &server.at("/me"), Some(&access)).await.assert_store_unavailable();
        assert!(started.elapsed() < Duration::from_secs(1), "/me took {:?} to fail", started.elapsed());
    }
    logout_bearer(&http, &server, &access).await.assert_store_unavailable();
    // Still 401 for a bad token: the signature is checked before the store.
    get(&http, &server.at("/me"), Some("not-a-token")).await.assert_invalid_token();

    redis_server.restart();
    let took = wait_for_recovery(&http, &server, &access).await;
    println!("denylist: /me recovered {took:?} after Redis restarted");
    assert_eq!(me(&http, &server, &access).await, me_body("user1", "A"));
}

#[tokio::test]
async fn denylist_cached_fails_closed_while_the_subscription_is_down() {
    if RedisServer::skip_test() {
        return;
    }
    let mut redis_server = RedisServer::start(free_port());
    let prefix = RedisPrefix::on(&redis_server.url());
    let keys = KeyDir::new(&[Alg::Hs256]);
    let (server, access) = outage_setup("denylist-cached", &redis_server, &prefix, &keys).await;
    let http = client();
    // Positive control: a healthy subscription survives its keep-alive pings (every 1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(me(&http, &server, &access).await, me_body("user1", "A"));

    redis_server.kill();
    // The closed subscription is noticed at once, or by the next ping (every second).
    let started = Instant::now();
    loop {
        let r = get(&http, &server.at("/me"), Some(&access)).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            r.assert_store_unavailable();
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "/me still 200 3 s into the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("denylist-cached: outage noticed after {:?}", started.elapsed());
    logout_bearer(&http, &server, &access).await.assert_store_unavailable();

    redis_server.restart();
    let took = wait_for_recovery(&http, &server, &access).await;
    println!("denylist-cached: /me recovered {took:?} after Redis restarted");
    // After the re-sync denials work again. (The refresh store's own connection may
    // come back a little later than the subscription: wait for /login.)
    let t = loop {
        let r = try_login(&http, &server, "user2", DEMO_PASSWORD).await;
        if r.status == StatusCode::OK {
            break assert_token_response(&r);
        }
        r.assert_store_unavailable();
        assert!(started.elapsed() < Duration::from_secs(15), "/login still fails after Redis came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(logout_bearer(&http, &server, &t.access_token).await.status, StatusCode::NO_CONTENT);
    get(&http, &server.at("/me"), Some(&t.access_token)).await.assert_invalid_token();
}

#[tokio::test]
async fn denylist_cached_resyncs_denials_missed_while_unsubscribed() {
    if RedisServer::skip_test() {
        return;
    }
    let redis_server = RedisServer::start(free_port());
    let url = redis_server.url();
    let prefix = RedisPrefix::on(&url);
    let keys = KeyDir::new(&[Alg::Hs256]);
    let f = [
        "--refresh-store",
        "redis",
        "--redis-url",
        &url,
        "--redis-prefix",
        &prefix.prefix,
        "--revocation",
        "denylist-cached",
    ];
    let a = TestServer::start("A", Alg::Hs256, &keys, &f).await;
    let b = TestServer::start("B", Alg::Hs256, &keys, &f).await;
    let http = client();
    let (revoked, control) = login_and_check(&http, &a, &b).await;

    // Drop every subscription (this Redis is the test's own), then deny at once: the
    // message is published while A is not listening, so only the re-sync can bring it.
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut conn).unwrap();
    assert!(killed >= 2, "killed {killed} pub/sub connections");
    let r = logout_bearer(&http, &b, &revoked).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let logged_out = Instant::now();
    let delay = loop {
        let r = get(&http, &a.at("/me"), Some(&revoked)).await;
        if r.status == StatusCode::UNAUTHORIZED {
            r.assert_invalid_token();
            break logged_out.elapsed();
        }
        assert!(r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
        assert!(logged_out.elapsed() < Duration::from_secs(2), "A still accepts the token 2 s after logout");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!("denylist-cached: a denial missed during a lost subscription reached A {delay:?} after logout");
    assert_eq!(me(&http, &a, &control).await, me_body("user2", "A"));
}

#[test]
fn revocation_flag_defaults_to_none_and_takes_the_three_modes() {
    use clap::{CommandFactory as _, ValueEnum as _};
    use jwt_server::{config::Cli, revocation::RevocationMode};
    // The default as the parser declares it: parsing an empty command line would take an
    // AUTHBENCH_REVOCATION from the environment instead, and skipping the check whenever
    // one is set would let the test pass without checking the default at all.
    let cli = Cli::command();
    let arg = cli.get_arguments().find(|a| a.get_id() == "revocation").expect("a --revocation flag");
    let defaults: Vec<_> = arg.get_default_values().iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(defaults, ["none"]);
    assert_eq!(RevocationMode::from_str(defaults[0], false), Ok(RevocationMode::None));
    for (flag, mode) in [
        ("none", RevocationMode::None),
        ("denylist", RevocationMode::Denylist),
        ("denylist-cached", RevocationMode::DenylistCached),
    ] {
        assert_eq!(Cli::try_parse_from(["jwt-server", "--revocation", flag]).unwrap().args.revocation, mode);
    }
    assert!(Cli::try_parse_from(["jwt-server", "--revocation", "cached"]).is_err());
}
