//! Prometheus metrics with no locks and no allocation on the request path.
//!
//! Routes and store operations are known when the server starts, so every counter is a
//! pre-allocated atomic found by a short scan; `/metrics` renders them as text.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 16] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // Non-cumulative here; cumulated when rendered.
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// A call to the session store or the refresh-token store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Get,
    Put,
    Delete,
    Rotate,
    Revoke,
}

impl StoreOp {
    const ALL: [StoreOp; 5] = [StoreOp::Get, StoreOp::Put, StoreOp::Delete, StoreOp::Rotate, StoreOp::Revoke];

    fn as_str(self) -> &'static str {
        match self {
            StoreOp::Get => "get",
            StoreOp::Put => "put",
            StoreOp::Delete => "delete",
            StoreOp::Rotate => "rotate",
            StoreOp::Revoke => "revoke",
        }
    }
}

const FIRST_STATUS: usize = 100;
const STATUS_SLOTS: usize = 500; // 100..=599

#[derive(Debug)]
struct RouteMetrics {
    route: &'static str,
    by_status: Box<[AtomicU64]>,
    latency: Histogram,
}

/// Time a store spends deleting expired entries in the background (the in-memory map's
/// sweep, PostgreSQL's `DELETE`), shared between the store's purge task and `/metrics`.
#[derive(Debug, Default)]
pub struct PurgeStats {
    nanos: AtomicU64,
    runs: AtomicU64,
}

impl PurgeStats {
    pub fn observe(&self, elapsed: Duration) {
        self.nanos.fetch_add(elapsed.as_nanos().min(u128::from(u64::MAX)) as u64, Relaxed);
        self.runs.fetch_add(1, Relaxed);
    }

    /// Runs so far and their total time.
    pub fn read(&self) -> (u64, Duration) {
        (self.runs.load(Relaxed), Duration::from_nanos(self.nanos.load(Relaxed)))
    }
}

/// All metrics of one server instance.
#[derive(Debug)]
pub struct Metrics {
    instance: String,
    system: &'static str,
    /// The last entry is `other`: unmatched paths, so a scanner cannot create series.
    routes: Box<[RouteMetrics]>,
    store: [Histogram; StoreOp::ALL.len()],
    store_errors: [AtomicU64; StoreOp::ALL.len()],
    /// Purges of expired sessions or refresh tokens, when the store runs its own.
    pub purge: std::sync::Arc<PurgeStats>,
}

