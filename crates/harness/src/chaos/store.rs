//! The store a chaos run breaks: its own Redis, PostgreSQL or Redis Cluster, never a shared
//! one, with the faults it can take (frozen, restarted).

use std::{path::Path, time::Duration};

use anyhow::Context as _;

use crate::{
    deploy::{
        self, Store,
        cluster::{RedisCluster, start_cluster},
        postgres::{DEFAULT_USER, PgSettings, Postgres, start_postgres},
    },
    plan::System,
};

/// A run's own store, of the kind its system uses.
pub(super) enum ChaosStore {
    Redis(Store),
    Postgres(Postgres),
    /// Faults hit [`SHARD`] only.
    Cluster(RedisCluster),
}

/// The shard a Redis Cluster's store fault hits.
const SHARD: usize = 1;

impl ChaosStore {
    /// What the servers are given as the store's URL.
    pub(super) fn url(&self) -> String {
        match self {
            ChaosStore::Redis(s) => s.url.clone(),
            ChaosStore::Postgres(p) => p.url.clone(),
            ChaosStore::Cluster(c) => c.urls(),
        }
    }

    pub(super) async fn start(system: System, log_dir: &Path) -> anyhow::Result<Self> {
        Ok(if system.needs_postgres() {
            ChaosStore::Postgres(start_postgres(DEFAULT_USER, PgSettings::default(), None, log_dir).await?)
        } else if system.needs_cluster() {
            ChaosStore::Cluster(start_cluster(3, |_| Ok(None), log_dir).await?)
        } else {
            ChaosStore::Redis(deploy::start_redis(None, log_dir).await?)
        })
    }

    /// SIGSTOP (`STOP`) or SIGCONT (`CONT`) the store: every PostgreSQL process, or the
    /// faulted shard.
    pub(super) fn signal(&self, sig: &str) -> anyhow::Result<()> {
        match self {
            ChaosStore::Redis(s) => s.process.as_ref().context("the store is not ours to stop")?.signal(sig),
            ChaosStore::Postgres(p) => {
                // Backends are the postmaster's children; stopping it alone freezes nothing
                // that already has a connection. The postmaster goes first, so it forks no
                // backend that the list of children would miss.
                p.process.signal(sig)?;
                let children =
                    std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.process.pid)).unwrap_or_default();
                let pids: Vec<&str> = children.split_whitespace().collect();
                if !pids.is_empty() {
                    let status = std::process::Command::new("kill").arg(format!("-{sig}")).args(&pids).status()?;
                    anyhow::ensure!(status.success(), "kill -{sig} {pids:?} failed");
                }
                Ok(())
            }
            ChaosStore::Cluster(c) => c.nodes[SHARD].process.as_ref().context("the shard is not ours")?.signal(sig),
        }
    }

    /// Take the store down for `outage` and bring it back: Redis killed and restarted
    /// empty; PostgreSQL shut down and started on its data; one shard killed and
    /// restarted empty.
    pub(super) async fn restart(&mut self, outage: Duration, log_dir: &Path) -> anyhow::Result<()> {
        match self {
            ChaosStore::Redis(s) => {
                let port = deploy::port_of(&s.url)?;
                let mut process = s.process.take().context("the store is not ours to kill")?;
                process.signal("KILL")?;
                process.stop().await;
                tokio::time::sleep(outage).await;
                *s = deploy::start_redis_on(port, None, log_dir).await?;
            }
            ChaosStore::Postgres(p) => {
                p.stop().await;
                tokio::time::sleep(outage).await;
                p.restart().await?;
            }
            ChaosStore::Cluster(c) => {
                let mut process = c.nodes[SHARD].process.take().context("the shard is not ours to kill")?;
                process.signal("KILL")?;
                process.stop().await;
                tokio::time::sleep(outage).await;
                c.restart(SHARD, None, log_dir).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn stop(&mut self) {
        match self {
            ChaosStore::Redis(s) => {
                if let Some(p) = s.process.as_mut() {
                    p.stop().await;
                }
            }
            ChaosStore::Postgres(p) => p.stop().await,
            ChaosStore::Cluster(c) => c.stop().await,
        }
    }
}
