//! "Per route": a mixed workload's mix, as derived from the user profile, and each route's
//! requests, errors and p99 against its class's objective. Nothing for reads-only runs.

use std::collections::BTreeMap;

use super::{Point, and_list, ms, pct, whole};
use crate::{
    drive::route::{Route, RouteClass},
    plan::Server,
    record::RouteStats,
    report::{analysis::Analysis, doc::Doc},
    workload::profile::{ADMIN_SHARE, Mix, UserProfile},
};

/// The routes a point is judged by: its latency run's (find-max), else its own (fixed rate).
fn routes_of(p: &Point) -> &BTreeMap<Route, RouteStats> {
    p.latency.as_ref().filter(|l| !l.routes.is_empty()).map_or(&p.routes, |l| &l.routes)
}

fn share(x: f64) -> String {
    let pct = x * 100.0;
    if pct >= 10.0 { format!("{pct:.1} %") } else { format!("{pct:.2} %") }
}

fn mix_text(m: &Mix, server: Server) -> String {
    let mut parts = vec![format!("/me {}", share(m.me)), format!("/admin {}", share(m.admin))];
    if server == Server::Jwt {
        parts.push(format!("/refresh {}", share(m.refresh)));
    }
    parts.push(format!("/login {}", share(m.login)));
    parts.push(format!("/logout {}", share(m.logout)));
    parts.join(", ")
}

/// Who sent the reads: the active users each run drew from its preloaded sessions, or (runs
/// made before the preload) the logged-in demo users.
fn users_text(p: &UserProfile, users: usize, points: &[&Point]) -> String {
    let with: Vec<&crate::record::MixUsers> = points.iter().filter_map(|x| x.mix_users.as_ref()).collect();
    if with.is_empty() {
        return format!("this run's requests came from {users} logged-in users and the sessions its logins made.");
    }
    let preloaded = with.iter().map(|m| m.preloaded).max().unwrap_or(0);
    // Session systems' reads go to the active users; JWT's carry the logged-in users' tokens.
    let sessions: Vec<u64> = points
        .iter()
        .filter(|x| x.system.server() == Server::Session)
        .filter_map(|x| Some(x.mix_users.as_ref()?.active))
        .collect();
    let lo = sessions.iter().copied().min().unwrap_or(0);
    let hi = sessions.iter().copied().max().unwrap_or(0);
    let short = points
        .iter()
        .filter_map(|x| Some((x, x.mix_users.as_ref()?)))
        .filter(|(x, m)| {
            x.system.server() == Server::Session
                && (m.active as f64) < (p.users_per_rps() * x.offered_rps.unwrap_or(0.0)).floor()
        })
        .map(|(x, m)| {
            format!(
                "{} N={} ({} for {} requests/s)",
                x.system,
                x.instances,
                m.active,
                whole(x.offered_rps.unwrap_or(0.0))
            )
        })
        .collect::<Vec<_>>();
    let range = match (sessions.is_empty(), lo == hi) {
        (true, _) => String::new(),
        (false, true) => format!(" ({} active users in the session systems' final runs)", whole(lo as f64)),
        (false, false) => {
            format!(" ({}–{} active users in the session systems' final runs)", whole(lo as f64), whole(hi as f64))
        }
    };
    let mut t = format!(
        "each run spread its reads over that many users for its rate{range}, drawn from \
         {} sessions preloaded into the store or the instances before the point — written, not logged in with argon2id. \
         JWT systems' instances held as many preloaded refresh-token families; their reads carried the access tokens of \
         {users} logged-in users (verifying a token reads no server state, so how many there are does not change its \
         cost).",
        whole(preloaded as f64)
    );
    if !short.is_empty() {
        t.push_str(&format!(
            " Fewer credentials than the profile's active users at: {} (each user made more requests a minute).",
            and_list(&short)
        ));
    }
    t
}

