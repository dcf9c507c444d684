//! `authbench load`: the generator alone, against any local URL (like wrk2 or oha).
//!
//! With `--start-at` and `--hlog` it is one generator of a distributed run: G of them on G
//! machines start their windows at the same wall-clock instant and each writes its window
//! as an HdrHistogram interval log, which `authbench merge` ([`crate::merge`]) adds up.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, Method};
use serde::Serialize;

use crate::{
    drive::{
        client::{Conn, Prepared},
        engine::{self, Mode, Options, Progress, Spec, StartAt},
        histogram::LatencySummary,
    },
    merge, observe,
    workload::FixedWorkload,
};

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub url: String,
    pub method: Method,
    pub headers: Vec<String>,
    pub body: Option<String>,
    pub mode: Mode,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    /// Begin the warm-up at this wall-clock instant (after connecting).
    pub start_at: Option<SystemTime>,
    /// Refuse to begin when `start_at` had passed by more than this.
    pub max_late: Duration,
    /// Write the window as an HdrHistogram interval log here.
    pub hlog: Option<PathBuf>,
    /// This generator's name in the log (`--generator`).
    pub generator: String,
    /// `--url` may name another machine (`--allow-remote`).
    pub allow_remote: bool,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub url: String,
    pub mode: String,
    pub offered_rps: Option<f64>,
    pub achieved_rps: f64,
    pub requests: u64,
    pub duration_s: f64,
    pub by_status: std::collections::BTreeMap<String, u64>,
    pub timeouts: u64,
    pub connect: u64,
    pub io: u64,
    pub unsent: u64,
    pub error_ratio: f64,
    pub latency_us: LatencySummary,
    pub generator_cpu_s: f64,
    /// Open loop: the scheduler's own lateness (part of every latency above).
    pub scheduler_lag_us: Option<LatencySummary>,
    pub histogram: String,
    /// `--start-at`, RFC 3339 (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How long after `--start-at` the run began: 0 when on time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_late_ms: Option<f64>,
    /// The interval log written (`--hlog`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hlog: Option<String>,
}

/// The `#authbench` comments of this run's interval log.
fn meta(r: &LoadReport, generator: &str) -> merge::Meta {
    let count = |range: std::ops::Range<u16>| -> u64 {
        r.by_status.iter().filter(|(s, _)| s.parse().is_ok_and(|s: u16| range.contains(&s))).map(|(_, n)| n).sum()
    };
    let (http_4xx, http_5xx) = (count(400..500), count(500..600));
    let failed = count(400..1000) + r.timeouts + r.connect + r.io + r.unsent;
    merge::Meta {
        generator: generator.to_owned(),
        unit: merge::UNIT.into(),
        url: r.url.clone(),
        offered_rps: r.offered_rps,
        achieved_rps: r.achieved_rps,
        duration_s: r.duration_s,
        requests: r.requests,
        answered: r.by_status.values().sum(),
        errors: merge::ErrorCounts {
            total: failed,
            timeouts: r.timeouts,
            connect: r.connect,
            io: r.io,
            unsent: r.unsent,
            http_4xx,
            http_5xx,
        },
        start_at: r.start_at.clone(),
        late_ms: r.start_late_ms,
        lag_p50_us: r.scheduler_lag_us.map(|l| l.p50),
        lag_p99_us: r.scheduler_lag_us.map(|l| l.p99),
        lag_max_us: r.scheduler_lag_us.map(|l| l.max),
    }
}

/// The name a generator goes by when `--generator` is not given: host name and process
/// id, so that several generators on one machine are told apart too.
pub fn default_generator() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "generator".into());
    format!("{host}-{}", std::process::id())
}

/// `http://HOST:PORT/path` with HOST on this machine; anything else is refused, because
/// a load test here may only target loopback — unless `allow_remote` (`--allow-remote`,
/// for a generator pod measuring its own cluster), which also resolves names.
pub fn parse_local_url(url: &str, allow_remote: bool) -> anyhow::Result<(SocketAddr, String)> {
    let uri: http::Uri = url.parse().with_context(|| format!("--url {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url must start with http:// (TLS is not supported)");
    }
    let host = uri.host().context("--url has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let path = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_owned());
    if allow_remote {
        use std::net::ToSocketAddrs as _;
        let addr = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("--url {url}: cannot resolve {host}"))?
            .next()
            .with_context(|| format!("--url {url}: {host} has no address"))?;
        return Ok((addr, path));
    }
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h.parse().with_context(|| {
            format!("--url host {h:?} is not an IP address or localhost (--allow-remote for your own cluster)")
        })?,
    };
    if !ip.is_loopback() {
        bail!(
            "--url must point at this machine (127.0.0.0/8, ::1 or localhost) unless --allow-remote is given; {ip} is \
             not loopback"
        );
    }
    Ok((SocketAddr::new(ip, port), path))
}

fn header(h: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = h.split_once(':').with_context(|| format!("--header {h:?} is not `Name: value`"))?;
    Ok((name.trim().parse().with_context(|| format!("bad header name in {h:?}"))?, value.trim().parse()?))
}

