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

/// What the proxy added to p50 and p99, µs, at one rate on the same instances: the proxied
/// latency run against the same window balanced by the generator.
fn added(p: &Point) -> Option<(f64, f64)> {
    let (l, d) = (p.latency.as_ref()?, p.direct_latency.as_ref()?);
    Some((l.latency_us.p50 as f64 - d.latency_us.p50 as f64, l.latency_us.p99 as f64 - d.latency_us.p99 as f64))
}

/// Instance CPU per request at one rate, without → with the proxy.
fn cpu_pair(p: &Point) -> Option<(f64, f64)> {
    Some((p.direct_latency.as_ref()?.cpu_per_request_us?, p.latency.as_ref()?.cpu_per_request_us?))
}

/// The largest throughput gap between the generator's sticky and round-robin points of one
/// system whose state is shared (the two are the same path for it): this run's noise.
fn noise(a: &Analysis<'_>) -> Option<f64> {
    let pts = &a.results.points;
    pts.iter()
        .filter(|p| p.lb == Lb::Sticky && p.held && !p.system.instance_local_state() && p.live.is_none())
        .filter_map(|p| {
            let q = pts.iter().find(|q| {
                q.system == p.system
                    && q.instances == p.instances
                    && q.lb == Lb::RoundRobin
                    && q.held
                    && q.live.is_none()
            })?;
            Some((p.achieved_rps - q.achieved_rps).abs() / p.achieved_rps.min(q.achieved_rps))
        })
        .reduce(f64::max)
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
         sets the point's capacity beside its generator-balanced twin's. Latency and instance CPU are compared at one rate: \
         the proxied point's latency run (70% of its capacity) and the same window again on the same instances with the \
         generator balancing, straight after."
    ));
    let pairs = pairs(a);
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|x| {
            let p = x.proxied;
            let mark = |q: &Point| if q.held { String::new() } else { NOT_HELD.to_string() };
            let dx = x.direct.map_or("not measured".into(), |q| {
                format!("{} ({:+.0}%)", rps(q.achieved_rps), (p.achieved_rps / q.achieved_rps - 1.0) * 100.0) + &mark(q)
            });
            let dcpu = cpu_pair(p).map_or("—".into(), |(d, w)| format!("{d:.0} → {w:.0}"));
            let cap_cpu =
                x.direct.map_or("—".into(), |q| format!("{:.0} → {:.0}", q.cpu.per_request_us, p.cpu.per_request_us));
            let lat = match added(p) {
                Some((p50, p99)) => format!("{} / {}", signed_us(p50), signed_us(p99)),
                None if p.system.instance_local_state() => "— (the proxy placed the sessions)".into(),
                None => "—".into(),
            };
            vec![
                p.system.to_string(),
                p.instances.to_string(),
                p.lb.id().to_string(),
                rps(p.achieved_rps) + &mark(p),
                dx,
                p.cpu.lb_per_request_us.map_or("—".into(), |u| format!("{u:.0}")),
                cap_cpu,
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
            "instance CPU µs/request at capacity, without → with",
            "the same at one rate",
            "added p50 / p99",
            "",
        ],
        "lrlrrrrrrl",
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
    // Capacity: how the instances' CPU per request at capacity moved, and how busy the proxy was.
    let rises: Vec<f64> = pairs
        .iter()
        .filter(|x| x.proxied.held && !x.proxied.rejects_by_design())
        .filter_map(|x| Some(x.proxied.cpu.per_request_us / x.direct.filter(|q| q.held)?.cpu.per_request_us - 1.0))
        .filter(|r| r.is_finite())
        .collect();
    let lb_busy = a.results.config.lb_cpu.and_then(|cap| {
        pairs.iter().filter_map(|x| Some(x.proxied.cpu.lb_s? / (x.proxied.duration_s * cap))).reduce(f64::max)
    });
    if let (Some(lo), Some(hi), Some(busy)) =
        (rises.iter().copied().reduce(f64::min), rises.iter().copied().reduce(f64::max), lb_busy)
    {
        text.push(format!(
            "At capacity the instances' own CPU per request was {:+.0}% to {:+.0}% of the generator-balanced figure while \
             HAProxy used at most {} of its cap: {}",
            lo * 100.0,
            hi * 100.0,
            pct(busy),
            if busy < 0.8 && lo > 0.1 {
                "the instances, not the proxy, ran out first, each request dearer at full load (below capacity, at one rate, \
                 the instances' cost did not move — see the column). A likely cause, not measured here: the proxy reuses idle \
                 server connections, so an instance sees fewer of them than the generator opens. The capacities through \
                 the proxy are the ones a deployment behind one gets."
            } else if busy >= 0.8 {
                "the proxy itself was near its cap, so these capacities are the proxy's as much as the systems'."
            } else {
                "the capacity change is the proxy's path, not the instances' cost."
            }
        ));
    }
    let added: Vec<(f64, f64)> = pairs.iter().filter_map(|x| added(x.proxied)).collect();
    if !added.is_empty() {
        let range = |f: fn(&(f64, f64)) -> f64| {
            let v: Vec<f64> = added.iter().map(f).collect();
            (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        };
        let ((a50, b50), (a99, b99)) = (range(|x| x.0), range(|x| x.1));
        text.push(format!(
            "At one rate it added {} to {} at p50 and {} to {} at p99.",
            signed_us(a50),
            signed_us(b50),
            signed_us(a99),
            signed_us(b99)
        ));
    }
    let noise = noise(a);
    if let Some(n) = noise {
        text.push(format!(
            "For scale: the generator's sticky and round-robin points of one system with shared state, the same path twice, \
             differed by up to {} in throughput in this run; a change smaller than that is within noise.",
            pct(n)
        ));
    }
    text.push(order_sentence(&pairs, noise.unwrap_or(0.0)));
    d.p(text.join(" "));
}

/// Whether the systems keep their order by throughput at each N when the proxy is in the path:
/// each system through the policy it needs (sticky for instance-local state), the control
/// left out; a swap of two systems closer than `noise` is not a change.
fn order_sentence(pairs: &[Pair<'_>], noise: f64) -> String {
    let mut ns: Vec<usize> = pairs.iter().map(|x| x.proxied.instances).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut same = Vec::new();
    let mut changed = Vec::new();
    for n in ns {
        let mut at: Vec<(&Point, &Point)> = pairs
            .iter()
            .filter(|x| x.proxied.instances == n && x.proxied.held && !x.proxied.rejects_by_design())
            .filter(|x| !x.proxied.system.is_control())
            .filter(|x| (x.proxied.lb == Lb::HaproxySticky) == x.proxied.system.instance_local_state())
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
        // Systems within the noise of each other may swap places: only a swap of two systems
        // further apart than the noise, both ways, changes a conclusion.
        let gap = |a: f64, b: f64| (a - b).abs() / a.min(b);
        let apart = |x: &(&Point, &Point), y: &(&Point, &Point)| {
            gap(x.0.achieved_rps, y.0.achieved_rps) > noise && gap(x.1.achieved_rps, y.1.achieved_rps) > noise
        };
        let swapped = at.iter().enumerate().any(|(i, x)| {
            at.iter()
                .skip(i + 1)
                .any(|y| apart(x, y) && (x.0.achieved_rps > y.0.achieved_rps) != (x.1.achieved_rps > y.1.achieved_rps))
        });
        if direct == proxied || !swapped {
            let within = if direct == proxied {
                String::new()
            } else {
                format!("; through HAProxy {}, within noise", proxied.join(" > "))
            };
            same.push(format!("N={n} ({}{within})", direct.join(" > ")));
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
