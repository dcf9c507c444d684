//! The source's comparison table with this run's numbers, the source's claims row by row
//! against the data, and "when to choose which".

use super::*;

pub(super) fn source_table(a: &Analysis<'_>, d: &mut Doc) {
    let systems = systems(a);
    if systems.is_empty() {
        return;
    }
    let n = a.largest_n().unwrap_or(1);
    d.h(2, "source-table", "The source's comparison table, with numbers");
    d.p(
        "Rows follow the study note's table (state, scalability, security, server load, expiry); each cell is a number from this run, \
         computed as stated. The security, failure and expiry rows come from the revocation and chaos runs beside this sweep \
         (see *Revocation and failures*); a cell that names another system reuses that system's number because the mechanism is \
         the same, and says so.",
    );
    let mut head: Vec<String> = vec!["aspect".into(), "measure".into()];
    head.extend(systems.iter().map(|s| s.to_string()));
    let cells = |f: &dyn Fn(System) -> String| systems.iter().map(|s| f(*s)).collect::<Vec<_>>();
    let row = |aspect: &str, measure: &str, cells: Vec<String>| {
        let mut r = vec![aspect.to_owned(), measure.to_owned()];
        r.extend(cells);
        r
    };
    let mut rows = Vec::new();
    rows.push(row(
        "State",
        "where it lives",
        cells(&|s| match s {
            System::SESSION_MEMORY => "each instance's memory".into(),
            System::SESSION_REDIS => "one shared Redis".into(),
            System::SESSION_REDIS_CACHED => "one shared Redis, recently read sessions copied to each instance".into(),
            System::SESSION_POSTGRES | System::SESSION_POSTGRES_TOUCH => "one shared PostgreSQL table".into(),
            System::SESSION_REDIS_CLUSTER => "a shared Redis Cluster, spread over its shards".into(),
            System::JWT_HS256_DENYLIST => "in the token; denied tokens in Redis".into(),
            System::JWT_HS256_DENYLIST_CACHED => "in the token; denied tokens in Redis, copied to each instance".into(),
            _ => "in the token, on the client".into(),
        }),
    ));
    rows.push(row(
        "State",
        "bytes held server-side per session",
        cells(&|s| {
            if let Some((b, how)) = super::live::bytes_per_live(a, s) {
                return match s.server() {
                    crate::plan::Server::Jwt => format!("0 per request; {b:.0} B per refresh family ({how})"),
                    crate::plan::Server::Session => format!("{b:.0} B ({how})"),
                };
            }
            let how = match s {
                System::SESSION_REDIS | System::SESSION_REDIS_CLUSTER | System::SESSION_REDIS_CACHED => {
                    "Redis `MEMORY USAGE`"
                }
                System::SESSION_POSTGRES | System::SESSION_POSTGRES_TOUCH => "table + index per row, whole pages",
                System::SESSION_MEMORY => return "not measured (in-process map)".into(),
                _ => return "0 (refresh-token families: not measured)".into(),
            };
            a.series_of(s)
                .and_then(|se| se.points.iter().find_map(|p| p.store.as_ref()?.bytes_per_session))
                .map_or("not measured".into(), |b| format!("{b:.0} B ({how})"))
        }),
    ));
    rows.push(row(
        "State",
        "credential bytes sent per request",
        cells(&|s| {
            let c = if s.jwt_alg().is_some() { jwt_credential(s) } else { Some(session_credential()) };
            c.map_or("?".into(), |c| format!("{} B", c.bytes))
        }),
    ));
    rows.push(row(
        "Scalability",
        "gain over the last step in N (×, ideal ×2 for a doubling)",
        cells(&|s| {
            a.series_of(s)
                .and_then(|se| {
                    last_step(se).map(|(p, l, g)| format!("×{g:.2} ({p}→{l}){}", se.largest().map_or("", held_mark)))
                })
                .unwrap_or_else(|| "—".into())
        }),
    ));
    rows.push(row(
        "Scalability",
        &format!("scaling efficiency X(N)/(N·X(1)) at N={n}"),
        cells(&|s| {
            a.series_of(s)
                .and_then(|se| {
                    se.efficiency().map(|(_, e)| format!("{e:.2}{}", if e > 1.05 { " (N=1 understated)" } else { "" }))
                })
                .unwrap_or_else(|| "—".into())
        }),
    ));
    rows.push(row(
        "Scalability",
        "USL peak (instances)",
        cells(&|s| match a.series_of(s) {
            Some(se) => a.peak(se).map_or("no fit (see Scaling)".into(), |p| p.cell(0)),
            None => "—".into(),
        }),
    ));
    rows.push(row(
        "Scalability",
        "one instance lost: answers failed, users logged out; recovery",
        cells(&|s| experiments::chaos_cell(a, crate::record::chaos::Experiment::InstanceLoss, s)),
    ));
    rows.push(row(
        "Security",
        "revocation window: logout on one instance → refused on all, p50 (max)",
        cells(&|s| experiments::window_cell(a, s)),
    ));
    rows.push(row(
        "Security",
        "store stopped for a few seconds: answers failed; recovery",
        cells(&|s| experiments::chaos_cell(a, crate::record::chaos::Experiment::StoreFreeze, s)),
    ));
    rows.push(row(
        "Security",
        "store restarted empty: answers failed, users logged out; recovery",
        cells(&|s| experiments::chaos_cell(a, crate::record::chaos::Experiment::StoreRestart, s)),
    ));
    rows.push(row(
        "Server load",
        &format!("CPU µs per request, median over held points at {} (instance + store)", n_range(a)),
        cells(&|s| {
            a.cost(s).map_or("—".into(), |c| match c.store_us {
                Some(st) => format!("{:.0} + {st:.0}", c.instance_us),
                None => format!("{:.0}", c.instance_us),
            })
        }),
    ));
    rows.push(row(
        "Server load",
        "store commands per request",
        cells(&|s| a.cost(s).map_or("—".into(), |c| c.store_commands.map_or("0".into(), |x| format!("{x:.2}")))),
    ));
    if !a.live.is_empty() {
        let (lo, hi) = (a.results.config.live_sessions.iter().min(), a.results.config.live_sessions.iter().max());
        rows.push(row(
            "Server load",
            &format!("live sessions {} → {} (uniform spread): req/s, p99", lo.map_or(0, |x| *x), hi.map_or(0, |x| *x)),
            cells(&|s| {
                super::live::load_cell(a, s).unwrap_or_else(|| {
                    if s.supports_live() {
                        "not in the live-sessions steps of this run".into()
                    } else {
                        "no live-sessions step for this system (see *Live sessions as an axis*)".into()
                    }
                })
            }),
        ));
    }
    rows.push(row("Expiry", "how soon the server can end a credential", cells(&|s| experiments::expiry_cell(a, s))));
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let align = format!("ll{}", "r".repeat(systems.len()));
    d.table(&head_refs, &align, rows);
    d.p(format!(
        "How computed: server-side bytes are Redis `MEMORY USAGE` of sampled session keys after the login phase. Credential bytes are the \
         header line the client sends: `{}` for sessions; `{}` for JWT, with the token length computed from jwt-server's token layout \
         (header with `typ`, `alg`, 16-character `kid`; claims `sub` = `user12`, `role`, `iss`, `aud`, three 10-digit timestamps, 22-character \
         `jti` and `sid`; signatures of 32 B for HS256, 256 B for RS256 with a 2048-bit key, 64 B for ES256 and EdDSA), not measured on the wire. \
         CPU is per completed request from /proc, the median over the system's points that held their rate; store commands are Redis `INFO commandstats` deltas over requests. \
         session-memory's scalability cells use its sticky line.{}",
        session_credential().header,
        jwt_credential(System::JWT_HS256).map_or("", |c| c.header),
        if a.results.postgres.is_some() {
            " For PostgreSQL, server-side bytes are the sessions table's size with its index over its rows, and store commands \
             are statements from pg_stat_statements."
        } else {
            ""
        }
    ));
    let mut verdicts = Vec::new();
    verdicts.push(state_verdict(a));
    verdicts.push(scalability_verdict(a));
    verdicts.push(security_verdict(a));
    if let Some(v) = load_verdict(a) {
        verdicts.push(v);
    }
    verdicts.push(expiry_verdict(a));
    d.p("Row by row, the source's claim against the data:");
    d.bullets(verdicts);
}

