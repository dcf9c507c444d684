//! The login storm's table: how long a storm's logins took to drain at each hashing-pool
//! setting, and what they did to everyone else's `/me`.

use super::{and_list, ms};
use crate::{
    record::chaos::{ChaosConfig, ChaosRun},
    report::doc::Doc,
};

pub(super) fn table(d: &mut Doc, c: &ChaosConfig, runs: &[&ChaosRun]) {
    let storms: Vec<(&ChaosRun, &crate::record::chaos::Storm)> =
        runs.iter().filter_map(|r| Some((*r, r.storm.as_ref()?))).collect();
    if storms.is_empty() {
        return;
    }
    d.p(format!(
        "{:.0} % of the users log in at once, {:.0} s into the run: every one of them sends a login (argon2id) at the same \
         moment, each on its own connection to its instance, while all users keep reading at the same rate. \"pool\" is \
         each instance's argon2id pool (`--hash-concurrency`; the servers' default is one per core); login latency and \
         \"drained\" run from the storm's start to each login's answer and to the last one. /me p99 is over the whole \
         seconds before the storm, from its start to the second its last login was answered in, and after.",
        c.storm_share * 100.0,
        c.fault_at.as_secs_f64(),
    ));
    let opt = |us: Option<u64>| us.map_or("—".into(), ms);
    let rows = storms
        .iter()
        .map(|(r, s)| {
            vec![
                r.system.to_string(),
                r.instances.to_string(),
                s.hash_concurrency.map_or("default".into(), |k| k.to_string()),
                s.users.to_string(),
                s.drain_ms.map_or(format!("— ({} failed)", s.failed), |d| format!("{d:.0} ms")),
                ms(s.login_us.p50),
                ms(s.login_us.p99),
                opt(s.me_p99_before_us),
                opt(s.me_p99_during_us),
                opt(s.me_p99_after_us),
            ]
        })
        .collect();
    d.table(
        &[
            "system",
            "N",
            "pool",
            "logins",
            "drained",
            "login p50 ms",
            "login p99 ms",
            "/me p99 before",
            "/me p99 during",
            "/me p99 after",
        ],
        "lrrrrrrrrr",
        rows,
    );
    // What the pool setting changed, per system measured at more than one.
    let mut lines = Vec::new();
    for (r, s) in &storms {
        let Some(k) = s.hash_concurrency else { continue };
        let larger = storms
            .iter()
            .find(|(o, t)| o.system == r.system && t.hash_concurrency.is_some_and(|j| j > k) && t.drain_ms.is_some());
        if let (Some((_, t)), Some(d), Some(during)) = (larger, s.drain_ms, s.me_p99_during_us)
            && let (Some(dt), Some(during_t)) = (t.drain_ms, t.me_p99_during_us)
        {
            lines.push(format!(
                "{}: pool {k} drained in {d:.0} ms with /me p99 {} ms during it, pool {} in {dt:.0} ms with {} ms",
                r.system,
                ms(during),
                t.hash_concurrency.unwrap_or(0),
                ms(during_t)
            ));
        }
    }
    if !lines.is_empty() {
        d.p(format!("The pool trades the storm's length against the reads' latency: {}.", and_list(&lines)));
    }
    let mut notes: Vec<String> = Vec::new();
    for (r, _) in &storms {
        let note = format!("`{}`: {}", r.system, r.notes);
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    d.bullets(notes);
}
