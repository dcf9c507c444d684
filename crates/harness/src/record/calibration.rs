//! `calibration` in `results.json`: how fast the machine was while the run measured, so
//! two runs can be set side by side (`authbench compare`). Machines of one kind differ by
//! up to 3× in CPU speed and syscall cost; a figure from one is not a figure from the
//! other until it is expressed in units both runs measured.

use serde::{Deserialize, Serialize};

/// The probes of one run: at its start and after every step — so drift during a
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
        super::median(self.probes.iter().filter_map(figure).collect())
    }

    /// The lowest and highest value of one probe figure during the run: how far the
    /// machine moved under the measurements (`None` without a value).
    pub fn range(&self, figure: impl Fn(&Probe) -> Option<f64>) -> Option<(f64, f64)> {
        let v: Vec<f64> = self.probes.iter().filter_map(figure).filter(|x| x.is_finite()).collect();
        let lo = v.iter().copied().reduce(f64::min)?;
        let hi = v.iter().copied().reduce(f64::max)?;
        Some((lo, hi))
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
    fn medians_and_ranges_over_the_probes() {
        let c = Calibration { probes: vec![probe(100.0, None), probe(120.0, Some(40.0)), probe(110.0, Some(50.0))] };
        assert_eq!(c.cpu_loop_us(), Some(110.0));
        assert_eq!(c.store_ping_us(), Some(45.0), "only the probes that had a store");
        assert_eq!(c.range(|p| Some(p.cpu_loop_us)), Some((100.0, 120.0)));
        assert_eq!(c.range(|p| p.store_ping_us), Some((40.0, 50.0)));
        assert_eq!(Calibration::default().range(|p| Some(p.cpu_loop_us)), None);
        assert_eq!(Calibration::default().cpu_loop_us(), None);
    }
}
