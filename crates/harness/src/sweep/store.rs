//! What store a step sees: its CPU cap (Redis's or PostgreSQL's) and its round trip (the delay proxy, started once
//! for the run and steered to each step's target), when either is an axis.

use std::path::Path;

use anyhow::Context as _;

use super::Run;
use crate::{
    cgroup::CgroupRoot,
    deploy::{
        self, Store,
        delay::DelayProxy,
        postgres::{DEFAULT_USER, PgSettings, Postgres, start_postgres},
    },
    observe,
    plan::{Step, System},
    progress::DisplayGuard,
    record::{Skipped, SweepConfig},
};

/// The run's one delay proxy, when any step asks for a round trip above 0 (steps at 0 go
/// straight to the store); `None` without a private store.
pub(super) async fn start_delay(
    config: &SweepConfig,
    store: Option<&Store>,
    cgroups: Option<&CgroupRoot>,
    log_dir: &Path,
) -> anyhow::Result<Option<DelayProxy>> {
    let (Some(store), Some(rtt)) = (store, config.store_rtt_values().find(|d| !d.is_zero())) else { return Ok(None) };
    let exe = std::env::current_exe().context("cannot find the authbench binary for the delay proxy")?;
    // Its own cgroup, uncapped and first in line for the CPU: it stands for a network,
    // which the instances and the generator do not slow down; its CPU is recorded as the
    // rig's.
    let group = deploy::group(cgroups, "store-delay", 1.0)?;
    if let Some(g) = &group {
        g.set_cores(None).map_err(anyhow::Error::msg)?;
        g.set_weight(10_000).map_err(anyhow::Error::msg)?;
    }
    Ok(Some(deploy::delay::start(&exe, &store.url, rtt, group, log_dir).await?))
}

/// The private PostgreSQL the `session-postgres` systems share, in its own cgroup at
/// `cap`; `None` when no system needs one, or when it cannot start (those systems are then
/// taken out of `systems` into `skipped`, with the reason).
pub(super) async fn start_pg(
    systems: &mut Vec<System>,
    skipped: &mut Vec<Skipped>,
    cgroups: Option<&CgroupRoot>,
    cap: f64,
    log_dir: &Path,
    display: &DisplayGuard,
) -> anyhow::Result<Option<Postgres>> {
    if !systems.iter().any(|s| s.needs_postgres()) {
        return Ok(None);
    }
    let group = deploy::group(cgroups, "store-pg", cap)?;
    match start_postgres(DEFAULT_USER, PgSettings::default(), group, log_dir).await {
        Ok(pg) => Ok(Some(pg)),
        Err(e) => {
            let reason = format!("no private PostgreSQL ({e:#})");
            display.println(&format!("authbench: skipping the session-postgres systems: {reason}"));
            let gone = systems.iter().filter(|s| s.needs_postgres());
            skipped.extend(gone.map(|s| Skipped { system: *s, reason: reason.clone() }));
            systems.retain(|s| !s.needs_postgres());
            Ok(None)
        }
    }
}

impl Run {
    /// What one live session costs `system`'s store, sampled after the users logged in
    /// (`None` without a store of ours, or for an external deployment's Redis, whose key
    /// prefix we do not know).
    pub(super) async fn bytes_per_session(&self, system: System) -> Option<f64> {
        if system.needs_redis() && !self.config.external() {
            observe::bytes_per_key(&self.store.as_ref()?.url, &self.prefix).await
        } else if system.needs_cluster() {
            // Every shard holds some of the keys; the first one's sample stands for all.
            observe::bytes_per_key(&self.cluster.as_ref()?.nodes.first()?.url, &self.prefix).await
        } else if system.needs_postgres() {
            // Table + index + TOAST, per row: whole 8 KiB pages, so with few sessions this
            // is mostly the pages' free space (the live-sessions axis measures at scale).
            observe::pg_bytes_per_row(&self.pg.as_ref()?.url, deploy::PG_SCHEMA).await.ok().flatten()
        } else {
            None
        }
    }

    /// The store's cap for `step`: its own when store capacity is an axis, else the run's.
    pub(super) fn set_store_cap(&mut self, step: &Step) -> anyhow::Result<()> {
        let cap = step.store_cpu.unwrap_or(self.config.store_cpu);
        if cap != self.store_cap {
            let redis = self.store.as_ref().and_then(|s| s.process.as_ref()).and_then(|p| p.cgroup.as_ref());
            let pg = self.pg.as_ref().and_then(|p| p.process.cgroup.as_ref());
            let shards = self.cluster.iter().flat_map(|c| &c.nodes);
            let shards = shards.filter_map(|n| n.process.as_ref()?.cgroup.as_ref());
            for g in redis.into_iter().chain(pg).chain(shards) {
                g.set_cores(Some(cap)).map_err(anyhow::Error::msg)?;
            }
        }
        self.store_cap = cap;
        Ok(())
    }

    /// The round trip for `step`: its own when the round trip is an axis, else the run's.
    /// The proxy is steered to it; the instances are started through the proxy or not.
    pub(super) async fn set_store_rtt(&mut self, step: &Step) {
        self.store_rtt = step.store_rtt.unwrap_or(self.config.store_rtt);
        if let Some(d) = self.delayed() {
            d.steer.retarget(self.store_rtt).await;
        }
    }

    /// The delay proxy, when the current step reaches the store through it (a round trip
    /// above 0); steps at 0 go straight to the store.
    pub(super) fn delayed(&self) -> Option<&DelayProxy> {
        self.delay.as_ref().filter(|_| !self.store_rtt.is_zero())
    }
}

impl Run {
    /// A Redis Cluster of `shards` primaries for this step: the running one when it has
    /// that many, else a new one (the old one stopped first), each node in its own cgroup
    /// at the current store cap.
    pub(super) async fn ensure_cluster(&mut self, shards: u16) -> anyhow::Result<()> {
        if self.cluster.as_ref().is_some_and(|c| c.nodes.len() == usize::from(shards)) {
            return Ok(());
        }
        if let Some(mut old) = self.cluster.take() {
            old.stop().await;
        }
        self.status.phase(format!("starting a {shards}-shard Redis Cluster"), std::time::Duration::ZERO, None);
        let (cgroups, cap) = (self.cgroups.as_ref(), self.store_cap);
        let group = |i: usize| deploy::group(cgroups, &format!("store-shard-{shards}-{i}"), cap);
        self.cluster = Some(deploy::cluster::start_cluster(usize::from(shards), group, &self.log_dir).await?);
        Ok(())
    }
}
