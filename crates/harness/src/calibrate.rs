//! Calibration probes: how fast this machine is right now, measured the same way in every
//! run — a fixed CPU-bound loop, a loopback TCP round trip, a Redis `PING` — so `authbench
//! compare` can tell a slower machine from a slower system. Each probe takes a few tens of
//! milliseconds and runs between measurements, never during one.

use std::{
    hint::black_box,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

use crate::{
    observe,
    record::{calibration::Probe, median},
};

/// Iterations of the CPU loop: a few milliseconds in a release build.
const LOOP_ITERATIONS: u64 = 4_000_000;
/// Round trips per latency probe.
const ROUND_TRIPS: usize = 200;

/// Take one probe, `at_s` seconds into the run; `store` is the run's Redis, if any.
pub async fn probe(at_s: f64, store: Option<&str>) -> Probe {
    let cpu_loop_us = (0..3).map(|_| cpu_loop_us()).fold(f64::INFINITY, f64::min);
    // The loopback probe blocks on std sockets: keep it off the runtime's threads.
    let loopback_rtt_us = tokio::task::spawn_blocking(loopback_rtt_us).await.ok().flatten().unwrap_or(f64::NAN);
    let store_ping_us = match store {
        Some(url) => store_ping_us(url).await,
        None => None,
    };
    Probe { at_s, cpu_loop_us, loopback_rtt_us, store_ping_us }
}

/// The loop: xorshift and a multiply, data-dependent so it cannot be folded away.
fn spin(iterations: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(i);
    }
    x
}

/// Thread CPU time of one run of the loop, µs (wall time when the thread's CPU time
/// cannot be read). CPU time, not wall time: a preempted or stolen slice does not count.
fn cpu_loop_us() -> f64 {
    let (cpu0, wall0) = (observe::thread_cpu_ns(), Instant::now());
    black_box(spin(black_box(LOOP_ITERATIONS)));
    match (cpu0, observe::thread_cpu_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e3,
        _ => wall0.elapsed().as_secs_f64() * 1e6,
    }
}

/// Median one-byte round trip to an echoing thread over loopback TCP, µs.
fn loopback_rtt_us() -> Option<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    // Accept with a deadline, so a client that never connects cannot leave the thread
    // waiting forever.
    listener.set_nonblocking(true).ok()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        };
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 1];
        while s.read(&mut b)? == 1 {
            s.write_all(&b)?;
        }
        Ok(())
    });
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_nodelay(true).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    let mut b = [0u8; 1];
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        s.write_all(&[1]).ok()?;
        s.read_exact(&mut b).ok()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(s);
    let _ = echo.join();
    median(times)
}

/// Median `PING` round trip to the Redis at `url`, µs.
async fn store_ping_us(url: &str) -> Option<f64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn =
        tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection()).await.ok()?.ok()?;
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_is_deterministic_work() {
        assert_eq!(spin(1000), spin(1000));
        assert_ne!(spin(1000), spin(1001));
        assert!(cpu_loop_us() > 0.0);
    }

    #[tokio::test]
    async fn a_probe_without_a_store_measures_the_machine_and_leaves_the_store_unknown() {
        let p = probe(1.5, None).await;
        assert_eq!(p.at_s, 1.5);
        assert!(p.cpu_loop_us > 0.0 && p.loopback_rtt_us > 0.0, "{p:?}");
        assert_eq!(p.store_ping_us, None);
    }
}
