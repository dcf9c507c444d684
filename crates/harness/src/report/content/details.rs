//! The details behind the first screen: scaling and fits, bottlenecks, the store, CPU,
//! session synchronisation, latency, the deployment model, the run's limits, every point.

use super::*;

pub(super) fn scaling(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    if a.series.is_empty() {
        return;
    }
    d.h(2, "scaling", "Scaling out: throughput and the Universal Scalability Law");
    let mut ns: Vec<usize> = a.series.iter().flat_map(|s| s.points.iter().map(|p| p.instances)).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut head: Vec<String> = vec!["system".into()];
    head.extend(ns.iter().map(|n| format!("N={n}")));
    head.extend(["last step".into(), "efficiency".into()]);
    let rows: Vec<Vec<String>> = a
        .series
        .iter()
        .map(|s| {
            let mut r = vec![s.label()];
            r.extend(
                ns.iter().map(|n| s.at(*n).map_or("—".into(), |p| format!("{:.0}{}", p.achieved_rps, held_mark(p)))),
            );
            r.push(last_step(s).map_or("—".into(), |(p, l, g)| format!("×{g:.2} ({p}→{l})")));
            r.push(s.efficiency().map_or("—".into(), |(_, e)| format!("{e:.2}")));
            r
        })
        .collect();
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    d.table(&head_refs, &format!("l{}rr", "r".repeat(ns.len())), rows);
    let rule = if a.results.latency_apart() {
        "errors ≤ 1% and ≥ 95% of the offered rate achieved: capacity, measured; latency is judged apart"
    } else {
        "errors ≤ 1%, ≥ 95% of the offered rate achieved, p99 within the objective, instances below 95% of their cap"
    };
    let mut text = format!(
        "Requests/s at the highest rate that held ({rule}). {NOT_HELD}: the final run missed; the number is what it achieved. Efficiency \
         is X(N)/(N·X(1)) at the largest N; the last step compares the two largest N."
    );
    let borrowed: Vec<String> = a
        .series
        .iter()
        .filter(|s| s.lb == Lb::Sticky && s.points.iter().any(|p| p.lb != s.lb))
        .map(|s| s.label())
        .collect();
    if !borrowed.is_empty() {
        text.push_str(&format!(
            " {}: N=1 is the one round-robin measurement — with one instance there is nothing to balance.",
            and_list(&borrowed)
        ));
    }
    d.p(text);
    if has("usl.svg") || a.series.iter().any(|s| s.fit.is_err()) {
        d.h(3, "usl", "USL fits");
        let reach = crate::report::charts::usl_reach(a);
        let model_at = format!("X({reach}), model");
        d.p(
            "X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted by least squares with σ, κ ≥ 0 on the points that held. σ is contention (a serial \
             share), κ coherency (a cost per pair of instances, which makes throughput fall after the peak N = √((1−σ)/κ)), λ the \
             throughput of one instance. A fit needs at least 4 held points. The κ interval is a residual bootstrap (200 refits of \
             the curve times the measured/fitted ratios drawn with replacement; 5th–95th percentile). A line that shares nothing \
             between instances (no store) can only bend because instances and the generator share one machine, so its peak is \
             claimed only when its κ interval lies wholly above the control line's.",
        );
        let rows: Vec<Vec<String>> = a
            .series
            .iter()
            .map(|s| {
                let used: Vec<String> = s.points.iter().filter(|p| p.held).map(|p| p.instances.to_string()).collect();
                let excluded: Vec<String> = s.excluded.iter().map(|(n, why)| format!("N={n}: {why}")).collect();
                let excluded = if excluded.is_empty() { "—".to_string() } else { excluded.join("; ") };
                match &s.fit {
                    Ok(f) => vec![
                        s.label(),
                        used.join(", "),
                        excluded,
                        format!("{:.4}", f.sigma),
                        kappa(f.kappa),
                        format!("{:.0}", f.lambda),
                        format!("{:.3}", f.r2),
                        s.kappa_interval.map_or("—".into(), |(lo, hi)| format!("{}–{}", kappa(lo), kappa(hi))),
                        a.peak(s).map_or("—".into(), |p| p.cell(1)),
                        format!("{:.0}", f.predict(reach as f64)),
                    ],
                    Err(why) => {
                        let mut r = vec![s.label(), used.join(", "), excluded, format!("no fit: {why}")];
                        r.extend(std::iter::repeat_n(String::new(), 6));
                        r
                    }
                }
            })
            .collect();
        d.table(
            &["system", "held N used", "excluded", "σ", "κ", "λ (req/s)", "R²", "κ 90% interval", "peak N", &model_at],
            "llllrrrrrr",
            rows,
        );
        let superlinear = superlinear(a);
        if !superlinear.is_empty() {
            d.note(format!(
                "X(2) > 2·X(1) for {}: more than linear, which the USL (σ ≥ 0) cannot follow. One instance under a {} core cap held less than \
                 its CPU allowed (see *Limits of this run*), so fits that include N=1 underestimate λ and the extrapolation is optimistic \
                 about the slope. Read the fitted curves as a shape, not as a forecast.",
                and_list(&superlinear),
                a.results.caps.instance_cpu
            ));
        }
        if has("usl.svg") {
            d.chart("usl.svg", format!("USL fits, a model drawn to N={reach} (twice the largest N measured); dots: measured (hollow: did not hold)"));
        }
    }
}

