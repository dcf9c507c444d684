//! Render: `results.json` → `report.md`, a self-contained `report.html` and the charts as
//! `*.svg`, next to the results. The last step of the pipeline, and the only one that
//! needs no running system: it reads the file and nothing else.
//!
//! [`analysis`] derives the numbers (series, [`usl`] fits, bottlenecks, the cost model),
//! [`charts`] draws them, [`content`] says what they mean as [`doc`] blocks, and
//! [`markdown`] / [`html`] print those blocks. Rendering is deterministic — no clock, sorted
//! iteration, fixed float formatting — so a committed results.json re-renders to the same
//! bytes.

pub mod analysis;
pub mod charts;
pub mod compare;
pub mod content;
pub mod doc;
pub mod html;
pub mod markdown;
pub mod usl;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::record::Results;

/// Render the report for the run in `dir` (which holds a sweep's `results.json`, and
/// may hold `revocation.json` and `chaos.json`); returns the paths written, `report.md` first.
pub fn render(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let sweep = dir.join(crate::record::sweep::FILE);
    if !sweep.is_file() {
        let others: Vec<&str> = [crate::record::revocation::FILE, crate::record::chaos::FILE]
            .into_iter()
            .filter(|f| dir.join(f).is_file())
            .collect();
        anyhow::ensure!(
            others.is_empty(),
            "{} holds {} but no sweep (results.json): the report is a sweep's report — run `authbench revocation` and \
             `authbench chaos` with --out pointing at a sweep's directory to include them",
            dir.display(),
            others.join(" and ")
        );
    }
    let results = Results::read(dir)?;
    let optional = |file: &str| dir.join(file).is_file();
    let revocation = optional(crate::record::revocation::FILE)
        .then(|| crate::record::revocation::RevocationResults::read(dir))
        .transpose()?;
    let chaos =
        optional(crate::record::chaos::FILE).then(|| crate::record::chaos::ChaosResults::read(dir)).transpose()?;
    let parts = parts(dir)?;
    render_with(&results, revocation.as_ref(), chaos.as_ref(), &parts, dir)
}

/// The sweeps in the run's sub-directories, by name.
fn parts(dir: &Path) -> anyhow::Result<Vec<analysis::Part>> {
    let mut parts = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list {}", dir.display()))?.path();
        if !path.join(crate::record::sweep::FILE).is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        parts.push(analysis::Part {
            dir: name.to_owned(),
            results: Results::read(&path)?,
            chaos: path.join(crate::record::chaos::FILE).is_file(),
        });
    }
    parts.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(parts)
}

/// The sub-directory of a run that holds its mixed workload (`scripts/reference.sh`).
pub const MIXED_DIR: &str = "mixed";

/// The USL fits of every scaling line that has enough held points, for `results.json`.
pub fn fits(results: &Results) -> Vec<crate::record::Fit> {
    let a = analysis::Analysis::new(results);
    // The control's fit too: a system's κ means something only beside the rig's own.
    a.series
        .iter()
        .chain(a.control.as_ref())
        .filter_map(|s| {
            let f = s.fit.as_ref().ok()?;
            Some(crate::record::Fit {
                system: s.system,
                lb: s.lb,
                model: "usl".into(),
                sigma: f.sigma,
                kappa: f.kappa,
                lambda: f.lambda,
                r2: f.r2,
                peak_instances: f.peak(),
            })
        })
        .collect()
}

/// Render `results` (a sweep alone) into `dir`.
pub fn render_results(results: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    render_with(results, None, None, &[], dir)
}

/// Render a sweep and the experiments run beside it into `dir`.
pub fn render_with(
    results: &Results,
    revocation: Option<&crate::record::revocation::RevocationResults>,
    chaos: Option<&crate::record::chaos::ChaosResults>,
    parts: &[analysis::Part],
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        !results.points.is_empty(),
        "{} has no measured points to report on",
        dir.join(crate::record::sweep::FILE).display()
    );
    let mut analysis = analysis::Analysis::new(results);
    analysis.revocation = revocation;
    analysis.chaos = chaos;
    analysis.parts = parts;
    let charts = charts::all(&analysis).context("drawing the charts")?;
    let doc = content::build(&analysis, &charts);
    let md = markdown::render(&doc.blocks);
    let html = html::render(&content::title(&analysis), &doc.blocks, &charts);

    let mut written = Vec::new();
    let mut write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot move {} into place", path.display()))?;
        written.push(path);
        Ok(())
    };
    write("report.md", &(md + "\n"))?;
    write("report.html", &html)?;
    for c in &charts {
        write(c.file, &c.svg)?;
    }
    Ok(written)
}
