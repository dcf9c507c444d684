//! `chaos.json`: what each system did when a part failed under steady load.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::RunHeader;
use crate::{
    drive::histogram::LatencySummary,
    plan::{Lb, System},
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChaosConfig {
    pub systems: Vec<System>,
    pub experiments: Vec<Experiment>,
    pub instances: usize,
    /// Offered load, requests per second, all instances together.
    pub rate: f64,
    pub users: usize,
    #[serde(with = "super::secs")]
    pub warmup: Duration,
    /// Length of each run after the warm-up.
    #[serde(with = "super::secs")]
    pub duration: Duration,
    /// When the fault starts, from the start of the run (warm-up included).
    #[serde(with = "super::secs")]
    pub fault_at: Duration,
    /// How long the store stays down (store experiments).
    #[serde(with = "super::secs")]
    pub outage: Duration,
    /// Per-request client timeout.
    #[serde(with = "super::secs")]
    pub timeout: Duration,
    pub connections_per_instance: usize,
    pub out: PathBuf,
    pub demo_password: String,
    pub bin_dir: Option<PathBuf>,
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
    pub run: RunHeader<ChaosConfig>,
    pub skipped: Vec<Skipped>,
    pub runs: Vec<ChaosRun>,
}

pub const FILE: &str = "chaos.json";

result_file!(ChaosResults, FILE);
