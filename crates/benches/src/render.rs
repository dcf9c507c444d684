//! `micro.md`: criterion's results as tables a reader can compare — JWT library against
//! primitive per algorithm and backend, session operations, one request per server's
//! router, the argon2id login check — then every result with its confidence interval.
//!
//! Pure: the host description and the date come in, so the same inputs give the same text.

use std::{fmt::Write as _, time::SystemTime};

use crate::{
    ids::{self, jwt},
    machine::{Machine, format_utc},
    results::Results,
};

/// Everything about the run that is not a measurement.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub machine: &'a Machine,
    pub generated: SystemTime,
    /// A caveat printed at the top (e.g. "the machine was busy with other builds").
    pub note: Option<&'a str>,
}

pub const SUMMARY_COMMAND: &str = "cargo run -p benches --bin micro-summary";

pub fn render(results: &Results, ctx: &Context<'_>) -> String {
    let mut out = String::new();
    header(&mut out, results, ctx);
    jwt_section(&mut out, results);
    session_section(&mut out, results);
    router_section(&mut out, results);
    password_section(&mut out, results);
    missing_section(&mut out, results);
    all_results(&mut out, results);
    out
}

fn header(out: &mut String, results: &Results, ctx: &Context<'_>) {
    let m = ctx.machine;
    let written = match results.written_range() {
        Some((lo, hi)) => format!("{} – {}", format_utc(lo), format_utc(hi)),
        None => "unknown".to_owned(),
    };
    let _ = writeln!(out, "# Micro-benchmarks\n");
    let _ = writeln!(
        out,
        "What the pieces of one request cost on their own, measured in-process with criterion: a JWT \
         signature with jsonwebtoken and without it, session IDs and store lookups, one request through \
         each server's router, and the argon2id check behind a login. The sweep (`authbench sweep`) \
         measures whole servers under load; these price the parts behind its CPU per request.\n"
    );
    let _ = writeln!(out, "- **Machine:** {} · {} cores · {}", m.cpu, m.cores, m.kernel);
    let _ = writeln!(out, "- **Compiler:** {} · `bench` profile (release)", m.rustc);
    let _ = writeln!(out, "- **Measured:** {written} · summary written {}", format_utc(ctx.generated));
    let _ = writeln!(
        out,
        "- **Produced by:** `cargo bench` from the workspace root, then `{SUMMARY_COMMAND}`, which reads \
         criterion's `$CARGO_TARGET_DIR/criterion/**/new/{{benchmark,estimates}}.json` and writes this file."
    );
    if let Some(note) = ctx.note {
        let _ = writeln!(out, "\n> **Note:** {note}");
    }
    let _ = writeln!(
        out,
        "\nFigures are criterion's medians, time per operation on one thread unless said, to 3 significant \
         digits; the mean and its 95 % confidence interval are under [All results](#all-results).\n"
    );
}

fn jwt_section(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## JWT: jsonwebtoken against the raw signature\n");
    let _ = writeln!(
        out,
        "The token is one jwt-server issues (`typ: at+jwt`, `kid`, nine claims). **jsonwebtoken** is jsonwebtoken 12 (`encode`, or `decode` with jwt-server's \
         `Validation`: pinned algorithm, `exp`/`nbf`/`iss`/`aud`/`sub` required). **primitive** is the \
         backend's own signature operation over the same signing input with the key parsed once: aws-lc-rs \
         `hmac`/`signature` for `aws_lc_rs`; `hmac`+`sha2`, `rsa`, `p256`, `ed25519-dalek` for \
         `rust_crypto`. **+ key parse** parses the key first, as jsonwebtoken's backends do on every call. \
         **overhead** = jsonwebtoken − primitive (base64, JSON header and claims, validation, key parsing); \
         **jwt-server** is `TokenService::verify`, the code a request runs, with the default `--jwt-verifier cached`: \
         the server's key kept parsed, and a token carrying the server's own header checked in one pass (signature, \
         then one parse of the claims under the same rules); **stock** is the same with `--jwt-verifier stock`, \
         jsonwebtoken's `decode` with its own verifier, plus the server's header checks. The server is built on \
         aws-lc-rs, so these two columns are measured in the `aws_lc_rs` rows only.\n"
    );
    let _ = writeln!(out, "### Verify\n");
    let _ = writeln!(
        out,
        "| alg | backend | jsonwebtoken | primitive | overhead | ratio | primitive + key parse | jwt-server | stock |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for alg in ids::ALGS {
        for backend in ids::BACKENDS {
            let get = |f: &str| r.median(&ids::jwt_id(backend, alg, f));
            let server = |f: &str| if backend == ids::AWS_LC { get(f) } else { None };
            let (lib, prim) = (get(jwt::VERIFY_LIBRARY), get(jwt::VERIFY_PRIMITIVE));
            let _ = writeln!(
                out,
                "| {alg} | `{backend}` | {} | {} | {} | {} | {} | {} | {} |",
                time(lib),
                time(prim),
                diff(lib, prim),
                ratio(lib, prim),
                time(get(jwt::VERIFY_PRIMITIVE_KEY_PARSE)),
                time(server(jwt::VERIFY_SERVER)),
                time(server(jwt::VERIFY_SERVER_STOCK)),
            );
        }
    }
    let _ = writeln!(out, "\n### Sign\n");
    let _ = writeln!(out, "| alg | backend | jsonwebtoken | primitive | overhead | ratio | primitive + key parse |");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|");
    for alg in ids::ALGS {
        for backend in ids::BACKENDS {
            let get = |f: &str| r.median(&ids::jwt_id(backend, alg, f));
            let (lib, prim) = (get(jwt::SIGN_LIBRARY), get(jwt::SIGN_PRIMITIVE));
            let _ = writeln!(
                out,
                "| {alg} | `{backend}` | {} | {} | {} | {} | {} |",
                time(lib),
                time(prim),
                diff(lib, prim),
                ratio(lib, prim),
                time(get(jwt::SIGN_PRIMITIVE_KEY_PARSE)),
            );
        }
    }
    let _ = writeln!(out);
}

