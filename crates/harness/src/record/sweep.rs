//! `results.json`: one sweep — its typed configuration, the machine and caps, every point
//! with its search steps, and the scalability fits.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{LivePoint, Machine, MixUsers, RouteDemand, RouteStats, unknown};
use crate::{
    drive::{
        histogram::LatencySummary,
        route::{ClassVerdict, Objectives, Route},
    },
    plan::{Lb, System},
    record::calibration::Calibration,
    record::verdict::{Flag, PointMode, SearchEnd, StepOutcome, WorkloadKind},
};

/// Everything a sweep needs, after flag parsing and defaults; recorded as `config`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepConfig {
    pub systems: Vec<System>,
    pub instances: Vec<usize>,
    pub lb: Option<Vec<Lb>>,
    pub workload: WorkloadKind,
    #[serde(with = "super::secs")]
    pub duration: Duration,
    #[serde(with = "super::secs")]
    pub warmup: Duration,
    /// Fixed open-loop rate (total across instances); `None` = find-max.
    pub rate: Option<f64>,
    #[serde(with = "super::secs")]
    pub slo_p99: Duration,
    /// p99 objective of `/refresh` and `/logout` in a mixed workload (`--slo-write`;
    /// runs made before it existed had one objective for every route).
    #[serde(default = "slo_write", with = "super::secs")]
    pub slo_write: Duration,
    /// p99 objective of `/login` in a mixed workload (`--slo-login`).
    #[serde(default = "slo_login", with = "super::secs")]
    pub slo_login: Duration,
    /// The user behaviour a mixed workload's mix is derived from (absent for reads only,
    /// and in runs made before it existed, whose mix was fixed percentages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::workload::profile::UserProfile>,
    /// Length of each find-max search try (after its own short warm-up).
    #[serde(with = "super::secs")]
    pub step_duration: Duration,
    pub search_steps: usize,
    /// Times each point is measured (`--repeat`; 1 in runs made before it existed).
    #[serde(default = "one")]
    pub repeat: usize,
    /// `--repeat-search`: each later round searches the point's capacity again instead of
    /// measuring at the rate round 1 found (absent when false, and in runs made before it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat_search: bool,
    pub instance_cpu: f64,
    /// `--lb-cpu`: HAProxy's cap in cores, for points with a proxy policy (absent when the
    /// run has none, and in runs made before the proxy existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_cpu: Option<f64>,
    /// `--haproxy`: every system measured once more at the largest N through HAProxy with
    /// the policy it needs (absent when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub haproxy: bool,
    /// The store's cap: the first `--store-cpu` value (the main line's).
    pub store_cpu: f64,
    /// Every `--store-cpu` value, when more than one was given: store-backed systems are
    /// measured at each (empty otherwise, and in runs made before the axis existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_cpus: Vec<f64>,
    /// `--store-shards`: the Redis Cluster's primaries for `session-redis-cluster`, the
    /// first the main line, the others measured at the largest N (empty: one shard, and
    /// in runs made before the axis existed). Each shard has the store's CPU cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_shards: Vec<u16>,
    /// `--live-sessions`: sessions preloaded for the live-sessions steps at the largest N
    /// (empty: no such axis, and in runs made before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub live_sessions: Vec<u64>,
    /// `--live-spread`: how those steps' points pick sessions (empty without the axis).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub live_spreads: Vec<crate::plan::Spread>,
    /// `--live-purge-wait`: the longest wait for a purge after a live step (absent without
    /// the axis).
    #[serde(default, with = "super::secs", skip_serializing_if = "Duration::is_zero")]
    pub live_purge_wait: Duration,
    #[serde(with = "super::secs")]
    pub cpu_period: Duration,
    /// Burst allowance as a fraction of each group's quota (0 = none; absent from runs
    /// made before the flag existed, which had none).
    #[serde(default)]
    pub cpu_burst: f64,
    pub cgroups: bool,
    pub redis_url: Option<String>,
    /// Round trip added between every instance and the store (`--store-rtt`; the first
    /// value, the main line's; 0 = none, and in runs made before it existed).
    #[serde(default, with = "super::secs", skip_serializing_if = "Duration::is_zero")]
    pub store_rtt: Duration,
    /// Every `--store-rtt` value, when more than one was given: store-backed systems are
    /// measured at the largest N at each (empty otherwise).
    #[serde(default, with = "super::secs_list", skip_serializing_if = "Vec::is_empty")]
    pub store_rtts: Vec<Duration>,
    pub out: PathBuf,
    pub users: usize,
    pub demo_password: String,
    pub connections_per_instance: usize,
    #[serde(with = "super::secs")]
    pub timeout: Duration,
    pub min_requests: u64,
    pub bin_dir: Option<PathBuf>,
    pub quick: bool,
    /// Base URLs of an already-running deployment (`--target`): one per instance, or one
    /// load balancer. Empty = start the instances ourselves.
    #[serde(default)]
    pub targets: Vec<String>,
    /// `--allow-remote`: --target may name another machine (a user's own cluster).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_remote: bool,
}

