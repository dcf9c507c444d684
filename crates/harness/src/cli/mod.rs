//! The command line: one clap struct per subcommand, turned into the plain config structs
//! the pipeline uses.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

mod advise;
mod chaos;
mod load;
mod merge;
mod mix;
mod parse;
pub use advise::AdviseArgs;
pub use chaos::ChaosArgs;
pub use load::LoadArgs;
pub use merge::MergeArgs;
pub use mix::MixArgs;
use parse::*;

use crate::{
    experiment::run_id,
    plan::{Lb, Spread, System},
    record::{SweepConfig, WorkloadKind, revocation::RevocationConfig},
    sweep::default_out,
};

#[derive(Debug, Parser)]
#[command(name = "authbench", version, about = "Session vs JWT authentication, measured as instances scale out")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start N instances of each system under capped CPU, find their max sustained
    /// throughput, record resources, write results.json. With --target, measure an
    /// already-running deployment instead.
    Sweep(SweepArgs),
    /// Open- or closed-loop load against one local URL (the generator alone); with
    /// --start-at and --hlog, one generator of a distributed run.
    Load(LoadArgs),
    /// Add up several generators' .hlog files (from `load --hlog`) into one results point:
    /// exact percentiles of the summed histograms, never averaged ones.
    Merge(MergeArgs),
    /// Render report.md, report.html and the SVG charts from a run's results.json alone.
    Report(ReportArgs),
    /// Measure the revocation window: how long after a logout each system still accepts
    /// the credential on some instance.
    Revocation(RevocationArgs),
    /// Failure experiments under steady load: the store hangs, the store restarts empty,
    /// an instance dies. Records a per-second timeline of answers and the recovery time.
    Chaos(ChaosArgs),
    /// Set two sweeps side by side (normalised by their calibration when both have one),
    /// print the comparison and write it to compare.md; with --fail-above, a regression gate.
    Compare(CompareArgs),
    /// Each of our servers beside what users would build instead (bare axum, tower-sessions,
    /// axum + jsonwebtoken), interleaved on this machine; writes peers.md and peers.json.
    Peers(PeersArgs),
    /// From a run's measured service demands to your deployment: instances, store, the
    /// latency authentication adds, revocation and outage behaviour, ranked per option.
    Advise(AdviseArgs),
    /// (internal) The delay `sweep --store-rtt` puts between the instances and the store.
    #[command(hide = true)]
    DelayProxy(DelayProxyArgs),
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Pairs to measure (comma-separated): healthz, jwt-hs256, session-memory, session-redis.
    #[arg(long, value_delimiter = ',', value_parser = crate::peers::pair,
          default_value = "healthz,jwt-hs256,session-memory,session-redis")]
    pub pairs: Vec<crate::peers::Pair>,

    /// Interleaved rounds per pair (medians are taken over them).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,

    /// Closed-loop run before each measured window (not counted).
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub warmup: Duration,

    /// Length of each measured window.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub duration: Duration,

    /// Keep-alive connections of the closed loop.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,

    /// Each server's CPU cap in cores (its own cgroup); 0 runs uncapped.
    #[arg(long, default_value = "1", value_parser = cores_or_zero, allow_hyphen_values = true)]
    pub cores: f64,

    /// Directory for peers.md and peers.json.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,

    /// Where session-server, jwt-server and authbench-peer are (default: next to authbench, or PATH).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// Measure nothing: re-render peers.md in --out from its peers.json (the same bytes
    /// for the same file).
    #[arg(long)]
    pub render: bool,
}

impl PeersArgs {
    pub fn into_config(self) -> crate::peers::PeersConfig {
        crate::peers::PeersConfig {
            pairs: self.pairs,
            rounds: usize::from(self.rounds),
            warmup: self.warmup,
            duration: self.duration,
            connections: usize::from(self.connections),
            cores: (self.cores > 0.0).then_some(self.cores),
            out: self.out,
            bin_dir: self.bin_dir,
        }
    }
}

#[derive(Debug, Args)]
pub struct DelayProxyArgs {
    /// Address to accept the instances' store connections on.
    #[arg(long)]
    pub listen: std::net::SocketAddr,

    /// The store's address.
    #[arg(long)]
    pub upstream: std::net::SocketAddr,

    /// Round trip to add: half on the way there, half on the way back.
    #[arg(long, value_parser = duration)]
    pub rtt: Duration,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run's directory (holding results.json).
    pub a: PathBuf,

    /// The later run's directory.
    pub b: PathBuf,

