//! Login brute-force throttling over real HTTP, on both session stores: the attempt after
//! the limit is 429 with `Retry-After` (even with the right password), a success before
//! the limit resets the count, unknown users are throttled like known ones, other accounts
//! are unaffected, the lock ends with its window, parallel guesses cannot pass the limit,
//! and with Redis the count is shared by every instance and a Redis outage fails closed.
//!
//! The shared Redis at 127.0.0.1:6379 is only touched under a per-test key prefix; the
//! outage tests start and kill their own `redis-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use auth_core::{
    ApiError,
    throttle::{LoginThrottle, MAX_KEY_NAME_BYTES, ThrottleConfig},
};
use common::*;

async fn attempt(http: &reqwest::Client, server: &TestServer, user: &str, password: &str) -> Reply {
    post_json(http, &server.at("/login"), &credentials(user, password), None).await
}

#[track_caller]
fn assert_rejected(r: &Reply) {
    r.assert_error(401, "invalid_credentials");
    assert_eq!(r.header("set-cookie"), None, "{r:?}");
}

/// The throttle's answer, and no cookie with it.
#[track_caller]
fn assert_throttled(r: &Reply, window_secs: u64) -> u64 {
    assert_eq!(r.header("set-cookie"), None, "{r:?}");
    r.assert_throttled(window_secs)
}

// ---------------------------------------------------------------------------------------
// The limit, with the default flags (5 attempts per 15 minutes)
// ---------------------------------------------------------------------------------------

async fn after_the_limit_even_the_right_password_is_throttled(store: Store) {
    let server = store.start("t-1", &[]).await;
    let http = client();
    for _ in 0..5 {
        assert_rejected(&attempt(&http, &server, "user1", "wrong").await);
    }
    let retry = assert_throttled(&attempt(&http, &server, "user1", DEMO_PASSWORD).await, DEFAULT_WINDOW_SECS);
    assert!(retry > DEFAULT_WINDOW_SECS - 60, "the window opened moments ago: Retry-After {retry}");
    assert_throttled(&attempt(&http, &server, "user1", "wrong").await, DEFAULT_WINDOW_SECS);
    // Another account, on the same server at the same time, is unaffected.
    login(&http, &server, "user2", None).await;
    // So is everything that is not a login.
    let id = login(&http, &server, "user3", None).await;
    expect_me(&me(&http, &server, &id).await, "user3", "user", "t-1");
}

#[tokio::test]
async fn after_the_limit_even_the_right_password_is_throttled_memory() {
    after_the_limit_even_the_right_password_is_throttled(Store::Memory).await;
}

#[tokio::test]
async fn after_the_limit_even_the_right_password_is_throttled_redis() {
    after_the_limit_even_the_right_password_is_throttled(Store::redis()).await;
}

#[tokio::test]
async fn after_the_limit_even_the_right_password_is_throttled_postgres() {
    after_the_limit_even_the_right_password_is_throttled(Store::postgres()).await;
}

async fn a_success_before_the_limit_resets_the_count(store: Store) {
    let server = store.start("t-1", &[]).await;
    let http = client();
    for _ in 0..4 {
        assert_rejected(&attempt(&http, &server, "user4", "wrong").await);
    }
    // Positive control: the right password within the limit logs in...
    login(&http, &server, "user4", None).await;
    // ...and starts the count again: five more failures are checked, the sixth is not.
    for _ in 0..5 {
        assert_rejected(&attempt(&http, &server, "user4", "wrong").await);
    }
    assert_throttled(&attempt(&http, &server, "user4", DEMO_PASSWORD).await, DEFAULT_WINDOW_SECS);
}

#[tokio::test]
async fn a_success_before_the_limit_resets_the_count_memory() {
    a_success_before_the_limit_resets_the_count(Store::Memory).await;
}

#[tokio::test]
async fn a_success_before_the_limit_resets_the_count_redis() {
    a_success_before_the_limit_resets_the_count(Store::redis()).await;
}

#[tokio::test]
async fn a_success_before_the_limit_resets_the_count_postgres() {
    a_success_before_the_limit_resets_the_count(Store::postgres()).await;
}