fn security_verdict(a: &Analysis<'_>) -> String {
    let mut t = "**Security** — the source: server-side data is safer; a stolen JWT is risky.".to_string();
    let p50 = |s: System| experiments::window_of(a, s).and_then(|w| w.window_ms.p50);
    match (p50(System::JWT_HS256), p50(System::SESSION_REDIS)) {
        (Some(jwt), Some(session)) => t.push_str(&format!(
            " Right about logout: a stolen session cookie stopped working {} after logout, a stolen JWT kept working for {} (its \
             remaining lifetime).",
            experiments::duration_ms(session),
            experiments::duration_ms(jwt)
        )),
        _ => t.push_str(" The revocation window was not measured in this run."),
    }
    if let Some(d) = p50(System::JWT_HS256_DENYLIST).or(p50(System::JWT_HS256_DENYLIST_CACHED)) {
        t.push_str(&format!(
            " The gap is not inherent to JWT: a denylist closed it in {} — by bringing back a store, with its outage behaviour.",
            experiments::duration_ms(d)
        ));
    }
    if let Some(r) = experiments::run(a, crate::record::chaos::Experiment::StoreFreeze, System::SESSION_REDIS) {
        t.push_str(&format!(
            " The price of server-side state: while Redis was stopped, {} of session-redis answers failed (closed, 503) and \
             stateless JWT answered throughout.",
            if r.totals.ok + r.totals.failed() == 0 {
                "none".to_string()
            } else {
                format!("{:.0}%", experiments::failed_pct(r))
            }
        ));
    }
    t
}

