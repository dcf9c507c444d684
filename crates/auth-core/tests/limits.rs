//! The HTTP limits of `auth_core::server::serve_until`, over real TCP on 127.0.0.1: header
//! read timeout (slowloris), request timeout, header size (431), body size (413), the JSON
//! errors, and graceful shutdown. Every rejection has a positive control beside it, so a
//! server that refused everything would fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use auth_core::{
    ApiError,
    error::Json,
    metrics::Metrics,
    server::{Limits, common_layers, serve_until},
    wire::LoginRequest,
};
use axum::{
    Router,
    extract::Query,
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

const SHORT: Duration = Duration::from_millis(300);
/// Scheduling slack on a loaded CI machine.
const MARGIN: Duration = Duration::from_millis(1500);

#[derive(serde::Deserialize)]
struct Sleep {
    ms: u64,
}

/// A tiny app built like the real servers: own routes, then `common_layers`.
fn app() -> Router {
    let metrics = Arc::new(Metrics::new("test", "limits", &["/slow", "/echo"]));
    let router = Router::new()
        .route(
            "/slow",
            get(|Query(s): Query<Sleep>| async move {
                tokio::time::sleep(Duration::from_millis(s.ms)).await;
                axum::Json(json!({ "slept_ms": s.ms }))
            }),
        )
        .route(
            "/echo",
            post(|body: Result<Json<LoginRequest>, ApiError>| async move {
                let Json(login) = body?;
                Ok::<_, ApiError>(axum::Json(json!({ "user": login.username })))
            }),
        );
    common_layers(router, metrics)
}

struct Server {
    addr: SocketAddr,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_until(listener, app(), limits, async {
            let _ = rx.await;
        }));
        Self { addr, url: format!("http://{addr}"), stop: Some(tx), task }
    }

    async fn short() -> Self {
        Self::start(Limits {
            header_read_timeout: SHORT,
            request_timeout: SHORT,
            max_header_bytes: Limits::DEFAULT_MAX_HEADER_BYTES,
        })
        .await
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    async fn from(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        Self { status, headers, body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.json(), json!({ "error": code }), "{self:?}");
    }
}

async fn fetch(url: &str) -> Reply {
    Reply::from(client().get(url).send().await.unwrap()).await
}

async fn post_json(url: &str, body: String) -> Reply {
    Reply::from(client().post(url).header("content-type", "application/json").body(body).send().await.unwrap()).await
}

/// Read until the server closes the connection; returns what arrived and when the
/// connection ended (EOF or reset both count as closed).
async fn read_until_closed(tcp: &mut TcpStream, give_up: Duration) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + give_up;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Err(_) => panic!("connection still open after {give_up:?}; got {:?}", String::from_utf8_lossy(&got)),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Send `head` (and nothing else) on a fresh connection; return the response's status
/// code and body, read to the server's close.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let (got, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP/1.1 status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------- header read timeout

#[tokio::test]
async fn a_half_sent_head_is_disconnected_after_the_header_read_timeout() {
    let server = Server::short().await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let sent = Instant::now();

    // Positive control, meanwhile, on another connection.
    let ok = fetch(&server.at("/healthz")).await;
    assert_eq!(ok.status, 200, "{ok:?}");

    let (got, closed) = read_until_closed(&mut slow, SHORT + MARGIN).await;
    let after = closed - sent;
    assert!(got.is_empty(), "expected a silent close, got {:?}", String::from_utf8_lossy(&got));
    assert!(after >= SHORT - Duration::from_millis(50), "closed after {after:?}, before the timeout");
}

