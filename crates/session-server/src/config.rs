//! Command line of `session-server`, and turning it into a running server.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use auth_core::{
    Role,
    clock::Clock,
    config::{CommonArgs, RedisArgs, parse_duration},
    metrics::Metrics,
    throttle::LoginThrottle,
};
use axum::Router;

use crate::{
    app::{AppState, ControlUser, ROUTES, app},
    id::SessionId,
    store::{
        Session, SessionStore as _, Timeouts,
        cached::{CacheConfig, CachedStore},
        memory::MemoryStore,
        postgres::{PgStore, PgStoreConfig},
        redis::{RedisConfig, RedisStore},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// Sessions in this instance's memory (not shared between instances).
    Memory,
    /// Sessions in Redis, shared by every instance pointed at it.
    Redis,
    /// Sessions in a PostgreSQL table, shared by every instance pointed at it.
    Postgres,
    /// Sessions in a Redis Cluster (`--redis-url` lists seed nodes, comma-separated),
    /// spread over its shards by key.
    RedisCluster,
}

#[derive(Debug, clap::Parser)]
#[command(name = "session-server", version, about = "Cookie-session authentication server (authbench)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub args: Args,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read a password on stdin, print its argon2id hash for a --users-file line.
    HashPassword,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Where sessions live.
    #[arg(long, env = "AUTHBENCH_STORE", value_enum, default_value = "memory")]
    pub store: StoreKind,

    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub postgres: PgArgs,

    /// A session unused for this long ends.
    #[arg(long, env = "AUTHBENCH_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A session ends this long after login, however active.
    #[arg(long, env = "AUTHBENCH_ABSOLUTE_TIMEOUT", default_value = "8h", value_parser = parse_duration)]
    pub absolute_timeout: Duration,

    /// Keep a local copy of each session this instance reads, served for at most this
    /// long and dropped on logout through Redis pub/sub (`--store redis` only; the system
    /// is then `session-redis+cached`). Must be shorter than --idle-timeout: a session
    /// served from copies may end up to this much earlier than the idle timeout after its
    /// last use.
    #[arg(long, env = "AUTHBENCH_SESSION_CACHE_TTL", value_parser = parse_duration)]
    pub session_cache_ttl: Option<Duration>,

    /// Most sessions the local copy holds (with --session-cache-ttl); past that a session
    /// is served but not kept.
    #[arg(long, env = "AUTHBENCH_SESSION_CACHE_SIZE", default_value_t = 100_000)]
    pub session_cache_size: usize,

    /// Benchmarks only (`--store memory`): start with the sessions listed in FILE, one
    /// `<session id> <user> <role>` per line, as if each user had just logged in with that ID.
    /// authbench's live-sessions axis uses it to hold many sessions without logging each in.
    #[arg(long, env = "AUTHBENCH_PRELOAD_SESSIONS")]
    pub preload_sessions: Option<std::path::PathBuf>,

    /// authbench's control line: GET /me answers for user0 without reading or checking any
    /// credential, so a benchmark can measure the server stack without authentication.
    /// Never for a real deployment: every request is user0.
    #[arg(long, env = "AUTHBENCH_CONTROL")]
    pub control: bool,
}

/// Where and how `--store postgres` keeps sessions. `--store-timeout` (shared with Redis)
/// bounds every statement.
#[derive(Debug, Clone, clap::Args)]
pub struct PgArgs {
    /// PostgreSQL to use when the store is `postgres` (postgres:// or postgresql://).
    #[arg(long, env = "AUTHBENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,

    /// Schema for the session and login-throttle tables (created if missing).
    #[arg(long, env = "AUTHBENCH_DATABASE_SCHEMA", default_value = "authbench", value_parser = auth_core::pg::parse_schema)]
    pub database_schema: String,

    /// Most database connections this instance opens.
    #[arg(long, env = "AUTHBENCH_DATABASE_POOL", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub database_pool: u16,

