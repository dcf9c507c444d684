//! Repeats (`sweep --repeat K`): every repeatable point measured K times in interleaved
//! rounds. The median of the rounds and their min–max range; the range covers the true
//! median with probability 1 − 2^(1−K) whatever the distribution (each round falls on
//! either side of the median with probability ½). Two systems whose ranges overlap are
//! not told apart by this run.

use super::*;

/// A median and the min–max range of one figure over a point's rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        let median = analysis::median(v.clone())?;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Self { median, min, max, n: v.len() })
    }

    pub(super) fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }

    /// "5.2k (5.0k–5.4k)" with the given formatter.
    pub(super) fn show(&self, f: impl Fn(f64) -> String) -> String {
        if self.n < 2 { f(self.median) } else { format!("{} ({}–{})", f(self.median), f(self.min), f(self.max)) }
    }
}

/// Probability that the min–max range of `k` rounds holds the median.
pub(super) fn coverage(k: usize) -> f64 {
    if k < 2 { 0.0 } else { 1.0 - 0.5f64.powi(k as i32 - 1) }
}

/// Throughput over the rounds of a point (every round's achieved rate).
pub(super) fn throughput(p: &Point) -> Option<Spread> {
    Spread::of(p.rounds().iter().map(|r| r.achieved_rps))
}

pub(super) fn cpu(p: &Point) -> Option<Spread> {
    Spread::of(p.rounds().iter().map(|r| r.cpu_per_request_us))
}

/// p50 of the latency runs over a point's rounds, ms.
pub(super) fn p50_ms(p: &Point) -> Option<Spread> {
    Spread::of(p.rounds().iter().filter_map(|r| r.p50_us).map(|us| us as f64 / 1e3))
}

pub(super) fn p99_ms(p: &Point) -> Option<Spread> {
    Spread::of(p.rounds().iter().filter_map(|r| r.p99_us).map(|us| us as f64 / 1e3))
}

/// A step's gain X(to)/X(from) round by round: round i of one point against round i of the
/// other (the rounds interleave the systems, so a pair shares the machine's state of that
/// round). `None` unless both points were measured again.
pub(super) fn step_gain(s: &Series<'_>, from: usize, to: usize) -> Option<Spread> {
    let (a, b) = (s.at(from)?.rounds(), s.at(to)?.rounds());
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    Spread::of(a.iter().zip(&b).filter(|(x, _)| x.achieved_rps > 0.0).map(|(x, y)| y.achieved_rps / x.achieved_rps))
}

/// A step's gain with its range over the rounds: "×1.70 (rounds ×1.55–×1.82)", or "×1.70".
pub(super) fn gain_text(s: &Series<'_>, from: usize, to: usize, gain: f64) -> String {
    match step_gain(s, from, to) {
        Some(r) => format!("×{gain:.2} (rounds ×{:.2}–×{:.2})", r.min, r.max),
        None => format!("×{gain:.2}"),
    }
}

/// A point's throughput with its range over the rounds: "68.6k (66.0k–70.1k)".
pub(super) fn throughput_text(p: &Point) -> String {
    match throughput(p).filter(|t| t.n >= 2) {
        Some(t) => format!("{} ({}–{})", rps(p.achieved_rps), rps(t.min), rps(t.max)),
        None => rps(p.achieved_rps),
    }
}

