//! `calibration` in `results.json`: how fast the machine was while the run measured, so
//! two runs can be set side by side (`authbench compare`). Machines of one kind differ by
//! up to 3× in CPU speed and syscall cost; a figure from one is not a figure from the
//! other until it is expressed in units both runs measured.

use serde::{Deserialize, Serialize};

/// The probes of one run: at its start, after every step, at its end — so drift during a
/// long run shows as a spread, not as a change in the systems.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub probes: Vec<Probe>,
}

/// One calibration probe.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    /// Seconds since the run started.
    pub at_s: f64,
    /// Thread CPU time of a fixed CPU-bound loop, µs (best of three): plain computation
    /// speed.
    pub cpu_loop_us: f64,
    /// Median round trip of one byte over a loopback TCP connection to a thread of
    /// authbench's own, µs: the kernel's share of every request on this rig.
    pub loopback_rtt_us: f64,
    /// Median round trip of a Redis `PING` to the run's store, µs (`null` without a store).
    pub store_ping_us: Option<f64>,
}

impl Calibration {
    /// The median of one probe figure over the run (`None` when no probe has it).
    pub fn median(&self, figure: impl Fn(&Probe) -> Option<f64>) -> Option<f64> {
        let mut v: Vec<f64> = self.probes.iter().filter_map(figure).filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
    }

    /// How far one probe figure moved during the run: max ÷ min − 1 (`None` with fewer
    /// than two probes).
    pub fn drift(&self, figure: impl Fn(&Probe) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.probes.iter().filter_map(figure).filter(|x| *x > 0.0).collect();
        let (lo, hi) = v.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        (v.len() >= 2).then(|| hi / lo - 1.0)
    }

    pub fn cpu_loop_us(&self) -> Option<f64> {
        self.median(|p| Some(p.cpu_loop_us))
    }

    pub fn loopback_rtt_us(&self) -> Option<f64> {
        self.median(|p| Some(p.loopback_rtt_us))
    }

    pub fn store_ping_us(&self) -> Option<f64> {
        self.median(|p| p.store_ping_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(cpu: f64, store: Option<f64>) -> Probe {
        Probe { at_s: 0.0, cpu_loop_us: cpu, loopback_rtt_us: 20.0, store_ping_us: store }
    }

    #[test]
    fn medians_and_drift_over_the_probes() {
        let c = Calibration { probes: vec![probe(100.0, None), probe(120.0, Some(40.0)), probe(110.0, Some(50.0))] };
        assert_eq!(c.cpu_loop_us(), Some(110.0));
        assert_eq!(c.store_ping_us(), Some(45.0), "only the probes that had a store");
        assert!((c.drift(|p| Some(p.cpu_loop_us)).unwrap() - 0.2).abs() < 1e-12);
        let one = Calibration { probes: vec![probe(100.0, None)] };
        assert_eq!(one.drift(|p| Some(p.cpu_loop_us)), None);
        assert_eq!(Calibration::default().cpu_loop_us(), None);
    }
}
