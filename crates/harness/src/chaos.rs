//! `authbench chaos`: what each system does when a part fails under steady load.
//!
//! Every run holds a constant open-loop rate against N uncapped instances and, at a fixed
//! moment, breaks one part:
//!
//! - `store-freeze`: the store is stopped (SIGSTOP) for `--outage`, then resumed: a hung
//!   or partitioned Redis. Its data survives.
//! - `store-restart`: the store is killed (SIGKILL) and, after `--outage`, a new empty
//!   one starts on the same port: a crash of a Redis that keeps nothing on disk (the
//!   usual cache configuration). Sessions and denials it held are gone.
//! - `instance-loss`: one instance is killed (SIGKILL). The client-side balancer treats
//!   the first failed connection as the instance's death and sends its users elsewhere —
//!   a best-case balancer with passive health checks; a real one probing every few
//!   seconds loses more.
//!
//! The clients behave like real ones: a user whose credential is refused (401) logs in
//! again, so the timeline shows the login storm a lost session store causes and when it
//! ends. Every answer is counted in one-second buckets by the time it arrived; the
//! recovery time runs from the end of the fault (store back, or instance gone) to the
//! last failed answer.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::{
    deploy::{self, Binaries, Deployment, Store},
    drive::{
        client::Prepared,
        engine::{self, Mode, Progress, Req, Spec, Ticket, Workload},
        histogram::LatencySummary,
    },
    plan::{Lb, Server, System},
    record::RunHeader,
    workload,
};

/// Which part breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    StoreFreeze,
    StoreRestart,
    InstanceLoss,
}

impl Experiment {
    pub const ALL: [Experiment; 3] = [Experiment::StoreFreeze, Experiment::StoreRestart, Experiment::InstanceLoss];

    pub fn id(self) -> &'static str {
        match self {
            Experiment::StoreFreeze => "store-freeze",
            Experiment::StoreRestart => "store-restart",
            Experiment::InstanceLoss => "instance-loss",
        }
    }

    /// What the fault is, in words, for results and the report.
    pub fn describe(self) -> &'static str {
        match self {
            Experiment::StoreFreeze => "Redis stopped (SIGSTOP) and resumed: hung or unreachable, data kept",
            Experiment::StoreRestart => "Redis killed (SIGKILL) and restarted empty on the same port (no persistence)",
            Experiment::InstanceLoss => "one instance killed (SIGKILL); the balancer moves its users to the others",
        }
    }
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Experiment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Experiment::ALL.into_iter().find(|e| e.id() == s).ok_or_else(|| {
            let known: Vec<_> = Experiment::ALL.iter().map(|e| e.id()).collect();
            format!("unknown experiment {s:?} (known: {})", known.join(", "))
        })
    }
}

/// Everything `authbench chaos` needs, after flag parsing.
#[derive(Clone, Debug, Serialize)]
pub struct ChaosConfig {
    pub systems: Vec<System>,
    pub experiments: Vec<Experiment>,
    pub instances: usize,
    /// Offered load, requests per second, all instances together.
    pub rate: f64,
    pub users: usize,
    #[serde(with = "crate::record::secs")]
    pub warmup: Duration,
    /// Length of each run after the warm-up.
    #[serde(with = "crate::record::secs")]
    pub duration: Duration,
    /// When the fault starts, from the start of the run (warm-up included).
    #[serde(with = "crate::record::secs")]
    pub fault_at: Duration,
    /// How long the store stays down (store experiments).
    #[serde(with = "crate::record::secs")]
    pub outage: Duration,
    /// Per-request client timeout.
    #[serde(with = "crate::record::secs")]
    pub timeout: Duration,
    pub connections_per_instance: usize,
    pub out: PathBuf,
    pub demo_password: String,
    pub bin_dir: Option<PathBuf>,
}

