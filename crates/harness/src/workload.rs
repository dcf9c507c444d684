//! What the generator sends: a pool of logged-in demo users, and for each request which
//! user it is for and which instance the client-side balancer sends it to.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, header};

use crate::{
    drive::{
        client::{Conn, Prepared},
        engine::Workload,
    },
    plan::{Lb, Server, System},
};

/// A user's credential and the instance that issued it.
#[derive(Clone, Debug)]
pub struct Credential {
    pub header: (HeaderName, HeaderValue),
    pub home: usize,
}

/// SplitMix64: decorrelates the user of request `seq` from `seq mod N`. Without it,
/// "user = seq mod users" and "instance = seq mod N" would line up whenever N divides
/// the pool size, and round-robin would secretly be sticky.
fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Instance that serves user `u` under `lb` (for logins; requests use [`ReadWorkload`]).
pub fn login_target(lb: Lb, user: usize, n: usize) -> usize {
    match lb {
        // Login k (made in user order) is the k-th request through the balancer.
        Lb::RoundRobin => user % n,
        Lb::Sticky => user % n,
    }
}

/// Log `users` demo users in through the balancer, a few at a time.
pub async fn login_pool(
    system: System,
    addrs: &[SocketAddr],
    users: usize,
    lb: Lb,
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
                let home = login_target(lb, u, n);
                if conns[home].is_none() {
                    conns[home] = Some(Conn::connect(addrs[home], Duration::from_secs(5)).await?);
                }
                let conn = conns[home].as_mut().context("connection")?;
                out.push((u, login_one(system, conn, u, &password).await?, home));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut creds: Vec<Option<Credential>> = vec![None; users];
    for t in tasks {
        for (u, header, home) in t.await?? {
            creds[u] = Some(Credential { header, home });
        }
    }
    creds.into_iter().enumerate().map(|(u, c)| c.with_context(|| format!("user{u} was not logged in"))).collect()
}

async fn login_one(system: System, conn: &mut Conn, user: usize, password: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let body = serde_json::json!({"username": format!("user{user}"), "password": password});
    let req = Prepared::post_json("/login", &body)?;
    // argon2id at 0.1 core can take a while; logins are not measured.
    let (status, headers, body) = conn.send_with_headers(&req, Duration::from_secs(30)).await?;
    if status != http::StatusCode::OK {
        bail!("login of user{user} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    match system.server() {
        Server::Session => {
            let cookie = headers
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .context("login answered without a session cookie")?;
            Ok((header::COOKIE, HeaderValue::from_str(cookie)?))
        }
        Server::Jwt => {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let token = v["access_token"].as_str().context("login answered without access_token")?;
            Ok((header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?))
        }
    }
}

/// `GET /me` for every request; the balancer picks the instance.
pub struct ReadWorkload {
    requests: Vec<Prepared>,
    homes: Vec<usize>,
    lb: Lb,
    instances: usize,
}

impl ReadWorkload {
    pub fn new(creds: &[Credential], lb: Lb, instances: usize) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(!creds.is_empty(), "no logged-in users");
        let requests = creds
            .iter()
            .map(|c| Ok(Prepared::get("/me")?.with_header(c.header.0.clone(), c.header.1.clone())))
            .collect::<anyhow::Result<_>>()?;
        Ok(Arc::new(Self { requests, homes: creds.iter().map(|c| c.home).collect(), lb, instances: instances.max(1) }))
    }
}

impl Workload for ReadWorkload {
    fn pick(&self, seq: u64) -> (usize, &Prepared) {
        let user = (mix(seq) % self.requests.len() as u64) as usize;
        let target = match self.lb {
            Lb::RoundRobin => (seq % self.instances as u64) as usize,
            Lb::Sticky => self.homes[user],
        };
        (target, &self.requests[user])
    }
}

/// The same request to one target: `authbench load`.
pub struct FixedWorkload(pub Prepared);

impl Workload for FixedWorkload {
    fn pick(&self, _seq: u64) -> (usize, &Prepared) {
        (0, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(users: usize, n: usize) -> Vec<Credential> {
        (0..users)
            .map(|u| Credential {
                header: (header::COOKIE, HeaderValue::from_static("x")),
                home: login_target(Lb::RoundRobin, u, n),
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
                let (t, req) = w.pick(seq);
                per_target[t] += 1;
                let user = w.requests.iter().position(|r| std::ptr::eq(r, req)).unwrap();
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
    fn sticky_always_reaches_home() {
        let n = 4;
        let w = ReadWorkload::new(&creds(64, n), Lb::Sticky, n).unwrap();
        for seq in 0..10_000 {
            let (t, req) = w.pick(seq);
            let user = w.requests.iter().position(|r| std::ptr::eq(r, req)).unwrap();
            assert_eq!(w.homes[user], t);
        }
    }
}
