//! What the session-server and jwt-server integration tests share (a dev-dependency only):
//! an in-process server on 127.0.0.1:0 ([`TestServer`]), a Redis key prefix private to
//! one test and deleted afterwards ([`RedisPrefix`]), a `redis-server` a test may stop,
//! freeze or restart ([`RedisServer`]), a [`Reply`] read to the end, the store a server
//! runs on ([`Store`]) and the clock its expiry tests run on ([`Store::expiry_clock`],
//! [`pass`]). Each server's `tests/common` adds what only it needs (its command line,
//! cookies or tokens).
//!
//! A test whose real dependency is missing skips only on a developer's machine; under CI
//! it fails ([`must_skip`] is the one place that decides).
//!
//! Failing here is failing the test, so the helpers panic with a message instead of
//! returning errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::{TcpListener as StdListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use auth_core::clock::{Clock, ManualClock};
use reqwest::{StatusCode, header::HeaderMap};
use tokio::{sync::oneshot, task::JoinHandle};

pub const DEMO_PASSWORD: &str = "demo-password";
/// The Redis every session starts; tests touch only keys under their own [`RedisPrefix`].
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";
/// The PostgreSQL every session starts (trust auth); tests touch only their own
/// [`PgSchema`]. `AUTHBENCH_TEST_DATABASE_URL` points the tests at another one.
pub const SHARED_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The login throttle's body, byte for byte.
pub const TOO_MANY: &str = r#"{"error":"too_many_requests"}"#;
/// `--login-failure-window` default, in seconds.
pub const DEFAULT_WINDOW_SECS: u64 = 15 * 60;

/// The directory holding `session-server`, `jwt-server` and `authbench-peer`: `dir`, the one
/// of the test's own binary (`CARGO_BIN_EXE_…`), where `cargo test --workspace` builds them.
/// A lone `cargo test -p CRATE` may not have built them, so build them once here if missing.
pub fn server_binaries(dir: &std::path::Path) -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if ["session-server", "jwt-server", "authbench-peer"].iter().any(|b| !dir.join(b).is_file()) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "session-server", "-p", "jwt-server", "-p", "peers", "--bins"])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the servers failed");
        }
        dir.to_path_buf()
    })
}