impl ChaosConfig {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.systems.is_empty(), "--systems is empty");
        anyhow::ensure!(!self.experiments.is_empty(), "--experiments is empty");
        anyhow::ensure!((2..=64).contains(&self.instances), "--instances must be between 2 and 64 (one is lost)");
        anyhow::ensure!(self.rate.is_finite() && self.rate > 0.0, "--rate must be greater than zero");
        anyhow::ensure!((1..=100_000).contains(&self.users), "--users must be between 1 and 100000");
        anyhow::ensure!(!self.duration.is_zero(), "--duration must be greater than zero");
        let end = self.warmup + self.duration;
        anyhow::ensure!(
            self.fault_at >= self.warmup && self.fault_at < end,
            "--fault-at ({}) must fall after the warm-up and before the end of the run ({})",
            humantime::format_duration(self.fault_at),
            humantime::format_duration(end)
        );
        if self.experiments.iter().any(|e| *e != Experiment::InstanceLoss) {
            anyhow::ensure!(
                self.fault_at + self.outage + Duration::from_secs(2) <= end,
                "--fault-at + --outage must end at least 2 s before the run does, so recovery can be seen"
            );
        }
        Ok(())
    }
}

/// Answers that arrived within one second of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Bucket {
    /// Start of the bucket, seconds from the start of the run.
    pub t_s: u32,
    /// 2xx answers to `/me`.
    pub ok: u64,
    /// 401: the credential is not (or no longer) accepted.
    pub unauthorized: u64,
    /// 503: the server failed closed (store unreachable).
    pub unavailable: u64,
    pub other_status: u64,
    /// No answer: refused or broken connection, or the client timeout.
    pub no_answer: u64,
    /// Logins sent by users whose credential was refused (any answer).
    pub logins: u64,
}

impl Bucket {
    pub fn failed(&self) -> u64 {
        self.unauthorized + self.unavailable + self.other_status + self.no_answer
    }
}

/// One system under one fault.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChaosRun {
    pub experiment: Experiment,
    pub system: System,
    pub instances: usize,
    pub lb: Lb,
    pub offered_rps: f64,
    pub users: usize,
    /// Fault start and end, seconds from the start of the run (equal for instance loss:
    /// the instance does not come back).
    pub fault_start_s: f64,
    pub fault_end_s: f64,
    pub timeline: Vec<Bucket>,
    /// All buckets together.
    pub totals: Bucket,
    /// First failed answer after the fault started, ms after the fault start.
    pub first_failure_ms: Option<f64>,
    /// Last failed answer, ms after the fault ended.
    pub last_failure_ms: Option<f64>,
    /// Time from the end of the fault to the last failed answer (0 when nothing failed
    /// after it); `null` when the run's last full second still had ≥ 1 % failed answers.
    pub recovery_ms: Option<f64>,
    /// Time from the end of the fault to the end of the last second with ≥ 1 % failed
    /// answers (1 s resolution); `null` as for `recovery_ms`.
    pub settled_ms: Option<f64>,
    /// Users who were refused and had to log in again.
    pub users_relogged: u64,
    pub logins_ok: u64,
    /// Instance loss: users whose balancer target was the killed instance.
    pub users_on_lost_instance: Option<u64>,
    /// Latency of every answer in the measurement window, from its intended send time.
    pub latency_us: LatencySummary,
    pub requests: u64,
    pub notes: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub experiment: Experiment,
    pub system: System,
    pub reason: String,
}

/// `chaos.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChaosResults {
    /// Schema, kind, run id, times, machine, config; `capped` is always false.
    #[serde(flatten)]
    pub run: RunHeader,
    pub skipped: Vec<Skipped>,
    pub runs: Vec<ChaosRun>,
}

pub const FILE: &str = "chaos.json";

impl ChaosResults {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        crate::record::write_json_atomically(dir, FILE, self)
    }

    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        crate::record::read_json(dir, FILE)
    }
}

/// Share of failed answers at or above which a second counts as disturbed.
const DISTURBED: f64 = 0.01;

