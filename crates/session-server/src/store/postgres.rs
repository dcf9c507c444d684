//! Sessions in a PostgreSQL table shared by every instance: the "or a database" of the
//! study note, and the store whose cost per request (a row lock and a new row version per
//! sliding-expiry write, WAL) the benchmark sets beside Redis's.
//!
//! Table `<schema>.sessions`: the raw 32-byte ID as the primary key, the user, role and
//! login time (the server's clock, for the response), the absolute deadline and the
//! current expiry (`min(last write + idle, absolute)`), both on the database's clock.
//!
//! One authenticated request is **one statement**:
//! - by default an `UPDATE … SET expires_at = … WHERE id = $1 AND expires_at > now()
//!   RETURNING …`: the read and the sliding expiry together, a write on every request;
//! - with `touch_after` (`--touch-after`), the throttled touch real frameworks use: a
//!   `SELECT` and an `UPDATE` in one statement (a data-modifying CTE), and the `UPDATE`
//!   changes the row only when at least `touch_after` has passed since the expiry was last
//!   written. A session may then end up to `touch_after` earlier than `idle` after its last
//!   use; that is the price of not writing on every read.
//!
//! There is no index on `expires_at`, so a sliding-expiry write touches no index and can be
//! a HOT update (the table leaves 20 % of each page free for them); the purge task pays for
//! that with a sequential scan every `purge_every`, run by one instance at a time.

use std::{sync::Arc, time::Duration};

use auth_core::{
    metrics::PurgeStats,
    pg::{bounded, call, client, ensure_schema},
    throttle::PgThrottle,
};
use deadpool_postgres::Pool;

use super::{Session, SessionStore, StoreError, Timeouts};
use crate::id::SessionId;

/// Advisory-lock keys (any constants; they only need to differ from each other and from
/// whatever else uses the database's advisory locks).
const SCHEMA_LOCK: i64 = 0x6175_7468_6265_6e01;
const PURGE_LOCK: i64 = 0x6175_7468_6265_6e02;

#[derive(Clone, Debug)]
pub struct PgStoreConfig {
    pub url: String,
    /// Schema holding this server's tables (created if missing), so runs and tests never
    /// touch each other's rows.
    pub schema: String,
    pub pool_size: usize,
    /// Longest a store call may take before the request fails closed with 503.
    pub timeout: Duration,
    /// Write the sliding expiry only when at least this long has passed since it was last
    /// written (`None`: on every request).
    pub touch_after: Option<Duration>,
    /// `CREATE UNLOGGED TABLE`: no WAL for session rows (they are lost on a crash).
    pub unlogged: bool,
    /// How often expired rows (and ended login-throttle windows) are deleted.
    pub purge_every: Duration,
}

