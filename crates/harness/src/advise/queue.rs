//! The queueing estimates `advise` states (docs/advise.md): the utilization law for
//! capacity, and M/M/c (Erlang C) waits for latency — Erlang C only for a whole number of
//! cores; a fractional allowance is one server with demand D / c. Open arrivals, FCFS.

/// A pool of servers one request class queues for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Station {
    /// Servers (whole cores, or 1 for a fractional allowance or a one-thread store).
    pub servers: u32,
    /// Mean service time of the requests it serves, seconds (already divided by the
    /// allowance for a fractional one).
    pub mean_service_s: f64,
    /// Busy fraction of each server, 0..1.
    pub utilization: f64,
}

impl Station {
    /// `cores` of CPU serving `busy_cores` (cores' worth of work per second) in requests of
    /// `mean_demand_s` CPU each.
    pub fn cpu(cores: f64, busy_cores: f64, mean_demand_s: f64) -> Station {
        let whole = cores >= 1.0 && (cores - cores.round()).abs() < 1e-9;
        if whole {
            Station { servers: cores.round() as u32, mean_service_s: mean_demand_s, utilization: busy_cores / cores }
        } else {
            Station { servers: 1, mean_service_s: mean_demand_s / cores, utilization: busy_cores / cores }
        }
    }

    /// Probability an arrival waits (Erlang C; for one server, ρ). 1 when saturated.
    pub fn p_wait(&self) -> f64 {
        erlang_c(self.servers, self.utilization)
    }

    /// The `q` quantile of the time spent waiting, seconds (∞ when saturated):
    /// P(W > t) = C · e^(−c(1−ρ)t/S), solved for 1 − q.
    pub fn wait_quantile(&self, q: f64) -> f64 {
        if self.utilization >= 1.0 {
            return f64::INFINITY;
        }
        let c = self.p_wait();
        let tail = 1.0 - q;
        if c <= tail {
            return 0.0;
        }
        let rate = f64::from(self.servers) * (1.0 - self.utilization) / self.mean_service_s;
        (c / tail).ln() / rate
    }

    /// Mean wait, seconds: C · S / (c (1 − ρ)).
    pub fn mean_wait(&self) -> f64 {
        if self.utilization >= 1.0 {
            return f64::INFINITY;
        }
        self.p_wait() * self.mean_service_s / (f64::from(self.servers) * (1.0 - self.utilization))
    }
}

/// Erlang C: the probability that an arrival at `c` servers, each `rho` busy, waits.
pub fn erlang_c(c: u32, rho: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    if rho >= 1.0 {
        return 1.0;
    }
    let a = rho * f64::from(c);
    // Σ_{k<c} a^k/k! and a^c/c!, accumulated term by term (no factorial overflow).
    let (mut sum, mut term) = (0.0, 1.0);
    for k in 0..c {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    let last = term / (1.0 - rho);
    last / (sum + last)
}

/// Units of `busy` work that fill `per_unit` each at `target` utilization, rounded up,
/// at least `min`.
pub fn units_needed(busy: f64, per_unit: f64, target: f64, min: u32) -> u32 {
    let n = (busy / (per_unit * target) - 1e-9).ceil();
    if n.is_finite() { (n.max(f64::from(min))) as u32 } else { u32::MAX }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn erlang_c_matches_hand_computed_cases() {
        // One server: P(wait) = ρ.
        assert!(close(erlang_c(1, 0.5), 0.5));
        // Two servers, a = 1 Erlang (ρ = 0.5): (a²/2!·2/(2−1)) / (1 + a + 1) = 1/3.
        assert!(close(erlang_c(2, 0.5), 1.0 / 3.0));
        // Four servers at a = 3 (ρ = 0.75): 0.5094…, from the textbook table.
        assert!((erlang_c(4, 0.75) - 0.509_434).abs() < 1e-5);
        assert_eq!(erlang_c(3, 0.0), 0.0);
        assert_eq!(erlang_c(3, 1.2), 1.0);
    }

    #[test]
    fn mm1_wait_tail_and_mean() {
        // M/M/1 at ρ = 0.5, S = 1 ms: mean wait ρS/(1−ρ) = 1 ms; P(W > t) = 0.5·e^(−0.5t/S),
        // so the p99 wait is 2 ms · ln 50 and the median wait is 0 (half never wait).
        let s = Station { servers: 1, mean_service_s: 1e-3, utilization: 0.5 };
        assert!(close(s.mean_wait(), 1e-3));
        assert!(close(s.wait_quantile(0.99), 2e-3 * 50f64.ln()));
        assert_eq!(s.wait_quantile(0.5), 0.0);
        let full = Station { utilization: 1.0, ..s };
        assert!(full.wait_quantile(0.99).is_infinite());
    }

    #[test]
    fn a_fractional_allowance_is_one_slower_server() {
        // 0.5 core doing 0.25 cores of 100 µs requests: one server of 200 µs at ρ = 0.5.
        let s = Station::cpu(0.5, 0.25, 100e-6);
        assert_eq!((s.servers, s.utilization), (1, 0.5));
        assert!(close(s.mean_service_s, 200e-6));
        // Two whole cores stay two servers of the request's own demand.
        let s = Station::cpu(2.0, 1.0, 100e-6);
        assert_eq!((s.servers, s.utilization), (2, 0.5));
        // 1.5 cores is not whole: one server at S / 1.5.
        assert_eq!(Station::cpu(1.5, 0.75, 150e-6).servers, 1);
    }

    #[test]
    fn units_are_rounded_up_at_the_target() {
        // 2.1 cores of work on 1-core units at 70 %: 2.1 / 0.7 = 3 exactly → 3, not 4.
        assert_eq!(units_needed(2.1, 1.0, 0.7, 1), 3);
        assert_eq!(units_needed(2.2, 1.0, 0.7, 1), 4);
        assert_eq!(units_needed(0.0, 1.0, 0.7, 1), 1);
    }
}
