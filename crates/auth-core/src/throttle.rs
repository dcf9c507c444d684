//! Login brute-force throttling: at most `max_failures` password checks per account per
//! window; further attempts get 429 with `Retry-After` and no argon2 hash is computed.
//!
//! **Accounting.** Every login attempt is counted against the *submitted* username — known
//! or not, so an unknown user is throttled exactly like a real one — **before** its password
//! is checked ([`LoginThrottle::attempt`]), and a correct password erases the count
//! ([`LoginThrottle::succeeded`]). Counting at the start rather than after a failure is what
//! keeps the limit exact under parallel guessing: of many simultaneous wrong guesses for one
//! account, at most `max_failures` are ever hashed. The count therefore means "attempts since
//! the last successful login, within the window".
//!
//! **Window.** A fixed window that opens with the first counted attempt and lasts
//! `window`; it does not slide. Attempts refused while throttled are counted but never
//! extend it, so a lock always ends at most `window` after the failure that opened it, and
//! `Retry-After` is the time left in that window (rounded up to whole seconds). Whoever
//! keeps sending wrong passwords can lock an account again each window — that is the price
//! of a per-account limit; a lock never outlives its window, and it costs the attacker
//! `max_failures` requests per window.
//!
//! **Backends.** [`LoginThrottle::Memory`] counts in this process (bounded, see
//! [`MemoryThrottle`]); [`LoginThrottle::Redis`] counts in the Redis the instances share, so
//! failures on one instance count on all of them; [`LoginThrottle::Postgres`] does the same
//! in the database that holds the sessions (one upsert per attempt). Store errors fail
//! closed: the attempt is refused with 503, the check is never skipped.

use std::{
    collections::HashMap,
    hash::BuildHasher as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use redis::Script;

use crate::{
    ApiError,
    clock::Clock,
    store::{RedisConn, StoreError, bounded, redis_connect},
};

/// Longest prefix of a submitted username that identifies its counter. Real user names are
/// at most 128 bytes (the users-file limit), so they are used whole; a longer name is never
/// a real user and can only add to the count of the name it is cut to, never reset it.
/// This is what bounds a counter key however long the submitted name is.
pub const MAX_KEY_NAME_BYTES: usize = 128;

/// Most accounts the memory backend tracks at once (about 50 bytes each).
pub const DEFAULT_MEMORY_CAPACITY: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Attempts allowed per account per window; the next one is refused with 429.
    pub max_failures: u32,
    /// Length of the fixed window that the first counted attempt opens.
    pub window: Duration,
}

/// Counts login attempts per account; cheap to clone.
#[derive(Clone, Debug)]
pub enum LoginThrottle {
    /// In this process only: each instance counts on its own.
    Memory(MemoryThrottle),
    /// In Redis, shared by every instance that uses the same Redis and key prefix.
    Redis(RedisThrottle),
    /// In PostgreSQL, shared by every instance that uses the same database and schema.
    Postgres(PgThrottle),
}

impl LoginThrottle {
    /// Must be called inside a tokio runtime (it starts the purge task).
    pub fn memory(config: ThrottleConfig) -> Self {
        Self::memory_with_clock(config, Clock::System)
    }

    /// [`Self::memory`] with windows timed by `clock` (tests pass a manual one).
    pub fn memory_with_clock(config: ThrottleConfig, clock: Clock) -> Self {
        LoginThrottle::Memory(MemoryThrottle::with_clock(config, DEFAULT_MEMORY_CAPACITY, clock))
    }

    pub async fn redis(
        url: &str,
        key_prefix: &str,
        timeout: Duration,
        config: ThrottleConfig,
    ) -> Result<Self, StoreError> {
        Ok(LoginThrottle::Redis(RedisThrottle::connect(url, key_prefix, timeout, config).await?))
    }

    /// Counters on an open connection (a single Redis or a cluster).
    pub fn redis_on(conn: RedisConn, key_prefix: &str, timeout: Duration, config: ThrottleConfig) -> Self {
        LoginThrottle::Redis(RedisThrottle::on(conn, key_prefix, timeout, config))
    }

    /// Count one login attempt for `username`, before its password is checked.
    ///
    /// `Err(TooManyRequests)` when the account is over its limit (do not check the
    /// password); `Err(StoreUnavailable)` when Redis cannot answer (fail closed).
    pub async fn attempt(&self, username: &str) -> Result<(), ApiError> {
        match self {
            LoginThrottle::Memory(m) => m.attempt(username),
            LoginThrottle::Redis(r) => r.attempt(username).await,
            LoginThrottle::Postgres(p) => p.attempt(username).await,
        }
    }

