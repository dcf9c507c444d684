//! `authbench-peer`: what a team would build instead of authbench's servers, each the way
//! its library's documentation shows, so `authbench peers` can run ours beside it.
//!
//! - `axum`: bare axum 0.8 answering `/healthz` with the same static bytes as ours: the
//!   server stack with nothing of ours in it.
//! - `jwt`: axum + jsonwebtoken 12 as axum's own JWT example does it: the keys built once,
//!   the bearer token taken with `TypedHeader<Authorization<Bearer>>`, and
//!   `decode::<Claims>(token, &keys.decoding, &Validation::default())` per request (HS256;
//!   `exp` checked and required, nothing else).
//! - `sessions-memory` and `sessions-redis`: tower-sessions 0.14 with its `MemoryStore`, or
//!   with `tower-sessions-redis-store` 0.16 (fred) on the given Redis, as their READMEs set
//!   them up (`Expiry::OnInactivity`, `with_secure(false)` for plain HTTP).
//!
//! Every peer answers `POST /login {"username","password"}` (the password compared as a
//! string: no hash, unlike ours, since login is not what `authbench peers` measures),
//! `GET /me` with `{"user","role","instance"}` and `GET /healthz`, and prints the same
//! ready line as our servers: `listening on http://ADDR`.

use std::{io::Write as _, net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use axum_extra::{
    TypedHeader,
    headers::{Authorization, authorization::Bearer},
};
use clap::{Parser, ValueEnum};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::{
    RedisStore,
    fred::prelude::{ClientLike as _, Config, Pool},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Bare axum: `/healthz` only.
    Axum,
    /// axum + jsonwebtoken, HS256, as axum's JWT example.
    Jwt,
    /// tower-sessions with `MemoryStore`.
    SessionsMemory,
    /// tower-sessions with `tower-sessions-redis-store` on `--redis-url`.
    SessionsRedis,
}

#[derive(Debug, Parser)]
#[command(name = "authbench-peer", about = "A peer server for `authbench peers` (what users would build instead)")]
struct Cli {
    kind: Kind,

    /// Address to listen on; port 0 picks a free one (the ready line names it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Redis for `sessions-redis`.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,

    /// The HS256 secret of `jwt` (at least 32 bytes).
    #[arg(long, env = "AUTHBENCH_PEER_JWT_SECRET", default_value = "authbench-peer-secret-of-32-bytes!")]
    jwt_secret: String,

    /// The one password every user logs in with.
    #[arg(long, default_value = "demo-password")]
    demo_password: String,

    /// Named in `/me`'s `instance`, like our servers' `--instance-id`.
    #[arg(long, default_value = "peer-0")]
    instance_id: String,

    /// Idle timeout of a tower-sessions session, seconds.
    #[arg(long, default_value_t = 1800)]
    session_idle_secs: i64,
}

struct Peer {
    password: String,
    instance: String,
    keys: Option<Keys>,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    exp: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    name: String,
    role: String,
}

#[derive(Serialize)]
struct Me<'a> {
    user: &'a str,
    role: &'a str,
    instance: &'a str,
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "unauthenticated"}))).into_response()
}

fn role_of(username: &str) -> &'static str {
    if username == "admin" { "admin" } else { "user" }
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

async fn jwt_login(State(peer): State<Arc<Peer>>, Json(body): Json<LoginBody>) -> Response {
    let Some(keys) = &peer.keys else { return StatusCode::NOT_FOUND.into_response() };
    if body.password != peer.password {
        return unauthorized();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = Claims { role: role_of(&body.username).into(), sub: body.username, exp: now + 3600 };
    match encode(&Header::default(), &claims, &keys.encoding) {
        Ok(token) => Json(serde_json::json!({"access_token": token, "token_type": "Bearer"})).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn jwt_me(
    State(peer): State<Arc<Peer>>,
    TypedHeader(Authorization(bearer)): TypedHeader<Authorization<Bearer>>,
) -> Response {
    let Some(keys) = &peer.keys else { return StatusCode::NOT_FOUND.into_response() };
    match decode::<Claims>(bearer.token(), &keys.decoding, &Validation::default()) {
        Ok(data) => {
            Json(Me { user: &data.claims.sub, role: &data.claims.role, instance: &peer.instance }).into_response()
        }
        Err(_) => unauthorized(),
    }
}

async fn session_login(State(peer): State<Arc<Peer>>, session: Session, Json(body): Json<LoginBody>) -> Response {
    if body.password != peer.password {
        return unauthorized();
    }
    // As tower-sessions documents for a login: a new ID, so a fixed one cannot be kept.
    if session.cycle_id().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let user = User { role: role_of(&body.username).into(), name: body.username };
    match session.insert("user", &user).await {
        Ok(()) => Json(serde_json::json!({"user": user.name, "role": user.role})).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn session_me(State(peer): State<Arc<Peer>>, session: Session) -> Response {
    match session.get::<User>("user").await {
        Ok(Some(user)) => Json(Me { user: &user.name, role: &user.role, instance: &peer.instance }).into_response(),
        Ok(None) => unauthorized(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn sessions<S: SessionStore + Clone>(store: S, peer: Arc<Peer>, idle_secs: i64) -> Router {
    let layer = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(idle_secs)));
    Router::new()
        .route("/login", post(session_login))
        .route("/me", get(session_me))
        .layer(layer)
        .route("/healthz", get(healthz))
        .with_state(peer)
}

async fn router(cli: &Cli) -> anyhow::Result<Router> {
    anyhow::ensure!(cli.jwt_secret.len() >= 32, "--jwt-secret must be at least 32 bytes");
    let keys = match cli.kind {
        Kind::Jwt => Some(Keys {
            encoding: EncodingKey::from_secret(cli.jwt_secret.as_bytes()).context("bad --jwt-secret")?,
            decoding: DecodingKey::from_secret(cli.jwt_secret.as_bytes()).context("bad --jwt-secret")?,
        }),
        _ => None,
    };
    let peer = Arc::new(Peer { password: cli.demo_password.clone(), instance: cli.instance_id.clone(), keys });
    Ok(match cli.kind {
        Kind::Axum => Router::new().route("/healthz", get(healthz)),
        Kind::Jwt => Router::new()
            .route("/login", post(jwt_login))
            .route("/me", get(jwt_me))
            .route("/healthz", get(healthz))
            .with_state(peer),
        Kind::SessionsMemory => sessions(MemoryStore::default(), peer, cli.session_idle_secs),
        Kind::SessionsRedis => {
            let config =
                Config::from_url(&cli.redis_url).with_context(|| format!("bad --redis-url {}", cli.redis_url))?;
            let pool = Pool::new(config, None, None, None, 6).context("cannot build the Redis pool")?;
            pool.connect();
            pool.wait_for_connect().await.with_context(|| format!("cannot reach Redis at {}", cli.redis_url))?;
            sessions(RedisStore::new(pool), peer, cli.session_idle_secs)
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default().ok();
    let app = router(&cli).await?;
    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
