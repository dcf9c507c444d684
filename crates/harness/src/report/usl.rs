//! The Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted by
//! nonlinear least squares with σ, κ ≥ 0.
//!
//! σ is contention (the serial share that queues), κ is coherency (the cost every instance
//! pays for every other one, which makes throughput fall past a peak), λ is the throughput
//! of one instance. A few points and three parameters make a small problem, so it is solved
//! here instead of pulling in an optimisation crate: a coarse grid (λ has a closed form
//! for fixed σ, κ) finds the basin, then Levenberg–Marquardt polishes it on every face of
//! the constraint box (σ and κ free, only one free, both zero) and the best feasible
//! answer wins. The constrained optimum lies on one of those faces, so no projection
//! heuristics are needed.

use std::fmt;

/// Fewest points a fit accepts: three parameters need at least one degree of freedom left
/// over, or R² means nothing.
pub const MIN_POINTS: usize = 4;

/// κ at or below this is "no retrograde term": the curve never peaks.
const KAPPA_ZERO: f64 = 1e-9;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UslFit {
    pub sigma: f64,
    pub kappa: f64,
    pub lambda: f64,
    /// Coefficient of determination on the fitted points.
    pub r2: f64,
    pub points: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FitError {
    TooFewPoints { have: usize },
    TooFewInstanceCounts { have: usize },
    BadPoint { n: f64, x: f64 },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooFewPoints { have } => write!(
                f,
                "{have} usable point{} — a 3-parameter fit needs at least {MIN_POINTS}",
                if *have == 1 { "" } else { "s" }
            ),
            FitError::TooFewInstanceCounts { have } => {
                write!(f, "only {have} distinct instance counts — σ and κ cannot be told apart")
            }
            FitError::BadPoint { n, x } => write!(f, "unusable point N={n}, X={x}"),
        }
    }
}

impl std::error::Error for FitError {}

impl UslFit {
    /// Throughput the model predicts at `n` instances.
    pub fn predict(&self, n: f64) -> f64 {
        model(self.lambda, self.sigma, self.kappa, n)
    }

    /// N where throughput peaks, `sqrt((1−σ)/κ)`; `None` when κ ≈ 0 (no peak) or σ ≥ 1.
    pub fn peak(&self) -> Option<f64> {
        (self.kappa > KAPPA_ZERO && self.sigma < 1.0).then(|| ((1.0 - self.sigma) / self.kappa).sqrt())
    }
}

/// Refits in [`kappa_interval`].
const BOOTSTRAP_ROUNDS: usize = 200;

/// A 90 % interval for κ (5th to 95th percentile) by residual bootstrap: the fitted curve
/// times the measured/fitted ratios drawn with replacement, refitted [`BOOTSTRAP_ROUNDS`]
/// times. A fixed-seed generator keeps it a pure function of the points (the report
/// renders the same bytes). With a handful of points it is a rough interval, but it says
/// whether a κ is told apart from another one at all.
pub fn kappa_interval(points: &[(f64, f64)], fit: &UslFit) -> (f64, f64) {
    let ratios: Vec<f64> = points.iter().map(|&(n, x)| x / fit.predict(n)).filter(|r| r.is_finite()).collect();
    if ratios.is_empty() {
        return (fit.kappa, fit.kappa);
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        // xorshift64*: small, fixed, good enough to draw indices.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize
    };
    let mut kappas: Vec<f64> = (0..BOOTSTRAP_ROUNDS)
        .filter_map(|_| {
            let drawn: Vec<(f64, f64)> =
                points.iter().map(|&(n, _)| (n, fit.predict(n) * ratios[next() % ratios.len()])).collect();
            fit_points(&drawn).ok().map(|f| f.kappa)
        })
        .collect();
    if kappas.is_empty() {
        return (fit.kappa, fit.kappa);
    }
    kappas.sort_by(f64::total_cmp);
    let at = |q: f64| kappas[((kappas.len() - 1) as f64 * q).round() as usize];
    (at(0.05), at(0.95))
}

