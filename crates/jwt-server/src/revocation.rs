//! Access-token revocation (`--revocation`): what `/logout` does to access tokens, and what
//! every authenticated request checks.
//!
//! - `none`: nothing. An access token stays valid until its `exp` (plus leeway) after
//!   logout; the request path does no extra work.
//! - `denylist`: logout writes the token to Redis; every request asks Redis (one `EXISTS`
//!   round trip, timed as a store `get`).
//! - `denylist-cached`: logout writes to Redis and publishes; every instance keeps a local
//!   copy, filled by a `SCAN` at start and kept current through pub/sub, so a request
//!   checks local memory only.
//!
//! Keys (`P` is `--redis-prefix`):
//! - `P deny:<jti>`: one access token, until its `exp` + leeway (`SET … PXAT`). The `iss`
//!   of the `(iss, jti)` pair is implied: every token this server accepts carries the
//!   configured issuer, and one prefix belongs to one deployment.
//! - `P deny-sid:<sid>`: every access token of one refresh family, until logout +
//!   access-ttl + leeway (the family's last token may have been issued just before the
//!   logout; none is issued after, because the family is revoked). Written when logout
//!   names the family by its refresh token (body) rather than by a bearer token: the
//!   server then does not know which access tokens are out, so each request checks its
//!   `jti` and its `sid`.
//! - channel `P deny`: one message per denial, `j <until-ms> <jti>` or `s <until-ms> <sid>`.
//!
//! Redis unreachable: fail closed everywhere. A logout that cannot write the denylist is
//! a 503 (the client retries; logout is idempotent). In `denylist` a request whose check
//! fails is a 503. In `denylist-cached` requests are 503 while the subscription is down,
//! until it is re-established and the local list re-synced (see [`CachedDenylist`]).
//! Starting in either mode without a reachable Redis is a start-up error.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use auth_core::{
    ApiError,
    config::RedisArgs,
    follow::Follower,
    metrics::{Metrics, StoreOp},
    store::{StoreError, bounded, redis_connect, spawn_purge, timed},
};
use redis::aio::ConnectionManager;

use crate::tokens::VerifiedClaims;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RevocationMode {
    /// Access tokens live until `exp` after logout.
    None,
    /// Logout denies the token in Redis; every request asks Redis.
    Denylist,
    /// Like `denylist`, but each instance checks a local copy kept current by pub/sub.
    DenylistCached,
}

/// What a logout puts on the denylist, and until when (Unix milliseconds).
#[derive(Debug, Clone, Copy)]
pub enum Deny<'a> {
    /// One access token.
    Token { jti: &'a str, until_ms: u64 },
    /// Every access token of a refresh family.
    Family { sid: &'a str, until_ms: u64 },
}

/// The revocation check of one instance; cheap to clone (it sits in the app state).
#[derive(Clone)]
pub enum Revocation {
    None,
    Denylist(RedisDenylist),
    Cached(CachedDenylist),
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Revocation::None => "Revocation::None",
            Revocation::Denylist(_) => "Revocation::Denylist",
            Revocation::Cached(_) => "Revocation::Cached",
        })
    }
}

impl Revocation {
    /// Connect what `mode` needs; for `denylist-cached` also wait for the first sync.
    pub async fn connect(mode: RevocationMode, redis: &RedisArgs) -> Result<Self, StoreError> {
        Ok(match mode {
            RevocationMode::None => Revocation::None,
            RevocationMode::Denylist => Revocation::Denylist(RedisDenylist::connect(redis).await?),
            RevocationMode::DenylistCached => {
                Revocation::Cached(CachedDenylist::start(RedisDenylist::connect(redis).await?, &redis.url).await?)
            }
        })
    }

