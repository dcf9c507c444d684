//! Find-max as decisions without I/O: whether a measured rate held ([`judge`]), which rate
//! to measure next ([`Search`]), and whether a final run is run again ([`final_retry`]).
//! The sweep measures; this module only decides, so every branch has a unit test.
//!
//! The search is guided by the utilization law. Each try measures the instances' CPU
//! utilization U at rate X; since U = X·D, the rate that would use the whole cap is X/U,
//! and the next try aims at 85 % of it. Once a try fails (objective, errors, throughput,
//! or a pinned CPU), the search bisects between the best rate that held and the lowest
//! that failed. It starts low (a third of a short closed-loop probe), so most tries run
//! below saturation and leave no backlog.

use std::time::Duration;

use crate::record::{Miss, SearchEnd, StepOutcome, Verdict};

/// What a measured window showed, as far as the verdict goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub error_ratio: f64,
    pub p99_us: u64,
    /// Instance CPU as a share of their combined cap (`None` when uncapped).
    pub utilization: Option<f64>,
}

/// Whether the system held a rate: errors ≤ 1 %, achieved ≥ 95 % of offered, p99 within
/// the objective, and — when capped — the instances not pinned at their CPU cap
/// (utilization ≥ 0.95 means the queue is growing, even if a short window has not shown
/// it in the latency yet). The first criterion missed is the reason.
pub fn judge(o: &Observed, slo: Duration) -> Verdict {
    if let Some(u) = o.utilization.filter(|u| *u >= 0.95) {
        return Verdict::Missed(Miss::CpuCap { utilization: u });
    }
    if o.error_ratio > 0.01 {
        return Verdict::Missed(Miss::Errors { ratio: o.error_ratio });
    }
    if o.achieved_rps < 0.95 * o.offered_rps {
        return Verdict::Missed(Miss::Throughput { achieved_rps: o.achieved_rps, offered_rps: o.offered_rps });
    }
    if o.p99_us > slo.as_micros() as u64 {
        let p99_ms = o.p99_us as f64 / 1e3;
        return Verdict::Missed(Miss::Latency { p99_ms, slo_ms: slo.as_secs_f64() * 1e3 });
    }
    Verdict::Held
}

/// A latency miss below this utilization is looked at twice before it is believed.
const RETRY_BELOW: f64 = 0.85;
/// The share of the cap each utilization-aimed step aims at.
const AIM: f64 = 0.85;
/// Steps closer than this to the last try end the search.
const CONVERGED: f64 = 0.03;
/// What a final run that missed is retried at, as a share of its rate.
pub const FINAL_RETRY: f64 = 0.9;

/// What to do after a measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Measure this rate: the next try.
    Try(f64),
    /// Measure the same rate once more before judging it.
    Again(f64),
    /// The search is over; [`Search::final_rate`] is where the final run goes.
    Stop(SearchEnd),
}

/// The state of one find-max search.
#[derive(Clone, Debug)]
pub struct Search {
    rate: f64,
    best: Option<f64>,
    failed: Option<f64>,
    tries: usize,
    budget: usize,
    /// The current rate is being measured a second time.
    again: bool,
}

impl Search {
    /// Start at a third of the closed-loop `ceiling` (at least 20 rps), with `budget` tries
    /// (second looks at a rate do not count).
    pub fn new(ceiling: f64, budget: usize) -> Self {
        Self { rate: (ceiling / 3.0).max(20.0), best: None, failed: None, tries: 0, budget, again: false }
    }

    /// The rate to measure now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Tries judged so far.
    pub fn tries(&self) -> usize {
        self.tries
    }

    /// Where the search starts, or that there is nothing to search (no tries allowed).
    pub fn first(&self) -> Next {
        if self.budget == 0 { Next::Stop(SearchEnd::NothingHeld) } else { Next::Try(self.rate) }
    }

