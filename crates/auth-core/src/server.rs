//! Listening, the ready line, the routes and layers every server has, graceful shutdown.

use std::{
    future::Future,
    io::Write as _,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use crate::{error::ApiError, metrics::Metrics};

/// Largest request body accepted (login and refresh bodies are a few hundred bytes).
pub const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// How long in-flight requests get to finish after SIGTERM/Ctrl-C before we exit anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Bind `addr`, with an error that says what went wrong.
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let parsed: SocketAddr = addr
        .parse()
        .with_context(|| format!("--listen {addr:?} is not an IP:PORT address"))?;
    TcpListener::bind(parsed)
        .await
        .with_context(|| format!("cannot listen on {parsed}"))
}

/// Adds `/healthz`, `/metrics`, JSON 404/405 fallbacks, the body limit, `Cache-Control:
/// no-store` and request metrics to a server's router.
pub fn common_layers(router: Router, metrics: Arc<Metrics>) -> Router {
    let for_handler = metrics.clone();
    router
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route(
            "/metrics",
            get(move || {
                let m = for_handler.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        m.render(),
                    )
                }
            }),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(no_store))
        .layer(middleware::from_fn_with_state(metrics, track))
}

/// Responses carry credentials or user data; no cache may keep them.
async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn track(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    metrics.observe_request(route.as_ref().map(MatchedPath::as_str), res.status().as_u16(), started.elapsed());
    res
}

/// Serve `app` on `listener`: print the ready line, run until SIGTERM/Ctrl-C, then give
/// in-flight requests [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(listener: TcpListener, app: Router) -> anyhow::Result<()> {
    serve_until(listener, app, shutdown_signal()).await
}

/// [`serve`] with a caller-chosen shutdown trigger (tests use this).
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener has no local address")?;
    let listener = listener.tap_io(|tcp| {
        // Small request/response pairs: Nagle's algorithm would only add latency.
        let _ = tcp.set_nodelay(true);
    });
    announce(addr);

    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let mut rx_grace = rx.clone();
    tokio::select! {
        res = server => res.context("server failed"),
        _ = async move {
            let _ = rx_grace.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            eprintln!("shutdown: connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
            Ok(())
        }
    }
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