    /// Exit non-zero when any system's throughput fell, or its CPU per request rose, by more
    /// than this many percent (on normalised figures when both runs are calibrated).
    #[arg(long, value_parser = positive)]
    pub fail_above: Option<f64>,

    /// Where to write the comparison (default: compare.md in B's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// What B's figures are expressed in: auto (the control line, else the CPU loop, else
    /// raw), raw (as measured), or cpu-loop. Use raw or cpu-loop to compare two builds of
    /// the servers: a changed stack moves the control line itself.
    #[arg(long, value_enum, default_value = "auto")]
    pub basis: crate::report::compare::BasisChoice,
}

#[derive(Debug, Args)]
pub struct RevocationArgs {
    /// Systems to measure (comma-separated; session-* and jwt-hs256*).
    #[arg(long, env = "AUTHBENCH_REVOCATION_SYSTEMS", value_delimiter = ',', value_parser = |s: &str| s.parse::<System>(),
          default_value = "session-memory,session-redis,jwt-hs256,jwt-hs256+denylist,jwt-hs256+denylist-cached")]
    pub systems: Vec<System>,

    /// Instances per system (uncapped).
    #[arg(long, env = "AUTHBENCH_REVOCATION_INSTANCES", default_value_t = 2, value_parser = instance_count)]
    pub instances: usize,

    /// Logouts measured per system.
    #[arg(long, env = "AUTHBENCH_REPEATS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub repeats: u64,

    /// Use this Redis instead of starting a private redis-server.
    #[arg(long, env = "AUTHBENCH_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Output directory (default bench-results/revocation-<run-id>).
    #[arg(long, env = "AUTHBENCH_OUT")]
    pub out: Option<PathBuf>,

    /// Access-token lifetime of the JWT servers: with `--revocation none` the window is
    /// the token's remaining lifetime, so keep it short (the servers also run --leeway 0s).
    #[arg(long, env = "AUTHBENCH_ACCESS_TTL", default_value = "5s", value_parser = duration)]
    pub access_ttl: Duration,

    /// Longest probe per repeat; a credential still accepted then is "not revoked".
    #[arg(long, env = "AUTHBENCH_DEADLINE", default_value = "15s", value_parser = duration)]
    pub deadline: Duration,

    /// Directory holding session-server and jwt-server (default: next to authbench, then PATH).
    #[arg(long, env = "AUTHBENCH_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
}

impl RevocationArgs {
    pub fn into_config(self) -> RevocationConfig {
        RevocationConfig {
            systems: self.systems,
            instances: self.instances,
            repeats: self.repeats as usize,
            redis_url: self.redis_url,
            out: self.out.unwrap_or_else(|| default_out(&format!("revocation-{}", run_id()))),
            access_ttl: self.access_ttl,
            deadline: self.deadline,
            demo_password: "demo-password".into(),
            bin_dir: self.bin_dir,
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's directory, holding results.json (e.g. bench-results/NAME).
    pub dir: PathBuf,

    /// Also (re)write the USL fits into results.json's `fits` (a sweep does this itself).
    #[arg(long)]
    pub write_fits: bool,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Systems to measure (comma-separated). `control` is the server stack answering /me
    /// without authenticating: the rig's own line, measured beside the systems by default.
    #[arg(long, env = "AUTHBENCH_SYSTEMS", value_delimiter = ',', value_parser = |s: &str| s.parse::<System>(),
          default_value = "session-memory,session-redis,jwt-hs256,jwt-rs256,jwt-es256,jwt-eddsa,control")]
    pub systems: Vec<System>,

    /// Instance counts to scale through (comma-separated). Default 1,2,4,8 (1,2 with --quick,
    /// 1,2,3,4,8 with --reference).
    #[arg(long, env = "AUTHBENCH_INSTANCES", value_delimiter = ',', value_parser = instance_count)]
    pub instances: Option<Vec<usize>>,

    /// Measure an already-running deployment instead of starting instances: its base URLs
    /// (comma-separated, loopback only), one per instance or one load balancer. Needs
    /// exactly one --systems (what runs there); nothing is started or capped, and the
    /// instances' own CPU and memory are recorded as unknown.
    #[arg(long = "target", env = "AUTHBENCH_TARGET", value_name = "URL", value_delimiter = ',')]
    pub targets: Vec<String>,

    /// Let --target name another machine (your own cluster's Service or balancer). Off by
    /// default: load goes to this machine only.
    #[arg(long, requires = "targets")]
    pub allow_remote: bool,