fn one() -> usize {
    1
}

fn slo_write() -> Duration {
    Objectives::WRITE
}

fn slo_login() -> Duration {
    Objectives::LOGIN
}

impl SweepConfig {
    /// Measuring an already-running deployment (`--target`)?
    pub fn external(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Some point goes through HAProxy (`--haproxy`, or a proxy policy in `--lb`)?
    pub fn proxied(&self) -> bool {
        self.haproxy || self.lb.as_ref().is_some_and(|l| l.iter().any(|lb| lb.proxy()))
    }

    /// Every store round trip the run asks for: the main line's, then the axis's.
    pub fn store_rtt_values(&self) -> impl Iterator<Item = Duration> + '_ {
        std::iter::once(self.store_rtt).chain(self.store_rtts.iter().copied())
    }

    /// The mixed workload's shares per route on `server` (the documented web-app profile
    /// when the run recorded none).
    pub fn mix(&self, server: crate::plan::Server) -> crate::workload::profile::Mix {
        self.user_profile().mix(server)
    }

    /// The user profile a mix is derived from: `profile`, or the documented default.
    pub fn user_profile(&self) -> crate::workload::profile::UserProfile {
        self.profile.unwrap_or(crate::workload::profile::UserProfile::WEB_APP)
    }

    /// The p99 objective of each route class.
    pub fn objectives(&self) -> Objectives {
        Objectives { read: self.slo_p99, write: self.slo_write, login: self.slo_login }
    }

    /// Warm-up of each search try and of the probe.
    pub fn step_warmup(&self) -> Duration {
        (self.step_duration / 3).clamp(Duration::from_millis(200), Duration::from_millis(500))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub by_status: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub connect: u64,
    /// Connection broke mid-request.
    pub io: u64,
    /// Due in the window but never sent: the system (or the generator) fell behind.
    pub unsent: u64,
}

/// Resource figures of one point. The instances' own figures are unknown when authbench
/// did not start them (`--target`): they are NaN in memory and `null` in `results.json`,
/// never a made-up 0 (see [`unknown`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cpu {
    /// CPU seconds all instances used during the window.
    #[serde(with = "unknown")]
    pub instances_total_s: f64,
    /// Instance CPU per completed request, in microseconds.
    #[serde(with = "unknown")]
    pub per_request_us: f64,
    /// Store CPU seconds during the window (`null` without a store).
    pub store_s: Option<f64>,
    /// Store CPU per completed request, in microseconds.
    pub store_per_request_us: Option<f64>,
    /// The generator's own CPU seconds during the window.
    pub generator_s: f64,
    /// Generator CPU as a share of the cores it could use (flagged above 0.8).
    pub generator_utilization: f64,
    /// Instance CPU as a share of their combined cap (or of the machine when uncapped).
    #[serde(with = "unknown")]
    pub instance_utilization: f64,
    /// CPU seconds the whole machine was busy during the window (`/proc/stat`). Recorded
    /// for external deployments only, where the instances' own CPU is not visible but a
    /// loopback deployment still shares this machine with the generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_s: Option<f64>,
    /// CPU seconds the hypervisor stole from the whole machine during the window
    /// (`/proc/stat`): a noisy neighbour, not the system (absent from older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_s: Option<f64>,
    /// CPU seconds HAProxy used during the window (`--lb haproxy-*` points only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_s: Option<f64>,
    /// HAProxy's CPU per completed request, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_per_request_us: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreStats {
    pub ops_per_sec: f64,
    pub commands_per_request: f64,
    pub used_memory_bytes: u64,
    /// Store memory per live session or refresh token (growth over the login phase).
    pub bytes_per_session: Option<f64>,
    pub keys: u64,
    /// PostgreSQL: rows updated per request (the sliding-expiry writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_per_request: Option<f64>,
    /// PostgreSQL: WAL bytes written per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_bytes_per_request: Option<f64>,
}