pub async fn run(config: LoadConfig) -> anyhow::Result<LoadReport> {
    let (addr, path) = parse_local_url(&config.url, config.allow_remote)?;
    let mut req =
        Prepared { method: config.method.clone(), uri: path.parse()?, headers: Vec::new(), body: Default::default() };
    for h in &config.headers {
        let (n, v) = header(h)?;
        req = req.with_header(n, v);
    }
    if let Some(body) = &config.body {
        req.body = bytes::Bytes::from(body.clone());
    }
    // Fail fast and clearly when nothing listens there.
    Conn::connect(addr, Duration::from_secs(3))
        .await
        .with_context(|| format!("cannot connect to {addr} (is the server running?)"))?;

    if let Some(path) = &config.hlog {
        // Refuse a file that cannot be written before measuring, not after.
        let tmp = merge::tmp_path(path);
        std::fs::write(&tmp, b"").with_context(|| format!("--hlog: cannot write {}", tmp.display()))?;
        let _ = std::fs::remove_file(&tmp);
    }
    let spec = Spec {
        targets: vec![addr],
        connections_per_target: config.connections,
        mode: config.mode,
        warmup: config.warmup,
        duration: config.duration,
        timeout: config.timeout,
    };
    let cpu_before = observe::self_cpu_seconds();
    let options = Options {
        start_at: config.start_at.map(|at| StartAt { at, max_late: config.max_late }),
        per_second: config.hlog.is_some(),
    };
    let outcome = engine::run_with(&spec, Arc::new(FixedWorkload(req)), Arc::new(Progress::default()), options).await?;
    let cpu = observe::self_cpu_seconds() - cpu_before;
    let mut report = LoadReport {
        url: config.url,
        mode: match config.mode {
            Mode::Open { .. } => "open-loop".into(),
            Mode::Closed { .. } => "closed-loop".into(),
        },
        offered_rps: outcome.offered_rps,
        achieved_rps: outcome.achieved_rps,
        requests: outcome.requests,
        duration_s: config.duration.as_secs_f64(),
        by_status: outcome.by_status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        timeouts: outcome.timeouts,
        connect: outcome.connect,
        io: outcome.io,
        unsent: outcome.unsent,
        error_ratio: outcome.error_ratio(),
        latency_us: outcome.latency.summary(),
        generator_cpu_s: cpu,
        scheduler_lag_us: outcome.scheduler_lag,
        histogram: outcome.latency.to_base64(),
        start_at: config.start_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        start_late_ms: outcome.start_late.map(|d| (d.as_secs_f64() * 1e4).round() / 10.0),
        hlog: None,
    };
    if let Some(path) = &config.hlog {
        let meta = meta(&report, &config.generator);
        let log = merge::GeneratorLog {
            meta: &meta,
            window_start: outcome.window_start.unwrap_or_else(SystemTime::now),
            window: config.duration,
            seconds: &outcome.per_second,
        };
        merge::write_file(path, &log).with_context(|| format!("--hlog {}", path.display()))?;
        report.hlog = Some(path.display().to_string());
    }
    Ok(report)
}

pub fn text(r: &LoadReport) -> String {
    let l = &r.latency_us;
    let mut out = format!(
        "{} {} for {:.1}s\n  offered   {}\n  achieved  {:.1} req/s ({} requests)\n",
        r.mode,
        r.url,
        r.duration_s,
        r.offered_rps.map_or("-".into(), |o| format!("{o:.1} req/s")),
        r.achieved_rps,
        r.requests
    );
    out += &format!(
        "  latency   p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  mean {:.3} ms\n",
        l.p50 as f64 / 1e3,
        l.p90 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.p999 as f64 / 1e3,
        l.max as f64 / 1e3,
        l.mean / 1e3
    );
    let statuses: Vec<String> = r.by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    out += &format!(
        "  statuses  {}\n  errors    timeouts {}  connect {}  io {}  unsent {}  ({:.2}%)\n  generator {:.2} CPU-s\n",
        statuses.join("  "),
        r.timeouts,
        r.connect,
        r.io,
        r.unsent,
        r.error_ratio * 100.0,
        r.generator_cpu_s
    );
    if let Some(lag) = &r.scheduler_lag_us {
        out += &format!("  scheduler lag p50 {} µs  p99 {} µs  max {} µs\n", lag.p50, lag.p99, lag.max);
    }
    if let (Some(at), Some(late)) = (&r.start_at, r.start_late_ms) {
        out += &format!("  start     --start-at {at}, began {late:.1} ms after it\n");
    }
    if let Some(hlog) = &r.hlog {
        out += &format!("  hlog      {hlog}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(
            parse_local_url("http://127.0.0.1:8080/me", false).unwrap(),
            ("127.0.0.1:8080".parse().unwrap(), "/me".into())
        );
        assert_eq!(parse_local_url("http://localhost:9/", false).unwrap().0.port(), 9);
        assert!(parse_local_url("http://[::1]:9/x", false).is_ok());
        assert!(parse_local_url("http://10.0.0.1:80/", false).is_err());
        assert_eq!(parse_local_url("http://10.0.0.1:80/x", true).unwrap().1, "/x");
        assert!(parse_local_url("http://example.com/", false).is_err());
        assert!(parse_local_url("https://127.0.0.1/", false).is_err());
        assert!(parse_local_url("not a url", false).is_err());
    }
}
