//! Summary: the per-request figures of a run and the verdict its exit status follows.
//!
//! The verdict comes from our own [`Tally`], counted as each response is checked, not
//! from goose's metrics alone: goose can reset its metrics once all users have started,
//! and a failure made while they were starting must still fail the run. Goose's metrics
//! supply the figures (and failed `--threshold` rules).

use std::{
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use goose::metrics::GooseMetrics;

/// Failure messages kept for the summary.
const EXAMPLES: usize = 8;

/// Requests sent and failed, counted as they happen.
#[derive(Debug, Default)]
pub struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
    /// The first few failures, in words. A std mutex: held for a push, never across an
    /// `.await`.
    examples: Mutex<Vec<String>>,
}

impl Tally {
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, request: &str, why: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if examples.len() < EXAMPLES {
            examples.push(format!("{request}: {why}"));
        }
    }

    pub fn requests(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn examples(&self) -> Vec<String> {
        self.examples.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One request name's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub method: String,
    pub name: String,
    pub requests: usize,
    pub failed: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Per request name, in journey order as far as names tell (then by name).
pub fn rows(metrics: &GooseMetrics) -> Vec<Row> {
    let mut rows: Vec<Row> = metrics
        .requests
        .values()
        .map(|r| Row {
            method: r.method.to_string(),
            name: r.path.clone(),
            requests: r.success_count + r.fail_count,
            failed: r.fail_count,
            p50_ms: r.raw_data.percentile_us(0.50) as f64 / 1e3,
            p99_ms: r.raw_data.percentile_us(0.99) as f64 / 1e3,
        })
        .collect();
    rows.sort_by(|a, b| (order(&a.name), &a.name, &a.method).cmp(&(order(&b.name), &b.name, &b.method)));
    rows
}

fn order(name: &str) -> usize {
    const JOURNEY: [&str; 9] = [
        "/login",
        "/me",
        "/admin (admin)",
        "/admin (user)",
        "/refresh",
        "/me (after refresh)",
        "/logout",
        "/me (after logout)",
        "/refresh (after logout)",
    ];
    JOURNEY.iter().position(|n| *n == name).unwrap_or(JOURNEY.len())
}

/// The table printed after goose's own.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<6} {:<24} {:>9} {:>7} {:>9} {:>9}\n",
        "method", "request", "requests", "failed", "p50 ms", "p99 ms"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<6} {:<24} {:>9} {:>7} {:>9.2} {:>9.2}",
            r.method, r.name, r.requests, r.failed, r.p50_ms, r.p99_ms
        );
    }
    let (n, f) = rows.iter().fold((0, 0), |(n, f), r| (n + r.requests, f + r.failed));
    let _ = writeln!(out, "{:<6} {:<24} {:>9} {:>7}", "", "all", n, f);
    out
}

/// Why a run failed; empty when it passed.
pub fn problems(tally: &Tally, metrics: Option<&GooseMetrics>) -> Vec<String> {
    let mut out = Vec::new();
    if tally.requests() == 0 {
        out.push("no requests were made (is the run time too short?)".to_owned());
    }
    if tally.failures() > 0 {
        out.push(format!("{} of {} requests failed", tally.failures(), tally.requests()));
        out.extend(tally.examples().into_iter().map(|e| format!("  {e}")));
    }
    if let Some(m) = metrics {
        let goose_failed: usize = m.requests.values().map(|r| r.fail_count).sum();
        if goose_failed > 0 && tally.failures() == 0 {
            out.push(format!("goose counted {goose_failed} failed requests"));
        }
        for t in m.thresholds.iter().filter(|t| !t.passed) {
            out.push(format!("threshold {} failed (observed {})", t.rule, t.observed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_requests_or_with_failures_fails() {
        let t = Tally::default();
        assert_eq!(problems(&t, None), vec!["no requests were made (is the run time too short?)".to_owned()]);
        t.sent();
        t.sent();
        assert!(problems(&t, None).is_empty());
        t.failed("/me", "expected 200 OK, got 401 Unauthorized");
        let p = problems(&t, None);
        assert_eq!(p[0], "1 of 2 requests failed");
        assert!(p[1].contains("/me: expected 200 OK"), "{p:?}");
    }

    #[test]
    fn journey_order_comes_first() {
        assert!(order("/login") < order("/me"));
        assert!(order("/logout") < order("/me (after logout)"));
        assert_eq!(order("/other"), 9);
    }
}
