//! Shared by the integration tests: the crate-wide helpers of `test-support` (in-process
//! server, private Redis key prefix, throw-away `redis-server`, replies), this server's
//! command line, and small HTTP helpers that handle the session cookie by hand (no cookie
//! store, so every test says exactly which cookie it sends).

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use auth_core::clock::Clock;
use clap::Parser as _;
use reqwest::{StatusCode, header};
use session_server::config::Cli;
pub use test_support::{
    DEFAULT_WINDOW_SECS, DEMO_PASSWORD, PgSchema, RedisPrefix, RedisServer, Reply, SHARED_REDIS, Store, TOO_MANY,
    TestServer, client, free_port, pass, raw_status,
};

pub const COOKIE_NAME: &str = "__Host-sid";
pub const COOKIE_ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Lax";

/// `TestServer::start` for session-server.
#[allow(async_fn_in_trait)]
pub trait Start {
    /// Start an instance with `--demo-users 20` and the given extra flags, exactly as the
    /// binary would parse them.
    async fn start(instance: &str, extra: &[&str]) -> TestServer;

    /// [`Start::start`] with the in-memory deadlines (session timeouts, login throttle) on
    /// `clock`.
    async fn start_with_clock(instance: &str, extra: &[&str], clock: Clock) -> TestServer;
}

impl Start for TestServer {
    async fn start(instance: &str, extra: &[&str]) -> TestServer {
        Self::start_with_clock(instance, extra, Clock::System).await
    }

    async fn start_with_clock(instance: &str, extra: &[&str], clock: Clock) -> TestServer {
        let mut argv =
            vec!["session-server", "--listen", "127.0.0.1:0", "--instance-id", instance, "--demo-users", "20"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(cli.command.is_none());
        let router = session_server::config::build_with_clock(&cli.args, clock)
            .await
            .unwrap_or_else(|e| panic!("build {argv:?}: {e:#}"));
        TestServer::serve(instance, router, cli.args.common.limits()).await
    }
}

/// Starting session-server on a [`Store`] (`--store`).
#[allow(async_fn_in_trait)]
pub trait OnStore {
    /// Start an instance on this store with extra flags.
    async fn start(&self, instance: &str, extra: &[&str]) -> TestServer;

    /// [`OnStore::start`] with the in-memory deadlines (session timeouts, login throttle) on
    /// [`Store::expiry_clock`], which is returned so the test lets time pass with [`pass`].
    async fn start_for_expiry(&self, instance: &str, extra: &[&str]) -> (TestServer, Clock);

    /// The `system` label of its metrics.
    fn system(&self) -> &'static str;
}

impl OnStore for Store {
    async fn start(&self, instance: &str, extra: &[&str]) -> TestServer {
        start_on(self, instance, extra, Clock::System).await
    }

    async fn start_for_expiry(&self, instance: &str, extra: &[&str]) -> (TestServer, Clock) {
        let clock = self.expiry_clock();
        (start_on(self, instance, extra, clock.clone()).await, clock)
    }

    fn system(&self) -> &'static str {
        match self {
            Store::Memory => "session-memory",
            Store::Redis(_) => "session-redis",
            Store::Postgres(_) => "session-postgres",
        }
    }
}

async fn start_on(store: &Store, instance: &str, extra: &[&str], clock: Clock) -> TestServer {
    let mut flags = store.flags("--store");
    flags.extend_from_slice(extra);
    TestServer::start_with_clock(instance, &flags, clock).await
}

/// Parse a login `Set-Cookie`, checking it is exactly the documented shape; returns the ID.
#[track_caller]
pub fn session_id(set_cookie: &str) -> String {
    let rest =
        set_cookie.strip_prefix("__Host-sid=").unwrap_or_else(|| panic!("not a __Host-sid cookie: {set_cookie:?}"));
    let (id, attributes) = rest.split_once("; ").unwrap_or_else(|| panic!("no attributes: {set_cookie:?}"));
    assert_eq!(attributes, COOKIE_ATTRIBUTES, "{set_cookie:?}");
    assert_eq!(id.len(), 43, "ID is not 43 characters: {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "ID is not base64url: {id:?}");
    id.to_owned()
}

pub fn cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}")
}

pub async fn post_json(http: &reqwest::Client, url: &str, body: &str, cookie: Option<&str>) -> Reply {
    let mut req = http.post(url).header(header::CONTENT_TYPE, "application/json").body(body.to_owned());
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    Reply::read(req.send().await.unwrap()).await
}

pub async fn get(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Reply {
    let mut req = http.get(url);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    Reply::read(req.send().await.unwrap()).await
}

pub async fn post_empty(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Reply {
    let mut req = http.post(url);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    Reply::read(req.send().await.unwrap()).await
}

pub fn credentials(user: &str, password: &str) -> String {
    serde_json::json!({ "username": user, "password": password }).to_string()
}

/// Log in with the demo password (optionally carrying a cookie); asserts 200 and the
/// documented body and cookie, and returns the new session ID.
#[track_caller]
pub fn expect_login(reply: &Reply, user: &str, role: &str) -> String {
    assert_eq!(reply.status, StatusCode::OK, "login {user}: {}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({ "user": user, "role": role }));
    session_id(reply.set_cookie())
}

pub async fn login(http: &reqwest::Client, server: &TestServer, user: &str, carried: Option<&str>) -> String {
    let role = if user.strip_prefix("user").and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n % 10 == 0) {
        "admin"
    } else {
        "user"
    };
    let reply = post_json(http, &server.at("/login"), &credentials(user, DEMO_PASSWORD), carried).await;
    expect_login(&reply, user, role)
}

/// `/me` with a session ID; returns the reply.
pub async fn me(http: &reqwest::Client, server: &TestServer, id: &str) -> Reply {
    get(http, &server.at("/me"), Some(&cookie(id))).await
}

/// Assert `/me` answers 200 for `user` from `server`.
#[track_caller]
pub fn expect_me(reply: &Reply, user: &str, role: &str, instance: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({ "user": user, "role": role, "instance": instance }));
}

/// A fail-closed answer: 503 `store_unavailable`, `Retry-After: 1`, no cookie touched.
#[track_caller]
pub fn check_503(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {r:?}");
    r.assert_error(503, "store_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"), "{what}");
    assert!(r.headers.get(header::SET_COOKIE).is_none(), "{what}");
}