fn session_section(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## Sessions\n");
    let _ = writeln!(
        out,
        "The memory store is prefilled with 65 536 sessions; N threads each look up their own sequence of \
         IDs at once (64 shards, one `std::sync::Mutex` each). Its time is per lookup as one thread sees \
         it; ops/s is for all threads together. Redis runs on loopback: one request, one reply.\n"
    );
    let _ = writeln!(out, "| operation | median | ops/s |");
    let _ = writeln!(out, "|---|--:|--:|");
    let id = |f: &str| ids::id(ids::SESSION_ID_GROUP, f);
    let mut rows: Vec<(String, String, f64)> = vec![
        ("new session ID (32 bytes from the OS CSPRNG)".into(), id(ids::SESSION_ID_GENERATE), 1.0),
        ("encode an ID (base64url, the cookie value)".into(), id(ids::SESSION_ID_ENCODE), 1.0),
        ("parse an ID from a cookie value (strict)".into(), id(ids::SESSION_ID_PARSE), 1.0),
    ];
    for n in ids::SESSION_MEMORY_THREADS {
        let label = format!("memory store `get`, {n} thread{}", if n == 1 { "" } else { "s" });
        rows.push((label, ids::session_memory_id(n), n as f64));
    }
    let redis = |f: &str| ids::id(ids::SESSION_REDIS_GROUP, f);
    rows.push(("Redis `GET` round trip".into(), redis(ids::SESSION_REDIS_GET), 1.0));
    rows.push(("`RedisStore::get` (`GETEX` + decode)".into(), redis(ids::SESSION_REDIS_STORE_GET), 1.0));
    for (label, id, threads) in rows {
        let m = r.median(&id);
        let _ = writeln!(out, "| {label} | {} | {} |", time(m), rate(m.map(|ns| threads * 1e9 / ns)));
    }
    let _ = writeln!(out);
}

fn router_section(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## One request through each server's router\n");
    let _ = writeln!(
        out,
        "`tower::ServiceExt::oneshot` of an authenticated `GET /me` on the axum router the server builds \
         (`config::build`: metrics, `no-store`, body limit, the auth extractor, the JSON reply), on a \
         current-thread tokio runtime, response body read. No sockets and no HTTP parsing: this is the \
         per-request auth cost plus the routing around it. `/healthz` through the session-memory router \
         is the same path without authentication; the difference is what authenticating costs. The 401 \
         row is `GET /me` with a session cookie another instance issued: what each of the (N−1)/N requests \
         round-robin sends to the wrong session-memory instance costs.\n"
    );
    let _ = writeln!(out, "| system | `GET /me` | minus `/healthz` | requests/s, one at a time |");
    let _ = writeln!(out, "|---|--:|--:|--:|");
    let baseline = r.median(&ids::id(ids::ROUTER_HEALTHZ_GROUP, ids::ROUTER_BASELINE_SYSTEM));
    for system in ids::ROUTER_SYSTEMS {
        let m = r.median(&ids::id(ids::ROUTER_ME_GROUP, system));
        let _ = writeln!(out, "| {system} | {} | {} | {} |", time(m), diff(m, baseline), rate(m.map(|ns| 1e9 / ns)));
    }
    let _ = writeln!(
        out,
        "| `/healthz` (no auth, baseline) | {} | — | {} |",
        time(baseline),
        rate(baseline.map(|ns| 1e9 / ns))
    );
    let rejected = r.median(&ids::id(ids::ROUTER_REJECTED_GROUP, ids::ROUTER_BASELINE_SYSTEM));
    let _ = writeln!(
        out,
        "| session-memory, a session another instance holds (401) | {} | {} | {} |\n",
        time(rejected),
        diff(rejected, baseline),
        rate(rejected.map(|ns| 1e9 / ns))
    );
}