impl PgStoreConfig {
    /// The one rule between the settings and the timeouts: a touch interval shorter than
    /// the idle timeout (else a session could end before its expiry is ever written).
    pub fn check(&self, timeouts: Timeouts) -> Result<(), String> {
        match self.touch_after {
            Some(t) if t >= timeouts.idle => Err(format!(
                "--touch-after ({}) must be shorter than the idle timeout ({})",
                humantime::format_duration(t),
                humantime::format_duration(timeouts.idle)
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    timeout: Duration,
    sql: Arc<Sql>,
    /// Where each purge's duration goes (`/metrics`), once the server has said so.
    purges: Arc<std::sync::OnceLock<Arc<PurgeStats>>>,
}

struct Sql {
    get: String,
    put: String,
    delete: String,
    /// `get` takes the touch threshold as `$3`.
    throttled: bool,
    /// Milliseconds bound to the statements: idle, and idle minus the touch interval.
    idle_ms: f64,
    fresh_ms: f64,
    absolute_ms: u64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn ddl(schema: &str, unlogged: bool) -> String {
    let unlogged = if unlogged { "UNLOGGED " } else { "" };
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE {unlogged}TABLE IF NOT EXISTS {schema}.sessions (
             id bytea PRIMARY KEY,
             username text NOT NULL,
             role text NOT NULL,
             created_ms bigint NOT NULL,
             absolute_at timestamptz NOT NULL,
             expires_at timestamptz NOT NULL
         ) WITH (fillfactor = 80);
         {}",
        PgThrottle::ddl(schema)
    )
}

fn statements(schema: &str, timeouts: Timeouts, touch_after: Option<Duration>) -> Sql {
    let ms = "::float8 * interval '1 millisecond'";
    let get = match touch_after {
        None => format!(
            "UPDATE {schema}.sessions SET expires_at = LEAST(now() + $2{ms}, absolute_at) \
             WHERE id = $1 AND expires_at > now() RETURNING username, role, created_ms"
        ),
        // `s` reads the row; `t` rewrites its expiry only if it was written more than
        // touch_after ago (expires_at below now + idle - touch_after), never past absolute.
        // `t` tests the row it locks (`x`), not the snapshot `s` read, so of concurrent
        // requests for one session only the first writes.
        Some(_) => format!(
            "WITH s AS (SELECT id, username, role, created_ms, absolute_at, expires_at \
                 FROM {schema}.sessions WHERE id = $1 AND expires_at > now()), \
             t AS (UPDATE {schema}.sessions AS x SET expires_at = LEAST(now() + $2{ms}, x.absolute_at) \
                 FROM s WHERE x.id = s.id AND x.expires_at < LEAST(now() + $3{ms}, x.absolute_at)) \
             SELECT username, role, created_ms FROM s"
        ),
    };
    let put = format!(
        "INSERT INTO {schema}.sessions (id, username, role, created_ms, absolute_at, expires_at) \
         VALUES ($1, $2, $3, $4, now() + $5{ms}, LEAST(now() + $6{ms}, now() + $5{ms}))"
    );
    let idle_ms = timeouts.idle.as_secs_f64() * 1000.0;
    let fresh_ms = touch_after.map_or(idle_ms, |t| idle_ms - t.as_secs_f64() * 1000.0);
    Sql {
        get,
        put,
        delete: format!("DELETE FROM {schema}.sessions WHERE id = $1"),
        throttled: touch_after.is_some(),
        idle_ms,
        fresh_ms,
        absolute_ms: timeouts.absolute.as_millis() as u64,
    }
}

impl PgStore {
    /// Create the schema and tables if missing, check the table's persistence matches
    /// `unlogged`, and start the purge task. Returns the store and a login throttle that
    /// counts in the same database.
    pub async fn connect(
        config: &PgStoreConfig,
        timeouts: Timeouts,
        throttle: auth_core::throttle::ThrottleConfig,
    ) -> Result<(Self, PgThrottle), StoreError> {
        config.check(timeouts).map_err(StoreError::Unavailable)?;
        let pool = auth_core::pg::connect(&config.url, config.pool_size, config.timeout).await?;
        let schema = &config.schema;
        ensure_schema(&pool, config.timeout, SCHEMA_LOCK, &ddl(schema, config.unlogged)).await?;
        let persistence: i8 = {
            let c = client(&pool).await?;
            let q = format!("SELECT relpersistence FROM pg_class WHERE oid = '{schema}.sessions'::regclass");
            bounded(config.timeout, c.query_one(&q, &[])).await?.get(0)
        };
        let is_unlogged = persistence == b'u' as i8;
        if is_unlogged != config.unlogged {
            let (has, wants) = if is_unlogged { ("an UNLOGGED", "a logged") } else { ("a logged", "an UNLOGGED") };
            return Err(StoreError::Unavailable(format!(
                "{schema}.sessions exists as {has} table but this server was asked for {wants} one: \
                 drop the table, use another --database-schema, or change --unlogged"
            )));
        }
        let throttle = PgThrottle::new(pool.clone(), schema, config.timeout, throttle);
        let store = Self {
            pool,
            timeout: config.timeout,
            sql: Arc::new(statements(schema, timeouts, config.touch_after)),
            purges: Arc::default(),
        };
        store.spawn_purge(schema, config.purge_every, throttle.clone());
        Ok((store, throttle))
    }

    /// Every `period`, one instance at a time (a try-lock: the others skip that round)
    /// deletes expired sessions and ended throttle windows. Errors are retried next round:
    /// an expired row is never served anyway, the purge only returns its space.
    fn spawn_purge(&self, schema: &str, period: Duration, throttle: PgThrottle) {
        let pool = self.pool.clone();
        let purges = self.purges.clone();
        let timeout = self.timeout.max(Duration::from_secs(30));
        let sql = format!("DELETE FROM {schema}.sessions WHERE expires_at <= now()");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let round = async {
                    let mut c = client(&pool).await?;
                    bounded(timeout, async {
                        let tx = c.transaction().await?;
                        let mine: bool =
                            tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PURGE_LOCK]).await?.get(0);
                        if mine {
                            let started = std::time::Instant::now();
                            tx.execute(sql.as_str(), &[]).await?;
                            if let Some(stats) = purges.get() {
                                stats.observe(started.elapsed());
                            }
                        }
                        tx.commit().await
                    })
                    .await?;
                    throttle.purge().await
                };
                if let Err(e) = round.await {
                    eprintln!("session purge failed (retried in {period:?}): {e}");
                }
            }
        });
    }
}

impl PgStore {
    /// Count every purge's duration into `stats` (the server's `/metrics`).
    pub fn report_purges_to(&self, stats: Arc<PurgeStats>) {
        let _ = self.purges.set(stats);
    }
}

impl SessionStore for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let sql = &self.sql;
        let row = call(&self.pool, self.timeout, |c| async move {
            let stmt = c.prepare_cached(&sql.get).await?;
            let id = id.as_bytes();
            if sql.throttled {
                c.query_opt(&stmt, &[&id, &sql.idle_ms, &sql.fresh_ms]).await
            } else {
                c.query_opt(&stmt, &[&id, &sql.idle_ms]).await
            }
        })
        .await?;
        let Some(row) = row else { return Ok(None) };
        // try_get: a table of another shape (an old schema) is corrupt data, not a panic.
        let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt(format!("sessions row: {e}"));
        let user: &str = row.try_get(0).map_err(corrupt)?;
        let role: &str = row.try_get(1).map_err(corrupt)?;
        let created_ms: i64 = row.try_get(2).map_err(corrupt)?;
        Ok(Some(Session {
            user: Arc::from(user),
            role: role.parse().map_err(|_| StoreError::Corrupt(format!("role {role:.16}")))?,
            created_ms: u64::try_from(created_ms).map_err(|_| StoreError::Corrupt(format!("created {created_ms}")))?,
        }))
    }

    async fn put(&self, id: &SessionId, session: &Session) -> Result<(), StoreError> {
        let sql = &self.sql;
        let created = i64::try_from(session.created_ms).unwrap_or(i64::MAX);
        let absolute = sql.absolute_ms as f64;
        call(&self.pool, self.timeout, |c| async move {
            let stmt = c.prepare_cached(&sql.put).await?;
            c.execute(
                &stmt,
                &[&id.as_bytes(), &&*session.user, &session.role.as_str(), &created, &absolute, &sql.idle_ms],
            )
            .await
        })
        .await
        .map(|_| ())
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let n = call(&self.pool, self.timeout, |c| async move {
            let stmt = c.prepare_cached(&self.sql.delete).await?;
            c.execute(&stmt, &[&id.as_bytes()]).await
        })
        .await?;
        Ok(n > 0)
    }
}
