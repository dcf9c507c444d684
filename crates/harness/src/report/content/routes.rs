//! "Per route": a mixed workload's mix, as derived from the user profile, and each route's
//! requests, errors and p99 against its class's objective. Nothing for reads-only runs.

use std::collections::BTreeMap;

use super::{Point, and_list, ms};
use crate::{
    drive::route::Route,
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

fn profile_text(p: &UserProfile, users: usize) -> String {
    let d = |x| humantime::format_duration(x).to_string();
    format!(
        "The mix is derived from how users behave (`--session-length {}`, `--requests-per-user-per-minute {}`, \
         `--access-ttl {}`): a session makes {:.0} authenticated reads ({:.0} % of them /admin, by admins), {:.0} \
         refreshes on a JWT server (one per access-token lifetime while the session goes on; a session server has \
         none, its reads slide the expiry), one login and one logout. That gives JWT systems {} and session systems \
         {}. Behind every request/s of reads are {:.0} signed-in users; this run's requests came from {users} \
         logged-in users and the sessions its logins made.",
        d(p.session_length),
        p.requests_per_minute,
        d(p.access_ttl),
        p.reads_per_session(),
        ADMIN_SHARE * 100.0,
        p.refreshes_per_session(Server::Jwt),
        mix_text(&p.mix(Server::Jwt), Server::Jwt),
        mix_text(&p.mix(Server::Session), Server::Session),
        p.users_per_rps(),
    )
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    let r = a.results;
    let points: Vec<&Point> = r.points.iter().filter(|p| p.live.is_none() && !routes_of(p).is_empty()).collect();
    if points.is_empty() {
        return;
    }
    let objectives = r.config.objectives();
    d.h(2, "routes", "Per route");
    match &r.config.profile {
        Some(p) => d.p(profile_text(p, r.config.users)),
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
    for p in &points {
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
}