    /// The password was right: forget the account's attempts.
    pub async fn succeeded(&self, username: &str) -> Result<(), ApiError> {
        match self {
            LoginThrottle::Memory(m) => {
                m.reset(username);
                Ok(())
            }
            LoginThrottle::Redis(r) => r.reset(username).await,
            LoginThrottle::Postgres(p) => p.reset(username).await,
        }
    }
}

/// The part of `username` that names its counter: at most [`MAX_KEY_NAME_BYTES`], cut at a
/// character boundary so a Redis key stays valid UTF-8.
pub fn key_name(username: &str) -> &str {
    let mut end = username.len().min(MAX_KEY_NAME_BYTES);
    while !username.is_char_boundary(end) {
        end -= 1;
    }
    &username[..end]
}

/// `Retry-After` is whole seconds; rounding down would send clients back too early. The time
/// left is held to the window: a store can report a little more (PostgreSQL's `now()` is
/// its transaction's start, so an upsert that waited on a row another one had just opened
/// sees that window end up to its wait beyond `now() + window`).
fn retry_after(left: Duration, window: Duration) -> ApiError {
    let millis = u64::try_from(left.min(window).as_millis()).unwrap_or(u64::MAX);
    ApiError::TooManyRequests { retry_after: Duration::from_secs(millis.div_ceil(1000).max(1)) }
}

// ---------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------

const SHARDS: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Entry {
    count: u32,
    window_ends: Instant,
}

struct Shared {
    /// Keyed by a per-process SipHash of the key name, so an entry is the same small size
    /// however long the name, and a client cannot pick names that land in one shard.
    shards: Box<[Mutex<HashMap<u64, Entry>>]>,
    hasher: std::collections::hash_map::RandomState,
    per_shard: usize,
    config: ThrottleConfig,
    clock: Clock,
}

/// Attempt counters in this process's memory, in shards behind `std::sync::Mutex`es (no
/// `.await` happens while one is held).
///
/// Bounded two ways: a background task drops counters whose window has ended, and each
/// shard holds at most `capacity / 16` counters. When a new account arrives at a full shard,
/// expired counters go first, then the not-yet-locked counter whose window ends soonest;
/// locked counters are never evicted. So a scanner sending random usernames cannot grow
/// memory, and cannot unlock a locked account either; pushing an unlocked victim's counter
/// out costs it about `capacity` password hashes per eviction. Only if a whole shard is
/// locked does a new account in it get 429 (fail closed) until the first window ends.
#[derive(Clone)]
pub struct MemoryThrottle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryThrottle").field("config", &self.shared.config).field("tracked", &self.len()).finish()
    }
}

/// A poisoned shard only means another request panicked mid-update of a plain map; the map
/// itself is still consistent, so keep counting.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryThrottle {
    /// Must be called inside a tokio runtime (it starts the purge task).
    pub fn new(config: ThrottleConfig, capacity: usize) -> Self {
        Self::with_clock(config, capacity, Clock::System)
    }

    /// [`Self::new`] with windows timed by `clock` (tests pass a manual one). The purge task
    /// still runs on the runtime's timer; it only reads `clock` to see what has ended.
    pub fn with_clock(config: ThrottleConfig, capacity: usize, clock: Clock) -> Self {
        let shared = Arc::new(Shared {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            config,
            clock,
        });
        let period = (config.window / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        crate::store::spawn_purge(Arc::downgrade(&shared), period, |shared: &Shared| {
            let now = shared.clock.now();
            for shard in shared.shards.iter() {
                lock(shard).retain(|_, e| e.window_ends > now);
            }
        });
        Self { shared }
    }

    /// Most counters held at once.
    pub fn capacity(&self) -> usize {
        self.shared.per_shard * SHARDS
    }

    /// Counters held now (including ended windows not yet purged).
    pub fn len(&self) -> usize {
        self.shared.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, username: &str) -> (&Mutex<HashMap<u64, Entry>>, u64) {
        let key = self.shared.hasher.hash_one(key_name(username));
        (&self.shared.shards[(key % SHARDS as u64) as usize], key)
    }

    pub fn attempt(&self, username: &str) -> Result<(), ApiError> {
        let ThrottleConfig { max_failures, window } = self.shared.config;
        let now = self.shared.clock.now();
        let (shard, key) = self.slot(username);
        let mut map = lock(shard);
        let entry = match map.get_mut(&key) {
            Some(e) if e.window_ends > now => {
                e.count = e.count.saturating_add(1);
                *e
            }
            Some(e) => {
                *e = Entry { count: 1, window_ends: now + window };
                *e
            }
            None => {
                if map.len() >= self.shared.per_shard {
                    make_room(&mut map, now, self.shared.config)?;
                }
                let e = Entry { count: 1, window_ends: now + window };
                map.insert(key, e);
                e
            }
        };
        if entry.count > max_failures {
            return Err(retry_after(entry.window_ends.saturating_duration_since(now), window));
        }
        Ok(())
    }

    pub fn reset(&self, username: &str) {
        let (shard, key) = self.slot(username);
        lock(shard).remove(&key);
    }
}