/// Recovery after a fault that ended at `fault_end_s` (seconds from the start of the run):
/// `(recovery, settled)` in ms, where recovery runs to the last failed answer (a user who
/// comes back late still finds their session gone) and settled to the end of the last
/// second with ≥ 1 % failed answers. Both `None` when the run's last full second was still
/// disturbed: not recovered as far as the run can see.
fn recovery(
    timeline: &[Bucket],
    last_failure_s: Option<f64>,
    fault_end_s: f64,
    run_end_s: f64,
) -> (Option<f64>, Option<f64>) {
    let disturbed = |b: &Bucket| {
        let all = b.ok + b.failed();
        all > 0 && b.failed() as f64 / all as f64 >= DISTURBED
    };
    let last_full = (run_end_s.floor() as u32).saturating_sub(1);
    if timeline.iter().any(|b| b.t_s == last_full && disturbed(b)) {
        return (None, None);
    }
    let ms_after = |t: f64| ((t - fault_end_s) * 1e3).max(0.0);
    // Seconds that began after the fault ended: the second the fault ends in is disturbed by
    // the fault itself, not by the recovery.
    let settled = timeline
        .iter()
        .rev()
        .find(|b| f64::from(b.t_s) >= fault_end_s && b.t_s <= last_full && disturbed(b))
        .map(|b| f64::from(b.t_s) + 1.0);
    (Some(last_failure_s.map_or(0.0, ms_after)), Some(settled.map_or(0.0, ms_after)))
}

const ME: u8 = 0;
const LOGIN: u8 = 1;

const STATE_OK: u8 = 0;
const STATE_REFUSED: u8 = 1;
const STATE_LOGGING_IN: u8 = 2;

/// One simulated user: a credential that can be replaced by a new login.
struct User {
    me: Mutex<Prepared>,
    login: Prepared,
    home: AtomicUsize,
    state: AtomicU8,
    relogged: AtomicBool,
    /// Bumped by every successful login: a 401 to a request that carried an older
    /// credential (still in flight during the new login) refuses nothing current.
    generation: AtomicU32,
}

/// `/me` for a pool of users through a balancer that routes around dead instances, with
/// users who log in again when refused; counts every answer per second.
struct ChaosWorkload {
    users: Vec<User>,
    server: Server,
    lb: Lb,
    alive: Vec<AtomicBool>,
    /// Instance loss only: a failed connection marks its instance dead.
    failover: bool,
    t0: Instant,
    buckets: Vec<[AtomicU64; 6]>,
    /// Failure times, µs from t0 (first after `watch_from`, and last).
    watch_from_us: u64,
    first_failure_us: AtomicU64,
    last_failure_us: AtomicU64,
    relogged: AtomicU64,
    logins_ok: AtomicU64,
}

const B_OK: usize = 0;
const B_401: usize = 1;
const B_503: usize = 2;
const B_OTHER: usize = 3;
const B_NONE: usize = 4;
const B_LOGIN: usize = 5;

impl ChaosWorkload {
    /// Timeline buckets cover `run` seconds (plus one for stragglers); failures before
    /// `watch_from` do not count as the fault's first.
    fn new(
        users: Vec<User>,
        server: Server,
        lb: Lb,
        instances: usize,
        failover: bool,
        run: Duration,
        watch_from: Duration,
    ) -> Self {
        Self {
            users,
            server,
            lb,
            alive: (0..instances).map(|_| AtomicBool::new(true)).collect(),
            failover,
            t0: Instant::now(),
            buckets: (0..run.as_secs() as usize + 2).map(|_| Default::default()).collect(),
            watch_from_us: watch_from.as_micros() as u64,
            first_failure_us: AtomicU64::new(u64::MAX),
            last_failure_us: AtomicU64::new(0),
            relogged: AtomicU64::new(0),
            logins_ok: AtomicU64::new(0),
        }
    }

    fn user(&self, seq: u64) -> usize {
        (workload::mix(seq) % self.users.len() as u64) as usize
    }

    /// The first live instance at or after `t`.
    fn route(&self, t: usize) -> usize {
        let n = self.alive.len();
        (0..n).map(|i| (t + i) % n).find(|&i| self.alive[i].load(Relaxed)).unwrap_or(t)
    }

    fn record(&self, slot: usize, failed: bool) {
        let now = self.t0.elapsed();
        let b = (now.as_secs() as usize).min(self.buckets.len() - 1);
        self.buckets[b][slot].fetch_add(1, Relaxed);
        if failed {
            let us = now.as_micros() as u64;
            if us >= self.watch_from_us {
                self.first_failure_us.fetch_min(us, Relaxed);
            }
            self.last_failure_us.fetch_max(us, Relaxed);
        }
    }

