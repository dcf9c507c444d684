//! `authbench merge`'s flags.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The generators' interval logs (`authbench load --hlog FILE`).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Print the merged point as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Also write the merged point as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
