//! `authbench compare RUN_A RUN_B`: two runs side by side, per system and per point, in
//! raw figures and — when both runs carry a calibration — normalised to run A's machine,
//! so a slower VM is not read as a slower system. With `--fail-above PCT` it is a
//! regression gate: any system whose throughput fell, or whose CPU per request rose, by
//! more than PCT fails it.
//!
//! Normalisation: f = B's cost of the same fixed work ÷ A's (f = 2: B's machine does it at
//! half the speed). B's throughput counts ×f, its CPU per request ÷f. The fixed work is the
//! control line's CPU per request at N = 1 when both runs measured the control (the same
//! server stack, so it carries the syscall and network cost a request pays), else the
//! calibration's CPU loop. A system's change is the
//! median over the points both runs measured: throughput over the points both searched and
//! held (capacity), CPU per request over every point with a figure in both.

use std::fmt::Write as _;

use crate::{
    plan::{Lb, System},
    record::{Point, PointMode, Results},
    report::analysis::median,
};

/// What the figures of run B are expressed in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Basis {
    /// As measured: at least one run has no calibration (made before runs recorded one).
    Raw,
    /// As measured, because `--basis raw` asked for it.
    RawRequested,
    /// Scaled to run A's machine by the CPU-loop probes of both runs; `factor` is B's loop
    /// time ÷ A's.
    CpuLoop { factor: f64 },
    /// Scaled by the control line's CPU per request at N = 1; `factor` is B's ÷ A's.
    Control { factor: f64 },
}

impl Basis {
    fn factor(self) -> f64 {
        match self {
            Basis::Raw | Basis::RawRequested => 1.0,
            Basis::CpuLoop { factor } | Basis::Control { factor } => factor,
        }
    }
}

/// One point both runs measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PointPair {
    pub system: System,
    pub lb: Lb,
    pub instances: usize,
    /// Held throughput (req/s) of searched points that held in both runs; B's normalised.
    pub throughput: Option<(f64, f64)>,
    /// Instance CPU per request (µs) in both runs; B's normalised.
    pub cpu_us: Option<(f64, f64)>,
}

/// A system's change from A to B: medians of the per-point ratios B ÷ A.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemChange {
    pub system: System,
    pub lb: Lb,
    pub points: usize,
    pub throughput: Option<f64>,
    pub cpu_per_request: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub basis: Basis,
    pub points: Vec<PointPair>,
    pub systems: Vec<SystemChange>,
}

/// How `authbench compare --basis` asks for B's figures to be expressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BasisChoice {
    /// The control line when both runs have it (and measured the same way), else the CPU
    /// loop when both are calibrated, else raw.
    #[default]
    Auto,
    /// As measured, whatever the runs hold.
    Raw,
    /// The CPU-loop probes (raw when a run has none).
    CpuLoop,
}

/// Set run `b` beside run `a`, normalised as [`BasisChoice::Auto`] picks.
pub fn compare(a: &Results, b: &Results) -> Comparison {
    compare_on(a, b, BasisChoice::Auto)
}

/// [`compare`] on a chosen basis.
pub fn compare_on(a: &Results, b: &Results, choice: BasisChoice) -> Comparison {
    let loops =
        (a.calibration.as_ref().and_then(|c| c.cpu_loop_us()), b.calibration.as_ref().and_then(|c| c.cpu_loop_us()));
    // The control's CPU per request depends on the load it was measured at, and schema 2
    // measures at capacity where schema 1 stopped below it: across that change the control
    // is no yardstick, the CPU loop still is.
    let same_method = a.latency_apart() == b.latency_apart();
    let use_control = choice == BasisChoice::Auto && same_method;
    let basis = match (control_us(a), control_us(b), loops) {
        _ if choice == BasisChoice::Raw => Basis::RawRequested,
        (Some(ca), Some(cb), _) if use_control => Basis::Control { factor: cb / ca },
        (_, _, (Some(la), Some(lb))) if la > 0.0 && lb > 0.0 => Basis::CpuLoop { factor: lb / la },
        _ => Basis::Raw,
    };
    let f = basis.factor();
    let key = |p: &Point| (p.system, p.lb, p.instances);
    let capacity = |p: &Point| (p.mode == PointMode::FindMax && p.held).then_some(p.achieved_rps);
    let cpu = |p: &Point| Some(p.cpu.per_request_us).filter(|c| c.is_finite() && *c > 0.0);
    let mut points: Vec<PointPair> = a
        .points
        .iter()
        .filter_map(|pa| {
            let pb = b.points.iter().find(|pb| key(pb) == key(pa))?;
            Some(PointPair {
                system: pa.system,
                lb: pa.lb,
                instances: pa.instances,
                throughput: capacity(pa).zip(capacity(pb).map(|x| x * f)),
                cpu_us: cpu(pa).zip(cpu(pb).map(|d| d / f)),
            })
        })
        .collect();
    points.sort_by_key(|p| (p.system, p.lb, p.instances));
    let mut systems: Vec<SystemChange> = Vec::new();
    for p in &points {
        if systems.last().is_some_and(|s| (s.system, s.lb) == (p.system, p.lb)) {
            continue;
        }
        let line: Vec<&PointPair> = points.iter().filter(|q| (q.system, q.lb) == (p.system, p.lb)).collect();
        let ratio = |pair: Option<(f64, f64)>| pair.filter(|(x, _)| *x > 0.0).map(|(x, y)| y / x);
        systems.push(SystemChange {
            system: p.system,
            lb: p.lb,
            points: line.len(),
            throughput: median(line.iter().filter_map(|q| ratio(q.throughput)).collect()),
            cpu_per_request: median(line.iter().filter_map(|q| ratio(q.cpu_us)).collect()),
        });
    }
    Comparison { basis, points, systems }
}