/// One try of the find-max search.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchStep {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub p99_us: u64,
    pub error_ratio: f64,
    pub held: bool,
    /// The verdict, or why the step was repeated.
    pub why: StepOutcome,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub system: System,
    pub instances: usize,
    pub lb: Lb,
    /// The store's CPU cap during this point, when the run measured several
    /// (`config.store_cpus`); otherwise absent and `caps.store_cpu` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_cpu: Option<f64>,
    /// The round trip to the store this point ran with, µs, when the run measured several
    /// (`config.store_rtts`); otherwise absent and `config.store_rtt` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_rtt_us: Option<f64>,
    /// Primaries of the Redis Cluster this point ran on (`session-redis-cluster` only),
    /// each capped at the point's store cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_shards: Option<u16>,
    /// A point of the live-sessions axis: how many sessions were held, how the requests
    /// picked among them, and what holding them cost (absent on every other point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LivePoint>,
    /// Mixed workload: the users its reads were spread over (absent on every other point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix_users: Option<MixUsers>,
    pub workload: WorkloadKind,
    pub mode: PointMode,
    pub offered_rps: Option<f64>,
    pub achieved_rps: f64,
    pub requests: u64,
    pub duration_s: f64,
    pub errors: Errors,
    pub error_ratio: f64,
    pub latency_us: LatencySummary,
    /// How late the generator's scheduler handed requests out (included in latency_us).
    pub scheduler_lag_us: Option<LatencySummary>,
    pub cpu: Cpu,
    pub rss_bytes: Vec<u64>,
    pub store: Option<StoreStats>,
    pub capped: bool,
    /// Measured an already-running deployment (`sweep --target`): authbench neither
    /// started nor capped the instances, so their CPU and RSS are unknown (`null`/empty)
    /// and `instances` is the number of target URLs (one URL may be a whole balancer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// The URLs the load went to, for external points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Did this point hold its rate? From schema 2 on: achieved ≥ 95 % of offered and
    /// errors ≤ 1 % (capacity); in schema 1 the p99 objective was part of it too.
    pub held: bool,
    /// Conditions the point's numbers must be read with (the rig's limits, a final run
    /// that missed).
    pub flags: Vec<Flag>,
    pub search: Vec<SearchStep>,
    /// Why the search stopped (searched points only; absent from runs made before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_end: Option<SearchEnd>,
    /// Times the instances' cgroups were throttled during the window.
    pub throttled_periods: Option<u64>,
    /// HdrHistogram V2 + DEFLATE, base64 (latency in µs).
    pub histogram: String,
    /// Mixed workload: the same counts and latency per route (absent for reads only,
    /// where the point's own figures are `/me`'s).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<Route, RouteStats>,
    /// Latency measured apart from capacity, at [`LatencyRun::SHARE`] of the rate this
    /// point held (searched points that held, schema 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyRun>,
    /// Proxied points (`lb` `haproxy-*`): the latency run again at the same rate on the
    /// same instances with the generator balancing round-robin — what the proxy added
    /// (absent for instance-local sessions, whose instances the proxy chose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_latency: Option<LatencyRun>,
    /// The delay between instances and store (`--store-rtt`), as achieved under load
    /// (store-backed points of such runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_rtt: Option<StoreRtt>,
    /// The point measured again in later rounds (`--repeat`), in round order; the point's
    /// own figures are round 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<Repeat>,
}

