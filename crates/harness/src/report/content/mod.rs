//! What the report says: every sentence is built from the analysis, so a different run
//! gives a different (and still true) text. Where the data cannot support a claim, the
//! sentence is left out or says "not measured yet" — never a guess.
//!
//! Layout: the first screen is the decision (headline, findings, the rig in one line —
//! this file), then the source's table with numbers and when to choose which
//! ([`verdicts`]), then the details ([`details`]).

use crate::{
    plan::{Lb, System},
    record::Point,
    report::{
        analysis::{
            self, Analysis, Attribution, Cost, Limit, Resource, SATURATED, Series, attribute, capacity,
            instances_per_store, jwt_credential, session_credential,
        },
        charts::Chart,
        doc::Doc,
    },
};

mod advise;
mod control;
mod details;
mod experiments;
mod headline;
mod limits;
mod live;
mod parts;
mod postgres;
mod proxy;
mod repeats;
mod routes;
mod rtt_axis;
mod store_axis;
mod store_choice;
mod storm;
mod validation;
mod verdicts;
mod verifier;

pub use experiments::chart_file as chaos_chart_file;

/// Rates in prose: 27.4k, 5.2k, 716.
fn rps(x: f64) -> String {
    if x >= 1000.0 { format!("{:.1}k", x / 1000.0) } else { format!("{x:.0}") }
}

/// A share as "42%", or "—" when it was not measured (NaN: an external deployment's
/// instances).
fn pct(u: f64) -> String {
    if u.is_finite() { format!("{:.0}%", u * 100.0) } else { "—".into() }
}

/// A measured figure with no decimals, or "—".
fn whole(x: f64) -> String {
    if x.is_finite() { format!("{x:.0}") } else { "—".into() }
}

fn us(x: f64) -> String {
    format!("{x:.0} µs")
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1e3)
}

/// A point by name, its store axis values included where they are not the main line's:
/// "session-redis N=8 (store 0.2 core)".
fn point_name(r: &crate::record::Results, p: &Point) -> String {
    let mut name = format!("{} N={}", p.system, p.instances);
    if let Some(c) = p.store_cpu.filter(|c| *c != r.config.store_cpu) {
        name.push_str(&format!(" (store {c} core)"));
    }
    if let Some(rtt) = p.store_rtt_us.filter(|x| *x != crate::record::micros(r.config.store_rtt)) {
        name.push_str(&format!(" (store {rtt:.0} µs away)"));
    }
    if let Some(k) = p.store_shards.filter(|k| r.config.store_shards.first().is_some_and(|m| m != k)) {
        name.push_str(&format!(" ({k} shards)"));
    }
    name
}

/// What the report calls the store: "Redis" in runs that had only Redis, `each` (e.g.
/// "each store") once PostgreSQL ran beside it.
fn store_name(r: &crate::record::Results, each: &'static str) -> &'static str {
    if r.postgres.is_some() { each } else { "Redis" }
}

/// "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

const NOT_HELD: &str = "✗";

fn held_mark(p: &Point) -> &'static str {
    if p.held { "" } else { NOT_HELD }
}

fn limit_text(a: &Analysis<'_>, l: &Limit) -> String {
    match l {
        Limit::Rejected => "rejected by design".into(),
        Limit::Saturated(r, u) => format!("{} saturated ({})", r.name(), pct(*u)),
        Limit::Latency(r, u) if a.results.latency_apart() => {
            format!("nothing saturated (busiest: {} {})", r.name(), pct(*u))
        }
        Limit::Latency(r, u) => format!("p99 objective (busiest: {} {})", r.name(), pct(*u)),
    }
}