/// κ as the USL table writes it.
fn kappa(k: f64) -> String {
    if k == 0.0 { "0".into() } else { format!("{k:.2e}") }
}

pub(super) fn saturation(a: &Analysis<'_>, d: &mut Doc) {
    if a.series.is_empty() {
        return;
    }
    d.h(2, "saturation", "What saturated first");
    d.p(format!(
        "The utilization law U = X·D per resource and point: instances (their CPU over their combined cap), the store (its CPU over its \
         cap), the generator (its CPU over the cores left to it) and the machine (everything over all cores). A resource at ≥ {} is \
         saturated; when none is, {} and the busiest resource is named.",
        pct(SATURATED),
        if a.results.latency_apart() {
            "the rate stopped holding with no resource saturated (a stall, a queue in the rig)"
        } else {
            "the p99 objective ended the search first"
        }
    ));
    let items: Vec<String> = a
        .series
        .iter()
        .filter_map(|s| {
            let (p, at) = first_saturation(a, s)?;
            Some(match at.limit {
                Limit::Saturated(r, _) => format!(
                    "**{}**: {} saturated first, at N={} (instances {}{}, generator {}, machine {}).",
                    s.label(),
                    r.name(),
                    p.instances,
                    pct(at.instances),
                    at.store.map_or(String::new(), |x| format!(", store {}", pct(x))),
                    pct(at.generator),
                    pct(at.machine)
                ),
                Limit::Latency(r, u) => format!(
                    "**{}**: nothing reached {}; {} at every N (busiest: {} at {}, N={}).",
                    s.label(),
                    pct(SATURATED),
                    if a.results.latency_apart() {
                        "the rate stopped holding first"
                    } else {
                        "the p99 objective broke first"
                    },
                    r.name(),
                    pct(u),
                    p.instances
                ),
                Limit::Rejected => return None,
            })
        })
        .collect();
    d.bullets(items);
}

