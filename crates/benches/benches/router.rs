//! One authenticated `GET /me` through each server's axum router, in-process
//! (`tower::ServiceExt::oneshot`; no sockets, no HTTP parsing): the per-request cost of
//! authenticating, with the routing, metrics and JSON reply around it. `/healthz` on the
//! session-memory router is the same path without authentication.
//!
//! The routers are built exactly as the binaries build them (`config::build` from a
//! command line), with one demo user who logs in through `/login` first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{hint::black_box, time::Instant};

use auth_core::wire::TokenResponse;
use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderValue, Request, StatusCode, header},
};
use benches::ids;
use clap::Parser as _;
use criterion::{BenchmarkGroup, measurement::WallTime};
use jwt_server::keys::Alg;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const USER: &str = "user1";
const PASSWORD: &str = "demo-password";
/// Largest body the benchmark reads back (replies here are < 200 bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// The flags every system shares: two demo users, one hash at a time.
fn argv<'a>(binary: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec![binary, "--demo-users", "2", "--demo-password", PASSWORD, "--hash-concurrency", "1"];
    argv.extend_from_slice(extra);
    argv
}

async fn session_router(extra: &[&str]) -> Router {
    let cli = session_server::config::Cli::try_parse_from(argv("session-server", extra)).expect("flags");
    session_server::config::build(&cli.args).await.expect("session-server router")
}

async fn jwt_router(extra: &[&str]) -> Router {
    let cli = jwt_server::config::Cli::try_parse_from(argv("jwt-server", extra)).expect("flags");
    jwt_server::config::build(&cli.args).await.expect("jwt-server router")
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, axum::body::to_bytes(body, BODY_LIMIT).await.expect("body"))
}

fn login_request() -> Request<Body> {
    let body = serde_json::json!({"username": USER, "password": PASSWORD}).to_string();
    Request::post("/login").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).expect("request")
}

/// Log in; the header a request then authenticates with.
async fn log_in(router: &Router, session: bool) -> (header::HeaderName, HeaderValue) {
    let (status, headers, body) = call(router, login_request()).await;
    assert_eq!(status, StatusCode::OK, "login: {}", String::from_utf8_lossy(&body));
    if session {
        let set_cookie = headers.get(header::SET_COOKIE).expect("Set-Cookie").to_str().expect("ASCII");
        let pair = set_cookie.split(';').next().expect("name=value");
        (header::COOKIE, HeaderValue::from_str(pair).expect("cookie"))
    } else {
        let tokens: TokenResponse = serde_json::from_slice(&body).expect("token response");
        (header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", tokens.access_token)).expect("bearer"))
    }
}

fn get(path: &'static str, auth: Option<&(header::HeaderName, HeaderValue)>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    request.body(Body::empty()).expect("request")
}

/// Time `requests` one after another on the current-thread runtime; check one first.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &Runtime,
    router: &Router,
    path: &'static str,
    auth: Option<&(header::HeaderName, HeaderValue)>,
    expect: StatusCode,
) {
    assert!(
        ids::ROUTER_SYSTEMS.contains(&name),
        "{name} is not in benches::ids::ROUTER_SYSTEMS: micro-summary would not show it"
    );
    let (status, _, body) = rt.block_on(call(router, get(path, auth)));
    assert_eq!(status, expect, "{name} {path}: {}", String::from_utf8_lossy(&body));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    black_box(call(router, get(path, auth)).await);
                }
                began.elapsed()
            })
        })
    });
}

fn main() {
    let mut c = common::criterion();
    let rt = common::runtime();
    let keys = common::key_dir();
    let key_dir = keys.path().display().to_string();

    let memory = rt.block_on(session_router(&[]));
    let memory_auth = rt.block_on(log_in(&memory, true));

    let mut group = c.benchmark_group(ids::ROUTER_ME_GROUP);
    bench(&mut group, "session-memory", &rt, &memory, "/me", Some(&memory_auth), StatusCode::OK);

    if let Some((url, mut conn)) = rt.block_on(common::redis_or_skip("router/me/session-redis")) {
        let prefix = common::RedisPrefix::new();
        let redis =
            rt.block_on(session_router(&["--store", "redis", "--redis-url", &url, "--redis-prefix", &prefix.0]));
        let auth = rt.block_on(log_in(&redis, true));
        bench(&mut group, "session-redis", &rt, &redis, "/me", Some(&auth), StatusCode::OK);
        drop(redis);
        rt.block_on(prefix.cleanup(&mut conn));
    }

    for alg in Alg::ALL {
        let flag = alg.to_string();
        let router = rt.block_on(jwt_router(&["--alg", &flag, "--key-dir", &key_dir, "--access-ttl", "1h"]));
        let auth = rt.block_on(log_in(&router, false));
        bench(&mut group, alg.system(), &rt, &router, "/me", Some(&auth), StatusCode::OK);
    }
    group.finish();

    let mut group = c.benchmark_group(ids::ROUTER_HEALTHZ_GROUP);
    bench(&mut group, ids::ROUTER_BASELINE_SYSTEM, &rt, &memory, "/healthz", None, StatusCode::OK);
    group.finish();

    // A session cookie from another instance: well-formed, unknown here.
    let other = rt.block_on(session_router(&[]));
    let foreign = rt.block_on(log_in(&other, true));
    let mut group = c.benchmark_group(ids::ROUTER_REJECTED_GROUP);
    bench(&mut group, ids::ROUTER_BASELINE_SYSTEM, &rt, &memory, "/me", Some(&foreign), StatusCode::UNAUTHORIZED);
    group.finish();

    c.final_summary();
}