fn expiry_verdict(a: &Analysis<'_>) -> String {
    let mut t =
        "**Expiry** — the source: the server can invalidate a session; a JWT is valid until it expires.".to_string();
    match experiments::window_of(a, System::JWT_HS256).and_then(|w| w.window_ms.p50) {
        Some(jwt) => t.push_str(&format!(
            " Measured, and right: {} — the server had no way to end the token sooner. Short lifetimes bound the window and cost a \
             refresh per lifetime; a denylist ends it at once.",
            experiments::duration_ms(jwt)
        )),
        None => t.push_str(" The delay was not measured in this run, so no number is claimed."),
    }
    if let Some(r) = experiments::run(a, crate::record::chaos::Experiment::StoreRestart, System::SESSION_REDIS)
        && r.users_relogged > 0
    {
        t.push_str(&format!(
            " The reverse also holds: a session store that restarts empty ends every session — {} of {} users had to log in again.",
            r.users_relogged, r.users
        ));
    }
    t
}

fn denylist_note(a: &Analysis<'_>) -> String {
    let p50 = |s| experiments::window_of(a, s).and_then(|w| w.window_ms.p50);
    match (p50(System::JWT_HS256_DENYLIST), p50(System::JWT_HS256_DENYLIST_CACHED)) {
        (Some(d), Some(c)) => format!(
            " (measured: a Redis check per request revoked in {}, a pub/sub-fed local copy in {})",
            experiments::duration_ms(d),
            experiments::duration_ms(c)
        ),
        (Some(d), None) | (None, Some(d)) => format!(" (measured: revoked in {})", experiments::duration_ms(d)),
        (None, None) => " (not measured in this run)".into(),
    }
}

fn security_first(a: &Analysis<'_>) -> String {
    let p50 = |s| experiments::window_of(a, s).and_then(|w| w.window_ms.p50);
    match (p50(System::SESSION_REDIS), p50(System::JWT_HS256)) {
        (Some(session), Some(jwt)) => format!(
            "**Security comes first (the source's finance example) → server-side state: sessions, or JWT with a denylist.** Logout \
             took effect in {} with a session and only after {} with a plain JWT; the state that makes this possible must be \
             available, so run the store like the database it has become.",
            experiments::duration_ms(session),
            experiments::duration_ms(jwt)
        ),
        _ => "**Security comes first (the source's finance example) → the data here can neither support nor refute it:** the \
              revocation window was not measured in this run."
            .into(),
    }
}

fn state_verdict(a: &Analysis<'_>) -> String {
    let session = session_credential().bytes;
    let jwt: Vec<(System, usize)> =
        systems(a).into_iter().filter_map(|s| Some((s, jwt_credential(s)?.bytes))).collect();
    let bytes = a
        .series_of(System::SESSION_REDIS)
        .and_then(|se| se.points.iter().find_map(|p| p.store.as_ref()?.bytes_per_session));
    let mut t = "**State** — the source: sessions live on the server, JWTs with the client.".to_string();
    if let Some(b) = bytes {
        t.push_str(&format!(
            " A Redis session cost {b:.0} B of store memory (≈{:.0} MB per million live sessions).",
            b
        ));
    }
    if let (Some(lo), Some(hi)) = (jwt.iter().map(|x| x.1).min(), jwt.iter().map(|x| x.1).max()) {
        t.push_str(&format!(
            " A JWT moves that cost to the wire: {lo}–{hi} B of credential on every request against {session} B for the session cookie \
             (×{:.1}–×{:.1}).",
            lo as f64 / session as f64,
            hi as f64 / session as f64
        ));
    }
    t
}