pub(super) fn store(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    let backed: Vec<&Series<'_>> = a.series.iter().filter(|s| s.system.uses_store()).collect();
    d.h(2, "store", "The store");
    if backed.is_empty() {
        d.p("No store-backed system was measured in this run.");
        return;
    }
    let mut rows = Vec::new();
    for s in &backed {
        for p in &s.points {
            let at = attribute(a.results, p);
            let st = p.store.as_ref();
            rows.push(vec![
                s.label(),
                p.instances.to_string(),
                format!("{:.0}{}", p.achieved_rps, held_mark(p)),
                st.map_or("—".into(), |x| format!("{:.0}", x.ops_per_sec)),
                st.map_or("—".into(), |x| format!("{:.2}", x.commands_per_request)),
                p.cpu.store_per_request_us.map_or("—".into(), |x| format!("{x:.1}")),
                at.store.map_or("—".into(), pct),
                pct(at.instances),
            ]);
        }
    }
    d.table(
        &[
            "system",
            "N",
            "requests/s",
            "store commands/s",
            "commands/request",
            "store µs/request",
            "store CPU (of cap)",
            "instances CPU (of cap)",
        ],
        "lrrrrrrr",
        rows,
    );
    for s in &backed {
        if let (Some((pn, ln, g)), Some(p)) = (last_step(s), s.largest()) {
            let at = attribute(a.results, p);
            let verdict = match at.limit {
                Limit::Saturated(Resource::Store, u) => format!(
                    "the store was the bottleneck: at N={ln} it used {} of its cap while the instances used {}; commands/s grew ×{g:.2} from N={pn}.",
                    pct(u),
                    pct(at.instances)
                ),
                _ => format!("the store did not saturate (at most {} of its cap).", at.store.map_or("?".into(), pct)),
            };
            d.p(format!("{}: {verdict}", s.label()));
        }
    }
    super::postgres::writes(a, d, &backed);
    if let Some(ratio) = super::store_axis::ratio(a) {
        d.p(ratio);
    }
    if let Some(rtt) = super::rtt_axis::achieved(a) {
        d.p(rtt);
    }
    if has("store.svg") {
        d.chart("store.svg", "Store commands/s (left) and CPU utilization of store and instances (right) vs instances");
    }
}

pub(super) fn cpu(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    if a.series.is_empty() {
        return;
    }
    d.h(2, "cpu", "CPU per request");
    let mut ns: Vec<usize> = a.series.iter().flat_map(|s| s.points.iter().map(|p| p.instances)).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut head: Vec<String> = vec!["system".into()];
    head.extend(ns.iter().map(|n| format!("N={n}")));
    let rows: Vec<Vec<String>> = a
        .series
        .iter()
        .map(|s| {
            let mut r = vec![s.label()];
            r.extend(ns.iter().map(|n| {
                s.at(*n).map_or("—".into(), |p| match p.cpu.store_per_request_us {
                    Some(st) => format!("{} + {st:.0}", whole(p.cpu.per_request_us)),
                    None => whole(p.cpu.per_request_us),
                })
            }));
            r
        })
        .collect();
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    d.table(&head_refs, &format!("l{}", "r".repeat(ns.len())), rows);
    let mut text = "CPU µs per completed request: instance CPU (all instances' threads, from /proc, including the kernel's network work) + \
                    store CPU where a store is used. It includes everything the server does for the request, not only the credential check."
        .to_string();
    let growth: Vec<f64> = a
        .series
        .iter()
        .filter_map(|s| {
            let (first, last) = (s.points.first()?, s.largest()?);
            (last.instances > first.instances && first.cpu.per_request_us > 0.0)
                .then(|| last.cpu.per_request_us / first.cpu.per_request_us)
        })
        .collect();
    if let (Some(lo), Some(hi)) = (growth.iter().copied().reduce(f64::min), growth.iter().copied().reduce(f64::max)) {
        text.push_str(&format!(
            " From the smallest to the largest N, instance CPU per request changed by ×{lo:.2}–×{hi:.2}: more processes share the same \
             {} cores (context switches, colder caches), so single-N numbers carry that bias; the model and the summary use the median over N.",
            a.results.machine.cores
        ));
    }
    d.p(text);
    if has("cpu.svg") {
        d.chart(
            "cpu.svg",
            "CPU per request, median over N: instance (solid) and store (light); whiskers span the lowest to the highest N",
        );
    }
}

