//! The shared store: a private `redis-server` the run starts (and can kill and restart), or
//! one given by `--redis-url`.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use super::{Process, free_port};
use crate::{cgroup::Cgroup, plan::System};

/// The store the sweep uses: a private `redis-server`, or one given by `--redis-url`.
#[derive(Debug)]
pub struct Store {
    pub url: String,
    /// Present when we started it ourselves.
    pub process: Option<Process>,
}

impl Store {
    pub fn private(&self) -> bool {
        self.process.is_some()
    }
}

/// Start a private `redis-server` with no persistence on a free port, in `cgroup`.
pub async fn start_redis(cgroup: Option<Cgroup>, log_dir: &Path) -> anyhow::Result<Store> {
    start_redis_on(free_port()?, cgroup, log_dir).await
}

/// [`start_redis`] on a given port (a restarted store comes back where clients look for it).
pub async fn start_redis_on(port: u16, cgroup: Option<Cgroup>, log_dir: &Path) -> anyhow::Result<Store> {
    start_redis_with(port, &[], cgroup, log_dir).await
}

/// [`start_redis_on`] with `extra` arguments for `redis-server` (a cluster node's).
pub async fn start_redis_with(
    port: u16,
    extra: &[String],
    cgroup: Option<Cgroup>,
    log_dir: &Path,
) -> anyhow::Result<Store> {
    let log = log_dir.join(format!("redis-server-{port}.log"));
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "yes", "--logfile", &log.display().to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start redis-server")?;
    let url = format!("redis://127.0.0.1:{port}");
    let mut process = Process::adopt("redis-server", child, cgroup, log).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(why) = process.exited() {
            bail!("{why}");
        }
        if ping(&url).await.is_ok() {
            return Ok(Store { url, process: Some(process) });
        }
        if tokio::time::Instant::now() > deadline {
            process.stop().await;
            bail!("redis-server on port {port} did not answer PING within 10s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The store `systems` need: the Redis at `redis_url` when given (it must answer), else a
/// private `redis-server` in the cgroup `group()` makes. When neither is possible, the
/// systems that need a store are taken out of `systems` and returned with the reason.
pub async fn open_store(
    systems: &mut Vec<System>,
    redis_url: Option<&str>,
    group: impl FnOnce() -> anyhow::Result<Option<Cgroup>>,
    log_dir: &Path,
) -> anyhow::Result<(Option<Store>, Vec<(System, String)>)> {
    if !systems.iter().any(|s| s.needs_redis()) {
        return Ok((None, Vec::new()));
    }
    if let Some(url) = redis_url {
        ping(url).await.with_context(|| format!("--redis-url {url} does not answer"))?;
        return Ok((Some(Store { url: url.to_owned(), process: None }), Vec::new()));
    }
    match start_redis(group()?, log_dir).await {
        Ok(store) => Ok((Some(store), Vec::new())),
        Err(e) => {
            let reason = format!("no Redis: give --redis-url or put redis-server on PATH ({e:#})");
            let skipped = systems.iter().filter(|s| s.needs_redis()).map(|s| (*s, reason.clone())).collect();
            systems.retain(|s| !s.needs_redis());
            Ok((None, skipped))
        }
    }
}

pub async fn ping(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection())
        .await
        .context("timed out")??;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    anyhow::ensure!(pong == "PONG", "unexpected PING answer {pong:?}");
    Ok(())
}

/// Delete every key under `prefix` (and nothing else).
pub async fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
