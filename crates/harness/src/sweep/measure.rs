//! One measurement window: drive a load phase and sample the resources exactly at the
//! window's edges, then wait for the instances to go quiet before the next one; the latency
//! run, one such window at 70 % of a point's capacity; and find-max's measuring side (the
//! closed-loop probe and the tries that [`search`](super::search) decides between).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Run, observed,
    search::{self, Next, Search},
};
use crate::{
    deploy::delay::RttProbe,
    deploy::{self, Deployment},
    drive::engine::{self, Mode, Outcome, Progress, Spec, Workload},
    observe::{self, PgObserver, RedisObserver, RttSample, Sample, StoreObserver},
    plan::{Lb, Step},
    record::{
        LatencyRun, PointMode, SearchEnd, SearchStep, StepOutcome, Verdict, WorkloadKind,
        point::{self, Window},
    },
};

impl Run {
    /// Drive one load phase and sample resources exactly at the window's edges.
    pub(super) async fn measure<W: Workload>(
        &self,
        deployment: &Deployment,
        work: &Arc<W>,
        mode: Mode,
        warmup: Duration,
        duration: Duration,
    ) -> anyhow::Result<(Outcome, Sample, Sample)> {
        let spec = Spec {
            targets: deployment.targets(),
            connections_per_target: deployment.connections_per_target(self.config.connections_per_instance),
            mode,
            warmup,
            duration,
            timeout: self.config.timeout,
        };
        let progress = Arc::new(Progress::default());
        self.status.phase_counters(progress.clone());
        let system = deployment.system;
        let mut obs = match (&self.store, &self.pg) {
            (_, Some(pg)) if system.is_some_and(|s| s.needs_postgres()) => {
                PgObserver::connect(&pg.url, pg.process.pid, deploy::PG_SCHEMA).await.ok().map(StoreObserver::Postgres)
            }
            _ if system.is_some_and(|s| s.needs_cluster()) => match &self.cluster {
                Some(c) => {
                    let mut nodes = Vec::new();
                    for n in &c.nodes {
                        nodes.extend(RedisObserver::connect(&n.url).await.ok());
                    }
                    // A node that cannot be observed leaves the window without store stats.
                    (nodes.len() == c.nodes.len()).then_some(StoreObserver::Cluster { nodes, calls: 0 })
                }
                None => None,
            },
            (Some(s), _) => RedisObserver::connect(&s.url).await.ok().map(StoreObserver::Redis),
            _ => None,
        };
        // Round trips through the delay and straight to the store, all through the window.
        let (rtt_stop, rtt_probe) = match (self.delayed(), &self.store) {
            (Some(d), Some(s)) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let (via, direct, steer) = (d.url.clone(), s.url.clone(), d.steer.clone());
                let every = Duration::from_millis(50);
                (Some(tx), Some(tokio::spawn(async move { RttProbe::run(&via, &direct, every, steer, rx).await })))
            }
            _ => (None, None),
        };
        let started = Instant::now();
        let drive = engine::run(&spec, work.clone(), progress);
        tokio::pin!(drive);
        // The engine starts its clock ~20 ms after connecting; sample on the same clock.
        let window_start = started + warmup + Duration::from_millis(20);
        let window_end = window_start + duration;
        let mut start_sample = None;
        let mut end_sample = None;
        let outcome = loop {
            let next = if start_sample.is_none() {
                Some(window_start)
            } else if end_sample.is_none() {
                Some(window_end)
            } else {
                None
            };
            tokio::select! {
                outcome = &mut drive => break outcome?,
                _ = tokio::time::sleep_until(next.unwrap_or(window_end + Duration::from_secs(3600)).into()), if next.is_some() => {
                    let s = self.sample(deployment, &mut obs).await;
                    if start_sample.is_none() { start_sample = Some(s) } else { end_sample = Some(s) }
                }
            }
        };
        let start_sample = start_sample.unwrap_or_default();
        let mut end_sample = match end_sample {
            Some(s) => s,
            None => self.sample(deployment, &mut obs).await,
        };
        if let (Some(stop), Some(probe)) = (rtt_stop, rtt_probe) {
            let _ = stop.send(());
            if let Ok(p) = probe.await {
                let samples = p.via_us.len().min(p.direct_us.len());
                end_sample.rtt = Some(RttSample {
                    via_us: crate::record::median(p.via_us).unwrap_or(f64::NAN),
                    direct_us: crate::record::median(p.direct_us).unwrap_or(f64::NAN),
                    samples,
                    hold_us: p.hold_us,
                });
            }
        }
        Ok((outcome, start_sample, end_sample))
    }

    async fn sample(&self, deployment: &Deployment, obs: &mut Option<StoreObserver>) -> Sample {
        let instance_cpu = deployment.instances.iter().map(|p| observe::ThreadCpu::read(p.pid)).collect();
        let store = match obs {
            Some(o) => o.info().await.ok(),
            None => None,
        };
        // By the system, not by the observer: a PostgreSQL point whose observer could not
        // connect must not be given the single Redis's CPU.
        let system = deployment.system;
        let store_proc_cpu = if system.is_some_and(|s| s.needs_postgres()) {
            self.pg.as_ref().map(|p| observe::postgres_cpu_seconds(p.process.pid))
        } else if system.is_some_and(|s| s.needs_cluster()) {
            self.cluster.as_ref().map(|c| {
                c.nodes.iter().filter_map(|n| observe::cpu_seconds(&n.process.as_ref()?.pid.to_string())).sum::<f64>()
            })
        } else {
            self.store.as_ref().and_then(|s| s.process.as_ref()).and_then(|p| observe::cpu_seconds(&p.pid.to_string()))
        };
        let throttled = if deployment.instances.is_empty() {
            None
        } else {
            deployment.instances.iter().map(|p| p.cgroup.as_ref().and_then(|g| g.throttled())).sum::<Option<u64>>()
        };
        let rss = deployment.instances.iter().map(|p| observe::rss_bytes(&p.pid.to_string()).unwrap_or(0)).collect();
        let machine = observe::MachineCpu::read();
        let machine_busy = if self.config.external() { machine.map(|m| m.busy_s) } else { None };
        Sample {
            instance_cpu,
            generator_cpu: observe::self_cpu_seconds(),
            store,
            store_proc_cpu,
            throttled,
            rss,
            machine_busy,
            steal: machine.map(|m| m.steal_s),
            delay_proxy_cpu: self.delay.as_ref().and_then(|d| observe::cpu_seconds(&d.process.pid.to_string())),
            lb_cpu: deployment.proxy.as_ref().and_then(|p| observe::cpu_seconds(&p.process.pid.to_string())),
            rtt: None,
        }
    }

    /// Instance CPU as a share of the instances' combined cap (`None` when uncapped).
    pub(super) fn utilization(&self, a: &Sample, b: &Sample, window: Duration) -> Option<f64> {
        let cap = self.cgroups.as_ref().map(|_| self.config.instance_cpu);
        observe::utilization(a, b, window, cap)
    }

    /// Wait until the instances are idle again, so a backlog is not billed to the next
    /// measurement; an external deployment is watched through `/healthz` instead.
    pub(super) async fn settle(&self, deployment: &Deployment) {
        if self.config.external() {
            let quick = (self.config.slo_p99 / 4).max(Duration::from_millis(1));
            return observe::settle_external(&deployment.addrs, quick).await;
        }
        let pids: Vec<u32> = deployment.instances.iter().map(|p| p.pid).collect();
        observe::settle(&pids, self.config.instance_cpu * pids.len() as f64).await;
    }

    /// One window open-loop at `rate`, as long as a final run at that rate
    /// ([`Run::point_duration`]) after the configured warm-up, then settled: the final
    /// run, the latency run and every later round's measurements.
    pub(super) async fn measure_fixed<W: Workload>(
        &self,
        deployment: &Deployment,
        work: &Arc<W>,
        rate: f64,
        label: String,
    ) -> anyhow::Result<Fixed> {
        let duration = self.point_duration(rate);
        self.measure_window(deployment, work, rate, label, (self.config.warmup, duration)).await
    }

    /// The final run of a point at `rate`. A searched point's run that misses is run again
    /// lower ([`search::final_retry`]), each miss logged in `search`; returns the run, its
    /// verdict and the rate it ran at.
    pub(super) async fn final_run<W: Workload>(
        &self,
        deployment: &Deployment,
        work: &Arc<W>,
        (mut rate, searched): (f64, bool),
        search: &mut Vec<SearchStep>,
        label: &str,
    ) -> anyhow::Result<(Fixed, Verdict, f64)> {
        let mut runs = 0;
        loop {
            runs += 1;
            let fixed = self.measure_fixed(deployment, work, rate, format!("{label} @ {rate:.0} rps")).await?;
            let verdict = search::judge(&observed(&fixed.outcome, rate));
            match search::final_retry(searched, verdict, runs) {
                Some(miss) => {
                    search.push(point::search_step(&fixed.outcome, rate, StepOutcome::FinalRetry(miss)));
                    rate *= search::FINAL_RETRY;
                }
                None => return Ok((fixed, verdict, rate)),
            }
        }
    }

    /// One window open-loop at `rate`, `(warm-up, length)` long, then settled.
    pub(super) async fn measure_window<W: Workload>(
        &self,
        deployment: &Deployment,
        work: &Arc<W>,
        rate: f64,
        label: String,
        (warmup, duration): (Duration, Duration),
    ) -> anyhow::Result<Fixed> {
        self.status.phase(label, warmup + duration, None);
        let (outcome, start, end) = self.measure(deployment, work, Mode::Open { rate }, warmup, duration).await?;
        self.settle(deployment).await;
        Ok(Fixed { outcome, start, end, duration })
    }

    /// Latency apart from capacity: a run at [`LatencyRun::SHARE`] of the rate that held,
    /// judged against the p99 objective.
    pub(super) async fn latency_run<W: Workload>(
        &self,
        step: &Step,
        lb: Lb,
        deployment: &Deployment,
        work: &Arc<W>,
        capacity: f64,
    ) -> anyhow::Result<LatencyRun> {
        let rate = capacity * LatencyRun::SHARE;
        let label = format!("latency @ {rate:.0} rps ({:.0}% of capacity)", LatencyRun::SHARE * 100.0);
        self.latency_at(step, lb, deployment, work, rate, label).await
    }

    /// One window open-loop at `rate`, judged as a latency run: the point's own, or one
    /// measured beside it at the same rate (a proxied point's, without the proxy).
    pub(super) async fn latency_at<W: Workload>(
        &self,
        step: &Step,
        lb: Lb,
        deployment: &Deployment,
        work: &Arc<W>,
        rate: f64,
        label: String,
    ) -> anyhow::Result<LatencyRun> {
        let fixed = self.measure_fixed(deployment, work, rate, label).await?;
        let window = fixed.window(step, lb, self.config.workload, PointMode::FixedRate);
        let period = if self.cgroups.is_some() { self.config.cpu_period } else { Duration::ZERO };
        Ok(point::latency_run(&window, &self.rig(), &self.config.objectives(), period))
    }

    /// Closed-loop max-throughput probe: an upper bound to start the search from.
    pub(super) async fn probe<W: Workload>(&self, deployment: &Deployment, work: &Arc<W>) -> anyhow::Result<f64> {
        let n = deployment.addrs.len();
        let connections = (4 * n).clamp(4, 64);
        self.status.phase(format!("closed-loop probe, {connections} connections"), self.config.step_duration, None);
        let warm = self.config.step_warmup();
        let (o, _, _) =
            self.measure(deployment, work, Mode::Closed { connections }, warm, self.config.step_duration).await?;
        let good = o.achieved_rps * (1.0 - o.error_ratio());
        Ok(good.max(10.0))
    }

    /// Find the highest open-loop rate that holds: [`Search`] decides, this measures.
    pub(super) async fn find_max<W: Workload>(
        &self,
        lb: Lb,
        deployment: &Deployment,
        work: &Arc<W>,
    ) -> anyhow::Result<(f64, Vec<SearchStep>, SearchEnd)> {
        let ceiling = self.probe(deployment, work).await?;
        self.settle(deployment).await;
        let budget = self.config.search_steps;
        let mut search = Search::new(ceiling, budget);
        let mut steps = Vec::new();
        let mut next = search.first();
        let end = loop {
            let rate = match next {
                Next::Try(rate) => rate,
                Next::Stop(end) => break end,
            };
            let label = format!("find-max {}/{budget} @ {rate:.0} rps ({lb})", search.tries() + 1);
            self.status.phase(label, self.config.step_duration, None);
            let (window, warmup) = (self.config.step_duration, self.config.step_warmup());
            let (o, a, b) = self.measure(deployment, work, Mode::Open { rate }, warmup, window).await?;
            self.settle(deployment).await;
            let utilization = self.utilization(&a, &b, window);
            let verdict = search::judge(&observed(&o, rate));
            let (recorded, then) = search.observe(verdict, utilization);
            steps.push(point::search_step(&o, rate, recorded));
            next = then;
        };
        Ok((search.final_rate(), steps, end))
    }
}

/// What [`Run::measure_fixed`] measured.
pub(super) struct Fixed {
    pub outcome: Outcome,
    pub start: Sample,
    pub end: Sample,
    pub duration: Duration,
}

impl Fixed {
    /// The window as `record::point` reads it.
    pub(super) fn window(&self, step: &Step, lb: Lb, workload: WorkloadKind, mode: PointMode) -> Window<'_> {
        Window {
            system: step.system,
            instances: step.instances,
            lb,
            workload,
            mode,
            duration: self.duration,
            outcome: &self.outcome,
            start: &self.start,
            end: &self.end,
        }
    }
}