/// Free one place in a full shard (see [`MemoryThrottle`]), or refuse with 429.
fn make_room(map: &mut HashMap<u64, Entry>, now: Instant, config: ThrottleConfig) -> Result<(), ApiError> {
    let ThrottleConfig { max_failures, window } = config;
    let before = map.len();
    map.retain(|_, e| e.window_ends > now);
    if map.len() < before {
        return Ok(());
    }
    let victim = map.iter().filter(|(_, e)| e.count < max_failures).min_by_key(|(_, e)| e.window_ends).map(|(k, _)| *k);
    if let Some(k) = victim {
        map.remove(&k);
        return Ok(());
    }
    let first_end = map.values().map(|e| e.window_ends).min().unwrap_or(now);
    Err(retry_after(first_end.saturating_duration_since(now), window))
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// Count one attempt and report `{count, ms left in the window}` in one round trip. The
/// expiry is set only when the key has none (it was just created), so the window is fixed.
const ATTEMPT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
";

/// Attempt counters in Redis: key `<prefix>login-fail:<name>` (name cut to
/// [`MAX_KEY_NAME_BYTES`]), an integer that expires when its window ends.
#[derive(Clone)]
pub struct RedisThrottle {
    conn: RedisConn,
    prefix: Arc<str>,
    timeout: Duration,
    config: ThrottleConfig,
    attempt: Arc<Script>,
}

impl std::fmt::Debug for RedisThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisThrottle").field("prefix", &self.prefix).field("config", &self.config).finish()
    }
}

impl RedisThrottle {
    pub async fn connect(
        url: &str,
        key_prefix: &str,
        timeout: Duration,
        config: ThrottleConfig,
    ) -> Result<Self, StoreError> {
        Ok(Self::on(RedisConn::Single(redis_connect(url, timeout).await?), key_prefix, timeout, config))
    }

    /// Counters on an open connection. The script touches one key, so it runs on a
    /// cluster too (on the shard that owns the key).
    pub fn on(conn: RedisConn, key_prefix: &str, timeout: Duration, config: ThrottleConfig) -> Self {
        Self { conn, prefix: Arc::from(key_prefix), timeout, config, attempt: Arc::new(Script::new(ATTEMPT)) }
    }

    /// The Redis key counting `username`'s attempts.
    pub fn key(&self, username: &str) -> String {
        redis_key(&self.prefix, username)
    }

    pub async fn attempt(&self, username: &str) -> Result<(), ApiError> {
        let window_ms = u64::try_from(self.config.window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let mut call = self.attempt.prepare_invoke();
        call.key(self.key(username)).arg(window_ms);
        let (count, left_ms): (i64, i64) =
            bounded(self.timeout, call.invoke_async(&mut conn)).await.map_err(|_| ApiError::StoreUnavailable)?;
        if count > i64::from(self.config.max_failures) {
            return Err(retry_after(Duration::from_millis(left_ms.max(0) as u64), self.config.window));
        }
        Ok(())
    }

    pub async fn reset(&self, username: &str) -> Result<(), ApiError> {
        let mut conn = self.conn.clone();
        let _: i64 = bounded(self.timeout, redis::cmd("DEL").arg(self.key(username)).query_async(&mut conn))
            .await
            .map_err(|_| ApiError::StoreUnavailable)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// Attempt counters in `<schema>.login_attempts`: one row per account name (cut to
/// [`MAX_KEY_NAME_BYTES`]) with its count and the end of its window, on the database's
/// clock. One statement per attempt: an upsert that opens a new window when the old one has
/// ended, and counts otherwise. Ended rows are deleted by [`PgThrottle::purge`], which the
/// session store's purge task calls.
#[derive(Clone)]
pub struct PgThrottle {
    pool: deadpool_postgres::Pool,
    timeout: Duration,
    config: ThrottleConfig,
    attempt_sql: Arc<str>,
    reset_sql: Arc<str>,
    purge_sql: Arc<str>,
}

impl std::fmt::Debug for PgThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgThrottle").field("config", &self.config).finish()
    }
}

impl PgThrottle {
    /// The table's DDL, for [`crate::pg::ensure_schema`] (the store creates it with its own).
    pub fn ddl(schema: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {schema}.login_attempts (\
             name text PRIMARY KEY, count integer NOT NULL, window_ends timestamptz NOT NULL);"
        )
    }

