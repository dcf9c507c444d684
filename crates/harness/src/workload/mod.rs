//! What the generator sends: a pool of logged-in demo users, and for each request which
//! user it is for and which instance the client-side balancer sends it to.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, header};

pub mod profile;

use crate::{
    drive::{
        client::{Conn, Prepared},
        engine::{Req, Ticket, Workload},
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
                let (header, refresh) = login_one(system, conn, u, &password).await?;
                out.push((u, header, refresh, home));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut creds: Vec<Option<Credential>> = vec![None; users];
    for t in tasks {
        for (u, header, refresh, home) in t.await?? {
            creds[u] = Some(Credential { header, refresh, home });
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
        }))
    }

    fn user(&self, seq: u64) -> usize {
        let r = mix(seq.wrapping_add(self.salt.load(std::sync::atomic::Ordering::Relaxed)));
        match &self.zipf {
            None => (r % self.requests.len() as u64) as usize,
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
            Lb::RoundRobin => (seq % self.instances as u64) as usize,
            Lb::Sticky => self.homes[self.user(seq)],
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

/// The mixed workload's requests whose answers it needs back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixedKind {
    /// Spends a refresh token; the answer holds the next one.
    Refresh,
    /// A churn login; the answer holds the credential its logout will spend.
    Login,
    Logout,
}

/// A mix derived from how users behave ([`profile::UserProfile`]): mostly `/me`, some
/// `/admin` by admins, refresh-token rotation (JWT), and a login and a logout per session. Single-use tokens are kept in per-instance pools:
/// a refresh or logout is sent to the instance whose pool it came from, so the mix works
/// with per-instance stores too (what fails is what the balancer gets wrong for /me).
pub struct MixedWorkload {
    read: Arc<ReadWorkload>,
    admin: Vec<Option<Prepared>>,
    server: Server,
    logins: Vec<Prepared>,
    /// Per instance: refresh tokens that instance issued (JWT).
    refresh: Vec<std::sync::Mutex<Vec<String>>>,
    /// Per instance: credentials from churn logins, waiting for their logout.
    churn: Vec<std::sync::Mutex<Vec<String>>>,
    /// [`profile::Mix::bounds`]: where `/me`, `/admin`, `/refresh` and `/logout` end.
    bounds: [u64; 4],
}

impl MixedWorkload {
    pub fn new(
        system: System,
        creds: &[Credential],
        lb: Lb,
        instances: usize,
        password: &str,
        mix: profile::Mix,
    ) -> anyhow::Result<Arc<Self>> {
        let read = ReadWorkload::new(creds, lb, instances)?;
        let admin = creds
            .iter()
            .enumerate()
            .map(|(u, c)| {
                (u % 10 == 0)
                    .then(|| Prepared::get("/admin").map(|p| p.with_header(c.header.0.clone(), c.header.1.clone())))
                    .transpose()
            })
            .collect::<anyhow::Result<_>>()?;
        let logins = (0..creds.len())
            .map(|u| {
                Prepared::post_json(
                    "/login",
                    &serde_json::json!({"username": format!("user{u}"), "password": password}),
                )
            })
            .collect::<anyhow::Result<_>>()?;
        let n = instances.max(1);
        let refresh: Vec<_> = (0..n).map(|_| std::sync::Mutex::new(Vec::new())).collect();
        for c in creds {
            if let (Some(t), Ok(mut pool)) = (&c.refresh, refresh[c.home % n].lock()) {
                pool.push(t.clone());
            }
        }
        Ok(Arc::new(Self {
            read,
            admin,
            server: system.server(),
            logins,
            refresh,
            churn: (0..n).map(|_| std::sync::Mutex::new(Vec::new())).collect(),
            bounds: mix.bounds(),
        }))
    }

    fn pop(pool: &std::sync::Mutex<Vec<String>>) -> Option<String> {
        pool.lock().ok()?.pop()
    }

    fn push(pool: &std::sync::Mutex<Vec<String>>, value: String) {
        if let Ok(mut p) = pool.lock() {
            p.push(value);
        }
    }

    fn dynamic(&self, seq: u64, target: usize, kind: MixedKind) -> Option<Req<'_, MixedKind>> {
        let ticket = Some(Ticket { kind, target: target as u32, user: self.user(seq) as u32, tag: 0 });
        let prepared = match kind {
            MixedKind::Refresh => {
                let token = Self::pop(&self.refresh[target])?;
                Prepared::post_json("/refresh", &serde_json::json!({ "refresh_token": token })).ok()?
            }
            MixedKind::Login => {
                return Some(Req { prepared: std::borrow::Cow::Borrowed(&self.logins[self.user(seq)]), ticket });
            }
            MixedKind::Logout => {
                let credential = Self::pop(&self.churn[target])?;
                match self.server {
                    Server::Session => Prepared {
                        method: http::Method::POST,
                        uri: http::Uri::from_static("/logout"),
                        headers: vec![(header::COOKIE, HeaderValue::from_str(&credential).ok()?)],
                        body: Default::default(),
                    },
                    Server::Jwt => {
                        Prepared::post_json("/logout", &serde_json::json!({ "refresh_token": credential })).ok()?
                    }
                }
            }
        };
        Some(Req { prepared: std::borrow::Cow::Owned(prepared), ticket })
    }
}