/// The control line's instance CPU per request at N = 1, µs: the run's cost of the server
/// stack without authentication.
pub fn control_us(r: &Results) -> Option<f64> {
    r.points
        .iter()
        .find(|p| p.system.is_control() && p.instances == 1)
        .map(|p| p.cpu.per_request_us)
        .filter(|us| us.is_finite() && *us > 0.0)
}

/// The systems that got worse by more than `pct` percent, in words (empty: the gate passes).
pub fn worse(c: &Comparison, pct: f64) -> Vec<String> {
    let limit = pct / 100.0;
    let mut out = Vec::new();
    for s in &c.systems {
        if let Some(x) = s.throughput.filter(|x| *x < 1.0 - limit) {
            out.push(format!("{} ({}) throughput ×{x:.2}", s.system, s.lb));
        }
        if let Some(d) = s.cpu_per_request.filter(|d| *d > 1.0 + limit) {
            out.push(format!("{} ({}) CPU per request ×{d:.2}", s.system, s.lb));
        }
    }
    out
}

/// When the control line moved much more (or less) than the machine's CPU loop between the
/// runs, the stack itself changed (two builds of the servers, say): normalising by the
/// control then folds that change away, and the reader must be told.
pub fn yardsticks_disagree(c: &Comparison, a: &Results, b: &Results) -> Option<String> {
    let Basis::Control { factor } = c.basis else { return None };
    let la = a.calibration.as_ref()?.cpu_loop_us()?;
    let lb = b.calibration.as_ref()?.cpu_loop_us()?;
    let machine = lb / la;
    let apart = factor / machine;
    (!(0.8..=1.25).contains(&apart)).then(|| {
        format!(
            "**The two yardsticks disagree.** The control line cost ×{factor:.2} as much per request in B, but the \
             machine's CPU loop took ×{machine:.2} A's time: the server stack itself performed differently, not only \
             the machine. If the runs used different builds of the servers, the normalisation above folds the \
             stack's own change into the machine factor: compare with `--basis raw` (on one machine) or \
             `--basis cpu-loop`, or better, interleaved runs of both builds."
        )
    })
}

/// What the figures are, in one sentence.
pub fn basis_text(c: &Comparison) -> String {
    match c.basis {
        Basis::Raw => "raw figures: at least one run has no calibration, so a difference between the machines cannot \
                       be told from a difference between the systems"
            .into(),
        Basis::RawRequested => "raw figures, as measured (`--basis raw`): right for two builds on one machine, \
                                wrong across machines"
            .into(),
        Basis::CpuLoop { factor } => format!(
            "normalised to run A's machine by the CPU-loop probe: B's machine took ×{factor:.2} A's time, so B's \
             throughput counts ×{factor:.2} and its CPU per request ÷{factor:.2}"
        ),
        Basis::Control { factor } => format!(
            "normalised to run A's machine by the control line (the server stack without authentication, N = 1): \
             it cost ×{factor:.2} as much CPU per request in B, so B's throughput counts ×{factor:.2} and its CPU \
             per request ÷{factor:.2}"
        ),
    }
}

