//! The HTTP contract of session-server (docs/http-api.md), over real HTTP on 127.0.0.1 with the
//! real Redis on 127.0.0.1:6379 and, for the outage test, a `redis-server` the test owns.
//!
//! Each test starts its own in-process instances and uses its own Redis key prefix, so the
//! tests run in parallel and never touch each other's (or anyone else's) data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{StatusCode, header};
use session_server::id::SessionId;

/// A syntactically valid session ID that no server ever issued.
fn unknown_id() -> String {
    SessionId::generate().encode()
}

// ---------------------------------------------------------------------------------------
// login → me → admin → logout
// ---------------------------------------------------------------------------------------

async fn session_lifecycle(store: Store) {
    let server = store.start("life-1", &[]).await;
    let http = client();

    // Admin: login, /me, /admin.
    let admin = post_json(&http, &server.at("/login"), &credentials("user0", DEMO_PASSWORD), None).await;
    assert_eq!(admin.header("cache-control"), Some("no-store"));
    assert_eq!(admin.header("content-type"), Some("application/json"));
    let admin_id = expect_login(&admin, "user0", "admin");
    assert_eq!(admin.set_cookie(), format!("__Host-sid={admin_id}; Path=/; HttpOnly; Secure; SameSite=Lax"));

    let me_reply = me(&http, &server, &admin_id).await;
    expect_me(&me_reply, "user0", "admin", "life-1");
    assert_eq!(me_reply.header("cache-control"), Some("no-store"));
    assert_eq!(me_reply.header("content-type"), Some("application/json"));
    assert!(me_reply.headers.get(header::SET_COOKIE).is_none(), "/me must not touch the cookie");

    let admin_reply = get(&http, &server.at("/admin"), Some(&cookie(&admin_id))).await;
    expect_me(&admin_reply, "user0", "admin", "life-1");
    assert_eq!(admin_reply.header("cache-control"), Some("no-store"));

    // Plain user: /me works, /admin is 403 (authenticated, wrong role).
    let user_id = login(&http, &server, "user1", None).await;
    expect_me(&me(&http, &server, &user_id).await, "user1", "user", "life-1");
    get(&http, &server.at("/admin"), Some(&cookie(&user_id))).await.assert_error(403, "forbidden");

    // Every login gets a new ID, and the earlier sessions of the same user stay valid.
    let second = login(&http, &server, "user1", None).await;
    let third = login(&http, &server, "user1", None).await;
    assert_ne!(second, user_id);
    assert_ne!(third, second);
    assert_ne!(third, user_id);
    for id in [&user_id, &second, &third] {
        expect_me(&me(&http, &server, id).await, "user1", "user", "life-1");
    }

    if let Store::Redis(prefix) = &store {
        let mut keys = prefix.keys();
        keys.sort();
        let mut expected: Vec<String> =
            [&admin_id, &user_id, &second, &third].iter().map(|id| format!("{}s:{id}", prefix.prefix)).collect();
        expected.sort();
        assert_eq!(keys, expected, "one Redis key per session, under the prefix");
        // Default idle timeout 30 min: the key expires by itself.
        let ttl = prefix.pttl(&format!("{}s:{user_id}", prefix.prefix));
        assert!((29 * 60_000..=30 * 60_000).contains(&ttl), "PTTL {ttl}");
    }
    if let Store::Postgres(pg) = &store {
        assert_eq!(pg.session_rows(), 4, "one row per session");
        // Default idle timeout 30 min, counted from the last use on the database's clock.
        let left: f64 = pg
            .psql(&format!(
                "SELECT extract(epoch FROM min(expires_at) - now()) FROM {}.sessions WHERE username = 'user1'",
                pg.schema
            ))
            .parse()
            .unwrap();
        assert!((29.0 * 60.0..=30.0 * 60.0).contains(&left), "expires in {left} s");
    }

    // Logout: 204, the cookie is cleared, the session is gone server-side.
    let out = post_empty(&http, &server.at("/logout"), Some(&cookie(&user_id))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(out.body, "");
    assert_eq!(out.set_cookie(), "__Host-sid=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
    assert_eq!(out.header("cache-control"), Some("no-store"));
    me(&http, &server, &user_id).await.assert_error(401, "unauthenticated");
    get(&http, &server.at("/admin"), Some(&cookie(&user_id))).await.assert_error(401, "unauthenticated");
    // Only that session ended.
    expect_me(&me(&http, &server, &second).await, "user1", "user", "life-1");
    expect_me(&me(&http, &server, &admin_id).await, "user0", "admin", "life-1");

    if let Store::Redis(prefix) = &store {
        assert!(!prefix.keys().contains(&format!("{}s:{user_id}", prefix.prefix)), "logout deletes the key");
        assert_eq!(prefix.keys().len(), 3);
    }
    if let Store::Postgres(pg) = &store {
        assert_eq!(pg.session_rows(), 3, "logout deletes the row");
    }

    // Logging out again (well-formed, now unknown ID) is idempotent.
    let again = post_empty(&http, &server.at("/logout"), Some(&cookie(&user_id))).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(again.set_cookie(), "__Host-sid=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0");

    server.stop().await;
}

#[tokio::test]
async fn session_lifecycle_memory() {
    session_lifecycle(Store::Memory).await;
}

#[tokio::test]
async fn session_lifecycle_redis() {
    session_lifecycle(Store::redis()).await;
}

#[tokio::test]
async fn session_lifecycle_postgres() {
    session_lifecycle(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// requests without a valid session
// ---------------------------------------------------------------------------------------

async fn unauthenticated(store: Store) {
    let server = store.start("unauth-1", &[]).await;
    let http = client();
    let valid = login(&http, &server, "user0", None).await;
    let unknown = cookie(&unknown_id());

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no cookie", None),
        ("other cookies only", Some("theme=dark; lang=en".into())),
        ("garbage", Some("__Host-sid=garbage".into())),
        ("empty value", Some("__Host-sid=".into())),
        ("44 characters", Some(format!("__Host-sid={valid}A"))),
        ("42 characters", Some(format!("__Host-sid={}", &valid[..42]))),
        ("not base64url", Some(format!("__Host-sid={}+", &valid[..42]))),
        ("unknown but well-formed", Some(unknown.clone())),
        ("wrong cookie name", Some(format!("sid={valid}"))),
        // Two session cookies are ambiguous, even when one of them is valid.
        ("duplicated", Some(format!("{}; {}", cookie(&valid), unknown))),
    ];
    for (what, c) in &cases {
        for path in ["/me", "/admin"] {
            let r = get(&http, &server.at(path), c.as_deref()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} with {what}: {}", r.body);
            r.assert_error(401, "unauthenticated");
            assert_eq!(r.header("cache-control"), Some("no-store"), "{path} with {what}");
            assert!(r.headers.get(header::SET_COOKIE).is_none(), "{path} with {what}");
            assert!(r.headers.get(header::WWW_AUTHENTICATE).is_none(), "{path} with {what}: no Bearer challenge");
        }
    }

    // Among other cookies, a valid session is found.
    let mixed = format!("theme=dark; {}; lang=en", cookie(&valid));
    expect_me(&get(&http, &server.at("/me"), Some(&mixed)).await, "user0", "admin", "unauth-1");

    // Logout without any session cookie, or with a malformed one, is 401.
    post_empty(&http, &server.at("/logout"), None).await.assert_error(401, "unauthenticated");
    post_empty(&http, &server.at("/logout"), Some("__Host-sid=garbage")).await.assert_error(401, "unauthenticated");
    // A failed logout must not have ended the valid session.
    expect_me(&me(&http, &server, &valid).await, "user0", "admin", "unauth-1");
}

#[tokio::test]
async fn unauthenticated_requests_memory() {
    unauthenticated(Store::Memory).await;
}

#[tokio::test]
async fn unauthenticated_requests_redis() {
    unauthenticated(Store::redis()).await;
}

#[tokio::test]
async fn unauthenticated_requests_postgres() {
    unauthenticated(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// login input validation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_rejects_bad_credentials_and_bad_bodies() {
    let server = TestServer::start("login-1", &["--store", "memory"]).await;
    let http = client();
    let url = server.at("/login");

    // Wrong password and unknown user: same status, same headers that matter, same body.
    let wrong = post_json(&http, &url, &credentials("user1", "not-the-password"), None).await;
    let unknown = post_json(&http, &url, &credentials("nobody", DEMO_PASSWORD), None).await;
    let empty = post_json(&http, &url, &credentials("", ""), None).await;
    for r in [&wrong, &unknown, &empty] {
        r.assert_error(401, "invalid_credentials");
        assert!(r.headers.get(header::SET_COOKIE).is_none(), "{r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, r#"{"error":"invalid_credentials"}"#);
    // Case matters in both user names and passwords.
    post_json(&http, &url, &credentials("User1", DEMO_PASSWORD), None).await.assert_error(401, "invalid_credentials");
    post_json(&http, &url, &credentials("user1", "Demo-password"), None).await.assert_error(401, "invalid_credentials");

    // 400: not JSON at all, truncated JSON, empty body.
    for body in ["{", "username=user1&password=demo-password", r#"{"username":"user1","password":"demo-password""#, ""]
    {
        let r = post_json(&http, &url, body, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "body {body:?}: {}", r.body);
        r.assert_error(400, "malformed_json");
    }

    // 415: not declared as JSON (even though it is).
    let good = credentials("user1", DEMO_PASSWORD);
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut req = http.post(&url).body(good.clone());
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let r = Reply::read(req.send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {}", r.body);
        r.assert_error(415, "unsupported_media_type");
    }
    // `application/json; charset=utf-8` is JSON.
    let r = Reply::read(
        http.post(&url)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(good.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect_login(&r, "user1", "user");

    // 422: valid JSON, wrong shape.
    for body in [
        r#"{"username":"user1"}"#,
        r#"{"password":"demo-password"}"#,
        r#"{"username":1,"password":"demo-password"}"#,
        r#"{"username":"user1","password":null}"#,
        r#"{"username":"user1","password":"demo-password","admin":true}"#,
        r#""user1""#,
        "{}",
    ] {
        let r = post_json(&http, &url, body, None).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "body {body}: {}", r.body);
        r.assert_error(422, "unprocessable_entity");
    }

    // 413: larger than 16 KiB, whether or not it would be valid JSON.
    let big = credentials("user1", &"x".repeat(17 * 1024));
    post_json(&http, &url, &big, None).await.assert_error(413, "payload_too_large");
    post_json(&http, &url, &"{".repeat(16 * 1024 + 1), None).await.assert_error(413, "payload_too_large");
    // Just under the limit is read (and this password is refused before any hashing).
    let long_password = credentials("user1", &"x".repeat(15 * 1024));
    assert!(long_password.len() < 16 * 1024);
    post_json(&http, &url, &long_password, None).await.assert_error(400, "password_too_long");

    // Nothing above created a session or broke the server.
    expect_login(&post_json(&http, &url, &good, None).await, "user1", "user");
}

// ---------------------------------------------------------------------------------------
// other routes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_and_unknown_routes_are_json_404_and_wrong_methods_405() {
    let server = TestServer::start("routes-1", &["--store", "memory"]).await;
    let http = client();
    let id = login(&http, &server, "user1", None).await;

    // /refresh belongs to jwt-server only.
    post_json(&http, &server.at("/refresh"), r#"{"refresh_token":"x"}"#, Some(&cookie(&id)))
        .await
        .assert_error(404, "not_found");
    get(&http, &server.at("/.well-known/jwks.json"), None).await.assert_error(404, "not_found");
    get(&http, &server.at("/nope"), None).await.assert_error(404, "not_found");

    get(&http, &server.at("/login"), None).await.assert_error(405, "method_not_allowed");
    post_empty(&http, &server.at("/me"), Some(&cookie(&id))).await.assert_error(405, "method_not_allowed");
    get(&http, &server.at("/logout"), Some(&cookie(&id))).await.assert_error(405, "method_not_allowed");

    // None of that touched the session.
    expect_me(&me(&http, &server, &id).await, "user1", "user", "routes-1");
}

async fn health_and_metrics(store: Store) {
    let server = store.start("metrics-1", &[]).await;
    let http = client();

    let health = get(&http, &server.at("/healthz"), None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));

    let id = login(&http, &server, "user0", None).await;
    for _ in 0..3 {
        expect_me(&me(&http, &server, &id).await, "user0", "admin", "metrics-1");
    }
    get(&http, &server.at("/me"), None).await.assert_error(401, "unauthenticated");
    get(&http, &server.at("/nope"), None).await.assert_error(404, "not_found");

    let metrics = get(&http, &server.at("/metrics"), None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = &metrics.body;
    for line in [
        format!("authbench_info{{system=\"{}\",instance=\"metrics-1\"}} 1", store.system()),
        r#"authbench_http_requests_total{route="/me",status="200"} 3"#.to_owned(),
        r#"authbench_http_requests_total{route="/me",status="401"} 1"#.to_owned(),
        r#"authbench_http_requests_total{route="/login",status="200"} 1"#.to_owned(),
        r#"authbench_http_requests_total{route="/healthz",status="200"} 1"#.to_owned(),
        r#"authbench_http_requests_total{route="other",status="404"} 1"#.to_owned(),
        r#"authbench_store_call_duration_seconds_count{op="get"} 3"#.to_owned(),
        r#"authbench_store_call_duration_seconds_count{op="put"} 1"#.to_owned(),
        r#"authbench_store_errors_total{op="get"} 0"#.to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing line {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn health_and_metrics_memory() {
    health_and_metrics(Store::Memory).await;
}

#[tokio::test]
async fn health_and_metrics_redis() {
    health_and_metrics(Store::redis()).await;
}

#[tokio::test]
async fn health_and_metrics_postgres() {
    health_and_metrics(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// session fixation
// ---------------------------------------------------------------------------------------

async fn login_replaces_carried_session(store: Store) {
    let server = store.start("fix-1", &[]).await;
    let http = client();

    let old = login(&http, &server, "user1", None).await;
    expect_me(&me(&http, &server, &old).await, "user1", "user", "fix-1");

    // Logging in while carrying a valid session (here as another user, as after a planted
    // cookie) gives a fresh ID and ends the carried session.
    let new = login(&http, &server, "user2", Some(&cookie(&old))).await;
    assert_ne!(new, old);
    me(&http, &server, &old).await.assert_error(401, "unauthenticated");
    expect_me(&me(&http, &server, &new).await, "user2", "user", "fix-1");

    // Same user again: still a new ID, the previous one ends.
    let newer = login(&http, &server, "user2", Some(&cookie(&new))).await;
    assert_ne!(newer, new);
    me(&http, &server, &new).await.assert_error(401, "unauthenticated");
    expect_me(&me(&http, &server, &newer).await, "user2", "user", "fix-1");

    // An attacker-chosen, never-issued ID is not adopted.
    let planted = unknown_id();
    let issued = login(&http, &server, "user3", Some(&cookie(&planted))).await;
    assert_ne!(issued, planted);
    me(&http, &server, &planted).await.assert_error(401, "unauthenticated");
    expect_me(&me(&http, &server, &issued).await, "user3", "user", "fix-1");

    // A garbage cookie does not block login.
    let fresh = login(&http, &server, "user4", Some("__Host-sid=garbage")).await;
    expect_me(&me(&http, &server, &fresh).await, "user4", "user", "fix-1");

    // A failed login does not end the carried session (nor issue a cookie).
    let failed = post_json(&http, &server.at("/login"), &credentials("user4", "wrong"), Some(&cookie(&fresh))).await;
    failed.assert_error(401, "invalid_credentials");
    assert!(failed.headers.get(header::SET_COOKIE).is_none());
    expect_me(&me(&http, &server, &fresh).await, "user4", "user", "fix-1");

    if let Store::Redis(prefix) = &store {
        let mut keys = prefix.keys();
        keys.sort();
        let mut expected: Vec<String> =
            [&newer, &issued, &fresh].iter().map(|id| format!("{}s:{id}", prefix.prefix)).collect();
        // ...and the failed login is counted against its account (see tests/throttle.rs).
        expected.push(format!("{}login-fail:user4", prefix.prefix));
        expected.sort();
        assert_eq!(keys, expected, "replaced sessions are deleted from Redis");
    }
}

#[tokio::test]
async fn login_replaces_carried_session_memory() {
    login_replaces_carried_session(Store::Memory).await;
}

#[tokio::test]
async fn login_replaces_carried_session_redis() {
    login_replaces_carried_session(Store::redis()).await;
}

#[tokio::test]
async fn login_replaces_carried_session_postgres() {
    login_replaces_carried_session(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// several instances
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn memory_sessions_are_not_shared_between_instances() {
    let a = TestServer::start("mem-a", &["--store", "memory"]).await;
    let b = TestServer::start("mem-b", &["--store", "memory"]).await;
    let http = client();

    let id = login(&http, &a, "user1", None).await;
    expect_me(&me(&http, &a, &id).await, "user1", "user", "mem-a");
    me(&http, &b, &id).await.assert_error(401, "unauthenticated");

    // And the other way round; logging out on B does not end A's session.
    let on_b = login(&http, &b, "user0", None).await;
    me(&http, &a, &on_b).await.assert_error(401, "unauthenticated");
    assert_eq!(post_empty(&http, &b.at("/logout"), Some(&cookie(&id))).await.status, StatusCode::NO_CONTENT);
    expect_me(&me(&http, &a, &id).await, "user1", "user", "mem-a");
}

#[tokio::test]
async fn redis_sessions_are_shared_and_logout_is_global() {
    let prefix = RedisPrefix::new();
    let flags = ["--store", "redis", "--redis-url", SHARED_REDIS, "--redis-prefix", &prefix.prefix];
    let a = TestServer::start("redis-a", &flags).await;
    let b = TestServer::start("redis-b", &flags).await;
    let http = client();

    let id = login(&http, &a, "user0", None).await;
    expect_me(&me(&http, &a, &id).await, "user0", "admin", "redis-a");
    expect_me(&me(&http, &b, &id).await, "user0", "admin", "redis-b");
    expect_me(&get(&http, &b.at("/admin"), Some(&cookie(&id))).await, "user0", "admin", "redis-b");

    let out = post_empty(&http, &b.at("/logout"), Some(&cookie(&id))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // No propagation delay: the very next request on A is rejected.
    me(&http, &a, &id).await.assert_error(401, "unauthenticated");
    me(&http, &b, &id).await.assert_error(401, "unauthenticated");
    assert_eq!(prefix.keys(), Vec::<String>::new());

    // A different prefix is a different session space, even on the same Redis.
    let other_prefix = RedisPrefix::new();
    let c = TestServer::start(
        "redis-c",
        &["--store", "redis", "--redis-url", SHARED_REDIS, "--redis-prefix", &other_prefix.prefix],
    )
    .await;
    let id2 = login(&http, &a, "user1", None).await;
    expect_me(&me(&http, &b, &id2).await, "user1", "user", "redis-b");
    me(&http, &c, &id2).await.assert_error(401, "unauthenticated");
    assert_eq!(other_prefix.keys(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// idle and absolute timeouts
// ---------------------------------------------------------------------------------------

async fn timeouts(store: Store) {
    const IDLE: Duration = Duration::from_secs(1);
    const ABSOLUTE: Duration = Duration::from_secs(3);
    const POLL: Duration = Duration::from_millis(400);
    // Clock granularity and scheduling slack around each deadline; requests inside this
    // window may legitimately go either way and are not judged.
    const SLACK: Duration = Duration::from_millis(150);

    // Memory: the server's clock is the test's, and time passes when the test advances it.
    // Redis keeps the deadlines as TTLs on real time, so that variant really waits.
    // PostgreSQL keeps expired rows (never served) until its purge task deletes them.
    let mut flags = vec!["--idle-timeout", "1s", "--absolute-timeout", "3s"];
    if matches!(store, Store::Postgres(_)) {
        flags.extend(["--purge-every", "300ms"]);
    }
    let (server, clock) = store.start_for_expiry("timeouts-1", &flags).await;
    let http = client();

    // The server stamps the session between our send and our receipt of the answer.
    let active_sent = clock.now();
    let active = login(&http, &server, "user1", None).await;
    let active_done = clock.now();
    let unused = login(&http, &server, "user2", None).await;
    let unused_done = clock.now();

    let mut alive_past_idle = 0;
    let mut unused_checked = false;
    let mut previous_sent = active_sent;
    loop {
        pass(&clock, POLL).await;
        let sent = clock.now();
        let r = me(&http, &server, &active).await;
        let done = clock.now();
        assert!(
            done + SLACK < previous_sent + IDLE,
            "{:?} between two uses: the test machine stalled past the idle timeout",
            done - previous_sent
        );
        previous_sent = sent;
        if done + SLACK < active_sent + ABSOLUTE {
            // Certainly before the absolute deadline, and used < IDLE ago: alive.
            expect_me(&r, "user1", "user", "timeouts-1");
            if sent > active_done + IDLE + SLACK {
                alive_past_idle += 1;
            }
        } else if sent > active_done + ABSOLUTE + SLACK {
            // Certainly past the absolute deadline however active: gone.
            r.assert_error(401, "unauthenticated");
            break;
        } else {
            assert!(r.status == StatusCode::OK || r.status == StatusCode::UNAUTHORIZED, "near the deadline: {r:?}");
        }

        if !unused_checked && sent > unused_done + IDLE + SLACK {
            // Unused for longer than the idle timeout (and long before the absolute one).
            assert!(sent < unused_done + ABSOLUTE);
            me(&http, &server, &unused).await.assert_error(401, "unauthenticated");
            unused_checked = true;
        }
        assert!(sent < active_done + ABSOLUTE + Duration::from_secs(2), "loop ran too long");
    }
    assert!(alive_past_idle >= 2, "a used session outlives the idle timeout ({alive_past_idle} checks)");
    assert!(unused_checked);

    // Stays gone, and the store really forgot it.
    me(&http, &server, &active).await.assert_error(401, "unauthenticated");
    if let Store::Redis(prefix) = &store {
        assert_eq!(prefix.keys(), Vec::<String>::new(), "expired sessions leave no keys");
    }
    if let Store::Postgres(pg) = &store {
        let deadline = Instant::now() + Duration::from_secs(3);
        while pg.session_rows() > 0 {
            assert!(Instant::now() < deadline, "the purge task left {} expired rows", pg.session_rows());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn timeouts_idle_and_absolute_memory() {
    timeouts(Store::Memory).await;
}

#[tokio::test]
async fn timeouts_idle_and_absolute_redis() {
    timeouts(Store::redis()).await;
}

#[tokio::test]
async fn timeouts_idle_and_absolute_postgres() {
    timeouts(Store::postgres()).await;
}

// ---------------------------------------------------------------------------------------
// fail closed when Redis goes away
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn redis_outage_fails_closed_with_503_and_recovers_without_restart() {
    if RedisServer::skip_test() {
        return;
    }
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let url = redis.url();
    let server = TestServer::start(
        "outage-1",
        &[
            "--store",
            "redis",
            "--redis-url",
            &url,
            "--redis-prefix",
            "authbench-test:outage:",
            "--store-timeout",
            "300ms",
        ],
    )
    .await;
    let http = client();

    let id = login(&http, &server, "user0", None).await;
    expect_me(&me(&http, &server, &id).await, "user0", "admin", "outage-1");

    redis.kill();

    // Every authenticated request now fails closed, quickly, with Retry-After.
    for _ in 0..5 {
        let started = Instant::now();
        let r = me(&http, &server, &id).await;
        assert!(started.elapsed() < Duration::from_secs(1), "/me took {:?}", started.elapsed());
        check_503(&r, "/me");
    }
    let r = get(&http, &server.at("/admin"), Some(&cookie(&id))).await;
    check_503(&r, "/admin");
    let r = post_empty(&http, &server.at("/logout"), Some(&cookie(&id))).await;
    check_503(&r, "/logout");
    let r = post_json(&http, &server.at("/login"), &credentials("user1", DEMO_PASSWORD), None).await;
    check_503(&r, "/login");
    // Requests that need no store still answer.
    assert_eq!(get(&http, &server.at("/healthz"), None).await.status, StatusCode::OK);
    get(&http, &server.at("/me"), None).await.assert_error(401, "unauthenticated");

    // Redis comes back (empty: it kept nothing). The same server process reconnects by
    // itself; the session is unknown now, which is a 401, not a 503 and never a 200.
    let _redis = RedisServer::start(port);
    let back = Instant::now();
    let recovered = loop {
        let r = me(&http, &server, &id).await;
        match r.status {
            StatusCode::SERVICE_UNAVAILABLE => check_503(&r, "/me while reconnecting"),
            _ => break r,
        }
        assert!(back.elapsed() < Duration::from_secs(5), "still 503 five seconds after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    recovered.assert_error(401, "unauthenticated");
    eprintln!("recovered {:?} after redis-server restarted", back.elapsed());

    let id2 = login(&http, &server, "user1", None).await;
    expect_me(&me(&http, &server, &id2).await, "user1", "user", "outage-1");
    server.stop().await;
}

#[tokio::test]
async fn redis_stall_fails_closed_and_answers_resume_in_order() {
    if RedisServer::skip_test() {
        return;
    }
    let redis = RedisServer::start(free_port());
    let server = TestServer::start(
        "stall-1",
        &[
            "--store",
            "redis",
            "--redis-url",
            &redis.url(),
            "--redis-prefix",
            "authbench-test:stall:",
            "--store-timeout",
            "300ms",
        ],
    )
    .await;
    let http = client();
    let admin = login(&http, &server, "user0", None).await;
    let user = login(&http, &server, "user1", None).await;

    // Many /me in flight at once, alternating between two users; each answer must be its own.
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

    // Frozen, not dead: the TCP connection stays up, no answer ever comes.
    redis.signal("-STOP");
    for (name, r, took) in burst(10).await {
        assert!(took < Duration::from_secs(1), "/me for {name} took {took:?}");
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "/me for {name} while Redis is frozen: {r:?}");
        r.assert_error(503, "store_unavailable");
        assert_eq!(r.header("retry-after"), Some("1"));
    }

    // Thawed: the late answers to the abandoned requests must not be handed to new ones.
    redis.signal("-CONT");
    let back = Instant::now();
    loop {
        let results = burst(20).await;
        if results.iter().any(|(_, r, _)| r.status == StatusCode::SERVICE_UNAVAILABLE) {
            assert!(back.elapsed() < Duration::from_secs(5), "still 503 five seconds after SIGCONT");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for (name, r, _) in results {
            let role = if name == "user0" { "admin" } else { "user" };
            expect_me(&r, name, role, "stall-1");
        }
        break;
    }
}

// ---------------------------------------------------------------------------------------
// --control: authbench's control line
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn control_answers_me_for_user0_without_reading_the_credential() {
    let server = TestServer::start("ctl-1", &["--control"]).await;
    let http = client();
    // No cookie, a malformed one, an unknown one, a real one: the same answer.
    expect_me(&get(&http, &server.at("/me"), None).await, "user0", "admin", "ctl-1");
    expect_me(&get(&http, &server.at("/me"), Some("__Host-sid=garbage")).await, "user0", "admin", "ctl-1");
    expect_me(&get(&http, &server.at("/me"), Some(&cookie(&unknown_id()))).await, "user0", "admin", "ctl-1");
    let id = login(&http, &server, "user3", None).await;
    let reply = me(&http, &server, &id).await;
    expect_me(&reply, "user0", "admin", "ctl-1");
    assert_eq!(reply.header("cache-control"), Some("no-store"), "the same stack as /me");
    // Only /me is the control: everything else still authenticates.
    get(&http, &server.at("/admin"), None).await.assert_error(401, "unauthenticated");
    get(&http, &server.at("/admin"), Some(&cookie(&id))).await.assert_error(403, "forbidden");
    let metrics = get(&http, &server.at("/metrics"), None).await;
    assert!(metrics.body.contains("authbench_info{system=\"control\",instance=\"ctl-1\"} 1"), "{}", metrics.body);
    server.stop().await;

    // Without the flag /me needs a session.
    let server = TestServer::start("ctl-2", &[]).await;
    get(&http, &server.at("/me"), None).await.assert_error(401, "unauthenticated");
    server.stop().await;
}
