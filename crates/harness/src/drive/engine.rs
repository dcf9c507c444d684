//! The timing loop. Open loop: a scheduler hands out requests at their intended times to
//! per-instance queues, and each connection's worker sends what is queued; latency runs
//! from the intended time. Closed loop: each worker sends its next request as soon as the
//! previous answer arrives (a max-throughput probe, latency from the actual send).
//!
//! Every request whose intended (open) or actual (closed) send time falls in the
//! measurement window is counted exactly once: as a status, a timeout, a connection
//! error, or — if the run ended before it could be sent — as unsent.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime},
};

use tokio::time::sleep_until;

use super::{
    client::{Conn, Prepared, SendError},
    histogram::{Latency, LatencySummary, PerSecond, SecondRecorder},
    route::{Route, RouteOutcome, RouteTally},
    schedule::Schedule,
};

/// What to send. `target` must be cheap and pure (the scheduler calls it for every
/// request); `request` may take state, such as a single-use refresh token, that
/// `on_response` then gives back.
pub trait Workload: Send + Sync + 'static {
    /// What a ticket says a request was (`()` for workloads that need no answers back).
    type Kind: Copy + std::fmt::Debug + Send + Sync + 'static;

    /// Which target request `seq` goes to.
    fn target(&self, seq: u64) -> usize;

    /// What to send as request `seq`; `target` is where the scheduler sent it (what
    /// `target(seq)` answered then — a workload whose routing changes during a run must
    /// not ask again).
    fn request(&self, seq: u64, target: usize) -> Req<'_, Self::Kind>;

    /// Called once as every run starts. Sequence numbers start at 0 in every run, so a
    /// workload that picks from a large set moves its starting point here: otherwise each
    /// run would replay the previous one's picks, and whatever the previous run cached
    /// would make the next one look faster.
    fn begin(&self) {}

    /// Called before [`begin`](Workload::begin) with the run's rate (`None`: closed loop),
    /// for a workload whose requests depend on it (a mix sizes its active users to it).
    fn at_rate(&self, _rate: Option<f64>) {}

    /// The answer to a request that carried a ticket; `status` 0 when there was none
    /// (timeout, broken connection).
    fn on_response(&self, _ticket: Ticket<Self::Kind>, _status: u16, _headers: &http::HeaderMap, _body: &[u8]) {}

    /// The latency of an answered request that carried a ticket, µs from its intended send
    /// time, inside the measurement window or not (a timeline keeps its own).
    fn on_latency(&self, _ticket: Ticket<Self::Kind>, _us: u64) {}
}

/// A request, borrowed from a prepared set or built for this one send.
pub struct Req<'a, K> {
    pub prepared: std::borrow::Cow<'a, Prepared>,
    pub ticket: Option<Ticket<K>>,
}

impl<'a, K> Req<'a, K> {
    pub fn borrowed(p: &'a Prepared) -> Self {
        Self { prepared: std::borrow::Cow::Borrowed(p), ticket: None }
    }
}

/// Identifies a stateful request to `Workload::on_response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket<K> {
    pub kind: K,
    pub target: u32,
    pub user: u32,
    /// Whatever else the workload needs back (e.g. which credential the request carried).
    pub tag: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Constant arrival rate, requests per second.
    Open { rate: f64 },
    /// This many connections in total, each sending back to back.
    Closed { connections: usize },
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub targets: Vec<SocketAddr>,
    /// Open loop: connections (and workers) per target.
    pub connections_per_target: usize,
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    /// Per request; also how long the run waits for stragglers at the end.
    pub timeout: Duration,
}

/// What only some callers ask of a run (`authbench load --start-at/--hlog`); the default
/// is what [`run`] does.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Begin the warm-up at this wall-clock instant (after connecting), so generators on
    /// several machines measure the same window.
    pub start_at: Option<StartAt>,
    /// Keep one histogram per second of the window ([`Outcome::per_second`]).
    pub per_second: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct StartAt {
    pub at: SystemTime,
    /// A start time already further in the past than this when the load is ready is
    /// refused ([`TooLate`]): that generator would measure a different window.
    pub max_late: Duration,
}

/// The start time had passed by more than `max_late` when the load was ready to begin.
#[derive(Debug, thiserror::Error)]
#[error(
    "the start time was {} ms in the past when the load was ready to begin (more than the {} ms allowed late): not starting",
    late.as_millis(),
    max_late.as_millis()
)]
pub struct TooLate {
    pub late: Duration,
    pub max_late: Duration,
}

