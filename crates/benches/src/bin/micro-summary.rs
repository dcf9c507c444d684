//! `micro-summary`: criterion's latest results → `bench-results/micro.md`.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::Context as _;
use benches::{machine::Machine, render, results};
use clap::Parser;

/// Summarize the latest `cargo bench` results as markdown.
#[derive(Debug, Parser)]
#[command(name = "micro-summary")]
struct Args {
    /// Criterion's output directory [default: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion,
    /// else target/criterion in the workspace].
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Where to write the summary [default: bench-results/micro.md in the workspace].
    #[arg(long)]
    out: Option<PathBuf>,
    /// A caveat to print at the top, e.g. "the machine was busy with other builds".
    #[arg(long)]
    note: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The crate lives at crates/benches; the workspace is two levels up.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    let dir = args.criterion_dir.unwrap_or_else(|| results::default_criterion_dir(workspace));
    let out = args.out.unwrap_or_else(|| workspace.join("bench-results").join("micro.md"));

    let results = results::read(&dir)?;
    let machine = Machine::detect();
    let ctx = render::Context { machine: &machine, generated: SystemTime::now(), note: args.note.as_deref() };
    let text = render::render(&results, &ctx);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    let missing = render::expected_ids().iter().filter(|id| results.get(id).is_none()).count();
    println!(
        "wrote {} ({} results from {}; {missing} expected results missing)",
        out.display(),
        results.benches.len(),
        dir.display()
    );
    Ok(())
}
