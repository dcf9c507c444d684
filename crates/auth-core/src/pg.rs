//! A PostgreSQL pool for the stores that keep their state in a database: what the URL may
//! look like, a pool whose every wait is bounded, and the one-line errors a user sees.
//!
//! Why `tokio-postgres` + `deadpool-postgres` (not `sqlx`): the store's cost per request is
//! what the benchmark measures, so the SQL and its prepared statements are explicit
//! (`prepare_cached` per connection, one round trip per call), the pool's waits are plain
//! timeouts, and no compile-time query checking needs a database at build time.
//!
//! Fail closed, as with Redis: a pool that cannot hand out a connection, a statement that
//! errors or does not answer within the store timeout, all become
//! [`StoreError::Unavailable`] and so a 503 with `Retry-After`. A broken connection is
//! dropped by the pool's recycle check and a new one is opened on the next call, so the
//! server recovers when the database comes back, without a restart.

use std::{future::Future, str::FromStr as _, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::store::StoreError;

/// Longest a schema name may be (PostgreSQL cuts identifiers at 63 bytes; the tables and
/// indexes we name inside it stay well under that).
pub const MAX_SCHEMA_LEN: usize = 48;

/// Check a schema name for `--database-schema`: lower-case ASCII letters, digits and `_`,
/// not starting with a digit. It is spliced into SQL as an identifier, so nothing else is
/// allowed (no quoting games).
pub fn parse_schema(s: &str) -> Result<String, String> {
    let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let ok_rest = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok_first || !ok_rest || s.len() > MAX_SCHEMA_LEN {
        return Err(format!(
            "a schema name is 1 to {MAX_SCHEMA_LEN} of a-z, 0-9 and _, not starting with a digit (got {s:?})"
        ));
    }
    Ok(s.to_owned())
}

/// Check a `--database-url`: `postgres://` or `postgresql://` and parseable.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "a database URL starts with postgres:// or postgresql:// (got {:?})",
            redact(url).chars().take(64).collect::<String>()
        ));
    }
    tokio_postgres::Config::from_str(url).map_err(|e| format!("bad database URL {}: {e}", redact(url)))
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A pool of at most `size` connections to `url`. Every wait (for a free connection, for a
/// new one to open, for the recycle check) is bounded by `timeout`. Opens one connection
/// before returning, so an unreachable database is an error at start, naming the URL.
pub async fn connect(url: &str, size: usize, timeout: Duration) -> Result<Pool, StoreError> {
    let mut config = parse_url(url).map_err(StoreError::Unavailable)?;
    config.connect_timeout(timeout.max(Duration::from_secs(2)));
    // A peer that vanished without closing is noticed within seconds, not at TCP's minutes.
    // (tokio-postgres sets TCP_NODELAY itself.)
    config.tcp_user_timeout(timeout.max(Duration::from_secs(2)));
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout.max(Duration::from_secs(2))))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot build a pool for {}: {e}", redact(url))))?;
    // Open every connection now, at start, where no request waits: a new connection forks
    // a backend on the database (milliseconds of its CPU), which a request's deadline on a
    // busy or CPU-capped database does not always cover. A pool that later loses
    // connections opens new ones on demand, within the request's deadline.
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..size.max(1) {
        let pool = pool.clone();
        opening.spawn(async move { pool.get().await });
    }
    // Held until all are open, so each `get` opens a connection of its own.
    let mut held = Vec::with_capacity(size);
    while let Some(got) = opening.join_next().await {
        match got {
            Ok(Ok(client)) => held.push(client),
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {}: {}",
                    redact(url),
                    cause(&e)
                )));
            }
            Err(e) => return Err(StoreError::Unavailable(format!("opening connections failed: {e}"))),
        }
    }
    Ok(pool)
}

/// The innermost message of an error chain: tokio-postgres' `Display` alone often says
/// only "error connecting to server".
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// Run a database call with a hard deadline; every failure is "unavailable".
pub async fn bounded<T, E: std::error::Error + 'static>(
    timeout: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError::Unavailable(cause(&e))),
        Err(_) => Err(StoreError::Unavailable(format!("no answer within {timeout:?}"))),
    }
}

/// Take a connection from `pool` (bounded by the pool's own timeouts).
pub async fn client(pool: &Pool) -> Result<deadpool_postgres::Client, StoreError> {
    pool.get().await.map_err(|e| StoreError::Unavailable(cause(&e)))
}

/// One store call: take a connection and run `call` on it, the two together within
/// `timeout`. (A frozen database accepts TCP connections but never answers the start-up,
/// so waiting for a new connection must count against the same deadline as the statement.)
pub async fn call<T, F, Fut>(pool: &Pool, timeout: Duration, call: F) -> Result<T, StoreError>
where
    F: FnOnce(deadpool_postgres::Client) -> Fut,
    Fut: Future<Output = Result<T, tokio_postgres::Error>>,
{
    let work = async {
        let c = client(pool).await?;
        call(c).await.map_err(|e| StoreError::Unavailable(cause(&e)))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!("no answer within {timeout:?}"))),
    }
}

/// Run `ddl` (statements separated by `;`) once, whoever else starts at the same moment:
/// N instances starting together would otherwise race on `CREATE TABLE IF NOT EXISTS`
/// (it is not safe under concurrency). A transaction-scoped advisory lock serialises them.
pub async fn ensure_schema(pool: &Pool, timeout: Duration, lock_key: i64, ddl: &str) -> Result<(), StoreError> {
    let mut client = client(pool).await?;
    let setup = async {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key]).await?;
        tx.batch_execute(ddl).await?;
        tx.commit().await
    };
    // Creating a schema can wait on another instance's lock: allow more than one call's time.
    bounded(timeout.max(Duration::from_secs(10)), setup).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_postgres_urls_and_passwords_never_print() {
        assert!(parse_url("postgres://u@127.0.0.1:5432/db").is_ok());
        assert!(parse_url("postgresql://u:pw@127.0.0.1/db?connect_timeout=2").is_ok());
        let err = parse_url("redis://127.0.0.1:6379").unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
        let err = parse_url("host=127.0.0.1 user=u").unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
        assert_eq!(redact("postgres://u:secret@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a:b@c"), "postgres://h/db?x=a:b@c");
        let err = parse_url("postgres://u:secret@h:notaport/db").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert_eq!(parse_schema("authbench").unwrap(), "authbench");
        assert!(parse_schema("_t1").is_ok());
        for bad in ["", "1a", "A", "a-b", "a;drop", "a b", "\"a\"", &"a".repeat(MAX_SCHEMA_LEN + 1)] {
            assert!(parse_schema(bad).is_err(), "{bad:?}");
        }
    }
}
