//! Command line of `jwt-server`, and turning it into a running server.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use auth_core::{
    UserDirectory,
    clock::Clock,
    config::{CommonArgs, RedisArgs, parse_duration},
    metrics::Metrics,
    throttle::LoginThrottle,
};
use axum::Router;

use crate::{
    app::{AppState, ROUTES, app},
    keys::{self, Alg},
    refresh::{Grant, RefreshStore, memory::MemoryRefreshStore, redis::RedisRefreshStore},
    revocation::{Revocation, RevocationMode},
    tokens::{RefreshToken, TokenConfig, TokenService, new_family_id},
};

/// Largest clock-skew allowance accepted (RFC 8725 leaves it to deployments; OWASP
/// suggests seconds, not minutes).
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RefreshStoreKind {
    /// Refresh tokens in this instance's memory.
    Memory,
    /// Refresh tokens in Redis, shared by every instance pointed at it.
    Redis,
}

#[derive(Debug, clap::Parser)]
#[command(
    name = "jwt-server",
    version,
    about = "JWT authentication server (authbench)",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub args: Args,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the signing key for an algorithm in a key directory.
    Keygen {
        #[arg(long, value_enum)]
        alg: Alg,
        #[arg(long)]
        key_dir: PathBuf,
        /// Replace an existing key (tokens signed with it stop verifying).
        #[arg(long)]
        force: bool,
    },
    /// Read a password on stdin, print its argon2id hash for a --users-file line.
    HashPassword,
}

fn parse_leeway(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > MAX_LEEWAY {
        return Err(format!("at most {}s", MAX_LEEWAY.as_secs()));
    }
    Ok(d)
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Signing algorithm; tokens with any other `alg` are rejected.
    #[arg(long, env = "AUTHBENCH_ALG", value_enum, default_value = "HS256")]
    pub alg: Alg,

    /// Directory with the key files (hs256.key, rs256.pem, es256.pem, ed25519.pem).
    #[arg(long, env = "AUTHBENCH_KEY_DIR", default_value = "keys")]
    pub key_dir: PathBuf,

    /// `iss` of issued tokens, required on verified ones.
    #[arg(long, env = "AUTHBENCH_ISSUER", default_value = "authbench")]
    pub issuer: String,

    /// `aud` of issued tokens, required on verified ones.
    #[arg(long, env = "AUTHBENCH_AUDIENCE", default_value = "authbench-api")]
    pub audience: String,

    /// Access-token lifetime: how long a token stays usable after logout.
    #[arg(long, env = "AUTHBENCH_ACCESS_TTL", default_value = "5m", value_parser = parse_duration)]
    pub access_ttl: Duration,

    /// Refresh-token lifetime (sliding: each rotation starts it again).
    #[arg(long, env = "AUTHBENCH_REFRESH_TTL", default_value = "14d", value_parser = parse_duration)]
    pub refresh_ttl: Duration,

    /// Clock-skew allowance on exp/nbf (at most 30s).
    #[arg(long, env = "AUTHBENCH_LEEWAY", default_value = "5s", value_parser = parse_leeway)]
    pub leeway: Duration,

    /// Where refresh tokens live.
    #[arg(long, env = "AUTHBENCH_REFRESH_STORE", value_enum, default_value = "memory")]
    pub refresh_store: RefreshStoreKind,

    /// What logout does to access tokens (see `jwt_server::revocation`): `none` leaves them
    /// valid until `exp`; `denylist` checks Redis on every request; `denylist-cached`
    /// checks a local copy kept current by Redis pub/sub. Both denylists need --redis-url.
    #[arg(long, env = "AUTHBENCH_REVOCATION", value_enum, default_value = "none")]
    pub revocation: RevocationMode,

    /// How signatures are verified (see `jwt_server::verifier`): `cached` keeps the key
    /// parsed for the life of the process; `stock` is jsonwebtoken's own verifier, which
    /// parses it on every request. Both accept and refuse exactly the same tokens.
    #[arg(long, env = "AUTHBENCH_JWT_VERIFIER", value_enum, default_value = "cached")]
    pub jwt_verifier: crate::verifier::Verifier,

    #[command(flatten)]
    pub redis: RedisArgs,

    /// Benchmarks only: start with this many refresh-token families already in the refresh
    /// store, spread over the users, whose tokens nobody holds. They take the memory (and
    /// the purge time) that as many logged-in users would; authbench's live-sessions axis
    /// uses it to measure what a family costs.
    #[arg(long, env = "AUTHBENCH_PRELOAD_REFRESH_FAMILIES", default_value_t = 0)]
    pub preload_refresh_families: u64,
}