async fn unknown_users_are_throttled_like_known_ones(store: Store) {
    let server = store.start("t-1", &[]).await;
    let http = client();
    let mut seen = Vec::new();
    for user in ["user5", "nobody"] {
        let mut replies = Vec::new();
        for password in ["wrong", "wrong", "wrong", "wrong", "wrong", DEMO_PASSWORD, "wrong"] {
            let r = attempt(&http, &server, user, password).await;
            replies.push((
                r.status,
                r.body.clone(),
                r.header("retry-after").is_some(),
                r.header("set-cookie").is_some(),
            ));
        }
        seen.push(replies);
    }
    assert_eq!(seen[0], seen[1], "a known and an unknown user answer alike");
    let statuses: Vec<u16> = seen[0].iter().map(|r| r.0.as_u16()).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    assert_eq!(seen[0][5].1, TOO_MANY);
    // Usernames are counted exactly as sent: a near miss of a real name is its own account.
    login(&http, &server, "user6", None).await;
    let r = attempt(&http, &server, "User5", DEMO_PASSWORD).await;
    assert_rejected(&r);
}

#[tokio::test]
async fn unknown_users_are_throttled_like_known_ones_memory() {
    unknown_users_are_throttled_like_known_ones(Store::Memory).await;
}

#[tokio::test]
async fn unknown_users_are_throttled_like_known_ones_redis() {
    unknown_users_are_throttled_like_known_ones(Store::redis()).await;
}

