//! Refresh tokens in Redis, shared by every instance.
//!
//! Keys (`P` is the configured prefix):
//! - `P rt:<sha256 hex>` — hash `{fam, user, role, exp, used}`, expiring with the token;
//! - `P fam:<family>` — exists while the family is alive; revoking deletes it.
//!
//! Rotation is one Lua script, so "check unused, mark used, add successor" is atomic: of
//! two concurrent refreshes with the same token exactly one sees `used = 0`. The script
//! derives the family key from the token record; that is fine on a single Redis, and a
//! cluster deployment would put both under one hash tag.

use std::{sync::Arc, time::Duration};

use auth_core::{
    Role,
    store::{bounded, redis_connect},
};
use redis::{Script, aio::ConnectionManager};

use super::{Grant, RefreshStore, Rejected, Rotation, StoreError};
use crate::tokens::TokenHash;

const CREATE: &str = r"
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
redis.call('HSET', KEYS[1], 'fam', ARGV[1], 'user', ARGV[2], 'role', ARGV[3], 'exp', ARGV[4], 'used', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
";

// KEYS[1] old token, KEYS[2] new token; ARGV: now_ms, ttl_ms, family key prefix.
const ROTATE: &str = r"
local t = redis.call('HMGET', KEYS[1], 'fam', 'user', 'role', 'exp', 'used')
if not t[1] then return {'unknown'} end
local famkey = ARGV[3] .. t[1]
if redis.call('EXISTS', famkey) == 0 then return {'revoked'} end
if t[5] == '1' then
  redis.call('DEL', famkey)
  return {'reused'}
end
if tonumber(t[4]) <= tonumber(ARGV[1]) then return {'expired'} end
redis.call('HSET', KEYS[1], 'used', '1')
local exp = tonumber(ARGV[1]) + tonumber(ARGV[2])
redis.call('HSET', KEYS[2], 'fam', t[1], 'user', t[2], 'role', t[3], 'exp', tostring(exp), 'used', '0')
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', famkey, ARGV[2])
return {'ok', t[1], t[2], t[3]}
";

#[derive(Clone)]
pub struct RedisRefreshStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    ttl_ms: u64,
    create: Arc<Script>,
    rotate: Arc<Script>,
}

impl std::fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRefreshStore").field("prefix", &self.prefix).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisRefreshStore {
    pub async fn connect(url: &str, prefix: &str, timeout: Duration, ttl: Duration) -> Result<Self, StoreError> {
        Ok(Self {
            conn: redis_connect(url, timeout).await?,
            prefix: Arc::from(prefix),
            timeout,
            ttl_ms: ttl.as_millis() as u64,
            create: Arc::new(Script::new(CREATE)),
            rotate: Arc::new(Script::new(ROTATE)),
        })
    }

    fn token_key(&self, token: &TokenHash) -> String {
        format!("{}rt:{}", self.prefix, hex(token))
    }

    fn family_prefix(&self) -> String {
        format!("{}fam:", self.prefix)
    }
}

impl RefreshStore for RedisRefreshStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, token: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        let exp = auth_core::unix_millis() + self.ttl_ms;
        let mut conn = self.conn.clone();
        let mut call = self.create.prepare_invoke();
        call.key(self.token_key(token))
            .key(format!("{}{}", self.family_prefix(), grant.family))
            .arg(&*grant.family)
            .arg(&*grant.user)
            .arg(grant.role.as_str())
            .arg(exp)
            .arg(self.ttl_ms);
        let _: i64 = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    async fn rotate(&self, old: &TokenHash, new: &TokenHash) -> Result<Rotation, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self.rotate.prepare_invoke();
        call.key(self.token_key(old))
            .key(self.token_key(new))
            .arg(auth_core::unix_millis())
            .arg(self.ttl_ms)
            .arg(self.family_prefix());
        let reply: Vec<String> = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        let corrupt = || StoreError::Corrupt(format!("rotate script answered {reply:?}"));
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => {
                let [_, fam, user, role] = reply.as_slice() else { return Err(corrupt()) };
                Rotation::Rotated(Grant {
                    family: Arc::from(fam.as_str()),
                    user: Arc::from(user.as_str()),
                    role: role.parse::<Role>().map_err(|_| corrupt())?,
                })
            }
            Some("unknown") => Rotation::Rejected(Rejected::Unknown),
            Some("revoked") => Rotation::Rejected(Rejected::Revoked),
            Some("reused") => Rotation::Rejected(Rejected::Reused),
            Some("expired") => Rotation::Rejected(Rejected::Expired),
            _ => return Err(corrupt()),
        })
    }

    async fn family_of(&self, token: &TokenHash) -> Result<Option<Arc<str>>, StoreError> {
        let mut conn = self.conn.clone();
        let fam: Option<String> =
            bounded(self.timeout, redis::cmd("HGET").arg(self.token_key(token)).arg("fam").query_async(&mut conn))
                .await?;
        Ok(fam.map(Arc::from))
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = bounded(
            self.timeout,
            redis::cmd("DEL").arg(format!("{}{}", self.family_prefix(), family)).query_async(&mut conn),
        )
        .await?;
        Ok(())
    }
}
