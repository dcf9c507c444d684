//! `revocation.json`: how long a logged-out credential kept working, per system.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::RunHeader;
use crate::plan::System;

/// Everything `authbench revocation` needs, after flag parsing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RevocationConfig {
    pub systems: Vec<System>,
    pub instances: usize,
    pub repeats: usize,
    pub redis_url: Option<String>,
    pub out: PathBuf,
    /// `--access-ttl` of the JWT servers: bounds the `none` window.
    #[serde(with = "super::secs")]
    pub access_ttl: Duration,
    /// Longest probe per repeat.
    #[serde(with = "super::secs")]
    pub deadline: Duration,
    pub demo_password: String,
    pub bin_dir: Option<PathBuf>,
}

/// p50/p99/max/mean of the revoked repeats' windows, in ms (`null` when none was revoked).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowSummary {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl WindowSummary {
    /// Nearest-rank percentiles.
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Self {
            p50: Some(rank(0.50)),
            p99: Some(rank(0.99)),
            max: v.last().copied(),
            mean: Some(v.iter().sum::<f64>() / v.len() as f64),
        }
    }
}

/// One system's windows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SystemWindows {
    pub system: System,
    pub instances: usize,
    pub repeats: usize,
    pub window_ms: WindowSummary,
    /// Window of every revoked repeat, in run order.
    pub samples_ms: Vec<f64>,
    /// Per repeat, per instance: ms from the logout response to that instance's first
    /// 401 (`null`: still accepted at the deadline).
    pub per_instance_ms: Vec<Vec<Option<f64>>>,
    /// Repeats in which some instance still accepted the credential at the deadline.
    pub not_revoked: usize,
    /// `/me` probes sent after the logouts, all repeats together.
    pub probes: u64,
    pub notes: String,
}

pub use super::Skipped;

/// `revocation.json`: a revocation run (beside a sweep's results.json when `--out` names
/// the sweep's directory, which puts it into that run's report).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RevocationResults {
    /// Schema, kind, run id, times, machine, config; `capped` is always false.
    #[serde(flatten)]
    pub run: RunHeader<RevocationConfig>,
    pub store: Option<String>,
    pub skipped: Vec<Skipped>,
    pub systems: Vec<SystemWindows>,
}

pub const FILE: &str = "revocation.json";

result_file!(RevocationResults, FILE);
