//! The mixed workload: reads, `/admin` by admins, refresh-token rotation (JWT), and a login
//! and a logout per session, in shares derived from a [`profile::UserProfile`].

use std::sync::Arc;

use http::{HeaderValue, header};

use super::{Credential, ReadWorkload, profile};
use crate::{
    drive::{
        client::Prepared,
        engine::{Req, Ticket, Workload},
    },
    plan::{Lb, Server, System},
};

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
    /// Per credential: the nearest admin's credential at or below it (the first admin's
    /// for those below every admin), so an `/admin` read stays among the active users.
    admin_of: Vec<u32>,
    server: Server,
    /// One per demo user: a churn login goes to `user{k mod demo users}`.
    logins: Vec<Prepared>,
    /// [`profile::UserProfile::users_per_rps`]: each run spreads its reads over this many
    /// users per request/s of its rate (`None`: over every credential).
    users_per_rps: Option<f64>,
    /// Per instance: refresh tokens that instance issued (JWT).
    refresh: Vec<std::sync::Mutex<Vec<String>>>,
    /// Per instance: credentials from churn logins, waiting for their logout.
    churn: Vec<std::sync::Mutex<Vec<String>>>,
    /// [`profile::Mix::bounds`]: where `/me`, `/admin`, `/refresh` and `/logout` end.
    bounds: [u64; 4],
}

/// What a [`MixedWorkload`] needs besides its credentials.
#[derive(Clone, Copy, Debug)]
pub struct MixSetup<'a> {
    pub mix: profile::Mix,
    /// The demo users the instances hold (`user0..`), and their password: churn logins.
    pub demo_users: usize,
    pub password: &'a str,
    /// Active users per request/s ([`profile::UserProfile::users_per_rps`]); `None`: every
    /// credential is active at any rate.
    pub users_per_rps: Option<f64>,
}

impl MixedWorkload {
    pub fn new(
        system: System,
        creds: &[Credential],
        lb: Lb,
        instances: usize,
        setup: MixSetup<'_>,
    ) -> anyhow::Result<Arc<Self>> {
        let read = ReadWorkload::new(creds, lb, instances)?;
        // The control line answers reads without authenticating: its /admin share goes to
        // /me (its /admin would need the session at home, which round-robin misses).
        let control = system == System::CONTROL;
        let admin = creds
            .iter()
            .map(|c| {
                (c.admin && !control)
                    .then(|| Prepared::get("/admin").map(|p| p.with_header(c.header.0.clone(), c.header.1.clone())))
                    .transpose()
            })
            .collect::<anyhow::Result<_>>()?;
        let first_admin = creds.iter().position(|c| c.admin).unwrap_or(0) as u32;
        let mut last = first_admin;
        let admin_of = creds
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if c.admin {
                    last = i as u32;
                }
                last
            })
            .collect();
        let logins = (0..setup.demo_users.max(1))
            .map(|u| {
                Prepared::post_json(
                    "/login",
                    &serde_json::json!({"username": format!("user{u}"), "password": setup.password}),
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
            admin_of,
            server: system.server(),
            logins,
            users_per_rps: setup.users_per_rps,
            refresh,
            churn: (0..n).map(|_| std::sync::Mutex::new(Vec::new())).collect(),
            bounds: setup.mix.bounds(),
        }))
    }

    /// Users a run at `rate` spreads its reads over: the profile's users per request/s,
    /// at least one, at most every credential.
    pub fn active_at(&self, rate: Option<f64>) -> usize {
        let all = self.read.requests.len();
        match (self.users_per_rps, rate) {
            (Some(per), Some(rate)) => ((per * rate).ceil() as usize).clamp(1, all),
            _ => all,
        }
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
                let login = &self.logins[self.user(seq) % self.logins.len()];
                return Some(Req { prepared: std::borrow::Cow::Borrowed(login), ticket });
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
    /// Position of request `seq` in the mix, in parts per million: a golden-ratio (Weyl)
    /// sequence, not a hash. Any run of consecutive requests then holds every route's share
    /// to within a request or two — a 1 s find-max step at 2 000 requests/s carries 3 logins,
    /// not 3 ± 2 — so a window's CPU does not swing with how many 20 ms argon2id logins it
    /// happened to draw. Which user a request reads as is still hashed ([`Self::user`]).
    fn slot(seq: u64) -> u64 {
        // ⌊PPM · (√5 − 1)/2⌋, odd and not a multiple of 5: coprime with PPM, so the
        // sequence visits every position once per PPM requests.
        const STEP: u64 = 618_033;
        (seq % profile::PPM) * STEP % profile::PPM
    }

    /// Whose credential request `seq` uses: an admin's for `/admin`, else the read user's.
    fn user(&self, seq: u64) -> usize {
        let user = self.read.user(seq);
        let slot = Self::slot(seq);
        if (self.bounds[0]..self.bounds[1]).contains(&slot) { self.admin_of[user] as usize } else { user }
    }
}

impl Workload for MixedWorkload {
    type Kind = MixedKind;

    fn at_rate(&self, rate: Option<f64>) {
        self.read.active.store(self.active_at(rate), std::sync::atomic::Ordering::Relaxed);
    }