/// The rounds a run made: the largest number any point has.
pub(super) fn rounds(a: &Analysis<'_>) -> usize {
    a.results.points.iter().map(|p| p.rounds().len()).max().unwrap_or(1)
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    let k = rounds(a);
    if k < 2 {
        return;
    }
    d.h(2, "repeats", format!("Repeats: {k} rounds per point"));
    let (how, achieved) = if a.results.config.repeat_search {
        (
            "Each point's capacity was searched again in each of",
            "Throughput is the capacity each round's own search found and held, so its range holds the search's error and \
             the machine's drift between rounds",
        )
    } else {
        (
            "Each point was searched once and then measured again at the same rate in",
            "Throughput is the rate achieved at the point's capacity (a round that held achieves about the offered rate, so \
             its range mostly shows rounds that did not hold)",
        )
    };
    d.p(format!(
        "{how} {} later rounds, the rounds interleaving the systems (A B C … A B C …) so that drift of the machine spreads \
         over all of them. Shown: the median of the rounds and, in brackets, their range. The range of {k} rounds holds the \
         true median with probability {} (1 − 2^(1−K), whatever the distribution); it is not a confidence interval of the \
         mean. {achieved}; p99 is that of the latency run at 70% of capacity.",
        k - 1,
        pct(coverage(k))
    ));
    let mut rows = Vec::new();
    for s in &a.series {
        for p in s.points.iter().filter(|p| !p.repeats.is_empty()) {
            let rounds = p.rounds();
            rows.push(vec![
                s.label(),
                p.instances.to_string(),
                format!("{}/{}", rounds.iter().filter(|r| r.held).count(), rounds.len()),
                throughput(p).map_or("—".into(), |x| x.show(rps)),
                p99_ms(p).map_or("—".into(), |x| x.show(|v| format!("{v:.2}"))),
                cpu(p).map_or("—".into(), |x| x.show(whole)),
            ]);
        }
    }
    d.table(&["system", "N", "rounds held", "req/s", "p99 @70% ms", "inst µs/req"], "lrrrrr", rows);
    let verdicts = noise_verdicts(a);
    if !verdicts.is_empty() {
        d.p("Told apart or not, at the largest N each pair of neighbours measured:");
        d.bullets(verdicts);
    }
}

/// At the largest N, neighbours in the order of median CPU per request and of median p99:
/// whether their ranges overlap (within the noise) or not.
pub(super) fn noise_verdicts(a: &Analysis<'_>) -> Vec<String> {
    let Some(n) = a.largest_n() else { return Vec::new() };
    let at_n: Vec<(String, &Point)> = a
        .series
        .iter()
        .filter(|s| !s.rejects_by_design)
        .filter_map(|s| Some((s.label(), s.at(n).filter(|p| !p.repeats.is_empty())?)))
        .collect();
    let mut out = Vec::new();
    for (what, unit, figure) in
        [("CPU per request", "µs", cpu as fn(&Point) -> Option<Spread>), ("p99 at 70% of capacity", "ms", p99_ms)]
    {
        let mut v: Vec<(&String, Spread)> = at_n.iter().filter_map(|(l, p)| Some((l, figure(p)?))).collect();
        if v.len() < 2 {
            continue;
        }
        v.sort_by(|x, y| x.1.median.total_cmp(&y.1.median));
        let pairs: Vec<String> = v
            .windows(2)
            .map(|w| {
                let (lo, hi) = (&w[0], &w[1]);
                let digits = if unit == "ms" { 2 } else { 0 };
                let within = if lo.1.overlaps(&hi.1) { "within the noise" } else { "apart" };
                format!("{} {:.digits$} vs {} {:.digits$} {unit}: {within}", lo.0, lo.1.median, hi.0, hi.1.median)
            })
            .collect();
        out.push(format!("**{what}** (N={n}, low to high): {}.", pairs.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_of_k_rounds_covers_the_median_with_1_minus_2_to_the_1_minus_k() {
        assert_eq!(coverage(1), 0.0);
        assert_eq!(coverage(3), 0.75);
        assert_eq!(coverage(5), 0.9375);
    }

    #[test]
    fn a_spread_is_the_median_and_the_range_of_the_finite_values() {
        let s = Spread::of([3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.5, 1.0, 10.0, 4));
        assert!(s.overlaps(&Spread::of([10.0, 12.0]).unwrap()), "touching ranges overlap");
        assert!(!s.overlaps(&Spread::of([10.5, 12.0]).unwrap()));
        assert_eq!(Spread::of([f64::NAN]), None);
        assert_eq!(Spread::of([4.0]).unwrap().show(|x| format!("{x}")), "4", "one round has no range");
    }
}
