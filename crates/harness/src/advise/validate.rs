//! The model against the rig's own points: every measured point of every scaling line
//! (and the control) predicted from demands that are not its own — the median CPU per
//! request of the *other* points of its line that held (leave one out) — at the rig's caps:
//! X = min(N · c / D, shards · c_store / D_store). A second prediction takes the demands
//! from the runs at 70 % of capacity instead, to show how much CPU per request depends on
//! load on this rig.

use serde::Serialize;

use crate::{
    plan::{Lb, System},
    record::Point,
    report::analysis::{Analysis, capacity, median},
};

/// One point against the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub system: System,
    pub lb: Lb,
    pub instances: usize,
    pub measured_rps: f64,
    pub held: bool,
    /// The load generator or the whole machine was saturated at the point.
    pub rig_limited: bool,
    /// From capacity demands of the other held points (`None`: no other point held).
    pub predicted_rps: Option<f64>,
    /// Which ceiling the prediction hit.
    pub bound: &'static str,
    /// From the 70 %-load runs' demands of the other held points.
    pub moderate_rps: Option<f64>,
}

impl Check {
    /// (predicted − measured) / measured.
    pub fn error(&self) -> Option<f64> {
        self.predicted_rps.map(|p| (p - self.measured_rps) / self.measured_rps)
    }

    pub fn moderate_error(&self) -> Option<f64> {
        self.moderate_rps.map(|p| (p - self.measured_rps) / self.measured_rps)
    }
}

/// Share of errors within this bound that the goal asks for.
pub const WITHIN: f64 = 0.15;

/// Every point of the run's scaling lines and control against the model; empty for an
/// uncapped run (N instances there are not N times a capacity).
pub fn checks(a: &Analysis<'_>) -> Vec<Check> {
    let r = a.results;
    if !r.caps.capped {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in a.series.iter().chain(a.control.iter()) {
        for p in &s.points {
            let others: Vec<&Point> = s.points.iter().copied().filter(|q| q.held && !std::ptr::eq(*q, *p)).collect();
            let cap = |p: &Point| {
                let store = p.store_cpu.unwrap_or(r.caps.store_cpu) * f64::from(p.store_shards.unwrap_or(1));
                (p.instances as f64 * r.caps.instance_cpu, store)
            };
            let (inst_cores, store_cores) = cap(p);
            let predict = |d: Option<f64>, ds: Option<f64>| {
                let inst = capacity(inst_cores, d?);
                let store = ds.map_or(f64::INFINITY, |ds| capacity(store_cores, ds));
                Some(if store < inst { (store, "store") } else { (inst, "instances") })
            };
            let d = median(others.iter().map(|q| q.cpu.per_request_us).filter(|d| d.is_finite()).collect());
            let ds = median(others.iter().filter_map(|q| q.cpu.store_per_request_us).collect());
            let dm = median(others.iter().filter_map(|q| q.latency.as_ref()?.cpu_per_request_us).collect());
            let dsm = median(others.iter().filter_map(|q| q.latency.as_ref()?.store_per_request_us).collect());
            let main = predict(d, ds);
            out.push(Check {
                system: s.system,
                lb: s.lb,
                instances: p.instances,
                measured_rps: p.achieved_rps,
                held: p.held,
                rig_limited: p.rig_limited(),
                predicted_rps: main.map(|m| m.0),
                bound: main.map_or("—", |m| m.1),
                moderate_rps: predict(dm, dsm.or(ds)).map(|m| m.0),
            });
        }
    }
    out
}

/// (points that held with a prediction, of them within [`WITHIN`], median |error|).
pub fn summary(checks: &[Check]) -> (usize, usize, Option<f64>) {
    let errs: Vec<f64> = checks.iter().filter(|c| c.held).filter_map(Check::error).collect();
    let within = errs.iter().filter(|e| e.abs() <= WITHIN).count();
    (errs.len(), within, median(errs.iter().map(|e| e.abs()).collect()))
}
