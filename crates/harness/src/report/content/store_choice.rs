//! "When to choose which", for the shared stores past a single Redis: what sharding was
//! measured to give, when a database store is worth its cost, and when a near-cache is.
//! Every sentence is computed from the run, and says so when its figure is absent.

use super::{Point, and_list, experiments, rps, total, us};
use crate::{
    plan::{Spread, System},
    report::analysis::{Analysis, Cost},
};

/// What follows "plan the store" in the shared-store advice: the shards the run measured,
/// or that sharding was not measured.
pub(super) fn shard_advice(a: &Analysis<'_>) -> String {
    let mut axis: Vec<(u16, &Point)> = a.shard_axis.iter().map(|(_, k, p)| (*k, *p)).collect();
    axis.sort_by_key(|(k, _)| *k);
    match (axis.first(), axis.last()) {
        (Some((k1, p1)), Some((kn, pn))) if kn > k1 && p1.held && pn.held && p1.achieved_rps > 0.0 => format!(
            " Sharding was measured: {} shard{} held {} requests/s, {} shards {} (×{:.2} for ×{} the store's cores).",
            k1,
            if *k1 == 1 { "" } else { "s" },
            rps(p1.achieved_rps),
            kn,
            rps(pn.achieved_rps),
            pn.achieved_rps / p1.achieved_rps,
            kn / k1,
        ),
        (Some((k1, _)), Some((kn, _))) if kn > k1 => format!(
            " Past that, shard the store (sharding was measured, {k1} to {kn} shards, but a point of it did not hold its rate: \
             no figure is drawn from it)."
        ),
        _ => " Past that, shard the store (sharding was not measured in this run).".into(),
    }
}

fn cost<'a>(a: &'a Analysis<'_>, s: System) -> Option<&'a Cost> {
    a.costs.iter().find(|c| c.system == s)
}

/// A system's main-line point at the largest N its series reached, if it held its rate (a
/// sentence here never rests on one that did not).
fn largest<'a>(a: &'a Analysis<'_>, s: System) -> Option<&'a Point> {
    a.series.iter().find(|x| x.system == s)?.largest().filter(|p| p.held)
}

/// The bullets for a database store and a near-cache, where the run measured them beside
/// session-redis.
pub(super) fn items(a: &Analysis<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let redis = cost(a, System::SESSION_REDIS);
    if let (Some(pg), Some(redis)) = (cost(a, System::SESSION_POSTGRES), redis)
        && let (Some(pg_store), Some(redis_store)) = (pg.store_us, redis.store_us)
    {
        let touch = cost(a, System::SESSION_POSTGRES_TOUCH).and_then(|t| t.store_us).map_or(String::new(), |t| {
            format!(
                "; writing the expiry only when 10 % of the idle timeout has passed (+touch) brought it to {}",
                us(t)
            )
        });
        let held = match (largest(a, System::SESSION_POSTGRES), largest(a, System::SESSION_REDIS)) {
            (Some(p), Some(r)) if p.instances == r.instances => format!(
                " At N={} the database held {} requests/s against Redis's {}.",
                p.instances,
                rps(p.achieved_rps),
                rps(r.achieved_rps)
            ),
            _ => String::new(),
        };
        out.push(format!(
            "**Sessions must live in the database the service already runs → session-postgres, with the database sized for \
             it.** A request cost the database {} of CPU against Redis's {} (×{:.1}){touch}.{held}",
            us(pg_store),
            us(redis_store),
            pg_store / redis_store.max(1e-9),
        ));
    }
    if let (Some(cached), Some(redis)) = (cost(a, System::SESSION_REDIS_CACHED), redis) {
        let commands = |c: &Cost| c.store_commands.map_or("?".into(), |x| format!("{x:.2}"));
        let held = match (largest(a, System::SESSION_REDIS_CACHED), largest(a, System::SESSION_REDIS)) {
            (Some(c), Some(r)) if c.instances == r.instances => {
                format!(", {} against {} requests/s at N={}", rps(c.achieved_rps), rps(r.achieved_rps), c.instances)
            }
            _ => String::new(),
        };
        let window = experiments::window_of(a, System::SESSION_REDIS_CACHED)
            .and_then(|w| w.window_ms.p99)
            .map_or(" (the logout window was not measured in this run)".into(), |p99| {
                format!("; a logout still reached every instance within {p99:.2} ms (p99)")
            });
        out.push(format!(
            "**Reads dominate and the same users come back within seconds → session-redis+cached.** {} store commands \
             per request against {}, {} against {} of CPU per request{held}{window}. The copies help only while the working \
             set is hot{}.",
            commands(cached),
            commands(redis),
            us(total(cached)),
            us(total(redis)),
            cold_cache(a),
        ));
    }
    out
}

/// The near-cache's store commands per request at the most live sessions, per spread.
fn cold_cache(a: &Analysis<'_>) -> String {
    let mine: Vec<&Point> = a.live.iter().copied().filter(|p| p.system == System::SESSION_REDIS_CACHED).collect();
    let most = mine.iter().filter_map(|p| p.live.as_ref().map(|l| l.sessions)).max();
    let Some(most) = most else { return String::new() };
    let at: Vec<String> = [Spread::Uniform, Spread::Zipf]
        .into_iter()
        .filter_map(|spread| {
            let p = mine.iter().find(|p| p.live.as_ref().is_some_and(|l| l.sessions == most && l.spread == spread))?;
            let how = if spread == Spread::Uniform { "spread uniformly" } else { "Zipf-spread" };
            Some(format!("{:.2} {how}", p.store.as_ref()?.commands_per_request))
        })
        .collect();
    if at.is_empty() {
        return String::new();
    }
    format!(": over {} live sessions it sent {} commands per request", super::live::count(most), and_list(&at))
}