#[tokio::test]
async fn trickling_the_head_does_not_extend_the_header_read_timeout() {
    let server = Server::short().await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let sent = Instant::now();
    // Classic slowloris: keep adding header bytes well inside any per-read timeout.
    let trickle = async {
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await?;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            slow.write_all(b"X-A: b\r\n").await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let outcome = tokio::time::timeout(SHORT + MARGIN, trickle).await;
    // The server closed on us mid-trickle: writes start failing.
    assert!(matches!(outcome, Ok(Err(_))), "still writing after {:?}: {outcome:?}", sent.elapsed());
    let (got, _) = read_until_closed(&mut slow, MARGIN).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    // hyper restarts the header clock when it waits for the next request, so the same
    // limit bounds idle keep-alive connections (documented on `Limits`).
    let server = Server::short().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    let answered = Instant::now();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    // Positive control: a second request well inside the timeout reuses the connection.
    tokio::time::sleep(SHORT / 3).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    let (got, closed) = read_until_closed(&mut tcp, SHORT + MARGIN).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(closed - answered >= SHORT, "closed {:?} after the first answer", closed - answered);
}

#[tokio::test]
async fn a_head_sent_in_pieces_within_the_timeout_is_served() {
    let server = Server::short().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    tokio::time::sleep(SHORT / 3).await;
    tcp.write_all(b"Connection: close\r\n\r\n").await.unwrap();
    let (got, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
    assert!(text.ends_with(r#"{"status":"ok"}"#), "{text:?}");
}

// ---------------------------------------------------------------- request timeout

#[tokio::test]
async fn a_request_slower_than_the_request_timeout_gets_503_timeout() {
    let server = Server::short().await;

    let ok = fetch(&server.at("/slow?ms=50")).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json(), json!({ "slept_ms": 50 }));

    let started = Instant::now();
    let late = fetch(&server.at("/slow?ms=5000")).await;
    let took = started.elapsed();
    late.assert_error(503, "timeout");
    assert_eq!(late.header("retry-after"), Some("1"), "{late:?}");
    assert_eq!(late.header("cache-control"), Some("no-store"), "{late:?}");
    assert!(took >= SHORT - Duration::from_millis(50) && took < SHORT + MARGIN, "answered after {took:?}");

    // The server is still fine afterwards.
    assert_eq!(fetch(&server.at("/healthz")).await.status, 200);
}

#[tokio::test]
async fn a_trickled_body_gets_503_timeout() {
    let server = Server::short().await;
    let body = br#"{"username":"user1","password":"pw"}"#;
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );

    // Positive control: the same request sent at once.
    let (status, reply) = raw_exchange(server.addr, &[head.as_bytes(), body].concat()).await;
    assert_eq!((status, reply.as_str()), (200, r#"{"user":"user1"}"#));

    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        for byte in body {
            tcp.write_all(&[*byte]).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<_, std::io::Error>(())
    };
    // Stop trickling well after the timeout; writes may or may not fail by then.
    let _ = tokio::time::timeout(SHORT + Duration::from_millis(200), trickle).await;
    let (got, _) = read_until_closed(&mut tcp, MARGIN).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{text:?}");
    assert!(text.ends_with(r#"{"error":"timeout"}"#), "{text:?}");
    assert!(started.elapsed() < SHORT + MARGIN);
}

// ---------------------------------------------------------------- header size

#[tokio::test]
async fn oversized_headers_get_431_and_normal_ones_pass() {
    let server = Server::short().await;
    let http = client();

    let fine = http.get(server.at("/healthz")).header("x-pad", "a".repeat(4 * 1024)).send().await.unwrap();
    assert_eq!(fine.status().as_u16(), 200);

    let big = http.get(server.at("/healthz")).header("x-pad", "a".repeat(20 * 1024)).send().await;
    let big = big.expect("the 431 must arrive, not a reset connection");
    assert_eq!(big.status().as_u16(), 431);

    // Many small headers: hyper's limit is 100.
    let mut many = http.get(server.at("/healthz"));
    for i in 0..50 {
        many = many.header(format!("x-h{i}"), "v");
    }
    assert_eq!(many.send().await.unwrap().status().as_u16(), 200);
    let mut too_many = http.get(server.at("/healthz"));
    for i in 0..120 {
        too_many = too_many.header(format!("x-h{i}"), "v");
    }
    assert_eq!(too_many.send().await.unwrap().status().as_u16(), 431);

    // The server is still fine afterwards.
    assert_eq!(fetch(&server.at("/healthz")).await.status, 200);
}

#[tokio::test]
async fn the_header_limit_is_exact() {
    let limit = 8 * 1024;
    let server = Server::start(Limits { max_header_bytes: limit, ..Limits::default() }).await;
    // A head (request line + headers + blank line) of exactly `len` bytes.
    let head = |len: usize| {
        let fixed = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: \r\n\r\n".len();
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {}\r\n\r\n", "a".repeat(len - fixed))
    };
    assert_eq!(head(limit).len(), limit);
    assert_eq!(raw_exchange(server.addr, head(limit).as_bytes()).await.0, 200);
    assert_eq!(raw_exchange(server.addr, head(limit + 1).as_bytes()).await.0, 431);
}

#[tokio::test]
async fn a_client_still_sending_its_oversized_head_gets_the_431() {
    // 10 MiB of headers (more than the socket buffers hold) from a client that writes everything before it reads (as most
    // clients do): the server gives up at 16 KiB, so it must drain the rest instead of
    // resetting the connection under the client's feet.
    let server = Server::short().await;
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100_000 {
        request.push_str(&format!("X-Pad-{i}: {}\r\n", "a".repeat(90)));
    }
    request.push_str("\r\n");
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let written = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(request.as_bytes())).await;
    written.expect("write stalled").expect("the server reset the connection while the client was writing");
    let (got, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{text:?}");
}

// ---------------------------------------------------------------- body size and JSON errors

#[tokio::test]
async fn a_body_over_the_limit_gets_413_json() {
    let server = Server::short().await;
    let url = server.at("/echo");

    let ok = post_json(&url, json!({ "username": "user1", "password": "pw" }).to_string()).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json(), json!({ "user": "user1" }));

    let big = json!({ "username": "user1", "password": "p".repeat(20 * 1024) }).to_string();
    post_json(&url, big).await.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn malformed_bodies_get_json_400_415_422() {
    let server = Server::short().await;
    let url = server.at("/echo");
    post_json(&url, r#"{"username":"#.into()).await.assert_error(400, "malformed_json");
    post_json(&url, r#"{"username":1,"password":"pw"}"#.into()).await.assert_error(422, "unprocessable_entity");
    let text = client().post(&url).header("content-type", "text/plain").body("{}").send().await.unwrap();
    Reply::from(text).await.assert_error(415, "unsupported_media_type");
    // Positive control.
    assert_eq!(post_json(&url, r#"{"username":"a","password":"b"}"#.into()).await.status, 200);
}

// ---------------------------------------------------------------- shutdown

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let mut server = Server::start(Limits { request_timeout: Duration::from_secs(5), ..Limits::default() }).await;
    let http = client();
    // An idle keep-alive connection must not hold shutdown up.
    assert_eq!(http.get(server.at("/healthz")).send().await.unwrap().status().as_u16(), 200);

    let in_flight = tokio::spawn(http.get(server.at("/slow?ms=600")).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let asked = Instant::now();
    let _ = server.stop.take().unwrap().send(());

    let res = in_flight.await.unwrap().expect("the in-flight request was cut off");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({ "slept_ms": 600 }));

    let finished = tokio::time::timeout(Duration::from_secs(3), &mut server.task).await;
    finished.expect("serve_until did not return").unwrap().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(3));
    assert!(TcpStream::connect(server.addr).await.is_err(), "still accepting after shutdown");
}
