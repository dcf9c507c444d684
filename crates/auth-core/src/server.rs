//! Listening, the ready line, the routes and layers every server has, the HTTP limits that
//! protect a server from slow or oversized requests ([`Limits`]), graceful shutdown.

use std::{
    convert::Infallible,
    future::Future,
    io::Write as _,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderValue, header},
    response::{IntoResponse as _, Response},
    routing::{future::RouteFuture, get},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::{error::ApiError, metrics::Metrics};

/// Largest request body accepted (login and refresh bodies are a few hundred bytes).
pub const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// How long in-flight requests get to finish after SIGTERM/Ctrl-C before we exit anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Bind `addr`, with an error that says what went wrong.
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let parsed: SocketAddr = addr.parse().with_context(|| format!("--listen {addr:?} is not an IP:PORT address"))?;
    TcpListener::bind(parsed).await.with_context(|| format!("cannot listen on {parsed}"))
}

/// Adds `/healthz`, `/metrics`, JSON 404/405 fallbacks, the body limit, `Cache-Control:
/// no-store` and request metrics to a server's router.
pub fn common_layers(router: Router, metrics: Arc<Metrics>) -> Router {
    let for_handler = metrics.clone();
    router
        // Static bytes: the answer never changes, so nothing is built per request.
        .route("/healthz", get(|| async { ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#) }))
        .route(
            "/metrics",
            get(move || {
                let m = for_handler.clone();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render()) }
            }),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(Track { metrics })
}

/// Request metrics and `Cache-Control: no-store` (responses carry credentials or user
/// data; no cache may keep them), as one layer. Written out rather than as
/// `middleware::from_fn` layers, which box a future and clone the inner service per
/// request each: this one keeps the inner future unboxed and looks the route's counters
/// up once, before the handler runs.
#[derive(Clone)]
struct Track {
    metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for Track {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tracked { inner, metrics: self.metrics.clone() }
    }
}

#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request> for Tracked<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = self.metrics.route_index(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
        TrackedFuture { inner: self.inner.call(req), metrics: self.metrics.clone(), route, started: Instant::now() }
    }
}

pin_project_lite::pin_project! {
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        metrics: Arc<Metrics>,
        route: usize,
        started: Instant,
    }
}

impl<F, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        res.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
        this.metrics.observe_route(*this.route, res.status().as_u16(), this.started.elapsed());
        Poll::Ready(Ok(res))
    }
}

/// What a client may cost the server before it is cut off. Both servers take these from
/// [`CommonArgs`](crate::config::CommonArgs) (`--header-read-timeout`, `--request-timeout`,
/// `--max-header-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection whose request head (request line and headers) has not fully arrived
    /// this long after the server started waiting for it is closed without a response
    /// (slowloris). hyper starts the clock whenever it waits for a head, so this is also
    /// how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// A request whose response is not ready this long after its head was read gets
    /// `503 {"error":"timeout"}` ([`ApiError::Timeout`]). It covers reading the body, so a
    /// client that trickles its body is cut off too.
    pub request_timeout: Duration,
    /// Largest request head in bytes; hyper answers a larger one (or one with more than
    /// 100 headers) with an empty-bodied `431 Request Header Fields Too Large` and closes.
    pub max_header_bytes: usize,
}