fn password_section(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## Login: argon2id verify\n");
    let _ = writeln!(
        out,
        "A correct password against a hash at the servers' parameters (OWASP: m = 19 MiB, t = 2, p = 1). \
         `Passwords::verify` is what `/login` calls: the same check on tokio's blocking pool behind a \
         semaphore.\n"
    );
    let _ = writeln!(out, "| what | median | logins/s per core |");
    let _ = writeln!(out, "|---|--:|--:|");
    for (label, f) in [
        ("`argon2` verify on the calling thread", ids::PASSWORD_VERIFY),
        ("`auth_core::password::Passwords::verify`", ids::PASSWORD_SERVER_VERIFY),
    ] {
        let m = r.median(&ids::id(ids::PASSWORD_GROUP, f));
        let _ = writeln!(out, "| {label} | {} | {} |", time(m), rate(m.map(|ns| 1e9 / ns)));
    }
    let _ = writeln!(out);
}

/// Every ID the tables above look for.
pub fn expected_ids() -> Vec<String> {
    let mut v = Vec::new();
    for backend in ids::BACKENDS {
        for alg in ids::ALGS {
            for f in [
                jwt::SIGN_LIBRARY,
                jwt::SIGN_PRIMITIVE,
                jwt::SIGN_PRIMITIVE_KEY_PARSE,
                jwt::VERIFY_LIBRARY,
                jwt::VERIFY_PRIMITIVE,
                jwt::VERIFY_PRIMITIVE_KEY_PARSE,
            ] {
                v.push(ids::jwt_id(backend, alg, f));
            }
            if backend == ids::AWS_LC {
                for f in [jwt::VERIFY_SERVER, jwt::VERIFY_SERVER_STOCK] {
                    v.push(ids::jwt_id(backend, alg, f));
                }
            }
        }
    }
    for f in [ids::SESSION_ID_GENERATE, ids::SESSION_ID_ENCODE, ids::SESSION_ID_PARSE] {
        v.push(ids::id(ids::SESSION_ID_GROUP, f));
    }
    v.extend(ids::SESSION_MEMORY_THREADS.map(ids::session_memory_id));
    for f in [ids::SESSION_REDIS_GET, ids::SESSION_REDIS_STORE_GET] {
        v.push(ids::id(ids::SESSION_REDIS_GROUP, f));
    }
    v.extend(ids::ROUTER_SYSTEMS.map(|s| ids::id(ids::ROUTER_ME_GROUP, s)));
    v.push(ids::id(ids::ROUTER_HEALTHZ_GROUP, ids::ROUTER_BASELINE_SYSTEM));
    v.push(ids::id(ids::ROUTER_REJECTED_GROUP, ids::ROUTER_BASELINE_SYSTEM));
    for f in [ids::PASSWORD_VERIFY, ids::PASSWORD_SERVER_VERIFY] {
        v.push(ids::id(ids::PASSWORD_GROUP, f));
    }
    v
}

fn missing_section(out: &mut String, r: &Results) {
    let missing: Vec<String> = expected_ids().into_iter().filter(|id| r.get(id).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "**Not measured** (no result; the Redis items are skipped when no Redis answers at \
         `$AUTHBENCH_REDIS_URL` or 127.0.0.1:6379, and a suite run with a filter measures only part):\n"
    );
    for id in missing {
        let _ = writeln!(out, "- `{id}`");
    }
    let _ = writeln!(out);
}

fn all_results(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## All results\n");
    let _ = writeln!(out, "| benchmark | median | mean | 95 % CI of the mean |");
    let _ = writeln!(out, "|---|--:|--:|--:|");
    for (id, e) in &r.benches {
        let _ = writeln!(
            out,
            "| `{id}` | {} | {} | {} – {} |",
            time(Some(e.median)),
            time(Some(e.mean)),
            time(Some(e.mean_ci.0)),
            time(Some(e.mean_ci.1))
        );
    }
}

/// Round to 3 significant digits.
fn sig3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// A rounded value with as many decimals as 3 significant digits need.
fn digits(x: f64) -> String {
    let a = x.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.decimals$}")
}

/// Nanoseconds as `812 ns`, `1.23 µs`, `45.6 ms`, `2.00 s`.
pub fn format_ns(ns: f64) -> String {
    let r = sig3(ns);
    let (value, unit) = match r.abs() {
        a if a < 1e3 => (r, "ns"),
        a if a < 1e6 => (r / 1e3, "µs"),
        a if a < 1e9 => (r / 1e6, "ms"),
        _ => (r / 1e9, "s"),
    };
    format!("{} {unit}", digits(value).replace('-', "−"))
}

