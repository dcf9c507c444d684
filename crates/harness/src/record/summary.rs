//! The table a sweep prints at its end.

use super::{Flag, Results};

/// The end-of-run table.
pub fn summary_table(results: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<25} {:>3} {:<11} {:>9} {:>9} {:>7} {:>7} {:>9} {:>7} {:>8} {:>7} {:>6}  {}\n",
        "system",
        "N",
        "lb",
        "offered",
        "achieved",
        "p50ms",
        "p99ms",
        "p99@70%",
        "err%",
        "cpu/req",
        "store",
        "held",
        "flags"
    ));
    for p in &results.points {
        out.push_str(&format!(
            "{:<25} {:>3} {:<11} {:>9} {:>9.0} {:>7.2} {:>7.2} {:>9} {:>7.2} {:>8} {:>7} {:>6}  {}\n",
            match (p.store_cpu, p.store_rtt_us) {
                (Some(c), Some(rtt)) => format!("{} (store {c}, {rtt:.0}µs)", p.system.id()),
                (Some(c), None) => format!("{} (store {c})", p.system.id()),
                (None, Some(rtt)) => format!("{} (store {rtt:.0}µs)", p.system.id()),
                (None, None) => p.system.id(),
            } + &p.store_shards.map_or(String::new(), |k| format!(" ×{k}"))
                + &p.live.as_ref().map_or(String::new(), |l| format!(" {} {}", l.sessions, l.spread)),
            p.instances,
            p.lb.id(),
            p.offered_rps.map_or("closed".into(), |r| format!("{r:.0}")),
            p.achieved_rps,
            p.latency_us.p50 as f64 / 1000.0,
            p.latency_us.p99 as f64 / 1000.0,
            p.latency.as_ref().map_or("-".into(), |l| format!("{:.2}", l.latency_us.p99 as f64 / 1000.0)),
            p.error_ratio * 100.0,
            if p.cpu.per_request_us.is_finite() { format!("{:.0}µ", p.cpu.per_request_us) } else { "-".into() },
            p.store.as_ref().map_or("-".into(), |s| format!("{:.0}/s", s.ops_per_sec)),
            if p.held { "yes" } else { "no" },
            p.flags.iter().map(Flag::to_string).collect::<Vec<_>>().join(","),
        ));
    }
    for s in &results.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.system, s.reason));
    }
    for p in &results.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}