/// `compare.md`.
pub fn markdown(c: &Comparison, a: &Results, b: &Results) -> String {
    let mut s = String::from("# authbench compare\n\n");
    for (name, r) in [("A", a), ("B", b)] {
        let cal = r.calibration.as_ref();
        let _ = writeln!(
            s,
            "- **{name}**: run `{}` ({}), {}, {} cores, kernel {}; calibration: {}",
            r.run_id,
            r.started_at,
            r.machine.cpu_model,
            r.machine.cores,
            r.machine.kernel,
            cal.and_then(|c| c.cpu_loop_us()).map_or("none".into(), |l| {
                let rtt =
                    cal.and_then(|c| c.loopback_rtt_us()).map_or(String::new(), |r| format!(", loopback {r:.0} µs"));
                let ping =
                    cal.and_then(|c| c.store_ping_us()).map_or(String::new(), |p| format!(", Redis PING {p:.0} µs"));
                format!("CPU loop {:.0} µs{rtt}{ping}", l)
            }),
        );
        let _ = writeln!(
            s,
            "  control line at N = 1: {}",
            control_us(r).map_or("not measured".into(), |c| format!("{c:.1} µs of instance CPU per request")),
        );
    }
    let _ = writeln!(s, "\nFigures of B are {}.\n", basis_text(c));
    if let Some(caveat) = yardsticks_disagree(c, a, b) {
        let _ = writeln!(s, "{caveat}\n");
    }
    if a.latency_apart() != b.latency_apart() {
        let _ = writeln!(
            s,
            "The runs measured capacity differently (schema {} and {}): from schema 2 on the search no longer stops at \
             the p99 objective, and CPU per request is measured at capacity, where it is lower than below it. \
             Differences here are partly the method's, not the systems'.\n",
            a.schema_version, b.schema_version
        );
    }
    s.push_str("## Per system (median over the points both runs measured, B ÷ A)\n\n");
    s.push_str("| system | lb | points | throughput | CPU per request |\n|---|---|---:|---:|---:|\n");
    for x in &c.systems {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            x.system,
            x.lb,
            x.points,
            x.throughput.map_or("—".into(), |r| format!("×{r:.2}")),
            x.cpu_per_request.map_or("—".into(), |r| format!("×{r:.2}")),
        );
    }
    s.push_str("\n## Per point\n\n");
    s.push_str("| system | lb | N | A req/s | B req/s | B ÷ A | A µs/req | B µs/req | B ÷ A |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let pair = |p: Option<(f64, f64)>, digits: usize| match p {
        Some((x, y)) => [format!("{x:.digits$}"), format!("{y:.digits$}"), format!("×{:.2}", y / x)],
        None => ["—".into(), "—".into(), "—".into()],
    };
    for p in &c.points {
        let [ta, tb, tr] = pair(p.throughput, 0);
        let [ca, cb, cr] = pair(p.cpu_us, 1);
        let _ = writeln!(s, "| {} | {} | {} | {ta} | {tb} | {tr} | {ca} | {cb} | {cr} |", p.system, p.lb, p.instances);
    }
    s.push_str(
        "\nThroughput is compared only where both runs searched the point and it held (capacity); a run's noise \
         between repeats is ±10–15 % on this kind of machine, so read smaller changes as noise.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::calibration::{Calibration, Probe};

    fn run(rps: f64, cpu: f64, cpu_loop: Option<f64>) -> Results {
        let text = include_str!("../../tests/fixtures/full-sweep/results.json");
        let mut r: Results = serde_json::from_str(text).unwrap();
        for p in &mut r.points {
            p.achieved_rps *= rps;
            p.cpu.per_request_us *= cpu;
        }
        r.calibration = cpu_loop.map(|l| Calibration {
            probes: vec![Probe { at_s: 0.0, cpu_loop_us: l, loopback_rtt_us: 20.0, store_ping_us: None }],
        });
        r
    }

    #[test]
    fn a_run_against_itself_changes_nothing() {
        let a = run(1.0, 1.0, Some(4000.0));
        let c = compare(&a, &a);
        assert_eq!(c.basis, Basis::CpuLoop { factor: 1.0 });
        assert!(!c.systems.is_empty());
        assert!(c.systems.iter().all(|s| s.throughput.is_none_or(|x| x == 1.0)), "{:?}", c.systems);
        assert!(c.systems.iter().all(|s| s.cpu_per_request.is_none_or(|x| x == 1.0)));
        assert!(worse(&c, 0.0).is_empty());
    }

    #[test]
    fn a_slower_system_fails_the_gate_and_a_slower_machine_does_not() {
        let a = run(1.0, 1.0, None);
        let slower = compare(&a, &run(0.8, 1.0, None));
        assert_eq!(slower.basis, Basis::Raw, "uncalibrated runs compare raw");
        let w = worse(&slower, 10.0);
        assert!(w.iter().any(|s| s.contains("jwt-hs256 (round-robin) throughput ×0.80")), "{w:?}");
        assert!(worse(&slower, 25.0).is_empty());
        // Half the speed on a machine that takes twice as long for the same loop: no change.
        let a = run(1.0, 1.0, Some(4000.0));
        let c = compare(&a, &run(0.5, 2.0, Some(8000.0)));
        assert_eq!(c.basis, Basis::CpuLoop { factor: 2.0 });
        assert!(worse(&c, 1.0).is_empty(), "{:?}", worse(&c, 1.0));
        // The same slowdown seen raw is a regression in both throughput and CPU.
        let raw = compare(&run(1.0, 1.0, None), &run(0.5, 2.0, None));
        let w = worse(&raw, 10.0);
        assert!(w.iter().any(|s| s.contains("CPU per request ×2.00")), "{w:?}");
    }

    /// `r` with a control line at N = 1 costing `us` per request.
    fn with_control(r: &mut Results, us: f64) {
        let mut c = r.points.iter().find(|p| p.instances == 1).unwrap().clone();
        c.system = System::CONTROL;
        c.cpu.per_request_us = us;
        r.points.push(c);
    }

    #[test]
    fn the_control_line_is_the_yardstick_when_both_runs_have_it() {
        let mut a = run(1.0, 1.0, Some(4000.0));
        with_control(&mut a, 20.0);
        // B: a machine whose syscalls cost 3x while its CPU loop is as fast.
        let mut b = run(1.0 / 3.0, 3.0, Some(4000.0));
        with_control(&mut b, 60.0);
        let c = compare(&a, &b);
        assert_eq!(c.basis, Basis::Control { factor: 3.0 });
        assert!(worse(&c, 1.0).is_empty(), "{:?}", worse(&c, 1.0));
        // Across the schema-2 change (capacity measured apart) the control is no yardstick.
        let mut b2 = b.clone();
        b2.schema_version = 2;
        assert_eq!(compare(&a, &b2).basis, Basis::CpuLoop { factor: 1.0 });
        // Only one run has the control: the CPU loop it is, and it sees the 3x as a regression.
        let c = compare(&run(1.0, 1.0, Some(4000.0)), &b);
        assert_eq!(c.basis, Basis::CpuLoop { factor: 1.0 });
        assert!(!worse(&c, 10.0).is_empty());
        assert!(markdown(&c, &a, &b).contains("control line at N = 1: 60.0 µs"));
    }

    #[test]
    fn a_control_that_moved_apart_from_the_machine_is_flagged_and_raw_is_on_request() {
        // B: a leaner build on the same machine — the control itself fell by a third.
        let mut a = run(1.0, 1.0, Some(4000.0));
        with_control(&mut a, 30.0);
        let mut b = run(1.0, 0.8, Some(4000.0));
        with_control(&mut b, 20.0);
        let auto = compare(&a, &b);
        assert!(matches!(auto.basis, Basis::Control { .. }));
        let md = markdown(&auto, &a, &b);
        assert!(md.contains("The two yardsticks disagree"), "{md}");
        // Raw: the leaner build's lower CPU per request shows as measured.
        let raw = compare_on(&a, &b, BasisChoice::Raw);
        assert_eq!(raw.basis, Basis::RawRequested);
        assert!(yardsticks_disagree(&raw, &a, &b).is_none());
        let loops = compare_on(&a, &b, BasisChoice::CpuLoop);
        assert_eq!(loops.basis, Basis::CpuLoop { factor: 1.0 });
        // Both yardsticks agreeing (a control and a loop that moved together) says nothing.
        let mut b2 = run(0.5, 2.0, Some(8000.0));
        with_control(&mut b2, 60.0);
        assert!(yardsticks_disagree(&compare(&a, &b2), &a, &b2).is_none());
    }

    #[test]
    fn throughput_is_compared_only_where_both_searched_and_held() {
        let a = run(1.0, 1.0, None);
        let c = compare(&a, &a);
        let rr =
            c.points.iter().find(|p| p.system == System::SESSION_MEMORY && p.lb == Lb::RoundRobin && p.instances == 2);
        let rr = rr.unwrap();
        assert_eq!(rr.throughput, None, "a fixed-rate point has no capacity");
        assert!(rr.cpu_us.is_some());
        let md = markdown(&c, &a, &a);
        assert!(md.contains("raw figures") && md.contains("| jwt-hs256 | round-robin |"), "{md}");
    }
}
