//! `authbench sweep`: the pipeline plan → deploy → drive → observe → record for every
//! (system, instances, balancer) step. Results are written after every point, so an
//! interrupted or failed run keeps what it measured.
//!
//! Start at [`sweep`]; one point is [`Run::point`] → [`Run::drive_point`], which finds the
//! rate ([`search`] decides, [`measure`] measures one window) and measures the final run;
//! [`crate::record::point`] turns the window into a `Point`.
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

use crate::{
    calibrate,
    cgroup::CgroupRoot,
    deploy::{self, Binaries, Deployment, Store, cluster::RedisCluster, postgres::Postgres},
    drive::engine::{Outcome, Workload},
    experiment::{self, Steps},
    plan::{self, Lb, Spread, Step, System},
    progress::{DisplayGuard, Status},
    record::{
        Caps, Flag, Machine, MixUsers, Point, PointMode, Results, Skipped, SweepConfig, WorkloadKind,
        calibration::Calibration,
        point::{self, Rig},
    },
    workload::{self, ReadWorkload},
};

mod checks;
mod demands;
mod live;
mod measure;
mod proxy;
pub use demands::TARGET as DEMAND_TARGET;
mod rounds;
pub mod search;
mod store;

pub use live::purges_itself;

use search::Observed;

// Field order is drop order: the store (and its cgroup) must go before the run's cgroup
// directory, which can only be removed once it is empty.
struct Run {
    config: SweepConfig,
    /// `None` for an external deployment: nothing to start.
    binaries: Option<Binaries>,
    /// The `--target` addresses, in flag order (empty when we start the instances).
    targets: Vec<SocketAddr>,
    /// The delay between instances and store (`--store-rtt`), dropped before the store.
    delay: Option<deploy::delay::DelayProxy>,
    store: Option<Store>,
    /// The private PostgreSQL `session-postgres` systems share.
    pg: Option<Postgres>,
    /// The private Redis Cluster of the current `session-redis-cluster` step, started
    /// again when a step asks for another number of shards.
    cluster: Option<RedisCluster>,
    cgroups: Option<CgroupRoot>,
    key_dir: PathBuf,
    log_dir: PathBuf,
    results: Results,
    status: Status,
    display: DisplayGuard,
    prefix: String,
    /// Highest sticky rate found per N for session-memory (used to load round-robin).
    sticky_max: HashMap<usize, f64>,
    started: Instant,
    /// 1 while searching; 2 to `config.repeat` while the points are measured again.
    round: usize,
    /// The store's CPU cap now (changes between steps when store capacity is an axis).
    store_cap: f64,
    /// The round trip to the store now (changes between steps when it is an axis).
    store_rtt: Duration,
    /// The preloaded sessions of the current live-sessions step.
    live: Option<live::LiveSet>,
}

