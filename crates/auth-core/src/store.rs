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

/// A Redis connection to one server or to a cluster: the stores send the same commands to
/// either (a cluster routes each by its key's slot).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

/// Connect to one Redis (`redis://…`) or, with `cluster`, to the Redis Cluster that
/// `urls` (comma-separated seed nodes) belong to.
pub async fn redis_conn(urls: &str, cluster: bool, timeout: Duration) -> Result<RedisConn, StoreError> {
    if cluster {
        Ok(RedisConn::Cluster(redis_cluster_connect(urls, timeout).await?))
    } else {
        Ok(RedisConn::Single(redis_connect(urls, timeout).await?))
    }
}

/// Connect to a Redis Cluster through its seed nodes `urls` (comma-separated). Every
/// request is still bounded by `timeout` (see [`bounded`]); the client's own retries are
/// kept few and short so that a request for a key on a stopped shard fails within it,
/// while requests for the other shards' keys go on.
pub async fn redis_cluster_connect(
    urls: &str,
    timeout: Duration,
) -> Result<redis::cluster_async::ClusterConnection, StoreError> {
    let seeds: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if seeds.is_empty() {
        return Err(StoreError::Unavailable("no Redis Cluster node given (--redis-url a,b,…)".into()));
    }
    let mut infos = Vec::new();
    for url in &seeds {
        let info =
            url.into_connection_info().map_err(|e| StoreError::Unavailable(format!("bad Redis URL {url:?}: {e}")))?;
        infos.push(info.set_tcp_settings(TcpSettings::default().set_nodelay(true)));
    }
    let client = redis::cluster::ClusterClientBuilder::new(infos)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(1)
        .min_retry_wait(10)
        .max_retry_wait(100)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot use the Redis Cluster at {urls}: {e}")))?;
    let connecting = client.get_async_connection();
    let conn = match tokio::time::timeout(timeout.max(Duration::from_secs(2)), connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            return Err(StoreError::Unavailable(format!("cannot connect to the Redis Cluster at {urls}: {e}")));
        }
        Err(_) => {
            return Err(StoreError::Unavailable(format!("cannot connect to the Redis Cluster at {urls}: timed out")));
        }
    };
    // A node that answers but is not in a formed cluster (no slots, or cluster mode off)
    // would fail every request: say so at start instead.
    let mut check = conn.clone();
    let info: String =
        bounded(timeout.max(Duration::from_secs(2)), redis::cmd("CLUSTER").arg("INFO").query_async(&mut check))
            .await
            .map_err(|e| StoreError::Unavailable(format!("{urls} is not a Redis Cluster: {e}")))?;
    let assigned = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster_slots_assigned:"))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if assigned < 16384 {
        return Err(StoreError::Unavailable(format!(
            "the Redis Cluster at {urls} is not formed: {assigned} of 16384 slots are assigned"
        )));
    }
    Ok(conn)
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