    fn timeline(&self) -> Vec<Bucket> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(t, b)| Bucket {
                t_s: t as u32,
                ok: b[B_OK].load(Relaxed),
                unauthorized: b[B_401].load(Relaxed),
                unavailable: b[B_503].load(Relaxed),
                other_status: b[B_OTHER].load(Relaxed),
                no_answer: b[B_NONE].load(Relaxed),
                logins: b[B_LOGIN].load(Relaxed),
            })
            .collect()
    }
}

impl Workload for ChaosWorkload {
    fn target(&self, seq: u64) -> usize {
        let t = match self.lb {
            Lb::RoundRobin => (seq % self.alive.len() as u64) as usize,
            Lb::Sticky => self.users[self.user(seq)].home.load(Relaxed),
        };
        self.route(t)
    }

    fn request(&self, seq: u64, target: usize) -> Req<'_> {
        let u = self.user(seq);
        let user = &self.users[u];
        let tag = user.generation.load(Relaxed);
        let ticket = |kind| Some(Ticket { kind, target: target as u32, user: u as u32, tag });
        if user.state.compare_exchange(STATE_REFUSED, STATE_LOGGING_IN, Relaxed, Relaxed).is_ok() {
            return Req { prepared: std::borrow::Cow::Borrowed(&user.login), ticket: ticket(LOGIN) };
        }
        let me = user.me.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Req { prepared: std::borrow::Cow::Owned(me), ticket: ticket(ME) }
    }

    fn on_response(&self, ticket: Ticket, status: u16, headers: &http::HeaderMap, body: &[u8]) {
        let user = &self.users[ticket.user as usize % self.users.len()];
        if status == 0 && self.failover {
            self.alive[ticket.target as usize % self.alive.len()].store(false, Relaxed);
        }
        if ticket.kind == LOGIN {
            self.record(B_LOGIN, false);
            let fresh = (status == 200).then(|| workload::credential(self.server, headers, body)).flatten();
            match fresh {
                Some(((name, value), _refresh)) => {
                    let mut me = user.me.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(h) = me.headers.iter_mut().find(|(n, _)| *n == name) {
                        h.1 = value;
                    }
                    drop(me);
                    // The new session lives where this login went.
                    user.home.store(ticket.target as usize, Relaxed);
                    user.generation.fetch_add(1, Relaxed);
                    user.state.store(STATE_OK, Relaxed);
                    self.logins_ok.fetch_add(1, Relaxed);
                }
                None => user.state.store(STATE_REFUSED, Relaxed),
            }
            return;
        }
        let slot = match status {
            200..=299 => B_OK,
            401 => B_401,
            503 => B_503,
            0 => B_NONE,
            _ => B_OTHER,
        };
        self.record(slot, slot != B_OK);
        if status == 401
            && ticket.tag == user.generation.load(Relaxed)
            && user.state.compare_exchange(STATE_OK, STATE_REFUSED, Relaxed, Relaxed).is_ok()
            && !user.relogged.swap(true, Relaxed)
        {
            self.relogged.fetch_add(1, Relaxed);
        }
    }
}

/// Which balancer a system runs behind in these experiments: the one it needs in
/// production (instance-local sessions must be sticky).
fn lb_for(system: System) -> Lb {
    if system.instance_local_state() { Lb::Sticky } else { Lb::RoundRobin }
}

fn notes(experiment: Experiment, system: System) -> String {
    let what = match (experiment, system.needs_redis()) {
        (Experiment::InstanceLoss, _) if system.instance_local_state() => {
            "sessions live in the lost instance's memory: its users are refused elsewhere and log in again"
        }
        (Experiment::InstanceLoss, _) => "state is shared or in the token: the other instances serve the moved users",
        (_, false) => "no store on the request path: a control",
        (Experiment::StoreFreeze, _) if system == System::JwtHs256DenylistCached => {
            "the local denylist cannot be kept current while Redis is away: once the pub/sub ping (every second) fails, \
             requests fail closed at once until the subscription is back and the list re-loaded"
        }
        (Experiment::StoreFreeze, true) => {
            "requests that need the store wait --store-timeout (500 ms), then fail closed"
        }
        (Experiment::StoreRestart, _) if system == System::JwtHs256DenylistCached => {
            "the subscription breaks: requests fail closed until it is re-established and the (now empty) list re-loaded; \
             denials the old store held are gone"
        }
        (Experiment::StoreRestart, _) if system.server() == Server::Session => {
            "the new store is empty: every session is gone and every user logs in again"
        }
        (Experiment::StoreRestart, true) => {
            "the new store is empty: denials it held are gone (a revoked, unexpired token works again)"
        }
    };
    format!("{}; {what}", experiment.describe())
}