/// Run a sweep; returns the results (also written to `config.out`).
pub async fn sweep(mut config: SweepConfig, shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Results> {
    // Everything refused before anything starts exits 2, like a bad flag.
    let refused = |e: anyhow::Error| anyhow::Error::new(crate::Refused(e));
    checks::validate(&config).map_err(refused)?;
    let external = config.external();
    let targets = config
        .targets
        .iter()
        .map(|u| deploy::parse_target(u, config.allow_remote))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(refused)?;
    if !(config.allow_remote || targets_are_local(&targets)) {
        return Err(refused(anyhow::anyhow!(
            "--target: load goes to loopback addresses only (--allow-remote for your own cluster)"
        )));
    }
    if external {
        // The instances are the URLs (or whatever runs behind one balancer URL).
        config.instances = vec![targets.len()];
        for (url, addr) in config.targets.iter().zip(&targets) {
            deploy::check_target(config.systems[0], url, *addr, &config.demo_password).await.map_err(refused)?;
        }
    }
    let binaries = if external { None } else { Some(deploy::find_binaries(config.bin_dir.as_deref())?) };
    let (id, work) = experiment::start("", &config.out)?;
    let (log_dir, key_dir) = (work.logs.clone(), work.keys.clone());

    let status = Status::default();
    let display = status.start_display();
    let (cgroups, caps) = caps(&config, &id, &display);

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
    let pg =
        store::start_pg(&mut systems, &mut skipped, cgroups.as_ref(), config.store_cpu, &log_dir, &display).await?;
    anyhow::ensure!(!systems.is_empty(), "nothing left to measure: every requested system was skipped");
    let delay = store::start_delay(&config, store.as_ref(), cgroups.as_ref(), &log_dir).await?;

    if let Some(binaries) = &binaries {
        binaries.keygen(systems.iter().filter_map(|s| s.jwt_alg()), &key_dir)?;
    }

    let results = Results {
        schema_version: crate::record::SCHEMA_VERSION,
        run_id: id.clone(),
        started_at: crate::record::now_rfc3339(),
        finished_at: None,
        machine: Machine::detect(),
        config: config.clone(),
        caps,
        store: store
            .as_ref()
            .map(|s| if s.private() { "private redis-server".into() } else { "external (--redis-url)".into() }),
        postgres: match &pg {
            Some(pg) => Some(pg.facts().await),
            None => None,
        },
        skipped,
        points: Vec::new(),
        fits: Vec::new(),
        problems: Vec::new(),
        calibration: Some(Calibration::default()),
        route_demands: Vec::new(),
    };
    let (store_cap, store_rtt) = (config.store_cpu, config.store_rtt);
    let mut run = Run {
        prefix: format!("authbench:{id}:"),
        config,
        binaries,
        targets,
        cgroups,
        delay,
        store,
        pg,
        cluster: None,
        key_dir,
        log_dir,
        results,
        status,
        display,
        sticky_max: HashMap::new(),
        started: Instant::now(),
        round: 1,
        store_cap,
        store_rtt,
        live: None,
    };
    let axes = plan::StoreAxes {
        cpus: &run.config.store_cpus,
        rtts: &run.config.store_rtts,
        shards: &run.config.store_shards,
        live: &run.config.live_sessions,
        haproxy: run.config.haproxy,
    };
    let steps = plan::steps(&systems, &run.config.instances, run.config.lb.as_deref(), axes);
    // One probe before the first step; `after` probes after every step, the last included.
    run.calibrate().await;
    let mut outcome = experiment::run(&mut run, &steps, &shutdown).await;
    // Later rounds: every step with a point to measure again, in the same order each
    // round (A B C A B C …), so drift over the run spreads evenly over the systems.
    for round in 2..=run.config.repeat {
        if outcome.is_err() {
            break;
        }
        run.round = round;
        let again: Vec<Step> = steps.iter().filter(|s| run.repeatable(s)).cloned().collect();
        outcome = experiment::run(&mut run, &again, &shutdown).await;
    }
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
    if let Some(pg) = &mut run.pg {
        pg.stop().await;
    }
    if let Some(cluster) = &mut run.cluster {
        cluster.stop().await;
    }
    drop(run.display);
    drop(work);
    outcome.map(|()| run.results)
}

/// The run's CPU caps: a cgroup root when caps are asked for and possible, else why not.
fn caps(config: &SweepConfig, id: &str, display: &DisplayGuard) -> (Option<CgroupRoot>, Caps) {
    let uncapped = |reason: String| (None, Caps { capped: false, reason: Some(reason), ..Caps::default() });
    if config.external() {
        return uncapped("external deployment: caps are the deployment's".into());
    }
    if !config.cgroups {
        return uncapped("--no-cgroups".into());
    }
    match CgroupRoot::create(id, config.cpu_period, config.cpu_burst) {
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
            uncapped(reason)
        }
    }
}

impl Steps for Run {
    type Step = Step;

    fn announce(&mut self, i: usize, total: usize, step: &Step) {
        let round = if self.config.repeat > 1 {
            format!("round {}/{} ", self.round, self.config.repeat)
        } else {
            String::new()
        };
        let mut store = step.store_cpu.map_or(String::new(), |c| format!(" store {c} core"));
        if let Some(k) = step.store_shards {
            store += &format!(" {k} shard{}", if k == 1 { "" } else { "s" });
        }
        if let Some(rtt) = step.store_rtt {
            store += &format!(" store rtt {:.0} µs", crate::record::micros(rtt));
        }
        self.status.step(format!("{round}[{}/{total}] {} N={}{store}", i + 1, step.system, step.instances));
    }