fn model(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fit `(instances, throughput)` points.
pub fn fit(points: &[(f64, f64)]) -> Result<UslFit, FitError> {
    fit_points(points)
}

fn fit_points(points: &[(f64, f64)]) -> Result<UslFit, FitError> {
    if let Some(&(n, x)) = points.iter().find(|(n, x)| !(n.is_finite() && *n >= 1.0 && x.is_finite() && *x > 0.0)) {
        return Err(FitError::BadPoint { n, x });
    }
    if points.len() < MIN_POINTS {
        return Err(FitError::TooFewPoints { have: points.len() });
    }
    let mut ns: Vec<f64> = points.iter().map(|p| p.0).collect();
    ns.sort_by(f64::total_cmp);
    ns.dedup();
    if ns.len() < 3 {
        return Err(FitError::TooFewInstanceCounts { have: ns.len() });
    }

    let mut best: Option<(f64, [f64; 3])> = None;
    for face in [
        Face { sigma: true, kappa: true },
        Face { sigma: true, kappa: false },
        Face { sigma: false, kappa: true },
        Face { sigma: false, kappa: false },
    ] {
        let start = grid_start(points, face);
        let p = levenberg_marquardt(points, face, start);
        let c = cost(points, p);
        if best.is_none_or(|(bc, _)| c < bc) {
            best = Some((c, p));
        }
    }
    let (ss_res, [lambda, sigma, kappa]) = best.unwrap_or((f64::INFINITY, [0.0; 3]));
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let r2 = if ss_tot > 0.0 { 1.0 - ss_res / ss_tot } else { 1.0 };
    Ok(UslFit { sigma, kappa, lambda, r2, points: points.len() })
}

/// Which of σ, κ are free; a fixed one is held at zero.
#[derive(Clone, Copy, Debug)]
struct Face {
    sigma: bool,
    kappa: bool,
}

fn cost(points: &[(f64, f64)], [lambda, sigma, kappa]: [f64; 3]) -> f64 {
    points.iter().map(|&(n, x)| (x - model(lambda, sigma, kappa, n)).powi(2)).sum()
}

/// For fixed σ, κ the model is linear in λ, so the best λ is a projection.
fn best_lambda(points: &[(f64, f64)], sigma: f64, kappa: f64) -> f64 {
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), &(n, x)| {
        let g = model(1.0, sigma, kappa, n);
        (num + x * g, den + g * g)
    });
    if den > 0.0 { num / den } else { 0.0 }
}

fn grid_start(points: &[(f64, f64)], face: Face) -> [f64; 3] {
    // Zero plus log-spaced values over the ranges seen in practice (σ up to 1, κ up
    // to 0.3), a tenth of a decade apart.
    let sigmas: Vec<f64> = if face.sigma {
        std::iter::once(0.0).chain((0..=40).map(|i| 10f64.powf(-4.0 + i as f64 / 10.0))).collect()
    } else {
        vec![0.0]
    };
    let kappas: Vec<f64> = if face.kappa {
        std::iter::once(0.0).chain((0..=65).map(|i| 10f64.powf(-7.0 + i as f64 / 10.0))).collect()
    } else {
        vec![0.0]
    };
    let mut best = (f64::INFINITY, [best_lambda(points, 0.0, 0.0), 0.0, 0.0]);
    for &s in &sigmas {
        for &k in &kappas {
            let p = [best_lambda(points, s, k), s, k];
            let c = cost(points, p);
            if c < best.0 {
                best = (c, p);
            }
        }
    }
    best.1
}

