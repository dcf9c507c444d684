//! `authbench sweep`: the pipeline plan → deploy → drive → observe → record for every
//! (system, instances, balancer) step. Results are written after every point, so an
//! interrupted or failed run keeps what it measured.
//!
//! With `--target` the deploy step is replaced by an already-running deployment (docker
//! compose, Kubernetes, a manual setup): the same generator, search and results.json,
//! but nothing is started or capped, the instances' own CPU and memory are not observed
//! (recorded as unknown, not 0), and every point says `"external": true`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::{
    cgroup::CgroupRoot,
    deploy::{self, Binaries, Deployment, Store},
    drive::{
        client::{Conn, Prepared},
        engine::{self, Mode, Outcome, Progress, Spec, Workload},
    },
    observe::{self, RedisInfo, RedisObserver},
    plan::{self, Lb, Step, System},
    progress::{DisplayGuard, Status},
    record::{Caps, Cpu, Errors, Machine, Point, Results, SearchStep, Skipped, StoreStats},
    workload::{self, MixedWorkload, ReadWorkload},
};

/// Everything a sweep needs, after flag parsing and defaults.
#[derive(Clone, Debug, Serialize)]
pub struct SweepConfig {
    pub systems: Vec<System>,
    pub instances: Vec<usize>,
    pub lb: Option<Vec<Lb>>,
    pub workload: String,
    #[serde(with = "crate::record::secs")]
    pub duration: Duration,
    #[serde(with = "crate::record::secs")]
    pub warmup: Duration,
    /// Fixed open-loop rate (total across instances); `None` = find-max.
    pub rate: Option<f64>,
    #[serde(with = "crate::record::secs")]
    pub slo_p99: Duration,
    /// Length of each find-max search try (after its own short warm-up).
    #[serde(with = "crate::record::secs")]
    pub step_duration: Duration,
    pub search_steps: usize,
    pub instance_cpu: f64,
    pub store_cpu: f64,
    #[serde(with = "crate::record::secs")]
    pub cpu_period: Duration,
    /// Burst allowance as a fraction of each group's quota (0 = none).
    pub cpu_burst: f64,
    pub cgroups: bool,
    pub redis_url: Option<String>,
    pub out: PathBuf,
    pub users: usize,
    pub demo_password: String,
    pub connections_per_instance: usize,
    #[serde(with = "crate::record::secs")]
    pub timeout: Duration,
    pub min_requests: u64,
    pub bin_dir: Option<PathBuf>,
    pub quick: bool,
    /// Base URLs of an already-running deployment (`--target`): one per instance, or one
    /// load balancer. Empty = start the instances ourselves.
    pub targets: Vec<String>,
}

impl SearchStep {
    fn of(o: &Outcome, offered_rps: f64, held: bool, why: String) -> Self {
        Self {
            offered_rps,
            achieved_rps: o.achieved_rps,
            p99_us: o.latency.summary().p99,
            error_ratio: o.error_ratio(),
            held,
            why,
        }
    }
}