impl Point {
    /// Instance-local state behind round-robin with more than one instance: most requests
    /// reach an instance without the session, by design. Such a point never "holds".
    pub fn rejects_by_design(&self) -> bool {
        self.system.rejects_by_design(self.lb, self.instances)
    }

    /// Whether later rounds measure this point again: a searched point that held (at its
    /// capacity), or a point at a rate the user fixed. Not a point that rejects by design.
    pub fn repeatable(&self) -> bool {
        !self.rejects_by_design() && (self.held || self.mode == PointMode::FixedRate) && self.offered_rps.is_some()
    }

    /// The rig, not the system, limited this point: the generator or the whole machine was
    /// saturated, so its rate is a lower bound of what the system could do.
    pub fn rig_limited(&self) -> bool {
        self.flags.iter().any(|f| matches!(f, Flag::Generator | Flag::MachineSaturated))
    }

    /// Every round's throughput, CPU per request and latency-run p99 (µs), round 1 first.
    pub fn rounds(&self) -> Vec<RoundFigures> {
        let first = RoundFigures {
            achieved_rps: self.achieved_rps,
            held: self.held,
            cpu_per_request_us: self.cpu.per_request_us,
            p99_us: self.latency.as_ref().map(|l| l.latency_us.p99),
            p50_us: self.latency.as_ref().map(|l| l.latency_us.p50),
        };
        std::iter::once(first)
            .chain(self.repeats.iter().map(|r| RoundFigures {
                achieved_rps: r.achieved_rps,
                held: r.held,
                cpu_per_request_us: r.cpu_per_request_us,
                p99_us: r.latency_p99_us,
                p50_us: r.latency_p50_us,
            }))
            .collect()
    }
}

/// The round trip a point's instances had to the store (`--store-rtt`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoreRtt {
    /// The round trip asked for, µs.
    pub target_us: f64,
    /// Median `PING` round trip through the delay during the window, µs (`null` when none
    /// could be measured).
    pub via_us: Option<f64>,
    /// Median `PING` straight to the store, sampled alongside, µs.
    pub direct_us: Option<f64>,
    /// What the delay added: `via_us − direct_us`.
    pub added_us: Option<f64>,
    pub samples: usize,
    /// `added_us` within ±20 % or ±50 µs of the target (else the point is flagged).
    pub within: bool,
    /// CPU seconds the delay proxy used during the window: the rig's, not the system's.
    pub proxy_cpu_s: Option<f64>,
    /// The time the proxy held each round trip at the end of the window, µs: the target
    /// less what its own forwarding cost, as steered by the probe (`null` in runs made
    /// before the proxy was steered, which held the target itself).
    #[serde(default)]
    pub hold_us: Option<f64>,
}

/// What one round measured of a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundFigures {
    pub achieved_rps: f64,
    pub held: bool,
    pub cpu_per_request_us: f64,
    /// The latency run's p99 (`None` when the point has no latency run).
    pub p99_us: Option<u64>,
    /// The latency run's p50 (`None` without a latency run, or in a later round of a run
    /// made before it was kept).
    pub p50_us: Option<u64>,
}

/// One more measurement of a point in a later round: its final run again, at the same
/// rate (with `--repeat-search`, at the rate this round's own search found), and its
/// latency run again when it has one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Repeat {
    /// 2 to `config.repeat`.
    pub round: usize,
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub duration_s: f64,
    pub error_ratio: f64,
    /// The rate held again (throughput and errors).
    pub held: bool,
    /// Instance CPU per completed request, µs (`null` for an external deployment).
    #[serde(with = "unknown")]
    pub cpu_per_request_us: f64,
    /// CPU the hypervisor stole from the machine during the window.
    pub steal_s: Option<f64>,
    /// The latency run's p99, µs (absent without a latency run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_us: Option<u64>,
    /// The latency run's p50, µs (absent without a latency run, and in runs made before
    /// it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_us: Option<u64>,
    /// The latency run's p99 within the objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_met: Option<bool>,
    /// This round's own find-max log (`--repeat-search`; absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<SearchStep>,
}

