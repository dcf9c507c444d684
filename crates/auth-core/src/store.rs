//! What both servers' stores share: the error type, a Redis connection with bounded
//! timeouts, and timing store calls into the metrics.
//!
//! Fail closed: every store error becomes a 503 with `Retry-After`, never "anonymous" and
//! never "valid".

use std::{
    future::Future,
    time::{Duration, Instant},
};

use redis::{
    Client, IntoConnectionInfo as _,
    aio::{ConnectionManager, ConnectionManagerConfig},
    io::tcp::TcpSettings,
};

use crate::{
    ApiError,
    metrics::{Metrics, StoreOp},
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer, answered too late, or the connection broke.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with data we did not write.
    #[error("corrupt store record: {0}")]
    Corrupt(String),
}

/// Run `purge` on the value behind `weak` every `period`, until the last strong handle is
/// dropped. The memory stores use it to drop expired entries without a read having to
/// find them; holding only a `Weak` means the task never keeps its store alive.
pub fn spawn_purge<T: Send + Sync + 'static>(
    weak: std::sync::Weak<T>,
    period: Duration,
    purge: impl Fn(&T) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(shared) = weak.upgrade() else { return };
            purge(&shared);
        }
    });
}

/// Open a managed, auto-reconnecting Redis connection with TCP_NODELAY and the given
/// response/connect timeout. Fails with a clear message when Redis does not answer.
pub async fn redis_connect(url: &str, timeout: Duration) -> Result<ConnectionManager, StoreError> {
    let info =
        url.into_connection_info().map_err(|e| StoreError::Unavailable(format!("bad Redis URL {url:?}: {e}")))?;
    let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let client = Client::open(info).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        // Reconnect attempts are cheap and bounded; a request never waits on them longer
        // than `timeout` because every call also goes through `bounded`.
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    let connecting = ConnectionManager::new_with_config(client, config);
    match tokio::time::timeout(timeout.max(Duration::from_secs(2)), connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("cannot connect to Redis at {url}: {e}"))),
        Err(_) => Err(StoreError::Unavailable(format!("cannot connect to Redis at {url}: timed out"))),
    }
}

/// Run a Redis call with a hard deadline.
pub async fn bounded<T>(timeout: Duration, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
        Err(_) => Err(StoreError::Unavailable(format!("no answer within {timeout:?}"))),
    }
}

/// Time a store call into the metrics and turn its error into a fail-closed 503.
pub async fn timed<T>(
    metrics: &Metrics,
    op: StoreOp,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let result = call.await;
    metrics.observe_store(op, started.elapsed(), result.is_ok());
    result.map_err(|_| ApiError::StoreUnavailable)
}