impl MixedWorkload {
    /// Position of request `seq` in the mix, in parts per million.
    fn slot(seq: u64) -> u64 {
        mix(seq ^ 0x5bd1_e995) % profile::PPM
    }

    /// Whose credential request `seq` uses: an admin's for `/admin`, else the read user's.
    fn user(&self, seq: u64) -> usize {
        let user = self.read.user(seq);
        let slot = Self::slot(seq);
        if (self.bounds[0]..self.bounds[1]).contains(&slot) { user - user % 10 } else { user }
    }
}

impl Workload for MixedWorkload {
    type Kind = MixedKind;

    fn target(&self, seq: u64) -> usize {
        match self.read.lb {
            Lb::RoundRobin => self.read.target(seq),
            Lb::Sticky => self.read.homes[self.user(seq)],
        }
    }

    fn request(&self, seq: u64, target: usize) -> Req<'_, MixedKind> {
        let r = Self::slot(seq);
        let user = self.user(seq);
        let [me, admin, refresh, logout] = self.bounds;
        // A refresh or logout with no token in its pool yet is sent as a /me.
        let special = match r {
            _ if r < me => None,
            _ if r < admin => self.admin[user].as_ref().map(Req::borrowed),
            _ if r < refresh && self.server == Server::Jwt => self.dynamic(seq, target, MixedKind::Refresh),
            _ if r < refresh => None,
            _ if r < logout => self.dynamic(seq, target, MixedKind::Logout),
            _ => self.dynamic(seq, target, MixedKind::Login),
        };
        special.unwrap_or_else(|| Req::borrowed(&self.read.requests[self.read.user(seq)]))
    }

    fn on_response(&self, ticket: Ticket<MixedKind>, status: u16, headers: &http::HeaderMap, body: &[u8]) {
        if status != 200 {
            return; // the token was spent or the request failed; it leaves the pool
        }
        let t = ticket.target as usize % self.refresh.len();
        let refresh_token = || {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["refresh_token"].as_str().map(str::to_owned))
        };
        match (ticket.kind, self.server) {
            (MixedKind::Refresh, _) => {
                if let Some(token) = refresh_token() {
                    Self::push(&self.refresh[t], token);
                }
            }
            (MixedKind::Login, Server::Jwt) => {
                if let Some(token) = refresh_token() {
                    Self::push(&self.churn[t], token);
                }
            }
            (MixedKind::Login, Server::Session) => {
                let cookie =
                    headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
                if let Some(c) = cookie {
                    Self::push(&self.churn[t], c.to_owned());
                }
            }
            (MixedKind::Logout, _) => {}
        }
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
    fn mixed_keeps_its_proportions_and_sticky_routes_every_credential_home() {
        let n = 4;
        let users = 40;
        let creds: Vec<Credential> = (0..users)
            .map(|u| Credential {
                header: (header::AUTHORIZATION, HeaderValue::from_static("Bearer x")),
                refresh: Some(format!("r{u}")),
                home: u % n,
            })
            .collect();
        let mix = profile::UserProfile::WEB_APP.mix(Server::Jwt);
        let w = MixedWorkload::new(System::JWT_HS256, &creds, Lb::Sticky, n, "pw", mix).unwrap();
        let (mut me, mut admin, mut refresh, mut login, mut logout) = (0, 0, 0, 0, 0);
        let total = 100_000u64;
        for seq in 0..total {
            let target = w.target(seq);
            let req = w.request(seq, target);
            let path = req.prepared.uri.path().to_owned();
            match path.as_str() {
                "/me" => me += 1,
                "/admin" => {
                    admin += 1;
                    assert_eq!(w.user(seq) % 10, 0, "only admins are sent to /admin");
                }
                "/refresh" => refresh += 1,
                "/login" => login += 1,
                "/logout" => logout += 1,
                other => panic!("unexpected {other}"),
            }
            if !matches!(path.as_str(), "/login" | "/logout" | "/refresh") {
                assert_eq!(target, creds[w.user(seq)].home, "sticky: a credential goes home");
            }
            // Give every refresh its token back, as a 200 would.
            if let Some(t) = req.ticket.filter(|t| t.kind == MixedKind::Refresh) {
                let body = br#"{"refresh_token":"new"}"#;
                w.on_response(t, 200, &http::HeaderMap::new(), body);
            }
        }
        let share = |x: u64| x as f64 / total as f64;
        // 600 reads (5 % of them /admin), 5 refreshes, a login and a logout per session;
        // the logouts find no token (no login was answered) and go out as /me.
        assert!((share(me) - 571.0 / 607.0).abs() < 0.005, "me {}", share(me));
        assert!((share(admin) - 30.0 / 607.0).abs() < 0.003, "admin {}", share(admin));
        assert!((share(refresh) - 5.0 / 607.0).abs() < 0.001, "refresh {}", share(refresh));
        assert!((share(login) - 1.0 / 607.0).abs() < 0.0005, "login {}", share(login));
        // No login answered, so no churn credentials: logouts fall back to /me.
        assert_eq!(logout, 0);
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
