//! The users behind a point: a live-sessions step's held sessions ([`LivePoint`]), and a
//! mixed run's active users ([`MixUsers`]).

use serde::{Deserialize, Serialize};

/// What a live-sessions step held and what that cost; its points share it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LivePoint {
    /// Sessions (JWT: refresh-token families) preloaded before the step's points.
    pub sessions: u64,
    pub spread: crate::plan::Spread,
    /// Distinct credentials the requests were spread over: `sessions` for sessions; for
    /// JWT the run's logged-in users, whose access tokens need no server state (the
    /// preloaded families are held, never read by a request).
    pub credentials: u64,
    /// What holds the state, as [`LivePoint::state_bytes`] measures it:
    /// `instance-rss` (every instance's RSS after start-up with the sessions loaded),
    /// `redis-used-memory` (Redis `used_memory`), `postgres-relation` (the sessions
    /// table with its index and TOAST, `pg_total_relation_size`).
    pub held_in: String,
    /// Bytes the holder used once the sessions were in, before any measured request.
    pub state_bytes: u64,
    /// The same just before the preload, where the store was running already (Redis,
    /// PostgreSQL); the instances' is the slope between the axis's values instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_bytes_before: Option<u64>,
    /// Wall time of the preload (the harness's writes, or the instances' start-up).
    pub preload_s: f64,
    /// Background purges of expired state the instances ran during the step (their
    /// `/metrics`), and the mean time of one; Redis expires keys itself (in its CPU).
    pub purges: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_ms: Option<f64>,
}

impl LivePoint {
    /// Bytes per session from the before/after difference, where there is one.
    pub fn bytes_per_session(&self) -> Option<f64> {
        let before = self.state_bytes_before?;
        Some((self.state_bytes as f64 - before as f64) / self.sessions.max(1) as f64)
    }
}

/// The users a mixed point's reads were spread over: the profile's active users for the
/// rate of each run, drawn from the credentials the harness prepared.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct MixUsers {
    /// Credentials prepared for the point: preloaded sessions, or (JWT, and systems the
    /// preload cannot fill) demo users logged in before it.
    pub credentials: u64,
    /// Sessions (JWT: refresh-token families) preloaded into the store or the instances
    /// before the point; 0 where nothing was preloaded.
    pub preloaded: u64,
    /// Active users in the final run: the profile's users per request/s × its rate, at
    /// most `credentials`.
    pub active: u64,
}
