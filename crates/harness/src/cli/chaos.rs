//! `chaos`'s flags: the systems, experiments and load of the failure runs, and the login
//! storm's settings.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::parse::*;
use crate::{
    experiment::run_id,
    plan::System,
    record::chaos::{ChaosConfig, Experiment},
    sweep::default_out,
};

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Systems to run (comma-separated).
    #[arg(long, env = "AUTHBENCH_CHAOS_SYSTEMS", value_delimiter = ',', value_parser = |s: &str| s.parse::<System>(),
          default_value = "session-memory,session-redis,jwt-hs256,jwt-hs256+denylist,jwt-hs256+denylist-cached")]
    pub systems: Vec<System>,

    /// Experiments to run (comma-separated): store-freeze, store-restart, instance-loss,
    /// login-storm.
    #[arg(long, env = "AUTHBENCH_CHAOS_EXPERIMENTS", value_delimiter = ',', value_parser = |s: &str| s.parse::<Experiment>(),
          default_value = "store-freeze,store-restart,instance-loss,login-storm")]
    pub experiments: Vec<Experiment>,

    /// Login storm: the share of the users who log in at once (above 0, at most 1).
    #[arg(long, env = "AUTHBENCH_CHAOS_STORM_SHARE", default_value_t = 0.5, value_parser = positive)]
    pub storm_share: f64,

    /// Login storm: each instance's argon2id pool size, one run per value
    /// (comma-separated); the servers' default is one per core.
    #[arg(long, env = "AUTHBENCH_CHAOS_HASH_CONCURRENCY", value_delimiter = ',', default_value = "1,2")]
    pub hash_concurrency: Vec<usize>,

    /// Instances per system (uncapped; instance-loss kills one).
    #[arg(long, env = "AUTHBENCH_CHAOS_INSTANCES", default_value_t = 3, value_parser = instance_count)]
    pub instances: usize,

    /// Offered load in requests per second, all instances together (well below capacity:
    /// these runs are about failure, not throughput).
    #[arg(long, env = "AUTHBENCH_CHAOS_RATE", default_value_t = 300.0, value_parser = positive)]
    pub rate: f64,

    /// Logged-in users the load is spread over.
    #[arg(long, env = "AUTHBENCH_CHAOS_USERS", default_value_t = 300)]
    pub users: usize,

    /// Discarded from the latency figures (the timeline shows it).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// Length of each run after the warm-up.
    #[arg(long, env = "AUTHBENCH_CHAOS_DURATION", default_value = "14s", value_parser = duration)]
    pub duration: Duration,

    /// When the fault starts, from the start of the run.
    #[arg(long, env = "AUTHBENCH_CHAOS_FAULT_AT", default_value = "4s", value_parser = duration)]
    pub fault_at: Duration,

    /// How long the store stays stopped or down.
    #[arg(long, env = "AUTHBENCH_CHAOS_OUTAGE", default_value = "3s", value_parser = duration)]
    pub outage: Duration,

    /// Per-request client timeout.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub timeout: Duration,

    /// Connections per instance (enough to keep requests flowing while each waits for a
    /// hung store).
    #[arg(long, default_value_t = 128)]
    pub connections_per_instance: usize,

    /// Output directory (default bench-results/chaos-<run-id>); give a sweep's directory to
    /// put the timelines into its report.
    #[arg(long, env = "AUTHBENCH_OUT")]
    pub out: Option<PathBuf>,

    /// Directory holding session-server and jwt-server (default: next to authbench, then PATH).
    #[arg(long, env = "AUTHBENCH_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Put a real HAProxy in front of the instances (sticky on the session cookie for
    /// session-memory, round-robin otherwise): after an instance loss, its health checks —
    /// not the generator — move the users to the others.
    #[arg(long)]
    pub haproxy: bool,
}

impl ChaosArgs {
    pub fn into_config(self) -> anyhow::Result<ChaosConfig> {
        anyhow::ensure!(self.connections_per_instance >= 1, "--connections-per-instance must be at least 1");
        Ok(ChaosConfig {
            systems: self.systems,
            experiments: self.experiments,
            instances: self.instances,
            rate: self.rate,
            users: self.users,
            warmup: self.warmup,
            duration: self.duration,
            fault_at: self.fault_at,
            outage: self.outage,
            timeout: self.timeout,
            connections_per_instance: self.connections_per_instance,
            out: self.out.unwrap_or_else(|| default_out(&format!("chaos-{}", run_id()))),
            demo_password: "demo-password".into(),
            bin_dir: self.bin_dir,
            storm_share: self.storm_share,
            hash_concurrency: self.hash_concurrency,
            haproxy: self.haproxy,
        })
    }
}