/// Live counters for the progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub latency: Latency,
    /// Requests due (open) or sent (closed) inside the window.
    pub requests: u64,
    /// Responses that arrived inside the window (any status).
    pub completed: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect: u64,
    /// Connection broke mid-request.
    pub io: u64,
    /// Due inside the window but never sent before the run ended (the system fell behind).
    pub unsent: u64,
    pub window: Duration,
    pub offered_rps: Option<f64>,
    pub achieved_rps: f64,
    /// Open loop: how late the scheduler handed requests out (the generator's own share
    /// of the measured latency).
    pub scheduler_lag: Option<LatencySummary>,
    /// The same counts per route (requests never sent are in `unsent` only: which route
    /// they would have gone to was never decided).
    pub routes: BTreeMap<Route, RouteOutcome>,
    /// Wall-clock time the measured window began.
    pub window_start: Option<SystemTime>,
    /// With [`Options::start_at`]: how long after that instant the run began (zero when on time).
    pub start_late: Option<Duration>,
    /// With [`Options::per_second`]: `latency` split by the second of the window each
    /// request was due in (the last may be a partial second); empty otherwise.
    pub per_second: Vec<Latency>,
}

impl Outcome {
    /// Requests that did not get a 2xx/3xx answer.
    pub fn failed(&self) -> u64 {
        let bad_status: u64 = self.by_status.iter().filter(|(s, _)| **s >= 400).map(|(_, n)| n).sum();
        bad_status + self.timeouts + self.connect + self.io + self.unsent
    }

    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.failed() as f64 / self.requests as f64 }
    }

    fn absorb(&mut self, t: Tally) {
        if let Some(mut seconds) = t.seconds {
            seconds.flush();
        }
        self.latency.merge(&t.latency);
        self.requests += t.requests;
        self.completed += t.completed;
        for (status, n) in t.by_status {
            *self.by_status.entry(status).or_default() += n;
        }
        self.timeouts += t.timeouts;
        self.connect += t.connect;
        self.io += t.io;
        for (route, o) in t.routes.into_map() {
            self.routes.entry(route).or_default().absorb(&o);
        }
    }
}

/// One worker's private counts, merged at the end.
#[derive(Default)]
struct Tally {
    latency: Latency,
    requests: u64,
    completed: u64,
    by_status: BTreeMap<u16, u64>,
    timeouts: u64,
    connect: u64,
    io: u64,
    routes: RouteTally,
    /// Only with [`Options::per_second`].
    seconds: Option<SecondRecorder>,
}

impl Tally {
    fn new(per_second: Option<&Arc<PerSecond>>) -> Self {
        Self { seconds: per_second.map(PerSecond::recorder), ..Self::default() }
    }
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

impl Tally {
    /// Send one request on `conn` (opened on demand) and account for it. `reference` is
    /// the time latency is measured from: the intended send time in open loop.
    async fn exchange<W: Workload>(
        &mut self,
        conn: &mut Option<Conn>,
        ctx: &Ctx<'_>,
        workload: &W,
        req: Req<'_, W::Kind>,
        reference: Instant,
    ) {
        let Ctx { addr, window, timeout, progress } = *ctx;
        let counted = window.contains(reference);
        let route = Route::of(req.prepared.uri.path());
        if counted {
            self.requests += 1;
            self.routes.get(route).requests += 1;
        }
        // A connection the server already closed while it sat idle is not a failure of
        // this request: open a new one instead of counting an I/O error.
        if conn.as_ref().is_some_and(Conn::is_closed) {
            *conn = None;
        }
        if conn.is_none() {
            match Conn::connect(addr, timeout).await {
                Ok(c) => *conn = Some(c),
                Err(_) => {
                    if counted {
                        self.connect += 1;
                        self.routes.get(route).failed += 1;
                    }
                    progress.errors.fetch_add(1, Relaxed);
                    if let Some(t) = req.ticket {
                        workload.on_response(t, 0, &http::HeaderMap::new(), &[]);
                    }
                    // Do not spin on a dead target.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return;
                }
            }
        }
        let Some(c) = conn.as_mut() else { return };
        let result = c.send_with_headers(&req.prepared, timeout).await;
        let done = Instant::now();
        if let Some(t) = req.ticket {
            match &result {
                Ok((status, headers, body)) => {
                    workload.on_latency(t, done.saturating_duration_since(reference).as_micros() as u64);
                    workload.on_response(t, status.as_u16(), headers, body);
                }
                Err(_) => workload.on_response(t, 0, &http::HeaderMap::new(), &[]),
            }
        }
        match result {
            Ok((status, _headers, _body)) => {
                if counted {
                    let us = done.saturating_duration_since(reference).as_micros() as u64;
                    self.latency.record_us(us);
                    if let Some(seconds) = &mut self.seconds {
                        seconds.record_us(reference, us);
                    }
                    *self.by_status.entry(status.as_u16()).or_default() += 1;
                    let r = self.routes.get(route);
                    r.latency.record_us(us);
                    if status.as_u16() >= 400 {
                        r.failed += 1;
                    }
                }
                if window.contains(done) {
                    self.completed += 1;
                }
                progress.done.fetch_add(1, Relaxed);
                if status.as_u16() >= 400 {
                    progress.errors.fetch_add(1, Relaxed);
                }
            }
            Err(e) => {
                *conn = None;
                if counted {
                    match e {
                        SendError::Timeout(_) => self.timeouts += 1,
                        SendError::Io(_) => self.io += 1,
                    }
                    self.routes.get(route).failed += 1;
                }
                progress.errors.fetch_add(1, Relaxed);
            }
        }
    }
}

/// What every exchange of one worker shares.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    addr: SocketAddr,
    window: Window,
    timeout: Duration,
    progress: &'a Progress,
}

