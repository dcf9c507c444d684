//! Later rounds (`--repeat`): every repeatable point measured again at its rate (searched
//! again with `--repeat-search`), its latency run too, with the systems interleaved by the
//! sweep's round loop.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};

use super::Run;
use crate::{
    deploy::Deployment,
    drive::engine::Workload,
    plan::{Lb, Step},
    record::{PointMode, WorkloadKind, point},
    workload::ReadWorkload,
};

impl Run {
    /// The point of `step` under `lb` measured in round 1 (its index in `results.points`).
    fn round_one(&self, step: &Step, lb: Lb) -> Option<usize> {
        self.results.points.iter().position(|p| {
            p.system == step.system
                && p.instances == step.instances
                && p.lb == lb
                && p.store_cpu == step.store_cpu
                && p.store_rtt_us == step.store_rtt.map(crate::record::micros)
                && p.store_shards == step.store_shards
                && p.live.is_none()
        })
    }

    /// Whether a later round has anything to measure in `step`.
    /// Live-sessions steps are measured once: their preload is the expensive part, and
    /// their points are read against each other, not against rounds.
    pub(super) fn repeatable(&self, step: &Step) -> bool {
        step.live_sessions.is_none()
            && step.lbs.iter().any(|&lb| self.round_one(step, lb).is_some_and(|i| self.results.points[i].repeatable()))
    }

    /// A later round of one step: deploy again and measure each repeatable point again.
    pub(super) async fn repeat_step(&mut self, step: &Step, deployment: &mut Deployment) -> anyhow::Result<()> {
        self.status.phase("starting instances".into(), Duration::ZERO, None);
        self.deploy(step, deployment).await?;
        if self.live.is_some() {
            self.live_load(step, deployment).await?;
        }
        for &lb in &step.lbs {
            let Some(i) = self.round_one(step, lb).filter(|&i| self.results.points[i].repeatable()) else { continue };
            self.status.step(format!("round {}: {} N={} {lb}", self.round, step.system, step.instances));
            self.balancer(lb, deployment).await?;
            let creds = self.login(step, deployment).await?.0;
            let repeat = match self.config.workload {
                WorkloadKind::Mixed => {
                    let work = self.mixed_workload(step, &creds, lb, self.config.mix(step.system.server()))?;
                    self.repeat_point(step, lb, deployment, work, i).await?
                }
                WorkloadKind::Read => {
                    let work = ReadWorkload::new(&creds, lb.routing(), deployment.targets().len())?;
                    self.repeat_point(step, lb, deployment, work, i).await?
                }
            };
            deployment.stop_proxy().await;
            if let Some(why) = deployment.casualty() {
                bail!("instance died during {} N={} {lb} (round {}): {why}", step.system, step.instances, self.round);
            }
            self.display.println(&format!(
                "{:<25} N={:<2} {:<11} {:>8.0} rps  round {}  {}{}",
                step.system,
                step.instances,
                lb.id(),
                repeat.achieved_rps,
                repeat.round,
                if repeat.held { "held" } else { "not held" },
                repeat.latency_p99_us.map_or(String::new(), |p| format!("  @70%: p99 {:.2} ms", p as f64 / 1e3)),
            ));
            self.results.points[i].repeats.push(repeat);
            self.results.write(&self.config.out)?;
        }
        Ok(())
    }

    /// Point `i`'s final run again at its rate — or, with `--repeat-search`, at the rate a
    /// search of this round finds — and its latency run again when it has one.
    async fn repeat_point<W: Workload>(
        &self,
        step: &Step,
        lb: Lb,
        deployment: &Deployment,
        work: Arc<W>,
        i: usize,
    ) -> anyhow::Result<crate::record::Repeat> {
        let first = &self.results.points[i];
        let rate = first.offered_rps.context("a repeated point has an offered rate")?;
        let (has_latency, mode) = (first.latency.is_some(), first.mode);
        let label = format!("round {}", self.round);
        let searched = self.config.repeat_search && mode == PointMode::FindMax;
        let (start, mut search) = if searched {
            let (found, search, _) = self.find_max(lb, deployment, &work).await?;
            (found, search)
        } else {
            (rate, Vec::new())
        };
        // Unsearched, one run at round 1's rate (no retries); searched, as round 1's final run.
        let (fixed, verdict, rate) = self.final_run(deployment, &work, (start, searched), &mut search, &label).await?;
        let again = point::build(&fixed.window(step, lb, self.config.workload, mode), &self.rig());
        let latency = if has_latency { Some(self.latency_run(step, lb, deployment, &work, rate).await?) } else { None };
        Ok(crate::record::Repeat {
            round: self.round,
            offered_rps: rate,
            achieved_rps: again.achieved_rps,
            duration_s: again.duration_s,
            error_ratio: again.error_ratio,
            held: verdict.held(),
            cpu_per_request_us: again.cpu.per_request_us,
            steal_s: again.cpu.steal_s,
            latency_p99_us: latency.as_ref().map(|l| l.latency_us.p99),
            latency_p50_us: latency.as_ref().map(|l| l.latency_us.p50),
            slo_met: latency.map(|l| l.slo_met),
            search,
        })
    }
}
