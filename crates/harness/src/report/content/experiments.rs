//! The experiments beside the sweep: how long a logged-out credential keeps working
//! (`revocation.json`) and what each system does when the store or an instance fails
//! (`chaos.json`). Every number here comes from those files; without them the report says
//! what was not measured and how to measure it.

use super::*;
use crate::record::{
    chaos::{ChaosRun, Experiment},
    revocation::SystemWindows,
};

/// "0.25 ms", "5.99 s".
pub(super) fn duration_ms(ms: f64) -> String {
    if ms >= 1000.0 { format!("{:.2} s", ms / 1e3) } else { format!("{ms:.2} ms") }
}

pub(super) fn window_of<'a>(a: &Analysis<'a>, system: System) -> Option<&'a SystemWindows> {
    a.revocation?.systems.iter().find(|w| w.system == system)
}

/// The measured window of `system`, or of the measured system with the same revocation
/// semantics (every JWT algorithm without a denylist lives until `exp`, whatever signs it).
fn window_or_same<'a>(a: &Analysis<'a>, system: System) -> Option<&'a SystemWindows> {
    let none = |s: System| s.revocation() == Some("none");
    window_of(a, system).or_else(|| a.revocation?.systems.iter().find(|w| none(w.system) && none(system)))
}

/// The revocation window of `system`, or a pointer to the system whose window is its own.
pub(super) fn window_cell(a: &Analysis<'_>, system: System) -> String {
    if a.revocation.is_none() {
        return "not measured in this run".into();
    }
    match window_or_same(a, system) {
        Some(w) if w.system == system => fmt_window(w),
        Some(w) => format!("= {} (same mechanism: `exp`)", w.system),
        None => "not in the revocation run".into(),
    }
}

fn fmt_window(w: &SystemWindows) -> String {
    let p50 = w.window_ms.p50.map_or("—".into(), duration_ms);
    let max = w.window_ms.max.map_or("—".into(), duration_ms);
    let missed =
        if w.not_revoked > 0 { format!(", {} of {} never revoked", w.not_revoked, w.repeats) } else { String::new() };
    format!("{p50} (max {max}){missed}")
}

/// Access-token lifetime the revocation run used (seconds).
fn access_ttl_s(a: &Analysis<'_>) -> Option<f64> {
    a.revocation.map(|r| r.run.config.access_ttl.as_secs_f64())
}

/// What the server can cut short, per system, for the expiry row.
pub(super) fn expiry_cell(a: &Analysis<'_>, system: System) -> String {
    let Some(w) = window_or_same(a, system) else {
        return window_cell(a, system);
    };
    let p99 = w.window_ms.p99.map_or("—".into(), duration_ms);
    if w.system.revocation() == Some("none") {
        let ttl = access_ttl_s(a).map_or(String::new(), |t| format!(" ({t:.0} s in the run; the default is 5 min)"));
        format!("not before `exp`: up to the access-token lifetime{ttl}; p99 {p99}")
    } else {
        format!("at once on every instance: p99 {p99}")
    }
}

pub(super) fn run<'a>(a: &Analysis<'a>, experiment: Experiment, system: System) -> Option<&'a ChaosRun> {
    a.chaos?.runs.iter().find(|r| r.experiment == experiment && r.system == system)
}

pub(super) fn failed_pct(r: &ChaosRun) -> f64 {
    let all = r.totals.ok + r.totals.failed();
    if all == 0 { 0.0 } else { r.totals.failed() as f64 / all as f64 * 100.0 }
}

fn recovery_text(r: &ChaosRun) -> String {
    match (r.recovery_ms, r.settled_ms) {
        _ if r.totals.failed() == 0 => "nothing failed".into(),
        (Some(last), Some(settled)) if settled > 0.0 => format!(
            "under 1% failing {} after the fault, last failure {} after",
            settled_text(settled),
            duration_ms(last)
        ),
        (Some(last), _) => format!("last failure {} after the fault", duration_ms(last)),
        (None, _) => "still failing at the end of the run".into(),
    }
}

/// Settling time has one-second resolution.
fn settled_text(ms: f64) -> String {
    format!("{:.0} s", ms / 1e3)
}

/// One cell of the availability rows.
pub(super) fn chaos_cell(a: &Analysis<'_>, experiment: Experiment, system: System) -> String {
    if a.chaos.is_none() {
        return "not measured in this run".into();
    }
    let Some(r) = run(a, experiment, system) else {
        // Every JWT algorithm without a store behaves like the measured jwt-hs256 here.
        let like = (system.jwt_alg().is_some() && !system.uses_store()).then_some(System::JWT_HS256);
        return match like.and_then(|s| run(a, experiment, s)) {
            Some(r) => format!("= jwt-hs256 (no store): {:.1}% failed", failed_pct(r)),
            None => "not in the chaos run".into(),
        };
    };
    let relogged = if r.users_relogged > 0 {
        format!(", {} of {} users logged in again", r.users_relogged, r.users)
    } else {
        String::new()
    };
    let kept = if experiment == Experiment::StoreRestart && system.needs_postgres() && r.users_relogged == 0 {
        "restarted on its data, nobody logged out: "
    } else {
        ""
    };
    format!("{kept}{:.1}% failed{relogged}; {}", failed_pct(r), recovery_text(r))
}

