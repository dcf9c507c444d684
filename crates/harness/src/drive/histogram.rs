//! Latency bookkeeping: HdrHistograms in microseconds, 3 significant digits, as the
//! measurement rules require. Each worker owns one (no locks on the hot path); they are
//! merged when a point ends.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

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
        summarize(&self.0)
    }

    /// The histogram itself, for writers of the standard formats (`load --hlog`).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.0
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

/// The summary of any histogram, whatever its bounds: `authbench merge` summarises the
/// sums of histograms read from files, which need not have been made by [`Latency::new`].
pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: (h.mean() * 10.0).round() / 10.0,
    }
}

/// One histogram per second of a measured window (`load --hlog`), filled by all workers.
/// A worker records into its own [`SecondRecorder`] and hands that over only when its
/// requests move on to another second: one lock per worker and second, none per request.
#[derive(Debug)]
pub struct PerSecond {
    start: Instant,
    /// `None` until a worker hands over a second; 139 KB per second once filled, so a
    /// 10-minute window holds about 80 MB — only when asked for.
    slots: Mutex<Vec<Option<Latency>>>,
}

impl PerSecond {
    /// Seconds of the window starting at `start`; a last partial second gets its own slot.
    pub fn new(start: Instant, window: Duration) -> Arc<Self> {
        let seconds = window.as_secs() as usize + usize::from(window.subsec_nanos() > 0);
        Arc::new(Self { start, slots: Mutex::new(vec![None; seconds.max(1)]) })
    }

    pub fn recorder(self: &Arc<Self>) -> SecondRecorder {
        SecondRecorder { shared: self.clone(), second: 0, current: Latency::new() }
    }

    /// The histograms, first second first (empty ones for seconds nothing was recorded in).
    pub fn take(&self) -> Vec<Latency> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *slots).into_iter().map(Option::unwrap_or_default).collect()
    }
}

/// One worker's histogram of the second it is in (see [`PerSecond`]).
#[derive(Debug)]
pub struct SecondRecorder {
    shared: Arc<PerSecond>,
    second: usize,
    current: Latency,
}

impl SecondRecorder {
    /// Record `us` for a request whose reference time (intended send time in open loop)
    /// was `at`: a second holds the requests *due* in it, as the window counts them.
    pub fn record_us(&mut self, at: Instant, us: u64) {
        let second = at.saturating_duration_since(self.shared.start).as_secs() as usize;
        if second != self.second {
            // A worker's requests come in send order, so this happens about once a second.
            self.flush();
            self.second = second;
        }
        self.current.record_us(us);
    }

    /// Hand what was recorded over to the shared histograms (the worker is done, or moved on).
    pub fn flush(&mut self) {
        if self.current.count() == 0 {
            return;
        }
        // A std Mutex: nothing awaits while it is held, and it is taken once a second.
        let mut slots = self.shared.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Only requests inside the window are recorded, so the slot exists; the last
        // slot takes anything at the window's very end, never dropped.
        let last = slots.len().saturating_sub(1);
        if let Some(slot) = slots.get_mut(self.second.min(last)) {
            slot.get_or_insert_with(Latency::new).merge(&self.current);
        }
        drop(slots);
        self.current.0.reset();
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
    fn per_second_histograms_split_by_reference_time_and_add_up() {
        let t0 = Instant::now();
        let seconds = PerSecond::new(t0, Duration::from_millis(2500));
        let (mut a, mut b) = (seconds.recorder(), seconds.recorder());
        a.record_us(t0, 10);
        a.record_us(t0 + Duration::from_millis(999), 20);
        a.record_us(t0 + Duration::from_millis(1000), 30);
        b.record_us(t0 + Duration::from_millis(2400), 40);
        b.record_us(t0 + Duration::from_millis(100), 50); // out of order: still second 0
        a.flush();
        b.flush();
        b.flush(); // nothing left: no double count
        let h = seconds.take();
        assert_eq!(h.iter().map(Latency::count).collect::<Vec<_>>(), vec![3, 1, 1]);
        assert_eq!(h[2].summary().max, 40);
    }

    #[test]
    fn empty_histograms_summarise_to_zero() {
        assert_eq!(Latency::new().summary(), LatencySummary::default());
    }
}
