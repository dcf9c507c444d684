//! Reading what criterion wrote: for every benchmark, `<id dir>/new/benchmark.json` (its
//! ID) and `<id dir>/new/estimates.json` (nanoseconds per iteration). `new` is always the
//! latest run of that benchmark; `base` and `change` (comparisons with earlier runs) are
//! ignored.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::Context as _;
use serde::Deserialize;

/// Where criterion writes, by its own rule: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion` under the workspace.
pub fn default_criterion_dir(workspace: &Path) -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("criterion"),
        None => workspace.join("target").join("criterion"),
    }
}

/// One benchmark's latest estimates, in nanoseconds per iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub median: f64,
    pub median_ci: (f64, f64),
    pub mean: f64,
    pub mean_ci: (f64, f64),
    /// Confidence level of both intervals (criterion's default: 0.95).
    pub confidence: f64,
    /// When criterion wrote the estimates.
    pub written: Option<SystemTime>,
}

/// Every benchmark found, by full ID (`group/function[/parameter]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    pub benches: BTreeMap<String, Estimate>,
}

impl Results {
    pub fn get(&self, id: &str) -> Option<&Estimate> {
        self.benches.get(id)
    }

    pub fn median(&self, id: &str) -> Option<f64> {
        self.get(id).map(|e| e.median)
    }

    /// Earliest and latest time a result was written.
    pub fn written_range(&self) -> Option<(SystemTime, SystemTime)> {
        let mut times = self.benches.values().filter_map(|e| e.written);
        let first = times.next()?;
        Some(times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
    }
}

#[derive(Deserialize)]
struct BenchmarkJson {
    full_id: String,
}

#[derive(Deserialize)]
struct EstimatesJson {
    mean: EstimateJson,
    median: EstimateJson,
}

#[derive(Deserialize)]
struct EstimateJson {
    confidence_interval: IntervalJson,
    point_estimate: f64,
}

#[derive(Deserialize)]
struct IntervalJson {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

/// Read every `new/` result under `dir`. A missing directory is an error (nothing was
/// benchmarked there); a malformed file is an error naming it.
pub fn read(dir: &Path) -> anyhow::Result<Results> {
    if !dir.is_dir() {
        anyhow::bail!("no criterion results in {} (run `cargo bench` first)", dir.display());
    }
    let mut results = Results::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).with_context(|| format!("cannot list {}", current.display()))?;
        for entry in entries {
            let path = entry.with_context(|| format!("cannot list {}", current.display()))?.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some((id, estimate)) = read_one(&path)? {
                    results.benches.insert(id, estimate);
                }
            } else {
                pending.push(path);
            }
        }
    }
    Ok(results)
}

fn read_one(new_dir: &Path) -> anyhow::Result<Option<(String, Estimate)>> {
    let benchmark = new_dir.join("benchmark.json");
    let estimates = new_dir.join("estimates.json");
    if !benchmark.is_file() || !estimates.is_file() {
        return Ok(None);
    }
    let parse_err = |p: &Path| format!("cannot parse {}", p.display());
    let id: BenchmarkJson = serde_json::from_slice(&std::fs::read(&benchmark).with_context(|| parse_err(&benchmark))?)
        .with_context(|| parse_err(&benchmark))?;
    let e: EstimatesJson = serde_json::from_slice(&std::fs::read(&estimates).with_context(|| parse_err(&estimates))?)
        .with_context(|| parse_err(&estimates))?;
    let written = std::fs::metadata(&estimates).and_then(|m| m.modified()).ok();
    let ci = |e: &EstimateJson| (e.confidence_interval.lower_bound, e.confidence_interval.upper_bound);
    Ok(Some((
        id.full_id,
        Estimate {
            median: e.median.point_estimate,
            median_ci: ci(&e.median),
            mean: e.mean.point_estimate,
            mean_ci: ci(&e.mean),
            confidence: e.mean.confidence_interval.confidence_level,
            written,
        },
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Write one result the way criterion 0.8 lays it out.
    pub(crate) fn write_result(root: &Path, dir: &str, full_id: &str, median_ns: f64) {
        let new = root.join(dir).join("new");
        std::fs::create_dir_all(&new).unwrap();
        let benchmark = serde_json::json!({
            "group_id": full_id.rsplit_once('/').map_or(full_id, |(g, _)| g),
            "function_id": full_id.rsplit_once('/').map(|(_, f)| f),
            "value_str": null,
            "throughput": null,
            "full_id": full_id,
            "directory_name": dir,
            "title": full_id,
        });
        let estimate = |point: f64| {
            serde_json::json!({
                "confidence_interval": {"confidence_level": 0.95, "lower_bound": point * 0.99, "upper_bound": point * 1.02},
                "point_estimate": point,
                "standard_error": point * 0.01,
            })
        };
        let estimates = serde_json::json!({
            "mean": estimate(median_ns * 1.01),
            "median": estimate(median_ns),
            "median_abs_dev": estimate(median_ns * 0.02),
            "slope": null,
            "std_dev": estimate(median_ns * 0.03),
        });
        std::fs::write(new.join("benchmark.json"), benchmark.to_string()).unwrap();
        std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
    }

    #[test]
    fn reads_new_results_by_full_id_and_ignores_the_rest() {
        let root = tempfile::tempdir().unwrap();
        write_result(
            root.path(),
            "jwt_aws_lc_rs_HS256/verify_jsonwebtoken",
            "jwt/aws_lc_rs/HS256/verify/jsonwebtoken",
            1234.5,
        );
        write_result(root.path(), "session_id/generate", "session/id/generate", 80.0);
        // A comparison with an earlier run and criterion's report folder are not results.
        let base = root.path().join("session_id/generate/base");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("estimates.json"), "not json").unwrap();
        std::fs::create_dir_all(root.path().join("report")).unwrap();

        let results = read(root.path()).unwrap();
        assert_eq!(results.benches.len(), 2);
        let e = results.get("jwt/aws_lc_rs/HS256/verify/jsonwebtoken").unwrap();
        assert_eq!(e.median, 1234.5);
        assert_eq!(e.confidence, 0.95);
        assert!((e.mean - 1246.845).abs() < 1e-9);
        assert!(e.mean_ci.0 < e.mean && e.mean < e.mean_ci.1);
        assert!(results.written_range().is_some());
    }

    #[test]
    fn a_missing_directory_or_a_broken_file_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        assert!(read(&root.path().join("nothing")).is_err());
        write_result(root.path(), "a/b", "a/b", 1.0);
        std::fs::write(root.path().join("a/b/new/estimates.json"), "{").unwrap();
        let err = format!("{:#}", read(root.path()).unwrap_err());
        assert!(err.contains("estimates.json"), "{err}");
    }
}
