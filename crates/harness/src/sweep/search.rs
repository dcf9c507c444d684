//! Find-max as decisions without I/O: whether a measured rate held ([`judge`]), which rate
//! to measure next ([`Search`]), and whether a final run is run again ([`final_retry`]).
//! The sweep measures; this module only decides, so every branch has a unit test.
//!
//! Capacity is measured, never computed: the highest rate at which the system answered
//! at least 95 % of what was offered with at most 1 % errors. Latency is not part of it
//! (a 0.1-core CFS cap can pause an instance for 9 ms whatever the load, so a p99 objective
//! would end the search below capacity); it is measured apart, at
//! [`LatencyRun::SHARE`](crate::record::LatencyRun::SHARE) of the capacity found, and judged
//! there ([`slo_met`](crate::record::point::slo_met)).
//!
//! The search is guided by the utilization law. Each try measures the instances' CPU
//! utilization U at rate X; since U = X·D, the rate that would use the whole cap is X/U.
//! While every try holds, the next one aims just past it, at [`OVERSHOOT`] × X/U, and at
//! least [`MIN_STEP`] above the last rate that held: CPU per request falls as load rises
//! (more requests share each wake-up), so X/U measured below the cap underestimates what the
//! cap holds. A rate that fails brackets the capacity; then the search bisects between the
//! best rate that held and the lowest that failed. It starts at [`START`] of a short
//! closed-loop probe — the throughput the system gave when kept saturated, so capacity is
//! near it — and while nothing has held it steps down by [`DOWN`]. A search whose every try
//! held ends [`SearchEnd::Unbracketed`]: its rate is a lower bound, not the capacity.

use crate::record::{Miss, SearchEnd, StepOutcome, Verdict};

/// What a measured window showed, as far as the verdict goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub error_ratio: f64,
}

/// Whether the system held a rate: errors ≤ 1 % and achieved ≥ 95 % of offered. The first
/// criterion missed is the reason.
pub fn judge(o: &Observed) -> Verdict {
    if o.error_ratio > 0.01 {
        return Verdict::Missed(Miss::Errors { ratio: o.error_ratio });
    }
    if o.achieved_rps < 0.95 * o.offered_rps {
        return Verdict::Missed(Miss::Throughput { achieved_rps: o.achieved_rps, offered_rps: o.offered_rps });
    }
    Verdict::Held
}

/// How far past the cap's predicted rate (X/U) an ascending try aims: far enough that an
/// overload shows as achieved < 95 % of offered in a short window.
const OVERSHOOT: f64 = 1.1;
/// The least an ascending try rises over the best rate that held.
const MIN_STEP: f64 = 1.25;
/// The first try, as a share of the closed-loop probe's throughput.
const START: f64 = 0.9;
/// While nothing has held, the next try is this share of the lowest rate that failed.
const DOWN: f64 = 0.8;
/// Steps closer than this to the last try end the search.
const CONVERGED: f64 = 0.03;
/// What a final run that missed is retried at, as a share of its rate.
pub const FINAL_RETRY: f64 = 0.9;

/// What to do after a measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Measure this rate: the next try.
    Try(f64),
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
}

