//! The last sections: what limits this run's numbers (rig, noise, flags, what was not
//! measured) and every point in one table.

use super::*;
use crate::record::{
    Flag, PointMode, StepOutcome, WorkloadKind,
    calibration::{Calibration, Probe},
};

/// Utilization from which an unbracketed capacity is taken to be at its CPU ceiling.
const CEILING: f64 = 0.95;

pub(super) fn limits(a: &Analysis<'_>, d: &mut Doc) {
    let r = a.results;
    let mut items = Vec::new();
    if r.caps.capped {
        let period_ms = r.caps.period_us as f64 / 1e3;
        let ones: Vec<f64> = a.series.iter().filter_map(|s| s.at(1)).map(|p| p.cpu.instance_utilization).collect();
        let (lo, hi) = (ones.iter().copied().fold(f64::INFINITY, f64::min), ones.iter().copied().fold(0.0, f64::max));
        let mut t = format!(
            "**CPU caps.** Each instance ran capped at {} core ({} ms of CPU per {period_ms:.0} ms period), {} at {} core. An instance \
             that spends its budget early in a period is paused until the next one — up to {:.0} ms, close to the {} ms objective.",
            r.caps.instance_cpu,
            r.caps.instance_cpu * period_ms,
            store_name(r, "each store"),
            r.caps.store_cpu,
            period_ms * (1.0 - r.caps.instance_cpu),
            slo_ms(a).map_or("?".into(), |s| format!("{s}"))
        );
        if !ones.is_empty() && r.latency_apart() {
            t.push_str(&format!(
                " That is why latency is measured apart from capacity (at 70% of it): a pause of that size is in the tail at any load, \
                 and would otherwise end the search below what the CPU gives. The N=1 capacity runs used {}–{} of their instance CPU.",
                pct(lo),
                pct(hi)
            ));
        } else if !ones.is_empty() {
            t.push_str(&format!(
                " That is why small N is latency-bound rather than CPU-bound: the N=1 points ran at only {}–{} instance CPU.",
                pct(lo),
                pct(hi)
            ));
        }
        items.push(t);
    } else if r.points.iter().any(|p| p.external) {
        items.push(
            "**External deployment.** authbench did not start these instances: their CPU caps, their number behind a balancer \
             and their CPU use are the deployment's and not measured here; the machine's busy share (from /proc/stat) stands in \
             for saturation, and store figures are there only when --redis-url named its Redis."
                .into(),
        );
    } else {
        items.push(format!(
            "**Uncapped.** {}: every instance shared all {} cores, so N instances are not N times the capacity; scaling results here \
             are not meaningful.",
            r.caps.reason.as_deref().unwrap_or("cgroups were not available"),
            r.machine.cores
        ));
    }
    let sl = superlinear(a);
    if !sl.is_empty() {
        items.push(format!(
            "**Superlinear first step.** {} — impossible if N=1 had been measured at capacity. N=1 is understated, efficiencies above 1 \
             are an artefact, and the last-step gain (which does not use N=1) is the safer scaling number.",
            and_list(&sl)
        ));
        if r.latency_apart() {
            items.push(format!("**Why, per system.** {}", superlinear_why(a).join(" ")));
        }
    }
    let not_held: Vec<String> = r
        .points
        .iter()
        .filter(|p| !p.held && !analysis::rejects_by_design(p))
        .map(|p| format!("{} N={} ({})", p.system, p.instances, analysis::why_not_held(p)))
        .collect();
    if !not_held.is_empty() {
        items.push(format!(
            "**Points that did not hold** (marked {NOT_HELD}, left out of the fits): {}.",
            not_held.join("; ")
        ));
    }
    // Noise: final runs that missed where the search had held; p99 swings between repeated tries.
    let retried =
        r.points.iter().filter(|p| p.search.iter().any(|s| matches!(s.why, StepOutcome::FinalRetry(_)))).count();
    let mut swing: Option<(f64, f64, String)> = None;
    for p in &r.points {
        for w in p.search.windows(2) {
            if matches!(w[0].why, StepOutcome::TriedAgain { .. }) && (w[0].offered_rps - w[1].offered_rps).abs() < 1e-6
            {
                let (x, y) = (w[0].p99_us as f64 / 1e3, w[1].p99_us as f64 / 1e3);
                let ratio = x.max(y) / x.min(y).max(1e-3);
                if swing.as_ref().is_none_or(|s| ratio > s.0.max(s.1) / s.0.min(s.1).max(1e-3)) {
                    swing = Some((x, y, format!("{} N={}", p.system, p.instances)));
                }
            }
        }
    }
    let k = repeats::rounds(a);
    let runs = if k > 1 {
        format!(
            "Each point was measured in {k} interleaved rounds (see *Repeats*): its range holds the median with probability {}; \
             the capacity itself was searched once.",
            pct(repeats::coverage(k))
        )
    } else {
        "One run per point, no repetitions, so no confidence intervals.".into()
    };
    let mut noise = format!(
        "**Noise.** {runs} {retried} of {} searched points missed in their final run at a rate their search had just held, and \
         were retried at 90%.",
        r.points.iter().filter(|p| p.mode == PointMode::FindMax).count()
    );
    if let Some((x, y, at)) = swing {
        noise.push_str(&format!(" Two tries at the same rate moved p99 from {x:.2} to {y:.2} ms ({at})."));
    }
    noise.push_str(if k > 1 {
        " Which differences at the largest N are within the noise is said under *Repeats*; read throughput differences below \
         ~10–15% as noise (capacity was searched once)."
    } else {
        " Read throughput differences below ~10–15% as noise."
    });
    items.push(noise);
    // A final run that failed at the searched rate bracketed it after all.
    let unbracketed = r
        .points
        .iter()
        .filter(|p| p.search_end == Some(crate::record::SearchEnd::Unbracketed) && p.search.iter().all(|s| s.held));
    // At a CPU ceiling the rate cannot go much higher whatever the search tried next.
    let (ceiling, below): (Vec<&Point>, Vec<&Point>) = unbracketed.partition(|p| {
        let at = attribute(r, p);
        at.instances >= CEILING || at.store.is_some_and(|s| s >= CEILING)
    });
    let names = |v: &[&Point]| and_list(&v.iter().map(|p| point_name(r, p)).collect::<Vec<_>>());
    if !below.is_empty() {
        items.push(format!(
            "**Capacity not bracketed.** Every search try held for {}, with no resource at {} of its cap: no rate above was seen \
             to fail within `--search-steps`, so these figures are lower bounds of capacity, not capacity.",
            names(&below),
            pct(CEILING)
        ));
    }
    if !ceiling.is_empty() {
        items.push(format!(
            "**Capacity at a CPU ceiling, not bracketed.** Every search try held for {}, but their instances or store ran at \
             {} of their cap or more: a higher rate was not tried within `--search-steps`, and could not be much higher.",
            names(&ceiling),
            pct(CEILING)
        ));
    }
    let count = |flag: Flag| r.points.iter().filter(|p| p.flags.contains(&flag)).count();
    let gen_max = r.points.iter().map(|p| p.cpu.generator_utilization).fold(0.0, f64::max);
    let machine_max = r.points.iter().map(|p| attribute(r, p).machine).fold(0.0, f64::max);
    items.push(format!(
        "**Flags.** generator: {}, uncapped: {}, external: {}, machine-saturated: {} points. The generator peaked at {} of the cores left to it (limit \
         80%), the whole machine at {} of its {} cores.",
        count(Flag::Generator),
        count(Flag::Uncapped),
        count(Flag::External),
        count(Flag::MachineSaturated),
        pct(gen_max),
        pct(machine_max),
        r.machine.cores
    ));
    if let Some(cal) = r.calibration.as_ref().filter(|c| !c.probes.is_empty()) {
        items.push(calibration(cal));
    }
    let steal: Vec<f64> = r
        .points
        .iter()
        .filter_map(|p| Some(p.cpu.steal_s? / (p.duration_s * r.machine.cores.max(1) as f64)))
        .filter(|s| s.is_finite())
        .collect();
    if let Some(worst) = steal.iter().copied().reduce(f64::max) {
        items.push(format!(
            "**CPU steal.** The hypervisor took up to {} of the machine's CPU during a measured window (median {}): time \
             the systems lost to a neighbour, not to their own work.",
            pct(worst),
            analysis::median(steal).map_or("—".into(), pct),
        ));
    }
    if !r.points.iter().any(|p| p.external) {
        items.push(
            "**One machine, loopback.** Instances, Redis and the generator share the machine and talk over loopback: no network latency \
             or NIC limits, and per-request CPU includes the kernel's loopback work on both ends."
                .into(),
        );
    }
    let workload = r.points.first().map(|p| p.workload);
    items.push(format!(
        "**Workload `{}`**{}. {}",
        workload.map_or("?", WorkloadKind::id),
        format_args!(" over {} logged-in users", r.config.users),
        if workload == Some(WorkloadKind::Read) {
            "Only authenticated GET /me: logins, refreshes and logouts are not in these numbers."
        } else {
            "Mostly GET /me, with /admin, refresh rotation and login/logout churn mixed in."
        }
    ));
    let mut missing = vec!["memory per in-process session", "refresh-token storage"];
    if a.revocation.is_none() {
        missing.insert(0, "the revocation window");
    }
    if a.chaos.is_none() {
        missing.push("store outages and instance loss");
    }
    items.push(format!(
        "**Not measured in this run:** {}.",
        and_list(&missing.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>())
    ));
    if a.revocation.is_some() || a.chaos.is_some() {
        items.push(
            "**The revocation and chaos runs ran uncapped** (the window is a latency, the faults happen well below capacity), on \
             the machine their files name; their numbers do not mix with the capped throughput above."
                .into(),
        );
    }
    for s in &r.skipped {
        items.push(format!("**Skipped {}:** {}", s.system, s.reason));
    }
    for p in &r.problems {
        items.push(format!("**Run problem:** {p}"));
    }
    d.h(2, "limits", "Limits of this run");
    d.bullets(items);
}