fn scalability_verdict(a: &Analysis<'_>) -> String {
    let mut t =
        "**Scalability** — the source: sessions must be synchronised when servers are added; JWT favours scaling out."
            .to_string();
    if let Some(rr) = a.rejecting.first() {
        if let Some(p) = rr.largest().filter(|p| p.instances > 1) {
            t.push_str(&format!(
                " Right for instance-local sessions without sticky routing: {:.1}% rejected at N={} (round-robin).",
                p.error_ratio * 100.0,
                p.instances
            ));
        }
        let jwt: Vec<f64> =
            a.series.iter().filter(|s| s.system.jwt_alg().is_some()).filter_map(held_step_efficiency).collect();
        if let Some(e) =
            a.series.iter().find(|s| s.system == rr.system && s.lb == Lb::Sticky).and_then(held_step_efficiency)
            && let (Some(lo), Some(hi)) = (jwt.iter().copied().reduce(f64::min), jwt.iter().copied().reduce(f64::max))
        {
            t.push_str(&format!(
                " Wrong as a general rule: with sticky routing the same sessions scaled at {:.0}% of linear over the last step, \
                 JWT at {:.0}–{:.0}%.",
                e * 100.0,
                lo * 100.0,
                hi * 100.0
            ));
        }
    }
    if let Some(s) = a.series.iter().find(|s| s.system.uses_store())
        && let (Some(p), Some((pn, ln, g))) = (s.largest(), held_step(s))
    {
        let at = attribute(a.results, p);
        if let Limit::Saturated(Resource::Store, u) = at.limit {
            t.push_str(&format!(
                " A shared store needs no synchronisation, but it is one resource: {} gained ×{g:.2} from N={pn} to N={ln} with \
                 the store at {}.",
                s.label(),
                pct(u)
            ));
        } else if let Some(su) = at.store.filter(|u| *u >= SATURATED) {
            t.push_str(&format!(
                " {}'s store reached {} at N={ln}, as its instances reached their cap: at this store-to-instance ratio \
                 both ran out together.",
                s.label(),
                pct(su)
            ));
        } else if let Some(su) = at.store {
            t.push_str(&format!(" {}'s store reached {} at N={ln} and did not saturate.", s.label(), pct(su)));
        }
    }
    t
}

fn load_verdict(a: &Analysis<'_>) -> Option<String> {
    let v = costs_sorted(a);
    let cheapest = v.first()?;
    let dearest = v.last()?;
    let jwt: Vec<&&Cost> = v.iter().filter(|c| c.system.jwt_alg().is_some()).collect();
    let mut t = format!(
        "**Server load** — the source: sessions load the server, stateless JWT little. The cheapest request was {} ({}), the dearest {} ({}).",
        cheapest.system,
        us(total(cheapest)),
        dearest.system,
        us(total(dearest))
    );
    if let (Some(lo), Some(hi)) = (jwt.first(), jwt.last()) {
        t.push_str(&format!(" JWT ranged {}–{} by algorithm.", us(total(lo)), us(total(hi))));
    }
    if let Some(redis) = v.iter().find(|c| c.store_us.is_some()) {
        t.push_str(&format!(
            " A {} request cost {} at the instance and {} at the store, {:.2} store commands per request.",
            redis.system,
            us(redis.instance_us),
            us(redis.store_us.unwrap_or(0.0)),
            redis.store_commands.unwrap_or(0.0)
        ));
    }
    if cheapest.system.jwt_alg().is_none() {
        t.push_str(" So the claim holds against a shared store, not against sessions as such.");
    }
    Some(t)
}

