//! Value parsers of the command line's flags: each returns the one-line message clap
//! prints (exit 2, nothing started).

use std::time::Duration;

pub(super) fn duration(s: &str) -> Result<Duration, String> {
    auth_core::config::parse_duration(s)
}

pub(super) fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err("must be greater than zero".into());
    }
    Ok(v)
}

pub(super) fn burst_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err("must be between 0 and 1".into());
    }
    Ok(v)
}

/// A duration that may be zero (`0`, `0s`); negative or malformed ones are refused.
pub(super) fn duration_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!("{s:?} is negative: this duration is 0 or more"));
    }
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

pub(super) fn instance_count(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("{s:?} is not a whole number"))?;
    if !(1..=64).contains(&n) {
        return Err("instance counts must be between 1 and 64".into());
    }
    Ok(n)
}

pub(super) fn cores_or_zero(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err("must be 0 (uncapped) or a positive number of cores".into());
    }
    Ok(v)
}

/// `--live-sessions`: 1 to 2 million (1 million is what a committed run has shown to fit:
/// an instance loads its share before its ready line, within 30 s).
pub(super) fn live_count(s: &str) -> Result<u64, String> {
    let n: u64 = s.trim().replace('_', "").parse().map_err(|_| format!("{s:?} is not a number of sessions"))?;
    if !(1..=2_000_000).contains(&n) {
        return Err(format!("live sessions go from 1 to 2000000 (got {n})"));
    }
    Ok(n)
}

/// `--store-shards`: 1 to 16 primaries.
pub(super) fn shard_count(s: &str) -> Result<u16, String> {
    let n: u16 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of shards"))?;
    if !(1..=16).contains(&n) {
        return Err(format!("a Redis Cluster here has 1 to 16 shards (got {n})"));
    }
    Ok(n)
}
