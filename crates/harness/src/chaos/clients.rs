//! The chaos clients: `/me` for a pool of users through a balancer that routes around dead
//! instances, with users who log in again when refused, every answer counted per second.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use crate::{
    drive::{
        client::Prepared,
        engine::{Req, Ticket, Workload},
        histogram::Latency,
    },
    plan::{Lb, Server},
    record::chaos::Bucket,
    workload,
};

/// What a chaos request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Me,
    /// A refused user's new login.
    Login,
}

/// Where a user stands with their credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum UserState {
    /// The credential works (as far as the user knows).
    Ok = 0,
    /// The credential was refused; the user's next request is a login.
    Refused = 1,
    /// A login is in flight; requests meanwhile still carry the old credential.
    LoggingIn = 2,
}

/// A [`UserState`] that request tasks change concurrently.
pub(super) struct AtomicUserState(AtomicU8);

impl AtomicUserState {
    pub(super) fn new(state: UserState) -> Self {
        Self(AtomicU8::new(state as u8))
    }

    fn store(&self, state: UserState) {
        self.0.store(state as u8, Relaxed);
    }

    /// Move from `from` to `to`; false when the user was not in `from`.
    fn transition(&self, from: UserState, to: UserState) -> bool {
        self.0.compare_exchange(from as u8, to as u8, Relaxed, Relaxed).is_ok()
    }
}

/// The classes a [`Bucket`] counts, by their index in a bucket's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    Unauthorized,
    Unavailable,
    OtherStatus,
    /// No answer: refused or broken connection, or the client timeout.
    Unanswered,
    Login,
}

impl Answer {
    const COUNT: usize = 6;

    fn of(status: u16) -> Self {
        match status {
            200..=299 => Answer::Ok,
            401 => Answer::Unauthorized,
            503 => Answer::Unavailable,
            0 => Answer::Unanswered,
            _ => Answer::OtherStatus,
        }
    }

    fn failed(self) -> bool {
        !matches!(self, Answer::Ok | Answer::Login)
    }
}

/// One simulated user: a credential that can be replaced by a new login.
pub(super) struct User {
    pub(super) me: Mutex<Prepared>,
    pub(super) login: Prepared,
    pub(super) home: AtomicUsize,
    pub(super) state: AtomicUserState,
    pub(super) relogged: AtomicBool,
    /// Bumped by every successful login: a 401 to a request that carried an older
    /// credential (still in flight during the new login) refuses nothing current.
    pub(super) generation: AtomicU32,
}

impl User {
    pub(super) fn new(me: Prepared, login: Prepared, home: usize) -> Self {
        User {
            me: Mutex::new(me),
            login,
            home: AtomicUsize::new(home),
            state: AtomicUserState::new(UserState::Ok),
            relogged: AtomicBool::new(false),
            generation: AtomicU32::new(0),
        }
    }
}

pub(super) struct ChaosWorkload {
    users: Vec<User>,
    server: Server,
    lb: Lb,
    alive: Vec<AtomicBool>,
    /// Instance loss only: a failed connection marks its instance dead.
    failover: bool,
    pub(super) t0: Instant,
    buckets: Vec<[AtomicU64; Answer::COUNT]>,
    /// Failure times, µs from t0 (first after `watch_from`, and last).
    watch_from_us: u64,
    pub(super) first_failure_us: AtomicU64,
    pub(super) last_failure_us: AtomicU64,
    pub(super) relogged: AtomicU64,
    pub(super) logins_ok: AtomicU64,
    /// `/me` latency per second of the run, by the time the answer arrived.
    me_latency: Vec<Mutex<Latency>>,
}

impl ChaosWorkload {
    /// Timeline buckets cover `run` seconds (plus one for stragglers); failures before
    /// `watch_from` do not count as the fault's first.
    pub(super) fn new(
        users: Vec<User>,
        server: Server,
        lb: Lb,
        instances: usize,
        failover: bool,
        run: Duration,
        watch_from: Duration,
    ) -> Self {
        Self {
            users,
            server,
            lb,
            alive: (0..instances).map(|_| AtomicBool::new(true)).collect(),
            failover,
            t0: Instant::now(),
            buckets: (0..run.as_secs() as usize + 2).map(|_| Default::default()).collect(),
            watch_from_us: watch_from.as_micros() as u64,
            first_failure_us: AtomicU64::new(u64::MAX),
            last_failure_us: AtomicU64::new(0),
            relogged: AtomicU64::new(0),
            logins_ok: AtomicU64::new(0),
            me_latency: (0..run.as_secs() as usize + 2).map(|_| Mutex::new(Latency::new())).collect(),
        }
    }

