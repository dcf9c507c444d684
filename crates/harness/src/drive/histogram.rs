//! Latency bookkeeping: HdrHistograms in microseconds, 3 significant digits, as the
//! measurement rules require. Each worker owns one (no locks on the hot path); they are
//! merged when a point ends.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hdrhistogram::{
    Histogram,
    serialization::{Serializer as _, V2DeflateSerializer},
};
use serde::{Deserialize, Serialize};

/// Highest latency tracked: one minute. Anything slower is clamped (and is a timeout anyway).
const MAX_US: u64 = 60_000_000;

#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

/// The percentiles every point reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // 1 µs .. 60 s at 3 significant digits: bounds are constants, so this cannot fail.
        #[allow(clippy::expect_used)]
        let h = Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid");
        Self(h)
    }

    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, MAX_US));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> LatencySummary {
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            p50: self.0.value_at_quantile(0.50),
            p90: self.0.value_at_quantile(0.90),
            p99: self.0.value_at_quantile(0.99),
            p999: self.0.value_at_quantile(0.999),
            max: self.0.max(),
            mean: (self.0.mean() * 10.0).round() / 10.0,
        }
    }

    /// HdrHistogram V2 + DEFLATE, base64: the interchange format other HdrHistogram tools
    /// read, so runs can be merged later.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        match V2DeflateSerializer::new().serialize(&self.0, &mut buf) {
            Ok(_) => STANDARD.encode(buf),
            Err(_) => String::new(),
        }
    }

    pub fn from_base64(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text).ok()?;
        let mut d = hdrhistogram::serialization::Deserializer::new();
        d.deserialize(&mut bytes.as_slice()).ok().map(Latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Latency::new();
        for us in 1..=10_000 {
            h.record_us(us);
        }
        let s = h.summary();
        // 3 significant digits: within 0.1 %.
        assert!((4995..=5005).contains(&s.p50), "{s:?}");
        assert!((9890..=9910).contains(&s.p99), "{s:?}");
        assert!((10_000..=10_010).contains(&s.max), "{s:?}");
        assert!((s.mean - 5000.5).abs() < 10.0, "{s:?}");
    }

    #[test]
    fn merging_adds_counts_and_serialisation_round_trips() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record_us(100);
        b.record_us(100_000);
        b.record_us(0); // clamped to 1 µs, never lost
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!((100_000..=100_100).contains(&a.summary().max), "{:?}", a.summary());
        assert!((100..=101).contains(&a.summary().p50), "median of (1, 100, 100000) is 100");
        let back = Latency::from_base64(&a.to_base64()).unwrap();
        assert_eq!(back.count(), 3);
        assert_eq!(back.summary(), a.summary());
    }

    #[test]
    fn empty_histograms_summarise_to_zero() {
        assert_eq!(Latency::new().summary(), LatencySummary::default());
    }
}