pub(super) fn sync(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    let Some(rr) = a.rejecting.first() else { return };
    d.h(2, "sync", "Session synchronisation: instance-local sessions behind round-robin");
    let sticky = a.series.iter().find(|s| s.system == rr.system && s.lb == Lb::Sticky);
    let rows: Vec<Vec<String>> = rr
        .points
        .iter()
        .map(|p| {
            let n = p.instances as f64;
            vec![
                p.instances.to_string(),
                format!("{:.1}%", p.error_ratio * 100.0),
                format!("{:.1}%", (n - 1.0) / n * 100.0),
                sticky
                    .and_then(|s| s.at(p.instances))
                    .map_or("—".into(), |q| format!("{:.1}%", q.error_ratio * 100.0)),
                p.errors.by_status.get("401").map_or("0".into(), |c| c.to_string()),
            ]
        })
        .collect();
    d.table(
        &["N", "rejected, round-robin", "(N−1)/N", "rejected, sticky", "401 responses (round-robin)"],
        "rrrrr",
        rows,
    );
    d.p(format!(
        "Each login lands on one instance and the session lives only there; round-robin sends the next request anywhere, so it finds \
         the session with probability 1/N. The rejected requests are 401s, not timeouts. Round-robin points ran at a fixed rate (half \
         of what sticky held) because a throughput search is meaningless when most requests fail by design. This is the study note's \
         \"sessions must be synchronised\" — solved here by stickiness ({}) or by a shared store (session-redis).",
        rr.system
    ));
    if has("rejection.svg") {
        d.chart("rejection.svg", "Rejected requests vs instances, round-robin and sticky, with (N−1)/N");
    }
}