    /// Write a session's sliding expiry only when at least this long has passed since it was
    /// last written (the touch throttling frameworks use); by default every request writes.
    /// A session may then end up to this much earlier than the idle timeout after its last
    /// use. Must be shorter than --idle-timeout.
    #[arg(long, env = "AUTHBENCH_TOUCH_AFTER", value_parser = parse_duration)]
    pub touch_after: Option<Duration>,

    /// Create the sessions table UNLOGGED: no WAL for session rows, which a crash loses.
    #[arg(long, env = "AUTHBENCH_UNLOGGED")]
    pub unlogged: bool,

    /// How often expired sessions are deleted (one instance at a time).
    #[arg(long, env = "AUTHBENCH_PURGE_EVERY", default_value = "60s", value_parser = parse_duration)]
    pub purge_every: Duration,
}

/// Build the router for `args`: users hashed, store connected.
pub async fn build(args: &Args) -> anyhow::Result<Router> {
    build_with_clock(args, Clock::System).await
}

/// [`build`] with the in-memory deadlines (`--store memory`'s session timeouts and login
/// throttle) read from `clock`, so tests can advance it. Redis keeps its own time.
pub async fn build_with_clock(args: &Args, clock: Clock) -> anyhow::Result<Router> {
    let timeouts = Timeouts { idle: args.idle_timeout, absolute: args.absolute_timeout };
    if args.store != StoreKind::Memory && args.preload_sessions.is_some() {
        anyhow::bail!("--preload-sessions applies to --store memory only (shared stores are written directly)");
    }
    // Loaded before the users are hashed: argon2id's freed working memory would otherwise
    // hold the first sessions and hide them from the process's RSS.
    let mut memory = None;
    let mut preloaded = Vec::new();
    if args.store == StoreKind::Memory {
        let store = MemoryStore::with_clock(timeouts, clock.clone());
        if let Some(path) = &args.preload_sessions {
            preloaded = preload(&store, path)?;
        }
        memory = Some(store);
    }
    let (users, passwords) = args.common.users()?;
    for (name, role) in &preloaded {
        let file = args.preload_sessions.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let at = || format!("--preload-sessions {file}");
        let user = users.get(name).with_context(|| format!("{}: unknown user {name:?}", at()))?;
        anyhow::ensure!(
            user.role == *role,
            "{}: {name} has the role {}, not {}",
            at(),
            user.role.as_str(),
            role.as_str()
        );
    }
    let instance: Arc<str> = Arc::from(args.common.instance_id.as_str());
    let control = if args.control {
        let user = users.get("user0").context("--control answers for user0: start it with --demo-users 1 or more")?;
        Some(ControlUser { user: user.name.clone(), role: user.role })
    } else {
        None
    };
    // The control reports itself as what it is, whatever its store.
    let system = |name: &'static str| if control.is_some() { "control" } else { name };
    if args.store != StoreKind::Postgres && (args.postgres.touch_after.is_some() || args.postgres.unlogged) {
        anyhow::bail!("--touch-after and --unlogged apply to --store postgres only");
    }
    if args.store != StoreKind::Redis && args.session_cache_ttl.is_some() {
        anyhow::bail!("--session-cache-ttl applies to --store redis only");
    }
    let cache = args.session_cache_ttl.map(|ttl| CacheConfig { ttl, capacity: args.session_cache_size });
    if let Some(cache) = cache {
        // Checked before connecting, so a bad flag is not reported as an unreachable Redis.
        cache.check(timeouts).map_err(anyhow::Error::msg)?;
    }
    Ok(match args.store {
        StoreKind::Memory => {
            let metrics = Arc::new(Metrics::new(system("session-memory"), &instance, ROUTES));
            let throttle = LoginThrottle::memory_with_clock(args.common.login_throttle(), clock.clone());
            let store = memory.unwrap_or_else(|| MemoryStore::with_clock(timeouts, clock));
            store.report_purges_to(metrics.purge.clone());
            app(AppState { store, users, passwords, instance, metrics }, throttle, control)
        }
        StoreKind::Redis | StoreKind::RedisCluster => {
            let cluster = args.store == StoreKind::RedisCluster;
            let config = RedisConfig {
                url: args.redis.url.clone(),
                cluster,
                key_prefix: args.redis.prefix.clone(),
                timeout: args.redis.store_timeout,
            };
            let store = RedisStore::connect(&config, timeouts).await.context(if cluster {
                "--store redis-cluster needs a formed Redis Cluster (see --redis-url)"
            } else {
                "--store redis needs a reachable Redis (see --redis-url)"
            })?;
            // Failed logins are counted where the sessions are, so every instance sees them.
            let throttle = LoginThrottle::redis_on(
                store.connection(),
                &args.redis.prefix,
                args.redis.store_timeout,
                args.common.login_throttle(),
            );
            if let Some(cache) = cache {
                let store = CachedStore::start(store, &args.redis.url, cache, timeouts)
                    .await
                    .context("--session-cache-ttl needs Redis pub/sub (see --redis-url)")?;
                let metrics = Arc::new(Metrics::new(system("session-redis+cached"), &instance, ROUTES));
                return Ok(app(AppState { store, users, passwords, instance, metrics }, throttle, control));
            }
            let name = if cluster { "session-redis-cluster" } else { "session-redis" };
            let metrics = Arc::new(Metrics::new(system(name), &instance, ROUTES));
            app(AppState { store, users, passwords, instance, metrics }, throttle, control)
        }
        StoreKind::Postgres => {
            let pg = &args.postgres;
            let config = PgStoreConfig {
                url: pg.database_url.clone(),
                schema: pg.database_schema.clone(),
                pool_size: usize::from(pg.database_pool),
                timeout: args.redis.store_timeout,
                touch_after: pg.touch_after,
                unlogged: pg.unlogged,
                purge_every: pg.purge_every,
            };
            // Checked here too, so a bad flag is not reported as an unreachable database.
            config.check(timeouts).map_err(anyhow::Error::msg)?;
            // Failed logins are counted in the same database, so every instance sees them.
            let (store, throttle) = PgStore::connect(&config, timeouts, args.common.login_throttle())
                .await
                .context("--store postgres needs a reachable PostgreSQL (see --database-url)")?;
            let throttle = LoginThrottle::Postgres(throttle);
            let metrics = Arc::new(Metrics::new(system("session-postgres"), &instance, ROUTES));
            store.report_purges_to(metrics.purge.clone());
            app(AppState { store, users, passwords, instance, metrics }, throttle, control)
        }
    })
}