/// Findings for the first screen.
pub(super) fn findings(a: &Analysis<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rev) = a.revocation {
        let cell = |s| window_of(a, s).and_then(|w| w.window_ms.p50).map(duration_ms);
        let none = rev.systems.iter().find(|w| w.system.revocation() == Some("none"));
        let stateful: Vec<String> = rev
            .systems
            .iter()
            .filter(|w| w.system.revocation() != Some("none"))
            .filter_map(|w| Some(format!("{} {}", w.system, duration_ms(w.window_ms.p50?))))
            .collect();
        if let Some(none) = none
            && let Some(p50) = cell(none.system)
        {
            let ttl = access_ttl_s(a).map_or(String::new(), |t| format!(" at a {t:.0} s access-token lifetime"));
            out.push(format!(
                "**Revocation window** (logout on one of {} instances → refused on all, p50): {} kept working for {p50}{ttl} — \
                 the rest of the token's life, so 5 min at the default — against {} with server-side state.",
                none.instances,
                none.system,
                and_list(&stateful)
            ));
        }
    }
    if let Some(ch) = a.chaos {
        let freeze: Vec<&ChaosRun> =
            ch.runs.iter().filter(|r| r.experiment == Experiment::StoreFreeze && r.system.uses_store()).collect();
        if !freeze.is_empty() {
            let outage = ch.run.config.outage.as_secs_f64();
            let list: Vec<String> = freeze.iter().map(|r| format!("{} {:.0}%", r.system, failed_pct(r))).collect();
            let unaffected: Vec<String> = ch
                .runs
                .iter()
                .filter(|r| r.experiment == Experiment::StoreFreeze && !r.system.uses_store())
                .map(|r| r.system.to_string())
                .collect();
            out.push(format!(
                "**A {outage:.0} s store outage** ({}) failed {} of the answers of the systems that need it{}; {}.",
                if freeze.iter().all(|r| r.system.needs_redis()) {
                    "Redis stopped"
                } else if freeze.iter().any(|r| r.system.needs_cluster()) {
                    "the store stopped; for session-redis-cluster one shard of three"
                } else {
                    "the store stopped"
                },
                and_list(&list),
                if unaffected.is_empty() {
                    String::new()
                } else {
                    format!(" — {} did not notice", and_list(&unaffected))
                },
                "the state that makes revocation instant is also what an outage takes away"
            ));
        }
        if let Some(r) = run(a, Experiment::InstanceLoss, System::SESSION_MEMORY) {
            out.push(format!(
                "**Losing one of {} instances** logged out {} of {} users of in-memory sessions ({} expected: those homed on it); \
                 shared-store and JWT users moved to the other instances{}.",
                r.instances,
                r.users_relogged,
                r.users,
                r.users_on_lost_instance.map_or("?".into(), |n| n.to_string()),
                others_lost(a)
            ));
        }
    }
    if a.revocation.is_none() || a.chaos.is_none() {
        out.push(format!(
            "**Not measured in this run:** {}. Run them with `--out` pointing at this directory to add them to this report.",
            and_list(
                &[
                    a.revocation.is_none().then(|| "the revocation window (`authbench revocation`)".to_string()),
                    a.chaos.is_none().then(|| "store outages and instance loss (`authbench chaos`)".to_string()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
            )
        ));
    }
    out
}

fn others_lost(a: &Analysis<'_>) -> String {
    let Some(ch) = a.chaos else { return String::new() };
    let lost: Vec<String> = ch
        .runs
        .iter()
        .filter(|r| r.experiment == Experiment::InstanceLoss && !r.system.instance_local_state())
        .map(|r| format!("{} {}", r.system, r.totals.failed()))
        .collect();
    if lost.is_empty() { String::new() } else { format!(", failing only in-flight requests ({})", and_list(&lost)) }
}

/// A sentence when an experiment ran on another machine than the sweep.
fn machine_note(a: &Analysis<'_>, machine: &crate::record::Machine) -> String {
    let sweep = &a.results.machine;
    if machine == sweep {
        return String::new();
    }
    format!(
        " It ran on another machine than the sweep ({}, {} cores, kernel {}; the sweep: {}, {} cores, kernel {}): its windows and \
         failure timelines stand on their own, but do not compare its latencies with the sweep's.",
        machine.cpu_model, machine.cores, machine.kernel, sweep.cpu_model, sweep.cores, sweep.kernel
    )
}

/// The section with the tables and timelines.
pub(super) fn section(a: &Analysis<'_>, d: &mut Doc, has: &dyn Fn(&str) -> bool) {
    d.h(2, "revocation-failures", "Revocation and failures");
    match a.revocation {
        None => d.p(
            "The revocation window was not measured in this run (`authbench revocation --out <this directory>` adds it).",
        ),
        Some(rev) => {
            d.h(3, "revocation", "Revocation window");
            d.p(format!(
                "A user logs in, the credential is used once on each of {} uncapped instances, the user logs out on one, and every \
                 instance is probed back to back until it refuses the credential. The window runs from the logout's answer to the \
                 last instance's first 401; {} repeats per system (run `{}`, {}).{}",
                rev.systems.first().map_or(0, |w| w.instances),
                rev.systems.first().map_or(0, |w| w.repeats),
                rev.run.run_id,
                rev.run.started_at,
                machine_note(a, &rev.run.machine)
            ));
            let rows = rev
                .systems
                .iter()
                .map(|w| {
                    let f = |v: Option<f64>| v.map_or("—".into(), duration_ms);
                    vec![
                        w.system.to_string(),
                        w.instances.to_string(),
                        w.repeats.to_string(),
                        f(w.window_ms.p50),
                        f(w.window_ms.p99),
                        f(w.window_ms.max),
                        w.not_revoked.to_string(),
                    ]
                })
                .collect();
            d.table(&["system", "N", "repeats", "p50", "p99", "max", "never revoked"], "lrrrrrr", rows);
            d.bullets(rev.systems.iter().map(|w| format!("`{}`: {}", w.system, w.notes)).collect());
        }
    }
    let Some(ch) = a.chaos else {
        d.p("Store outages and instance loss were not measured in this run (`authbench chaos --out <this directory>` adds them).");
        return;
    };
    let c = &ch.run.config;
    d.h(3, "chaos", "Store outage and instance loss");
    d.p(format!(
        "Each run holds {:.0} requests/s of `GET /me` from {:.0} users over {} uncapped instances for {:.0} s and breaks one part \
         {:.0} s in (store experiments: for {:.0} s). Clients behave like real ones: a user whose credential is refused logs in \
         again; {}. Answers are counted per second by arrival; \
         \"< 1% failing after\" runs from the end of the fault to the end of the last second in which 1% or more of the answers \
         failed; \"last failure after\" to the last failed answer, which includes users who came back late and only then found \
         their session gone (run `{}`).{}",
        c.rate,
        c.users as f64,
        ch.runs.first().map_or(0, |r| r.instances),
        c.warmup.as_secs_f64() + c.duration.as_secs_f64(),
        c.fault_at.as_secs_f64(),
        c.outage.as_secs_f64(),
        if c.haproxy {
            "every run went through a real HAProxy in front of the instances (sticky on the session cookie for \
             instance-local sessions), so after an instance loss its health checks (every 500 ms, out after 2 failures; a \
             refused connection retried on another instance) moved the users"
        } else {
            "the balancer (the generator itself) moves users off an instance whose connection failed"
        },
        ch.run.run_id,
        machine_note(a, &ch.run.machine)
    ));
    for e in Experiment::ALL {
        let runs: Vec<&ChaosRun> = ch.runs.iter().filter(|r| r.experiment == e).collect();
        if runs.is_empty() {
            continue;
        }
        d.h(3, chaos_anchor(e), format!("{}: {}", e.id(), e.describe()));
        if e == Experiment::LoginStorm {
            super::storm::table(d, c, &runs);
            continue;
        }
        let file = chart_file(e);
        if has(file) {
            d.chart(file, format!("{}: failed answers per second", e.id()));
        }
        let rows = runs
            .iter()
            .map(|r| {
                let t = &r.totals;
                vec![
                    r.system.to_string(),
                    (t.ok + t.failed()).to_string(),
                    format!("{:.1}%", failed_pct(r)),
                    t.unauthorized.to_string(),
                    t.unavailable.to_string(),
                    t.no_answer.to_string(),
                    r.users_relogged.to_string(),
                    r.settled_ms.map_or("not recovered".into(), |ms| {
                        if t.failed() == 0 { "—".into() } else { settled_text(ms) }
                    }),
                    r.recovery_ms.map_or("not recovered".into(), |ms| {
                        if t.failed() == 0 { "—".into() } else { duration_ms(ms) }
                    }),
                    ms(r.latency_us.p99),
                ]
            })
            .collect();
        d.table(
            &[
                "system",
                "answers",
                "failed",
                "401",
                "503",
                "no answer",
                "users re-logged",
                "< 1% failing after",
                "last failure after",
                "p99 ms",
            ],
            "lrrrrrrrrr",
            rows,
        );
        d.bullets(runs.iter().map(|r| format!("`{}`: {}", r.system, r.notes)).collect());
    }
}

pub(super) fn chaos_anchor(e: Experiment) -> &'static str {
    match e {
        Experiment::StoreFreeze => "chaos-store-freeze",
        Experiment::StoreRestart => "chaos-store-restart",
        Experiment::InstanceLoss => "chaos-instance-loss",
        Experiment::LoginStorm => "chaos-login-storm",
    }
}

pub fn chart_file(e: Experiment) -> &'static str {
    match e {
        Experiment::StoreFreeze => "chaos-store-freeze.svg",
        Experiment::StoreRestart => "chaos-store-restart.svg",
        Experiment::InstanceLoss => "chaos-instance-loss.svg",
        Experiment::LoginStorm => "chaos-login-storm.svg",
    }
}