    /// Reject a verified token that is on the denylist. Only called when the mode is not
    /// `none` (the caller matches first, so that path stays as it was).
    pub async fn check(&self, claims: &VerifiedClaims, metrics: &Metrics) -> Result<(), ApiError> {
        let denied = match self {
            Revocation::None => false,
            Revocation::Denylist(redis) => timed(metrics, StoreOp::Get, redis.is_denied(claims)).await?,
            Revocation::Cached(cached) => cached.is_denied(claims)?,
        };
        if denied { Err(ApiError::InvalidToken) } else { Ok(()) }
    }

    /// Put `deny` on the denylist of every instance. Fails closed: 503 when Redis does not
    /// take it.
    pub async fn deny(&self, deny: Deny<'_>, metrics: &Metrics) -> Result<(), ApiError> {
        match self {
            Revocation::None => Ok(()),
            Revocation::Denylist(redis) => timed(metrics, StoreOp::Revoke, redis.deny(deny)).await,
            Revocation::Cached(cached) => {
                // Local first: this instance rejects the token even when Redis is down.
                cached.insert(deny);
                timed(metrics, StoreOp::Revoke, cached.redis.deny(deny)).await
            }
        }
    }
}

/// The denylist in Redis.
#[derive(Clone)]
pub struct RedisDenylist {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
}

impl RedisDenylist {
    async fn connect(redis: &RedisArgs) -> Result<Self, StoreError> {
        Ok(Self {
            conn: redis_connect(&redis.url, redis.store_timeout).await?,
            prefix: Arc::from(redis.prefix.as_str()),
            timeout: redis.store_timeout,
        })
    }

    fn jti_key(&self, jti: &str) -> String {
        format!("{}deny:{jti}", self.prefix)
    }

    fn sid_key(&self, sid: &str) -> String {
        format!("{}deny-sid:{sid}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}deny", self.prefix)
    }

