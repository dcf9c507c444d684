//! Sessions in this instance's memory: fast, and invisible to every other instance.
//!
//! The map is split into shards, each behind its own `std::sync::Mutex`, so concurrent
//! requests rarely wait on each other. A std mutex (not tokio's) is right here because no
//! `.await` happens while a shard is locked. A background task purges expired entries; it
//! holds only a `Weak` reference and ends when the last store handle is dropped.
//!
//! Deadlines are read from an [`auth_core::clock::Clock`]: the system clock in the server,
//! a manual one in tests, so expiry is tested without sleeping.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use auth_core::{clock::Clock, metrics::PurgeStats};

use super::{Session, SessionStore, StoreError, Timeouts};
use crate::id::SessionId;

const SHARDS: usize = 64;

struct Entry {
    session: Session,
    /// Unix ms after which the entry is dead.
    expires_ms: u64,
}

struct Shared {
    shards: Box<[Mutex<HashMap<SessionId, Entry>>]>,
    timeouts: Timeouts,
    clock: Clock,
    /// Where each purge's duration goes (`/metrics`), once the server has said so.
    purges: std::sync::OnceLock<Arc<PurgeStats>>,
}

#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("sessions", &self.len()).finish()
    }
}

impl MemoryStore {
    /// Must be called inside a tokio runtime (it starts the purge task).
    pub fn new(timeouts: Timeouts) -> Self {
        Self::with_clock(timeouts, Clock::System)
    }

    /// [`Self::new`] with deadlines read from `clock` (tests pass a manual one). The purge
    /// task still runs on the runtime's timer; it only reads `clock` to see what has expired.
    pub fn with_clock(timeouts: Timeouts, clock: Clock) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        let shared = Arc::new(Shared { shards, timeouts, clock, purges: std::sync::OnceLock::new() });
        let period =
            (timeouts.idle.min(timeouts.absolute) / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        auth_core::store::spawn_purge(Arc::downgrade(&shared), period, |shared: &Shared| {
            let started = std::time::Instant::now();
            let now = shared.clock.unix_millis();
            for shard in shared.shards.iter() {
                lock(shard).retain(|_, e| e.expires_ms > now);
            }
            if let Some(stats) = shared.purges.get() {
                stats.observe(started.elapsed());
            }
        });
        Self { shared }
    }

    /// Count every purge's duration into `stats` (the server's `/metrics`).
    pub fn report_purges_to(&self, stats: Arc<PurgeStats>) {
        let _ = self.shared.purges.set(stats);
    }

    /// Add `sessions` as if each had just logged in (`--preload-sessions`).
    pub fn preload(&self, sessions: impl IntoIterator<Item = (SessionId, Session)>) {
        let t = self.shared.timeouts;
        for (id, session) in sessions {
            let expires_ms =
                (session.created_ms + t.idle.as_millis() as u64).min(t.absolute_deadline_ms(session.created_ms));
            lock(self.shard(&id)).insert(id, Entry { session, expires_ms });
        }
    }

    fn shard(&self, id: &SessionId) -> &Mutex<HashMap<SessionId, Entry>> {
        &self.shared.shards[id.shard_byte() as usize % SHARDS]
    }

    /// Live entries (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.shared.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A poisoned shard only means another request panicked mid-update of a plain map; the
/// map itself is still consistent, so keep serving.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn now_ms(&self) -> u64 {
        self.shared.clock.unix_millis()
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.shared.clock.unix_millis();
        let t = self.shared.timeouts;
        let mut shard = lock(self.shard(id));
        let Some(entry) = shard.get_mut(id) else { return Ok(None) };
        if entry.expires_ms <= now {
            shard.remove(id);
            return Ok(None);
        }
        entry.expires_ms = (now + t.idle.as_millis() as u64).min(t.absolute_deadline_ms(entry.session.created_ms));
        Ok(Some(entry.session.clone()))
    }

    async fn put(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let t = self.shared.timeouts;
        let expires_ms =
            (session.created_ms + t.idle.as_millis() as u64).min(t.absolute_deadline_ms(session.created_ms));
        lock(self.shard(id)).insert(*id, Entry { session: session.clone(), expires_ms });
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(lock(self.shard(id)).remove(id).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{Role, clock::ManualClock};

    fn session(created_ms: u64) -> Session {
        Session { user: Arc::from("user1"), role: Role::User, created_ms }
    }

    /// A store on a manual clock, and the clock: sessions expire when the test says so.
    fn on_manual_clock(timeouts: Timeouts) -> (MemoryStore, ManualClock) {
        let clock = ManualClock::new();
        (MemoryStore::with_clock(timeouts, clock.clone().into()), clock)
    }

    #[tokio::test]
    async fn get_slides_idle_deadline_but_not_past_absolute() {
        let t = Timeouts { idle: Duration::from_millis(300), absolute: Duration::from_millis(700) };
        let (store, clock) = on_manual_clock(t);
        let id = SessionId::generate();
        store.put(&id, &session(store.now_ms())).await.unwrap();
        for _ in 0..3 {
            clock.advance(Duration::from_millis(150));
            assert!(store.get(&id).await.unwrap().is_some(), "used within idle: alive");
        }
        clock.advance(Duration::from_millis(300));
        assert!(store.get(&id).await.unwrap().is_none(), "past absolute: gone");
    }

    #[tokio::test]
    async fn idle_sessions_expire_and_are_purged() {
        let t = Timeouts { idle: Duration::from_millis(100), absolute: Duration::from_secs(60) };
        let (store, clock) = on_manual_clock(t);
        let id = SessionId::generate();
        store.put(&id, &session(store.now_ms())).await.unwrap();
        assert_eq!(store.len(), 1);
        clock.advance(Duration::from_millis(400));
        // Expired on the clock at once; the sleep waits only for the purge task, which ticks
        // (every 100 ms here) on the runtime's real timer (see the throttle's purge test).
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.len(), 0, "purge task removed the idle entry without a read");
        assert!(store.get(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn delete_reports_existence() {
        let store = MemoryStore::new(Timeouts { idle: Duration::from_secs(60), absolute: Duration::from_secs(60) });
        let id = SessionId::generate();
        store.put(&id, &session(auth_core::unix_millis())).await.unwrap();
        assert!(store.delete(&id).await.unwrap());
        assert!(!store.delete(&id).await.unwrap());
    }
}
