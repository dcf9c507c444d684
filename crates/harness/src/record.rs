//! Record: `results.json` (DESIGN.md §6) and the terminal summary.
//!
//! Every point carries its context — caps, generator load, error classes, search steps —
//! because a number without the conditions it was taken under cannot be trusted.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::{
    drive::histogram::LatencySummary,
    plan::{Lb, System},
};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
}

impl Machine {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        }
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
}

/// A figure that may not have been measured: NaN in memory, `null` in JSON.
///
/// NaN rather than `Option<f64>` keeps the report's arithmetic compiling unchanged, and
/// its medians already drop non-finite values; the JSON is the same either way, so the
/// field can become an `Option` later without touching any results file.
pub mod unknown {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreStats {
    pub ops_per_sec: f64,
    pub commands_per_request: f64,
    pub used_memory_bytes: u64,
    /// Store memory per live session or refresh token (growth over the login phase).
    pub bytes_per_session: Option<f64>,
    pub keys: u64,
}

/// One try of the find-max search.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SearchStep {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub p99_us: u64,
    pub error_ratio: f64,
    pub held: bool,
    pub why: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub system: System,
    pub instances: usize,
    pub lb: Lb,
    pub workload: String,
    /// `find-max`, `fixed-rate` or `closed-loop`.
    pub mode: String,
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
    /// Did this point meet the SLO, throughput and error criteria?
    pub held: bool,
    /// Resources that limited the point, e.g. `generator`.
    pub flags: Vec<String>,
    pub search: Vec<SearchStep>,
    /// Times the instances' cgroups were throttled during the window.
    pub throttled_periods: Option<u64>,
    /// HdrHistogram V2 + DEFLATE, base64 (latency in µs).
    pub histogram: String,
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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema_version: u32,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    pub config: serde_json::Value,
    pub caps: Caps,
    pub store: Option<String>,
    pub skipped: Vec<Skipped>,
    pub points: Vec<Point>,
    pub fits: Vec<Fit>,
    /// Run-level problems (an instance died, the run was interrupted).
    pub problems: Vec<String>,
}

impl Results {
    /// Write `results.json` atomically (temp file + rename), so an interrupted run never
    /// leaves a half-written file.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        write_json_atomically(dir, "results.json", self)
    }

    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        read_json(dir, "results.json")
    }
}

/// Durations as seconds (f64) in results files.
pub mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// What every experiment file (`revocation.json`, `chaos.json`) starts with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunHeader {
    pub schema_version: u32,
    /// Which experiment: `revocation`, `chaos`.
    pub kind: String,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    /// Every flag of the run.
    pub config: serde_json::Value,
    /// Whether instances ran under CPU caps (the experiments run uncapped: they measure
    /// latency and failure behaviour well below capacity).
    pub capped: bool,
}

impl RunHeader {
    pub fn new(kind: &str, run_id: &str, config: &impl Serialize) -> anyhow::Result<Self> {
        Ok(Self {
            schema_version: SCHEMA_VERSION,
            kind: kind.into(),
            run_id: run_id.into(),
            started_at: now_rfc3339(),
            finished_at: None,
            machine: Machine::detect(),
            config: serde_json::to_value(config)?,
            capped: false,
        })
    }
}

/// Write `dir/name` as pretty JSON through a temporary file and a rename, so a reader (or
/// a crash) never sees half a file.
pub fn write_json_atomically<T: Serialize>(dir: &Path, name: &str, value: &T) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!("{name}.tmp"));
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("cannot move {name} into place"))?;
    Ok(())
}

pub fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> anyhow::Result<T> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not an authbench {name} file", path.display()))
}

/// The end-of-run table.
pub fn summary_table(results: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<25} {:>3} {:<11} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6}  {}\n",
        "system", "N", "lb", "offered", "achieved", "p50ms", "p99ms", "err%", "cpu/req", "store", "held", "flags"
    ));
    for p in &results.points {
        out.push_str(&format!(
            "{:<25} {:>3} {:<11} {:>9} {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>8} {:>7} {:>6}  {}\n",
            p.system.id(),
            p.instances,
            p.lb.id(),
            p.offered_rps.map_or("closed".into(), |r| format!("{r:.0}")),
            p.achieved_rps,
            p.latency_us.p50 as f64 / 1000.0,
            p.latency_us.p99 as f64 / 1000.0,
            p.error_ratio * 100.0,
            if p.cpu.per_request_us.is_finite() { format!("{:.0}µ", p.cpu.per_request_us) } else { "-".into() },
            p.store.as_ref().map_or("-".into(), |s| format!("{:.0}/s", s.ops_per_sec)),
            if p.held { "yes" } else { "no" },
            p.flags.join(","),
        ));
    }
    for s in &results.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.system, s.reason));
    }
    for p in &results.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}
