//! `session-redis+cached` (`--store redis --session-cache-ttl D`): sessions in Redis, and
//! in each instance a bounded local copy of the sessions it has read, so most requests
//! cost no round trip. The mirror of `jwt-server`'s `denylist-cached`.
//!
//! - **Lifetime.** A copy is served for at most `--session-cache-ttl` after the read that
//!   fetched it (a `GETEX`, which slid the idle expiry in Redis); the next request after
//!   that reads Redis again and slides it again. So the sliding expiry stays true in the
//!   store by keeping the cache lifetime well below the idle timeout (it must be shorter):
//!   a session used without pause is touched at least once per cache lifetime, and may end
//!   up to one cache lifetime earlier than the idle timeout after its last use. The
//!   absolute deadline is checked on every hit.
//! - **Logout.** `/logout` removes the local copy, then deletes the key and publishes its
//!   ID on `P sess-inval` in one transaction; every instance drops its copy when the
//!   message arrives. That is the revocation window on another instance.
//! - **Lost subscription.** The copy is emptied and every request reads Redis (as
//!   `session-redis` does) until the subscription is back: nothing is served that a missed
//!   message could have revoked. A read whose answer may predate an invalidation that
//!   arrived meanwhile is not kept (an epoch counter says so).
//! - **Bound.** At most `--session-cache-size` sessions; when full, a session is served but
//!   not kept until the purge (every cache lifetime) has dropped expired copies.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use auth_core::{follow::Follower, store::spawn_purge};

use super::{Session, SessionStore, StoreError, Timeouts, redis::RedisStore};
use crate::id::SessionId;

/// What `--session-cache-ttl` and `--session-cache-size` configure.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub capacity: usize,
}

impl CacheConfig {
    /// The cache lifetime must be shorter than the idle timeout, or a session served only
    /// from copies would expire in Redis while in use.
    pub fn check(&self, timeouts: Timeouts) -> Result<(), String> {
        if self.ttl.is_zero() || self.ttl >= timeouts.idle {
            return Err(format!(
                "--session-cache-ttl ({}) must be above zero and shorter than --idle-timeout ({})",
                humantime::format_duration(self.ttl),
                humantime::format_duration(timeouts.idle)
            ));
        }
        if self.capacity == 0 {
            return Err("--session-cache-size must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct CachedStore {
    redis: RedisStore,
    local: Arc<Local>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore").field("redis", &self.redis).field("config", &self.local.config).finish()
    }
}

struct Entry {
    session: Session,
    /// Served until then; never later than the fetch + the cache lifetime.
    fresh_until: Instant,
}

struct Local {
    config: CacheConfig,
    map: RwLock<HashMap<SessionId, Entry>>,
    in_sync: AtomicBool,
    /// Bumped by every invalidation and every change of subscription state: a read that
    /// saw another value before its round trip does not keep its answer.
    epoch: AtomicU64,
}

impl Local {
    fn lookup(&self, id: &SessionId, now: Instant) -> Option<Session> {
        if !self.in_sync.load(Ordering::Acquire) {
            return None;
        }
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(id).filter(|e| now < e.fresh_until).map(|e| e.session.clone())
    }

    /// Keep `session`, fetched at `fetched` with the epoch at `epoch`, unless an
    /// invalidation or a lost subscription came in between.
    fn keep(&self, id: SessionId, session: &Session, fetched: Instant, epoch: u64) {
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.in_sync.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        // Full: not kept. Expired copies leave with the periodic purge, never here: a scan
        // of the whole map on a request path would cost every miss its size.
        if map.len() >= self.config.capacity && !map.contains_key(&id) {
            return;
        }
        map.insert(id, Entry { session: session.clone(), fresh_until: fetched + self.config.ttl });
    }

    fn forget(&self, id: &SessionId) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.drop_copy(id);
    }

    fn drop_copy(&self, id: &SessionId) {
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }

    fn purge(&self) {
        let now = Instant::now();
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, e| now < e.fresh_until);
    }

    fn len(&self) -> usize {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

impl Follower for Local {
    /// Nothing to load: a copy holds only what this instance reads after subscribing.
    fn resync(self: Arc<Self>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> {
        Box::pin(async move {
            self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
            Ok(())
        })
    }

    /// A message is the encoded ID of a session that ended.
    fn message(&self, payload: &str) {
        if let Some(id) = SessionId::parse(payload) {
            self.forget(&id);
        }
    }

    /// Under the map's lock, which [`Local::keep`] holds while it checks: a read that
    /// began out of sync (its epoch from before) can never be kept once back in sync, even
    /// if a logout was published while nobody listened.
    fn set_in_sync(&self, in_sync: bool) {
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.in_sync.store(in_sync, Ordering::Release);
        if !in_sync {
            map.clear();
        }
    }
}

impl CachedStore {
    /// Wrap `redis` (at `url`, single Redis) with a local copy; returns once subscribed.
    pub async fn start(
        redis: RedisStore,
        url: &str,
        config: CacheConfig,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let local = Arc::new(Local {
            config,
            map: RwLock::default(),
            in_sync: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        });
        spawn_purge(Arc::downgrade(&local), config.ttl.max(Duration::from_millis(100)), Local::purge);
        auth_core::follow::follow(url, redis.invalidation_channel(), redis.timeout(), &local).await?;
        Ok(Self { redis, local, timeouts })
    }

    /// Sessions held locally right now.
    pub fn cached(&self) -> usize {
        self.local.len()
    }

    /// Whether the subscription is up (copies are served only then).
    pub fn in_sync(&self) -> bool {
        self.local.in_sync.load(Ordering::Acquire)
    }
}

impl SessionStore for CachedStore {
    fn kind(&self) -> &'static str {
        "redis+cached"
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        if let Some(session) = self.local.lookup(id, now)
            && auth_core::unix_millis() < self.timeouts.absolute_deadline_ms(session.created_ms)
        {
            return Ok(Some(session));
        }
        let epoch = self.local.epoch.load(Ordering::Acquire);
        let found = self.redis.get(id).await?;
        match &found {
            Some(session) => self.local.keep(*id, session, now, epoch),
            // Not an invalidation (no epoch bump): a stream of unknown cookies must not
            // keep other reads from being kept.
            None => self.local.drop_copy(id),
        }
        Ok(found)
    }

    async fn put(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let epoch = self.local.epoch.load(Ordering::Acquire);
        let now = Instant::now();
        self.redis.put(id, session).await?;
        self.local.keep(*id, session, now, epoch);
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        // Local first: this instance refuses the session even if Redis does not answer.
        self.local.forget(id);
        self.redis.delete_and_announce(id).await
    }
}