    /// Take the verdict (and the instances' utilization) at [`Search::rate`]; returns how
    /// the step is recorded and what to do next.
    pub fn observe(&mut self, verdict: Verdict, utilization: Option<f64>) -> (StepOutcome, Next) {
        let rate = self.rate;
        // A latency miss while the instances still have CPU to spare may be a single stall
        // of this 2-core machine or of the CFS period (a 1.2 s window's p99 is its top ~20
        // requests): look once more before believing it, and record both.
        if !self.again
            && let Verdict::Missed(miss @ Miss::Latency { .. }) = verdict
            && let Some(cpu) = utilization.filter(|u| *u < RETRY_BELOW)
        {
            self.again = true;
            return (StepOutcome::TriedAgain { miss, cpu }, Next::Again(rate));
        }
        self.again = false;
        self.tries += 1;
        if verdict.held() {
            self.best = Some(self.best.map_or(rate, |b| b.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
        let next = match (self.best, self.failed) {
            (Some(lo), Some(hi)) => (lo + hi) / 2.0,
            (None, Some(hi)) => hi * 0.5,
            (Some(lo), None) => {
                // Utilization-law estimate, bounded to at most 4x per step.
                let target = utilization.filter(|u| *u > 0.01).map_or(lo * 2.0, |u| AIM * lo / u);
                target.clamp(lo * 1.05, lo * 4.0)
            }
            (None, None) => rate,
        };
        let step = StepOutcome::Judged(verdict);
        if ((next - rate) / rate).abs() < CONVERGED && self.best.is_some() {
            return (step, Next::Stop(SearchEnd::Converged));
        }
        if self.tries >= self.budget {
            let end = if self.best.is_some() { SearchEnd::Budget } else { SearchEnd::NothingHeld };
            return (step, Next::Stop(end));
        }
        self.rate = next;
        (step, Next::Try(next))
    }

    /// The rate of the final run: the best that held; when nothing did, half of the lowest
    /// rate that failed (the system is measured there, and its point says whether it held).
    pub fn final_rate(&self) -> f64 {
        self.best.or(self.failed.map(|f| f * 0.5)).unwrap_or(self.rate)
    }
}

/// A searched point's final run (longer than the tries) can just miss at the edge the
/// search found: run it once more at [`FINAL_RETRY`] of the rate rather than report a rate
/// that did not hold. Returns the miss to record when it is to be retried.
pub fn final_retry(searched: bool, verdict: Verdict, runs_so_far: usize) -> Option<Miss> {
    match verdict {
        Verdict::Missed(miss) if searched && runs_so_far == 1 => Some(miss),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLO: Duration = Duration::from_millis(5);
    const LATENCY: Verdict = Verdict::Missed(Miss::Latency { p99_ms: 9.0, slo_ms: 5.0 });
    const CPU: Verdict = Verdict::Missed(Miss::CpuCap { utilization: 0.97 });

    fn observed(offered: f64) -> Observed {
        Observed { offered_rps: offered, achieved_rps: offered, error_ratio: 0.0, p99_us: 1000, utilization: Some(0.5) }
    }

    #[test]
    fn judge_names_the_first_criterion_missed() {
        assert_eq!(judge(&observed(1000.0), SLO), Verdict::Held);
        let pinned = Observed { utilization: Some(0.96), error_ratio: 0.5, ..observed(1000.0) };
        assert_eq!(judge(&pinned, SLO), Verdict::Missed(Miss::CpuCap { utilization: 0.96 }), "CPU before errors");
        let errors = Observed { error_ratio: 0.02, achieved_rps: 10.0, ..observed(1000.0) };
        assert_eq!(judge(&errors, SLO), Verdict::Missed(Miss::Errors { ratio: 0.02 }));
        let slow = Observed { achieved_rps: 940.0, p99_us: 9000, ..observed(1000.0) };
        assert_eq!(
            judge(&slow, SLO),
            Verdict::Missed(Miss::Throughput { achieved_rps: 940.0, offered_rps: 1000.0 }),
            "throughput before latency"
        );
        let late = Observed { p99_us: 5001, ..observed(1000.0) };
        assert_eq!(judge(&late, SLO), Verdict::Missed(Miss::Latency { p99_ms: 5.001, slo_ms: 5.0 }));
        assert_eq!(judge(&Observed { p99_us: 5000, ..observed(1000.0) }, SLO), Verdict::Held, "p99 = SLO holds");
        assert_eq!(judge(&Observed { utilization: None, ..observed(1.0) }, SLO), Verdict::Held, "uncapped");
    }

    #[test]
    fn starts_at_a_third_of_the_probe_and_no_lower_than_20() {
        assert_eq!(Search::new(3000.0, 4).rate(), 1000.0);
        assert_eq!(Search::new(30.0, 4).rate(), 20.0);
        assert_eq!(Search::new(3000.0, 4).first(), Next::Try(1000.0));
    }

    #[test]
    fn held_steps_up_aimed_by_utilization() {
        let mut s = Search::new(3000.0, 4);
        // At 40 % of the cap, 85 % of it is 1000 × 0.85 / 0.4 = 2125.
        let (step, next) = s.observe(Verdict::Held, Some(0.4));
        assert_eq!(step, StepOutcome::Judged(Verdict::Held));
        assert_eq!(next, Next::Try(2125.0));
        // Aim bounded to ×4 per step, and at least ×1.05.
        let mut s = Search::new(3000.0, 4);
        assert_eq!(s.observe(Verdict::Held, Some(0.05)).1, Next::Try(4000.0));
        let mut s = Search::new(3000.0, 4);
        assert_eq!(s.observe(Verdict::Held, Some(0.84)).1, Next::Try(1050.0));
        // Uncapped: no utilization, so double.
        let mut s = Search::new(3000.0, 4);
        assert_eq!(s.observe(Verdict::Held, None).1, Next::Try(2000.0));
    }

    #[test]
    fn missed_bisects_down() {
        let mut s = Search::new(3000.0, 4);
        assert_eq!(s.observe(CPU, Some(0.97)).1, Next::Try(500.0), "nothing held yet: halve");
        assert_eq!(s.observe(Verdict::Held, Some(0.5)).1, Next::Try(750.0), "between best held and lowest failed");
        assert_eq!(s.observe(CPU, Some(0.97)).1, Next::Try(625.0));
        assert_eq!(s.final_rate(), 500.0);
    }

    #[test]
    fn a_latency_miss_with_cpu_to_spare_is_measured_again_once() {
        let mut s = Search::new(3000.0, 4);
        let (step, next) = s.observe(LATENCY, Some(0.41));
        assert_eq!(step, StepOutcome::TriedAgain { miss: Miss::Latency { p99_ms: 9.0, slo_ms: 5.0 }, cpu: 0.41 });
        assert_eq!(next, Next::Again(1000.0));
        assert_eq!(s.tries(), 0, "a second look is not a try");
        // The second look is believed, whatever it says.
        let (step, next) = s.observe(LATENCY, Some(0.41));
        assert_eq!(step, StepOutcome::Judged(LATENCY));
        assert_eq!(next, Next::Try(500.0));
        // … and a held second look counts as held.
        let mut s = Search::new(3000.0, 4);
        s.observe(LATENCY, Some(0.41));
        assert_eq!(s.observe(Verdict::Held, Some(0.5)).1, Next::Try(1700.0));
    }

    #[test]
    fn other_misses_and_busy_latency_misses_are_believed_at_once() {
        for (verdict, u) in [(LATENCY, Some(0.9)), (LATENCY, None), (CPU, Some(0.5))] {
            let mut s = Search::new(3000.0, 4);
            let (step, next) = s.observe(verdict, u);
            assert_eq!(step, StepOutcome::Judged(verdict), "{verdict:?} at {u:?}");
            assert_eq!(next, Next::Try(500.0));
        }
    }

    #[test]
    fn converged_stops_with_the_best_held() {
        let mut s = Search::new(3000.0, 8);
        s.observe(Verdict::Held, Some(0.5)); // → 1700
        s.observe(CPU, Some(0.97)); // → 1350
        s.observe(Verdict::Held, Some(0.7)); // → 1525
        s.observe(Verdict::Held, Some(0.8)); // → 1612.5
        assert_eq!(s.rate(), 1612.5);
        // Between 1612.5 and 1700 the next try (1656.25) is within 3 %: stop.
        assert_eq!(s.observe(Verdict::Held, Some(0.8)).1, Next::Stop(SearchEnd::Converged));
        assert_eq!(s.final_rate(), 1612.5);
    }

    #[test]
    fn an_exhausted_budget_stops_with_the_best_held() {
        let mut s = Search::new(3000.0, 2);
        assert_eq!(s.observe(Verdict::Held, Some(0.2)).1, Next::Try(4000.0));
        assert_eq!(s.observe(CPU, Some(1.0)).1, Next::Stop(SearchEnd::Budget));
        assert_eq!(s.final_rate(), 1000.0);
        assert_eq!(s.tries(), 2);
    }

    #[test]
    fn nothing_held_stops_with_none_and_measures_below_the_lowest_miss() {
        let mut s = Search::new(3000.0, 2);
        s.observe(CPU, Some(1.0));
        assert_eq!(s.observe(CPU, Some(1.0)).1, Next::Stop(SearchEnd::NothingHeld));
        assert_eq!(s.final_rate(), 250.0, "half of the lowest rate that failed (500)");
        let none = Search::new(3000.0, 0);
        assert_eq!(none.first(), Next::Stop(SearchEnd::NothingHeld));
        assert_eq!(none.final_rate(), 1000.0);
    }

    #[test]
    fn a_final_run_that_missed_is_retried_once_and_only_when_searched() {
        let miss = Miss::Latency { p99_ms: 9.0, slo_ms: 5.0 };
        assert_eq!(final_retry(true, Verdict::Missed(miss), 1), Some(miss));
        assert_eq!(final_retry(true, Verdict::Missed(miss), 2), None, "the retry is final");
        assert_eq!(final_retry(false, Verdict::Missed(miss), 1), None, "a fixed rate is measured as given");
        assert_eq!(final_retry(true, Verdict::Held, 1), None);
    }
}