    fn begin(&self) {
        self.read.begin();
    }

    fn target(&self, seq: u64) -> usize {
        match self.read.lb {
            Lb::Sticky => self.read.homes[self.user(seq)],
            Lb::RoundRobin | Lb::HaproxyRr | Lb::HaproxySticky => self.read.target(seq),
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
    use crate::workload::demo_admin;

    #[test]
    fn mixed_keeps_its_proportions_and_sticky_routes_every_credential_home() {
        let n = 4;
        let users = 40;
        let creds: Vec<Credential> = (0..users)
            .map(|u| Credential {
                header: (header::AUTHORIZATION, HeaderValue::from_static("Bearer x")),
                refresh: Some(format!("r{u}")),
                home: u % n,
                admin: demo_admin(u),
            })
            .collect();
        let mix = profile::UserProfile::WEB_APP.mix(Server::Jwt);
        let setup = MixSetup { mix, demo_users: users, password: "pw", users_per_rps: None };
        let w = MixedWorkload::new(System::JWT_HS256, &creds, Lb::Sticky, n, setup).unwrap();
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
                    assert!(creds[w.user(seq)].admin, "only admins are sent to /admin");
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
    fn every_run_of_requests_holds_the_login_share_to_within_a_request_or_two() {
        let mix = profile::UserProfile::WEB_APP.mix(Server::Jwt);
        let [_, admin, refresh, logout] = mix.bounds();
        // Windows of 3 000 requests (a 1 s step at 3 000 requests/s), starting anywhere.
        let window = 3_000u64;
        let expect = |width: u64| (width * window) as f64 / profile::PPM as f64;
        let (login, refreshes) = (expect(profile::PPM - logout), expect(refresh - admin));
        for start in (0..2_000_000u64).step_by(7_919) {
            let slots = || (start..start + window).map(MixedWorkload::slot);
            let logins = slots().filter(|&r| r >= logout).count() as f64;
            let refreshed = slots().filter(|r| (admin..refresh).contains(r)).count() as f64;
            assert!((logins - login).abs() <= 1.5, "logins from {start}: {logins} for {login:.2}");
            assert!((refreshed - refreshes).abs() <= 1.5, "refreshes from {start}: {refreshed} for {refreshes:.2}");
        }
        // A hash (what slot was) gives 3 000 requests 4.9 ± 2.2 logins: often 2 or 8.
    }

    #[test]
    fn the_control_line_sends_its_admin_share_as_unauthenticated_reads() {
        let creds: Vec<Credential> = (0..20)
            .map(|i| Credential {
                header: (header::COOKIE, HeaderValue::from_static("x")),
                refresh: None,
                home: i % 2,
                admin: demo_admin(i),
            })
            .collect();
        let mix = profile::UserProfile::WEB_APP.mix(Server::Session);
        let setup = MixSetup { mix, demo_users: 20, password: "pw", users_per_rps: None };
        let w = MixedWorkload::new(System::CONTROL, &creds, Lb::RoundRobin, 2, setup).unwrap();
        assert!((0..20_000).all(|seq| w.request(seq, 0).prepared.uri.path() != "/admin"));
    }

    #[test]
    fn a_mixed_run_spreads_its_reads_over_the_profiles_active_users_for_its_rate() {
        // 64 demo users behind 600 preloaded sessions: credential i is user{i mod 64}'s.
        let creds: Vec<Credential> = (0..600)
            .map(|i| Credential {
                header: (header::COOKIE, HeaderValue::from_static("x")),
                refresh: None,
                home: 0,
                admin: demo_admin(i % 64),
            })
            .collect();
        let mix = profile::UserProfile::WEB_APP.mix(Server::Session);
        let setup = MixSetup { mix, demo_users: 64, password: "pw", users_per_rps: Some(3.0) };
        let w = MixedWorkload::new(System::SESSION_REDIS, &creds, Lb::RoundRobin, 1, setup).unwrap();
        assert_eq!(w.active_at(Some(50.0)), 150, "3 users per request/s");
        assert_eq!(w.active_at(Some(0.1)), 1, "at least one");
        assert_eq!(w.active_at(Some(1000.0)), 600, "never more than were preloaded");
        assert_eq!(w.active_at(None), 600, "a closed-loop run uses every credential");
        w.at_rate(Some(50.0));
        w.begin();
        let mut seen = std::collections::HashSet::new();
        for seq in 0..20_000 {
            let u = w.user(seq);
            assert!(u < 150, "request {seq} went to credential {u}, outside the 150 active users");
            let req = w.request(seq, 0);
            if req.prepared.uri.path() == "/admin" {
                assert!(creds[u].admin, "credential {u} is not an admin's");
            }
            if req.prepared.uri.path() == "/login" {
                let body: serde_json::Value = serde_json::from_slice(&req.prepared.body).unwrap();
                let name = body["username"].as_str().unwrap();
                let k: usize = name.strip_prefix("user").unwrap().parse().unwrap();
                assert!(k < 64, "a churn login for a demo user that does not exist: {name}");
            }
            seen.insert(u);
        }
        assert!(seen.len() > 140, "the reads reach (nearly) every active user: {}", seen.len());
    }
}
