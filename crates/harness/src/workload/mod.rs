//! What the generator sends: a pool of logged-in demo users, and for each request which
//! user it is for and which instance the client-side balancer sends it to.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, header};

mod mixed;
pub mod profile;

pub use mixed::{MixSetup, MixedKind, MixedWorkload};

use crate::{
    drive::{
        client::{Conn, Prepared},
        engine::{Req, Workload},
    },
    plan::{Lb, Server, Spread, System},
};

/// A user's credential and the instance that issued it.
#[derive(Clone, Debug)]
pub struct Credential {
    pub header: (HeaderName, HeaderValue),
    /// JWT only: the refresh token issued with the access token.
    pub refresh: Option<String>,
    pub home: usize,
    /// Whether its user is an admin (may read `/admin`).
    pub admin: bool,
}

/// Whether demo user `user{u}` is an admin: every tenth, as the servers create them.
pub fn demo_admin(u: usize) -> bool {
    u.is_multiple_of(10)
}

/// SplitMix64: decorrelates the user of request `seq` from `seq mod N`. Without it,
/// "user = seq mod users" and "instance = seq mod N" would line up whenever N divides
/// the pool size, and round-robin would secretly be sticky.
pub fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Target that serves user `u`'s login, under every policy (requests use [`ReadWorkload`]):
/// login k (made in user order) is the k-th request through the balancer, and a sticky
/// user's home is where it logged in. Through a proxy there is one target (n = 1).
pub fn login_target(user: usize, n: usize) -> usize {
    user % n
}

