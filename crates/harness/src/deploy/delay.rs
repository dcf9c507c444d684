//! A delay between the instances and the store (`sweep --store-rtt`): on loopback Redis
//! answers in tens of µs, in a real deployment it is a network round trip away. The proxy
//! is its own process (`authbench delay-proxy`, in its own cgroup, its CPU counted as the
//! rig's) that forwards every byte in both directions and holds each chunk for half of a
//! *hold time* after it was read.
//!
//! Tokio's timer wheel has 1 ms resolution, too coarse for 0.5 ms, so the proxy uses plain
//! threads that sleep on the kernel's high-resolution timers (`nanosleep`) with the timer
//! slack lowered to 1 ns: no busy spinning, which would take a core of this 2-core machine.
//!
//! Forwarding itself costs time (four thread wake-ups and a second loopback hop per round
//! trip: 0.2–0.6 ms on the VMs measured, more under load), so holding each chunk for the
//! target would overshoot it. The harness therefore *steers* the hold time ([`Steer`]):
//! it pings the store through the proxy and straight, and moves the hold until what the
//! proxy adds, forwarding included, is the target. What it achieves is measured and
//! recorded with every point, not assumed ([`RttProbe`]).

use std::{
    io::{BufRead, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::{io::AsyncWriteExt as _, process::Command};

use super::{Process, free_port};
use crate::cgroup::Cgroup;

/// Forward connections accepted on `listener` to `upstream`, holding each chunk for half
/// of the hold time in each direction. The hold starts at `rtt`; every line read from
/// `control` (the harness's pipe) sets a new one, in nanoseconds. Runs until the process
/// is killed.
pub fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    rtt: Duration,
    control: impl BufRead + Send + 'static,
) -> std::io::Result<()> {
    // Threads inherit the creating thread's timer slack: lower this thread's before any is
    // spawned (the default 50 µs would be a tenth of a 0.5 ms round trip). `thread-self`:
    // `self` would be the process's main thread, not this one.
    let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1");
    let hold_ns = Arc::new(AtomicU64::new(rtt.as_nanos() as u64));
    let steered = hold_ns.clone();
    thread::spawn(move || {
        for line in control.lines() {
            let Ok(line) = line else { break };
            match line.trim().parse::<u64>() {
                Ok(ns) => steered.store(ns, Ordering::Relaxed),
                Err(_) => eprintln!("delay-proxy: ignoring control line {line:?} (want a hold time in ns)"),
            }
        }
    });
    for conn in listener.incoming() {
        let down = conn?;
        let up = match TcpStream::connect(upstream) {
            Ok(up) => up,
            Err(_) => continue, // the client sees its connection closed, as with a dead store
        };
        for s in [&down, &up] {
            s.set_nodelay(true)?;
        }
        let (down2, up2) = (down.try_clone()?, up.try_clone()?);
        let (there, back) = (hold_ns.clone(), hold_ns.clone());
        thread::spawn(move || pipe(down, up, there));
        thread::spawn(move || pipe(up2, down2, back));
    }
    Ok(())
}

/// One direction: a reader stamps each chunk, a writer sends it half the hold time after
/// the stamp. Order is kept (one queue per direction), and a chunk read while an earlier
/// one waits does not wait twice.
fn pipe(mut from: TcpStream, mut to: TcpStream, hold: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (read_at, chunk) in rx {
            let due = read_at + Duration::from_nanos(hold.load(Ordering::Relaxed) / 2);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// The harness's hand on the proxy's hold time: it moves the hold so that the round trip
/// the proxy adds — its hold plus its own forwarding — is the target.
pub struct Steer {
    target_ns: AtomicU64,
    hold_ns: AtomicU64,
    control: tokio::sync::Mutex<tokio::process::ChildStdin>,
}

impl Steer {
    /// Share of the error corrected per step: below 1 so that one noisy median does not
    /// swing the hold.
    const GAIN: f64 = 0.6;

    /// The hold time in force, µs.
    pub fn hold_us(&self) -> f64 {
        self.hold_ns.load(Ordering::Relaxed) as f64 / 1e3
    }

    fn target_us(&self) -> f64 {
        self.target_ns.load(Ordering::Relaxed) as f64 / 1e3
    }

    /// A new target (`--store-rtt` as an axis): the forwarding cost learnt so far stays,
    /// so the hold starts at the new target less that cost.
    pub async fn retarget(&self, rtt: Duration) {
        let (old, hold) = (self.target_us(), self.hold_us());
        let new = crate::record::micros(rtt);
        if new == old {
            return;
        }
        self.target_ns.store(rtt.as_nanos() as u64, Ordering::Relaxed);
        self.set_hold((new - (old - hold)).clamp(0.0, new)).await;
    }

    async fn set_hold(&self, us: f64) {
        let ns = (us * 1e3).round() as u64;
        self.hold_ns.store(ns, Ordering::Relaxed);
        let mut control = self.control.lock().await;
        let _ = control.write_all(format!("{ns}\n").as_bytes()).await;
        let _ = control.flush().await;
    }

    /// One correction from round trips the proxy added (µs, through it minus straight to
    /// the store, pair by pair): their median moves the hold. The hold stays within
    /// 0..=target: forwarding never costs less than nothing.
    async fn correct(&self, added_us: Vec<f64>) {
        let Some(added) = crate::record::median(added_us).filter(|m| m.is_finite()) else { return };
        self.set_hold(next_hold_us(self.hold_us(), self.target_us(), added)).await;
    }
}

/// The hold after one correction: move by [`Steer::GAIN`] of the error, within 0..=target.
fn next_hold_us(hold_us: f64, target_us: f64, added_us: f64) -> f64 {
    (hold_us + Steer::GAIN * (target_us - added_us)).clamp(0.0, target_us)
}

/// A running delay proxy in front of the store.
pub struct DelayProxy {
    pub process: Process,
    /// The store's URL through the delay: what the instances are given.
    pub url: String,
    pub steer: Arc<Steer>,
}

/// Start `authbench delay-proxy` (the binary `exe`) in front of the Redis at `store_url`,
/// in `cgroup`, and wait until it accepts connections.
pub async fn start(
    exe: &Path,
    store_url: &str,
    rtt: Duration,
    cgroup: Option<Cgroup>,
    log_dir: &Path,
) -> anyhow::Result<DelayProxy> {
    let upstream = store_url
        .strip_prefix("redis://")
        .map(|rest| rest.trim_end_matches('/'))
        .with_context(|| format!("--store-rtt needs a redis:// store URL, not {store_url}"))?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let log = log_dir.join(format!("delay-proxy-{port}.log"));
    let stderr = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    // At a higher priority (nice −10, inherited by its threads): it stands for a network,
    // which is not starved by the generator on a busy 2-core machine. Where `nice` may not
    // raise priority (not root) it runs at the default one; the achieved delay is measured.
    let mut child = Command::new("nice")
        .args(["-n", "-10"])
        .arg(exe)
        .args(["delay-proxy", "--listen", &listen, "--upstream", upstream, "--rtt"])
        .arg(format!("{}us", rtt.as_micros()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} delay-proxy", exe.display()))?;
    let control = child.stdin.take().context("delay-proxy has no control pipe")?;
    let steer = Arc::new(Steer {
        target_ns: AtomicU64::new(rtt.as_nanos() as u64),
        hold_ns: AtomicU64::new(rtt.as_nanos() as u64),
        control: tokio::sync::Mutex::new(control),
    });
    let mut process = Process::adopt("delay-proxy", child, cgroup, log).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(why) = process.exited() {
            bail!("{why}");
        }
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            let url = format!("redis://{listen}");
            settle(&steer, &url, store_url).await;
            return Ok(DelayProxy { process, url, steer });
        }
        if tokio::time::Instant::now() > deadline {
            process.stop().await;
            bail!("the delay proxy on {listen} did not accept connections within 10s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A first hold time from an idle machine, before any load: a few corrections from
/// back-to-back pings. The probes during the measured windows carry on from here.
async fn settle(steer: &Steer, via: &str, direct: &str) {
    let (Ok(mut a), Ok(mut b)) = (connect(via).await, connect(direct).await) else { return };
    for _ in 0..6 {
        let mut added = Vec::new();
        for _ in 0..15 {
            if let (Some(v), Some(d)) = (ping(&mut a).await, ping(&mut b).await) {
                added.push(v - d);
            }
        }
        steer.correct(added).await;
    }
}

/// Round trips through the delay and straight to the store, sampled during a measured
/// window: what the delay added under load is the difference of their medians. Every
/// [`RttProbe::STEER_EVERY`] pairs also correct the proxy's hold time ([`Steer`]).
#[derive(Default)]
pub struct RttProbe {
    pub via_us: Vec<f64>,
    pub direct_us: Vec<f64>,
    /// The proxy's hold time at the end of the window, µs.
    pub hold_us: Option<f64>,
}

impl RttProbe {
    /// Pairs of pings per correction (0.5 s at the sweep's 50 ms).
    const STEER_EVERY: usize = 10;

    /// Ping both ways every `every` until `stop` fires.
    pub async fn run(
        via: &str,
        direct: &str,
        every: Duration,
        steer: Arc<Steer>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Self {
        let mut probe = Self::default();
        let (Ok(mut a), Ok(mut b)) = (connect(via).await, connect(direct).await) else { return probe };
        let mut tick = tokio::time::interval(every);
        let mut added = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {
                    let (v, d) = (ping(&mut a).await, ping(&mut b).await);
                    probe.via_us.extend(v);
                    probe.direct_us.extend(d);
                    if let (Some(v), Some(d)) = (v, d) {
                        added.push(v - d);
                        if added.len() == Self::STEER_EVERY {
                            steer.correct(std::mem::take(&mut added)).await;
                        }
                    }
                }
            }
        }
        probe.hold_us = Some(steer.hold_us());
        probe
    }
}

/// One `PING`'s round trip, µs (`None` when it failed).
async fn ping(conn: &mut redis::aio::MultiplexedConnection) -> Option<f64> {
    let t = Instant::now();
    redis::cmd("PING").query_async::<String>(conn).await.ok().map(|_| t.elapsed().as_secs_f64() * 1e6)
}

async fn connect(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// Whether an achieved added round trip is close enough to the target: within ±20 % or
/// ±50 µs, whichever is larger.
pub fn within(target: Duration, achieved_us: f64) -> bool {
    let target_us = crate::record::micros(target);
    (achieved_us - target_us).abs() <= (0.2 * target_us).max(50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tolerance_is_20_percent_or_50_us_whichever_is_larger() {
        let half = Duration::from_micros(500);
        assert!(within(half, 600.0) && within(half, 400.0));
        assert!(!within(half, 601.0) && !within(half, 399.0));
        let small = Duration::from_micros(100);
        assert!(within(small, 150.0) && within(small, 50.0), "±50 µs floor");
        assert!(!within(small, 151.0));
        assert!(within(Duration::ZERO, 50.0) && !within(Duration::ZERO, 51.0));
    }

    #[test]
    fn the_hold_moves_against_the_error_and_stays_between_zero_and_the_target() {
        // Forwarding added 300 µs on top of a 500 µs hold: hold less.
        let less = next_hold_us(500.0, 500.0, 800.0);
        assert!((less - 320.0).abs() < 1e-9, "{less}");
        assert!(next_hold_us(100.0, 500.0, 400.0) > 100.0, "too little added: hold more");
        assert_eq!(next_hold_us(50.0, 500.0, 5000.0), 0.0, "never below zero");
        assert_eq!(next_hold_us(480.0, 500.0, 0.0), 500.0, "never above the target");
    }

    /// An echo server behind a proxy; returns the proxy's address.
    fn proxied_echo(rtt: Duration, control: impl BufRead + Send + 'static) -> SocketAddr {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap();
        thread::spawn(move || {
            for conn in echo.incoming() {
                let mut c = conn.unwrap();
                thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = proxy.local_addr().unwrap();
        thread::spawn(move || serve(proxy, upstream, rtt, control));
        addr
    }

    /// 20 one-byte round trips through `c`, sorted.
    fn round_trips(c: &mut TcpStream) -> Vec<Duration> {
        let mut times = Vec::new();
        for i in 0..20u8 {
            let t = Instant::now();
            c.write_all(&[i]).unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i, "bytes come back unchanged and in order");
            times.push(t.elapsed());
        }
        times.sort();
        times
    }

    /// Every round trip takes at least the hold, and not much more on an idle machine
    /// (nothing spins to get there).
    #[test]
    fn each_round_trip_takes_the_hold_both_ways() {
        let rtt = Duration::from_micros(2000);
        let mut c = TcpStream::connect(proxied_echo(rtt, std::io::empty())).unwrap();
        c.set_nodelay(true).unwrap();
        let times = round_trips(&mut c);
        assert!(times[0] >= rtt, "never faster than the hold: {:?}", times[0]);
        assert!(times[10] < rtt * 3, "median {:?} for a {rtt:?} hold", times[10]);
    }

    /// A line on the control pipe sets a new hold for connections already open; a line
    /// that is not a number is ignored.
    #[test]
    fn the_control_pipe_steers_the_hold() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let rtt = Duration::from_millis(40);
        let mut c = TcpStream::connect(proxied_echo(rtt, std::io::BufReader::new(reader))).unwrap();
        c.set_nodelay(true).unwrap();
        assert!(round_trips(&mut c)[0] >= rtt);
        writeln!(writer, "half a millisecond").unwrap();
        writeln!(writer, "{}", Duration::from_millis(4).as_nanos()).unwrap();
        thread::sleep(Duration::from_millis(100));
        let times = round_trips(&mut c);
        assert!(times[0] >= Duration::from_millis(4), "at least the new hold: {:?}", times[0]);
        assert!(times[10] < Duration::from_millis(40), "the new hold, not the old: {:?}", times[10]);
    }
}