impl Limits {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
    /// Bounds of `--max-header-bytes`. The top stays under hyper's default read-buffer cap
    /// (~400 KiB), so the header limit is always the one that answers, with a 431.
    pub const MAX_HEADER_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=256 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// After hyper answers a malformed or oversized head itself, the client may still be
/// sending the rest of it. Closing a socket with unread input makes the kernel send a RST,
/// which can make the client fail its write or lose the response before reading it; so
/// half-close and read-and-discard for at most this long first (a "lingering close", as
/// nginx and Go's net/http do).
const LINGER_TIME: Duration = Duration::from_secs(1);

/// The router with the request timeout around it, as a hyper service. Written out rather
/// than `tower::timeout` + a mapping layer so the future stays unboxed and the timeout is
/// answered without allocating an error: per request this costs an `Arc` clone of the
/// router and one tokio timer entry.
#[derive(Clone)]
struct AppService {
    router: Router,
    timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for AppService {
    type Response = Response;
    type Error = Infallible;
    type Future = TimedResponse;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        // `Router::poll_ready` is always ready (axum documents it), so `call` directly.
        let response = tower::Service::call(&mut self.router.clone(), req);
        TimedResponse { response, deadline: tokio::time::sleep(self.timeout) }
    }
}

pin_project_lite::pin_project! {
    /// The router's response, or [`ApiError::Timeout`] once the deadline passes (dropping,
    /// and so cancelling, the handler).
    struct TimedResponse {
        #[pin]
        response: RouteFuture<Infallible>,
        #[pin]
        deadline: tokio::time::Sleep,
    }
}

impl Future for TimedResponse {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(res) = this.response.poll(cx) {
            return Poll::Ready(res);
        }
        ready!(this.deadline.poll(cx));
        let mut res = ApiError::Timeout.into_response();
        // This response does not pass through `common_layers`, so it gets no-store here.
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Poll::Ready(Ok(res))
    }
}

/// Serve `app` on `listener` with `limits`: print the ready line, run until SIGTERM/Ctrl-C,
/// then give in-flight requests [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) -> anyhow::Result<()> {
    serve_until(listener, app, limits, shutdown_signal()).await
}

/// [`serve`] with a caller-chosen shutdown trigger (tests use this).
///
/// HTTP/1.1 only, on hyper's connection builder rather than `axum::serve`, because that is
/// where the header read timeout and the header size limit live.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener has no local address")?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let service = AppService { router: app, timeout: limits.request_timeout };
    announce(addr);

    // Every connection task holds a receiver: `send(true)` asks them to finish, and
    // `closed()` resolves once the last one has.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Small request/response pairs: Nagle's algorithm would only add latency.
        let _ = tcp.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(tcp), service.clone());
        tokio::spawn(serve_connection(conn, stop_rx.clone()));
    }

    // Stop accepting, let in-flight requests finish (idle keep-alive connections close at
    // once), and do not wait for stragglers beyond the grace period.
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, stop_tx.closed()).await.is_err() {
        eprintln!("shutdown: connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    Ok(())
}

type Connection = http1::Connection<TokioIo<TcpStream>, AppService>;

async fn serve_connection(mut conn: Connection, mut stop: tokio::sync::watch::Receiver<bool>) {
    let result = tokio::select! {
        result = &mut conn => result,
        () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
            std::pin::Pin::new(&mut conn).graceful_shutdown();
            (&mut conn).await
        }
    };
    // hyper has already written its 400/414/431 for a bad head; see `LINGER_TIME`.
    if result.is_err_and(|e| e.is_parse()) {
        linger(conn.into_parts().io.into_inner()).await;
    }
    drop(stop);
}

async fn linger(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let _ = tcp.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        while let Ok(1..) = tcp.read(&mut buf).await {}
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// A failed `accept` for one client (reset before we got to it) is not our problem; running
/// out of file descriptors is, and retrying at once would spin, so pause (as hyper 0.14 did).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) {
        return;
    }
    eprintln!("accept failed: {e}; pausing for 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The ready line the harness waits for: exactly one stdout line, flushed at once.
fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `hash-password` subcommand shared by both binaries: read a password from stdin, print
/// its argon2id PHC string for a users file.
pub fn hash_password_command() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "empty password on stdin");
    anyhow::ensure!(
        password.len() <= crate::password::MAX_PASSWORD_BYTES,
        "password longer than {} bytes",
        crate::password::MAX_PASSWORD_BYTES
    );
    let hash = crate::password::hash_password(password, Default::default())?;
    println!("{hash}");
    Ok(())
}