/// What a ✗ means in this run: from schema 2 on a point holds on throughput and errors
/// alone; before, the p99 objective was part of it.
fn missed_words(a: &Analysis<'_>) -> &'static str {
    if a.results.latency_apart() { "did not hold the rate (throughput or errors)" } else { "missed the p99 objective" }
}

/// How this run defined the highest rate that held.
fn held_definition(a: &Analysis<'_>) -> String {
    let slo = slo_ms(a).map_or("?".into(), |s| format!("{s}"));
    if a.results.latency_apart() {
        format!(
            "capacity = the highest measured rate with ≥ 95% of the offered rate achieved and errors ≤ 1%; latency measured apart at 70% of it, against a p99 objective of {slo} ms"
        )
    } else {
        format!("max throughput = highest rate with p99 ≤ {slo} ms")
    }
}

/// The last doubling (or last step) of a series: (previous N, last N, X(last)/X(prev)).
fn last_step(s: &Series<'_>) -> Option<(usize, usize, f64)> {
    let last = s.largest()?;
    let prev = s.points.iter().rev().find(|p| p.instances < last.instances)?;
    (prev.achieved_rps > 0.0).then(|| (prev.instances, last.instances, last.achieved_rps / prev.achieved_rps))
}

/// [`last_step`] where both of its points held: what a verdict may rest on (a step to or
/// from a point that did not hold measures the rig's overload, not the system's scaling).
fn held_step(s: &Series<'_>) -> Option<(usize, usize, f64)> {
    let last = s.largest()?;
    let prev = s.points.iter().rev().find(|p| p.instances < last.instances)?;
    if !(last.held && prev.held) {
        return None;
    }
    last_step(s)
}

/// Gain of the last held step over the ideal gain (N ratio): 1.0 is linear.
fn held_step_efficiency(s: &Series<'_>) -> Option<f64> {
    held_step(s).map(|(a, b, g)| g / (b as f64 / a as f64))
}

/// A series at or above this last-step efficiency "kept scaling".
const KEPT_SCALING: f64 = 0.75;

fn slo_ms(a: &Analysis<'_>) -> Option<f64> {
    Some(a.results.config.slo_p99.as_secs_f64() * 1e3)
}

/// The first point (by N) where a resource saturated, or the busiest point if none did.
fn first_saturation<'p>(a: &Analysis<'_>, s: &Series<'p>) -> Option<(&'p Point, Attribution)> {
    let atts: Vec<(&Point, Attribution)> = s.points.iter().map(|p| (*p, attribute(a.results, p))).collect();
    if let Some((p, at)) = atts.iter().find(|(_, at)| matches!(at.limit, Limit::Saturated(..))) {
        return Some((p, at.clone()));
    }
    atts.into_iter().max_by(|x, y| busiest(&x.1).total_cmp(&busiest(&y.1)))
}

fn busiest(at: &Attribution) -> f64 {
    match at.limit {
        Limit::Saturated(_, u) | Limit::Latency(_, u) => u,
        Limit::Rejected => 0.0,
    }
}

pub fn build(a: &Analysis<'_>, charts: &[Chart]) -> Doc {
    let mut d = Doc::default();
    let has = |file: &str| charts.iter().any(|c| c.file == file);
    d.h(1, "top", title(a));
    d.p(run_line(a));
    d.p(format!("**{}**", headline::headline(a)));
    d.bullets(findings(a));
    d.note(rig_note(a));
    if has("throughput.svg") {
        d.chart("throughput.svg", "Max sustained throughput vs instances; dashed: each system's ideal N × X(1)");
    }
    verdicts::source_table(a, &mut d);
    verdicts::choose(a, &mut d);
    details::scaling(a, &mut d, &has);
    details::saturation(a, &mut d);
    details::store(a, &mut d, &has);
    store_axis::section(a, &mut d, &has);
    store_axis::shards(a, &mut d);
    live::section(a, &mut d, &has);
    rtt_axis::section(a, &mut d);
    proxy::section(a, &mut d);
    details::cpu(a, &mut d, &has);
    verifier::section(a, &mut d);
    control::section(a, &mut d);
    details::sync(a, &mut d, &has);
    details::latency_apart(a, &mut d);
    details::latency(a, &mut d, &has);
    routes::section(a, &mut d);
    repeats::section(a, &mut d);
    experiments::section(a, &mut d, &has);
    details::model(a, &mut d);
    advise::section(a, &mut d);
    validation::section(a, &mut d);
    parts::section(a, &mut d);
    limits::limits(a, &mut d);
    limits::all_points(a, &mut d);
    d.h(2, "reproduce", "Re-rendering");
    d.p(format!(
        "Everything above is computed from `results.json` (and `revocation.json`, `chaos.json`{} where present) alone (run `{}`): \
         `authbench report <dir>` writes the same bytes again. \
         The fits, the bottleneck attribution and the model are computed at render time; nothing here was typed in by hand.",
        if a.mix().is_some() { ", `mixed/results.json`" } else { "" },
        a.results.run_id
    ));
    d
}