/// Latency measured apart from capacity (schema 2 on): each searched point's run at 70% of
/// the rate it held, every N in one table, then the largest N in full.
pub(super) fn latency_apart(a: &Analysis<'_>, d: &mut Doc) {
    let runs: Vec<(&Series<'_>, &Point)> =
        a.series.iter().flat_map(|s| s.points.iter().filter(|p| p.latency.is_some()).map(move |p| (s, *p))).collect();
    if runs.is_empty() {
        return;
    }
    let slo = slo_ms(a).map_or("?".into(), |s| format!("{s}"));
    d.h(2, "latency-at-load", "Latency at 70% of capacity");
    d.p(format!(
        "Capacity and latency are measured apart. After each point's capacity is found, the same deployment is loaded open-loop at 70% \
         of it, as long as the capacity run, and that run gives the latency: where a queue does not dominate, so the figure is the \
         system's and not the backlog's. The objective (p99 ≤ {slo} ms) is a verdict on this run, not a limit on capacity. The \
         throttled share is the CFS periods in which an instance used up its quota and was paused until the next one; at a 0.1-core \
         cap such a pause lasts up to 9 ms, so it shows in the tail whatever the load."
    ));
    let mut ns: Vec<usize> = runs.iter().map(|(_, p)| p.instances).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut head = vec!["system".to_string()];
    head.extend(ns.iter().map(|n| format!("N={n}")));
    let rows: Vec<Vec<String>> = a
        .series
        .iter()
        .filter(|s| s.points.iter().any(|p| p.latency.is_some()))
        .map(|s| {
            let mut row = vec![s.label()];
            row.extend(ns.iter().map(|&n| match s.at(n).and_then(|p| p.latency.as_ref()) {
                Some(l) => format!("{}{}", ms(l.latency_us.p99), if l.slo_met { "" } else { " ✗" }),
                None => "—".into(),
            }));
            row
        })
        .collect();
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    d.table(&head_refs, &format!("l{}", "r".repeat(ns.len())), rows);
    d.p(format!("p99 in ms at 70% of each point's capacity; ✗: above the {slo} ms objective."));
    let Some(n) = ns.last().copied() else { return };
    let rows: Vec<Vec<String>> = runs
        .iter()
        .filter(|(_, p)| p.instances == n)
        .filter_map(|(s, p)| {
            let l = p.latency.as_ref()?;
            let throttled = l.throttled_share().map_or("—".into(), pct);
            Some(vec![
                s.label(),
                format!("{:.0}", p.achieved_rps),
                format!("{:.0}", l.offered_rps),
                ms(l.latency_us.p50),
                ms(l.latency_us.p99),
                ms(l.latency_us.p999),
                pct(l.instance_utilization),
                throttled,
                if l.slo_met { "met".into() } else { format!("missed {NOT_HELD}") },
            ])
        })
        .collect();
    d.p(format!("At N={n}:"));
    d.table(
        &[
            "system",
            "capacity req/s",
            "offered req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "inst CPU",
            "throttled",
            "objective",
        ],
        "lrrrrrrrl",
        rows,
    );
}

pub(super) fn latency(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    let Some(n) = a.largest_n() else { return };
    if !has("latency.svg") {
        return;
    }
    d.h(2, "latency", format!("Latency vs offered load at N={n}"));
    if a.results.latency_apart() {
        d.p(
            "The capacity runs below are measured at the edge, where a queue builds: their latency describes the backlog, not the \
             system. For the latency an architect plans with, read *Latency at 70% of capacity* above.",
        );
    }
    let rows: Vec<Vec<String>> = a
        .series
        .iter()
        .filter_map(|s| {
            let p = s.at(n)?;
            Some(vec![
                s.label(),
                format!("{:.0}{}", p.offered_rps.unwrap_or(p.achieved_rps), held_mark(p)),
                ms(p.latency_us.p50),
                ms(p.latency_us.p90),
                ms(p.latency_us.p99),
                ms(p.latency_us.p999),
                ms(p.latency_us.max),
                p.scheduler_lag_us.map_or("—".into(), |l| ms(l.p99)),
            ])
        })
        .collect();
    d.table(
        &["system", "offered req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "generator lag p99 ms"],
        "lrrrrrrr",
        rows,
    );
    d.p(
        "Latency is measured from each request's intended send time (open loop, no coordinated omission), so queueing inside the \
         generator counts against the system. The chart shows p99 for every try of the throughput search (only p99 is kept per try) \
         and p50 for the final run.",
    );
    d.chart("latency.svg", format!("p99 of each search try and p50 of the final run vs offered load, N={n}"));
}

pub(super) fn model(a: &Analysis<'_>, d: &mut Doc) {
    if a.costs.is_empty() {
        return;
    }
    d.h(2, "model", "From this rig to a real deployment (a model)");
    d.note(
        "This section is a model, not a measurement: it assumes CPU per request stays what was measured here when cores are added, that \
         throughput is CPU-bound (utilization law, X = cores / D), and that the store's work per request does not change. Redis runs \
         commands on one thread, so one Redis gives at most about one core to commands however many it has.",
    );
    let rows: Vec<Vec<String>> = a
        .costs
        .iter()
        .map(|c| {
            vec![
                c.system.to_string(),
                format!("{:.1}", c.instance_us),
                c.store_us.map_or("—".into(), |x| format!("{x:.1}")),
                format!("{:.0}", capacity(1.0, c.instance_us)),
                format!("{:.0}", capacity(2.0, c.instance_us)),
                c.store_us.map_or("—".into(), |x| format!("{:.0}", capacity(1.0, x))),
                c.points.to_string(),
            ]
        })
        .collect();
    d.table(
        &[
            "system",
            "instance µs/request",
            "store µs/request",
            "req/s per instance core",
            "req/s per 2-core instance",
            "req/s one 1-core store serves",
            "points (median of)",
        ],
        "lrrrrrr",
        rows,
    );
    for cost in a.costs.iter().filter(|c| c.store_us.is_some()) {
        d.p(format!(
            "Instances one 1-core store serves before it saturates — {}. Rows: cores per instance; columns: application CPU per request on top \
             of authentication (the measured servers do nothing else, which is the worst case for the store):",
            cost.system
        ));
        let rows: Vec<Vec<String>> =
            INSTANCE_CORES
                .iter()
                .map(|&ic| {
                    let mut r = vec![format!("{ic} core{}", if ic == 1.0 { "" } else { "s" })];
                    r.extend(APP_US.iter().map(|&app| {
                        instances_per_store(cost, ic, 1.0, app).map_or("—".into(), |k| format!("{k:.1}"))
                    }));
                    r
                })
                .collect();
        let head: Vec<String> =
            std::iter::once("instance size".to_string())
                .chain(APP_US.iter().map(|&u| {
                    if u == 0.0 { "auth only (measured)".to_string() } else { format!("+{} app CPU", us(u)) }
                }))
                .collect();
        let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
        d.table(&head_refs, "lrrrr", rows);
    }
    d.p(if a.results.caps.capped {
        "How far this model is from the measured points, each predicted from demands that are not its own: *The model against \
         every point of this run (out of sample)*, under *Your deployment*."
    } else {
        "The run was uncapped, so the model cannot be checked against it."
    });
}
