//! `authbench load`'s flags.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::parse::*;
use crate::{drive::engine::Mode, load::LoadConfig};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Target, e.g. http://127.0.0.1:8080/me (loopback only, unless --allow-remote).
    #[arg(long)]
    pub url: String,

    /// Let --url name another machine: a generator pod measuring its own cluster's
    /// Service. Off by default: load goes to this machine only.
    #[arg(long)]
    pub allow_remote: bool,

    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,

    #[arg(long, default_value = "GET")]
    pub method: http::Method,

    /// Request body.
    #[arg(long)]
    pub body: Option<String>,

    /// Open loop at this many requests per second.
    #[arg(long, value_parser = positive, conflicts_with = "connections")]
    pub rate: Option<f64>,

    /// Closed loop with this many connections.
    #[arg(long, short = 'c')]
    pub connections: Option<usize>,

    /// Connections used in open-loop mode.
    #[arg(long, default_value_t = 32)]
    pub open_connections: usize,

    #[arg(long, default_value = "10s", value_parser = duration)]
    pub duration: Duration,

    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    #[arg(long, default_value = "2s", value_parser = duration)]
    pub timeout: Duration,

    /// Connect, then wait until this wall-clock time (RFC 3339 in UTC, e.g.
    /// 2026-12-06T21:00:00Z) to begin the warm-up: generators on several machines given
    /// the same time measure the same window (their clocks must agree, e.g. by NTP).
    #[arg(long, value_parser = start_time)]
    pub start_at: Option<std::time::SystemTime>,

    /// With --start-at: a start time already further in the past than this when the load
    /// is ready is refused (exit 2, nothing written); a smaller lateness is recorded.
    #[arg(long, default_value = "1s", value_parser = duration_or_zero, requires = "start_at")]
    pub max_late: Duration,

    /// Write the measured window as an HdrHistogram interval log (V2 + DEFLATE, one
    /// histogram per second, µs) for `authbench merge`.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,

    /// This generator's name in the --hlog file (default: host name and process id).
    #[arg(long)]
    pub generator: Option<String>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--start-at`: RFC 3339, `Z` or no zone (UTC); fractional seconds allowed.
fn start_time(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time in UTC ({e}); e.g. 2026-12-06T21:00:00Z"))
}

impl LoadArgs {
    pub fn into_config(self) -> anyhow::Result<LoadConfig> {
        let mode = match (self.rate, self.connections) {
            (Some(rate), None) => Mode::Open { rate },
            (None, Some(c)) if c > 0 => Mode::Closed { connections: c },
            (None, Some(_)) => anyhow::bail!("--connections must be at least 1"),
            (None, None) => Mode::Closed { connections: 16 },
            (Some(_), Some(_)) => anyhow::bail!("give --rate or --connections, not both"),
        };
        Ok(LoadConfig {
            url: self.url,
            method: self.method,
            headers: self.headers,
            body: self.body,
            mode,
            connections: self.open_connections.max(1),
            duration: self.duration,
            warmup: self.warmup,
            timeout: self.timeout,
            start_at: self.start_at,
            max_late: self.max_late,
            hlog: self.hlog,
            generator: self.generator.unwrap_or_else(crate::load::default_generator),
            allow_remote: self.allow_remote,
        })
    }
}
