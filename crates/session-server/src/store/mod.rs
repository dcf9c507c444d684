//! Where sessions live. The session logic in [`crate::app`] talks to a [`SessionStore`]
//! and never knows which one: [`memory::MemoryStore`] (per instance), or
//! [`redis::RedisStore`] and [`postgres::PgStore`] (shared by every instance), or
//! [`cached::CachedStore`] (Redis, with a local copy in each instance).
//!
//! Contract every store keeps: an entry disappears at
//! `min(last_use + idle, created + absolute)`, and [`SessionStore::get`] both reads the
//! session and pushes its idle deadline forward in **one** round trip.

pub mod cached;
pub mod memory;
pub mod postgres;
pub mod redis;

use std::{future::Future, sync::Arc, time::Duration};

use auth_core::Role;

use crate::id::SessionId;

/// What the server keeps per session. The client only ever holds the ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: Arc<str>,
    pub role: Role,
    /// Unix milliseconds at login; the absolute timeout counts from here.
    pub created_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Inactivity after which a session ends.
    pub idle: Duration,
    /// Age after which a session ends however active it is.
    pub absolute: Duration,
}

impl Timeouts {
    /// Unix millisecond at which a session created at `created_ms` ends regardless.
    pub fn absolute_deadline_ms(&self, created_ms: u64) -> u64 {
        created_ms.saturating_add(self.absolute.as_millis() as u64)
    }
}

pub use auth_core::store::StoreError;

pub trait SessionStore: Clone + Send + Sync + 'static {
    /// Store kind as it appears in metrics and results (`memory`, `redis`, `postgres`).
    fn kind(&self) -> &'static str;

    /// Unix ms now by the clock this store's deadlines are checked against; a new session
    /// is stamped with it, so its absolute timeout counts on that same clock.
    fn now_ms(&self) -> u64 {
        auth_core::unix_millis()
    }

    /// Read a session and slide its idle deadline, in one round trip. `None` when unknown
    /// or expired.
    fn get(&self, id: &SessionId) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Store a new session.
    fn put(&self, id: &SessionId, session: &Session) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Remove a session; `true` when it existed.
    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