/// One in-process server. Dropping it stops the server.
pub struct TestServer {
    pub url: String,
    pub instance: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Serve `router` on 127.0.0.1:0 with the listener the binaries use.
    pub async fn serve(instance: &str, router: axum::Router, limits: auth_core::server::Limits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(auth_core::server::serve_until(listener, router, limits, async {
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

/// A Redis key prefix private to one test. On drop, every key under it in that Redis is
/// deleted (SCAN MATCH + DEL, never FLUSHDB: other tests and runs share the database).
pub struct RedisPrefix {
    pub prefix: String,
    url: String,
}

impl Default for RedisPrefix {
    fn default() -> Self {
        Self::new()
    }
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

    /// Remaining time to live of a key, in ms (-2: no such key, -1: no expiry).
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query(&mut self.connection().unwrap()).unwrap()
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

/// A PostgreSQL schema private to one test, dropped with everything in it on drop (with
/// `psql`, so it works from any thread and outside a runtime).
pub struct PgSchema {
    pub schema: String,
    pub url: String,
}

impl Default for PgSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl PgSchema {
    /// A fresh schema name on the shared PostgreSQL (or `AUTHBENCH_TEST_DATABASE_URL`). The
    /// schema itself is created by the server under test.
    pub fn new() -> Self {
        let url = std::env::var("AUTHBENCH_TEST_DATABASE_URL").unwrap_or_else(|_| SHARED_POSTGRES.to_owned());
        Self::on(&url)
    }

    pub fn on(url: &str) -> Self {
        let bytes: [u8; 6] = auth_core::random_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self { schema: format!("authbench_test_{hex}"), url: url.to_owned() }
    }

    /// `psql` running one SQL statement on this database, unaligned and tuples only.
    fn psql_command(&self, sql: &str) -> Command {
        let mut c = Command::new("psql");
        c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-c", sql]);
        c
    }

    /// Run one SQL statement with `psql` and return its output.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.psql_command(sql).output().expect("run psql (it comes with PostgreSQL; .ci/run installs it)");
        assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Rows in this schema's `sessions` table (expired ones not yet purged included).
    pub fn session_rows(&self) -> u64 {
        self.psql(&format!("SELECT count(*) FROM {}.sessions", self.schema)).parse().unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let dropped = self
            .psql_command(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // A test's own postgres may already be gone; its data went with it.
        if !dropped.is_ok_and(|s| s.success()) {
            eprintln!("could not drop schema {} in {}", self.schema, self.url);
        }
    }
}

/// Where a server under test keeps its sessions or refresh tokens (and so its login
/// throttle): its own memory, the shared Redis under a key prefix deleted on drop, or (the
/// session server only) the shared PostgreSQL in a schema dropped on drop.
pub enum Store {
    Memory,
    Redis(RedisPrefix),
    Postgres(PgSchema),
}

impl Store {
    pub fn redis() -> Self {
        Store::Redis(RedisPrefix::new())
    }

    pub fn postgres() -> Self {
        Store::Postgres(PgSchema::new())
    }

    /// The server's flags for this store; `store_flag` is how the server names the choice.
    pub fn flags<'a>(&'a self, store_flag: &'a str) -> Vec<&'a str> {
        match self {
            Store::Memory => vec![store_flag, "memory"],
            Store::Redis(p) => vec![store_flag, "redis", "--redis-url", SHARED_REDIS, "--redis-prefix", &p.prefix],
            Store::Postgres(p) => {
                vec![store_flag, "postgres", "--database-url", &p.url, "--database-schema", &p.schema]
            }
        }
    }

    /// The clock a test of this store's deadlines runs its server on: a manual one for
    /// memory, whose deadlines the server keeps in this process; the system's for Redis,
    /// which keeps them as TTLs on real time that no manual clock reaches (PostgreSQL's
    /// deadlines are on the database's clock, likewise).
    pub fn expiry_clock(&self) -> Clock {
        match self {
            Store::Memory => ManualClock::new().into(),
            Store::Redis(_) | Store::Postgres(_) => Clock::System,
        }
    }
}

/// Let `d` pass on `clock`: a manual clock is advanced at once; on the system clock the test
/// really sleeps.
pub async fn pass(clock: &Clock, d: Duration) {
    match clock {
        Clock::Manual(m) => m.advance(d),
        Clock::System => tokio::time::sleep(d).await,
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether a test whose real dependency `binary` is `available` or not must skip: prints
/// `SKIPPED` and returns `true` only outside CI (see [`must_skip`]).
#[must_use = "the test must return when this is true"]
#[track_caller]
pub fn skip_without(binary: &str, available: bool) -> bool {
    // CI sets CI=true; an empty value counts as unset, as in a shell.
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let skip = must_skip(binary, ci, available);
    if skip {
        let test = std::thread::current().name().unwrap_or("this test").to_owned();
        eprintln!("SKIPPED {test}: {binary} is not on PATH (with CI set this fails)");
    }
    skip
}

/// The one decision behind every skip, apart from the environment so it can be tested: run
/// when `binary` is available; otherwise skip on a developer's machine, but under CI (`ci`)
/// panic, because a test that passes without running its real dependency would let CI go
/// green on a machine where nothing was checked.
#[track_caller]
pub fn must_skip(binary: &str, ci: bool, available: bool) -> bool {
    if available {
        return false;
    }
    assert!(
        !ci,
        "{binary} is not on PATH and CI is set: this test needs a real {binary} and must not pass as skipped \
         (install {binary}; .ci/run does)"
    );
    true
}

/// A `redis-server` owned by one test, killed on drop (on every path, panics included).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Whether `redis-server` can be run at all. Private: tests ask [`Self::skip_test`], so
    /// what a missing binary means under CI is decided in one place.
    fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// For a test that starts its own `redis-server`: `true` when it must stop here and pass
    /// as skipped (the binary is missing on a developer's machine); under CI a missing
    /// binary fails the test instead (see [`skip_without`]).
    #[must_use = "the test must return when this is true"]
    #[track_caller]
    pub fn skip_test() -> bool {
        skip_without("redis-server", Self::available())
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
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server on port {} exited at start: {status}", self.port);
            }
            let ping = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn));
            if ping.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Send a signal (`STOP` freezes it: connections stay open, nothing is answered;
    /// `CONT` thaws it) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let name = name.trim_start_matches('-');
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

/// No cookie store, no redirects, no proxy: what the test sends is what the server gets.
/// Send `request` as raw bytes on a fresh connection to `addr` (`HOST:PORT`) and return the
/// status code of the answer (the server closes the connection after it); panics when no
/// status line arrives within 10 s. For requests no HTTP client would send.
pub async fn raw_status(addr: &str, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap_or(0);
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A status given as a number or as [`StatusCode`].
pub trait IntoStatus {
    fn into_status(self) -> StatusCode;
}

impl IntoStatus for StatusCode {
    fn into_status(self) -> StatusCode {
        self
    }
}

impl IntoStatus for u16 {
    fn into_status(self) -> StatusCode {
        StatusCode::from_u16(self).unwrap()
    }
}

/// A response read to the end: status, headers and body text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        Self { status, headers, body }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The single `Set-Cookie` header (panics when there are none or several).
    pub fn set_cookie(&self) -> &str {
        let all: Vec<_> = self.headers.get_all(reqwest::header::SET_COOKIE).iter().collect();
        assert_eq!(all.len(), 1, "expected exactly one Set-Cookie, got {all:?}");
        all[0].to_str().unwrap()
    }

    /// The login throttle's answer: 429, exactly [`TOO_MANY`], and `Retry-After` in whole
    /// seconds within the failure window; returns the `Retry-After` seconds.
    #[track_caller]
    pub fn assert_throttled(&self, window_secs: u64) -> u64 {
        self.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
        assert_eq!(self.body, TOO_MANY);
        let retry: u64 = self.header("retry-after").expect("Retry-After").parse().expect("Retry-After in seconds");
        assert!((1..=window_secs).contains(&retry), "Retry-After {retry} outside 1..={window_secs}");
        retry
    }

    /// Assert the status and the exact `{"error": code}` body with a JSON content type.
    #[track_caller]
    pub fn assert_error(&self, status: impl IntoStatus, code: &str) {
        assert_eq!(self.status, status.into_status(), "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.json(), serde_json::json!({ "error": code }), "{self:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::must_skip;

    #[test]
    fn a_test_runs_whenever_its_dependency_is_available() {
        assert!(!must_skip("redis-server", false, true));
        assert!(!must_skip("redis-server", true, true));
    }

    #[test]
    fn outside_ci_a_missing_dependency_skips() {
        assert!(must_skip("redis-server", false, false));
    }

    #[test]
    #[should_panic(expected = "redis-server is not on PATH and CI is set")]
    fn under_ci_a_missing_dependency_fails() {
        let _ = must_skip("redis-server", true, false);
    }
}
