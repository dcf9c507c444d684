//! The parts of a run laid out as `scripts/reference.sh` lays a reference run out: sweeps in
//! sub-directories beside this one (`mixed/`, `live/`, `haproxy/`), each with its own report.
//! Listed with what each measured, so that a reader of this report finds the rest.

use super::*;
use crate::report::analysis::Part;

/// What a part measured, from its configuration.
fn what(p: &Part) -> String {
    let c = &p.results.config;
    let mut what = if c.workload == crate::record::WorkloadKind::Mixed {
        "the realistic mix: per-route objectives and demands".to_string()
    } else if !c.live_sessions.is_empty() {
        format!(
            "live sessions as an axis ({})",
            c.live_sessions.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        )
    } else if c.haproxy || c.lb.iter().flatten().any(|lb| lb.proxy()) {
        "through a real HAProxy".to_string()
    } else {
        format!("the {} workload", c.workload.id())
    };
    if p.chaos {
        what.push_str("; failure experiments through it (`chaos.json`)");
    }
    what
}

/// Minutes between two RFC 3339 times, when both parse.
fn minutes(from: &str, to: Option<&str>) -> Option<f64> {
    let from = humantime::parse_rfc3339_weak(from).ok()?;
    let to = humantime::parse_rfc3339_weak(to?).ok()?;
    Some(to.duration_since(from).ok()?.as_secs_f64() / 60.0)
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    if a.parts.is_empty() {
        return;
    }
    d.h(2, "parts", "The parts of this run");
    d.p(
        "This report is the read sweep's (with the revocation and chaos runs beside it, where present). The run's other \
         sweeps are in sub-directories, each with a report of its own, made the same day on the same machine:",
    );
    let rows = a
        .parts
        .iter()
        .map(|p| {
            let r = &p.results;
            let mut ns: Vec<usize> = r.points.iter().map(|pt| pt.instances).collect();
            ns.sort_unstable();
            ns.dedup();
            vec![
                format!("[`{}/`]({}/report.md)", p.dir, p.dir),
                what(p),
                r.config.systems.len().to_string(),
                ns.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
                format!("{} ({} held)", r.points.len(), r.points.iter().filter(|pt| pt.held).count()),
                minutes(&r.started_at, r.finished_at.as_deref()).map_or("—".into(), |m| format!("{m:.1}")),
            ]
        })
        .collect();
    d.table(&["part", "what", "systems", "N", "points", "minutes"], "llrrrr", rows);
    d.p(
        "`scripts/reference.sh` lays a run out this way and writes beside this report a `README.md` that names the parts, \
         each phase's wall time and what the run left out to fit its time, and why.",
    );
}
