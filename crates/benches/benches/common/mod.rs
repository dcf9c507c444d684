//! Set-up the suites share: criterion's settings, a tokio runtime, key files, Redis.

#![allow(dead_code)] // each suite uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures should stop the bench loudly

pub mod jwt;

use std::{
    future::Future,
    path::Path,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use criterion::Criterion;

/// Short runs, so that `cargo bench` over every suite takes minutes on 2 cores; each
/// suite lowers the sample count where one iteration is slow (RSA, argon2id).
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

/// A single-threaded runtime: what one request costs, without cross-thread wake-ups.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// Drive a future that never waits (the memory store's `async fn`s) to completion.
pub fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future was expected to complete without waiting"),
    }
}

/// A key directory with a fresh key for every algorithm, as `jwt-server keygen` makes it.
pub fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for alg in jwt_server::keys::Alg::ALL {
        jwt_server::keys::keygen(alg, dir.path(), false).expect("keygen");
    }
    dir
}

/// The DER inside a PKCS#8 `PRIVATE KEY` PEM file.
pub fn pkcs8_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("key file");
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).expect("PEM body")
}

/// `$AUTHBENCH_REDIS_URL`, else the shared Redis on loopback.
pub fn redis_url() -> String {
    std::env::var("AUTHBENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A connection to Redis when one answers `PING` within a second; otherwise prints why
/// the Redis items are skipped and returns `None`.
pub async fn redis_or_skip(what: &str) -> Option<(String, redis::aio::ConnectionManager)> {
    let url = redis_url();
    let conn = async {
        let mut conn =
            auth_core::store::redis_connect(&url, Duration::from_secs(1)).await.map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(1), redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map_err(|_| "no answer to PING within 1 s".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(conn)
    };
    match conn.await {
        Ok(conn) => Some((url, conn)),
        Err(e) => {
            println!("skipping {what}: no Redis answers at {url} ({e}); set AUTHBENCH_REDIS_URL to use another");
            None
        }
    }
}

/// A key prefix private to this run; every key under it is deleted by [`RedisPrefix::cleanup`].
pub struct RedisPrefix(pub String);

impl RedisPrefix {
    pub fn new() -> Self {
        let hex: String = auth_core::random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("authbench-bench:{hex}:"))
    }

    /// SCAN + DEL (never FLUSHDB: the Redis is shared).
    pub async fn cleanup(&self, conn: &mut redis::aio::ConnectionManager) {
        let pattern = format!("{}*", self.0);
        let mut cursor: u64 = 0;
        let mut deleted = 0usize;
        loop {
            let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await;
            let Ok((next, keys)) = scanned else {
                println!("warning: could not remove the keys under {pattern} from Redis");
                return;
            };
            if !keys.is_empty() {
                deleted += keys.len();
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query_async(conn).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        println!("removed {deleted} bench keys under {pattern} from Redis");
    }
}
