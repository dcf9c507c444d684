//! The load balancer of a point with a proxy policy: HAProxy started in front of the step's
//! instances for that point only, in its own cgroup at `--lb-cpu`.

use anyhow::Context as _;

use super::Run;
use crate::{
    deploy::{self, Deployment, haproxy},
    plan::{Lb, Step},
    record::{LatencyRun, Point},
    workload::{Credential, ReadWorkload},
};

impl Run {
    /// Put the balancer `lb` asks for in front of `deployment`: HAProxy for a proxy policy
    /// (replacing one a previous point left), none for the generator's own policies.
    pub(super) async fn balancer(&self, lb: Lb, deployment: &mut Deployment) -> anyhow::Result<()> {
        deployment.stop_proxy().await;
        if !lb.proxy() {
            return Ok(());
        }
        let cores = self.config.lb_cpu.context("a proxy policy without --lb-cpu")?;
        self.status.phase(format!("starting haproxy ({lb}, {cores} core)"), std::time::Duration::ZERO, None);
        let group = deploy::group(self.cgroups.as_ref(), "haproxy", cores)?;
        let threads = cores.ceil() as usize;
        deployment.proxy = Some(haproxy::start(lb, &deployment.addrs, group, threads, &self.log_dir).await?);
        Ok(())
    }

    /// The proxied point's latency run again on the same instances at the same rate, with
    /// the generator balancing instead of the proxy: what the proxy added, at one load and
    /// one moment. Not for instance-local sessions, whose instances the proxy chose at
    /// login (the generator cannot know them); `None` when the point has no latency run.
    pub(super) async fn direct_latency(
        &self,
        step: &Step,
        deployment: &mut Deployment,
        creds: &[Credential],
        proxied: &Point,
    ) -> anyhow::Result<Option<LatencyRun>> {
        let Some(rate) = proxied.latency.as_ref().map(|l| l.offered_rps) else { return Ok(None) };
        if step.system.instance_local_state() {
            return Ok(None);
        }
        let proxy = deployment.proxy.take();
        let direct = Lb::RoundRobin;
        // Proxy policies go with the read workload only (sweep/checks.rs).
        let result = async {
            let work = ReadWorkload::new(creds, direct, deployment.addrs.len())?;
            self.latency_at(step, direct, deployment, &work, rate, format!("without the proxy @ {rate:.0} rps")).await
        }
        .await;
        deployment.proxy = proxy;
        result.map(Some)
    }
}