    /// `/me` p99 over the whole seconds `from..to` of the run; `None` when none answered.
    pub(super) fn me_p99_between(&self, from: usize, to: usize) -> Option<u64> {
        let mut all = Latency::new();
        for b in self.me_latency.iter().take(to).skip(from) {
            all.merge(&b.lock().unwrap_or_else(|p| p.into_inner()));
        }
        (all.count() > 0).then(|| all.summary().p99)
    }

    fn user(&self, seq: u64) -> usize {
        (workload::mix(seq) % self.users.len() as u64) as usize
    }

    /// The first live instance at or after `t`.
    fn route(&self, t: usize) -> usize {
        let n = self.alive.len();
        (0..n).map(|i| (t + i) % n).find(|&i| self.alive[i].load(Relaxed)).unwrap_or(t)
    }

    fn record(&self, answer: Answer) {
        let now = self.t0.elapsed();
        let b = (now.as_secs() as usize).min(self.buckets.len() - 1);
        self.buckets[b][answer as usize].fetch_add(1, Relaxed);
        if answer.failed() {
            let us = now.as_micros() as u64;
            if us >= self.watch_from_us {
                self.first_failure_us.fetch_min(us, Relaxed);
            }
            self.last_failure_us.fetch_max(us, Relaxed);
        }
    }

    pub(super) fn timeline(&self) -> Vec<Bucket> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(t, b)| {
                let count = |a: Answer| b[a as usize].load(Relaxed);
                Bucket {
                    t_s: t as u32,
                    ok: count(Answer::Ok),
                    unauthorized: count(Answer::Unauthorized),
                    unavailable: count(Answer::Unavailable),
                    other_status: count(Answer::OtherStatus),
                    no_answer: count(Answer::Unanswered),
                    logins: count(Answer::Login),
                    me_p99_us: self.me_p99_between(t, t + 1),
                }
            })
            .collect()
    }
}

impl Workload for ChaosWorkload {
    type Kind = Kind;

    fn target(&self, seq: u64) -> usize {
        let t = match self.lb {
            Lb::Sticky => self.users[self.user(seq)].home.load(Relaxed),
            Lb::RoundRobin | Lb::HaproxyRr | Lb::HaproxySticky => (seq % self.alive.len() as u64) as usize,
        };
        self.route(t)
    }