    /// Balancer policies; default: round-robin for all, plus sticky for session-memory.
    /// With several --target URLs, how authbench spreads requests over them; with one, a
    /// label for what the deployment's own balancer does.
    /// `haproxy-rr` and `haproxy-sticky` put a real HAProxy between the generator and the
    /// instances (sticky: a stick table on the session cookie).
    #[arg(long, env = "AUTHBENCH_LB", value_delimiter = ',', value_enum)]
    pub lb: Option<Vec<Lb>>,

    /// At the largest N, measure every system once more through a real HAProxy with the
    /// policy it needs (haproxy-sticky for session-memory, haproxy-rr otherwise).
    #[arg(long)]
    pub haproxy: bool,

    /// HAProxy's CPU cap in cores (its own cgroup), for --lb haproxy-* and --haproxy.
    #[arg(long, env = "AUTHBENCH_LB_CPU", default_value = "0.5", value_parser = positive)]
    pub lb_cpu: f64,

    /// Request mix: `read` (GET /me only) or `mixed` (derived from how users behave: see
    /// --session-length, --requests-per-user-per-minute and --access-ttl).
    #[arg(long, env = "AUTHBENCH_WORKLOAD", default_value = "read", value_parser = |s: &str| s.parse::<WorkloadKind>())]
    pub workload: WorkloadKind,

    #[command(flatten)]
    pub mix: MixArgs,

    /// Measured window of each final point (longer when needed for --min-requests).
    #[arg(long, env = "AUTHBENCH_DURATION", value_parser = duration)]
    pub duration: Option<Duration>,

    /// Discarded warm-up before each final point.
    #[arg(long, env = "AUTHBENCH_WARMUP", value_parser = duration)]
    pub warmup: Option<Duration>,

    /// Fixed open-loop rate (requests/s across all instances) instead of --find-max.
    #[arg(long, env = "AUTHBENCH_RATE", value_parser = positive, conflicts_with = "find_max")]
    pub rate: Option<f64>,

    /// Search for each point's capacity, the highest rate that holds (the default).
    #[arg(long)]
    pub find_max: bool,

    /// p99 objective, judged on each point's latency run at 70% of its capacity (it does
    /// not end the search).
    #[arg(long, env = "AUTHBENCH_SLO_P99", default_value = "5ms", value_parser = duration)]
    pub slo_p99: Duration,

    /// Length of each find-max try.
    #[arg(long, env = "AUTHBENCH_STEP_DURATION", value_parser = duration)]
    pub step_duration: Option<Duration>,

    /// Number of find-max tries after the closed-loop probe.
    #[arg(long, env = "AUTHBENCH_SEARCH_STEPS")]
    pub search_steps: Option<usize>,

    /// Measure each point K times: searched once, then its final run (and latency run)
    /// repeated K−1 more times in later rounds that interleave the systems (A B C A B C …),
    /// so drift spreads evenly. The report gives the median and the min–max range.
    #[arg(long, env = "AUTHBENCH_REPEAT", value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub repeat: Option<u32>,

    /// With --repeat: search each point's capacity again in every later round instead of
    /// measuring at the rate round 1 found, so the range of the rounds holds the search's
    /// own error too (each round takes about as long as the first).
    #[arg(long, env = "AUTHBENCH_REPEAT_SEARCH")]
    pub repeat_search: bool,

    /// The preset for a reference run: --repeat 5 and --instances 1,2,3,4,8 (each unless
    /// given), so every point has a median and range and the largest N is predicted from
    /// N ≤ 4 (held-out validation).
    #[arg(long, conflicts_with = "quick")]
    pub reference: bool,

    /// CPU cap of each instance, in cores. Default 0.1; 0.3 with --workload mixed, where a
    /// login's argon2id hash (~25 ms of CPU) must not stall a 0.1-core instance for 25
    /// periods, and two instances, their store and the generator must fit on the machine.
    #[arg(long, env = "AUTHBENCH_INSTANCE_CPU", value_parser = positive)]
    pub instance_cpu: Option<f64>,

    /// CPU cap of the private store (Redis, PostgreSQL), in cores (default 0.1; a mixed
    /// workload 0.6, two instances' worth). A comma-separated list makes store capacity an
    /// axis: every system that uses the store is measured at the largest N at each further
    /// value (the first is the run's main line, measured at every N).
    #[arg(long, env = "AUTHBENCH_STORE_CPU", value_delimiter = ',', value_parser = positive)]
    pub store_cpu: Vec<f64>,

