//! Sessions in one Redis shared by every instance: what lets N instances act as one
//! service, and the component the benchmark watches become the bottleneck.
//!
//! One authenticated request is one `GETEX key PX idle`: the read and the sliding idle
//! expiry travel together, so a request never costs a second round trip (only a session
//! found past its absolute deadline costs a `DEL`, once).
//!
//! Value format: `created_ms:role:user` (users never contain a newline; the user name is
//! last so it may contain `:`).

use std::{sync::Arc, time::Duration};

use redis::{
    AsyncCommands as _, Client, IntoConnectionInfo as _,
    aio::{ConnectionManager, ConnectionManagerConfig},
    io::tcp::TcpSettings,
};

use super::{Session, SessionStore, StoreError, Timeouts};
use crate::id::{ENCODED_LEN, SessionId};

#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub url: String,
    /// Prepended to every key, so runs and tests never touch each other's data.
    pub key_prefix: String,
    /// Longest a store call may take before the request fails closed with 503.
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    timeouts: Timeouts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish()
    }
}

/// Open a managed, auto-reconnecting connection with TCP_NODELAY and bounded timeouts.
pub async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, StoreError> {
    let info = url
        .into_connection_info()
        .map_err(|e| StoreError::Unavailable(format!("bad Redis URL {url:?}: {e}")))?;
    let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let client = Client::open(info).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        // Reconnect attempts are cheap and bounded; a request never waits on them longer
        // than `timeout` because every call is also wrapped in tokio's timeout.
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    let connecting = ConnectionManager::new_with_config(client, config);
    match tokio::time::timeout(timeout.max(Duration::from_secs(2)), connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("cannot connect to Redis at {url}: {e}"))),
        Err(_) => Err(StoreError::Unavailable(format!("cannot connect to Redis at {url}: timed out"))),
    }
}

impl RedisStore {
    pub async fn connect(config: &RedisConfig, timeouts: Timeouts) -> Result<Self, StoreError> {
        let conn = connect(&config.url, config.timeout).await?;
        Ok(Self { conn, prefix: Arc::from(config.key_prefix.as_str()), timeout: config.timeout, timeouts })
    }

    fn key(&self, id: &SessionId) -> String {
        let mut buf = [0u8; ENCODED_LEN];
        let mut key = String::with_capacity(self.prefix.len() + 2 + ENCODED_LEN);
        key.push_str(&self.prefix);
        key.push_str("s:");
        key.push_str(id.encode_into(&mut buf));
        key
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable(format!("no answer within {:?}", self.timeout))),
        }
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
        "redis"
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let key = self.key(id);
        let mut conn = self.conn.clone();
        let idle_ms = self.timeouts.idle.as_millis() as u64;
        let value: Option<String> = self
            .bounded(redis::cmd("GETEX").arg(&key).arg("PX").arg(idle_ms).query_async(&mut conn))
            .await?;
        let Some(value) = value else { return Ok(None) };
        let session = decode(&value)?;
        if auth_core::unix_millis() >= self.timeouts.absolute_deadline_ms(session.created_ms) {
            let _: i64 = self.bounded(conn.del(&key)).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    async fn put(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let ttl = self.timeouts.idle.min(self.timeouts.absolute).as_millis() as u64;
        let mut conn = self.conn.clone();
        self.bounded(conn.pset_ex::<_, _, ()>(self.key(id), encode(session), ttl)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let n: i64 = self.bounded(conn.del(self.key(id))).await?;
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