impl Metrics {
    pub fn new(system: &'static str, instance: &str, routes: &[&'static str]) -> Self {
        let routes = routes
            .iter()
            .copied()
            .chain(std::iter::once("other"))
            .map(|route| RouteMetrics {
                route,
                by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
                latency: Histogram::default(),
            })
            .collect();
        Self {
            instance: instance.to_owned(),
            system,
            routes,
            store: Default::default(),
            store_errors: Default::default(),
            purge: Default::default(),
        }
    }

    pub fn observe_request(&self, route: Option<&str>, status: u16, elapsed: Duration) {
        self.observe_route(self.route_index(route), status, elapsed);
    }

    /// Where `route` (a matched path; `None` for none) is counted: its own slot, or
    /// `other`. Stable for the life of `self`, so a caller may look it up before the
    /// request runs and pass it to [`Metrics::observe_route`] after.
    pub fn route_index(&self, route: Option<&str>) -> usize {
        let last = self.routes.len() - 1;
        route.and_then(|r| self.routes[..last].iter().position(|m| m.route == r)).unwrap_or(last)
    }

    /// [`Metrics::observe_request`] with the route already looked up by
    /// [`Metrics::route_index`]; an index out of range counts as `other`.
    pub fn observe_route(&self, route: usize, status: u16, elapsed: Duration) {
        let m = self.routes.get(route).unwrap_or(&self.routes[self.routes.len() - 1]);
        if let Some(slot) = (status as usize).checked_sub(FIRST_STATUS).and_then(|i| m.by_status.get(i)) {
            slot.fetch_add(1, Relaxed);
        }
        m.latency.observe(elapsed);
    }

    pub fn observe_store(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        let i = op as usize;
        self.store[i].observe(elapsed);
        if !ok {
            self.store_errors[i].fetch_add(1, Relaxed);
        }
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let inst = &self.instance;
        let _ = writeln!(out, "# HELP authbench_info Which system and instance this is.");
        let _ = writeln!(out, "# TYPE authbench_info gauge");
        let _ = writeln!(out, "authbench_info{{system=\"{}\",instance=\"{}\"}} 1", self.system, escape(inst));

        let _ = writeln!(out, "# HELP authbench_http_requests_total HTTP requests by route and status.");
        let _ = writeln!(out, "# TYPE authbench_http_requests_total counter");
        for m in self.routes.iter() {
            for (i, c) in m.by_status.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    let status = i + FIRST_STATUS;
                    let _ =
                        writeln!(out, "authbench_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", m.route);
                }
            }
        }

        let _ =
            writeln!(out, "# HELP authbench_http_request_duration_seconds Time from request head to response head.");
        let _ = writeln!(out, "# TYPE authbench_http_request_duration_seconds histogram");
        for m in self.routes.iter() {
            m.latency.render(&mut out, "authbench_http_request_duration_seconds", &format!("route=\"{}\"", m.route));
        }

        let _ = writeln!(
            out,
            "# HELP authbench_store_call_duration_seconds Latency of calls to the session or refresh-token store."
        );
        let _ = writeln!(out, "# TYPE authbench_store_call_duration_seconds histogram");
        for op in StoreOp::ALL {
            self.store[op as usize].render(
                &mut out,
                "authbench_store_call_duration_seconds",
                &format!("op=\"{}\"", op.as_str()),
            );
        }
        let _ = writeln!(out, "# HELP authbench_store_errors_total Store calls that failed or timed out.");
        let _ = writeln!(out, "# TYPE authbench_store_errors_total counter");
        for op in StoreOp::ALL {
            let n = self.store_errors[op as usize].load(Relaxed);
            let _ = writeln!(out, "authbench_store_errors_total{{op=\"{}\"}} {n}", op.as_str());
        }
        let (runs, took) = self.purge.read();
        let _ = writeln!(out, "# HELP authbench_purges_total Background purges of expired state this instance ran.");
        let _ = writeln!(out, "# TYPE authbench_purges_total counter");
        let _ = writeln!(out, "authbench_purges_total {runs}");
        let _ = writeln!(out, "# HELP authbench_purge_seconds_total Time those purges took.");
        let _ = writeln!(out, "# TYPE authbench_purge_seconds_total counter");
        let _ = writeln!(out, "authbench_purge_seconds_total {}", took.as_secs_f64());
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status_and_buckets_cumulate() {
        let m = Metrics::new("test", "a", &["/me"]);
        m.observe_request(Some("/me"), 200, Duration::from_micros(40));
        m.observe_request(Some("/me"), 200, Duration::from_micros(400));
        m.observe_request(Some("/me"), 401, Duration::from_micros(40));
        m.observe_request(Some("/nope"), 404, Duration::from_micros(40));
        m.observe_store(StoreOp::Get, Duration::from_micros(300), false);
        let text = m.render();
        assert!(text.contains("authbench_http_requests_total{route=\"/me\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("authbench_http_requests_total{route=\"/me\",status=\"401\"} 1\n"));
        assert!(text.contains("authbench_http_requests_total{route=\"other\",status=\"404\"} 1\n"));
        assert!(text.contains("authbench_http_request_duration_seconds_bucket{route=\"/me\",le=\"0.00005\"} 2\n"));
        assert!(text.contains("authbench_http_request_duration_seconds_bucket{route=\"/me\",le=\"0.0005\"} 3\n"));
        assert!(text.contains("authbench_http_request_duration_seconds_count{route=\"/me\"} 3\n"));
        assert!(text.contains("authbench_store_errors_total{op=\"get\"} 1\n"));
        assert!(text.contains("authbench_store_call_duration_seconds_count{op=\"get\"} 1\n"));
        assert!(text.contains("authbench_purges_total 0\n"), "{text}");
        m.purge.observe(Duration::from_millis(3));
        m.purge.observe(Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("authbench_purges_total 2\nauthbench_purge_seconds_total 0.004\n")
                || text.contains("authbench_purge_seconds_total 0.004\n"),
            "{text}"
        );
    }
}