fn time(ns: Option<f64>) -> String {
    ns.map_or_else(|| "—".to_owned(), format_ns)
}

fn diff(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let d = format_ns(a - b);
            if a >= b { format!("+{d}") } else { d }
        }
        _ => "—".to_owned(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("×{}", digits(sig3(a / b))),
        _ => "—".to_owned(),
    }
}

/// Operations per second as `1.23 M`, `456 k`, `12.3`.
fn rate(per_s: Option<f64>) -> String {
    let Some(x) = per_s else { return "—".to_owned() };
    let r = sig3(x);
    match r {
        r if r >= 1e6 => format!("{} M", digits(r / 1e6)),
        r if r >= 1e3 => format!("{} k", digits(r / 1e3)),
        r => digits(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{read, tests::write_result};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(format_ns(812.4), "812 ns");
        assert_eq!(format_ns(999.6), "1.00 µs");
        assert_eq!(format_ns(1234.0), "1.23 µs");
        assert_eq!(format_ns(45_649_000.0), "45.6 ms");
        assert_eq!(format_ns(2e9), "2.00 s");
        assert_eq!(format_ns(7.25), "7.25 ns");
        assert_eq!(format_ns(-1520.0), "−1.52 µs");
        assert_eq!(ratio(Some(4119.0), Some(1000.0)), "×4.12");
        assert_eq!(diff(Some(3000.0), Some(1000.0)), "+2.00 µs");
        assert_eq!(rate(Some(1e9 / 812.0)), "1.23 M");
        assert_eq!(rate(Some(21.7)), "21.7");
    }

    #[test]
    fn renders_the_tables_from_a_tiny_criterion_directory() {
        let root = tempfile::tempdir().unwrap();
        let hs = |f: &str| ids::jwt_id(ids::AWS_LC, "HS256", f);
        write_result(root.path(), "a", &hs(jwt::VERIFY_LIBRARY), 2000.0);
        write_result(root.path(), "b", &hs(jwt::VERIFY_PRIMITIVE), 500.0);
        write_result(root.path(), "c", &ids::session_memory_id(2), 100.0);
        write_result(root.path(), "d", &ids::id(ids::ROUTER_ME_GROUP, "jwt-hs256"), 5000.0);
        write_result(root.path(), "e", &ids::id(ids::ROUTER_HEALTHZ_GROUP, ids::ROUTER_BASELINE_SYSTEM), 1500.0);
        write_result(root.path(), "f", &ids::id(ids::PASSWORD_GROUP, ids::PASSWORD_VERIFY), 25e6);
        write_result(root.path(), "g", "something/else", 1.0);
        write_result(root.path(), "h", &hs(jwt::VERIFY_SERVER), 1800.0);
        write_result(root.path(), "i", &hs(jwt::VERIFY_SERVER_STOCK), 2100.0);
        let results = read(root.path()).unwrap();
        let machine =
            Machine { cpu: "Test CPU".into(), cores: 2, kernel: "Linux 6.1".into(), rustc: "rustc 1.95.0".into() };
        let ctx = Context {
            machine: &machine,
            generated: UNIX_EPOCH + Duration::from_secs(1_709_211_900),
            note: Some("busy machine"),
        };
        let md = render(&results, &ctx);

        assert!(md.starts_with("# Micro-benchmarks\n"), "{md}");
        assert!(md.contains("- **Machine:** Test CPU · 2 cores · Linux 6.1\n"), "{md}");
        assert!(md.contains("summary written 2024-02-29 13:05 UTC"), "{md}");
        assert!(md.contains("> **Note:** busy machine"), "{md}");
        assert!(md.contains(SUMMARY_COMMAND), "{md}");
        // Library against primitive: difference and ratio; absent items are dashes.
        assert!(
            md.contains("| HS256 | `aws_lc_rs` | 2.00 µs | 500 ns | +1.50 µs | ×4.00 | — | 1.80 µs | 2.10 µs |\n"),
            "{md}"
        );
        assert!(md.contains("| HS256 | `rust_crypto` | — | — | — | — | — | — | — |\n"), "{md}");
        // Per-thread time, aggregate rate over both threads.
        assert!(md.contains("| memory store `get`, 2 threads | 100 ns | 20.0 M |\n"), "{md}");
        assert!(md.contains("| jwt-hs256 | 5.00 µs | +3.50 µs | 200 k |\n"), "{md}");
        assert!(md.contains("| `argon2` verify on the calling thread | 25.0 ms | 40.0 |\n"), "{md}");
        // Missing items are listed; unknown ones still appear under All results.
        assert!(md.contains("- `session/redis/GET`\n"), "{md}");
        assert!(md.contains("| `something/else` | 1.00 ns | 1.01 ns | 1.00 ns – 1.03 ns |\n"), "{md}");
    }
}