/// " (1000000 live, zipf)" for a point of the live-sessions axis, nothing otherwise.
fn live_suffix(p: &Point) -> String {
    p.live.as_ref().map_or(String::new(), |l| format!(" ({} live, {})", l.sessions, l.spread))
}

pub(super) fn all_points(a: &Analysis<'_>, d: &mut Doc) {
    let r = a.results;
    d.h(2, "points", "All points");
    let mut pts: Vec<&Point> = r.points.iter().collect();
    pts.sort_by_key(|p| (p.system, p.lb, p.instances));
    let rows: Vec<Vec<String>> = pts
        .iter()
        .map(|p| {
            let at = attribute(r, p);
            vec![
                format!("{}{}", p.system, live_suffix(p)),
                p.lb.to_string(),
                p.instances.to_string(),
                p.mode.to_string(),
                p.offered_rps.map_or("—".into(), |x| format!("{x:.0}")),
                format!("{:.0}", p.achieved_rps),
                if p.held {
                    "yes".into()
                } else if matches!(at.limit, Limit::Rejected) {
                    "n/a (by design)".into()
                } else {
                    format!("no {NOT_HELD}")
                },
                ms(p.latency_us.p50),
                ms(p.latency_us.p99),
                p.latency.as_ref().map_or("—".into(), |l| ms(l.latency_us.p99)),
                format!("{:.2}%", p.error_ratio * 100.0),
                whole(p.cpu.per_request_us),
                p.cpu.store_per_request_us.map_or("—".into(), |x| format!("{x:.0}")),
                pct(at.instances),
                at.store.map_or("—".into(), pct),
                pct(at.generator),
                pct(at.machine),
                limit_text(a, &at.limit),
                if p.flags.is_empty() {
                    "—".into()
                } else {
                    p.flags.iter().map(Flag::to_string).collect::<Vec<_>>().join(", ")
                },
            ]
        })
        .collect();
    d.table(
        &[
            "system",
            "lb",
            "N",
            "mode",
            "offered",
            "achieved",
            "held",
            "p50 ms",
            "p99 ms",
            "p99 @70% ms",
            "errors",
            "inst µs/req",
            "store µs/req",
            "inst CPU",
            "store CPU",
            "generator",
            "machine",
            "limited by",
            "flags",
        ],
        "llrlrrlrrrrrrrrrrll",
        rows,
    );
}

