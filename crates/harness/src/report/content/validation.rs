//! Held-out validation: does what was measured at small N predict the largest N? Two
//! predictions of X at the largest N, each from the points at N ≤ 4 only: the USL fitted
//! on them, and the service-demand model (X = min(N·c / D_instance, c_store / D_store))
//! with demands from the latency runs, measured at about 70 % of capacity — a separate
//! phase from the capacity runs it predicts.

use super::*;
use crate::report::usl;

/// The points a prediction may use: N at most this.
const FIT_UP_TO: usize = 4;

/// One line's held-out check.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct HeldOut {
    pub label: String,
    pub target_n: usize,
    pub measured: f64,
    /// USL fitted on the held points at N ≤ 4, evaluated at `target_n`.
    pub usl: Option<f64>,
    /// Service-demand model with the demands of the latency runs at N ≤ 4.
    pub demand: Option<f64>,
    pub instance_us: Option<f64>,
    pub store_us: Option<f64>,
}

fn error(predicted: Option<f64>, measured: f64) -> Option<f64> {
    predicted.map(|p| (p - measured) / measured)
}

/// Instance demand of a latency run: recorded, or (runs that did not record it) from its
/// utilization: U × cores / X.
fn instance_demand(p: &Point, cap: f64) -> Option<f64> {
    let l = p.latency.as_ref()?;
    l.cpu_per_request_us.or_else(|| {
        let us = l.instance_utilization * p.instances as f64 * cap * 1e6 / l.achieved_rps;
        us.is_finite().then_some(us)
    })
}

pub(super) fn checks(a: &Analysis<'_>) -> Vec<HeldOut> {
    let r = a.results;
    if !r.caps.capped {
        return Vec::new();
    }
    let Some(target_n) = a.largest_n().filter(|&n| n > FIT_UP_TO) else { return Vec::new() };
    let (cap, store_cap) = (r.caps.instance_cpu, r.caps.store_cpu);
    a.series
        .iter()
        .chain(a.control.iter())
        .filter_map(|s| {
            let target = s.at(target_n).filter(|p| p.held)?;
            let small: Vec<&Point> = s.points.iter().copied().filter(|p| p.instances <= FIT_UP_TO && p.held).collect();
            let fit_points: Vec<(f64, f64)> = small.iter().map(|p| (p.instances as f64, p.achieved_rps)).collect();
            let usl = usl::fit(&fit_points).ok().map(|f| f.predict(target_n as f64));
            let instance_us = analysis::median(small.iter().filter_map(|p| instance_demand(p, cap)).collect());
            let store_us = analysis::median(
                small.iter().filter_map(|p| p.latency.as_ref().and_then(|l| l.store_per_request_us)).collect(),
            );
            let demand = instance_us.map(|d| {
                let instances = capacity(target_n as f64 * cap, d);
                store_us.map_or(instances, |ds| instances.min(capacity(store_cap, ds)))
            });
            Some(HeldOut {
                label: s.label(),
                target_n,
                measured: target.achieved_rps,
                usl,
                demand,
                instance_us,
                store_us,
            })
        })
        .collect()
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    if !a.results.caps.capped || a.largest_n().is_none_or(|n| n <= FIT_UP_TO) {
        return;
    }
    let checks = checks(a);
    if !a.results.latency_apart() && checks.iter().all(|c| c.usl.is_none() && c.demand.is_none()) {
        // An older run without latency runs or N = 3: nothing to predict with.
        return;
    }
    d.h(2, "validation", "Held-out validation: the largest N predicted from N ≤ 4");
    let ns: Vec<usize> = {
        let mut v: Vec<usize> = a.results.points.iter().map(|p| p.instances).filter(|&n| n <= FIT_UP_TO).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut text = format!(
        "Does what was measured at small N carry to the largest? Each line is predicted at N={} from its points at N ≤ {FIT_UP_TO} only \
         (this run: N = {}): by the USL fitted on them, and by the service-demand model, X = min(N·c / D, c_store / D_store), with \
         the demands D taken from the latency runs (about 70% of capacity, a separate phase from the capacity runs predicted) and \
         c the caps. The error is (predicted − measured) / measured.",
        checks.first().map_or(a.largest_n().unwrap_or(0), |c| c.target_n),
        ns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    );
    if ns.len() < 4 {
        text.push_str(
            " A USL fit needs four held points at N ≤ 4, so this run (without N=3) can only check the demand model; measure \
             `--instances 1,2,3,4,8` for both.",
        );
    }
    d.p(text);
    if checks.is_empty() {
        d.p("No line held at the largest N, so there is nothing to check.");
        return;
    }
    let cell = |p: Option<f64>, m: f64| match (p, error(p, m)) {
        (Some(p), Some(e)) => format!("{} ({:+.0}%)", rps(p), e * 100.0),
        _ => "—".into(),
    };
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.label.clone(),
                rps(c.measured),
                cell(c.usl, c.measured),
                cell(c.demand, c.measured),
                c.instance_us.map_or("—".into(), whole),
                c.store_us.map_or("—".into(), whole),
            ]
        })
        .collect();
    d.table(
        &["line", "measured", "USL from N ≤ 4 (error)", "demand model (error)", "D instance µs", "D store µs"],
        "lrrrrr",
        rows,
    );
    let summary = |name: &str, errs: Vec<f64>| {
        analysis::median(errs.iter().map(|e| e.abs()).collect()).map(|m| {
            let worst = errs.iter().copied().fold(0.0f64, |w, e| if e.abs() > w.abs() { e } else { w });
            format!("{name}: median error {}, worst {:+.0}%", pct(m), worst * 100.0)
        })
    };
    let parts: Vec<String> = [
        summary("USL", checks.iter().filter_map(|c| error(c.usl, c.measured)).collect()),
        summary("demand model", checks.iter().filter_map(|c| error(c.demand, c.measured)).collect()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !parts.is_empty() {
        d.p(format!(
            "{}. A prediction that misses by more than the repeats' range says the small-N measurements do not carry to this \
             size on this rig: read the extrapolations in *USL fits* and *From this rig to a real deployment* with that error in mind.",
            parts.join("; ")
        ));
    }
}
