//! "Your deployment": `authbench advise` rendered for the three documented example
//! profiles, and the model it rests on checked against every point of the run, out of
//! sample (each point predicted from the demands of the other points of its line).

use super::*;
use crate::advise::{self, render, validate};

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    if a.costs.is_empty() {
        return;
    }
    d.h(2, "advise", "Your deployment (`authbench advise`)");
    d.p(format!(
        "The measurements above carry to a deployment of your own through the service demands: `authbench advise --from <this \
         run> --peak-rps R --instance-cores C --app-cpu T --store-rtt T --revocation-window T …` sizes every option by the \
         utilization law at a target utilization (70% by default), estimates the latency authentication adds with M/M/c waits \
         (one server with demand D/c for a fractional allowance) plus the store's round trip per store call, prices logins and \
         refreshes from the per-route demands of a mixed run, and excludes the options that fail a hard requirement. The method \
         and every assumption are in `docs/advise.md`. Three example profiles, answered from this run ({}):",
        if !a.results.route_demands.is_empty() {
            "with its per-route demands"
        } else if a.mix().is_some() {
            "logins and refreshes priced from the per-route demands of the mixed run beside it, `mixed/` — as `--mix-from \
             <this run>/mixed` does"
        } else {
            "a run without per-route demands: logins and refreshes are not priced — `--mix-from` adds them"
        }
    ));
    for (name, params) in advise::examples() {
        let advice = advise::advise(a.results, a.revocation, a.chaos, a.mix(), &params);
        d.h(3, "advise-example", name);
        d.p(render::describe(&params));
        let rows: Vec<Vec<String>> = advice
            .plans
            .iter()
            .map(|p| {
                vec![
                    if p.excluded.is_empty() {
                        render::option_name(p)
                    } else {
                        format!("{} (excluded)", render::option_name(p))
                    },
                    render::instances_cell(p),
                    render::store_cell(p),
                    format!("{:.1}", p.cores),
                    format!("{:.0}%", p.auth_share * 100.0),
                    format!("{} / {}", advise::fmt_secs(p.auth_p50_s), advise::fmt_secs(p.auth_p99_s)),
                    render::revocation_cell(p),
                    p.outage.text().to_string(),
                    render::memory_cell(p),
                    render::bytes(p.wire_bytes_per_day),
                    p.first_to_saturate.to_string(),
                ]
            })
            .collect();
        d.table(
            &[
                "option",
                "instances",
                "store",
                "cores",
                "auth's CPU share",
                "auth adds p50 / p99",
                "revocation",
                "store outage",
                "session memory",
                "credential bytes a day",
                "first to saturate",
            ],
            "lrrrrrllrrl",
            rows,
        );
        let mut lines = Vec::new();
        if let Some(top) = advice.plans.first().filter(|p| p.excluded.is_empty()) {
            lines.push(format!("**{}**: {}.", render::option_name(top), advice.reasons.join("; ")));
        } else {
            lines.push(format!("{}.", advice.reasons.join("; ")));
        }
        for p in advice.plans.iter().filter(|p| !p.excluded.is_empty()) {
            lines.push(format!("Excluded {}: {}.", render::option_name(p), p.excluded.join("; ")));
        }
        lines.extend(advice.notes.iter().map(|n| format!("{n}.")));
        d.bullets(lines);
    }
    validation(a, d);
}

fn validation(a: &Analysis<'_>, d: &mut Doc) {
    let checks = validate::checks(a);
    if checks.is_empty() {
        return;
    }
    d.h(3, "advise-validation", "The model against every point of this run (out of sample)");
    let (n, within, median) = validate::summary(&checks);
    let moderate = checks.iter().any(|c| c.moderate_rps.is_some());
    d.p(format!(
        "Each point's capacity predicted at the rig's caps, X = min(N·c / D, shards·c_store / D_store), with the demands D taken \
         from the *other* points of its line that held (the median; never the point predicted). Of {n} points that held, {within} \
         ({}) are within ±{:.0}%{}.{}",
        if n > 0 { pct(within as f64 / n as f64) } else { "—".into() },
        validate::WITHIN * 100.0,
        median.map_or(String::new(), |m| format!(", median error {}", pct(m))),
        if moderate {
            " The last column takes the demands from the runs at 70% of capacity instead: CPU per request measured at moderate \
             load, which `advise` uses as the upper end of each demand's range — its error shows how much CPU per request depends \
             on load on this rig."
        } else {
            " (This run has no runs at 70% of capacity, so demands at moderate load cannot be compared.)"
        }
    ));
    let cell = |p: Option<f64>, e: Option<f64>| match (p, e) {
        (Some(p), Some(e)) => format!("{} ({:+.0}%)", rps(p), e * 100.0),
        _ => "—".into(),
    };
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let mut flags = Vec::new();
            if !c.held {
                flags.push("did not hold");
            }
            if c.rig_limited {
                flags.push("rig saturated");
            }
            let mut row = vec![
                if c.lb == Lb::Sticky { format!("{} (sticky)", c.system) } else { c.system.to_string() },
                c.instances.to_string(),
                rps(c.measured_rps),
                cell(c.predicted_rps, c.error()),
                c.bound.to_string(),
            ];
            if moderate {
                row.push(cell(c.moderate_rps, c.moderate_error()));
            }
            row.push(flags.join(", "));
            row
        })
        .collect();
    if moderate {
        d.table(
            &["line", "N", "measured", "model (error)", "model's ceiling", "with 70%-load demands (error)", ""],
            "lrrrlrl",
            rows,
        );
    } else {
        d.table(&["line", "N", "measured", "model (error)", "model's ceiling", ""], "lrrrll", rows);
    }
}
