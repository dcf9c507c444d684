//! Where the in-memory deadlines read the time: the session store's idle and absolute
//! timeouts and the login throttle's window. Servers use the system clock
//! ([`Clock::System`], the default); tests hand in a [`ManualClock`] and advance it, so an
//! expiry is checked at exactly the instant it is about, instead of by sleeping past a
//! deadline and hoping the machine kept up.
//!
//! An enum rather than a trait object or a boxed closure: with the system clock, reading the
//! time is a branch and a direct call, with no allocation, lock or indirect call per request.
//! Deadlines kept outside this process (Redis TTLs) cannot follow a manual clock.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The operating system's clocks.
    #[default]
    System,
    /// A test's clock, which moves only when the test advances it.
    Manual(ManualClock),
}

impl Clock {
    /// Monotonic time, for deadlines that only this process keeps.
    pub fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// Unix milliseconds, for times that are also written down (when a session was created).
    pub fn unix_millis(&self) -> u64 {
        match self {
            Clock::System => crate::unix_millis(),
            Clock::Manual(m) => m.unix_millis(),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(m: ManualClock) -> Self {
        Clock::Manual(m)
    }
}

/// A clock that stands still until [`ManualClock::advance`]; clones share one time, so a
/// test keeps a clone and advances the clock the store or throttle reads.
#[derive(Clone, Debug)]
pub struct ManualClock {
    shared: Arc<Manual>,
}

#[derive(Debug)]
struct Manual {
    start: Instant,
    start_unix_ms: u64,
    /// Nanoseconds advanced since `start` (u64: 584 years).
    advanced_ns: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// Starts at the real time of its creation, so Unix times look like today's.
    pub fn new() -> Self {
        let shared =
            Manual { start: Instant::now(), start_unix_ms: crate::unix_millis(), advanced_ns: AtomicU64::new(0) };
        Self { shared: Arc::new(shared) }
    }

    /// Move the time forward by `by`, for every clone.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // SeqCst: a server task on another thread must see the new time once the test has
        // sent it a request after advancing.
        let _ =
            self.shared.advanced_ns.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ns| Some(ns.saturating_add(by)));
    }

    /// How far the clock has been advanced since it was created.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.shared.advanced_ns.load(Ordering::SeqCst))
    }

    pub fn now(&self) -> Instant {
        self.shared.start + self.elapsed()
    }

    pub fn unix_millis(&self) -> u64 {
        let advanced_ms = u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.shared.start_unix_ms.saturating_add(advanced_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let (t0, ms0) = (clock.now(), clock.unix_millis());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!((clock.now(), clock.unix_millis()), (t0, ms0), "real time does not move it");
        manual.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        assert_eq!(clock.unix_millis() - ms0, 1500);
        assert_eq!(manual.elapsed(), Duration::from_millis(1500));
    }

    #[test]
    fn the_system_clock_is_the_default_and_moves_by_itself() {
        let clock = Clock::default();
        assert!(matches!(clock, Clock::System));
        let t0 = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.now() > t0);
        assert!(clock.unix_millis().abs_diff(crate::unix_millis()) < 1000);
    }
}
