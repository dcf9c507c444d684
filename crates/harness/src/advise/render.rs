//! The advice as text: the cells both the terminal table (under 100 columns) and the
//! report's "Your deployment" section print.

use super::{Advice, Outage, Params, Plan, StoreKind};

/// "4", or "4 (3–6)" when the demands' range moves it.
pub fn instances_cell(p: &Plan) -> String {
    range_cell(p.instances)
}

fn range_cell(v: [u32; 3]) -> String {
    if v[0] == v[1] && v[1] == v[2] { v[1].to_string() } else { format!("{} ({}–{})", v[1], v[0], v[2]) }
}

/// "2 shards", "3 cores" (PostgreSQL), "—" without a store.
pub fn store_cell(p: &Plan) -> String {
    match (p.store, p.store_units) {
        (Some(StoreKind::Postgres), Some(u)) => format!("{} core{}", range_cell(u), if u[1] == 1 { "" } else { "s" }),
        (Some(_), Some(u)) => format!("{} shard{}", range_cell(u), if u[1] == 1 { "" } else { "s" }),
        (Some(_), None) => "?".into(),
        (None, _) => "—".into(),
    }
}

pub fn revocation_cell(p: &Plan) -> String {
    match p.revocation_s {
        Some(s) if s.is_infinite() => "never".into(),
        Some(s) => fmt_secs(s),
        None => "?".into(),
    }
}

pub fn outage_cell(p: &Plan) -> &'static str {
    match p.outage {
        Outage::NoStore => "no store",
        Outage::KeepsAnswering => "answers",
        Outage::FailsClosed => "503s",
        Outage::LogsEveryoneOut => "logs out",
        Outage::NotMeasured => "?",
    }
}

/// Bytes as "1.2 GB", "350 MB", "12 kB".
pub fn bytes(b: f64) -> String {
    match b {
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.0} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.0} kB", b / 1e3),
        b => format!("{b:.0} B"),
    }
}

pub fn memory_cell(p: &Plan) -> String {
    p.session_memory_bytes.map_or("?".into(), bytes)
}

pub fn issuing_cell(p: &Plan) -> String {
    p.issuing_cores.map_or("?".into(), |c| format!("{c:.2}"))
}

pub fn option_name(p: &Plan) -> String {
    if p.system.instance_local_state() { format!("{} (sticky)", p.system) } else { p.system.to_string() }
}

/// The parameters in one or two sentences.
pub fn describe(params: &Params) -> String {
    let p = params;
    let mut s = format!(
        "{:.0} req/s at the peak on {}-core instances (sized to {:.0}% busy), app CPU {} per request, store RTT {}",
        p.peak_rps,
        p.instance_cores,
        p.target_utilization * 100.0,
        fmt_secs(p.app_cpu.as_secs_f64()),
        fmt_secs(p.store_rtt.as_secs_f64())
    );
    if let Some(r) = p.revocation {
        s.push_str(&format!(", revocation within {}", fmt_secs(r.as_secs_f64())));
    }
    if p.survive_store_outage {
        s.push_str(", must answer through a store outage");
    }
    if let Some(slo) = p.slo_p99 {
        s.push_str(&format!(", read p99 ≤ {}", fmt_secs(slo.as_secs_f64())));
    }
    s.push_str(&format!(
        ". Users: {} sessions, {} reads a minute, {} access tokens → {} logins/s, {} refreshes/s (JWT); {:.0} live \
         sessions; {:.3e} requests a day{}.",
        fmt_secs(p.profile.session_length.as_secs_f64()),
        p.profile.requests_per_minute,
        fmt_secs(p.profile.access_ttl.as_secs_f64()),
        fmt_rate(p.logins_per_s()),
        fmt_rate(p.refreshes_per_s()),
        p.sessions(),
        p.requests_per_day(),
        if p.requests_per_day.is_none() { " (the peak all day)" } else { "" }
    ));
    s
}

