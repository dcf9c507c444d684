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
    /// Not a fault: a share of the users log in at once (`--storm-share`).
    LoginStorm,
}

impl Experiment {
    pub const ALL: [Experiment; 4] =
        [Experiment::StoreFreeze, Experiment::StoreRestart, Experiment::InstanceLoss, Experiment::LoginStorm];

    pub fn id(self) -> &'static str {
        match self {
            Experiment::StoreFreeze => "store-freeze",
            Experiment::StoreRestart => "store-restart",
            Experiment::InstanceLoss => "instance-loss",
            Experiment::LoginStorm => "login-storm",
        }
    }

    /// What the fault is, in words, for results and the report.
    pub fn describe(self) -> &'static str {
        match self {
            Experiment::StoreFreeze => "Redis stopped (SIGSTOP) and resumed: hung or unreachable, data kept",
            Experiment::StoreRestart => "Redis killed (SIGKILL) and restarted empty on the same port (no persistence)",
            Experiment::InstanceLoss => "one instance killed (SIGKILL); the balancer moves its users to the others",
            Experiment::LoginStorm => {
                "a share of the users send a login at the same moment, as after a lost session store or at the start of a \
                 working day; nothing breaks"
            }
        }
    }

    /// Whether the experiment breaks the store (so every system runs with one of its own).
    pub fn breaks_store(self) -> bool {
        matches!(self, Experiment::StoreFreeze | Experiment::StoreRestart)
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
    /// Login storm: the share of the users who log in at once.
    #[serde(default = "default_storm_share")]
    pub storm_share: f64,
    /// Login storm: each instance's argon2id pool size (`--hash-concurrency`), one run per
    /// value; empty: the servers' default (one per core).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hash_concurrency: Vec<usize>,
    /// `--haproxy`: every run had a real HAProxy in front of the instances (absent: the
    /// generator balanced, and in runs made before it existed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub haproxy: bool,
}

fn default_storm_share() -> f64 {
    0.5
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
    /// p99 of the answers to `/me` in this second, µs from their intended send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me_p99_us: Option<u64>,
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
    /// Login storm: what the logins cost the other users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<Storm>,
}

/// A login storm's figures: how long the logins took to drain and what `/me` answered
/// before, during and after them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Storm {
    /// Each instance's argon2id pool (`--hash-concurrency`); `None`: the server default.
    pub hash_concurrency: Option<usize>,
    /// Users who sent their login at the storm's start, all at once.
    pub users: u64,
    /// Logins not answered 200 (refused, failed or timed out after 60 s).
    pub failed: u64,
    /// From the storm's start to the last login answered; `None` when any failed.
    pub drain_ms: Option<f64>,
    /// The answered logins, µs from the storm's start.
    pub login_us: LatencySummary,
    /// `/me` p99 in the whole seconds before the storm (after the warm-up), during it (from
    /// its start to the second the last login was answered in) and after it.
    pub me_p99_before_us: Option<u64>,
    pub me_p99_during_us: Option<u64>,
    pub me_p99_after_us: Option<u64>,
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
