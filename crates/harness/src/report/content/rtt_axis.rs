//! The store's round trip (`--store-rtt`): the round trip the delay proxy achieved, told in
//! the store section, and the round trip as an axis (`--store-rtt 0,500us`) — what a
//! network hop to the store does to each store-backed system at the largest N (capacity,
//! latency at 70 % of capacity, CPU per request) beside the same system at the main one.

use super::*;
use crate::report::{
    analysis::StoreRttLine,
    content::repeats::{Spread, p50_ms},
};

/// "within the noise" or "apart" for two spreads of K ≥ 2 rounds; nothing for one round.
fn noise(x: &Spread, y: &Spread) -> &'static str {
    match (x.n.min(y.n) >= 2, x.overlaps(y)) {
        (false, _) => "",
        (true, true) => ", within the noise",
        (true, false) => ", apart",
    }
}

/// `--store-rtt`: the round trip the instances had to the store, as achieved under load.
pub(super) fn achieved(a: &Analysis<'_>) -> Option<String> {
    let r = a.results;
    let pts: Vec<&Point> = r.points.iter().filter(|p| p.store_rtt.is_some()).collect();
    if pts.is_empty() {
        return None;
    }
    let mut targets: Vec<f64> = pts.iter().filter_map(|p| Some(p.store_rtt.as_ref()?.target_us)).collect();
    targets.sort_by(f64::total_cmp);
    targets.dedup();
    let added: Vec<f64> = pts.iter().filter_map(|p| p.store_rtt.as_ref()?.added_us).collect();
    let off: Vec<String> = pts
        .iter()
        .filter(|p| p.store_rtt.as_ref().is_some_and(|x| !x.within))
        .map(|p| format!("{} N={}", p.system, p.instances))
        .collect();
    let proxy: f64 = pts.iter().filter_map(|p| p.store_rtt.as_ref()?.proxy_cpu_s).sum();
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.0}–{hi:.0} µs")
    };
    let holds: Vec<f64> = pts.iter().filter_map(|p| p.store_rtt.as_ref()?.hold_us).collect();
    // Runs made before the proxy was steered held the target itself.
    let how = if holds.is_empty() {
        "holding each direction for half, on high-resolution timers".to_string()
    } else {
        format!(
            "holding each direction for half of a hold time on high-resolution timers; the probe below steers the hold so that \
             hold plus the proxy's own forwarding make the target — {} at the ends of the windows",
            range(&holds)
        )
    };
    Some(format!(
        "**The store a round trip away.** The instances reached Redis through a delay of {} µs round trip (`--store-rtt`: a proxy \
         process {how}; its CPU is the rig's, {proxy:.2} s over the measured \
         windows). Achieved under load — median PING through the delay minus median PING straight to Redis, sampled every 50 ms \
         through each window — {} across {} store-backed points; {}.",
        and_list(&targets.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>()),
        if added.is_empty() { "not measured".to_string() } else { range(&added) },
        pts.len(),
        if off.is_empty() {
            "every point within ±20% or ±50 µs of the target".to_string()
        } else {
            format!("off target (flagged `store-rtt-off`): {}", off.join(", "))
        }
    ))
}

/// The delay proxy's CPU during a point's window, in cores.
fn proxy_cores(p: &Point) -> f64 {
    p.store_rtt.as_ref().and_then(|x| x.proxy_cpu_s).unwrap_or(0.0) / p.duration_s.max(1e-9)
}