/// The terminal answer: two tables under 100 columns, the reasons, the exclusions, notes.
pub fn text(a: &Advice) -> String {
    let mut out = format!("authbench advise: run {} on {}\n", a.run_id, a.machine);
    out.push_str(&wrap(&describe(&a.params), 98));
    out.push('\n');
    out.push_str(&format!(
        "{:>2} {:<25} {:>8} {:>13} {:>5} {:>5} {:>8} {:>8} {:>7} {:>8}\n",
        "#", "option", "inst", "store", "cores", "auth", "+p50", "+p99", "revoke", "outage"
    ));
    for (i, p) in a.plans.iter().enumerate() {
        let rank = if p.excluded.is_empty() { (i + 1).to_string() } else { "x".into() };
        out.push_str(&format!(
            "{:>2} {:<25} {:>8} {:>13} {:>5} {:>4.0}% {:>8} {:>8} {:>7} {:>8}\n",
            rank,
            option_name(p),
            instances_cell(p),
            store_cell(p),
            format!("{:.1}", p.cores),
            p.auth_share * 100.0,
            fmt_secs(p.auth_p50_s),
            fmt_secs(p.auth_p99_s),
            revocation_cell(p),
            outage_cell(p)
        ));
    }
    out.push_str(&format!(
        "\n{:<25} {:>10} {:>12} {:>10} {:>9} {:>10}\n",
        "option", "memory", "wire/day", "issuing", "read p99", "saturates"
    ));
    for p in &a.plans {
        out.push_str(&format!(
            "{:<25} {:>10} {:>12} {:>10} {:>9} {:>10}\n",
            option_name(p),
            memory_cell(p),
            bytes(p.wire_bytes_per_day),
            issuing_cell(p),
            fmt_secs(p.read_p99_s),
            p.first_to_saturate
        ));
    }
    out.push_str(&wrap(
        "(auth: authentication's share of instance CPU; +p50/+p99: latency it adds to a read; memory: server-side state \
         for the live sessions; wire/day: credential bytes sent; issuing: cores for logins and refreshes; x: excluded)",
        98,
    ));
    out.push('\n');
    if let Some(top) = a.plans.first().filter(|p| p.excluded.is_empty()) {
        out.push_str(&wrap(&format!("Recommended: {}. {}.", option_name(top), a.reasons.join("; ")), 98));
    } else {
        out.push_str(&wrap(&a.reasons.join("; "), 98));
    }
    for p in a.plans.iter().filter(|p| !p.excluded.is_empty()) {
        out.push_str(&wrap(&format!("Excluded {}: {}.", option_name(p), p.excluded.join("; ")), 98));
    }
    for n in &a.notes {
        out.push_str(&wrap(&format!("Note: {n}."), 98));
    }
    out
}

/// Wrap at `width` columns on spaces, indenting continuation lines by two.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = format!("  {word}");
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// "350 µs", "2.5 ms", "5 s", "5 min".
pub fn fmt_secs(s: f64) -> String {
    if !s.is_finite() {
        "∞".into()
    } else if s == 0.0 {
        "0".into()
    } else if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.0} h", s / 3600.0)
    }
}

pub fn fmt_cores(c: f64) -> String {
    match c {
        c if (c - 1.0).abs() < 1e-9 => "1 core".into(),
        c if (c - c.round()).abs() < 1e-9 => format!("{c:.0} cores"),
        c => format!("{c:.1} cores"),
    }
}

/// A rate with two significant digits below 10 ("0.017", "1.6"), whole above.
pub fn fmt_rate(r: f64) -> String {
    match r {
        r if r == 0.0 || r >= 10.0 => format!("{r:.0}"),
        r if r >= 1.0 => format!("{r:.1}"),
        r => {
            let digits = (1.0 - r.log10().floor()).max(0.0) as usize;
            format!("{r:.digits$}")
        }
    }
}
