//! Shared by the jwt-server integration tests: an in-process server on 127.0.0.1:0 built
//! from a real command line, key directories, a private Redis key prefix that is cleaned up
//! afterwards, a throw-away `redis-server`, and small HTTP helpers.

#![allow(dead_code)] // each test binary uses a different subset

use std::{
    net::{TcpListener as StdListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use auth_core::wire::{MeResponse, TokenResponse};
use clap::Parser as _;
use jwt_server::{config::Cli, keys::Alg};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

pub const DEMO_PASSWORD: &str = "demo-password";
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";
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

/// One in-process jwt-server. Dropping it stops the server.
pub struct TestServer {
    pub url: String,
    pub instance: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Start an instance with `--demo-users 20`, the given algorithm and key directory and
    /// extra flags, parsed exactly as the binary parses its command line.
    pub async fn start(instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> Self {
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
        let router = jwt_server::config::build(&cli.args).await.unwrap_or_else(|e| panic!("build {argv:?}: {e:#}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(auth_core::server::serve_until(listener, router, cli.args.common.limits(), async {
            let _ = rx.await;
        }));
        Self { url: format!("http://{addr}"), instance: instance.to_owned(), shutdown: Some(tx), task: Some(task) }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Stop and wait for the server to finish (dropping also stops it, without waiting).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(5), task).await;
            let result = result.expect("server did not stop within 5 s").expect("server task panicked");
            result.expect("server returned an error");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A client without connection reuse surprises: every test builds its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A response read to the end: status, headers and body text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        Self { status, headers, body }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Assert the status and the exact `{"error": code}` body with a JSON content type.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.json(), json!({ "error": code }), "{self:?}");
    }

    /// 401 `invalid_token` with the RFC 6750 challenge.
    pub fn assert_invalid_token(&self) {
        self.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(self.header("www-authenticate"), Some(BEARER_CHALLENGE), "{self:?}");
    }

    /// 401 `invalid_grant` (refresh refused).
    pub fn assert_invalid_grant(&self) {
        self.assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
        assert_eq!(self.header("www-authenticate"), None, "{self:?}");
    }

    /// 503 fail-closed answer with `Retry-After`.
    pub fn assert_store_unavailable(&self) {
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

/// A Redis key prefix private to one test. On drop, every key under it in that Redis is
/// deleted (SCAN MATCH + DEL, never FLUSHDB: other tests and runs share the database).
pub struct RedisPrefix {
    pub prefix: String,
    url: String,
}

impl RedisPrefix {
    pub fn new() -> Self {
        Self::on(SHARED_REDIS)
    }

    pub fn on(url: &str) -> Self {
        let bytes: [u8; 8] = auth_core::random_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self { prefix: format!("authbench-test:{hex}:"), url: url.to_owned() }
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url.as_str())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    fn scan(&self, conn: &mut redis::Connection) -> redis::RedisResult<Vec<String>> {
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) =
                redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(conn)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Every key currently under the prefix.
    pub fn keys(&self) -> Vec<String> {
        self.scan(&mut self.connection().unwrap()).unwrap()
    }

    fn cleanup(&self) -> redis::RedisResult<()> {
        let mut conn = self.connection()?;
        let keys = self.scan(&mut conn)?;
        for batch in keys.chunks(500) {
            redis::cmd("DEL").arg(batch).query::<()>(&mut conn)?;
        }
        Ok(())
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // A test's own redis-server may already be gone; its data went with it.
        if let Err(e) = self.cleanup() {
            eprintln!("cleanup of {}* in {} failed: {e}", self.prefix, self.url);
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` owned by one test, killed on drop (on every path, panics included).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Whether `redis-server` can be run at all.
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Start `redis-server` on `port` without persistence and wait until it accepts PING.
    pub fn start(port: u16) -> Self {
        let mut server = Self { port, child: None };
        server.restart();
        server
    }

    /// (Re)start the server on the same port, with empty data, after [`Self::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server on port {} is still running", self.port);
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn));
            if ping.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Send a signal (`STOP`, `CONT`, …) to the running server with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("redis-server is not running").id();
        let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// SIGKILL the server and wait until its port refuses connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port {} still open after killing redis-server", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The two refresh-token stores, as flags. The Redis one owns a key prefix that is
/// deleted when it drops.
pub enum Store {
    Memory,
    Redis(RedisPrefix),
}

impl Store {
    pub fn redis() -> Self {
        Store::Redis(RedisPrefix::new())
    }

    pub fn flags(&self) -> Vec<&str> {
        match self {
            Store::Memory => vec!["--refresh-store", "memory"],
            Store::Redis(p) => {
                vec!["--refresh-store", "redis", "--redis-url", SHARED_REDIS, "--redis-prefix", &p.prefix]
            }
        }
    }

    /// Start an instance on this store with extra flags.
    pub async fn start(&self, instance: &str, alg: Alg, keys: &KeyDir, extra: &[&str]) -> TestServer {
        let mut flags = self.flags();
        flags.extend_from_slice(extra);
        TestServer::start(instance, alg, keys, &flags).await
    }
}

/// The claims of a token, read without verifying it (the server's answer is what the tests
/// check; this only looks inside).
pub fn claims(token: &str) -> jwt_server::tokens::AccessClaims {
    jsonwebtoken::dangerous::insecure_decode::<jwt_server::tokens::AccessClaims>(token).unwrap().claims
}