    /// Primaries of the Redis Cluster that `session-redis-cluster` runs on, each its own
    /// redis-server capped at --store-cpu. A comma-separated list (e.g. 1,2,4) makes it an
    /// axis at the largest N, as --store-cpu does: store capacity is shards × the cap.
    #[arg(long, env = "AUTHBENCH_STORE_SHARDS", value_delimiter = ',', default_value = "1", value_parser = shard_count)]
    pub store_shards: Vec<u16>,

    /// Live sessions as an axis (e.g. 1000,100000,1000000): for each value, every system
    /// that can hold them is measured once more at the largest N with that many sessions
    /// preloaded (JWT: refresh-token families), their memory recorded.
    #[arg(long, env = "AUTHBENCH_LIVE_SESSIONS", value_delimiter = ',', value_parser = live_count)]
    pub live_sessions: Vec<u64>,

    /// How the live-sessions points spread their requests over the sessions; each is a
    /// point of its own on the same preloaded sessions.
    #[arg(long, env = "AUTHBENCH_LIVE_SPREAD", value_delimiter = ',', default_value = "uniform,zipf")]
    pub live_spread: Vec<Spread>,

    /// After a live-sessions step's points, wait at most this long for the instances' next
    /// background purge, so what one purge costs at that many sessions is recorded (the
    /// purges run every 30 s in session-memory, every 60 s in jwt-server's refresh store and
    /// session-postgres). 0s records only the purges that ran during the points.
    #[arg(long, env = "AUTHBENCH_LIVE_PURGE_WAIT", default_value = "65s", value_parser = duration_or_zero)]
    pub live_purge_wait: Duration,

    /// CFS period for the caps; short, so throttling stalls stay short.
    #[arg(long, env = "AUTHBENCH_CPU_PERIOD", default_value = "10ms", value_parser = duration)]
    pub cpu_period: Duration,

    /// Unused quota a capped group may spend later, as a fraction of its quota (0 to 1).
    /// Keeps the long-run cap but stops a short burst from freezing an instance for the
    /// rest of the CFS period.
    #[arg(long, env = "AUTHBENCH_CPU_BURST", default_value_t = 1.0, value_parser = burst_fraction)]
    pub cpu_burst: f64,

    /// Round trip to put between every instance and the store (e.g. 500us, 0.5ms): a
    /// proxy process delays each direction by half. 0 = straight to the store. A
    /// comma-separated list (e.g. 0,500us) makes it an axis, as --store-cpu does.
    #[arg(long, env = "AUTHBENCH_STORE_RTT", value_delimiter = ',', default_value = "0s", value_parser = duration_or_zero)]
    pub store_rtt: Vec<Duration>,

    /// Run without CPU caps (points are marked capped=false).
    #[arg(long)]
    pub no_cgroups: bool,

    /// Use this Redis instead of starting a private redis-server.
    #[arg(long, env = "AUTHBENCH_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Output directory (default bench-results/<run-id>).
    #[arg(long, env = "AUTHBENCH_OUT")]
    pub out: Option<PathBuf>,

    /// A short smoke sweep: N = 1,2, short windows (finishes in about 90 s).
    #[arg(long)]
    pub quick: bool,

    /// Logged-in demo users the load is spread over (user0, user1, …).
    #[arg(long, env = "AUTHBENCH_USERS")]
    pub users: Option<usize>,

    /// Password of the demo users: given to the instances a sweep starts, and used to log
    /// in to a --target deployment.
    #[arg(long, env = "AUTHBENCH_DEMO_PASSWORD", default_value = "demo-password")]
    pub demo_password: String,

    /// Open-loop connections per instance.
    #[arg(long, env = "AUTHBENCH_CONNECTIONS_PER_INSTANCE", default_value_t = 16)]
    pub connections_per_instance: usize,

    /// Per-request timeout.
    #[arg(long, env = "AUTHBENCH_TIMEOUT", default_value = "2s", value_parser = duration)]
    pub timeout: Duration,

    /// Smallest number of requests in a final point's window.
    #[arg(long, env = "AUTHBENCH_MIN_REQUESTS")]
    pub min_requests: Option<u64>,