impl SweepConfig {
    /// Measuring an already-running deployment (`--target`)?
    pub fn external(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Warm-up of each search try and of the probe.
    pub fn step_warmup(&self) -> Duration {
        (self.step_duration / 3).clamp(Duration::from_millis(200), Duration::from_millis(500))
    }
}

/// Criteria for "the system held this rate": errors ≤ 1 %, achieved ≥ 95 % of offered,
/// p99 within the SLO, and — when capped — the instances not pinned at their CPU cap
/// (`utilization` ≥ 0.95 means the queue is growing, even if a short window has not shown
/// it in the latency yet).
pub fn judge(o: &Outcome, offered: f64, slo: Duration, utilization: Option<f64>) -> (bool, String) {
    let p99 = o.latency.summary().p99;
    if let Some(u) = utilization.filter(|u| *u >= 0.95) {
        return (false, format!("instances at {:.0}% of their CPU cap", u * 100.0));
    }
    if o.error_ratio() > 0.01 {
        return (false, format!("errors {:.2}% > 1%", o.error_ratio() * 100.0));
    }
    if o.achieved_rps < 0.95 * offered {
        return (false, format!("achieved {:.0} < 95% of {offered:.0}", o.achieved_rps));
    }
    if p99 > slo.as_micros() as u64 {
        return (false, format!("p99 {:.2} ms > SLO {:.2} ms", p99 as f64 / 1e3, slo.as_secs_f64() * 1e3));
    }
    (true, "held".into())
}

// Field order is drop order: the store (and its cgroup) must go before the run's cgroup
// directory, which can only be removed once it is empty.
struct Run {
    config: SweepConfig,
    /// `None` for an external deployment: nothing to start.
    binaries: Option<Binaries>,
    /// The `--target` addresses, in flag order (empty when we start the instances).
    targets: Vec<SocketAddr>,
    store: Option<Store>,
    cgroups: Option<CgroupRoot>,
    key_dir: PathBuf,
    log_dir: PathBuf,
    results: Results,
    status: Status,
    display: DisplayGuard,
    prefix: String,
    /// Highest sticky rate found per N for session-memory (used to load round-robin).
    sticky_max: HashMap<usize, f64>,
}

/// What was sampled at the edges of the measurement window.
#[derive(Default)]
struct Sample {
    instance_cpu: Vec<observe::ThreadCpu>,
    generator_cpu: f64,
    store: Option<RedisInfo>,
    store_proc_cpu: Option<f64>,
    throttled: Option<u64>,
    rss: Vec<u64>,
    /// Busy CPU seconds of the whole machine (external deployments only).
    machine_busy: Option<f64>,
}

pub fn run_id() -> String {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    t.replace(['-', ':'], "").replace('T', "-").trim_end_matches('Z').to_owned()
}

/// Run a sweep; returns the results (also written to `config.out`).
pub async fn sweep(mut config: SweepConfig, shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Results> {
    validate(&config)?;
    let external = config.external();
    let targets = config.targets.iter().map(|u| deploy::parse_target(u)).collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(targets_are_local(&targets), "--target: load goes to loopback addresses only");
    if external {
        // The instances are the URLs (or whatever runs behind one balancer URL).
        config.instances = vec![targets.len()];
        for (url, addr) in config.targets.iter().zip(&targets) {
            deploy::check_target(config.systems[0], url, *addr, &config.demo_password).await?;
        }
    }
    let binaries = if external { None } else { Some(deploy::find_binaries(config.bin_dir.as_deref())?) };
    let id = run_id();
    let work = deploy::WorkDir::create(&format!("authbench-{id}"))?;
    let (log_dir, key_dir) = (work.logs.clone(), work.keys.clone());
    std::fs::create_dir_all(&config.out).with_context(|| format!("cannot create {}", config.out.display()))?;

    let status = Status::default();
    let display = status.start_display();

    let (cgroups, caps) = if external {
        let reason = "external deployment: caps are the deployment's".to_owned();
        (None, Caps { capped: false, reason: Some(reason), ..Caps::default() })
    } else if config.cgroups {
        match CgroupRoot::create(&id, config.cpu_period, config.cpu_burst) {
            Ok(root) => {
                let caps = Caps {
                    capped: true,
                    reason: None,
                    cgroup: Some(root.flavor().into()),
                    period_us: config.cpu_period.as_micros() as u64,
                    burst_fraction: config.cpu_burst,
                    instance_cpu: config.instance_cpu,
                    store_cpu: config.store_cpu,
                };
                (Some(root), caps)
            }
            Err(reason) => {
                display.println(&format!("authbench: running UNCAPPED ({reason}); every point is marked capped=false"));
                (None, Caps { capped: false, reason: Some(reason), ..Caps::default() })
            }
        }
    } else {
        (None, Caps { capped: false, reason: Some("--no-cgroups".into()), ..Caps::default() })
    };

    let mut skipped = Vec::new();
    let mut systems = config.systems.clone();
    // An external deployment's own store stays invisible (stats null) unless --redis-url names it.
    let store = if external && config.redis_url.is_none() {
        None
    } else {
        let group = || deploy::group(cgroups.as_ref(), "store", config.store_cpu);
        let (store, missing) = deploy::open_store(&mut systems, config.redis_url.as_deref(), group, &log_dir).await?;
        for (s, reason) in &missing {
            display.println(&format!("authbench: skipping {s}: {reason}"));
        }
        skipped.extend(missing.into_iter().map(|(system, reason)| Skipped { system, reason }));
        store
    };
    anyhow::ensure!(!systems.is_empty(), "nothing left to measure: every requested system was skipped");

    if let Some(binaries) = &binaries {
        binaries.keygen(systems.iter().filter_map(|s| s.jwt_alg()), &key_dir)?;
    }

    let results = Results {
        schema_version: crate::record::SCHEMA_VERSION,
        run_id: id.clone(),
        started_at: crate::record::now_rfc3339(),
        finished_at: None,
        machine: Machine::detect(),
        config: serde_json::to_value(&config)?,
        caps,
        store: store
            .as_ref()
            .map(|s| if s.private() { "private redis-server".into() } else { "external (--redis-url)".into() }),
        skipped,
        points: Vec::new(),
        fits: Vec::new(),
        problems: Vec::new(),
    };
    let mut run = Run {
        prefix: format!("authbench:{id}:"),
        config,
        binaries,
        targets,
        cgroups,
        store,
        key_dir,
        log_dir,
        results,
        status,
        display,
        sticky_max: HashMap::new(),
    };
    let outcome = run.all(&systems, shutdown).await;
    if let Err(e) = &outcome {
        run.results.problems.push(format!("{e:#}"));
    }
    run.results.finished_at = Some(crate::record::now_rfc3339());
    run.results.write(&run.config.out)?;
    if let Some(store) = &mut run.store {
        if let Some(p) = &mut store.process {
            p.stop().await;
        } else if !external {
            let _ = deploy::delete_prefix(&store.url, &run.prefix).await;
        }
    }
    drop(run.display);
    drop(work);
    outcome.map(|()| run.results)
}

fn validate(c: &SweepConfig) -> anyhow::Result<()> {
    anyhow::ensure!(!c.systems.is_empty(), "--systems is empty");
    if c.external() {
        let ids: Vec<&str> = c.systems.iter().map(|s| s.id()).collect();
        anyhow::ensure!(
            c.systems.len() == 1,
            "--target needs exactly one system in --systems, the one running there (got {}: {})",
            ids.len(),
            ids.join(",")
        );
        // into_config leaves `instances` empty unless --instances was given.
        anyhow::ensure!(
            c.instances.is_empty(),
            "--instances does not go with --target: the instances are the target URLs (one URL per instance, or \
             one load balancer)"
        );
        anyhow::ensure!(c.targets.len() <= 64, "--target takes at most 64 URLs");
        return validate_common(c);
    }
    anyhow::ensure!(!c.instances.is_empty(), "--instances is empty");
    anyhow::ensure!(c.instances.iter().all(|&n| (1..=64).contains(&n)), "--instances must be between 1 and 64");
    validate_common(c)
}

fn validate_common(c: &SweepConfig) -> anyhow::Result<()> {
    anyhow::ensure!(!c.duration.is_zero() && !c.step_duration.is_zero(), "durations must be greater than zero");
    if let Some(r) = c.rate {
        anyhow::ensure!(r.is_finite() && r > 0.0, "--rate must be a positive number");
    }
    anyhow::ensure!(c.instance_cpu > 0.0 && c.store_cpu > 0.0, "--instance-cpu and --store-cpu must be positive");
    anyhow::ensure!(c.users >= 1, "--users must be at least 1");
    anyhow::ensure!(
        c.workload == "read" || c.workload == "mixed",
        "unknown --workload {:?} (available: read, mixed)",
        c.workload
    );
    Ok(())
}

impl Run {
    async fn all(&mut self, systems: &[System], shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
        let steps = plan::steps(systems, &self.config.instances, self.config.lb.as_deref());
        let total = steps.len();
        for (i, step) in steps.into_iter().enumerate() {
            if *shutdown.borrow() {
                bail!("interrupted (Ctrl-C); results keep the {} completed points", self.results.points.len());
            }
            self.status.step(format!("[{}/{total}] {} N={}", i + 1, step.system, step.instances));
            let mut deployment = Deployment::default();
            let mut shutdown = shutdown.clone();
            let r = tokio::select! {
                r = self.step(&step, &mut deployment) => r,
                _ = shutdown.wait_for(|stop| *stop) => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
            };
            deployment.stop().await;
            drop(deployment);
            if let Some(store) = &self.store
                && !self.config.external()
            {
                let _ = deploy::delete_prefix(&store.url, &self.prefix).await;
            }
            self.results.write(&self.config.out)?;
            r?;
        }
        Ok(())
    }

    fn server_args(&self, system: System, k: usize) -> Vec<String> {
        let setup = deploy::ServerSetup {
            users: self.config.users.max(10),
            password: &self.config.demo_password,
            store_url: self.store.as_ref().map(|s| s.url.as_str()),
            prefix: &self.prefix,
            key_dir: &self.key_dir,
            jwt_extra: &[],
        };
        deploy::server_args(system, k, &setup)
    }

    async fn deploy(&self, step: &Step, deployment: &mut Deployment) -> anyhow::Result<()> {
        if self.config.external() {
            // Already running: the targets are the deployment (checked at start-up).
            deployment.addrs = self.targets.clone();
            return Ok(());
        }
        let program = self.binaries.as_ref().context("no server binaries")?.program(step.system);
        for k in 0..step.instances {
            let name = format!("{}-{k}", step.system);
            let group = deploy::group(self.cgroups.as_ref(), &name, self.config.instance_cpu)?;
            if let Some(g) = &group {
                // Start-up and logins are not measured: let them run at full speed.
                g.set_cores(None).map_err(anyhow::Error::msg)?;
            }
            let (process, addr) =
                deploy::spawn_server(&name, program, &self.server_args(step.system, k), group, &self.log_dir).await?;
            deployment.instances.push(process);
            deployment.addrs.push(addr);
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step, deployment: &mut Deployment) -> anyhow::Result<()> {
        let what = if self.config.external() { "using the --target deployment" } else { "starting instances" };
        self.status.phase(what.into(), Duration::ZERO, None);
        self.deploy(step, deployment).await?;
        for &lb in &step.lbs {
            self.status.step(format!("{} N={} {lb}", step.system, step.instances));
            let point = self.point(step, lb, deployment).await?;
            if let Some(why) = deployment.casualty() {
                bail!("instance died during {} N={} {lb}: {why}", step.system, step.instances);
            }
            let line = format!(
                "{:<25} N={:<2} {:<11} {:>8.0} rps  p50 {:>6.2} ms  p99 {:>6.2} ms  err {:>6.2}%  {}{}",
                point.system.id(),
                point.instances,
                lb.id(),
                point.achieved_rps,
                point.latency_us.p50 as f64 / 1e3,
                point.latency_us.p99 as f64 / 1e3,
                point.error_ratio * 100.0,
                if point.held { "held" } else { "not held" },
                if point.flags.is_empty() { String::new() } else { format!("  [{}]", point.flags.join(", ")) }
            );
            self.display.println(&line);
            self.results.points.push(point);
            self.results.write(&self.config.out)?;
        }
        Ok(())
    }

    async fn point(&mut self, step: &Step, lb: Lb, deployment: &mut Deployment) -> anyhow::Result<Point> {
        let n = step.instances;
        self.status.phase(format!("logging in {} users", self.config.users), Duration::ZERO, None);
        deployment.set_cores(None)?;
        let creds =
            workload::login_pool(step.system, &deployment.addrs, self.config.users, lb, &self.config.demo_password)
                .await
                .with_context(|| {
                    if self.config.external() {
                        format!(
                            "logging users in to {} at {} (it needs demo users user0..user{} with the --demo-password; \
                             see --users)",
                            step.system,
                            self.config.targets.join(","),
                            self.config.users - 1
                        )
                    } else {
                        format!("logging users in to {} N={n}", step.system)
                    }
                })?;
        // An external store holds its keys under a prefix we do not know.
        let bytes_per_session =
            if step.system.needs_redis() && !self.config.external() { self.bytes_per_key().await } else { None };
        deployment.set_cores(Some(self.config.instance_cpu))?;
        if self.config.workload == "mixed" {
            let work = MixedWorkload::new(step.system, &creds, lb, n, &self.config.demo_password)?;
            self.drive_point(step, lb, deployment, work, bytes_per_session).await
        } else {
            let work = ReadWorkload::new(&creds, lb, n)?;
            self.drive_point(step, lb, deployment, work, bytes_per_session).await
        }
    }

    /// Find the rate (or take the fixed one), then measure the final point.
    async fn drive_point<W: Workload>(
        &mut self,
        step: &Step,
        lb: Lb,
        deployment: &mut Deployment,
        work: Arc<W>,
        bytes_per_session: Option<f64>,
    ) -> anyhow::Result<Point> {
        let n = step.instances;
        let expected_to_fail = step.system.instance_local_state() && lb == Lb::RoundRobin && n > 1;
        let (mode, rate, search) = if let Some(rate) = self.config.rate {
            ("fixed-rate", rate, Vec::new())
        } else if expected_to_fail {
            // Find-max is meaningless when (N-1)/N of requests are rejected by design;
            // load it at half of what sticky held, and measure the rejections.
            let base = match self.sticky_max.get(&n) {
                Some(r) => *r,
                None => self.probe(deployment, &work).await?,
            };
            ("fixed-rate", (base * 0.5).max(50.0), Vec::new())
        } else {
            let (best, search) = self.find_max(lb, deployment, &work).await?;
            ("find-max", best, search)
        };

        let (mut rate, mut search) = (rate, search);
        let mut attempt = 0;
        let (outcome, sample_start, sample_end, held, why, duration) = loop {
            let duration = self.point_duration(rate);
            self.status.phase(format!("measuring @ {rate:.0} rps"), self.config.warmup + duration, None);
            let (outcome, a, b) =
                self.measure(deployment, &work, Mode::Open { rate }, self.config.warmup, duration).await?;
            self.settle(deployment).await;
            let (held, why) = judge(&outcome, rate, self.config.slo_p99, self.utilization(&a, &b, duration));
            attempt += 1;
            // The search ends at the edge of what holds, so a longer final run can just
            // miss; step down once rather than report a rate that did not hold.
            if held || mode != "find-max" || attempt > 1 {
                break (outcome, a, b, held, why, duration);
            }
            search.push(SearchStep::of(&outcome, rate, held, format!("final run: {why}; retrying at 90%")));
            rate *= 0.9;
        };
        if mode == "find-max" && step.system.instance_local_state() && lb == Lb::Sticky && held {
            self.sticky_max.insert(n, rate);
        }
        let mut point = self.make_point(step, lb, mode, &outcome, &sample_start, &sample_end, duration);
        point.held = held && !expected_to_fail;
        point.search = search;
        if let Some(store) = point.store.as_mut() {
            store.bytes_per_session = bytes_per_session;
        }
        if !held && mode == "find-max" {
            point.flags.push(format!("final run did not hold: {why}"));
        }
        Ok(point)
    }

    /// Long enough for the configured duration and at least `min_requests` requests.
    fn point_duration(&self, rate: f64) -> Duration {
        let needed = Duration::from_secs_f64(self.config.min_requests as f64 / rate.max(1.0) * 1.05);
        self.config.duration.max(needed).min(Duration::from_secs(120))
    }

    /// Closed-loop max-throughput probe: an upper bound to start the search from.
    async fn probe<W: Workload>(&self, deployment: &Deployment, work: &Arc<W>) -> anyhow::Result<f64> {
        let n = deployment.addrs.len();
        let connections = (4 * n).clamp(4, 64);
        self.status.phase(format!("closed-loop probe, {connections} connections"), self.config.step_duration, None);
        let warm = self.config.step_warmup();
        let (o, _, _) =
            self.measure(deployment, work, Mode::Closed { connections }, warm, self.config.step_duration).await?;
        let good = o.achieved_rps * (1.0 - o.error_ratio());
        Ok(good.max(10.0))
    }

    /// Find the highest open-loop rate that holds, guided by the utilization law.
    ///
    /// Each try measures the instances' CPU utilization U at rate X; since U = X·D, the
    /// rate that would use the whole cap is X/U, and the next try aims at 85 % of it. Once
    /// a try fails (SLO, errors, throughput, or a pinned CPU), the search bisects between
    /// the best rate that held and the lowest that failed. It starts low (a short closed-
    /// loop probe's third), so most tries run below saturation and leave no backlog.
    async fn find_max<W: Workload>(
        &self,
        lb: Lb,
        deployment: &Deployment,
        work: &Arc<W>,
    ) -> anyhow::Result<(f64, Vec<SearchStep>)> {
        let ceiling = self.probe(deployment, work).await?;
        self.settle(deployment).await;
        let mut search = Vec::new();
        let mut best: Option<f64> = None;
        let mut failed: Option<f64> = None;
        let mut rate = (ceiling / 3.0).max(20.0);
        for k in 0..self.config.search_steps {
            self.status.phase(
                format!("find-max {}/{} @ {rate:.0} rps ({lb})", k + 1, self.config.search_steps),
                self.config.step_duration,
                None,
            );
            let (mut o, a, b) = self
                .measure(deployment, work, Mode::Open { rate }, self.config.step_warmup(), self.config.step_duration)
                .await?;
            self.settle(deployment).await;
            let mut utilization = self.utilization(&a, &b, self.config.step_duration);
            let (mut held, mut why) = judge(&o, rate, self.config.slo_p99, utilization);
            // A latency miss while the instances still have CPU to spare may be a single
            // stall of this 2-core machine or of the CFS period (a 1.2 s window's p99 is
            // its top ~20 requests): look once more before believing it, and record both.
            let latency_only = why.starts_with("p99");
            if !held && latency_only && utilization.is_some_and(|u| u < 0.85) {
                let note = format!("{why}; at {:.0}% CPU, so tried again", utilization.unwrap_or(0.0) * 100.0);
                search.push(SearchStep::of(&o, rate, held, note));
                let (o2, a2, b2) = self
                    .measure(
                        deployment,
                        work,
                        Mode::Open { rate },
                        self.config.step_warmup(),
                        self.config.step_duration,
                    )
                    .await?;
                self.settle(deployment).await;
                utilization = self.utilization(&a2, &b2, self.config.step_duration);
                (held, why) = judge(&o2, rate, self.config.slo_p99, utilization);
                o = o2;
            }
            search.push(SearchStep::of(&o, rate, held, why));
            if held {
                best = Some(best.map_or(rate, |b: f64| b.max(rate)));
            } else {
                failed = Some(failed.map_or(rate, |f: f64| f.min(rate)));
            }
            let next = match (best, failed) {
                (Some(lo), Some(hi)) => (lo + hi) / 2.0,
                (None, Some(hi)) => hi * 0.5,
                (Some(lo), None) => {
                    // Utilization-law estimate, bounded to at most 4x per step.
                    let target = utilization.filter(|u| *u > 0.01).map_or(lo * 2.0, |u| 0.85 * lo / u);
                    target.clamp(lo * 1.05, lo * 4.0)
                }
                (None, None) => rate,
            };
            // Converged: the next try would differ by less than 3 %.
            if ((next - rate) / rate).abs() < 0.03 && best.is_some() {
                break;
            }
            rate = next;
        }
        Ok((best.or(failed.map(|f| f * 0.5)).unwrap_or(rate), search))
    }

    /// Instance CPU as a share of the instances' combined cap (`None` when uncapped).
    fn utilization(&self, a: &Sample, b: &Sample, window: Duration) -> Option<f64> {
        self.cgroups.as_ref()?;
        let used: f64 = b.instance_cpu.iter().zip(&a.instance_cpu).map(|(y, x)| y.seconds_since(x)).sum();
        let cap = a.instance_cpu.len() as f64 * self.config.instance_cpu * window.as_secs_f64();
        (cap > 0.0).then(|| used / cap)
    }

    /// Wait until the instances are idle again: after an overloaded try, a server keeps
    /// working through requests its clients already gave up on, and that backlog would
    /// be billed to the next measurement.
    async fn settle(&self, deployment: &Deployment) {
        if self.config.external() {
            return self.settle_external(deployment).await;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let budget = self.config.instance_cpu * deployment.instances.len() as f64;
        loop {
            let a: Vec<_> = deployment.instances.iter().map(|p| observe::ThreadCpu::read(p.pid)).collect();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let used: f64 = deployment
                .instances
                .iter()
                .zip(&a)
                .map(|(p, x)| observe::ThreadCpu::read(p.pid).seconds_since(x))
                .sum();
            if used < 0.1 * budget * 0.1 || Instant::now() > deadline {
                return;
            }
        }
    }

    /// [`Run::settle`] without processes to watch: wait until every target answers
    /// `/healthz` quickly three times in a row (a server working through a backlog answers
    /// late), for at most 3 s.
    async fn settle_external(&self, deployment: &Deployment) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let quick = (self.config.slo_p99 / 4).max(Duration::from_millis(1));
        let Ok(healthz) = Prepared::get("/healthz") else { return };
        let mut conns: Vec<Option<Conn>> = deployment.addrs.iter().map(|_| None).collect();
        let mut in_a_row = 0;
        while in_a_row < 3 && Instant::now() < deadline {
            let mut all_quick = true;
            for (addr, conn) in deployment.addrs.iter().zip(&mut conns) {
                if conn.as_ref().is_none_or(Conn::is_closed) {
                    *conn = Conn::connect(*addr, Duration::from_secs(1)).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    all_quick = false;
                    continue;
                };
                let t = Instant::now();
                let ok = c.send(&healthz, Duration::from_secs(1)).await.is_ok_and(|(s, _)| s.is_success());
                all_quick &= ok && t.elapsed() <= quick;
            }
            in_a_row = if all_quick { in_a_row + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Redis memory per stored key under this run's prefix (`MEMORY USAGE` on a sample).
    async fn bytes_per_key(&self) -> Option<f64> {
        let store = self.store.as_ref()?;
        let client = redis::Client::open(store.url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(format!("{}*", self.prefix))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .ok()?;
        let mut total = 0u64;
        let mut n = 0u64;
        for key in keys.iter().take(32) {
            if let Ok(Some(bytes)) =
                redis::cmd("MEMORY").arg("USAGE").arg(key).query_async::<Option<u64>>(&mut conn).await
            {
                total += bytes;
                n += 1;
            }
        }
        (n > 0).then(|| total as f64 / n as f64)
    }

    async fn sample(&self, deployment: &Deployment, obs: &mut Option<RedisObserver>) -> Sample {
        let instance_cpu = deployment.instances.iter().map(|p| observe::ThreadCpu::read(p.pid)).collect();
        let store = match obs {
            Some(o) => o.info().await.ok(),
            None => None,
        };
        let store_proc_cpu =
            self.store.as_ref().and_then(|s| s.process.as_ref()).and_then(|p| observe::cpu_seconds(&p.pid.to_string()));
        let throttled = if deployment.instances.is_empty() {
            None
        } else {
            deployment.instances.iter().map(|p| p.cgroup.as_ref().and_then(|g| g.throttled())).sum::<Option<u64>>()
        };
        let rss = deployment.instances.iter().map(|p| observe::rss_bytes(&p.pid.to_string()).unwrap_or(0)).collect();
        let machine_busy = if self.config.external() { machine_busy_seconds() } else { None };
        Sample {
            instance_cpu,
            generator_cpu: observe::self_cpu_seconds(),
            store,
            store_proc_cpu,
            throttled,
            rss,
            machine_busy,
        }
    }

    /// Drive one load phase and sample resources exactly at the window's edges.
    async fn measure<W: Workload>(
        &self,
        deployment: &Deployment,
        work: &Arc<W>,
        mode: Mode,
        warmup: Duration,
        duration: Duration,
    ) -> anyhow::Result<(Outcome, Sample, Sample)> {
        let spec = Spec {
            targets: deployment.addrs.clone(),
            connections_per_target: self.config.connections_per_instance,
            mode,
            warmup,
            duration,
            timeout: self.config.timeout,
        };
        let progress = Arc::new(Progress::default());
        self.status.phase_counters(progress.clone());
        let mut obs = match &self.store {
            Some(s) => RedisObserver::connect(&s.url).await.ok(),
            None => None,
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
        let end_sample = match end_sample {
            Some(s) => s,
            None => self.sample(deployment, &mut obs).await,
        };
        Ok((outcome, start_sample, end_sample))
    }

    #[allow(clippy::too_many_arguments)]
    fn make_point(
        &self,
        step: &Step,
        lb: Lb,
        mode: &str,
        o: &Outcome,
        a: &Sample,
        b: &Sample,
        duration: Duration,
    ) -> Point {
        let secs = duration.as_secs_f64();
        let n = step.instances;
        let external = self.config.external();
        // Not observed for an external deployment: NaN, written as null (record::unknown).
        let instances_total_s: f64 = if external {
            f64::NAN
        } else {
            b.instance_cpu.iter().zip(&a.instance_cpu).map(|(y, x)| y.seconds_since(x)).sum()
        };
        let completed = o.completed.max(1) as f64;
        let generator_s = (b.generator_cpu - a.generator_cpu).max(0.0);
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
        let capped = self.cgroups.is_some();
        let reserved = if capped {
            n as f64 * self.config.instance_cpu
                + if self.store.as_ref().is_some_and(Store::private) { self.config.store_cpu } else { 0.0 }
        } else {
            0.0
        };
        let generator_cores = (cores - reserved).max(0.25);
        let generator_utilization = generator_s / (secs * generator_cores);
        let instance_capacity = if capped { n as f64 * self.config.instance_cpu } else { cores };
        let store_s = match (&a.store, &b.store) {
            (Some(x), Some(y)) => Some((y.cpu_s - x.cpu_s).max(0.0)),
            _ => None,
        }
        .or_else(|| Some(b.store_proc_cpu? - a.store_proc_cpu?));
        let uses_store = step.system.needs_redis();
        let store = match (&a.store, &b.store) {
            (Some(x), Some(y)) if uses_store => {
                // The INFO that opened the window is itself one command.
                let commands = y.commands.saturating_sub(x.commands).saturating_sub(1) as f64;
                Some(StoreStats {
                    ops_per_sec: commands / secs,
                    commands_per_request: commands / completed,
                    used_memory_bytes: y.used_memory,
                    bytes_per_session: None,
                    keys: y.keys,
                })
            }
            _ => None,
        };
        let mut flags = Vec::new();
        if generator_utilization > 0.8 {
            flags.push("generator".to_string());
        }
        let machine_s = match (a.machine_busy, b.machine_busy) {
            (Some(x), Some(y)) if external => Some((y - x).max(0.0)),
            _ => None,
        };
        if external {
            // Caps, if any, are the deployment's: "uncapped" would be a claim we cannot make.
            flags.push("external".to_string());
        } else if !capped {
            flags.push("uncapped".to_string());
        }
        let busy = machine_s
            .unwrap_or_else(|| instances_total_s + generator_s + if uses_store { store_s.unwrap_or(0.0) } else { 0.0 });
        if busy > 0.9 * cores * secs {
            flags.push("machine-saturated".to_string());
        }
        let summary = o.latency.summary();
        Point {
            system: step.system,
            instances: n,
            lb,
            workload: self.config.workload.clone(),
            mode: mode.to_owned(),
            offered_rps: o.offered_rps,
            achieved_rps: o.achieved_rps,
            requests: o.requests,
            duration_s: secs,
            errors: Errors {
                by_status: o.by_status.iter().filter(|(s, _)| **s >= 400).map(|(s, c)| (s.to_string(), *c)).collect(),
                timeouts: o.timeouts,
                connect: o.connect,
                io: o.io,
                unsent: o.unsent,
            },
            error_ratio: o.error_ratio(),
            latency_us: summary,
            scheduler_lag_us: o.scheduler_lag,
            cpu: Cpu {
                instances_total_s,
                per_request_us: instances_total_s * 1e6 / completed,
                store_s: if uses_store { store_s } else { None },
                store_per_request_us: if uses_store { store_s.map(|s| s * 1e6 / completed) } else { None },
                generator_s,
                generator_utilization,
                instance_utilization: instances_total_s / (secs * instance_capacity),
                machine_s,
            },
            rss_bytes: b.rss.clone(),
            store,
            capped,
            external,
            targets: self.config.targets.clone(),
            held: false,
            flags,
            search: Vec::new(),
            throttled_periods: match (a.throttled, b.throttled) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x)),
                _ => None,
            },
            histogram: o.latency.to_base64(),
        }
    }
}

/// Resolve the default output directory.
pub fn default_out(id: &str) -> PathBuf {
    Path::new("bench-results").join(id)
}

pub fn targets_are_local(addrs: &[SocketAddr]) -> bool {
    addrs.iter().all(|a| a.ip().is_loopback())
}

/// Busy CPU seconds of the whole machine since boot (`/proc/stat`: all but idle and
/// iowait). A loopback deployment shares this machine, so this is what tells a saturated
/// machine from a saturated system when the instances' own CPU is out of sight.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    // USER_HZ is 100 on every Linux this runs on.
    Some(total.saturating_sub(idle) as f64 / 100.0)
}