fn profile_text(p: &UserProfile, users: usize, points: &[&Point]) -> String {
    let d = |x| humantime::format_duration(x).to_string();
    format!(
        "The mix is derived from how users behave (`--session-length {}`, `--requests-per-user-per-minute {}`, \
         `--access-ttl {}`): a session makes {:.0} authenticated reads ({:.0} % of them /admin, by admins), {:.0} \
         refreshes on a JWT server (one per access-token lifetime while the session goes on; a session server has \
         none, its reads slide the expiry), one login and one logout. That gives JWT systems {} and session systems \
         {}. Behind every request/s of reads are {:.0} signed-in users; {}",
        d(p.session_length),
        p.requests_per_minute,
        d(p.access_ttl),
        p.reads_per_session(),
        ADMIN_SHARE * 100.0,
        p.refreshes_per_session(Server::Jwt),
        mix_text(&p.mix(Server::Jwt), Server::Jwt),
        mix_text(&p.mix(Server::Session), Server::Session),
        p.users_per_rps(),
        users_text(p, users, points),
    )
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    let r = a.results;
    let points: Vec<&Point> = r.points.iter().filter(|p| p.live.is_none() && !routes_of(p).is_empty()).collect();
    if points.is_empty() {
        return;
    }
    per_route(a, d, &points);
    demands(a, d);
}

/// Each route's service demand, measured alone: the per-request CPU a capacity model needs
/// for any mix.
fn demands(a: &Analysis<'_>, d: &mut Doc) {
    let r = a.results;
    if r.route_demands.is_empty() {
        return;
    }
    d.h(3, "route-demands", "Per-route service demands");
    d.p(format!(
        "Each route alone, open loop, at the smallest N: first a short window at a low rate gives its CPU per request \
         D₀, then the measured window runs at the rate the utilization law puts at {:.0} % of the instances' cap \
         (X = U / D₀), so every route is measured at the same moderate load. The figures are per completed request of \
         that route; a mix's CPU per request is their average weighted by its shares.",
        crate::sweep::DEMAND_TARGET * 100.0
    ));
    let us_cell = |x: Option<f64>| x.filter(|x| x.is_finite()).map_or("—".into(), |x| format!("{x:.0}"));
    let rows = r
        .route_demands
        .iter()
        .map(|x| {
            vec![
                x.system.to_string(),
                x.instances.to_string(),
                x.route.path().to_owned(),
                format!("{} → {}", whole(x.offered_rps), whole(x.achieved_rps)),
                pct(x.instance_utilization),
                us_cell(Some(x.instance_us)),
                us_cell(x.store_us),
                x.store_commands.map_or("—".into(), |c| format!("{c:.2}")),
                ms(x.latency_us.p99),
                if x.errors == 0 { "0".into() } else { format!("{} of {}", x.errors, x.requests) },
            ]
        })
        .collect();
    d.table(
        &[
            "system",
            "N",
            "route",
            "req/s offered → achieved",
            "instance CPU",
            "instance µs/request",
            "store µs/request",
            "store commands/request",
            "p99 ms",
            "errors",
        ],
        "lrlrrrrrrr",
        rows,
    );
    let mut logins = Vec::new();
    for login in r.route_demands.iter().filter(|x| x.route == Route::Login) {
        let read = r.route_demands.iter().find(|x| x.system == login.system && x.route == Route::Me);
        if let Some(read) = read.filter(|x| x.instance_us > 0.0 && login.instance_us.is_finite()) {
            logins.push(format!(
                "{} {:.1} ms ({:.0} reads' worth)",
                login.system,
                login.instance_us / 1e3,
                login.instance_us / read.instance_us
            ));
        }
    }
    if !logins.is_empty() {
        d.p(format!("A login's instance CPU: {}.", and_list(&logins)));
    }
}

