//! `authbench load`: the generator alone, against any local URL (like wrk2 or oha).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, Method};
use serde::Serialize;

use crate::{
    drive::{
        client::{Conn, Prepared},
        engine::{self, Mode, Progress, Spec},
        histogram::LatencySummary,
    },
    observe,
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
}

/// `http://HOST:PORT/path` with HOST on this machine; anything else is refused, because
/// a load test here may only target loopback.
pub fn parse_local_url(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let uri: http::Uri = url.parse().with_context(|| format!("--url {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url must start with http:// (TLS is not supported)");
    }
    let host = uri.host().context("--url has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h.parse().with_context(|| format!("--url host {h:?} is not an IP address or localhost"))?,
    };
    if !ip.is_loopback() {
        bail!("--url must point at this machine (127.0.0.0/8, ::1 or localhost); {ip} is not loopback");
    }
    let path = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_owned());
    Ok((SocketAddr::new(ip, port), path))
}

fn header(h: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = h.split_once(':').with_context(|| format!("--header {h:?} is not `Name: value`"))?;
    Ok((name.trim().parse().with_context(|| format!("bad header name in {h:?}"))?, value.trim().parse()?))
}

pub async fn run(config: LoadConfig) -> anyhow::Result<LoadReport> {
    let (addr, path) = parse_local_url(&config.url)?;
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

    let spec = Spec {
        targets: vec![addr],
        connections_per_target: config.connections,
        mode: config.mode,
        warmup: config.warmup,
        duration: config.duration,
        timeout: config.timeout,
    };
    let cpu_before = observe::self_cpu_seconds();
    let outcome = engine::run(&spec, Arc::new(FixedWorkload(req)), Arc::new(Progress::default())).await?;
    let cpu = observe::self_cpu_seconds() - cpu_before;
    Ok(LoadReport {
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
    })
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(
            parse_local_url("http://127.0.0.1:8080/me").unwrap(),
            ("127.0.0.1:8080".parse().unwrap(), "/me".into())
        );
        assert_eq!(parse_local_url("http://localhost:9/").unwrap().0.port(), 9);
        assert!(parse_local_url("http://[::1]:9/x").is_ok());
        assert!(parse_local_url("http://10.0.0.1:80/").is_err());
        assert!(parse_local_url("http://example.com/").is_err());
        assert!(parse_local_url("https://127.0.0.1/").is_err());
        assert!(parse_local_url("not a url").is_err());
    }
}
