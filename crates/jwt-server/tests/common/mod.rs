//! Shared by the jwt-server integration tests: an in-process server on 127.0.0.1:0 built
//! from a real command line, key directories, a private Redis key prefix that is cleaned up
//! afterwards, a throw-away `redis-server`, and small HTTP helpers.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::path::Path;

use auth_core::clock::Clock;
use auth_core::wire::{MeResponse, TokenResponse};
use clap::Parser as _;
use jwt_server::{config::Cli, keys::Alg};
use reqwest::StatusCode;
use serde_json::{Value, json};
pub use test_support::{
    DEFAULT_WINDOW_SECS, DEMO_PASSWORD, RedisPrefix, RedisServer, Reply, SHARED_REDIS, Store, TOO_MANY, TestServer,
    client, free_port, pass, raw_status,
};

pub const BEARER_CHALLENGE: &str = "Bearer error=\"invalid_token\"";

/// A temporary `--key-dir` holding a fresh key for each given algorithm.
pub struct KeyDir {
    dir: tempfile::TempDir,
}

impl KeyDir {
    pub fn new(algs: &[Alg]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for &alg in algs {
            jwt_server::keys::keygen(alg, dir.path(), false).unwrap();
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(&self) -> String {
        self.dir.path().display().to_string()
    }
}

/// `TestServer::start` for jwt-server.
#[allow(async_fn_in_trait)]
pub trait Start {
    /// Start an instance with `--demo-users 20`, the given algorithm and key directory and
    /// extra flags, parsed exactly as the binary parses its command line.
    async fn start(instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> TestServer;

    /// [`Start::start`] with the memory login throttle on `clock`.
    async fn start_with_clock(instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str], clock: Clock) -> TestServer;
}

impl Start for TestServer {
    async fn start(instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> TestServer {
        Self::start_with_clock(instance, alg, keys, extra, Clock::System).await
    }

    async fn start_with_clock(instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str], clock: Clock) -> TestServer {
        let alg = alg.to_string();
        let key_dir = keys.arg();
        let mut argv = vec![
            "jwt-server",
            "--listen",
            "127.0.0.1:0",
            "--instance-id",
            instance,
            "--demo-users",
            "20",
            "--alg",
            &alg,
            "--key-dir",
            &key_dir,
        ];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(cli.command.is_none());
        let router = jwt_server::config::build_with_clock(&cli.args, clock)
            .await
            .unwrap_or_else(|e| panic!("build {argv:?}: {e:#}"));
        TestServer::serve(instance, router, cli.args.common.limits()).await
    }
}

/// The answers only a JWT server gives.
pub trait JwtReply {
    fn assert_invalid_token(&self);
    fn assert_invalid_grant(&self);
    fn assert_store_unavailable(&self);
}

impl JwtReply for Reply {
    /// 401 `invalid_token` with the RFC 6750 challenge.
    fn assert_invalid_token(&self) {
        self.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(self.header("www-authenticate"), Some(BEARER_CHALLENGE), "{self:?}");
    }

    /// 401 `invalid_grant` (refresh refused).
    fn assert_invalid_grant(&self) {
        self.assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
        assert_eq!(self.header("www-authenticate"), None, "{self:?}");
    }

    /// 503 fail-closed answer with `Retry-After`.
    fn assert_store_unavailable(&self) {
        self.assert_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert_eq!(self.header("retry-after"), Some("1"), "{self:?}");
    }
}

pub async fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> Reply {
    Reply::read(c.post(url).json(body).send().await.unwrap()).await
}

pub async fn get(c: &reqwest::Client, url: &str, bearer: Option<&str>) -> Reply {
    let mut req = c.get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    Reply::read(req.send().await.unwrap()).await
}

pub async fn try_login(c: &reqwest::Client, s: &TestServer, user: &str, password: &str) -> Reply {
    post_json(c, &s.at("/login"), &json!({ "username": user, "password": password })).await
}

/// Log in with the demo password; asserts the documented 200 answer.
pub async fn login(c: &reqwest::Client, s: &TestServer, user: &str) -> TokenResponse {
    let r = try_login(c, s, user, DEMO_PASSWORD).await;
    assert_token_response(&r)
}

/// Assert a `/login` or `/refresh` success and return its body.
pub fn assert_token_response(r: &Reply) -> TokenResponse {
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "exactly access_token, token_type, expires_in, refresh_token: {v}");
    let t: TokenResponse = serde_json::from_value(v).unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.access_token.split('.').count(), 3, "a compact JWS: {}", t.access_token);
    assert_eq!(t.refresh_token.len(), 43, "{}", t.refresh_token);
    assert!(
        t.refresh_token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url without padding: {}",
        t.refresh_token
    );
    t
}

pub async fn refresh(c: &reqwest::Client, s: &TestServer, refresh_token: &str) -> Reply {
    post_json(c, &s.at("/refresh"), &json!({ "refresh_token": refresh_token })).await
}

/// `GET /me` with a bearer token; asserts 200 and returns the body.
pub async fn me(c: &reqwest::Client, s: &TestServer, access: &str) -> MeResponse {
    let r = get(c, &s.at("/me"), Some(access)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    serde_json::from_str(&r.body).unwrap()
}

/// Starting jwt-server on a [`Store`] (`--refresh-store`, which the login throttle follows).
#[allow(async_fn_in_trait)]
pub trait OnStore {
    /// Start an instance on this store with extra flags.
    async fn start(&self, instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> TestServer;

    /// [`OnStore::start`] with the memory login throttle on [`Store::expiry_clock`], which
    /// is returned so the test lets time pass with [`pass`].
    async fn start_for_expiry(&self, instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> (TestServer, Clock);
}

impl OnStore for Store {
    async fn start(&self, instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> TestServer {
        start_on(self, instance, alg, keys, extra, Clock::System).await
    }

    async fn start_for_expiry(&self, instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> (TestServer, Clock) {
        let clock = self.expiry_clock();
        (start_on(self, instance, alg, keys, extra, clock.clone()).await, clock)
    }
}

async fn start_on(store: &Store, instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str], clock: Clock) -> TestServer {
    let mut flags = store.flags("--refresh-store");
    flags.extend_from_slice(extra);
    TestServer::start_with_clock(instance, alg, keys, &flags, clock).await
}

/// The claims of a token, read without verifying it (the server's answer is what the tests
/// check; this only looks inside).
pub fn claims(token: &str) -> jwt_server::tokens::AccessClaims {
    jsonwebtoken::dangerous::insecure_decode::<jwt_server::tokens::AccessClaims>(token).unwrap().claims
}