/// For each line with a more than linear first step, what its N=1 and N=2 capacity runs show.
fn superlinear_why(a: &Analysis<'_>) -> Vec<String> {
    superlinear_steps(a)
        .into_iter()
        .map(|(s, one, two)| {
            let (u1, u2) = (one.cpu.instance_utilization, two.cpu.instance_utilization);
            let (c1, c2) = (one.cpu.per_request_us, two.cpu.per_request_us);
            let why = if u1.is_finite() && u1 < SATURATED {
                let above = one
                    .search
                    .iter()
                    .filter(|t| !t.held && t.offered_rps > one.offered_rps.unwrap_or(0.0))
                    .min_by(|x, y| x.offered_rps.total_cmp(&y.offered_rps))
                    .map_or(String::new(), |t| format!(" (the try above it: {})", t.why));
                format!(
                    "N=1 stopped holding at {} of its CPU cap: its limit was not CPU but a stall or queue in the rig{above}",
                    pct(u1)
                )
            } else if c1.is_finite() && c2.is_finite() && c1 > 1.1 * c2 {
                "each request cost more CPU at N=1 than at N=2: one instance carried every connection".into()
            } else {
                "both used their CPU alike; the difference is within one run's noise".into()
            };
            format!(
                "{}: N=1 {} req/s at {} CPU and {} µs/request, N=2 {} req/s at {} and {} µs/request — {why}.",
                s.label(),
                whole(one.achieved_rps),
                pct(u1),
                whole(c1),
                whole(two.achieved_rps),
                pct(u2),
                whole(c2)
            )
        })
        .collect()
}

/// The machine's speed during the run, and how much it drifted.
fn calibration(c: &Calibration) -> String {
    let range = |f: &dyn Fn(&Probe) -> Option<f64>| {
        c.range(f).filter(|(lo, hi)| hi > lo).map_or(String::new(), |(lo, hi)| format!(" ({lo:.0}–{hi:.0})"))
    };
    let cpu = c.cpu_loop_us().map_or("—".into(), |v| format!("{v:.0} µs"));
    let rtt = c.loopback_rtt_us().map_or("—".into(), |v| format!("{v:.0} µs"));
    let ping = c
        .store_ping_us()
        .map_or(String::new(), |v| format!(", a Redis PING {v:.0} µs{}", range(&|p: &Probe| p.store_ping_us)));
    format!(
        "**Calibration** (medians of {} probes between the measurements, lowest–highest in brackets): a fixed CPU \
         loop took {cpu}{}, a loopback round trip {rtt}{}{ping}. Figures from another machine compare with these only \
         through `authbench compare`, which scales by them.",
        c.probes.len(),
        range(&|p: &Probe| Some(p.cpu_loop_us)),
        range(&|p: &Probe| Some(p.loopback_rtt_us)),
    )
}