/// Run every experiment on every system; returns the results (also written to
/// `config.out`/chaos.json after each run).
pub async fn chaos(config: ChaosConfig, shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<ChaosResults> {
    config.check()?;
    let binaries = deploy::find_binaries(config.bin_dir.as_deref())?;
    let id = crate::sweep::run_id();
    let work = deploy::WorkDir::create(&format!("authbench-chaos-{id}"))?;
    std::fs::create_dir_all(&config.out).with_context(|| format!("cannot create {}", config.out.display()))?;
    let mut skipped = Vec::new();
    // These experiments kill the store, so they never use a shared one.
    let redis_missing = which_redis().err();
    binaries.keygen(config.systems.iter().filter_map(|s| s.jwt_alg()), &work.keys)?;
    let mut plan = Vec::new();
    for &experiment in &config.experiments {
        for &system in &config.systems {
            let needs_store = system.needs_redis() || experiment != Experiment::InstanceLoss;
            match &redis_missing {
                Some(why) if needs_store => {
                    println!("authbench: skipping {experiment} {system}: {why}");
                    skipped.push(Skipped { experiment, system, reason: why.clone() });
                }
                _ => plan.push((experiment, system)),
            }
        }
    }
    anyhow::ensure!(!plan.is_empty(), "nothing left to measure: every requested run was skipped");
    let run_s = (config.warmup + config.duration).as_secs_f64();
    println!(
        "authbench chaos: {} runs of {:.0} s, {} uncapped instances, {} req/s offered, {} users",
        plan.len(),
        run_s,
        config.instances,
        config.rate,
        config.users
    );
    let mut results = ChaosResults { run: RunHeader::new("chaos", &id, &config)?, skipped, runs: Vec::new() };
    let mut outcome = Ok(());
    for (i, &(experiment, system)) in plan.iter().enumerate() {
        if *shutdown.borrow() {
            outcome = Err(anyhow::anyhow!("interrupted (Ctrl-C)"));
            break;
        }
        println!("[{}/{}] {experiment} {system}: running {:.0} s", i + 1, plan.len(), run_s);
        let ctx = Ctx { config: &config, binaries: &binaries, key_dir: &work.keys, log_dir: &work.logs, prefix: &id };
        let mut deployment = Deployment::default();
        let mut store = None;
        let mut stop = shutdown.clone();
        let r = tokio::select! {
            r = ctx.run(experiment, system, &mut deployment, &mut store) => r,
            _ = stop.wait_for(|s| *s) => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
        };
        deployment.stop().await;
        if let Some(p) = store.as_mut().and_then(|s: &mut Store| s.process.as_mut()) {
            p.stop().await;
        }
        match r {
            Ok(run) => {
                println!("    {}", line(&run));
                results.runs.push(run);
                results.write(&config.out)?;
            }
            Err(e) => {
                outcome = Err(e.context(format!("{experiment} on {system}")));
                break;
            }
        }
    }
    results.run.finished_at = Some(crate::record::now_rfc3339());
    results.write(&config.out)?;
    outcome.map(|()| results)
}

fn which_redis() -> Result<(), String> {
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("redis-server").is_file()));
    if found { Ok(()) } else { Err("redis-server is not on PATH (chaos starts and kills its own)".into()) }
}

struct Ctx<'a> {
    config: &'a ChaosConfig,
    binaries: &'a Binaries,
    key_dir: &'a Path,
    log_dir: &'a Path,
    prefix: &'a str,
}