#[derive(Clone, Copy)]
struct Job {
    intended: Instant,
    seq: u64,
}

/// Run one load phase against `spec.targets`.
pub async fn run<W: Workload>(spec: &Spec, workload: Arc<W>, progress: Arc<Progress>) -> anyhow::Result<Outcome> {
    run_with(spec, workload, progress, Options::default()).await
}

/// [`run`], with a wall-clock start and/or per-second histograms.
pub async fn run_with<W: Workload>(
    spec: &Spec,
    workload: Arc<W>,
    progress: Arc<Progress>,
    options: Options,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!spec.targets.is_empty(), "no targets to send load to");
    anyhow::ensure!(!spec.duration.is_zero(), "duration must be greater than zero");
    workload.at_rate(match spec.mode {
        Mode::Open { rate } => Some(rate),
        Mode::Closed { .. } => None,
    });
    workload.begin();
    match spec.mode {
        Mode::Open { rate } => {
            anyhow::ensure!(rate.is_finite() && rate > 0.0, "rate must be a positive number, got {rate}");
            open_loop(spec, rate, workload, progress, options).await
        }
        Mode::Closed { connections } => {
            anyhow::ensure!(connections > 0, "connections must be at least 1");
            closed_loop(spec, connections, workload, progress, options).await
        }
    }
}

/// When the run's clock starts: `lead` from now, or at [`Options::start_at`] (sleeping
/// until `lead` before it). Returns the start and, with a start time, the lateness.
async fn start_clock(options: &Options, lead: Duration) -> Result<(Instant, Option<Duration>), TooLate> {
    let Some(StartAt { at, max_late }) = options.start_at else {
        return Ok((Instant::now() + lead, None));
    };
    let (now, wall) = (Instant::now(), SystemTime::now());
    match at.duration_since(wall) {
        Ok(ahead) => {
            let start = now + ahead;
            sleep_until(start.checked_sub(lead).unwrap_or(start).into()).await;
            Ok((start, Some(Duration::ZERO)))
        }
        Err(passed) if passed.duration() > max_late => Err(TooLate { late: passed.duration(), max_late }),
        Err(passed) => Ok((now + lead, Some(passed.duration() + lead))),
    }
}

/// The wall-clock time of `t`, for the files other machines' runs are aligned with.
fn wall_clock(t: Instant) -> SystemTime {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match t.checked_duration_since(now) {
        Some(ahead) => wall + ahead,
        None => wall - now.duration_since(t),
    }
}