fn per_route(a: &Analysis<'_>, d: &mut Doc, points: &[&Point]) {
    let r = a.results;
    let objectives = r.config.objectives();
    d.h(2, "routes", "Per route");
    match &r.config.profile {
        Some(p) => d.p(profile_text(p, r.config.users, points)),
        None => {
            d.p("This run's mix was fixed percentages (it was made before mixes were derived from a user profile).")
        }
    }
    d.p(format!(
        "Each route class is judged by its own p99 objective, over its routes' requests together: reads (/me, /admin) \
         {} ms, writes (/refresh, /logout) {} ms, logins {} ms. A point's latency holds only when every class it sent meets \
         its own. Figures from each point's latency run at 70 % of its capacity (a fixed-rate point: its own run).",
        ms(objectives.read.as_micros() as u64),
        ms(objectives.write.as_micros() as u64),
        ms(objectives.login.as_micros() as u64),
    ));
    let mut rows = Vec::new();
    let mut missed = Vec::new();
    for p in points {
        for (route, s) in routes_of(p) {
            let slo = objectives.of(route.class()).as_micros() as u64;
            rows.push(vec![
                p.system.to_string(),
                p.instances.to_string(),
                p.lb.to_string(),
                route.path().to_owned(),
                s.requests.to_string(),
                if s.errors == 0 { "0".to_owned() } else { format!("{} ({})", s.errors, share(s.error_ratio())) },
                ms(s.latency_us.p50),
                ms(s.latency_us.p99),
                format!("{} {}", ms(slo), if s.latency_us.p99 <= slo { "✓" } else { "✗" }),
            ]);
        }
        if let Some(l) = &p.latency {
            for c in l.classes.iter().filter(|c| !c.met) {
                missed.push(format!(
                    "{} N={} {} ({} ms > {} ms)",
                    p.system,
                    p.instances,
                    c.class.name(),
                    ms(c.p99_us),
                    ms(c.slo_us)
                ));
            }
        }
    }
    d.table(
        &["system", "N", "balancer", "route", "requests", "errors", "p50 ms", "p99 ms", "objective ms"],
        "lrllrrrrr",
        rows,
    );
    if missed.is_empty() {
        d.p("Every route class met its objective at every point.");
    } else {
        d.p(format!("Classes that missed their objective: {}.", and_list(&missed)));
    }
    if let Some(t) = read_tail_text(points, r.caps.capped) {
        d.p(t);
    }
}

/// A point's read class in its latency run: p99 and whether it met its objective.
fn read_class(p: &Point) -> Option<(u64, bool)> {
    let c = p.latency.as_ref()?.classes.iter().find(|c| c.class == RouteClass::Read)?;
    Some((c.p99_us, c.met))
}

/// Reads against the control line in the same mix. The control hashes the same logins but
/// checks no credential on a read, so where its reads miss the objective too, the read tail
/// is what a login does to a capped instance, not what authentication costs. Systems are
/// set against the control at their N (the control runs round-robin; sticky is compared too).
fn read_tail_text(points: &[&Point], capped: bool) -> Option<String> {
    let control: Vec<(&Point, (u64, bool))> =
        points.iter().filter(|p| p.system.is_control()).filter_map(|p| Some((*p, read_class(p)?))).collect();
    if !control.iter().any(|(_, (_, met))| !met) {
        return None;
    }
    let at: Vec<String> = control.iter().map(|(p, (q, _))| format!("{} ms at N={}", ms(*q), p.instances)).collect();
    let throttled = control.iter().filter_map(|(p, _)| p.latency.as_ref()?.throttled_share()).reduce(f64::max);
    let mut beyond = Vec::new();
    let mut systems = Vec::new();
    for p in points.iter().filter(|p| !p.system.is_control()) {
        let (Some((q, _)), Some((_, (c, _)))) =
            (read_class(p), control.iter().find(|(c, _)| c.instances == p.instances))
        else {
            continue;
        };
        systems.push(q);
        if q as f64 > 2.0 * *c as f64 {
            beyond.push(format!("{} N={} ({} ms against {} ms)", p.system, p.instances, ms(q), ms(*c)));
        }
    }
    let mut t = format!(
        "The control line — the same listener, caps and logins (the same argon2id), its reads answered with no \
         credential checked — missed the read objective as well: p99 {}{}. ",
        and_list(&at),
        throttled.map_or(String::new(), |x| format!(", with up to {} of CFS periods throttled", pct(x))),
    );
    t.push_str(if capped {
        "At these caps the read tail is what a ~20 ms hash does to a capped instance: it spends the period's quota and \
         the reads queue until the next one. It is the caps' and the logins' cost, not the cost of checking a \
         credential (on whole cores with no quota a read would run beside a hash on another core; this run does not \
         measure that)."
    } else {
        "The read tail is the logins' and the machine's, not the cost of checking a credential."
    });
    t.push_str(" Judge a system's reads against the control's at the same N.");
    if let (Some(lo), Some(hi)) = (systems.iter().min(), systems.iter().max()) {
        t.push_str(&format!(" The systems' read p99 ranged {}–{} ms; ", ms(*lo), ms(*hi)));
        if beyond.is_empty() {
            t.push_str("none was more than twice the control's at its N.");
        } else {
            t.push_str(&format!("more than twice the control's: {}.", and_list(&beyond)));
        }
    }
    Some(t)
}