/// The machine's busy share with the delay proxy's CPU added (attribution counts the
/// instances, the store and the generator).
fn machine_with_proxy(r: &crate::record::Results, p: &Point, at: &crate::report::analysis::Attribution) -> f64 {
    if p.cpu.machine_s.is_some() {
        return at.machine; // measured whole-machine busy time already holds the proxy
    }
    at.machine + proxy_cores(p) / r.machine.cores.max(1) as f64
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    let r = a.results;
    let main = crate::record::micros(r.config.store_rtt);
    let Some(n) =
        a.rtt_axis.iter().filter(|l| l.rtt_us != main).flat_map(|l| l.points.iter().map(|p| p.instances)).max()
    else {
        return;
    };
    let mut targets: Vec<f64> = a.rtt_axis.iter().map(|l| l.rtt_us).collect();
    targets.sort_by(f64::total_cmp);
    targets.dedup();
    d.h(2, "rtt-axis", "The store's round trip as an axis");
    d.p(format!(
        "The store-backed systems measured at N={n} with the store {} µs away (the delay proxy of *The store a round trip \
         away*, steered to each target; the round trip it achieved is in the table), everything else unchanged. The rest of \
         this report shows the main line, {main:.0} µs. Latency is the run at 70% of each point's capacity; with repeats, \
         each figure is the median of the rounds with their range.",
        and_list(&targets.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>()),
    ));
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    let mut groups: Vec<(System, Lb)> = a.rtt_axis.iter().map(|l| (l.system, l.lb)).collect();
    groups.dedup();
    for (system, lb) in groups {
        let lines: Vec<(&StoreRttLine<'_>, &Point)> = a
            .rtt_axis
            .iter()
            .filter(|l| l.system == system && l.lb == lb)
            .filter_map(|l| Some((l, *l.points.iter().find(|p| p.instances == n)?)))
            .collect();
        let label = if a.series.iter().any(|s| s.system == system && s.show_lb) {
            format!("{system} ({lb})")
        } else {
            system.to_string()
        };
        for (line, p) in &lines {
            let achieved = p.store_rtt.as_ref().and_then(|x| x.added_us);
            rows.push(vec![
                label.clone(),
                format!("{:.0}", line.rtt_us),
                achieved.map_or("—".into(), |x| {
                    format!("{x:.0}{}", if p.store_rtt.as_ref().is_some_and(|x| x.within) { "" } else { " (off)" })
                }),
                format!("{}{}", repeats::throughput(p).map_or("—".into(), |s| s.show(rps)), held_mark(p)),
                p50_ms(p).map_or("—".into(), |s| s.show(|x| format!("{x:.2}"))),
                repeats::p99_ms(p).map_or("—".into(), |s| s.show(|x| format!("{x:.2}"))),
                repeats::cpu(p).map_or("—".into(), |s| s.show(whole)),
                p.store.as_ref().map_or("—".into(), |s| format!("{:.2}", s.commands_per_request)),
            ]);
        }
        let [(base_line, base), ..] = lines[..] else { continue };
        for (line, p) in lines.iter().skip(1) {
            let (Some(x0), Some(x1)) = (repeats::throughput(base), repeats::throughput(p)) else { continue };
            let mut v = format!(
                "**{label}**: with the store {:.0} µs away instead of {:.0} µs, capacity at N={n} went from {} to {} (×{:.2}{})",
                line.rtt_us,
                base_line.rtt_us,
                rps(x0.median),
                rps(x1.median),
                x1.median / x0.median,
                noise(&x0, &x1)
            );
            if let (Some(l0), Some(l1)) = (p50_ms(base), p50_ms(p)) {
                let added_ms = (line.rtt_us - base_line.rtt_us) / 1e3;
                let trips = (l1.median - l0.median) / added_ms;
                v.push_str(&format!(
                    "; p50 at 70% of capacity from {:.2} to {:.2} ms{} ({:+.2} ms",
                    l0.median,
                    l1.median,
                    noise(&l0, &l1),
                    l1.median - l0.median
                ));
                // One store command per request should add about one round trip; far from
                // that, the queue behind the caps set the p50, not the store.
                if (0.5..=3.0).contains(&trips) {
                    v.push_str(&format!(", {trips:.1} times the added round trip"));
                    if let Some(s) = p.store.as_ref() {
                        v.push_str(&format!(" at {:.2} store commands per request", s.commands_per_request));
                    }
                    v.push(')');
                } else {
                    v.push_str(&format!(
                        "): not the round trip's doing — at 70% of capacity on {} core instances the wait behind the CPU cap \
                         sets the p50, so this latency does not isolate the round trip",
                        r.caps.instance_cpu
                    ));
                }
            }
            if let (Some(c0), Some(c1)) = (repeats::cpu(base), repeats::cpu(p)) {
                let at1 = attribute(r, p);
                v.push_str(&format!(
                    "; instance CPU per request {:.0} → {:.0} µs (×{:.2}{}), the instances at {} of their cap, the whole machine \
                     at {} (the delay proxy's CPU, the rig's, included: {:.2} core)",
                    c0.median,
                    c1.median,
                    c1.median / c0.median,
                    noise(&c0, &c1),
                    pct(at1.instances),
                    pct(machine_with_proxy(r, p, &at1)),
                    proxy_cores(p),
                ));
            }
            v.push('.');
            verdicts.push(v);
        }
    }
    d.table(
        &[
            "system",
            "round trip µs",
            "achieved µs",
            "capacity req/s",
            "p50 @70% ms",
            "p99 @70% ms",
            "CPU/req µs",
            "store cmds/req",
        ],
        "lrrrrrrr",
        rows,
    );
    d.bullets(verdicts);
}
