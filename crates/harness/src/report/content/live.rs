//! "Live sessions as an axis": what holding many sessions (JWT: refresh-token families)
//! costs each system, and whether requests spread over them — evenly or Zipf-skewed — get
//! slower. Nothing without `--live-sessions`.

use std::collections::BTreeMap;

use super::{Point, System, and_list, held_mark, ms, rps};
use crate::{
    plan::{Server, Spread},
    record::LivePoint,
    report::{analysis::Analysis, doc::Doc},
};

/// One live step of one system: its sessions and the points measured on them.
struct Step<'a> {
    system: System,
    live: &'a LivePoint,
    points: Vec<&'a Point>,
}

fn steps<'a>(a: &Analysis<'a>) -> Vec<Step<'a>> {
    let mut by: BTreeMap<(System, u64), Vec<&'a Point>> = BTreeMap::new();
    for p in &a.live {
        if let Some(l) = &p.live {
            by.entry((p.system, l.sessions)).or_default().push(p);
        }
    }
    by.into_iter()
        .filter_map(|((system, _), points)| Some(Step { system, live: points.first()?.live.as_ref()?, points }))
        .collect()
}

/// What one session costs: "redis-used-memory" and "postgres-relation" as after − before
/// over the sessions; the instances' RSS as the slope between the system's two largest
/// session counts (a process's base RSS cancels out).
pub(super) fn bytes_per_live(a: &Analysis<'_>, system: System) -> Option<(f64, String)> {
    let mut mine: Vec<&LivePoint> =
        a.live.iter().filter(|p| p.system == system).filter_map(|p| p.live.as_ref()).collect();
    mine.sort_by_key(|l| l.sessions);
    mine.dedup_by_key(|l| l.sessions);
    let last = mine.last()?;
    if let Some(b) = last.bytes_per_session() {
        return Some((b, format!("{} growth at {} sessions", holder(last), count(last.sessions))));
    }
    let prev = mine.iter().rev().nth(1)?;
    let per = (last.state_bytes as f64 - prev.state_bytes as f64) / (last.sessions - prev.sessions).max(1) as f64;
    Some((per, format!("instances' RSS, {} → {} {}", count(prev.sessions), count(last.sessions), what(system))))
}

fn holder(l: &LivePoint) -> &'static str {
    match l.held_in.as_str() {
        "redis-used-memory" => "Redis `used_memory`",
        "postgres-relation" => "table + index",
        _ => "instances' RSS",
    }
}

fn what(system: System) -> &'static str {
    if system.server() == Server::Jwt { "refresh families" } else { "sessions" }
}

fn one(system: System) -> &'static str {
    if system.server() == Server::Jwt { "refresh family" } else { "session" }
}

/// 1000000 → "1 000 000".
pub(super) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The p99 a point is judged by: its latency run's when it has one (find-max), else its own.
fn p99(p: &Point) -> u64 {
    p.latency.as_ref().map_or(p.latency_us.p99, |l| l.latency_us.p99)
}

/// The source table's "Server load" cell: capacity (or the fixed rate's p99) from the
/// fewest to the most live sessions, uniform spread.
pub(super) fn load_cell(a: &Analysis<'_>, system: System) -> Option<String> {
    let uniform: Vec<&Point> = a
        .live
        .iter()
        .copied()
        .filter(|p| p.system == system && p.live.as_ref().is_some_and(|l| l.spread == Spread::Uniform))
        .collect();
    let (first, last) = (uniform.first()?, uniform.last()?);
    let (lo, hi) = (first.live.as_ref()?.sessions, last.live.as_ref()?.sessions);
    if lo == hi {
        return None;
    }
    Some(format!(
        "{} → {}: {} → {} req/s{}, p99 {} → {} ms",
        count(lo),
        count(hi),
        rps(first.achieved_rps),
        rps(last.achieved_rps),
        if first.held && last.held { "" } else { " (✗: not held)" },
        ms(p99(first)),
        ms(p99(last))
    ))
}