    async fn run(&mut self, step: &Step, deployment: &mut Deployment) -> anyhow::Result<()> {
        if self.round > 1 { self.repeat_step(step, deployment).await } else { self.step(step, deployment).await }
    }

    async fn after(&mut self) -> anyhow::Result<()> {
        let redis = self.store.as_ref().filter(|_| !self.config.external()).map(|s| s.url.as_str());
        let clear = deploy::clear_stores(redis, &self.prefix, self.cluster.as_ref(), self.pg.as_ref());
        match self.live.take() {
            // A million keys take a capped store minutes to delete: uncapped, as the preload.
            Some(live) => {
                self.status.phase(format!("deleting {} live sessions", live.sessions), Duration::ZERO, None);
                self.with_store_uncapped(clear).await?;
            }
            None => clear.await?,
        }
        self.calibrate().await;
        self.results.write(&self.config.out)
    }

    fn interrupted(&self) -> anyhow::Error {
        anyhow::anyhow!("interrupted (Ctrl-C); results keep the {} completed points", self.results.points.len())
    }
}

/// What the verdict needs from a measured window.
fn observed(o: &Outcome, offered_rps: f64) -> Observed {
    Observed { offered_rps, achieved_rps: o.achieved_rps, error_ratio: o.error_ratio() }
}

impl Run {
    /// One calibration probe, between measurements (the instances are stopped).
    async fn calibrate(&mut self) {
        self.status.phase("calibrating".into(), Duration::ZERO, None);
        let store = self.store.as_ref().map(|s| s.url.clone());
        let probe = calibrate::probe(self.started.elapsed().as_secs_f64(), store.as_deref()).await;
        self.results.calibration.get_or_insert_with(Calibration::default).probes.push(probe);
    }

    fn server_args(&self, system: System, k: usize) -> Vec<String> {
        let cluster_urls = self.cluster.as_ref().map(RedisCluster::urls);
        let setup = deploy::ServerSetup {
            users: self.config.users.max(10),
            password: &self.config.demo_password,
            // Through the delay when this step has a round trip.
            store_url: if system.needs_postgres() {
                self.pg.as_ref().map(|p| p.url.as_str())
            } else if system.needs_cluster() {
                cluster_urls.as_deref()
            } else {
                self.delayed().map(|d| d.url.as_str()).or(self.store.as_ref().map(|s| s.url.as_str()))
            },
            prefix: &self.prefix,
            key_dir: &self.key_dir,
            jwt_extra: &[],
        };
        deploy::server_args(system, k, &setup)
    }

    async fn deploy(&mut self, step: &Step, deployment: &mut Deployment) -> anyhow::Result<()> {
        self.set_store_cap(step)?;
        self.set_store_rtt(step).await;
        if step.system.needs_cluster() {
            self.ensure_cluster(step.store_shards.unwrap_or(1)).await?;
        }
        if self.config.external() {
            // Already running: the targets are the deployment (checked at start-up).
            deployment.addrs = self.targets.clone();
            return Ok(());
        }
        self.live_prepare(step)?;
        let program = self.binaries.as_ref().context("no server binaries")?.program(step.system);
        let args = |k| {
            let mut args = self.server_args(step.system, k);
            args.extend(self.live_args(step.system, k, step.instances));
            args
        };
        let group = |name: &str| deploy::group(self.cgroups.as_ref(), name, self.config.instance_cpu);
        deploy::spawn_instances(deployment, step.system, step.instances, program, args, group, &self.log_dir).await
    }