impl Ctx<'_> {
    async fn run(
        &self,
        experiment: Experiment,
        system: System,
        deployment: &mut Deployment,
        store_slot: &mut Option<Store>,
    ) -> anyhow::Result<ChaosRun> {
        let config = self.config;
        let needs_store = system.needs_redis() || experiment != Experiment::InstanceLoss;
        if needs_store {
            *store_slot = Some(deploy::start_redis(None, self.log_dir).await?);
        }
        let store_url = store_slot.as_ref().map(|s| s.url.clone());
        let prefix = format!("authbench:{}:", self.prefix);
        let setup = deploy::ServerSetup {
            users: config.users.max(10),
            password: &config.demo_password,
            store_url: store_url.as_deref(),
            prefix: &prefix,
            key_dir: self.key_dir,
            jwt_extra: &[],
        };
        for k in 0..config.instances {
            let name = format!("{system}-{k}");
            let args = deploy::server_args(system, k, &setup);
            let (process, addr) =
                deploy::spawn_server(&name, self.binaries.program(system), &args, None, self.log_dir).await?;
            deployment.instances.push(process);
            deployment.addrs.push(addr);
        }
        let lb = lb_for(system);
        let n = deployment.addrs.len();
        let creds = workload::login_pool(system, &deployment.addrs, config.users, lb, &config.demo_password).await?;
        let users = creds
            .iter()
            .enumerate()
            .map(|(u, c)| {
                Ok(User {
                    me: Mutex::new(Prepared::get("/me")?.with_header(c.header.0.clone(), c.header.1.clone())),
                    login: Prepared::post_json(
                        "/login",
                        &serde_json::json!({"username": format!("user{u}"), "password": config.demo_password}),
                    )?,
                    home: AtomicUsize::new(c.home),
                    state: AtomicU8::new(STATE_OK),
                    relogged: AtomicBool::new(false),
                    generation: AtomicU32::new(0),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Killed: the last instance (round-robin and sticky both send it 1/N of the users).
        let victim = n - 1;
        let users_on_lost_instance = (experiment == Experiment::InstanceLoss && lb == Lb::Sticky)
            .then(|| creds.iter().filter(|c| c.home == victim).count() as u64);
        let run_len = config.warmup + config.duration;
        let spec = Spec {
            targets: deployment.addrs.clone(),
            connections_per_target: config.connections_per_instance,
            mode: Mode::Open { rate: config.rate },
            warmup: config.warmup,
            duration: config.duration,
            timeout: config.timeout,
        };
        let load = Arc::new(ChaosWorkload::new(
            users,
            system.server(),
            lb,
            n,
            experiment == Experiment::InstanceLoss,
            run_len + config.timeout,
            config.fault_at,
        ));
        let t0 = load.t0;
        let drive = engine::run(&spec, load.clone(), Arc::new(Progress::default()));
        let fault = async {
            tokio::time::sleep_until((t0 + config.fault_at).into()).await;
            let start = t0.elapsed();
            match experiment {
                Experiment::InstanceLoss => {
                    deployment.instances[victim].signal("KILL")?;
                    Ok::<_, anyhow::Error>((start, start))
                }
                Experiment::StoreFreeze => {
                    let store = own_store(store_slot)?;
                    store.signal("STOP")?;
                    tokio::time::sleep(config.outage).await;
                    own_store(store_slot)?.signal("CONT")?;
                    Ok((start, t0.elapsed()))
                }
                Experiment::StoreRestart => {
                    let old = store_slot.take().context("no store to restart")?;
                    let port = port_of(&old.url)?;
                    let mut process = old.process.context("the store is not ours to kill")?;
                    process.signal("KILL")?;
                    process.stop().await;
                    tokio::time::sleep(config.outage).await;
                    *store_slot = Some(deploy::start_redis_on(port, None, self.log_dir).await?);
                    Ok((start, t0.elapsed()))
                }
            }
        };
        let (outcome, fault) = tokio::join!(drive, fault);
        let outcome = outcome?;
        let (fault_start, fault_end) = fault?;
        let timeline = load.timeline();
        let mut totals = Bucket::default();
        for b in &timeline {
            totals.ok += b.ok;
            totals.unauthorized += b.unauthorized;
            totals.unavailable += b.unavailable;
            totals.other_status += b.other_status;
            totals.no_answer += b.no_answer;
            totals.logins += b.logins;
        }
        let first = load.first_failure_us.load(Relaxed);
        let last = load.last_failure_us.load(Relaxed);
        let last_s = (last > 0).then_some(last as f64 / 1e6);
        let (fault_start_s, fault_end_s) = (fault_start.as_secs_f64(), fault_end.as_secs_f64());
        let (recovery_ms, settled_ms) = recovery(&timeline, last_s, fault_end_s, run_len.as_secs_f64());
        Ok(ChaosRun {
            experiment,
            system,
            instances: n,
            lb,
            offered_rps: config.rate,
            users: config.users,
            fault_start_s,
            fault_end_s,
            timeline,
            totals,
            first_failure_ms: (first != u64::MAX).then(|| (first as f64 / 1e6 - fault_start_s) * 1e3),
            last_failure_ms: last_s.map(|t| (t - fault_end_s) * 1e3),
            recovery_ms,
            settled_ms,
            users_relogged: load.relogged.load(Relaxed),
            logins_ok: load.logins_ok.load(Relaxed),
            users_on_lost_instance,
            latency_us: outcome.latency.summary(),
            requests: outcome.requests,
            notes: notes(experiment, system),
        })
    }
}

fn own_store(store: &Option<Store>) -> anyhow::Result<&deploy::Process> {
    store.as_ref().and_then(|s| s.process.as_ref()).context("the store is not ours to stop")
}

fn port_of(url: &str) -> anyhow::Result<u16> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("no port in {url}"))
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("not recovered".into(), |v| format!("{v:.0} ms"))
}

fn fmt_settled(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0} s", v / 1e3))
}