async fn open_loop<W: Workload>(
    spec: &Spec,
    rate: f64,
    workload: Arc<W>,
    progress: Arc<Progress>,
    options: Options,
) -> anyhow::Result<Outcome> {
    let per_target = spec.connections_per_target.max(1);
    // Connect everything before the clock starts, so set-up is not measured as latency.
    let mut conns = Vec::new();
    for &addr in &spec.targets {
        for _ in 0..per_target {
            conns.push((addr, Conn::connect(addr, spec.timeout).await.ok()));
        }
    }

    let (start, start_late) = start_clock(&options, Duration::from_millis(20)).await?;
    let window = Window { start: start + spec.warmup, end: start + spec.warmup + spec.duration };
    // Converted now, before the run, so that a clock adjusted during the run does not move it.
    let window_start = Some(wall_clock(window.start));
    let per_second = options.per_second.then(|| PerSecond::new(window.start, spec.duration));
    let drain_deadline = window.end + spec.timeout;
    let queues: Vec<_> = spec.targets.iter().map(|_| async_channel::unbounded::<Job>()).collect();

    let mut workers = Vec::new();
    for (i, (addr, conn)) in conns.into_iter().enumerate() {
        let target = i / per_target;
        let rx = queues[target].1.clone();
        let workload = workload.clone();
        let progress = progress.clone();
        let timeout = spec.timeout;
        let mut tally = Tally::new(per_second.as_ref());
        workers.push(tokio::spawn(async move {
            let mut conn = conn;
            loop {
                let job = tokio::select! {
                    job = rx.recv() => match job { Ok(j) => j, Err(_) => break },
                    _ = sleep_until(drain_deadline.into()) => break,
                };
                let req = workload.request(job.seq, target);
                let route = Route::of(req.prepared.uri.path());
                let ctx = Ctx { addr, window, timeout, progress: &progress };
                let exchange = tally.exchange(&mut conn, &ctx, &*workload, req, job.intended);
                if tokio::time::timeout_at(drain_deadline.into(), exchange).await.is_err() {
                    // Still waiting for an answer when the run is over: a timeout.
                    if window.contains(job.intended) {
                        tally.timeouts += 1;
                        tally.routes.get(route).failed += 1;
                    }
                    break;
                }
            }
            tally
        }));
    }
    let senders: Vec<_> = queues.into_iter().map(|(tx, _)| tx).collect();

    // The scheduler runs on its own OS thread: tokio's timer has 1 ms granularity, which
    // would add up to a millisecond of fake latency to every request; a thread sleep is
    // accurate to tens of microseconds. Its own lateness is recorded, so the generator's
    // contribution to latency is visible in the results.
    let scheduler_workload = workload.clone();
    let scheduler = tokio::task::spawn_blocking(move || {
        let schedule = Schedule::new(start, rate);
        let mut lag = Latency::new();
        let mut seq = 0u64;
        let mut scheduled_in_window = 0u64;
        loop {
            let now = Instant::now();
            if now >= window.end {
                break;
            }
            let due = schedule.due(now);
            while seq < due {
                let intended = schedule.intended(seq);
                if intended >= window.end {
                    break;
                }
                let target = scheduler_workload.target(seq);
                if window.contains(intended) {
                    scheduled_in_window += 1;
                    lag.record_us(now.saturating_duration_since(intended).as_micros() as u64);
                }
                let _ = senders[target % senders.len()].try_send(Job { intended, seq });
                seq += 1;
            }
            let next = schedule.intended(seq).min(window.end);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        (scheduled_in_window, lag)
    });
    let (scheduled_in_window, scheduler_lag) = scheduler.await?;

    let mut outcome = Outcome {
        window: spec.duration,
        offered_rps: Some(rate),
        scheduler_lag: Some(scheduler_lag.summary()),
        window_start,
        start_late,
        ..Outcome::default()
    };
    for w in workers {
        outcome.absorb(w.await?);
    }
    outcome.per_second = per_second.map(|p| p.take()).unwrap_or_default();
    outcome.unsent = scheduled_in_window.saturating_sub(outcome.requests);
    outcome.requests = scheduled_in_window;
    outcome.achieved_rps = outcome.completed as f64 / spec.duration.as_secs_f64();
    Ok(outcome)
}

async fn closed_loop<W: Workload>(
    spec: &Spec,
    connections: usize,
    workload: Arc<W>,
    progress: Arc<Progress>,
    options: Options,
) -> anyhow::Result<Outcome> {
    let (start, start_late) = start_clock(&options, Duration::ZERO).await?;
    let window = Window { start: start + spec.warmup, end: start + spec.warmup + spec.duration };
    // Converted now, before the run, so that a clock adjusted during the run does not move it.
    let window_start = Some(wall_clock(window.start));
    let per_second = options.per_second.then(|| PerSecond::new(window.start, spec.duration));
    let next = Arc::new(AtomicU64::new(0));
    let targets: Arc<[SocketAddr]> = spec.targets.clone().into();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (workload, progress, next, targets) = (workload.clone(), progress.clone(), next.clone(), targets.clone());
        let timeout = spec.timeout;
        let mut tally = Tally::new(per_second.as_ref());
        workers.push(tokio::spawn(async move {
            // One lazily opened connection per target: a worker follows the workload's
            // choice of instance, so sticky balancing holds in closed loop too.
            let mut conns: Vec<Option<Conn>> = targets.iter().map(|_| None).collect();
            loop {
                let sent = Instant::now();
                if sent >= window.end {
                    break;
                }
                let seq = next.fetch_add(1, Relaxed);
                let target = workload.target(seq) % targets.len();
                let req = workload.request(seq, target);
                let ctx = Ctx { addr: targets[target], window, timeout, progress: &progress };
                tally.exchange(&mut conns[target], &ctx, &*workload, req, sent).await;
            }
            tally
        }));
    }
    let mut outcome =
        Outcome { window: spec.duration, offered_rps: None, window_start, start_late, ..Outcome::default() };
    for w in workers {
        outcome.absorb(w.await?);
    }
    outcome.per_second = per_second.map(|p| p.take()).unwrap_or_default();
    outcome.achieved_rps = outcome.completed as f64 / spec.duration.as_secs_f64();
    Ok(outcome)
}
