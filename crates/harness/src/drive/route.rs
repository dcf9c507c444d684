//! Per-route bookkeeping: which route a request went to, the class of objective that route
//! is judged by, and each route's latency, count and failures in a window.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::histogram::Latency;

/// The routes the workloads send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    Me,
    Admin,
    Login,
    Refresh,
    Logout,
    /// Anything else (`authbench load` to an arbitrary path).
    Other,
}

impl Route {
    pub const ALL: [Route; 6] = [Route::Me, Route::Admin, Route::Login, Route::Refresh, Route::Logout, Route::Other];

    /// The route of a request path.
    pub fn of(path: &str) -> Route {
        match path {
            "/me" => Route::Me,
            "/admin" => Route::Admin,
            "/login" => Route::Login,
            "/refresh" => Route::Refresh,
            "/logout" => Route::Logout,
            _ => Route::Other,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Route::Me => "/me",
            Route::Admin => "/admin",
            Route::Login => "/login",
            Route::Refresh => "/refresh",
            Route::Logout => "/logout",
            Route::Other => "other",
        }
    }

    pub fn class(self) -> RouteClass {
        match self {
            Route::Me | Route::Admin | Route::Other => RouteClass::Read,
            Route::Refresh | Route::Logout => RouteClass::Write,
            Route::Login => RouteClass::Login,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a route is judged by: authenticated reads, token and session writes (`/refresh`,
/// `/logout`), and logins (an argon2id hash each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteClass {
    Read,
    Write,
    Login,
}

impl RouteClass {
    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Read => "reads (/me, /admin)",
            RouteClass::Write => "writes (/refresh, /logout)",
            RouteClass::Login => "logins (/login)",
        }
    }
}

/// The p99 objective of each route class (`--slo-p99`, `--slo-write`, `--slo-login`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objectives {
    pub read: Duration,
    pub write: Duration,
    pub login: Duration,
}

impl Objectives {
    /// Documented defaults of the write and login classes (reads: `--slo-p99`, 5 ms).
    pub const WRITE: Duration = Duration::from_millis(50);
    pub const LOGIN: Duration = Duration::from_secs(1);

    pub fn of(&self, class: RouteClass) -> Duration {
        match class {
            RouteClass::Read => self.read,
            RouteClass::Write => self.write,
            RouteClass::Login => self.login,
        }
    }

    /// Each route class's p99 (over all its routes' answered requests together) against
    /// its objective, for the classes that had answers.
    pub fn judge(&self, routes: &BTreeMap<Route, RouteOutcome>) -> Vec<ClassVerdict> {
        let mut by_class: BTreeMap<RouteClass, Latency> = BTreeMap::new();
        for (route, o) in routes {
            if o.latency.count() > 0 {
                by_class.entry(route.class()).or_default().merge(&o.latency);
            }
        }
        by_class
            .into_iter()
            .map(|(class, latency)| {
                let p99_us = latency.summary().p99;
                let slo_us = self.of(class).as_micros() as u64;
                ClassVerdict { class, p99_us, slo_us, met: p99_us <= slo_us }
            })
            .collect()
    }
}

/// A route class's p99 in a latency run against its objective (equal meets it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassVerdict {
    pub class: RouteClass,
    pub p99_us: u64,
    pub slo_us: u64,
    pub met: bool,
}

/// One route's share of a window: its requests, the ones that failed (a status ≥ 400, a
/// timeout, a broken or refused connection) and the latency of those answered.
#[derive(Clone, Debug, Default)]
pub struct RouteOutcome {
    pub latency: Latency,
    pub requests: u64,
    pub failed: u64,
}

impl RouteOutcome {
    pub fn absorb(&mut self, other: &RouteOutcome) {
        self.latency.merge(&other.latency);
        self.requests += other.requests;
        self.failed += other.failed;
    }
}

/// A worker's per-route counts: a fixed array, no map lookups on the hot path.
#[derive(Default)]
pub struct RouteTally([Option<Box<RouteOutcome>>; 6]);

impl RouteTally {
    pub fn get(&mut self, route: Route) -> &mut RouteOutcome {
        self.0[route.index()].get_or_insert_with(Default::default)
    }

    /// The routes that were sent to, by route.
    pub fn into_map(self) -> BTreeMap<Route, RouteOutcome> {
        Route::ALL.into_iter().zip(self.0).filter_map(|(r, o)| Some((r, *o?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(latencies_us: &[u64]) -> RouteOutcome {
        let mut o = RouteOutcome::default();
        for &us in latencies_us {
            o.latency.record_us(us);
            o.requests += 1;
        }
        o
    }

    fn objectives() -> Objectives {
        Objectives { read: Duration::from_millis(5), write: Objectives::WRITE, login: Objectives::LOGIN }
    }

    fn missed(routes: &BTreeMap<Route, RouteOutcome>) -> Vec<ClassVerdict> {
        objectives().judge(routes).into_iter().filter(|c| !c.met).collect()
    }

    #[test]
    fn paths_map_to_routes_and_routes_to_classes() {
        for r in Route::ALL {
            if r != Route::Other {
                assert_eq!(Route::of(r.path()), r);
            }
        }
        assert_eq!(Route::of("/nope"), Route::Other);
        assert_eq!(Route::Admin.class(), RouteClass::Read);
        assert_eq!(Route::Logout.class(), RouteClass::Write);
        assert_eq!(Route::Login.class(), RouteClass::Login);
    }

    #[test]
    fn a_slow_login_is_judged_by_the_login_objective_not_the_read_one() {
        // 300 ms logins beside 2 ms reads: every class within its own objective, though a
        // single p99 over all requests would be far beyond 5 ms when logins are ≥ 1 %.
        let mut routes = BTreeMap::new();
        routes.insert(Route::Me, outcome(&[2_000; 900]));
        routes.insert(Route::Login, outcome(&[300_000; 20]));
        routes.insert(Route::Refresh, outcome(&[20_000; 80]));
        assert!(missed(&routes).is_empty());
        assert_eq!(objectives().judge(&routes).len(), 3, "one verdict per class sent");
        // A 1.2 s login misses, and only the login class is named.
        routes.insert(Route::Login, outcome(&[1_200_000; 20]));
        let missed = missed(&routes);
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].class, RouteClass::Login);
        assert!(missed[0].p99_us > 1_000_000);
        assert_eq!(missed[0].slo_us, 1_000_000);
    }

    #[test]
    fn a_class_is_judged_over_all_its_routes_together() {
        // /admin alone is slow but is 1 % of the reads: the read class's p99 is /me's.
        let mut routes = BTreeMap::new();
        routes.insert(Route::Me, outcome(&[1_000; 990]));
        routes.insert(Route::Admin, outcome(&[9_000; 5]));
        assert!(missed(&routes).is_empty());
        routes.insert(Route::Admin, outcome(&[9_000; 50]));
        assert_eq!(missed(&routes)[0].class, RouteClass::Read);
        // A class with no answered request is not judged (nothing to judge it on).
        let mut none = BTreeMap::new();
        none.insert(Route::Login, RouteOutcome { requests: 3, failed: 3, ..RouteOutcome::default() });
        assert!(objectives().judge(&none).is_empty());
    }

    #[test]
    fn a_tally_keeps_only_the_routes_it_saw() {
        let mut t = RouteTally::default();
        t.get(Route::Refresh).requests += 2;
        t.get(Route::Me).failed += 1;
        let map = t.into_map();
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [Route::Me, Route::Refresh]);
        assert_eq!(map[&Route::Refresh].requests, 2);
    }
}
