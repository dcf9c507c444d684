//! Record: the result files' schemas and how they are written — the contract between the
//! code that measures and the report, which depends on this module and never on the code
//! that runs experiments. `docs/results.md` describes the files field by field.
//!
//! - [`sweep`]: `results.json` — points, search steps, fits, and the typed run
//!   configuration; [`point`] builds a point from a measured window.
//! - [`verdict`]: modes, workloads, verdicts, search steps and flags as types.
//! - [`revocation`], [`chaos`]: `revocation.json`, `chaos.json`.
//!
//! Every point carries its context — caps, generator load, error classes, search steps —
//! because a number without the conditions it was taken under cannot be trusted.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The median of the finite values in `v` (mean of the middle two when even); `None` when
/// there is none. Medians, not means, because one odd point or probe must not move a figure.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// `write` (atomically: temp file + rename, so an interrupted run never leaves half a file)
/// and `read` for a result file's type, by the file's name in a run directory.
macro_rules! result_file {
    ($t:ty, $name:expr) => {
        impl $t {
            /// Write the file into `dir` atomically.
            pub fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
                $crate::record::write_json_atomically(dir, $name, self)
            }

            pub fn read(dir: &std::path::Path) -> anyhow::Result<Self> {
                $crate::record::read_json(dir, $name)
            }
        }
    };
}

pub mod calibration;
pub mod chaos;
pub mod live;
pub mod point;
pub mod revocation;
pub mod route;
mod summary;
pub mod sweep;
pub mod verdict;

pub use live::{LivePoint, MixUsers};
pub use route::{RouteDemand, RouteStats};
pub use summary::summary_table;
pub use sweep::{
    Caps, Cpu, Errors, Fit, LatencyRun, PgFacts, Point, Repeat, Results, RoundFigures, SearchStep, Skipped, StoreRtt,
    StoreStats, SweepConfig,
};
pub use verdict::{Flag, Miss, PointMode, SearchEnd, StepOutcome, Verdict, WorkloadKind};

/// The version of `results.json` (a sweep).
/// 1: a point held when errors ≤ 1 %, achieved ≥ 95 % of offered, p99 within the objective
/// and the instances below 95 % of their CPU cap.
/// 2: capacity and latency apart: a point holds on throughput and errors alone, and a
/// searched point carries a latency run at 70 % of its capacity, judged on p99.
pub const SCHEMA_VERSION: u32 = 2;

/// The version of the experiment files (`revocation.json`, `chaos.json`).
pub const EXPERIMENT_SCHEMA_VERSION: u32 = 1;

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

/// Durations as seconds (f64) in results files.
pub mod secs {
    use serde::Deserialize as _;

    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        std::time::Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// A duration in µs, the unit results record round trips in (`store_rtt_us`, `target_us`).
pub fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A list of durations as seconds.
pub mod secs_list {
    use serde::{Deserialize as _, ser::SerializeSeq as _};

    pub fn serialize<S: serde::Serializer>(v: &[std::time::Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for d in v {
            seq.serialize_element(&d.as_secs_f64())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<std::time::Duration>, D::Error> {
        Vec::<f64>::deserialize(d)?
            .into_iter()
            .map(|s| std::time::Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// An optional duration as seconds (`null` when absent).
pub mod opt_secs {
    use serde::Deserialize as _;

    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|s| std::time::Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The experiments that are not throughput sweeps, by their file's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExperimentKind {
    Revocation,
    Chaos,
}

/// What every experiment file (`revocation.json`, `chaos.json`) starts with; `C` is the
/// experiment's configuration, every flag of the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunHeader<C> {
    pub schema_version: u32,
    /// Which experiment the file holds.
    pub kind: ExperimentKind,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    /// Every flag of the run.
    pub config: C,
    /// Whether instances ran under CPU caps (the experiments run uncapped: they measure
    /// latency and failure behaviour well below capacity).
    pub capped: bool,
}

impl<C> RunHeader<C> {
    pub fn new(kind: ExperimentKind, run_id: &str, config: C) -> Self {
        Self {
            schema_version: EXPERIMENT_SCHEMA_VERSION,
            kind,
            run_id: run_id.into(),
            started_at: now_rfc3339(),
            finished_at: None,
            machine: Machine::detect(),
            config,
            capped: false,
        }
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
