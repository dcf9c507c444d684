//! A delay between the instances and the store (`sweep --store-rtt`): on loopback Redis
//! answers in tens of µs, in a real deployment it is a network round trip away. The proxy
//! is its own process (`authbench delay-proxy`, in its own cgroup, its CPU counted as the
//! rig's) that forwards every byte in both directions and holds each chunk until half the
//! round trip has passed since it was read.
//!
//! Tokio's timer wheel has 1 ms resolution, too coarse for 0.5 ms, so the proxy uses plain
//! threads that sleep on the kernel's high-resolution timers (`nanosleep`) with the timer
//! slack lowered to 1 ns: no busy spinning, which would take a core of this 2-core machine.
//! What it achieves under load is measured, not assumed ([`RttProbe`]).

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::Stdio,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use super::{Process, free_port};
use crate::cgroup::Cgroup;

/// Forward connections accepted on `listener` to `upstream`, each direction delayed by
/// `rtt / 2`. Runs until the process is killed.
pub fn serve(listener: TcpListener, upstream: SocketAddr, rtt: Duration) -> std::io::Result<()> {
    // Threads inherit the creating thread's timer slack: lower this thread's before any is
    // spawned (the default 50 µs would be a tenth of a 0.5 ms round trip). `thread-self`:
    // `self` would be the process's main thread, not this one.
    let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1");
    let one_way = rtt / 2;
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
        thread::spawn(move || pipe(down, up, one_way));
        thread::spawn(move || pipe(up2, down2, one_way));
    }
    Ok(())
}

/// One direction: a reader stamps each chunk, a writer sends it `delay` after the stamp.
/// Order is kept (one queue per direction), and a chunk read while an earlier one waits
/// does not wait twice.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (read_at, chunk) in rx {
            let due = read_at + delay;
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

/// A running delay proxy in front of the store.
pub struct DelayProxy {
    pub process: Process,
    /// The store's URL through the delay: what the instances are given.
    pub url: String,
    pub rtt: Duration,
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
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} delay-proxy", exe.display()))?;
    let pid = child.id().context("delay-proxy exited immediately")?;
    if let Some(group) = &cgroup
        && let Err(e) = group.add(pid)
    {
        let _ = child.kill().await;
        bail!("cannot move the delay proxy into its cgroup: {e}");
    }
    let mut process = Process { name: "delay-proxy".into(), child, pid, cgroup, stderr_log: log };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(why) = process.exited() {
            bail!("{why}");
        }
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            return Ok(DelayProxy { process, url: format!("redis://{listen}"), rtt });
        }
        if tokio::time::Instant::now() > deadline {
            process.stop().await;
            bail!("the delay proxy on {listen} did not accept connections within 10s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Round trips through the delay and straight to the store, sampled during a measured
/// window: what the delay added under load is the difference of their medians.
#[derive(Default)]
pub struct RttProbe {
    pub via_us: Vec<f64>,
    pub direct_us: Vec<f64>,
}

impl RttProbe {
    /// Ping both ways every `every` until `stop` fires.
    pub async fn run(via: &str, direct: &str, every: Duration, mut stop: tokio::sync::oneshot::Receiver<()>) -> Self {
        let mut probe = Self::default();
        let (Ok(mut a), Ok(mut b)) = (connect(via).await, connect(direct).await) else { return probe };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {
                    for (conn, into) in [(&mut a, &mut probe.via_us), (&mut b, &mut probe.direct_us)] {
                        let t = Instant::now();
                        if redis::cmd("PING").query_async::<String>(conn).await.is_ok() {
                            into.push(t.elapsed().as_secs_f64() * 1e6);
                        }
                    }
                }
            }
        }
        probe
    }
}

async fn connect(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// Whether an achieved added round trip is close enough to the target: within ±20 % or
/// ±50 µs, whichever is larger.
pub fn within(target: Duration, achieved_us: f64) -> bool {
    let target_us = target.as_secs_f64() * 1e6;
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

    /// An echo server behind the proxy: every round trip takes at least the delay, and
    /// not much more on an idle machine (nothing spins to get there).
    #[test]
    fn each_round_trip_takes_the_delay_both_ways() {
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
        let rtt = Duration::from_micros(2000);
        thread::spawn(move || serve(proxy, upstream, rtt));
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
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
        assert!(times[0] >= rtt, "never faster than the delay: {:?}", times[0]);
        assert!(times[10] < rtt * 3, "median {:?} for a {rtt:?} delay", times[10]);
    }
}