    /// Counters in `schema` (already created, see [`Self::ddl`]).
    pub fn new(pool: deadpool_postgres::Pool, schema: &str, timeout: Duration, config: ThrottleConfig) -> Self {
        let attempt_sql = format!(
            "INSERT INTO {schema}.login_attempts AS a (name, count, window_ends) \
             VALUES ($1, 1, now() + $2::float8 * interval '1 millisecond') \
             ON CONFLICT (name) DO UPDATE SET \
               count = CASE WHEN a.window_ends > now() THEN LEAST(a.count, 2147483646) + 1 ELSE 1 END, \
               window_ends = CASE WHEN a.window_ends > now() THEN a.window_ends ELSE excluded.window_ends END \
             RETURNING count, (extract(epoch FROM window_ends - now()) * 1000)::bigint"
        );
        Self {
            pool,
            timeout,
            config,
            attempt_sql: attempt_sql.into(),
            reset_sql: format!("DELETE FROM {schema}.login_attempts WHERE name = $1").into(),
            purge_sql: format!("DELETE FROM {schema}.login_attempts WHERE window_ends <= now()").into(),
        }
    }

    pub async fn attempt(&self, username: &str) -> Result<(), ApiError> {
        let window_ms = f64::from(u32::try_from(self.config.window.as_millis()).unwrap_or(u32::MAX).max(1));
        let row = crate::pg::call(&self.pool, self.timeout, |c| async move {
            let stmt = c.prepare_cached(&self.attempt_sql).await?;
            c.query_one(&stmt, &[&key_name(username), &window_ms]).await
        })
        .await
        .map_err(|_| ApiError::StoreUnavailable)?;
        let (count, left_ms): (i32, i64) = (row.get(0), row.get(1));
        if i64::from(count) > i64::from(self.config.max_failures) {
            return Err(retry_after(Duration::from_millis(left_ms.max(0) as u64), self.config.window));
        }
        Ok(())
    }

    pub async fn reset(&self, username: &str) -> Result<(), ApiError> {
        crate::pg::call(&self.pool, self.timeout, |c| async move {
            let stmt = c.prepare_cached(&self.reset_sql).await?;
            c.execute(&stmt, &[&key_name(username)]).await
        })
        .await
        .map(|_| ())
        .map_err(|_| ApiError::StoreUnavailable)
    }

    /// Delete counters whose window has ended; returns how many.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        let purge = self.purge_sql.as_ref();
        crate::pg::call(&self.pool, self.timeout.max(Duration::from_secs(10)), |c| async move {
            c.execute(purge, &[]).await
        })
        .await
    }
}