fn line(run: &ChaosRun) -> String {
    let t = &run.totals;
    format!(
        "failed {} (401 {}, 503 {}, other {}, no answer {}), re-logins {}, recovery {} (settled {})",
        t.failed(),
        t.unauthorized,
        t.unavailable,
        t.other_status,
        t.no_answer,
        run.users_relogged,
        fmt_ms(run.recovery_ms),
        fmt_settled(run.settled_ms)
    )
}

/// The end-of-run table.
pub fn summary_table(results: &ChaosResults) -> String {
    let mut out = format!(
        "{:<14} {:<26} {:>7} {:>6} {:>6} {:>6} {:>9} {:>9} {:>14} {:>8}\n",
        "experiment", "system", "answers", "401", "503", "none", "re-login", "p99 ms", "recovery", "settled"
    );
    for r in &results.runs {
        let t = &r.totals;
        out.push_str(&format!(
            "{:<14} {:<26} {:>7} {:>6} {:>6} {:>6} {:>9} {:>9.1} {:>14} {:>8}\n",
            r.experiment.id(),
            r.system.id(),
            t.ok + t.failed(),
            t.unauthorized,
            t.unavailable,
            t.no_answer,
            r.users_relogged,
            r.latency_us.p99 as f64 / 1e3,
            fmt_ms(r.recovery_ms),
            fmt_settled(r.settled_ms),
        ));
    }
    for s in &results.skipped {
        out.push_str(&format!("skipped {} {}: {}\n", s.experiment, s.system, s.reason));
    }
    out.push_str(
        "instances uncapped; recovery = end of the fault to the last failed answer; settled = to the end of the last \
         second with >= 1 % failed\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;

    fn timeline(failed: &[(u32, u64)]) -> Vec<Bucket> {
        (0..16)
            .map(|t| {
                let f = failed.iter().find(|(s, _)| *s == t).map_or(0, |(_, n)| *n);
                Bucket { t_s: t, ok: 300 - f, unauthorized: f, ..Bucket::default() }
            })
            .collect()
    }

    #[test]
    fn recovery_is_measured_from_the_end_of_the_fault() {
        let quiet = timeline(&[]);
        assert_eq!(recovery(&quiet, None, 5.0, 15.0), (Some(0.0), Some(0.0)));
        let during = timeline(&[(4, 100)]);
        assert_eq!(recovery(&during, Some(4.9), 5.0, 15.0), (Some(0.0), Some(0.0)), "failures during the fault only");
        // A storm that fades, and one straggler later: the straggler sets recovery, the
        // storm sets settled.
        let storm = timeline(&[(5, 200), (6, 40), (7, 2), (11, 1)]);
        assert_eq!(recovery(&storm, Some(11.5), 5.0, 15.0), (Some(6500.0), Some(2000.0)));
        // The second the fault ends in belongs to the fault.
        let tail = timeline(&[(4, 300), (5, 100)]);
        assert_eq!(recovery(&tail, Some(5.25), 4.5, 15.0), (Some(750.0), Some(1500.0)));
        assert_eq!(recovery(&timeline(&[(4, 300)]), Some(4.4), 4.5, 15.0), (Some(0.0), Some(0.0)));
        let still = timeline(&[(5, 200), (14, 9)]);
        assert_eq!(recovery(&still, Some(14.5), 5.0, 15.0), (None, None), "still failing at the end");
    }

    #[test]
    fn a_late_401_for_an_old_credential_does_not_start_another_login() {
        let w = workload(2, Lb::Sticky, true);
        let seq = (0..).find(|&s| w.user(s) == 1).unwrap();
        let stale = w.request(seq, 0).ticket.unwrap();
        w.on_response(stale, 401, &http::HeaderMap::new(), &[]);
        let login = w.request(seq, 0).ticket.unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("__Host-sid=b; Path=/"));
        w.on_response(login, 200, &headers, &[]);
        // Another request sent with the old cookie answers 401 after the login.
        w.on_response(stale, 401, &http::HeaderMap::new(), &[]);
        assert_eq!(w.request(seq, 0).prepared.uri.path(), "/me", "no second login");
        let fresh = w.request(seq, 0).ticket.unwrap();
        w.on_response(fresh, 401, &http::HeaderMap::new(), &[]);
        assert_eq!(w.request(seq, 0).prepared.uri.path(), "/login", "a 401 for the current cookie does");
    }

    #[test]
    fn experiments_parse_by_id() {
        for e in Experiment::ALL {
            assert_eq!(e.id().parse::<Experiment>(), Ok(e));
        }
        assert!("store-melt".parse::<Experiment>().unwrap_err().contains("store-freeze"));
    }

    fn workload(n: usize, lb: Lb, failover: bool) -> ChaosWorkload {
        let users = (0..8)
            .map(|u| User {
                me: Mutex::new(
                    Prepared::get("/me").unwrap().with_header(header::COOKIE, HeaderValue::from_static("__Host-sid=a")),
                ),
                login: Prepared::post_json("/login", &serde_json::json!({})).unwrap(),
                home: AtomicUsize::new(u % n),
                state: AtomicU8::new(STATE_OK),
                relogged: AtomicBool::new(false),
                generation: AtomicU32::new(0),
            })
            .collect();
        ChaosWorkload::new(users, Server::Session, lb, n, failover, Duration::from_secs(2), Duration::ZERO)
    }

    #[test]
    fn a_dead_instance_gets_no_more_requests_and_its_users_move() {
        let w = workload(3, Lb::Sticky, true);
        let ticket = Ticket { kind: ME, target: 2, user: 2, tag: 0 };
        w.on_response(ticket, 0, &http::HeaderMap::new(), &[]);
        assert!((0..1000).all(|seq| w.target(seq) != 2));
        // Without failover (store experiments) a failed connection changes no route.
        let w = workload(3, Lb::RoundRobin, false);
        w.on_response(ticket, 0, &http::HeaderMap::new(), &[]);
        assert!((0..30).any(|seq| w.target(seq) == 2));
    }

    #[test]
    fn a_refused_user_logs_in_once_and_then_uses_the_new_credential() {
        let w = workload(2, Lb::Sticky, true);
        let seq = (0..).find(|&s| w.user(s) == 3).unwrap();
        let refused = Ticket { kind: ME, target: 1, user: 3, tag: 0 };
        w.on_response(refused, 401, &http::HeaderMap::new(), &[]);
        w.on_response(refused, 401, &http::HeaderMap::new(), &[]);
        assert_eq!(w.relogged.load(Relaxed), 1, "one user, counted once");
        let req = w.request(seq, 0);
        assert_eq!(req.prepared.uri.path(), "/login");
        assert_eq!(w.request(seq, 0).prepared.uri.path(), "/me", "one login in flight per user");
        let mut headers = http::HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("__Host-sid=new; Path=/; HttpOnly"));
        w.on_response(req.ticket.unwrap(), 200, &headers, &[]);
        let me = w.request(seq, 0);
        assert_eq!(me.prepared.headers[0].1, "__Host-sid=new");
        assert_eq!(w.users[3].home.load(Relaxed), 0, "the session now lives where the login went");
        let t = w.timeline();
        assert_eq!((t[0].unauthorized, t[0].logins, t[0].ok), (2, 1, 0));
    }
}
