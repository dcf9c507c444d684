//! JWT's cost and the library's call path: every JWT system the run measured with both
//! verifiers (`X` with `--jwt-verifier cached`, `X@stock` with jsonwebtoken's own `decode`)
//! side by side, so the report can say how much of a JWT request's CPU was the library's
//! call path (the key parsed per call, the claims parsed twice) rather than the signature.

use super::*;
use crate::plan::Verifier;

/// `(cached, stock)` costs of every JWT system measured both ways, in the run's order.
fn pairs<'a>(a: &'a Analysis<'_>) -> Vec<(&'a Cost, &'a Cost)> {
    a.costs
        .iter()
        .filter(|s| s.system.verifier == Verifier::Stock && s.instance_us > 0.0)
        .filter_map(|stock| {
            let cached = a.costs.iter().find(|c| {
                c.system.verifier == Verifier::Builtin
                    && c.system == System { verifier: Verifier::Builtin, ..stock.system }
            })?;
            Some((cached, stock))
        })
        .collect()
}

pub(super) fn section(a: &Analysis<'_>, d: &mut Doc) {
    let pairs = pairs(a);
    if pairs.is_empty() {
        return;
    }
    d.h(2, "verifier", "JWT's cost without the library's call path");
    d.p(
        "Each JWT system below ran twice: as the server runs by default (`--jwt-verifier cached`: the key kept parsed, and a \
         token carrying the server's own header checked in one pass — the signature, then one parse of the claims under the \
         same rules) and with jsonwebtoken's own `decode` (`@stock`: the key parsed on every call, the claims parsed twice). \
         Both accept exactly the same tokens. The difference is what the library's call path costs per request; what is left \
         in the cached figure is the signature, the claims and the server stack.",
    );
    let mut rows = Vec::new();
    let mut sentences = Vec::new();
    for (cached, stock) in &pairs {
        let saved = stock.instance_us - cached.instance_us;
        rows.push(vec![
            cached.system.to_string(),
            format!("{:.1}", cached.instance_us),
            format!("{:.1}", stock.instance_us),
            format!("{saved:+.1}"),
            format!("{:.0} %", 100.0 * saved / stock.instance_us),
        ]);
        sentences.push(format!("{} {:.0} %", cached.system, 100.0 * saved / stock.instance_us));
    }
    d.table(&["system", "cached CPU/req µs", "stock CPU/req µs", "stock − cached µs", "share of stock"], "lrrrr", rows);
    d.p(format!(
        "Instance CPU per request, the median over each system's points. The library's call path was {} of the stock \
         request; a share under 10 % is within what repeated runs on this kind of machine differ by.",
        and_list(&sentences)
    ));
}