#[tokio::test]
async fn unknown_users_are_throttled_like_known_ones_postgres() {
    unknown_users_are_throttled_like_known_ones(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// The lock cannot last: it ends with its window
// ---------------------------------------------------------------------------------------

async fn the_lock_ends_with_its_window(store: Store) {
    // Memory: the window runs on the test's clock, advanced below; Redis times it with a
    // TTL on real time, so that variant really waits.
    let flags = ["--login-max-failures", "2", "--login-failure-window", "1s"];
    let (server, clock) = store.start_for_expiry("t-1", &flags).await;
    let http = client();
    let opened = clock.now();
    assert_rejected(&attempt(&http, &server, "user7", "wrong").await);
    assert_rejected(&attempt(&http, &server, "user7", "wrong").await);
    // Refused attempts during the window do not extend it.
    for _ in 0..3 {
        assert_eq!(assert_throttled(&attempt(&http, &server, "user7", DEMO_PASSWORD).await, 1), 1);
        pass(&clock, Duration::from_millis(200)).await;
    }
    pass(&clock, Duration::from_millis(1150).saturating_sub(clock.now() - opened)).await;
    login(&http, &server, "user7", None).await;
}

#[tokio::test]
async fn the_lock_ends_with_its_window_memory() {
    the_lock_ends_with_its_window(Store::Memory).await;
}

#[tokio::test]
async fn the_lock_ends_with_its_window_redis() {
    the_lock_ends_with_its_window(Store::redis()).await;
}

#[tokio::test]
async fn the_lock_ends_with_its_window_postgres() {
    the_lock_ends_with_its_window(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// Parallel guessing
// ---------------------------------------------------------------------------------------

const GUESSES: usize = 12;

async fn parallel_guesses_cannot_pass_the_limit(store: Store) {
    let server = store.start("t-1", &[]).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (url, barrier) = (server.at("/login"), barrier.clone());
            tokio::spawn(async move {
                let http = client();
                barrier.wait().await;
                post_json(&http, &url, &credentials("user8", &format!("guess-{i}")), None).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        match r.status.as_u16() {
            401 => assert_rejected(&r),
            _ => {
                assert_throttled(&r, DEFAULT_WINDOW_SECS);
            }
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 5, "exactly the limit was checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), GUESSES - 5, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_cannot_pass_the_limit_memory() {
    parallel_guesses_cannot_pass_the_limit(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_cannot_pass_the_limit_redis() {
    parallel_guesses_cannot_pass_the_limit(Store::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_cannot_pass_the_limit_postgres() {
    parallel_guesses_cannot_pass_the_limit(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// Several instances
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn with_redis_failures_on_one_instance_count_on_another() {
    let store = Store::redis();
    let Store::Redis(prefix) = &store else { unreachable!() };
    let a = store.start("t-a", &[]).await;
    let b = store.start("t-b", &[]).await;
    let http = client();
    for server in [&a, &b, &a, &b, &a] {
        assert_rejected(&attempt(&http, server, "user9", "wrong").await);
    }
    let key = format!("{}login-fail:user9", prefix.prefix);
    assert!(prefix.keys().contains(&key), "{:?}", prefix.keys());
    let pttl = prefix.pttl(&key);
    assert!(pttl > 0 && pttl <= 900_000, "the counter expires with its window: PTTL {pttl}");
    assert_throttled(&attempt(&http, &b, "user9", DEMO_PASSWORD).await, DEFAULT_WINDOW_SECS);
    assert_throttled(&attempt(&http, &a, "user9", DEMO_PASSWORD).await, DEFAULT_WINDOW_SECS);

    // A success on one instance resets the count for all of them.
    for _ in 0..4 {
        assert_rejected(&attempt(&http, &a, "user11", "wrong").await);
    }
    login(&http, &b, "user11", None).await;
    assert!(!prefix.keys().contains(&format!("{}login-fail:user11", prefix.prefix)));
    for _ in 0..5 {
        assert_rejected(&attempt(&http, &a, "user11", "wrong").await);
    }
    assert_throttled(&attempt(&http, &b, "user11", "wrong").await, DEFAULT_WINDOW_SECS);

    // However long the submitted name, its key is bounded.
    let long = "n".repeat(4_000);
    assert_rejected(&attempt(&http, &a, &long, "wrong").await);
    let bounded = format!("{}login-fail:{}", prefix.prefix, &long[..MAX_KEY_NAME_BYTES]);
    assert!(prefix.keys().contains(&bounded), "{:?}", prefix.keys());
}

#[tokio::test]
async fn with_memory_each_instance_counts_on_its_own() {
    let a = Store::Memory.start("t-a", &[]).await;
    let b = Store::Memory.start("t-b", &[]).await;
    let http = client();
    for _ in 0..5 {
        assert_rejected(&attempt(&http, &a, "user12", "wrong").await);
    }
    assert_throttled(&attempt(&http, &a, "user12", DEMO_PASSWORD).await, DEFAULT_WINDOW_SECS);
    login(&http, &b, "user12", None).await;
}

// ---------------------------------------------------------------------------------------
// Redis outage: fail closed, recover without a restart
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_redis_counter_fails_closed_and_recovers() {
    if RedisServer::skip_test() {
        return;
    }
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let config = ThrottleConfig { max_failures: 1, window: Duration::from_secs(60) };
    let throttle =
        LoginThrottle::redis(&redis.url(), "authbench-test:", Duration::from_millis(300), config).await.unwrap();
    assert!(throttle.attempt("user1").await.is_ok());
    assert!(matches!(throttle.attempt("user1").await, Err(ApiError::TooManyRequests { .. })));

    redis.kill();
    for name in ["user1", "user2"] {
        let started = Instant::now();
        let r = throttle.attempt(name).await;
        assert!(matches!(r, Err(ApiError::StoreUnavailable)), "{name}: {r:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    }
    assert!(matches!(throttle.succeeded("user1").await, Err(ApiError::StoreUnavailable)));

    // A new, empty Redis on the same port: the same handle counts again.
    let _redis = RedisServer::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match throttle.attempt("user3").await {
            Ok(()) => break,
            Err(ApiError::StoreUnavailable) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("after Redis came back: {other:?}"),
        }
    }
    assert!(matches!(throttle.attempt("user3").await, Err(ApiError::TooManyRequests { .. })));
}

#[tokio::test]
async fn login_answers_503_while_redis_is_down_and_recovers() {
    if RedisServer::skip_test() {
        return;
    }
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let url = redis.url();
    let flags = ["--store", "redis", "--redis-url", &url, "--store-timeout", "300ms"];
    let server = TestServer::start("t-1", &flags).await;
    let http = client();
    assert_rejected(&attempt(&http, &server, "user1", "wrong").await);

    redis.kill();
    for password in ["wrong", DEMO_PASSWORD] {
        let started = Instant::now();
        let r = attempt(&http, &server, "user1", password).await;
        r.assert_error(503, "store_unavailable");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    }

    let _redis = RedisServer::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = attempt(&http, &server, "user1", DEMO_PASSWORD).await;
        if r.status.as_u16() == 200 {
            expect_login(&r, "user1", "user");
            break;
        }
        r.assert_error(503, "store_unavailable");
        assert!(Instant::now() < deadline, "login did not recover within 10 s of Redis coming back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