/// The latency run of a searched point: open loop at a fixed share of its capacity, where
/// a queue does not dominate, judged against the p99 objective.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LatencyRun {
    /// The share of the point's capacity offered ([`LatencyRun::SHARE`]).
    pub share: f64,
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub requests: u64,
    pub duration_s: f64,
    pub error_ratio: f64,
    pub latency_us: LatencySummary,
    /// Times the instances' cgroups were throttled during the window (`null` uncapped).
    pub throttled_periods: Option<u64>,
    /// CFS periods in the window, all instances together (`null` uncapped).
    pub periods: Option<u64>,
    /// Instance CPU as a share of the instances' combined cap.
    #[serde(with = "unknown")]
    pub instance_utilization: f64,
    /// Instance CPU per completed request, µs: the service demand measured at about 70 %
    /// load (absent for an external deployment, whose instances are not observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_per_request_us: Option<f64>,
    /// Store CPU per completed request, µs (store-backed systems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_per_request_us: Option<f64>,
    /// p99 within the objective; in a mixed workload, every route class's p99 within its
    /// own objective (`classes`).
    pub slo_met: bool,
    /// HdrHistogram V2 + DEFLATE, base64 (latency in µs).
    pub histogram: String,
    /// Mixed workload: each route's counts and latency in this run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<Route, RouteStats>,
    /// Mixed workload: each route class's p99 against its objective.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassVerdict>,
}

impl LatencyRun {
    /// Latency is measured at this share of capacity.
    pub const SHARE: f64 = 0.7;

    /// The share of CFS periods in which an instance was throttled, when the run counted them.
    pub fn throttled_share(&self) -> Option<f64> {
        Some(self.throttled_periods? as f64 / self.periods.filter(|&n| n > 0)? as f64)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub system: System,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fit {
    pub system: System,
    /// The balancer policy of the fitted line (sticky for session-memory).
    pub lb: Lb,
    pub model: String,
    pub sigma: f64,
    pub kappa: f64,
    pub lambda: f64,
    pub r2: f64,
    /// Where the fitted curve peaks; `null` when κ ≈ 0 (no retrograde region).
    pub peak_instances: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Caps {
    pub capped: bool,
    /// Why not, when uncapped.
    pub reason: Option<String>,
    pub cgroup: Option<String>,
    pub period_us: u64,
    /// CFS burst allowance as a fraction of the quota (0 = none).
    #[serde(default)]
    pub burst_fraction: f64,
    pub instance_cpu: f64,
    pub store_cpu: f64,
}

/// The settings and place that decide what a PostgreSQL write costs, as the run had them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PgFacts {
    /// `server_version`.
    pub version: String,
    pub fsync: bool,
    pub synchronous_commit: bool,
    /// The sessions table is `UNLOGGED` (no WAL).
    pub unlogged: bool,
    /// File system type of the data directory (`stat -f`), e.g. `ext4`, `tmpfs`.
    pub data_filesystem: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema_version: u32,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    pub config: SweepConfig,
    pub caps: Caps,
    pub store: Option<String>,
    /// The private PostgreSQL of the `session-postgres` systems: what a write costs there
    /// (absent when no such system ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PgFacts>,
    pub skipped: Vec<Skipped>,
    pub points: Vec<Point>,
    pub fits: Vec<Fit>,
    /// Run-level problems (an instance died, the run was interrupted).
    pub problems: Vec<String>,
    /// How fast the machine was during the run (absent from runs made before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Mixed runs: each system's CPU per request of each route, measured alone (absent
    /// otherwise, and in runs made before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_demands: Vec<RouteDemand>,
}

impl Results {
    /// Capacity and latency were measured apart (schema 2 on): `held` is throughput and
    /// errors only, and latency comes from each point's [`LatencyRun`].
    pub fn latency_apart(&self) -> bool {
        self.schema_version >= 2
    }
}

/// The sweep's file in a run directory.
pub const FILE: &str = "results.json";

result_file!(Results, FILE);