    /// Directory holding session-server and jwt-server (default: next to authbench, then PATH).
    #[arg(long, env = "AUTHBENCH_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// The instance cap of a mixed workload unless `--instance-cpu` says otherwise. At 0.1 core
/// one 25 ms login spans 25 quota periods and stalls the whole instance; at 0.3 core, eight.
/// Higher caps do not fit: at 0.5 core a login-heavy mix costs 70–150 µs of instance CPU
/// per request and the generator ~50 µs, so two instances, their store and the generator
/// needed the whole 2-core machine: 9 of 11 systems' N = 2 points in the 2026-12-06
/// reference's mix were flagged `generator`. At 0.3 core about 40 % of the machine is idle.
pub const MIXED_INSTANCE_CPU: f64 = 0.3;

/// The store cap of a mixed workload unless `--store-cpu` says otherwise: two instances'
/// worth, so at N = 2 the instances are the limit wherever the store costs less CPU per
/// request than an instance (Redis: 10–20 µs against 60–150). A store that costs more
/// (PostgreSQL, ~165 µs) is still the limit, and the report says so.
pub const MIXED_STORE_CPU: f64 = 0.6;

/// Repeats of every point in a `--reference` sweep: the min–max range of 5 covers the
/// median with 1 − 2^(1−5) ≈ 94 %.
pub const REFERENCE_REPEAT: u32 = 5;

impl SweepArgs {
    pub fn into_config(self) -> SweepConfig {
        let q = self.quick;
        // With --target the instance count is the number of URLs; an --instances given
        // anyway is kept so that the sweep can refuse it.
        let instances = match self.instances {
            Some(given) => given,
            None if !self.targets.is_empty() => Vec::new(),
            None if q => vec![1, 2],
            // N = 3 lets the held-out validation fit the USL on N ≤ 4 and predict N = 8.
            None if self.reference => vec![1, 2, 3, 4, 8],
            None => vec![1, 2, 4, 8],
        };
        let lb_cpu = self.lb_cpu;
        let mut config = SweepConfig {
            systems: self.systems,
            instances,
            lb_cpu: None,
            haproxy: self.haproxy,
            lb: self.lb,
            workload: self.workload,
            duration: self.duration.unwrap_or(if q { Duration::from_millis(1500) } else { Duration::from_secs(3) }),
            warmup: self.warmup.unwrap_or(if q { Duration::from_millis(300) } else { Duration::from_millis(500) }),
            rate: self.rate,
            slo_p99: self.slo_p99,
            slo_write: self.mix.slo_write,
            slo_login: self.mix.slo_login,
            profile: (self.workload == WorkloadKind::Mixed).then(|| self.mix.profile()),
            step_duration: self.step_duration.unwrap_or(if q {
                Duration::from_millis(600)
            } else {
                Duration::from_millis(1000)
            }),
            search_steps: self.search_steps.unwrap_or(if q { 3 } else { 4 }),
            repeat: self.repeat.unwrap_or(if self.reference { REFERENCE_REPEAT } else { 1 }) as usize,
            repeat_search: self.repeat_search,
            instance_cpu: self.instance_cpu.unwrap_or(if self.workload == WorkloadKind::Mixed {
                MIXED_INSTANCE_CPU
            } else {
                0.1
            }),
            store_cpu: self.store_cpu.first().copied().unwrap_or(if self.workload == WorkloadKind::Mixed {
                MIXED_STORE_CPU
            } else {
                0.1
            }),
            store_cpus: if self.store_cpu.len() > 1 { self.store_cpu } else { Vec::new() },
            store_shards: if self.store_shards == [1] { Vec::new() } else { self.store_shards },
            live_spreads: if self.live_sessions.is_empty() { Vec::new() } else { self.live_spread },
            live_purge_wait: if self.live_sessions.is_empty() { Duration::ZERO } else { self.live_purge_wait },
            live_sessions: self.live_sessions,
            cpu_period: self.cpu_period,
            cpu_burst: self.cpu_burst,
            cgroups: !self.no_cgroups,
            redis_url: self.redis_url,
            store_rtt: self.store_rtt.first().copied().unwrap_or_default(),
            store_rtts: if self.store_rtt.len() > 1 { self.store_rtt } else { Vec::new() },
            out: self.out.unwrap_or_else(|| default_out(&run_id())),
            users: self.users.unwrap_or(if q { 32 } else { 64 }),
            demo_password: self.demo_password,
            connections_per_instance: self.connections_per_instance.max(1),
            timeout: self.timeout,
            min_requests: self.min_requests.unwrap_or(if q { 1_000 } else { 5_000 }),
            bin_dir: self.bin_dir,
            quick: q,
            targets: self.targets,
            allow_remote: self.allow_remote,
        };
        // Recorded only when some point goes through the proxy.
        config.lb_cpu = config.proxied().then_some(lb_cpu);
        config
    }
}
