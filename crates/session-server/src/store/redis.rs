//! Sessions in one Redis shared by every instance: what lets N instances act as one
//! service, and the component the benchmark watches become the bottleneck.
//!
//! The same code serves a Redis Cluster (`--store redis-cluster`): every command names one
//! key, which the cluster client sends to the shard that owns its slot; keys carry no hash
//! tag, so sessions spread evenly over the shards, and a stopped shard fails closed for its
//! own keys only.
//!
//! One authenticated request is one `GETEX key PX idle`: the read and the sliding idle
//! expiry travel together, so a request never costs a second round trip (only a session
//! found past its absolute deadline costs a `DEL`, once).
//!
//! Value format: `created_ms:role:user` (users never contain a newline; the user name is
//! last so it may contain `:`).

use std::{sync::Arc, time::Duration};

use auth_core::store::{RedisConn, bounded, redis_conn};
use redis::AsyncCommands as _;

use super::{Session, SessionStore, StoreError, Timeouts};
use crate::id::{ENCODED_LEN, SessionId};

#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// One Redis, or with `cluster` the cluster's seed nodes, comma-separated.
    pub url: String,
    /// A Redis Cluster: each session key lives on the shard that owns its slot.
    pub cluster: bool,
    /// Prepended to every key, so runs and tests never touch each other's data.
    pub key_prefix: String,
    /// Longest a store call may take before the request fails closed with 503.
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
    cluster: bool,
    prefix: Arc<str>,
    timeout: Duration,
    timeouts: Timeouts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish()
    }
}

impl RedisStore {
    pub async fn connect(config: &RedisConfig, timeouts: Timeouts) -> Result<Self, StoreError> {
        let conn = redis_conn(&config.url, config.cluster, config.timeout).await?;
        Ok(Self {
            conn,
            cluster: config.cluster,
            prefix: Arc::from(config.key_prefix.as_str()),
            timeout: config.timeout,
            timeouts,
        })
    }

    /// The connection, for a login throttle that counts in the same store.
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Longest a store call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The channel on which `session-redis+cached` instances hear of ended sessions.
    pub fn invalidation_channel(&self) -> String {
        format!("{}sess-inval", self.prefix)
    }

    /// `DEL` the session and `PUBLISH` its ID on [`Self::invalidation_channel`] in one
    /// transaction, so every instance holding a copy drops it; `true` when it existed.
    pub async fn delete_and_announce(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(id))
            .cmd("PUBLISH")
            .arg(self.invalidation_channel())
            .arg(id.encode())
            .ignore();
        let mut conn = self.conn.clone();
        let (n,): (i64,) = bounded(self.timeout, pipe.query_async(&mut conn)).await?;
        Ok(n > 0)
    }

    fn key(&self, id: &SessionId) -> String {
        let mut buf = [0u8; ENCODED_LEN];
        let mut key = String::with_capacity(self.prefix.len() + 2 + ENCODED_LEN);
        key.push_str(&self.prefix);
        key.push_str("s:");
        key.push_str(id.encode_into(&mut buf));
        key
    }
}

fn encode(s: &Session) -> String {
    format!("{}:{}:{}", s.created_ms, s.role.as_str(), s.user)
}

fn decode(v: &str) -> Result<Session, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("{:.64}", v));
    let mut parts = v.splitn(3, ':');
    let (Some(created), Some(role), Some(user)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt());
    };
    Ok(Session {
        created_ms: created.parse().map_err(|_| corrupt())?,
        role: role.parse().map_err(|_| corrupt())?,
        user: Arc::from(user),
    })
}

impl SessionStore for RedisStore {
    fn kind(&self) -> &'static str {
        if self.cluster { "redis-cluster" } else { "redis" }
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let key = self.key(id);
        let mut conn = self.conn.clone();
        let idle_ms = self.timeouts.idle.as_millis() as u64;
        let mut getex = redis::cmd("GETEX");
        getex.arg(&key).arg("PX").arg(idle_ms);
        let value: Option<String> = bounded(self.timeout, getex.query_async(&mut conn)).await?;
        let Some(value) = value else { return Ok(None) };
        let session = decode(&value)?;
        if auth_core::unix_millis() >= self.timeouts.absolute_deadline_ms(session.created_ms) {
            let _: i64 = bounded(self.timeout, conn.del(&key)).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    async fn put(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let ttl = self.timeouts.idle.min(self.timeouts.absolute).as_millis() as u64;
        let mut conn = self.conn.clone();
        bounded(self.timeout, conn.pset_ex::<_, _, ()>(self.key(id), encode(session), ttl)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let n: i64 = bounded(self.timeout, conn.del(self.key(id))).await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::Role;

    #[test]
    fn records_round_trip_and_user_may_contain_colons() {
        let s = Session { user: Arc::from("a:b"), role: Role::Admin, created_ms: 42 };
        assert_eq!(decode(&encode(&s)).unwrap(), s);
        assert!(decode("x:user:a").is_err());
        assert!(decode("1:root:a").is_err());
        assert!(decode("1").is_err());
    }
}