pub fn title(_a: &Analysis<'_>) -> String {
    "Sessions or JWT as instances scale out: what the measurements say".into()
}

fn run_line(a: &Analysis<'_>) -> String {
    let r = a.results;
    let m = &r.machine;
    let caps = if r.caps.capped {
        format!(
            "instances capped at {} core each, store at {} core{}",
            r.caps.instance_cpu,
            r.caps.store_cpu,
            if r.config.store_rtt.is_zero() {
                String::new()
            } else {
                format!(", {:.0} µs round trip to it", crate::record::micros(r.config.store_rtt))
            }
        )
    } else {
        format!("**uncapped** ({})", r.caps.reason.as_deref().unwrap_or("no reason recorded"))
    };
    let workload = r.points.first().map_or("?", |p| p.workload.id());
    format!(
        "Run `{}` ({}), {} points · {}, {} cores, {:.0} GiB · {caps} · workload `{workload}`{}",
        r.run_id,
        r.started_at,
        r.points.len(),
        m.cpu_model,
        m.cores,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        format_args!(" · {}", held_definition(a)),
    )
}

fn findings(a: &Analysis<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(n) = a.largest_n() else { return out };
    // 1. Throughput at the largest N, best first.
    let mut at_n: Vec<(&Series<'_>, &Point)> = a.series.iter().filter_map(|s| Some((s, s.at(n)?))).collect();
    at_n.sort_by(|x, y| y.1.achieved_rps.total_cmp(&x.1.achieved_rps).then(x.0.label().cmp(&y.0.label())));
    if !at_n.is_empty() {
        let list: Vec<String> = at_n
            .iter()
            .map(|(s, p)| format!("{} {}{}", s.label(), repeats::throughput_text(p), held_mark(p)))
            .collect();
        let cap = if a.results.caps.capped {
            format!(" ({n} × {} core of instances)", a.results.caps.instance_cpu)
        } else {
            String::new()
        };
        let missed = at_n.iter().any(|(_, p)| !p.held);
        out.push(format!(
            "**Max sustained throughput at N={n}**{cap}{}: {} requests/s{}.",
            if repeats::rounds(a) > 1 { ", in brackets the range over the rounds" } else { "" },
            list.join(", "),
            if missed { format!(" ({NOT_HELD} = its final run {})", missed_words(a)) } else { String::new() }
        ));
    }
    // 2. Session synchronisation.
    if let Some(f) = sync_finding(a) {
        out.push(f);
    }
    // 3. CPU per request.
    if let Some(f) = cpu_finding(a) {
        out.push(f);
    }
    // 4. The model.
    if let Some(f) = model_finding(a) {
        out.push(f);
    }
    // 5. Revocation and failures (or what is not measured).
    out.extend(experiments::findings(a));
    out
}

fn sync_finding(a: &Analysis<'_>) -> Option<String> {
    let rr = a.rejecting.first()?;
    let multi: Vec<&Point> = rr.points.iter().copied().filter(|p| p.instances > 1).collect();
    if multi.is_empty() {
        return None;
    }
    let measured: Vec<String> = multi.iter().map(|p| format!("{:.1}%", p.error_ratio * 100.0)).collect();
    let expected: Vec<String> =
        multi.iter().map(|p| format!("{:.1}%", (p.instances as f64 - 1.0) / p.instances as f64 * 100.0)).collect();
    let ns: Vec<String> = multi.iter().map(|p| p.instances.to_string()).collect();
    let dev = multi
        .iter()
        .map(|p| (p.error_ratio - (p.instances as f64 - 1.0) / p.instances as f64).abs() * 100.0)
        .fold(0.0, f64::max);
    let how = if dev <= 2.0 {
        format!("fail as (N−1)/N predicts, to within {dev:.1} percentage points")
    } else {
        format!("do not match (N−1)/N closely (off by up to {dev:.1} percentage points)")
    };
    let mut text = format!(
        "**Instance-local sessions behind round-robin {how}:** {} of requests rejected at N={} (predicted {}).",
        measured.join(" / "),
        ns.join("/"),
        expected.join(" / ")
    );
    if let Some(sticky) = a.series.iter().find(|s| s.system == rr.system && s.lb == Lb::Sticky) {
        let errors = sticky.points.iter().map(|p| p.error_ratio).fold(0.0, f64::max);
        let rejected = if errors == 0.0 {
            "no request rejected".to_string()
        } else {
            format!("at most {:.2}% rejected", errors * 100.0)
        };
        if let Some((p, l, g)) = held_step(sticky) {
            text.push_str(&format!(
                " Sticky routing removes it ({rejected}), and the same servers gained {} from N={p} to N={l}.",
                repeats::gain_text(sticky, p, l, g)
            ));
        }
    }
    Some(text)
}

/// Relative difference below which two measured costs count as "about the same".
const NOISE: f64 = 0.10;

/// Instance + store CPU per request (median over the system's points that held).
fn total(c: &Cost) -> f64 {
    c.instance_us + c.store_us.unwrap_or(0.0)
}

fn cost_text(c: &Cost) -> String {
    match c.store_us {
        Some(st) => format!("{} {:.0}{} + {:.0} µs (instance + store)", c.system, c.instance_us, cost_range(c), st),
        None => format!("{} {}{}", c.system, us(c.instance_us), cost_range(c)),
    }
}

/// " (8–11)": the range of a cost's instance CPU per request over its held points' rounds,
/// when the run repeated them; empty otherwise.
fn cost_range(c: &Cost) -> String {
    c.instance_range.map_or(String::new(), |(lo, hi)| format!(" ({lo:.0}–{hi:.0})"))
}

/// A cost in µs with the range of its instance figure (store's median added): "13 µs (12–15)".
fn cost_us(c: &Cost) -> String {
    match (c.instance_range, c.store_us) {
        (None, _) => us(total(c)),
        (Some((lo, hi)), None) => format!("{} ({lo:.0}–{hi:.0})", us(total(c))),
        (Some((lo, hi)), Some(st)) => format!("{} ({:.0}–{:.0})", us(total(c)), lo + st, hi + st),
    }
}

/// Costs, cheapest first.
fn costs_sorted<'a>(a: &'a Analysis<'_>) -> Vec<&'a Cost> {
    let mut v: Vec<&Cost> = a.costs.iter().collect();
    v.sort_by(|x, y| total(x).total_cmp(&total(y)).then(x.system.cmp(&y.system)));
    v
}

/// The range of N the medians were taken over, e.g. "N=1–8".
fn n_range(a: &Analysis<'_>) -> String {
    let lo = a.results.points.iter().map(|p| p.instances).min().unwrap_or(1);
    let hi = a.largest_n().unwrap_or(1);
    if lo == hi { format!("N={lo}") } else { format!("N={lo}–{hi}") }
}

fn cpu_finding(a: &Analysis<'_>) -> Option<String> {
    let v = costs_sorted(a);
    if v.is_empty() {
        return None;
    }
    let list: Vec<String> = v.iter().map(|c| cost_text(c)).collect();
    let ranges = if v.iter().any(|c| c.instance_range.is_some()) {
        "; in brackets the instance's range over their rounds"
    } else {
        ""
    };
    let mut text =
        format!("**CPU per request** (median over the points that held, {}{ranges}): {}.", n_range(a), list.join(", "));
    let cost = |s: System| v.iter().copied().find(|c| c.system == s);
    if let Some(redis) = cost(System::SESSION_REDIS) {
        let dearer: Vec<String> = v
            .iter()
            .filter(|c| c.system.jwt_alg().is_some() && total(c) > total(redis) * (1.0 + NOISE))
            .map(|c| c.system.to_string())
            .collect();
        if !dearer.is_empty() {
            text.push_str(&format!(
                " Stateless is not automatically cheaper: {} used more CPU per request than a Redis-backed session with the store's share included ({}).",
                and_list(&dearer),
                us(total(redis))
            ));
        }
        if let (Some(mem), Some(hs)) = (cost(System::SESSION_MEMORY), cost(System::JWT_HS256)) {
            let trip = redis.instance_us - mem.instance_us;
            let hs = total(hs);
            let compare = if trip > hs * (1.0 + NOISE) {
                Some("more than")
            } else if trip >= hs * (1.0 - 2.0 * NOISE) {
                Some("about as much as")
            } else {
                None
            };
            if let Some(compare) = compare {
                text.push_str(&format!(
                    " The Redis round trip cost the instance {} on top of an in-memory lookup — {compare} a whole HS256 request ({}).",
                    us(trip),
                    us(hs)
                ));
            }
        }
    }
    Some(text)
}

/// Application CPU per request the deployment model considers (µs): the measured servers
/// do nothing but authenticate, which is the worst case for a shared store.
const APP_US: [f64; 4] = [0.0, 200.0, 1000.0, 5000.0];
const INSTANCE_CORES: [f64; 3] = [1.0, 2.0, 4.0];

fn model_finding(a: &Analysis<'_>) -> Option<String> {
    let cost = a.costs.iter().find(|c| c.store_us.is_some())?;
    let store_us = cost.store_us?;
    let two = instances_per_store(cost, 2.0, 1.0, 0.0)?;
    let two_app = instances_per_store(cost, 2.0, 1.0, 1000.0)?;
    Some(format!(
        "**Model, not measurement:** at the measured {} of store CPU per request, one Redis core saturates near {} {} requests/s — \
         about {:.1} two-core instances of these auth-only servers, or {:.0} if the application adds 1 ms of its own CPU per request \
         (details and the model's error against the measured points below).",
        us(store_us),
        rps(capacity(1.0, store_us)),
        cost.system,
        two,
        two_app
    ))
}

fn rig_note(a: &Analysis<'_>) -> String {
    let r = a.results;
    let not_held = r.points.iter().filter(|p| !p.held && !analysis::rejects_by_design(p)).count();
    let flagged: usize = r.points.iter().filter(|p| p.flags.iter().any(crate::record::verdict::rig_flag)).count();
    let caps = if r.caps.capped {
        format!(
            "every instance in its own cgroup capped at {} core and {} at {} core ({}, {:.0} ms period), all on one {}-core machine with the load generator",
            r.caps.instance_cpu,
            store_name(r, "each store (Redis, PostgreSQL)"),
            r.caps.store_cpu,
            r.caps.cgroup.as_deref().unwrap_or("cgroup"),
            r.caps.period_us as f64 / 1e3,
            r.machine.cores
        )
    } else if r.points.iter().any(|p| p.external) {
        format!(
            "an **external deployment** (`--target` {}): its instances, caps and balancer are its own, so instance CPU is not \
             measured and N is the number of URLs given",
            r.points.first().map_or(String::new(), |p| p.targets.join(", "))
        )
    } else {
        format!(
            "**no CPU caps** ({}): instances shared the machine's {} cores, so N is not real capacity",
            r.caps.reason.as_deref().unwrap_or("?"),
            r.machine.cores
        )
    };
    format!(
        "The rig: {caps}; {}. {not_held} of {} measured points {} in their final run (marked {NOT_HELD}, left out of fits); \
         {} flagged generator/uncapped/machine-saturated. Differences of ~10–15% are within this rig's noise — see *Limits of this run*.",
        match repeats::rounds(a) {
            1 => "one run per point".to_string(),
            k => format!("{k} interleaved rounds per point (median and range under *Repeats*)"),
        },
        r.points.len(),
        missed_words(a),
        if flagged == 0 { "none was".to_string() } else { format!("{flagged} were") }
    )
}

/// The systems present in this run, in the canonical order.
fn systems(a: &Analysis<'_>) -> Vec<System> {
    System::ALL.into_iter().filter(|s| !s.is_control() && a.results.points.iter().any(|p| p.system == *s)).collect()
}

/// X(2)/X(1) above this is more than linear: N=1 cannot have been measured at capacity.
const SUPERLINEAR: f64 = 2.1;

/// The lines whose first step was more than linear, with their N=1 and N=2 points.
fn superlinear_steps<'s>(a: &'s Analysis<'_>) -> Vec<(&'s Series<'s>, &'s Point, &'s Point)> {
    a.series
        .iter()
        .filter_map(|s| {
            let (one, two) = (s.at(1)?, s.at(2)?);
            (two.achieved_rps > SUPERLINEAR * one.achieved_rps).then_some((s, one, two))
        })
        .collect()
}

fn superlinear(a: &Analysis<'_>) -> Vec<String> {
    superlinear_steps(a)
        .into_iter()
        .map(|(s, one, two)| format!("{} (×{:.2})", s.label(), two.achieved_rps / one.achieved_rps))
        .collect()
}