    async fn step(&mut self, step: &Step, deployment: &mut Deployment) -> anyhow::Result<()> {
        let what = if self.config.external() { "using the --target deployment" } else { "starting instances" };
        self.status.phase(what.into(), Duration::ZERO, None);
        self.deploy(step, deployment).await?;
        if step.live_sessions.is_none() && self.live.is_some() {
            // A mixed run's active users: preloaded as a live step's are, not measured.
            self.live_load(step, deployment).await?;
        }
        let live = match step.live_sessions {
            Some(_) => Some((self.live_load(step, deployment).await?, self.live_purges(deployment).await)),
            None => None,
        };
        let spreads: Vec<Option<Spread>> = match live {
            Some(_) => self.config.live_spreads.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        let first = self.results.points.len();
        for (&lb, spread) in step.lbs.iter().flat_map(|lb| spreads.iter().map(move |s| (lb, *s))) {
            let what =
                spread.map_or(String::new(), |s| format!(" {} live sessions, {s}", step.live_sessions.unwrap_or(0)));
            self.status.step(format!("{} N={} {lb}{what}", step.system, step.instances));
            self.balancer(lb, deployment).await?;
            let (mut point, credentials) = self.point(step, lb, spread, deployment).await?;
            deployment.stop_proxy().await;
            if let (Some((state, _)), Some(spread), Some(set)) = (&live, spread, &self.live) {
                point.live = Some(live::live_point(set, state, spread, credentials, (0, None)));
            }
            if let Some(why) = deployment.casualty() {
                bail!("instance died during {} N={} {lb}: {why}", step.system, step.instances);
            }
            let flags: Vec<String> = point.flags.iter().map(Flag::to_string).collect();
            let latency = point.latency.as_ref().map_or(String::new(), |l| {
                let verdict = if l.slo_met { "met" } else { "missed" };
                format!("  @{:.0}%: p99 {:.2} ms (objective {verdict})", l.share * 100.0, l.latency_us.p99 as f64 / 1e3)
            });
            let line = format!(
                "{:<25} N={:<2} {:<11} {:>8.0} rps  p50 {:>6.2} ms  p99 {:>6.2} ms  err {:>6.2}%  {}{latency}{}{what}",
                point.system,
                point.instances,
                lb.id(),
                point.achieved_rps,
                point.latency_us.p50 as f64 / 1e3,
                point.latency_us.p99 as f64 / 1e3,
                point.error_ratio * 100.0,
                if point.held { "held" } else { "not held" },
                if flags.is_empty() { String::new() } else { format!("  [{}]", flags.join(", ")) }
            );
            self.display.println(&line);
            self.results.points.push(point);
            self.results.write(&self.config.out)?;
        }
        if let Some((_, start)) = live {
            let (runs, mean) = self.live_purge_cost(step, deployment, start).await;
            for p in &mut self.results.points[first..] {
                if let Some(l) = p.live.as_mut() {
                    (l.purges, l.purge_ms) = (runs, mean);
                }
            }
            self.results.write(&self.config.out)?;
        }
        Ok(())
    }

    /// Log the demo users in (uncapped: argon2id is not what is measured) and, for a
    /// store-backed system, what one session costs the store.
    /// Through a proxy the logins go through it, so a sticky proxy learns every session.
    async fn login(
        &self,
        step: &Step,
        deployment: &mut Deployment,
    ) -> anyhow::Result<(Vec<workload::Credential>, Option<f64>)> {
        let n = step.instances;
        if let Some(creds) = self.live_creds(step) {
            // The preloaded sessions are the credentials: nobody logs in. The instances
            // started uncapped; the cap goes on here, as after a login.
            deployment.set_cores(Some(self.config.instance_cpu))?;
            return Ok((creds, self.bytes_per_session(step.system).await));
        }
        self.status.phase(format!("logging in {} users", self.config.users), Duration::ZERO, None);
        deployment.set_cores(None)?;
        let creds =
            workload::login_pool(step.system, &deployment.targets(), self.config.users, &self.config.demo_password)
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
        let bytes_per_session = self.bytes_per_session(step.system).await;
        deployment.set_cores(Some(self.config.instance_cpu))?;
        Ok((creds, bytes_per_session))
    }

    /// One point, and how many credentials its requests were spread over.
    async fn point(
        &mut self,
        step: &Step,
        lb: Lb,
        spread: Option<Spread>,
        deployment: &mut Deployment,
    ) -> anyhow::Result<(Point, usize)> {
        let (creds, bytes_per_session) = self.login(step, deployment).await?;
        let point = match (self.config.workload, spread) {
            (WorkloadKind::Mixed, None) => {
                let mix = self.config.mix(step.system.server());
                let work = self.mixed_workload(step, &creds, lb, mix)?;
                let mut point = self.drive_point(step, lb, deployment, work.clone(), bytes_per_session).await?;
                point.mix_users = Some(MixUsers {
                    credentials: creds.len() as u64,
                    preloaded: self.live.as_ref().map_or(0, |l| l.sessions),
                    active: work.active_at(point.offered_rps) as u64,
                });
                if self.wants_demands(step) {
                    let demands = self.route_demands(step, lb, deployment, &creds).await?;
                    self.results.route_demands.extend(demands);
                }
                point
            }
            (_, spread) => {
                let targets = deployment.targets().len();
                let work = ReadWorkload::spread(&creds, lb.routing(), targets, spread.unwrap_or(Spread::Uniform))?;
                let mut point = self.drive_point(step, lb, deployment, work, bytes_per_session).await?;
                if lb.proxy() {
                    point.direct_latency = self.direct_latency(step, deployment, &creds, &point).await?;
                }
                point
            }
        };
        Ok((point, creds.len()))
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
        let expected_to_fail = step.system.rejects_by_design(lb, n);
        let (mode, rate, mut search, end) = if let Some(rate) = self.config.rate {
            (PointMode::FixedRate, rate, Vec::new(), None)
        } else if expected_to_fail {
            // Find-max is meaningless when (N-1)/N of requests are rejected by design;
            // load it at half of what sticky held, and measure the rejections.
            let base = match self.sticky_max.get(&n) {
                Some(r) => *r,
                None => self.probe(deployment, &work).await?,
            };
            (PointMode::FixedRate, (base * 0.5).max(50.0), Vec::new(), None)
        } else {
            let (best, search, end) = self.find_max(lb, deployment, &work).await?;
            (PointMode::FindMax, best, search, Some(end))
        };

        let searched = mode == PointMode::FindMax;
        let (fixed, verdict, rate) =
            self.final_run(deployment, &work, (rate, searched), &mut search, "measuring").await?;
        if mode == PointMode::FindMax && step.system.instance_local_state() && lb.sticky() && verdict.held() {
            self.sticky_max.insert(n, rate);
        }
        let mut point = point::build(&fixed.window(step, lb, self.config.workload, mode), &self.rig());
        point.held = verdict.held() && !expected_to_fail;
        point.search = search;
        point.search_end = end;
        point.store_cpu = step.store_cpu;
        point.store_shards = step.store_shards;
        point.store_rtt_us = step.store_rtt.map(crate::record::micros);
        if mode == PointMode::FindMax && point.held {
            point.latency = Some(self.latency_run(step, lb, deployment, &work, rate).await?);
        }
        if let Some(store) = point.store.as_mut() {
            store.bytes_per_session = bytes_per_session;
        }
        if let (PointMode::FindMax, crate::record::Verdict::Missed(miss)) = (mode, verdict) {
            point.flags.push(Flag::FinalRunMissed(miss));
        }
        Ok(point)
    }

    fn rig(&self) -> Rig<'_> {
        Rig {
            capped: self.cgroups.is_some(),
            external: self.config.external(),
            instance_cpu: self.config.instance_cpu,
            store_cpu: self.store_cap,
            private_store: self.store.as_ref().is_some_and(Store::private),
            targets: &self.config.targets,
            // Detected once, at the start of the run (`Machine::detect`).
            cores: self.results.machine.cores as f64,
            store_rtt: self.delayed().map(|_| self.store_rtt),
            lb_cpu: self.config.lb_cpu,
        }
    }

    /// Long enough for the configured duration and at least `min_requests` requests.
    fn point_duration(&self, rate: f64) -> Duration {
        let needed = Duration::from_secs_f64(self.config.min_requests as f64 / rate.max(1.0) * 1.05);
        self.config.duration.max(needed).min(Duration::from_secs(120))
    }
}

/// Resolve the default output directory.
pub fn default_out(id: &str) -> PathBuf {
    Path::new("bench-results").join(id)
}

pub fn targets_are_local(addrs: &[SocketAddr]) -> bool {
    addrs.iter().all(|a| a.ip().is_loopback())
}
