//! The open-loop schedule: request `i` is *intended* to leave at `start + i / rate`,
//! whatever happened to earlier requests. Latency is measured from that intended time, so
//! a stall in the system under test shows up in every request it delayed instead of being
//! hidden by a generator that waited politely (coordinated omission).

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
}

impl Schedule {
    /// `rate` requests per second, starting at `start`. `rate` must be positive.
    pub fn new(start: Instant, rate: f64) -> Self {
        Self { start, interval_ns: 1e9 / rate }
    }

    /// When request `seq` should be sent.
    pub fn intended(&self, seq: u64) -> Instant {
        self.start + Duration::from_nanos((seq as f64 * self.interval_ns) as u64)
    }

    /// How many requests are due by `now` (requests `0..due(now)` should have been sent).
    pub fn due(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as f64;
        (elapsed / self.interval_ns).floor() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_times_are_evenly_spaced_from_the_start() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 1000.0);
        assert_eq!(s.intended(0), t0);
        assert_eq!(s.intended(1), t0 + Duration::from_millis(1));
        assert_eq!(s.intended(2500), t0 + Duration::from_millis(2500));
        // Non-integer intervals do not drift: the 3-millionth request of 3 rps is at 1e6 s.
        let s3 = Schedule::new(t0, 3.0);
        assert_eq!(s3.intended(3_000_000), t0 + Duration::from_secs(1_000_000));
    }

    #[test]
    fn due_counts_every_request_whose_time_has_come() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 100.0); // one per 10 ms
        assert_eq!(s.due(t0), 1, "request 0 is due at the start");
        assert_eq!(s.due(t0 + Duration::from_millis(9)), 1);
        assert_eq!(s.due(t0 + Duration::from_millis(10)), 2);
        assert_eq!(s.due(t0 + Duration::from_secs(1)), 101);
        // A generator that wakes late owes every missed request, not just one.
        let late = t0 + Duration::from_millis(505);
        assert_eq!(s.due(late), 51);
        for i in 0..s.due(late) {
            assert!(s.intended(i) <= late);
        }
        assert!(s.intended(s.due(late)) > late);
    }
}