/// Load a `--preload-sessions` file into `store`: `<session id> <user> <role>` per line,
/// each a session just logged in. Returns the distinct (user, role) pairs, which the caller
/// checks against the users once they are known. A malformed line is an error naming it.
fn preload(store: &MemoryStore, path: &std::path::Path) -> anyhow::Result<Vec<(String, Role)>> {
    use std::io::BufRead as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("--preload-sessions: cannot read {}", path.display()))?;
    let now_ms = store.now_ms();
    // One name per user, shared by its sessions, as logins share the directory's.
    let mut names: std::collections::HashMap<(String, Role), Arc<str>> = std::collections::HashMap::new();
    let mut batch = Vec::with_capacity(4096);
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = || format!("--preload-sessions {} line {}", path.display(), i + 1);
        let line = line.with_context(at)?;
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(id), Some(user), Some(role), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("{}: expected `<session id> <user> <role>`", at());
        };
        let id = SessionId::parse(id).with_context(|| format!("{}: not a session ID", at()))?;
        let role: Role = role.parse().map_err(|_| anyhow::anyhow!("{}: role {role:?} is not admin or user", at()))?;
        let name = names.entry((user.to_owned(), role)).or_insert_with(|| Arc::from(user)).clone();
        batch.push((id, Session { user: name, role, created_ms: now_ms }));
        if batch.len() == batch.capacity() {
            store.preload(batch.drain(..));
        }
    }
    store.preload(batch);
    Ok(names.into_keys().collect())
}

/// Bind, build, print the ready line, serve until SIGTERM/Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = auth_core::server::bind(&args.common.listen).await?;
    let router = build(&args).await?;
    auth_core::server::serve(listener, router, args.common.limits()).await
}