    async fn is_denied(&self, claims: &VerifiedClaims) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let found: i64 = bounded(
            self.timeout,
            redis::cmd("EXISTS").arg(self.jti_key(&claims.jti)).arg(self.sid_key(&claims.sid)).query_async(&mut conn),
        )
        .await?;
        Ok(found > 0)
    }

    /// `SET key PXAT until` and `PUBLISH` in one transaction, so no instance hears of a
    /// denial that is not stored (a re-sync would lose it).
    async fn deny(&self, deny: Deny<'_>) -> Result<(), StoreError> {
        let (key, until_ms, message) = match deny {
            Deny::Token { jti, until_ms } => (self.jti_key(jti), until_ms, format!("j {until_ms} {jti}")),
            Deny::Family { sid, until_ms } => (self.sid_key(sid), until_ms, format!("s {until_ms} {sid}")),
        };
        if until_ms <= auth_core::unix_millis() {
            return Ok(()); // already expired: nothing left to deny
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg("1")
            .arg("PXAT")
            .arg(until_ms)
            .ignore()
            .cmd("PUBLISH")
            .arg(self.channel())
            .arg(message)
            .ignore();
        let mut conn = self.conn.clone();
        bounded(self.timeout, pipe.query_async::<()>(&mut conn)).await
    }

    /// Every denial in Redis with its expiry: `SCAN` over the deny keys, then `PTTL` for
    /// each batch in one pipeline.
    async fn load(&self) -> Result<Vec<(bool, String, u64)>, StoreError> {
        let pattern = format!("{}deny*", glob_escape(&self.prefix));
        let jti_prefix = format!("{}deny:", self.prefix);
        let sid_prefix = format!("{}deny-sid:", self.prefix);
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = bounded(
                self.timeout,
                redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(&mut conn),
            )
            .await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("PTTL").arg(key);
                }
                let now = auth_core::unix_millis();
                let ttls: Vec<i64> = bounded(self.timeout, pipe.query_async(&mut conn)).await?;
                for (key, ttl) in keys.into_iter().zip(ttls) {
                    // -2: expired since the scan. -1 (no expiry) is never written by us.
                    let Ok(ttl) = u64::try_from(ttl) else { continue };
                    if let Some(jti) = key.strip_prefix(&jti_prefix) {
                        out.push((false, jti.to_owned(), now + ttl));
                    } else if let Some(sid) = key.strip_prefix(&sid_prefix) {
                        out.push((true, sid.to_owned(), now + ttl));
                    }
                }
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The denylist held in this instance's memory, kept current from Redis through
/// [`auth_core::follow`]: subscribed first, then every deny key loaded. While the
/// subscription is down every request is a 503, until it is back and the list re-loaded:
/// a message published while we were not listening would otherwise be missed for good and
/// a revoked token would silently work here until it expired.
#[derive(Clone)]
pub struct CachedDenylist {
    redis: RedisDenylist,
    local: Arc<Local>,
}

/// How often expired entries are dropped from memory.
const PURGE_EVERY: Duration = Duration::from_secs(5);

struct Local {
    // Read on every request, written once per logout and by the purge: a read-write lock,
    // so concurrent requests check the lists side by side instead of queueing on one mutex.
    // std's: no `.await` while it is held, and the critical sections are map lookups.
    lists: RwLock<Lists>,
    in_sync: AtomicBool,
    /// Where a re-sync loads the list from.
    redis: RedisDenylist,
}

#[derive(Default)]
struct Lists {
    jti: HashMap<String, u64>,
    sid: HashMap<String, u64>,
}

impl Local {
    fn insert(&self, is_sid: bool, id: &str, until_ms: u64) {
        let mut lists = self.lists.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let map = if is_sid { &mut lists.sid } else { &mut lists.jti };
        let slot = map.entry(id.to_owned()).or_insert(until_ms);
        *slot = (*slot).max(until_ms);
    }

    fn purge(&self) {
        let now = auth_core::unix_millis();
        let mut lists = self.lists.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        lists.jti.retain(|_, until| *until > now);
        lists.sid.retain(|_, until| *until > now);
    }
}

impl Follower for Local {
    fn resync(self: Arc<Self>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> {
        Box::pin(async move {
            for (is_sid, id, until) in self.redis.load().await? {
                self.insert(is_sid, &id, until);
            }
            Ok(())
        })
    }

    /// A message from the channel: `j <until-ms> <jti>` or `s <until-ms> <sid>`.
    fn message(&self, message: &str) {
        let mut parts = message.splitn(3, ' ');
        let (Some(kind), Some(until), Some(id)) = (parts.next(), parts.next(), parts.next()) else { return };
        let Ok(until) = until.parse::<u64>() else { return };
        match kind {
            "j" => self.insert(false, id, until),
            "s" => self.insert(true, id, until),
            _ => {}
        }
    }

    fn set_in_sync(&self, in_sync: bool) {
        self.in_sync.store(in_sync, Ordering::Release);
    }
}

impl CachedDenylist {
    async fn start(redis: RedisDenylist, url: &str) -> Result<Self, StoreError> {
        let local = Arc::new(Local { lists: RwLock::default(), in_sync: AtomicBool::new(false), redis: redis.clone() });
        spawn_purge(Arc::downgrade(&local), PURGE_EVERY, Local::purge);
        auth_core::follow::follow(url, redis.channel(), redis.timeout, &local).await?;
        Ok(Self { redis, local })
    }

    fn is_denied(&self, claims: &VerifiedClaims) -> Result<bool, ApiError> {
        if !self.local.in_sync.load(Ordering::Acquire) {
            return Err(ApiError::StoreUnavailable);
        }
        let lists = self.local.lists.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // No clock read: an entry outlives every token it names (a jti until that token's
        // exp + leeway, a sid until the family's last token's), so a stale entry that the
        // purge has not dropped yet only names tokens that no longer verify anyway.
        Ok(lists.jti.contains_key(claims.jti.as_str()) || lists.sid.contains_key(claims.sid.as_str()))
    }

    fn insert(&self, deny: Deny<'_>) {
        match deny {
            Deny::Token { jti, until_ms } => self.local.insert(false, jti, until_ms),
            Deny::Family { sid, until_ms } => self.local.insert(true, sid, until_ms),
        }
    }
}
