//! The report's headline: what happened to scaling over the last step in N, drawn only from
//! steps whose points both held their rate.

use super::*;

pub(super) fn headline(a: &Analysis<'_>) -> String {
    let steps: Vec<(&Series<'_>, (usize, usize, f64), f64)> =
        a.series.iter().filter_map(|s| Some((s, held_step(s)?, held_step_efficiency(s)?))).collect();
    // Series with a last step whose points did not both hold: named, never judged.
    let unjudged: Vec<String> =
        a.series.iter().filter(|s| last_step(s).is_some() && held_step(s).is_none()).map(|s| s.label()).collect();
    let unjudged_text = if unjudged.is_empty() {
        String::new()
    } else {
        format!(
            " Not judged: {} (a point of {} last step did not hold its rate).",
            and_list(&unjudged),
            if unjudged.len() == 1 { "its" } else { "their" }
        )
    };
    // A judged step whose last point the rig limited: its gain is a lower bound.
    let rig_limited = |s: &Series<'_>| s.largest().is_some_and(|p| p.rig_limited());
    let rig_bound: Vec<String> = steps
        .iter()
        .filter(|(s, ..)| rig_limited(s))
        .map(|(s, (from, to, g), _)| format!("{} {}", s.label(), repeats::gain_text(s, *from, *to, *g)))
        .collect();
    let unjudged_text = if rig_bound.is_empty() {
        unjudged_text
    } else {
        format!(
            " The load generator or the machine was saturated at the last point of {}: {} gain is what this rig could \
             offer, a lower bound.{unjudged_text}",
            and_list(&rig_bound),
            if rig_bound.len() == 1 { "its" } else { "their" }
        )
    };
    if steps.is_empty() {
        return if !unjudged.is_empty() {
            format!(
                "No system held its rate at two instance counts: this run shows costs per request, not scaling.{unjudged_text}"
            )
        } else if a.largest_n().unwrap_or(1) <= 1 {
            "Only one instance count was measured: this run shows costs per request, not scaling.".into()
        } else {
            "No system was measured at more than one instance count with requests that could succeed: this run shows costs \
             and rejections, not scaling."
                .into()
        };
    }
    let uncapped = if a.results.caps.capped {
        ""
    } else {
        "Uncapped run: instances shared the whole machine, so these scaling numbers are not capacity. "
    };
    // Kept scaling: a last step near linear, from a line that at least doubled its one-instance
    // rate (a store-bound line's last step can look steep on a few hundred requests/s).
    let kept = |s: &(&Series<'_>, (usize, usize, f64), f64)| s.2 >= KEPT_SCALING && never_doubled(s.0).is_none();
    let scaled: Vec<_> = steps.iter().filter(|s| kept(s)).collect();
    // Stopped: not kept, and not because the rig ran out at the last point (named above).
    let flat: Vec<_> = steps.iter().filter(|s| !kept(s) && !rig_limited(s.0)).collect();
    let held_back = steps.iter().any(|s| !kept(s) && rig_limited(s.0));
    let span = |v: &[&(&Series<'_>, (usize, usize, f64), f64)]| {
        let lo = v.iter().map(|s| s.1.2).fold(f64::INFINITY, f64::min);
        let hi = v.iter().map(|s| s.1.2).fold(0.0, f64::max);
        let medians = if (hi - lo).abs() < 0.005 { format!("×{lo:.2}") } else { format!("×{lo:.2}–×{hi:.2}") };
        // With repeats: the range of the step's gain over the rounds, every series included.
        let rounds: Vec<_> = v.iter().filter_map(|s| repeats::step_gain(s.0, s.1.0, s.1.1)).collect();
        let rounds = (!rounds.is_empty()).then(|| {
            let lo = rounds.iter().map(|r| r.min).fold(f64::INFINITY, f64::min);
            let hi = rounds.iter().map(|r| r.max).fold(0.0, f64::max);
            format!("×{lo:.2}–×{hi:.2} over the rounds")
        });
        (medians, rounds)
    };
    // Every step here held at both ends; the rest are named in `unjudged_text`.
    let label = |s: &Series<'_>| s.label();
    let same_step = steps.windows(2).all(|w| (w[0].1.0, w[0].1.1) == (w[1].1.0, w[1].1.1));
    let from_to = if same_step {
        format!("From N={} to N={}", steps[0].1.0, steps[0].1.1)
    } else {
        "Over the last step in N".into()
    };
    let labels =
        |v: &[&(&Series<'_>, (usize, usize, f64), f64)]| and_list(&v.iter().map(|s| label(s.0)).collect::<Vec<_>>());
    if flat.is_empty() {
        let who = match (scaled.len(), held_back) {
            (0, _) => {
                return format!(
                    "{uncapped}No system's scaling could be judged past what this rig could drive.{unjudged_text}"
                );
            }
            (1, _) => format!("{} kept", label(scaled[0].0)),
            (_, true) => format!("{} kept", labels(&scaled)),
            (_, false) => "Every system kept".into(),
        };
        // Kept scaling over the step, yet a shared store may already be at its limit.
        let stores: Vec<String> = steps
            .iter()
            .filter_map(|(s, ..)| {
                let p = s.largest()?;
                let u = attribute(a.results, p).store.filter(|u| *u >= SATURATED)?;
                Some(format!("{}'s store reached {} of its cap at N={}", s.label(), pct(u), p.instances))
            })
            .collect();
        let shared = if stores.is_empty() {
            "no shared resource saturated".to_string()
        } else {
            format!("but {} — it, not the instances, is the next limit", and_list(&stores))
        };
        let (medians, rounds) = span(&scaled);
        return format!(
            "{uncapped}{who} scaling up to N={} on this rig ({medians} for the last step{}); {shared}.{unjudged_text}",
            a.largest_n().unwrap_or(1),
            rounds.map_or(String::new(), |r| format!(", {r}"))
        );
    }
    let flat_text: Vec<String> = flat
        .iter()
        .map(|(s, (from, to, g), _)| {
            let why = s.largest().map(|p| attribute(a.results, p)).map_or(String::new(), |at| match at.limit {
                Limit::Saturated(Resource::Store, u) => {
                    let cap = if a.results.caps.capped {
                        format!(" (capped at {} core)", a.results.caps.store_cpu)
                    } else {
                        String::new()
                    };
                    format!(
                        ", its store{cap} at {} of its CPU while the instances were {} busy",
                        pct(u),
                        pct(at.instances)
                    )
                }
                Limit::Saturated(r, u) => format!(", {} at {}", r.name(), pct(u)),
                Limit::Latency(r, u) => format!(" (nothing saturated; busiest: {} at {})", r.name(), pct(u)),
                Limit::Rejected => String::new(),
            });
            match never_doubled(s) {
                Some((first, last)) => format!(
                    "{} never held twice its one-instance rate ({} at N={} against {} at N={}){why}",
                    label(s),
                    rps(last.achieved_rps),
                    last.instances,
                    rps(first.achieved_rps),
                    first.instances
                ),
                None => format!("{} gained only {}{why}", label(s), repeats::gain_text(s, *from, *to, *g)),
            }
        })
        .collect();
    let store_bound = flat.iter().any(|(s, ..)| {
        s.system.uses_store()
            && s.largest()
                .is_some_and(|p| matches!(attribute(a.results, p).limit, Limit::Saturated(Resource::Store, _)))
    });
    let lead = match (store_bound, scaled.is_empty()) {
        (true, false) => "Scaling out stopped only where a shared store ran out — not at sessions or JWT as such.",
        (true, true) => "Scaling out stopped at the shared session store.",
        (false, true) => "No system kept scaling over the last step on this rig.",
        (false, false) => "Some systems stopped scaling before others.",
    };
    if scaled.is_empty() {
        format!("{uncapped}{lead} {from_to}: {}.{unjudged_text}", and_list(&flat_text))
    } else {
        let (medians, rounds) = span(&scaled);
        format!(
            "{uncapped}{lead} {from_to}, {} gained {medians}{}; {}.{unjudged_text}",
            labels(&scaled),
            rounds.map_or(String::new(), |r| format!(" ({r})")),
            and_list(&flat_text)
        )
    }
}

/// A line measured to N ≥ 4 whose largest N held less than twice its smallest N's rate:
/// (first point, largest point). Whatever its last step did, it did not scale out.
fn never_doubled<'p>(s: &'p Series<'p>) -> Option<(&'p Point, &'p Point)> {
    let first = *s.points.first()?;
    let last = s.largest()?;
    (last.instances >= 4 * first.instances && first.held && last.achieved_rps < 2.0 * first.achieved_rps)
        .then_some((first, last))
}
