//! Store capacity as an axis: how the store-backed systems' ceiling moves with the store's
//! CPU cap, where the instances take over as the limit, and the store-to-instance ratio
//! that every store conclusion of the run rests on.

use super::*;
use crate::report::charts::store_axis::lines;

/// The ratio sentence: what the store had against the instances at the largest N.
pub(super) fn ratio(a: &Analysis<'_>) -> Option<String> {
    let r = a.results;
    if !r.caps.capped || !a.series.iter().any(|s| s.system.uses_store()) {
        return None;
    }
    let n = a.largest_n()?;
    let instances = n as f64 * r.caps.instance_cpu;
    Some(format!(
        "Every store conclusion here rests on a ratio: {} capped at {} core against {n} × {} core of instances at N={n} \
         (1 : {:.0}). A store with more cores per instance moves the ceiling up and the N where it binds out{}.",
        store_name(r, "each store"),
        r.caps.store_cpu,
        r.caps.instance_cpu,
        instances / r.caps.store_cpu,
        if a.store_axis.is_empty() {
            "; `--store-cpu 0.05,0.1,0.2,0.4` measures how far"
        } else {
            " — see *Store capacity as an axis*"
        }
    ))
}

/// The store caps the run measured, each once, in ascending order.
fn caps(a: &Analysis<'_>) -> Vec<f64> {
    let mut v: Vec<f64> = a.store_axis.iter().map(|c| c.cores).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    let (n, lines) = lines(a);
    if lines.is_empty() {
        return;
    }
    let r = a.results;
    let store = store_name(r, "each store");
    d.h(2, "store-axis", "Store capacity as an axis");
    d.p(format!(
        "The store-backed systems measured again with {store} capped at {} core, everything else unchanged ({} core per instance). \
         The rest of this report shows the main line, {store} at {} core. The store-to-instance ratio is the store's cap over the \
         instances' at N={n}.",
        and_list(&caps(a).iter().map(|c| c.to_string()).collect::<Vec<_>>()),
        r.caps.instance_cpu,
        r.config.store_cpu
    ));
    let period = std::time::Duration::from_micros(r.caps.period_us);
    let long: Vec<String> = caps(a)
        .into_iter()
        .filter_map(|c| {
            let (p, q) = crate::cgroup::quota(period, Some(c));
            let q = q?;
            (p != r.caps.period_us).then(|| format!("{c} core ran {} ms per {} ms", q as f64 / 1e3, p as f64 / 1e3))
        })
        .collect();
    if !long.is_empty() {
        d.p(format!(
            "The kernel's smallest CFS quota is 1 ms, so a cap below it gets a longer period of its own rather than a larger cap: {} \
             (pauses of up to the rest of that period).",
            and_list(&long)
        ));
    }
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    for line in &lines {
        let caps: Vec<&crate::report::analysis::StoreCap<'_>> =
            a.store_axis.iter().filter(|c| c.system == line.system).collect();
        let mut store_bound_up_to = None;
        let mut instances_from = None;
        for cap in &caps {
            let Some(p) = cap.points.iter().find(|p| p.instances == n) else { continue };
            let at = attribute(r, p);
            match at.limit {
                Limit::Saturated(Resource::Store, _) => store_bound_up_to = Some(cap.cores),
                Limit::Saturated(Resource::Instances, _) => {
                    instances_from.get_or_insert(cap.cores);
                }
                _ => {}
            }
            rows.push(vec![
                line.label.clone(),
                format!("{}", cap.cores),
                format!("1 : {:.1}", n as f64 * r.caps.instance_cpu / cap.cores),
                format!("{}{}", rps(p.achieved_rps), held_mark(p)),
                at.store.map_or("—".into(), pct),
                pct(at.instances),
                limit_text(a, &at.limit),
            ]);
        }
        let (first, last) = (line.points.first(), line.points.last());
        if let (Some(f), Some(l)) = (first, last) {
            let mut v = format!(
                "**{}**: at N={n} capacity went from {} with the store at {} core to {} at {} core (×{:.2} for ×{:.0} the store).",
                line.label,
                rps(f.1),
                f.0,
                rps(l.1),
                l.0,
                l.1 / f.1,
                l.0 / f.0
            );
            match (store_bound_up_to, instances_from) {
                (_, Some(c)) => v.push_str(&format!(" From {c} core on, the instances were the limit, not the store.")),
                (Some(c), None) => v.push_str(&format!(
                    " The store was the limit up to {c} core, the largest measured: the instances never took over here."
                )),
                (None, None) => v.push_str(" Neither the store nor the instances reached saturation at these caps."),
            }
            if let Some(ceiling) = line.instance_ceiling {
                v.push_str(&format!(
                    " The instances alone would give about {} (N × cap / their CPU per request).",
                    rps(ceiling)
                ));
            }
            verdicts.push(v);
        }
    }
    d.table(
        &["system", "store cores", "store : instances", "capacity req/s", "store CPU", "instance CPU", "limited by"],
        "lrrrrrl",
        rows,
    );
    d.bullets(verdicts);
    if has("store-ceiling.svg") {
        d.chart(
            "store-ceiling.svg",
            format!("Capacity at N={n} against the store's CPU cap; dashed: the instances' own ceiling"),
        );
    }
}

/// `--store-shards`: the Redis Cluster's ceiling at the largest N against its primaries,
/// each capped alike. Nothing without the axis.
pub(super) fn shards(a: &Analysis<'_>, d: &mut Doc) {
    if a.shard_axis.len() < 2 {
        return;
    }
    let r = a.results;
    d.h(2, "shard-axis", "Store shards as an axis");
    d.p(format!(
        "session-redis-cluster at its largest N on a Redis Cluster of {} primaries, each its own redis-server capped at {} \
         core: store capacity is shards × that cap. Session keys spread evenly over the shards (no hash tags).",
        and_list(&r.config.store_shards.iter().map(u16::to_string).collect::<Vec<_>>()),
        r.caps.store_cpu
    ));
    let mut rows = Vec::new();
    for (system, k, p) in &a.shard_axis {
        let at = attribute(r, p);
        rows.push(vec![
            system.to_string(),
            k.to_string(),
            format!("{}", (f64::from(*k) * p.store_cpu.unwrap_or(r.caps.store_cpu) * 1e4).round() / 1e4),
            p.instances.to_string(),
            format!("{:.0}{}", p.achieved_rps, held_mark(p)),
            p.cpu.store_per_request_us.map_or("—".into(), |x| format!("{x:.1}")),
            at.store.map_or("—".into(), pct),
            pct(at.instances),
            limit_text(a, &at.limit),
        ]);
    }
    d.table(
        &[
            "system",
            "shards",
            "store cores",
            "N",
            "capacity req/s",
            "store µs/request",
            "store CPU",
            "instance CPU",
            "limited by",
        ],
        "lrrrrrrrl",
        rows,
    );
    let one = a.shard_axis.iter().find(|(_, k, _)| *k == 1);
    let most = a.shard_axis.iter().max_by_key(|(_, k, _)| *k);
    if let (Some((_, _, p1)), Some((_, k, pk))) = (one, most)
        && *k > 1
    {
        d.p(format!(
            "From 1 to {k} shards the capacity went ×{:.2} ({:.0} → {:.0} requests/s){}.",
            pk.achieved_rps / p1.achieved_rps.max(1.0),
            p1.achieved_rps,
            pk.achieved_rps,
            match attribute(r, pk).limit {
                Limit::Saturated(Resource::Store, _) => "; the store was still the limit",
                Limit::Saturated(_, _) => "; with more shards the limit moved off the store",
                _ => "",
            }
        ));
    }
}
