//! Refresh tokens: stored hashed, rotated on every use, consumed atomically.
//!
//! Each login starts a *family*. `/refresh` consumes the presented token and issues the
//! next one in the same family. Presenting a token that was already rotated means two
//! parties hold the same family (one of them stole it), so the whole family is revoked
//! (RFC 9700 §4.14.2, "refresh token rotation"). `/logout` revokes the family too.
//!
//! Two implementations: [`memory::MemoryRefreshStore`] (one instance) and
//! [`redis::RedisRefreshStore`] (shared; atomic through Lua scripts).

pub mod memory;
pub mod redis;

use std::{future::Future, sync::Arc};

use auth_core::Role;
pub use auth_core::store::StoreError;

use crate::tokens::TokenHash;

/// Who a refresh-token family belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub family: Arc<str>,
    pub user: Arc<str>,
    pub role: Role,
}

/// Why a refresh was refused (the client sees the same 401 for all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    Unknown,
    Expired,
    /// The family was revoked (logout, or an earlier reuse).
    Revoked,
    /// The token had already been rotated: the family is revoked now.
    Reused,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    Rotated(Grant),
    Rejected(Rejected),
}

pub trait RefreshStore: Clone + Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// Start a new family whose first token is `token`.
    fn create(&self, token: &TokenHash, grant: &Grant) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically consume `old` and, when it was valid, register `new` in its family.
    /// Of several concurrent rotations of one token exactly one succeeds.
    fn rotate(&self, old: &TokenHash, new: &TokenHash) -> impl Future<Output = Result<Rotation, StoreError>> + Send;

    /// The family `token` belongs to, used or not.
    fn family_of(&self, token: &TokenHash) -> impl Future<Output = Result<Option<Arc<str>>, StoreError>> + Send;

    /// Revoke a family: none of its tokens refresh again.
    fn revoke_family(&self, family: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