    fn request(&self, seq: u64, target: usize) -> Req<'_, Kind> {
        let u = self.user(seq);
        let user = &self.users[u];
        let tag = user.generation.load(Relaxed);
        let ticket = |kind| Some(Ticket { kind, target: target as u32, user: u as u32, tag });
        if user.state.transition(UserState::Refused, UserState::LoggingIn) {
            return Req { prepared: std::borrow::Cow::Borrowed(&user.login), ticket: ticket(Kind::Login) };
        }
        let me = user.me.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Req { prepared: std::borrow::Cow::Owned(me), ticket: ticket(Kind::Me) }
    }

    fn on_latency(&self, ticket: Ticket<Kind>, us: u64) {
        if ticket.kind == Kind::Me {
            let b = (self.t0.elapsed().as_secs() as usize).min(self.me_latency.len() - 1);
            self.me_latency[b].lock().unwrap_or_else(|p| p.into_inner()).record_us(us);
        }
    }

    fn on_response(&self, ticket: Ticket<Kind>, status: u16, headers: &http::HeaderMap, body: &[u8]) {
        let user = &self.users[ticket.user as usize % self.users.len()];
        if status == 0 && self.failover {
            self.alive[ticket.target as usize % self.alive.len()].store(false, Relaxed);
        }
        if ticket.kind == Kind::Login {
            self.record(Answer::Login);
            let fresh = (status == 200).then(|| workload::credential(self.server, headers, body)).flatten();
            match fresh {
                Some(((name, value), _refresh)) => {
                    let mut me = user.me.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(h) = me.headers.iter_mut().find(|(n, _)| *n == name) {
                        h.1 = value;
                    }
                    drop(me);
                    // The new session lives where this login went.
                    user.home.store(ticket.target as usize, Relaxed);
                    user.generation.fetch_add(1, Relaxed);
                    user.state.store(UserState::Ok);
                    self.logins_ok.fetch_add(1, Relaxed);
                }
                None => user.state.store(UserState::Refused),
            }
            return;
        }
        self.record(Answer::of(status));
        if status == 401
            && ticket.tag == user.generation.load(Relaxed)
            && user.state.transition(UserState::Ok, UserState::Refused)
            && !user.relogged.swap(true, Relaxed)
        {
            self.relogged.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;

    fn workload(n: usize, lb: Lb, failover: bool) -> ChaosWorkload {
        let users = (0..8)
            .map(|u| {
                let me =
                    Prepared::get("/me").unwrap().with_header(header::COOKIE, HeaderValue::from_static("__Host-sid=a"));
                User::new(me, Prepared::post_json("/login", &serde_json::json!({})).unwrap(), u % n)
            })
            .collect();
        ChaosWorkload::new(users, Server::Session, lb, n, failover, Duration::from_secs(2), Duration::ZERO)
    }

    #[test]
    fn a_late_401_for_an_old_credential_does_not_start_another_login() {
        let w = workload(2, Lb::Sticky, true);
        let seq = (0..).find(|&s| w.user(s) == 1).unwrap();
        let stale = w.request(seq, 0).ticket.unwrap();
        w.on_response(stale, 401, &http::HeaderMap::new(), &[]);
        let login = w.request(seq, 0).ticket.unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("__Host-sid=b; Path=/"));
        w.on_response(login, 200, &headers, &[]);
        // Another request sent with the old cookie answers 401 after the login.
        w.on_response(stale, 401, &http::HeaderMap::new(), &[]);
        assert_eq!(w.request(seq, 0).prepared.uri.path(), "/me", "no second login");
        let fresh = w.request(seq, 0).ticket.unwrap();
        w.on_response(fresh, 401, &http::HeaderMap::new(), &[]);
        assert_eq!(w.request(seq, 0).prepared.uri.path(), "/login", "a 401 for the current cookie does");
    }

    #[test]
    fn a_dead_instance_gets_no_more_requests_and_its_users_move() {
        let w = workload(3, Lb::Sticky, true);
        let ticket = Ticket { kind: Kind::Me, target: 2, user: 2, tag: 0 };
        w.on_response(ticket, 0, &http::HeaderMap::new(), &[]);
        assert!((0..1000).all(|seq| w.target(seq) != 2));
        // Without failover (store experiments) a failed connection changes no route.
        let w = workload(3, Lb::RoundRobin, false);
        w.on_response(ticket, 0, &http::HeaderMap::new(), &[]);
        assert!((0..30).any(|seq| w.target(seq) == 2));
    }

    #[test]
    fn a_refused_user_logs_in_once_and_then_uses_the_new_credential() {
        let w = workload(2, Lb::Sticky, true);
        let seq = (0..).find(|&s| w.user(s) == 3).unwrap();
        let refused = Ticket { kind: Kind::Me, target: 1, user: 3, tag: 0 };
        w.on_response(refused, 401, &http::HeaderMap::new(), &[]);
        w.on_response(refused, 401, &http::HeaderMap::new(), &[]);
        assert_eq!(w.relogged.load(Relaxed), 1, "one user, counted once");
        let req = w.request(seq, 0);
        assert_eq!(req.prepared.uri.path(), "/login");
        assert_eq!(w.request(seq, 0).prepared.uri.path(), "/me", "one login in flight per user");
        let mut headers = http::HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("__Host-sid=new; Path=/; HttpOnly"));
        w.on_response(req.ticket.unwrap(), 200, &headers, &[]);
        let me = w.request(seq, 0);
        assert_eq!(me.prepared.headers[0].1, "__Host-sid=new");
        assert_eq!(w.users[3].home.load(Relaxed), 0, "the session now lives where the login went");
        let t = w.timeline();
        assert_eq!((t[0].unauthorized, t[0].logins, t[0].ok), (2, 1, 0));
    }

    #[test]
    fn me_latency_is_kept_per_second_of_arrival() {
        let w = workload(2, Lb::RoundRobin, false);
        w.on_latency(Ticket { kind: Kind::Me, target: 0, user: 3, tag: 0 }, 1_500);
        w.on_latency(Ticket { kind: Kind::Login, target: 0, user: 3, tag: 0 }, 90_000);
        assert_eq!(
            w.me_p99_between(0, 1).map(|p| p / 100),
            Some(15),
            "a /me answer lands in its second; logins do not"
        );
        assert_eq!(w.me_p99_between(1, 2), None);
        assert_eq!(w.timeline()[0].me_p99_us.map(|p| p / 100), Some(15));
    }

    #[test]
    fn answers_are_classed_as_the_buckets_count_them() {
        assert_eq!(Answer::of(204), Answer::Ok);
        assert_eq!(Answer::of(401), Answer::Unauthorized);
        assert_eq!(Answer::of(503), Answer::Unavailable);
        assert_eq!(Answer::of(0), Answer::Unanswered);
        assert_eq!(Answer::of(429), Answer::OtherStatus);
        assert!(!Answer::Login.failed() && !Answer::Ok.failed() && Answer::Unanswered.failed());
    }
}
