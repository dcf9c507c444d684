//! Refresh tokens in this instance's memory. One mutex guards tokens and families
//! together, which is what makes rotation atomic; refreshes are rare next to `/me`, so the
//! single lock is not contended. No `.await` happens while it is held.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use auth_core::metrics::PurgeStats;

use super::{Grant, RefreshStore, Rejected, Rotation, StoreError};
use crate::tokens::TokenHash;

struct TokenEntry {
    grant: Grant,
    expires_ms: u64,
    used: bool,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<TokenHash, TokenEntry>,
    /// Live families and when they end; a revoked family is simply absent.
    families: HashMap<Arc<str>, u64>,
}

struct Shared {
    inner: Mutex<Inner>,
    ttl_ms: u64,
    /// Where each purge's duration goes (`/metrics`), once the server has said so.
    purges: std::sync::OnceLock<Arc<PurgeStats>>,
}

#[derive(Clone)]
pub struct MemoryRefreshStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryRefreshStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryRefreshStore")
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryRefreshStore {
    /// Must be called inside a tokio runtime (it starts the purge task).
    pub fn new(ttl: Duration) -> Self {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            ttl_ms: ttl.as_millis() as u64,
            purges: std::sync::OnceLock::new(),
        });
        let period = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        auth_core::store::spawn_purge(Arc::downgrade(&shared), period, |shared: &Shared| {
            let started = std::time::Instant::now();
            let now = auth_core::unix_millis();
            let mut inner = lock(&shared.inner);
            inner.tokens.retain(|_, t| t.expires_ms > now);
            inner.families.retain(|_, until| *until > now);
            drop(inner);
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
}

impl RefreshStore for MemoryRefreshStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn create(&self, token: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        let expires_ms = auth_core::unix_millis() + self.shared.ttl_ms;
        let mut inner = lock(&self.shared.inner);
        inner.families.insert(grant.family.clone(), expires_ms);
        inner.tokens.insert(*token, TokenEntry { grant: grant.clone(), expires_ms, used: false });
        Ok(())
    }

    async fn rotate(&self, old: &TokenHash, new: &TokenHash) -> Result<Rotation, StoreError> {
        let now = auth_core::unix_millis();
        let mut guard = lock(&self.shared.inner);
        let inner = &mut *guard;
        let Some(entry) = inner.tokens.get_mut(old) else {
            return Ok(Rotation::Rejected(Rejected::Unknown));
        };
        let family = entry.grant.family.clone();
        let family_alive = inner.families.get(&family).is_some_and(|until| *until > now);
        if !family_alive {
            return Ok(Rotation::Rejected(Rejected::Revoked));
        }
        if entry.used {
            inner.families.remove(&family);
            return Ok(Rotation::Rejected(Rejected::Reused));
        }
        if entry.expires_ms <= now {
            return Ok(Rotation::Rejected(Rejected::Expired));
        }
        entry.used = true;
        let grant = entry.grant.clone();
        let expires_ms = now + self.shared.ttl_ms;
        inner.families.insert(family, expires_ms);
        inner.tokens.insert(*new, TokenEntry { grant: grant.clone(), expires_ms, used: false });
        Ok(Rotation::Rotated(grant))
    }

    async fn family_of(&self, token: &TokenHash) -> Result<Option<Arc<str>>, StoreError> {
        Ok(lock(&self.shared.inner).tokens.get(token).map(|t| t.grant.family.clone()))
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        lock(&self.shared.inner).families.remove(family);
        Ok(())
    }
}