pub(super) fn choose(a: &Analysis<'_>, d: &mut Doc) {
    let v = costs_sorted(a);
    let cost_of = |s: System| v.iter().copied().find(|c| c.system == s);
    let mut items = Vec::new();
    if let (Some(sticky), Some(c)) = (
        a.series.iter().find(|s| s.system == System::SESSION_MEMORY && s.lb == Lb::Sticky),
        cost_of(System::SESSION_MEMORY).map(total),
    ) {
        let gain = held_step(sticky).map_or(String::new(), |(p, l, g)| {
            format!(", {} from N={p} to N={l}", repeats::gain_text(sticky, p, l, g))
        });
        let c = cost_of(System::SESSION_MEMORY).map_or(us(c), cost_us);
        let cheapest = v.first().is_some_and(|c| c.system == System::SESSION_MEMORY);
        items.push(format!(
            "**Sticky routing is available and losing an instance may log its users out → in-memory sessions.** {}: {}{gain}, \
             no store to run. Without stickiness they are wrong by design (see *Session synchronisation*).{}",
            if cheapest { "The cheapest request measured" } else { "CPU per request" },
            c,
            experiments::run(a, crate::record::chaos::Experiment::InstanceLoss, System::SESSION_MEMORY).map_or(
                " Failover is not measured in this run.".to_string(),
                |r| format!(" Losing one of {} instances logged out {} of {} users.", r.instances, r.users_relogged, r.users)
            )
        ));
    }
    if let Some(cost) = a.costs.iter().find(|c| c.store_us.is_some()) {
        let k = instances_per_store(cost, 2.0, 1.0, 1000.0).map_or(String::new(), |k| {
            format!(
                " — in the model below, one Redis core serves ≈{k:.0} two-core instances if the app adds 1 ms of CPU per request"
            )
        });
        items.push(format!(
            "**Any instance must serve any user, and logout must take effect on the server → a shared session store ({}).** \
             Plan the store, not the instances: it is the one resource every request touches{k}.{}",
            cost.system,
            super::store_choice::shard_advice(a)
        ));
    }
    items.extend(super::store_choice::items(a));
    let jwt: Vec<&&Cost> = v.iter().filter(|c| c.system.jwt_alg().is_some()).collect();
    if !jwt.is_empty() {
        let list: Vec<String> = jwt.iter().map(|c| format!("{} {}", c.system, cost_us(c))).collect();
        // HS256 is symmetric with or without a denylist: the verifier holds the signing secret.
        let asym_text = jwt.iter().find(|c| c.system.jwt_alg() != Some("HS256")).map_or(String::new(), |c| {
            format!(
                " When other services must verify tokens without the signing secret, {} was the cheapest asymmetric choice here.",
                c.system
            )
        });
        items.push(format!(
            "**Many instances or services, no shared state wanted, and a token may stay valid until it expires → JWT.** Cost depends on \
             the algorithm: {}.{}{asym_text} Revoking before expiry needs a denylist — a store again{}.",
            list.join(", "),
            if jwt.first().is_some_and(|c| c.system == System::JWT_HS256) {
                " HS256 is cheapest when the issuer and the verifier can share a secret."
            } else {
                ""
            },
            denylist_note(a),
        ));
    }
    items.push(security_first(a));
    d.h(2, "choose", "When to choose which");
    d.bullets(items);
    let wrong = usual_advice(a);
    if !wrong.is_empty() {
        d.p("Where the usual advice does not survive the data:");
        d.bullets(wrong);
    }
}

fn usual_advice(a: &Analysis<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let v = costs_sorted(a);
    if let Some(mem) = v.iter().copied().find(|c| c.system == System::SESSION_MEMORY) {
        // `v` is sorted by cost: the first JWT is the cheapest.
        let lo = v.iter().copied().find(|c| c.system.jwt_alg().is_some());
        if let Some(lo) = lo.filter(|lo| total(lo) > total(mem) * (1.0 + NOISE)) {
            out.push(format!(
                "\"JWT means less server load\": every JWT algorithm cost more CPU per request (at best {}) than an in-memory session \
                 ({}). JWT saves the *store*, not CPU.",
                cost_us(lo),
                cost_us(mem)
            ));
        }
    }
    if let Some(st) = a.series.iter().find(|s| s.system == System::SESSION_MEMORY && s.lb == Lb::Sticky) {
        let jwt: Vec<f64> =
            a.series.iter().filter(|s| s.system.jwt_alg().is_some()).filter_map(held_step_efficiency).collect();
        let jwt_lo = jwt.iter().copied().fold(f64::INFINITY, f64::min);
        if let Some(e) = held_step_efficiency(st)
            && e >= KEPT_SCALING
            && !jwt.is_empty()
            && e >= jwt_lo * (1.0 - NOISE)
        {
            out.push(format!(
                "\"Sessions don't scale out\": sticky in-memory sessions kept {:.0}% of linear over the last step, as JWT did \
                 ({:.0}% at worst). What stops scaling is a resource every request shares.",
                e * 100.0,
                jwt_lo * 100.0
            ));
        }
    }
    if let Some(redis_cost) = v.iter().copied().find(|c| c.system == System::SESSION_REDIS) {
        let redis = total(redis_cost);
        let dearer: Vec<String> = v
            .iter()
            .filter(|c| c.system.jwt_alg().is_some() && total(c) > redis * (1.0 + NOISE))
            .map(|c| format!("{} at {}", c.system, cost_us(c)))
            .collect();
        if !dearer.is_empty() {
            out.push(format!(
                "\"A signature check is cheaper than a session lookup\": {} cost more CPU per request than a Redis session with the store's \
                 CPU included: {}.",
                and_list(&dearer),
                cost_us(redis_cost)
            ));
        }
    }
    out
}
