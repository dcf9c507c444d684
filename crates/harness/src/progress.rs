//! The live progress line: which system, N and rate, how far through the phase, and how
//! many requests and errors so far. On a terminal it redraws in place; in a log (CI) it
//! prints a line every few seconds instead.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::{Arc, Mutex, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use crate::drive::engine::Progress;

#[derive(Clone, Default)]
pub struct Status {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    label: String,
    phase: String,
    started: Option<Instant>,
    length: Duration,
    counters: Option<Arc<Progress>>,
}

impl Status {
    pub fn step(&self, label: String) {
        if let Ok(mut s) = self.inner.lock() {
            s.label = label;
            s.phase.clear();
            s.started = None;
            s.counters = None;
        }
    }

    pub fn phase(&self, phase: String, length: Duration, counters: Option<Arc<Progress>>) {
        if let Ok(mut s) = self.inner.lock() {
            s.phase = phase;
            s.started = Some(Instant::now());
            s.length = length;
            s.counters = counters;
        }
    }

    /// Attach live counters to the current phase.
    pub fn phase_counters(&self, counters: Arc<Progress>) {
        if let Ok(mut s) = self.inner.lock() {
            s.counters = Some(counters);
        }
    }

    fn render(&self) -> String {
        let Ok(s) = self.inner.lock() else { return String::new() };
        let elapsed = s.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let counts = s
            .counters
            .as_ref()
            .map_or(String::new(), |c| format!(" | done {} err {}", c.done.load(Relaxed), c.errors.load(Relaxed)));
        format!("{} | {} | {:.1}/{:.1}s{}", s.label, s.phase, elapsed, s.length.as_secs_f64(), counts)
    }

    /// Draw until the returned guard is dropped.
    pub fn start_display(&self) -> DisplayGuard {
        let status = self.clone();
        let tty = std::io::stderr().is_terminal();
        let every = if tty { Duration::from_millis(250) } else { Duration::from_secs(5) };
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let line = status.render();
                let mut err = std::io::stderr().lock();
                if tty {
                    let _ = write!(err, "\r\x1b[2K{line}");
                } else {
                    let _ = writeln!(err, "{line}");
                }
                let _ = err.flush();
            }
        });
        DisplayGuard { handle, tty }
    }
}

pub struct DisplayGuard {
    handle: tokio::task::JoinHandle<()>,
    tty: bool,
}

impl DisplayGuard {
    /// Print a permanent line without garbling the progress line.
    pub fn println(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = writeln!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

impl Drop for DisplayGuard {
    fn drop(&mut self) {
        self.handle.abort();
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