/// Levenberg–Marquardt (Marquardt's diagonal scaling, so λ ~ 10³ and κ ~ 10⁻⁴ share one
/// damping factor) on the free parameters of `face`. A step that leaves the feasible box is
/// clamped; if that does not lower the cost it is rejected like any other bad step, and the
/// smaller face covers that corner.
fn levenberg_marquardt(points: &[(f64, f64)], face: Face, start: [f64; 3]) -> [f64; 3] {
    // Indices of free parameters in [λ, σ, κ].
    let free: Vec<usize> = [Some(0), face.sigma.then_some(1), face.kappa.then_some(2)].into_iter().flatten().collect();
    let k = free.len();
    let mut p = start;
    if !face.sigma {
        p[1] = 0.0;
    }
    if !face.kappa {
        p[2] = 0.0;
    }
    let mut c = cost(points, p);
    let mut mu = 1e-3;
    for _ in 0..500 {
        let mut a = [[0.0f64; 3]; 3];
        let mut g = [0.0f64; 3];
        for &(n, x) in points {
            let [lambda, sigma, kappa] = p;
            let d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
            let f = lambda * n / d;
            let full = [n / d, -lambda * n * (n - 1.0) / (d * d), -lambda * n * n * (n - 1.0) / (d * d)];
            let j: Vec<f64> = free.iter().map(|&i| full[i]).collect();
            let r = x - f;
            for u in 0..k {
                g[u] += j[u] * r;
                for v in 0..k {
                    a[u][v] += j[u] * j[v];
                }
            }
        }
        let mut improved = false;
        // Raise the damping until a step lowers the cost (or give up: converged).
        while mu < 1e16 {
            let mut m = a;
            for u in 0..k {
                m[u][u] += mu * a[u][u].max(1e-300);
            }
            let Some(delta) = solve(&m, &g, k) else {
                mu *= 10.0;
                continue;
            };
            let mut q = p;
            for (u, &i) in free.iter().enumerate() {
                q[i] = p[i] + delta[u];
            }
            q[1] = q[1].max(0.0);
            q[2] = q[2].max(0.0);
            let qc = cost(points, q);
            if qc.is_finite() && qc < c {
                let small = (c - qc) <= 1e-15 * c.max(1e-300);
                p = q;
                c = qc;
                mu = (mu / 3.0).max(1e-12);
                improved = !small;
                break;
            }
            mu *= 4.0;
        }
        if !improved {
            break;
        }
    }
    p
}