/// Log `users` demo users in through the balancer, a few at a time.
pub async fn login_pool(
    system: System,
    addrs: &[SocketAddr],
    users: usize,
    password: &str,
) -> anyhow::Result<Vec<Credential>> {
    let n = addrs.len();
    let parallel = 8.min(users).max(1);
    let mut tasks = Vec::new();
    for lane in 0..parallel {
        let addrs = addrs.to_vec();
        let password = password.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conns: Vec<Option<Conn>> = addrs.iter().map(|_| None).collect();
            let mut out = Vec::new();
            for u in (lane..users).step_by(parallel) {
                let home = login_target(u, n);
                if conns[home].is_none() {
                    conns[home] = Some(Conn::connect(addrs[home], Duration::from_secs(5)).await?);
                }
                let conn = conns[home].as_mut().context("connection")?;
                let (header, refresh) = login_one(system, conn, u, &password).await?;
                out.push((u, header, refresh, home));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut creds: Vec<Option<Credential>> = vec![None; users];
    for t in tasks {
        for (u, header, refresh, home) in t.await?? {
            creds[u] = Some(Credential { header, refresh, home, admin: demo_admin(u) });
        }
    }
    creds.into_iter().enumerate().map(|(u, c)| c.with_context(|| format!("user{u} was not logged in"))).collect()
}

/// A login's credential header and, for JWT, its refresh token.
pub type Login = ((HeaderName, HeaderValue), Option<String>);

/// Log `user{user}` in on `conn`; returns the header that carries the credential.
pub async fn login_one(system: System, conn: &mut Conn, user: usize, password: &str) -> anyhow::Result<Login> {
    let body = serde_json::json!({"username": format!("user{user}"), "password": password});
    let req = Prepared::post_json("/login", &body)?;
    // argon2id at 0.1 core can take a while; logins are not measured.
    let (status, headers, body) = conn.send_with_headers(&req, Duration::from_secs(30)).await?;
    if status != http::StatusCode::OK {
        bail!("login of user{user} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    credential(system.server(), &headers, &body).with_context(|| match system.server() {
        Server::Session => "login answered without a session cookie",
        Server::Jwt => "login answered without access_token",
    })
}

/// What a successful login answered with: the header that carries the credential (the
/// session cookie from `Set-Cookie`, or the access token as a bearer token) and, for JWT,
/// the refresh token.
pub fn credential(server: Server, headers: &http::HeaderMap, body: &[u8]) -> Option<Login> {
    match server {
        Server::Session => {
            let cookie = headers.get(header::SET_COOKIE)?.to_str().ok()?.split(';').next()?;
            Some(((header::COOKIE, HeaderValue::from_str(cookie).ok()?), None))
        }
        Server::Jwt => {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            let token = v["access_token"].as_str()?;
            let bearer = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
            Some(((header::AUTHORIZATION, bearer), v["refresh_token"].as_str().map(str::to_owned)))
        }
    }
}

/// `GET /me` for every request; the balancer picks the instance.
pub struct ReadWorkload {
    requests: Vec<Prepared>,
    homes: Vec<usize>,
    lb: Lb,
    instances: usize,
    /// Zipf (`--live-spread zipf`): the cumulative share of credentials 0..=k, so the k-th
    /// is picked 1/(k+1) as often as the first; `None`: every credential equally often.
    zipf: Option<Vec<f64>>,
    /// Added to every sequence number, moved on by every run ([`Workload::begin`]), so no
    /// run replays the previous one's picks (with a million sessions, a replay would find
    /// every session a near-cache or a database's buffers just saw).
    salt: std::sync::atomic::AtomicU64,
    /// Uniform spread: requests go to credentials `0..active` (all of them unless a mixed
    /// run sized the active users to the rate, [`MixedWorkload`]).
    active: std::sync::atomic::AtomicUsize,
}

impl ReadWorkload {
    pub fn new(creds: &[Credential], lb: Lb, instances: usize) -> anyhow::Result<Arc<Self>> {
        Self::spread(creds, lb, instances, Spread::Uniform)
    }

    /// Requests spread over `creds` as `spread` says.
    pub fn spread(creds: &[Credential], lb: Lb, instances: usize, spread: Spread) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(!creds.is_empty(), "no logged-in users");
        let requests = creds
            .iter()
            .map(|c| Ok(Prepared::get("/me")?.with_header(c.header.0.clone(), c.header.1.clone())))
            .collect::<anyhow::Result<_>>()?;
        let zipf = (spread == Spread::Zipf).then(|| zipf_cdf(creds.len()));
        Ok(Arc::new(Self {
            requests,
            homes: creds.iter().map(|c| c.home).collect(),
            lb,
            instances: instances.max(1),
            zipf,
            salt: std::sync::atomic::AtomicU64::new(0),
            active: std::sync::atomic::AtomicUsize::new(creds.len()),
        }))
    }

    fn user(&self, seq: u64) -> usize {
        let r = mix(seq.wrapping_add(self.salt.load(std::sync::atomic::Ordering::Relaxed)));
        match &self.zipf {
            None => (r % self.active.load(std::sync::atomic::Ordering::Relaxed).max(1) as u64) as usize,
            Some(cdf) => {
                // 53 random bits as a uniform number in [0, 1).
                let u = (r >> 11) as f64 / (1u64 << 53) as f64;
                cdf.partition_point(|&c| c <= u).min(self.requests.len() - 1)
            }
        }
    }
}

/// Cumulative Zipf (s = 1) shares of `n` items: item k has weight 1/(k+1).
fn zipf_cdf(n: usize) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for k in 0..n {
        sum += 1.0 / (k + 1) as f64;
        cdf.push(sum);
    }
    for c in &mut cdf {
        *c /= sum;
    }
    cdf
}

impl Workload for ReadWorkload {
    type Kind = ();

    fn begin(&self) {
        // An odd step far from any run's length: each run starts somewhere new.
        self.salt.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
    }

    fn target(&self, seq: u64) -> usize {
        match self.lb {
            Lb::Sticky => self.homes[self.user(seq)],
            // Through a proxy the generator has one target and the proxy balances.
            Lb::RoundRobin | Lb::HaproxyRr | Lb::HaproxySticky => (seq % self.instances as u64) as usize,
        }
    }

    fn request(&self, seq: u64, _target: usize) -> Req<'_, ()> {
        Req::borrowed(&self.requests[self.user(seq)])
    }
}

