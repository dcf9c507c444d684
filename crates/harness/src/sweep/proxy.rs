//! The load balancer of a point with a proxy policy: HAProxy started in front of the step's
//! instances for that point only, in its own cgroup at `--lb-cpu`.

use anyhow::Context as _;

use super::Run;
use crate::{
    deploy::{self, Deployment, haproxy},
    plan::Lb,
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
}
