//! The control line: what the rig costs on its own. `control` is the same server stack
//! answering `/me` without reading the credential, measured through the same deploy, caps,
//! balancer and generator as every system. A cost or a curvature the control shows too is
//! the rig's; what a system costs beyond the control is its authentication.

use super::*;

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    let Some(c) = &a.control else { return };
    d.h(2, "control", "The control line: what the rig costs");
    d.p(
        "`control` is session-server started with `--control`: the same listener, layers, route and response as `/me`, for a \
         fixed user, with no credential read or checked. It runs through the same deploy, CPU caps, balancer and generator \
         as every system, with the generator sending a session cookie it ignores. Whatever it shows — CPU per request \
         rising with N, throughput bending, a p99 at the cap — the rig does to every system; only what a system costs *beyond* \
         the control is its authentication.",
    );
    let one = c.at(1);
    let rows: Vec<Vec<String>> = c
        .points
        .iter()
        .map(|p| {
            let ideal =
                one.filter(|o| o.achieved_rps > 0.0).map(|o| p.achieved_rps / (p.instances as f64 * o.achieved_rps));
            let inflation = one.map(|o| p.cpu.per_request_us / o.cpu.per_request_us).filter(|x| x.is_finite());
            vec![
                p.instances.to_string(),
                rps(p.achieved_rps),
                if p.held { "yes".into() } else { format!("no {NOT_HELD}") },
                whole(p.cpu.per_request_us),
                inflation.map_or("—".into(), |x| format!("×{x:.2}")),
                ideal.map_or("—".into(), pct),
            ]
        })
        .collect();
    d.table(&["N", "req/s", "held", "µs/req", "µs/req vs N=1", "X(N) ÷ N·X(1)"], "rrlrrr", rows);
    if let Ok(fit) = &c.fit {
        d.p(format!(
            "A Universal Scalability Law fit of the control gives σ = {:.3}, κ = {:.5}. The control shares nothing between \
             instances, so this curvature is the rig's (instances, the generator and the store on one machine): a system's \
             κ near it says nothing about the system.",
            fit.sigma, fit.kappa
        ));
    }
    auth_cost(a, c, d);
}

/// Each system's CPU per request beyond the control's at the same N: its authentication in
/// demand space. Rig overhead adds to every request, so it is subtracted, not divided out
/// (a ratio would over-correct the expensive systems).
fn auth_cost(a: &Analysis<'_>, c: &Series<'_>, d: &mut Doc) {
    let ns: Vec<usize> = c.points.iter().map(|p| p.instances).collect();
    let rows: Vec<Vec<String>> = a
        .series
        .iter()
        .map(|s| {
            let mut row = vec![s.label()];
            for &n in &ns {
                let cell = match (s.at(n), c.at(n)) {
                    (Some(p), Some(k)) if p.cpu.per_request_us.is_finite() && k.cpu.per_request_us.is_finite() => {
                        let (sys, ctl) = (p.cpu.per_request_us, k.cpu.per_request_us);
                        format!("{:.0} (×{:.2})", sys - ctl, sys / ctl)
                    }
                    _ => "—".into(),
                };
                row.push(cell);
            }
            row
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let head: Vec<String> = std::iter::once("system".to_owned()).chain(ns.iter().map(|n| format!("N={n}"))).collect();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let align: String = std::iter::once('l').chain(ns.iter().map(|_| 'r')).collect();
    d.p(
        "Instance CPU per request beyond the control's, µs (D_system(N) − D_control(N)): the cost of authenticating; in \
         brackets the system's CPU per request as a multiple of the control's at the same N, the unit that carries over \
         to another machine.",
    );
    d.table(&head, &align, rows);
}