/// Gaussian elimination with partial pivoting on the leading `k`×`k` block.
fn solve(m: &[[f64; 3]; 3], b: &[f64; 3], k: usize) -> Option<[f64; 3]> {
    let mut a = *m;
    let mut y = *b;
    for col in 0..k {
        let pivot = (col..k).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        y.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (row, r) in lower.iter_mut().enumerate().take(k - col - 1) {
            let f = r[col] / pivot_row[col];
            for (x, p) in r.iter_mut().zip(pivot_row).take(k).skip(col) {
                *x -= f * p;
            }
            y[col + 1 + row] -= f * y[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..k).rev() {
        let s: f64 = (row + 1..k).map(|c| a[row][c] * x[c]).sum();
        x[row] = (y[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synth(lambda: f64, sigma: f64, kappa: f64, ns: &[f64]) -> Vec<(f64, f64)> {
        ns.iter().map(|&n| (n, model(lambda, sigma, kappa, n))).collect()
    }

    #[test]
    fn recovers_known_parameters_from_exact_data() {
        for (lambda, sigma, kappa) in
            [(1000.0, 0.05, 0.002), (3400.0, 0.0, 0.01), (800.0, 0.3, 0.0001), (12_000.0, 0.02, 0.0)]
        {
            let data = synth(lambda, sigma, kappa, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
            let f = fit(&data).unwrap();
            assert!((f.lambda - lambda).abs() / lambda < 1e-6, "{f:?} vs λ={lambda}");
            assert!((f.sigma - sigma).abs() < 1e-6, "{f:?} vs σ={sigma}");
            assert!((f.kappa - kappa).abs() < 1e-8, "{f:?} vs κ={kappa}");
            assert!(f.r2 > 0.999_999, "{f:?}");
        }
    }

    #[test]
    fn recovers_parameters_from_four_points_like_a_sweep() {
        // The sweep's default instance counts, no noise.
        let f = fit(&synth(3000.0, 0.04, 0.003, &[1.0, 2.0, 4.0, 8.0])).unwrap();
        assert!((f.lambda - 3000.0).abs() < 1e-3, "{f:?}");
        assert!((f.sigma - 0.04).abs() < 1e-6, "{f:?}");
        assert!((f.kappa - 0.003).abs() < 1e-7, "{f:?}");
        let peak = f.peak().unwrap();
        assert!((peak - (0.96f64 / 0.003).sqrt()).abs() < 1e-3, "{peak}");
    }

    #[test]
    fn small_noise_moves_the_fit_only_a_little() {
        let ns = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0];
        // Deterministic ±1 % wiggle.
        let noisy: Vec<_> = synth(2000.0, 0.03, 0.001, &ns)
            .into_iter()
            .enumerate()
            .map(|(i, (n, x))| (n, x * if i % 2 == 0 { 1.01 } else { 0.99 }))
            .collect();
        let f = fit(&noisy).unwrap();
        assert!((f.lambda - 2000.0).abs() / 2000.0 < 0.03, "{f:?}");
        assert!((f.sigma - 0.03).abs() < 0.02, "{f:?}");
        assert!((f.kappa - 0.001).abs() < 0.0005, "{f:?}");
        assert!(f.r2 > 0.99, "{f:?}");
    }

    #[test]
    fn superlinear_data_stays_feasible_and_beats_a_brute_force_grid() {
        // X(2) > 2·X(1), as when one capped instance is measured below its capacity: the
        // unconstrained optimum has σ < 0; the fit must stay at σ, κ ≥ 0 and still be the
        // best feasible answer.
        let data = [(1.0, 1345.0), (2.0, 4361.0), (4.0, 6797.0), (8.0, 14_586.0)];
        let f = fit(&data).unwrap();
        assert!(f.sigma >= 0.0 && f.kappa >= 0.0, "{f:?}");
        let sse = cost(&data, [f.lambda, f.sigma, f.kappa]);
        let mut grid_best = f64::INFINITY;
        for i in 0..=400 {
            for j in 0..=400 {
                let (s, k) = (i as f64 * 0.001, j as f64 * 0.000_05);
                grid_best = grid_best.min(cost(&data, [best_lambda(&data, s, k), s, k]));
            }
        }
        assert!(sse <= grid_best * (1.0 + 1e-9), "fit {sse} vs grid {grid_best}: {f:?}");
    }

    #[test]
    fn the_kappa_interval_holds_the_fit_and_excludes_zero_only_for_a_real_peak() {
        let bending: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&n| (n, model(1000.0, 0.02, 0.01, n) * if n == 4.0 { 1.03 } else { 0.99 }))
            .collect();
        let f = fit(&bending).unwrap();
        let (lo, hi) = kappa_interval(&bending, &f);
        assert!(lo <= f.kappa && f.kappa <= hi, "{lo} ≤ {} ≤ {hi}", f.kappa);
        assert!(lo > 0.0, "a clear bend keeps κ above zero: {lo}");
        let linear: Vec<(f64, f64)> =
            [1.0, 2.0, 4.0, 8.0].iter().map(|&n| (n, 1000.0 * n * if n == 2.0 { 1.05 } else { 0.98 })).collect();
        let f = fit(&linear).unwrap();
        let (lo, _) = kappa_interval(&linear, &f);
        assert_eq!(lo, 0.0, "noise around a straight line cannot exclude κ = 0");
        let f = fit(&bending).unwrap();
        assert_eq!(kappa_interval(&bending, &f), kappa_interval(&bending, &f), "a pure function of the points");
    }

    #[test]
    fn linear_scaling_has_no_peak() {
        let f = fit(&synth(500.0, 0.0, 0.0, &[1.0, 2.0, 4.0, 8.0])).unwrap();
        assert!(f.sigma < 1e-9 && f.kappa < 1e-12, "{f:?}");
        assert_eq!(f.peak(), None);
        assert!((f.predict(64.0) - 32_000.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_too_few_or_bad_points() {
        assert_eq!(fit(&[(1.0, 1.0), (2.0, 2.0), (4.0, 3.0)]), Err(FitError::TooFewPoints { have: 3 }));
        assert_eq!(
            fit(&[(1.0, 1.0), (1.0, 1.1), (2.0, 2.0), (2.0, 2.1)]),
            Err(FitError::TooFewInstanceCounts { have: 2 })
        );
        assert!(matches!(fit(&[(1.0, 1.0), (2.0, 0.0), (4.0, 3.0), (8.0, 4.0)]), Err(FitError::BadPoint { .. })));
        assert!(FitError::TooFewPoints { have: 3 }.to_string().contains("at least 4"));
    }
}