/// The same request to one target: `authbench load`.
pub struct FixedWorkload(pub Prepared);

impl Workload for FixedWorkload {
    type Kind = ();

    fn target(&self, _seq: u64) -> usize {
        0
    }

    fn request(&self, _seq: u64, _target: usize) -> Req<'_, ()> {
        Req::borrowed(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(users: usize, n: usize) -> Vec<Credential> {
        (0..users)
            .map(|u| Credential {
                header: (header::COOKIE, HeaderValue::from_static("x")),
                refresh: None,
                home: login_target(u, n),
                admin: demo_admin(u),
            })
            .collect()
    }

    #[test]
    fn round_robin_misses_the_home_instance_n_minus_one_in_n_times() {
        for n in [2usize, 4, 8] {
            // 64 users: n divides the pool, the case where a naive mapping turns sticky.
            let w = ReadWorkload::new(&creds(64, n), Lb::RoundRobin, n).unwrap();
            let total = 100_000u64;
            let mut misses = 0;
            let mut per_target = vec![0u64; n];
            for seq in 0..total {
                let t = w.target(seq);
                per_target[t] += 1;
                let user = w.user(seq);
                if w.homes[user] != t {
                    misses += 1;
                }
            }
            let expected = (n - 1) as f64 / n as f64;
            let got = misses as f64 / total as f64;
            assert!((got - expected).abs() < 0.01, "n={n}: miss rate {got}, expected {expected}");
            assert!(per_target.iter().all(|&c| c == total / n as u64), "even spread: {per_target:?}");
        }
    }

    #[test]
    fn zipf_picks_the_kth_credential_one_kth_as_often_as_the_first() {
        let work = ReadWorkload::spread(&creds(100, 1), Lb::RoundRobin, 1, Spread::Zipf).unwrap();
        let mut counts = [0u64; 100];
        let draws = 200_000;
        for seq in 0..draws {
            counts[work.user(seq)] += 1;
        }
        let h100: f64 = (1..=100).map(|k| 1.0 / k as f64).sum();
        let share = |k: usize| counts[k] as f64 / draws as f64;
        assert!((share(0) - 1.0 / h100).abs() < 0.01, "first: {} vs {}", share(0), 1.0 / h100);
        assert!((share(1) - 0.5 / h100).abs() < 0.01, "second: {}", share(1));
        assert!(counts[99] > 0 && counts[99] < counts[9], "the tail is drawn, less often: {counts:?}");
        let uniform = ReadWorkload::spread(&creds(100, 1), Lb::RoundRobin, 1, Spread::Uniform).unwrap();
        let mut u = [0u64; 100];
        for seq in 0..draws {
            u[uniform.user(seq)] += 1;
        }
        assert!(u.iter().all(|&c| (1600..2400).contains(&c)), "uniform: {u:?}");
    }

    #[test]
    fn a_new_run_does_not_replay_the_last_ones_picks() {
        let work = ReadWorkload::spread(&creds(100_000, 1), Lb::RoundRobin, 1, Spread::Uniform).unwrap();
        work.begin();
        let first: Vec<usize> = (0..1000).map(|seq| work.user(seq)).collect();
        let again: Vec<usize> = (0..1000).map(|seq| work.user(seq)).collect();
        assert_eq!(first, again, "within a run, a sequence number always picks the same user");
        work.begin();
        let next: std::collections::HashSet<usize> = (0..1000).map(|seq| work.user(seq)).collect();
        let shared = first.iter().filter(|u| next.contains(u)).count();
        assert!(shared < 50, "the next run picked {shared} of the last run's 1000 users again");
    }

    #[test]
    fn sticky_always_reaches_home() {
        let n = 4;
        let w = ReadWorkload::new(&creds(64, n), Lb::Sticky, n).unwrap();
        for seq in 0..10_000 {
            assert_eq!(w.homes[w.user(seq)], w.target(seq));
        }
    }
}