/// Each system's live capacities beside its main-line point at the same N and policy: a
/// live step is one search with no repeats, so how far they spread is said beside a search
/// made apart.
fn beside_main_line(a: &Analysis<'_>, steps: &[Step<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    for system in steps.iter().map(|s| s.system).collect::<std::collections::BTreeSet<_>>() {
        let live: Vec<&Point> = steps.iter().filter(|s| s.system == system).flat_map(|s| s.points.clone()).collect();
        let Some(first) = live.first() else { continue };
        let lo = live.iter().map(|p| p.achieved_rps).fold(f64::INFINITY, f64::min);
        let hi = live.iter().map(|p| p.achieved_rps).fold(0.0, f64::max);
        let main = a
            .series
            .iter()
            .find(|s| s.system == system && s.lb == first.lb)
            .and_then(|s| s.points.iter().find(|p| p.instances == first.instances));
        let main_text = main.map_or(String::new(), |m| {
            format!(
                "; its main-line point (N={}, {} logged-in users, searched apart): {} req/s",
                m.instances,
                a.results.config.users,
                rps(m.achieved_rps)
            )
        });
        out.push(format!(
            "{system}: {}–{} req/s over its {} live points ({:.0} % apart){main_text}",
            rps(lo),
            rps(hi),
            live.len(),
            (hi / lo.max(1.0) - 1.0) * 100.0
        ));
    }
    if !out.is_empty() {
        out.push(
            "Each live point is one search, and a repeat re-measures a rate already found without searching again, so \
             this run has no measure of a search's own spread: read a difference between live points as the sessions' \
             doing only where it follows them in what no search sets: store commands per request and bytes held."
                .into(),
        );
    }
    out
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    let steps = steps(a);
    if steps.is_empty() {
        return;
    }
    let r = a.results;
    let n = a.live.first().map_or(0, |p| p.instances);
    d.h(2, "live-sessions", "Live sessions as an axis");
    d.p(format!(
        "Each system at N={n} once more for every value of `--live-sessions` ({}), with that many sessions held before \
         the first request: written straight into Redis or PostgreSQL by the harness, handed to each session-memory \
         instance as a `--preload-sessions` file (instance k holds the sessions whose home it is), and for JWT as \
         `--preload-refresh-families` (refresh-token families nobody holds, spread over the instances). Requests \
         then spread over the sessions {}. JWT requests carry the run's {} logged-in users' access tokens: a \
         token needs no server state, so the families are held, never read. Each step is measured once (no repeats).",
        and_list(&r.config.live_sessions.iter().map(|&x| count(x)).collect::<Vec<_>>()),
        and_list(
            &r.config
                .live_spreads
                .iter()
                .map(|s| match s {
                    Spread::Uniform => "uniformly".to_owned(),
                    Spread::Zipf => "Zipf-distributed (s = 1: the k-th session 1/k as often as the first)".to_owned(),
                })
                .collect::<Vec<_>>()
        ),
        r.config.users
    ));
    let mut rows = Vec::new();
    for s in &steps {
        for p in &s.points {
            let Some(l) = &p.live else { continue };
            rows.push(vec![
                s.system.to_string(),
                count(l.sessions),
                l.spread.to_string(),
                format!("{}{}", rps(p.achieved_rps), held_mark(p)),
                ms(p99(p)),
                p.store.as_ref().map_or("—".into(), |st| format!("{:.2}", st.commands_per_request)),
                p.cpu.store_per_request_us.map_or("—".into(), |x| format!("{x:.0}")),
                format!("{:.0}", p.cpu.per_request_us),
            ]);
        }
    }
    d.table(
        &[
            "system",
            "live sessions",
            "spread",
            if r.config.rate.is_some() { "req/s (fixed rate)" } else { "capacity req/s" },
            "p99 ms",
            "store commands/request",
            "store µs/request",
            "instance µs/request",
        ],
        "lrlrrrrr",
        rows,
    );
    d.bullets(beside_main_line(a, &steps));
    let mut rows = Vec::new();
    for s in &steps {
        let l = s.live;
        rows.push(vec![
            s.system.to_string(),
            count(l.sessions),
            holder(l).to_owned(),
            format!("{:.1}", l.state_bytes as f64 / 1e6),
            l.bytes_per_session().map_or("—".into(), |b| format!("{b:.0}")),
            format!("{:.1}", l.preload_s),
            if !crate::sweep::purges_itself(s.system) {
                "Redis expires keys itself".into()
            } else {
                match l.purge_ms {
                    Some(m) => format!("{m:.1} ms ({} run{})", l.purges, if l.purges == 1 { "" } else { "s" }),
                    None => "none ran".into(),
                }
            },
        ]);
    }
    d.table(
        &["system", "live sessions", "held in", "MB held", "B/session (after − before)", "preload s", "one purge"],
        "lrlrrrl",
        rows,
    );
    let mut per = Vec::new();
    for system in steps.iter().map(|s| s.system).collect::<std::collections::BTreeSet<_>>() {
        if let Some((b, how)) = bytes_per_live(a, system) {
            // Redis's own count for one key, beside the growth that adds its expiry entry.
            let usage = a
                .live
                .iter()
                .filter(|p| p.system == system)
                .find_map(|p| p.store.as_ref()?.bytes_per_session)
                .filter(|_| !crate::sweep::purges_itself(system))
                .map_or(String::new(), |b| format!("; Redis `MEMORY USAGE` of a sampled key: {b:.0} B"));
            per.push(format!("{system}: {b:.0} B per {} ({how}{usage})", one(system)));
        }
    }
    d.bullets(per);
    d.note(
        "MB held is the holder's whole footprint (the instances' RSS includes each process's own base). Redis and \
         PostgreSQL were uncapped while the harness wrote into them, and PostgreSQL's table was `VACUUM ANALYZE`d \
         after, so no point runs beside autovacuum's first pass; a purge's time is the instances' own measure \
         (`authbench_purge_seconds_total` on `/metrics`), waited for up to `--live-purge-wait` after the points.",
    );
    if has("live-memory.svg") {
        d.chart("live-memory.svg", "Server-side bytes held against live sessions");
    }
}
