//! Servers: start N instances of one system on `127.0.0.1:0` (and its store) with the
//! harness's deploy code, and stop them again. Instances run uncapped: journeys check
//! behaviour, they do not measure capacity.
//!
//! [`Servers::stop`] must run on every exit path; [`Servers::start`] fills the struct as it
//! goes, so a start that fails half-way still leaves everything it started to stop. If
//! `stop` is skipped anyway (a panic), the harness's `kill_on_drop` kills the children.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harness::{
    deploy::{self, Deployment, ServerSetup, Store},
    plan::System,
};

use crate::targets;

/// What to start.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub system: System,
    pub instances: usize,
    pub password: &'a str,
    pub demo_users: usize,
    pub redis_url: Option<&'a str>,
    pub bin_dir: Option<&'a Path>,
}

/// Everything started for one run.
#[derive(Debug)]
pub struct Servers {
    pub deployment: Deployment,
    pub store: Option<Store>,
    /// Keys of this run in the store (deleted at stop when the store is not ours).
    pub prefix: String,
    /// Keys and logs; removed at stop.
    work: PathBuf,
}

impl Default for Servers {
    fn default() -> Self {
        let id = format!("{}-{}", harness::experiment::run_id(), std::process::id());
        Self {
            deployment: Deployment::default(),
            store: None,
            prefix: format!("authbench-goose:{id}:"),
            work: std::env::temp_dir().join(format!("authbench-goose-{id}")),
        }
    }
}

impl Servers {
    /// Start the store (when the system needs one) and the instances, one after the other.
    pub async fn start(&mut self, plan: &Plan<'_>) -> anyhow::Result<()> {
        let binaries = deploy::find_binaries(plan.bin_dir)?;
        let log_dir = self.work.join("logs");
        let key_dir = self.work.join("keys");
        std::fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
        std::fs::create_dir_all(&key_dir).with_context(|| format!("cannot create {}", key_dir.display()))?;
        if plan.system.needs_redis() {
            self.store = Some(store(plan.redis_url, &log_dir).await?);
        }
        binaries.keygen(plan.system.jwt_alg(), &key_dir)?;
        let setup = ServerSetup {
            users: plan.demo_users,
            password: plan.password,
            store_url: self.store.as_ref().map(|s| s.url.as_str()),
            prefix: &self.prefix,
            key_dir: &key_dir,
            jwt_extra: &[],
        };
        let (system, program) = (plan.system, binaries.program(plan.system));
        let args = |k| deploy::server_args(system, k, &setup);
        deploy::spawn_instances(&mut self.deployment, system, plan.instances, program, args, |_| Ok(None), &log_dir)
            .await
    }

    /// Base URLs of the instances, in instance order.
    pub fn urls(&self) -> Vec<String> {
        self.deployment.addrs.iter().map(|a| format!("http://{a}")).collect()
    }

    /// `--instance-id` of each instance, as [`deploy::server_args`] sets it.
    pub fn ids(&self, system: System) -> Vec<String> {
        (0..self.deployment.addrs.len()).map(|k| format!("{system}-{k}")).collect()
    }

    /// The first instance that died, if any.
    pub fn casualty(&mut self) -> Option<String> {
        self.deployment.casualty()
    }

    /// Stop the instances, then the store (or delete our keys from a shared one).
    pub async fn stop(&mut self) {
        self.deployment.stop().await;
        if let Some(store) = &mut self.store {
            match &mut store.process {
                Some(p) => p.stop().await,
                None => {
                    let _ = deploy::delete_prefix(&store.url, &self.prefix).await;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// `--redis-url`, else a private redis-server, else the shared one on 6379 if it answers.
async fn store(url: Option<&str>, log_dir: &Path) -> anyhow::Result<Store> {
    const SHARED: &str = "redis://127.0.0.1:6379";
    if let Some(url) = url {
        targets::loopback_store_url(url)?;
        deploy::ping(url).await.with_context(|| format!("--redis-url {url} does not answer"))?;
        return Ok(Store { url: url.to_owned(), process: None });
    }
    match deploy::start_redis(None, log_dir).await {
        Ok(store) => Ok(store),
        Err(private) => {
            let why = format!("{private:#}");
            deploy::ping(SHARED).await.map_err(|_| {
                private.context(format!(
                    "cannot start a private redis-server and nothing answers on {SHARED}; \
                     run scripts/redis.sh or give --redis-url"
                ))
            })?;
            println!("authbench-goose: no private redis-server ({why}); using {SHARED}");
            Ok(Store { url: SHARED.to_owned(), process: None })
        }
    }
}
