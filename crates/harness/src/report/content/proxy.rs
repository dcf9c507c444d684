//! Through a real load balancer: each point measured through HAProxy (`--lb haproxy-*`)
//! beside the generator-balanced point it stands for (same system, N and stickiness) —
//! what the proxy added per request in CPU and latency, and whether the order of the
//! systems changes with it.

use super::*;

/// One proxied point and its generator-balanced reference.
struct Pair<'a> {
    proxied: &'a Point,
    direct: Option<&'a Point>,
}

fn pairs<'a>(a: &Analysis<'a>) -> Vec<Pair<'a>> {
    a.proxied
        .iter()
        .map(|&p| {
            let direct = a.results.points.iter().find(|q| {
                q.system == p.system
                    && q.instances == p.instances
                    && q.lb == p.lb.client_side()
                    && q.live.is_none()
                    && q.store_cpu == p.store_cpu
                    && q.store_rtt_us == p.store_rtt_us
                    && q.store_shards == p.store_shards
            });
            Pair { proxied: p, direct }
        })
        .collect()
}

fn latency(p: &Point) -> Option<(u64, u64)> {
    p.latency.as_ref().map(|l| (l.latency_us.p50, l.latency_us.p99))
}

fn signed_us(d: f64) -> String {
    if d.abs() >= 1000.0 { format!("{:+.2} ms", d / 1e3) } else { format!("{d:+.0} µs") }
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    if a.proxied.is_empty() {
        return;
    }
    let cap = a.results.config.lb_cpu.map_or(String::new(), |c| format!(", capped at {c} core in its own cgroup"));
    d.h(2, "proxy", "Through a real load balancer (HAProxy)");
    d.p(format!(
        "Every other figure in this report has the load generator balance the requests itself, a balancer that costs nothing. \
         Here the same points went through a real `haproxy` started by the harness{cap} (`balance roundrobin`, health checks on \
         `/healthz`; `haproxy-sticky` keys a stick table on the session cookie learnt from each login's `Set-Cookie`). Each row \
         sets the point beside its generator-balanced twin: what the proxy added is the difference. Latency is the latency run's, \
         at 70% of each point's own capacity."
    ));
    let pairs = pairs(a);
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|x| {
            let p = x.proxied;
            let mark = |q: &Point| if q.held { String::new() } else { NOT_HELD.to_string() };
            let (dx, dcpu, lat) = match x.direct {
                Some(q) => (
                    format!("{} ({:+.0}%)", rps(q.achieved_rps), (p.achieved_rps / q.achieved_rps - 1.0) * 100.0)
                        + &mark(q),
                    format!("{:.0} → {:.0}", q.cpu.per_request_us, p.cpu.per_request_us),
                    match (latency(q), latency(p)) {
                        (Some((q50, q99)), Some((p50, p99))) => {
                            format!("{} / {}", signed_us(p50 as f64 - q50 as f64), signed_us(p99 as f64 - q99 as f64))
                        }
                        _ => "—".into(),
                    },
                ),
                None => ("not measured".into(), format!("{:.0}", p.cpu.per_request_us), "—".into()),
            };
            vec![
                p.system.to_string(),
                p.instances.to_string(),
                p.lb.id().to_string(),
                rps(p.achieved_rps) + &mark(p),
                dx,
                p.cpu.lb_per_request_us.map_or("—".into(), |u| format!("{u:.0}")),
                dcpu,
                lat,
                if p.rejects_by_design() {
                    format!("{:.1}% rejected (by design)", p.error_ratio * 100.0)
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    d.table(
        &[
            "system",
            "N",
            "through",
            "req/s",
            "generator-balanced req/s (proxy's change)",
            "HAProxy CPU µs/request",
            "instance CPU µs/request (direct → proxied)",
            "added p50 / p99 at 70%",
            "",
        ],
        "lrlrrrrrl",
        rows,
    );
    let lb_us: Vec<f64> =
        pairs.iter().filter(|x| x.proxied.held).filter_map(|x| x.proxied.cpu.lb_per_request_us).collect();
    let mut text = Vec::new();
    if let (Some(lo), Some(hi)) = (lb_us.iter().copied().reduce(f64::min), lb_us.iter().copied().reduce(f64::max)) {
        text.push(format!(
            "HAProxy used {lo:.0}–{hi:.0} µs of CPU per request at the points that held: a cost a deployment pays on top of every \
             figure above, on the balancer's own cores."
        ));
    }
    text.push(order_sentence(&pairs));
    d.p(text.join(" "));
}

/// Whether the systems keep their order by throughput at each N when the proxy is in the path.
fn order_sentence(pairs: &[Pair<'_>]) -> String {
    let mut ns: Vec<usize> = pairs.iter().map(|x| x.proxied.instances).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut same = Vec::new();
    let mut changed = Vec::new();
    for n in ns {
        let mut at: Vec<(&Point, &Point)> = pairs
            .iter()
            .filter(|x| x.proxied.instances == n && x.proxied.held && !x.proxied.rejects_by_design())
            .filter_map(|x| Some((x.proxied, x.direct.filter(|q| q.held)?)))
            .collect();
        if at.len() < 2 {
            continue;
        }
        at.sort_by(|x, y| y.1.achieved_rps.total_cmp(&x.1.achieved_rps));
        let direct: Vec<String> = at.iter().map(|(p, _)| p.system.to_string()).collect();
        let mut by_proxy = at.clone();
        by_proxy.sort_by(|x, y| y.0.achieved_rps.total_cmp(&x.0.achieved_rps));
        let proxied: Vec<String> = by_proxy.iter().map(|(p, _)| p.system.to_string()).collect();
        if direct == proxied {
            same.push(format!("N={n} ({})", direct.join(" > ")));
        } else {
            changed.push(format!("N={n}: {} direct, {} through HAProxy", direct.join(" > "), proxied.join(" > ")));
        }
    }
    match (same.is_empty(), changed.is_empty()) {
        (true, true) => "Too few points held both ways to compare the order of the systems.".into(),
        (false, true) => format!(
            "The order of the systems by throughput is the same with and without the proxy at {}: the conclusions drawn with the \
             generator balancing stand.",
            same.join(", ")
        ),
        _ => format!(
            "The order of the systems by throughput changed with the proxy in the path ({}){}: read the generator-balanced \
             comparisons above with that in mind.",
            changed.join("; "),
            if same.is_empty() { String::new() } else { format!("; it held at {}", same.join(", ")) }
        ),
    }
}