/// `<prefix>login-fail:<name cut to MAX_KEY_NAME_BYTES>`.
pub fn redis_key(prefix: &str, username: &str) -> String {
    format!("{prefix}login-fail:{}", key_name(username))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn config(max_failures: u32, window: Duration) -> ThrottleConfig {
        ThrottleConfig { max_failures, window }
    }

    /// A throttle on a manual clock, and the clock: windows end when the test says so.
    fn on_manual_clock(config: ThrottleConfig, capacity: usize) -> (MemoryThrottle, ManualClock) {
        let clock = ManualClock::new();
        (MemoryThrottle::with_clock(config, capacity, clock.clone().into()), clock)
    }

    fn is_throttled(r: &Result<(), ApiError>) -> bool {
        matches!(r, Err(ApiError::TooManyRequests { .. }))
    }

    #[tokio::test]
    async fn the_attempt_after_the_limit_is_refused_until_a_success_resets() {
        let t = MemoryThrottle::new(config(3, Duration::from_secs(60)), 1000);
        for _ in 0..3 {
            assert!(t.attempt("alice").is_ok());
        }
        let refused = t.attempt("alice");
        let Err(ApiError::TooManyRequests { retry_after }) = refused else { panic!("{refused:?}") };
        assert_eq!(retry_after, Duration::from_secs(60), "rounded up to the window's end");
        assert!(t.attempt("bob").is_ok(), "other accounts are unaffected");
        t.reset("alice");
        assert!(t.attempt("alice").is_ok());
    }

    #[tokio::test]
    async fn the_window_is_fixed_and_ends_by_itself() {
        let (t, clock) = on_manual_clock(config(1, Duration::from_millis(300)), 1000);
        assert!(t.attempt("alice").is_ok());
        // Refused attempts during the window do not push its end back.
        for _ in 0..5 {
            clock.advance(Duration::from_millis(40));
            assert!(is_throttled(&t.attempt("alice")));
        }
        clock.advance(Duration::from_millis(150));
        assert!(t.attempt("alice").is_ok(), "300 ms after the first attempt the lock is over");
    }

    #[tokio::test]
    async fn long_names_share_the_counter_of_their_bounded_prefix() {
        let t = MemoryThrottle::new(config(1, Duration::from_secs(60)), 1000);
        let base = "é".repeat(MAX_KEY_NAME_BYTES); // 2 bytes each: the cut falls inside one
        let long_a = format!("{base}a");
        assert_eq!(key_name(&long_a).len(), MAX_KEY_NAME_BYTES);
        assert!(t.attempt(&long_a).is_ok());
        assert!(is_throttled(&t.attempt(&format!("{base}b"))));
        assert_eq!(key_name("user1"), "user1");
        assert_eq!(redis_key("p:", "user1"), "p:login-fail:user1");
        assert_eq!(redis_key("p:", &"x".repeat(10_000)).len(), "p:login-fail:".len() + MAX_KEY_NAME_BYTES);
    }

    #[tokio::test]
    async fn random_usernames_cannot_grow_the_map_past_its_capacity() {
        let t = MemoryThrottle::new(config(5, Duration::from_secs(60)), 64);
        assert_eq!(t.capacity(), 64);
        // A victim with a few failures, locked: never evicted.
        for _ in 0..5 {
            assert!(t.attempt("victim").is_ok());
        }
        for i in 0..20_000 {
            assert!(t.attempt(&format!("scan-{i}")).is_ok(), "unlocked counters make room");
        }
        assert!(t.len() <= 64, "{} counters", t.len());
        assert!(is_throttled(&t.attempt("victim")), "the scan did not unlock the victim");
    }

    #[tokio::test]
    async fn a_shard_full_of_locked_accounts_fails_closed_until_windows_end() {
        // With one attempt allowed, every account seen once is locked.
        let (t, clock) = on_manual_clock(config(1, Duration::from_millis(300)), 16);
        let results: Vec<_> = (0..500).map(|i| t.attempt(&format!("scan-{i}"))).collect();
        assert!(t.len() <= 16);
        let refused = results.iter().filter(|r| is_throttled(r)).count();
        assert!(refused > 0 && refused < 500, "{refused} refused");
        for r in &results {
            if let Err(ApiError::TooManyRequests { retry_after }) = r {
                assert_eq!(*retry_after, Duration::from_secs(1));
            }
        }
        clock.advance(Duration::from_millis(350));
        assert!(t.attempt("newcomer").is_ok(), "ended windows free their places");
    }

    #[tokio::test]
    async fn ended_windows_are_purged_without_a_read() {
        let (t, clock) = on_manual_clock(config(5, Duration::from_millis(100)), 1000);
        for i in 0..50 {
            assert!(t.attempt(&format!("u{i}")).is_ok());
        }
        assert_eq!(t.len(), 50);
        clock.advance(Duration::from_millis(400));
        // The windows ended on the clock at once; the sleep waits only for the purge task,
        // which ticks (every 100 ms here) on the runtime's real timer. Paused runtime time
        // would need tokio's test-util, which a workspace-wide `cargo bench` would then
        // compile into the code it measures.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(t.is_empty(), "{} left", t.len());
    }

    #[test]
    fn flags_default_to_five_attempts_in_fifteen_minutes() {
        use clap::Parser as _;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            common: crate::config::CommonArgs,
        }
        let defaults = Cli::try_parse_from(["t"]).unwrap().common.login_throttle();
        assert_eq!(defaults, config(5, Duration::from_secs(15 * 60)));
        let set = Cli::try_parse_from(["t", "--login-max-failures", "3", "--login-failure-window", "1s"]).unwrap();
        assert_eq!(set.common.login_throttle(), config(3, Duration::from_secs(1)));
        for bad in [["--login-max-failures", "0"], ["--login-failure-window", "0s"], ["--login-max-failures", "-1"]] {
            assert!(Cli::try_parse_from(["t", bad[0], bad[1]]).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let secs = |d| match retry_after(d, Duration::from_secs(900)) {
            ApiError::TooManyRequests { retry_after } => retry_after.as_secs(),
            _ => 0,
        };
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::ZERO), 1);
        assert_eq!(secs(Duration::from_millis(1001)), 2);
        assert_eq!(secs(Duration::from_secs(900)), 900);
        assert_eq!(secs(Duration::from_millis(900_001)), 900, "never beyond the window");
    }
}