impl Search {
    /// Start at [`START`] of the closed-loop `ceiling` (at least 20 rps), with `budget` tries.
    pub fn new(ceiling: f64, budget: usize) -> Self {
        Self { rate: (ceiling * START).max(20.0), best: None, failed: None, tries: 0, budget }
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
        self.tries += 1;
        if verdict.held() {
            self.best = Some(self.best.map_or(rate, |b| b.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
        let next = match (self.best, self.failed) {
            (Some(lo), Some(hi)) => (lo + hi) / 2.0,
            (None, Some(hi)) => hi * DOWN,
            (Some(lo), None) => {
                // Utilization-law estimate, bounded to at most 4x per step.
                let target = utilization.filter(|u| *u > 0.01).map_or(lo * 2.0, |u| OVERSHOOT * lo / u);
                target.clamp(lo * MIN_STEP, lo * 4.0)
            }
            (None, None) => rate,
        };
        let step = StepOutcome::Judged(verdict);
        if ((next - rate) / rate).abs() < CONVERGED && self.best.is_some() {
            return (step, Next::Stop(SearchEnd::Converged));
        }
        if self.tries >= self.budget {
            let end = match (self.best, self.failed) {
                (None, _) => SearchEnd::NothingHeld,
                (Some(_), None) => SearchEnd::Unbracketed,
                (Some(_), Some(_)) => SearchEnd::Budget,
            };
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

/// Final runs a searched point makes at most: the first and [`FINAL_RETRY`] steps down.
pub const FINAL_RUNS: usize = 3;

/// A searched point's final run (longer than the tries) can miss at the edge the search
/// found — more so in a mixed run, where a few 25 ms logins more or fewer in a short try move
/// its throughput: run it again at [`FINAL_RETRY`] of the rate, up to [`FINAL_RUNS`] runs
/// in all, rather than report a rate that did not hold. Returns the miss to record when it
/// is to be retried.
pub fn final_retry(searched: bool, verdict: Verdict, runs_so_far: usize) -> Option<Miss> {
    match verdict {
        Verdict::Missed(miss) if searched && runs_so_far < FINAL_RUNS => Some(miss),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Verdict = Verdict::Missed(Miss::Throughput { achieved_rps: 900.0, offered_rps: 1000.0 });

    fn observed(offered: f64) -> Observed {
        Observed { offered_rps: offered, achieved_rps: offered, error_ratio: 0.0 }
    }

    #[test]
    fn judge_names_the_first_criterion_missed_and_ignores_latency() {
        assert_eq!(judge(&observed(1000.0)), Verdict::Held);
        let errors = Observed { error_ratio: 0.02, achieved_rps: 10.0, ..observed(1000.0) };
        assert_eq!(judge(&errors), Verdict::Missed(Miss::Errors { ratio: 0.02 }), "errors before throughput");
        let slow = Observed { achieved_rps: 940.0, ..observed(1000.0) };
        assert_eq!(judge(&slow), Verdict::Missed(Miss::Throughput { achieved_rps: 940.0, offered_rps: 1000.0 }));
        assert_eq!(judge(&Observed { achieved_rps: 950.0, ..observed(1000.0) }), Verdict::Held, "95 % holds");
        assert_eq!(judge(&Observed { error_ratio: 0.01, ..observed(1000.0) }), Verdict::Held, "1 % errors holds");
    }

    #[test]
    fn starts_near_the_probe_and_no_lower_than_20() {
        assert!((Search::new(1000.0 / START, 4).rate() - 1000.0).abs() < 1e-9);
        assert_eq!(Search::new(2000.0, 4).rate(), 1800.0, "90 % of the probe");
        assert_eq!(Search::new(10.0, 4).rate(), 20.0);
        assert_eq!(Search::new(2000.0, 4).first(), Next::Try(1800.0));
    }

    #[test]
    fn held_steps_up_aimed_by_utilization() {
        let mut s = Search::new(1000.0 / START, 4);
        // At 40 % of the cap, the cap is at 1000 / 0.4 = 2500: aim 10 % past it, 2750.
        let (step, next) = s.observe(Verdict::Held, Some(0.4));
        assert_eq!(step, StepOutcome::Judged(Verdict::Held));
        assert_eq!(next, Next::Try(2750.0));
        // Aim bounded to ×4 per step, and at least ×1.25: a rate that holds at a pinned cap
        // costs less CPU per request than X/U says, so small steps would never find the edge.
        let mut s = Search::new(1000.0 / START, 4);
        assert_eq!(s.observe(Verdict::Held, Some(0.05)).1, Next::Try(4000.0));
        let mut s = Search::new(1000.0 / START, 4);
        assert_eq!(s.observe(Verdict::Held, Some(1.1)).1, Next::Try(1250.0));
        let mut s = Search::new(1000.0 / START, 4);
        assert_eq!(s.observe(Verdict::Held, Some(0.6)).1, Next::Try(1000.0 * 1.1 / 0.6), "10 % past the cap");
        // Uncapped: no utilization, so double.
        let mut s = Search::new(1000.0 / START, 4);
        assert_eq!(s.observe(Verdict::Held, None).1, Next::Try(2000.0));
    }

    #[test]
    fn missed_bisects_down() {
        let mut s = Search::new(1000.0 / START, 4);
        assert_eq!(s.observe(SLOW, Some(1.0)).1, Next::Try(800.0), "nothing held yet: 80 % of the miss");
        assert_eq!(s.observe(Verdict::Held, Some(0.5)).1, Next::Try(900.0), "between best held and lowest failed");
        assert_eq!(s.observe(SLOW, Some(1.0)).1, Next::Try(850.0));
        assert_eq!(s.final_rate(), 800.0);
    }

    #[test]
    fn converged_stops_with_the_best_held() {
        let mut s = Search::new(1000.0 / START, 8);
        s.observe(Verdict::Held, Some(0.5)); // → 2200
        s.observe(SLOW, Some(1.0)); // → 1600
        s.observe(Verdict::Held, Some(0.7)); // → 1900
        s.observe(Verdict::Held, Some(0.8)); // → 2050
        assert_eq!(s.rate(), 2050.0);
        s.observe(Verdict::Held, Some(0.9)); // → 2125
        // Between 2125 and 2200 the next try (2162.5) is within 3 %: stop.
        assert_eq!(s.observe(Verdict::Held, Some(0.9)).1, Next::Stop(SearchEnd::Converged));
        assert_eq!(s.final_rate(), 2125.0);
    }

    #[test]
    fn an_exhausted_budget_stops_with_the_best_held() {
        let mut s = Search::new(1000.0 / START, 2);
        assert_eq!(s.observe(Verdict::Held, Some(0.2)).1, Next::Try(4000.0));
        assert_eq!(s.observe(SLOW, Some(1.0)).1, Next::Stop(SearchEnd::Budget));
        assert_eq!(s.final_rate(), 1000.0);
        assert_eq!(s.tries(), 2);
        // Every try held: the capacity was never bracketed.
        let mut s = Search::new(1000.0 / START, 2);
        s.observe(Verdict::Held, Some(0.2));
        assert_eq!(s.observe(Verdict::Held, Some(0.9)).1, Next::Stop(SearchEnd::Unbracketed));
        assert_eq!(s.final_rate(), 4000.0);
    }

    #[test]
    fn nothing_held_stops_with_none_and_measures_below_the_lowest_miss() {
        let mut s = Search::new(1000.0 / START, 2);
        s.observe(SLOW, Some(1.0));
        assert_eq!(s.observe(SLOW, Some(1.0)).1, Next::Stop(SearchEnd::NothingHeld));
        assert_eq!(s.final_rate(), 400.0, "half of the lowest rate that failed (800)");
        let none = Search::new(1000.0 / START, 0);
        assert_eq!(none.first(), Next::Stop(SearchEnd::NothingHeld));
        assert_eq!(none.final_rate(), 1000.0);
    }

    #[test]
    fn a_final_run_that_missed_is_retried_once_and_only_when_searched() {
        let miss = Miss::Throughput { achieved_rps: 900.0, offered_rps: 1000.0 };
        assert_eq!(final_retry(true, Verdict::Missed(miss), 1), Some(miss));
        assert_eq!(final_retry(true, Verdict::Missed(miss), 2), Some(miss), "a second step down");
        assert_eq!(final_retry(true, Verdict::Missed(miss), 3), None, "the third run is final");
        assert_eq!(final_retry(false, Verdict::Missed(miss), 1), None, "a fixed rate is measured as given");
        assert_eq!(final_retry(true, Verdict::Held, 1), None);
    }
}
