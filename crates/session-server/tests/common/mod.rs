//! Shared by the integration tests: an in-process server on 127.0.0.1:0, a private Redis
//! key prefix that is cleaned up afterwards, a throw-away `redis-server`, and small HTTP
//! helpers that handle the session cookie by hand (no cookie store, so every test says
//! exactly which cookie it sends).

#![allow(dead_code)] // each test binary uses a different subset

use std::{
    net::{SocketAddr, TcpListener as StdListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clap::Parser as _;
use reqwest::{
    StatusCode,
    header::{self, HeaderMap},
};
use session_server::config::Cli;
use tokio::{sync::oneshot, task::JoinHandle};

pub const DEMO_PASSWORD: &str = "demo-password";
pub const COOKIE_NAME: &str = "__Host-sid";
pub const COOKIE_ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Lax";
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// One in-process session-server. Dropping it stops the server.
pub struct TestServer {
    pub url: String,
    pub instance: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Start an instance with `--demo-users 20` and the given extra flags, exactly as the
    /// binary would parse them.
    pub async fn start(instance: &str, extra: &[&str]) -> Self {
        let mut argv =
            vec!["session-server", "--listen", "127.0.0.1:0", "--instance-id", instance, "--demo-users", "20"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(cli.command.is_none());
        let router = session_server::config::build(&cli.args).await.unwrap_or_else(|e| panic!("build {argv:?}: {e:#}"));
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

/// A Redis key prefix private to one test. On drop, every key under it in the shared Redis
/// is deleted (SCAN + DEL, never FLUSHDB: other tests and runs share that database).
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

    /// Every key currently under the prefix.
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// Remaining time to live of a key, in ms (-2: no such key, -1: no expiry).
    pub fn pttl(&self, key: &str) -> i64 {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
        redis::cmd("PTTL").arg(key).query(&mut conn).unwrap()
    }

    fn cleanup(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) =
                redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(&mut conn)?;
            if !batch.is_empty() {
                redis::cmd("DEL").arg(&batch).query::<()>(&mut conn)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
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
    /// Whether `redis-server` is on PATH (tests that need one skip, with a message, if not).
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = Self { port, child: Some(child) };
        server.wait_ready();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server on port {} exited at start: {status}", self.port);
            }
            let pong = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.as_deref() == Ok("PONG") {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on port {} not ready after 5 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the server: it keeps its connections open and its
    /// data, but answers nothing while frozen.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// SIGKILL, and wait until the port no longer accepts connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
            "port {} still accepts connections after killing redis-server",
            self.port
        );
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
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The parts of a response the tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        Self { status, headers, body }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The single `Set-Cookie` header (panics when there are none or several).
    pub fn set_cookie(&self) -> &str {
        let all: Vec<_> = self.headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(all.len(), 1, "expected exactly one Set-Cookie, got {all:?}");
        all[0].to_str().unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Assert status and an exact `{"error": code}` JSON body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.json(), serde_json::json!({ "error": code }), "{self:?}");
    }
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
    Reply::from(req.send().await.unwrap()).await
}

pub async fn get(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Reply {
    let mut req = http.get(url);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    Reply::from(req.send().await.unwrap()).await
}

pub async fn post_empty(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Reply {
    let mut req = http.post(url);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    Reply::from(req.send().await.unwrap()).await
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