/// Build the router for `args`: keys loaded, users hashed, refresh store connected.
pub async fn build(args: &Args) -> anyhow::Result<Router> {
    build_with_clock(args, Clock::System).await
}

/// [`build`] with the memory login throttle's windows read from `clock`, so tests can
/// advance it. Tokens and refresh tokens keep the system's time; Redis keeps its own.
pub async fn build_with_clock(args: &Args, clock: Clock) -> anyhow::Result<Router> {
    let keys = keys::load(args.alg, &args.key_dir)?;
    let tokens = TokenService::with_verifier(
        keys,
        TokenConfig {
            issuer: args.issuer.clone(),
            audience: args.audience.clone(),
            access_ttl: args.access_ttl,
            leeway: args.leeway,
        },
        args.jwt_verifier,
    );
    let instance: Arc<str> = Arc::from(args.common.instance_id.as_str());
    let metrics = Arc::new(Metrics::new(args.alg.system(), &instance, ROUTES));
    // Preloaded before the users are hashed: argon2id's freed working memory would
    // otherwise hold the first families and hide them from the process's RSS.
    let memory_refresh = match args.refresh_store {
        RefreshStoreKind::Memory => {
            let refresh = MemoryRefreshStore::new(args.refresh_ttl);
            refresh.report_purges_to(metrics.purge.clone());
            preload_families(&refresh, args.common.demo_users, args.preload_refresh_families).await?;
            Some(refresh)
        }
        RefreshStoreKind::Redis => None,
    };
    let (users, passwords) = args.common.users()?;
    let revocation = Revocation::connect(args.revocation, &args.redis)
        .await
        .context("--revocation denylist and denylist-cached need a reachable Redis (see --redis-url)")?;
    Ok(match memory_refresh {
        Some(refresh) => {
            let throttle = LoginThrottle::memory_with_clock(args.common.login_throttle(), clock);
            app(AppState { tokens, refresh, users, passwords, instance, metrics, revocation }, throttle)
        }
        None => {
            let refresh = RedisRefreshStore::connect(
                &args.redis.url,
                &args.redis.prefix,
                args.redis.store_timeout,
                args.refresh_ttl,
            )
            .await
            .context("--refresh-store redis needs a reachable Redis (see --redis-url)")?;
            preload_families(&refresh, args.common.demo_users, args.preload_refresh_families).await?;
            // Failed logins are counted where the refresh tokens are, so every instance
            // sees them.
            let throttle = args
                .redis
                .login_throttle(args.common.login_throttle())
                .await
                .context("--refresh-store redis needs a reachable Redis (see --redis-url)")?;
            app(AppState { tokens, refresh, users, passwords, instance, metrics, revocation }, throttle)
        }
    })
}

/// `--preload-refresh-families`: `count` families over the demo users in turn, each with
/// one fresh token whose plaintext is dropped at once, exactly as a login would store it.
async fn preload_families<R: RefreshStore>(store: &R, demo_users: u32, count: u64) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    anyhow::ensure!(
        demo_users > 0,
        "--preload-refresh-families spreads the families over the demo users: give --demo-users"
    );
    // Names and roles only: no password is hashed here.
    let demo = UserDirectory::demo(demo_users, "");
    let users: Vec<&auth_core::User> = demo.iter().collect();
    for i in 0..count {
        let user = users[(i % users.len() as u64) as usize];
        let grant = Grant { family: Arc::from(new_family_id()), user: user.name.clone(), role: user.role };
        store
            .create(&RefreshToken::generate().hash(), &grant)
            .await
            .context("--preload-refresh-families: the refresh store refused a family")?;
    }
    Ok(())
}

/// Bind, build, print the ready line, serve until SIGTERM/Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = auth_core::server::bind(&args.common.listen).await?;
    let router = build(&args).await?;
    auth_core::server::serve(listener, router, args.common.limits()).await
}
