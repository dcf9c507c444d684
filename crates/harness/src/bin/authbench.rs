use std::process::ExitCode;

/// Print to stdout. A reader that went away (`authbench compare A B | head`) is no reason
/// to panic: everything is in its files already.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

use clap::Parser as _;
use harness::{
    chaos,
    cli::{Cli, Command},
    load, record, report, revocation, sweep,
};

fn render(dir: &std::path::Path) -> anyhow::Result<()> {
    let files =
        report::render(dir).map_err(|e| e.context(format!("rendering the report in {} failed", dir.display())))?;
    if let Some(md) = files.first() {
        say!("report: {} (+ report.html and {} charts)\n", md.display(), files.len().saturating_sub(2));
    }
    Ok(())
}

/// An experiment written beside a sweep's results.json belongs in that run's report:
/// render it again. A directory without a sweep has no report to update.
fn rerender(dir: &std::path::Path) {
    if dir.join(record::sweep::FILE).is_file()
        && let Err(e) = render(dir)
    {
        eprintln!("authbench: {e:#}");
    }
}

/// `authbench compare`: print and write the comparison, then apply the gate.
fn compare(args: &harness::cli::CompareArgs) -> anyhow::Result<()> {
    let a = record::Results::read(&args.a)?;
    let b = record::Results::read(&args.b)?;
    let c = report::compare::compare_on(&a, &b, args.basis);
    let md = report::compare::markdown(&c, &a, &b);
    say!("{md}");
    let out = args.out.clone().unwrap_or_else(|| args.b.join("compare.md"));
    std::fs::write(&out, &md).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    say!("comparison: {}\n", out.display());
    if let Some(pct) = args.fail_above {
        let worse = report::compare::worse(&c, pct);
        anyhow::ensure!(
            worse.is_empty(),
            "worse by more than {pct}% ({}): {}",
            report::compare::basis_text(&c),
            worse.join("; ")
        );
        say!("no system got worse by more than {pct}% ({})\n", report::compare::basis_text(&c));
    }
    Ok(())
}

/// `authbench merge`: add the generators' logs up, print the point, write it with --out.
fn merge(args: &harness::cli::MergeArgs) -> anyhow::Result<()> {
    let merged = harness::merge::merge_files(&args.files)?;
    if let Some(out) = &args.out {
        harness::merge::write_json(out, &merged)?;
    }
    if args.json {
        say!("{}\n", serde_json::to_string_pretty(&merged)?);
    } else {
        say!("{}", harness::merge::text(&merged));
        if let Some(out) = &args.out {
            say!("merged point: {}\n", out.display());
        }
    }
    Ok(())
}

/// `authbench advise`: read the run (and a mixed run for per-route costs), answer.
fn advise(args: &harness::cli::AdviseArgs) -> anyhow::Result<()> {
    let dir = &args.from;
    anyhow::ensure!(
        dir.join(record::sweep::FILE).is_file(),
        "{} holds no results.json: --from takes a run directory written by `authbench sweep`",
        dir.display()
    );
    let results = record::Results::read(dir)?;
    let optional = |file: &str| dir.join(file).is_file();
    let revocation =
        optional(record::revocation::FILE).then(|| record::revocation::RevocationResults::read(dir)).transpose()?;
    let chaos = optional(record::chaos::FILE).then(|| record::chaos::ChaosResults::read(dir)).transpose()?;
    let mix = args.mix_from.as_deref().map(record::Results::read).transpose()?;
    if let Some(m) = &mix {
        anyhow::ensure!(
            !m.route_demands.is_empty(),
            "{} holds no per-route demands: --mix-from takes a run made with `sweep --workload mixed`",
            args.mix_from.as_deref().unwrap_or(dir).display()
        );
    }
    let advice = harness::advise::advise(&results, revocation.as_ref(), chaos.as_ref(), mix.as_ref(), &args.params());
    if args.json {
        say!("{}\n", serde_json::to_string_pretty(&advice)?);
    } else {
        say!("{}", harness::advise::render::text(&advice));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let quiet_stop = matches!(cli.command, Command::DelayProxy(_));
    tokio::spawn(async move {
        auth_core::server::shutdown_signal().await;
        if !quiet_stop {
            eprintln!("\nauthbench: stopping (Ctrl-C); finishing the current point's bookkeeping");
        }
        let _ = stop_tx.send(true);
    });
    let result = match cli.command {
        Command::Sweep(args) => {
            let config = args.into_config();
            let out = config.out.clone();
            match sweep::sweep(config, stop_rx.clone()).await {
                Ok(mut results) => {
                    say!("{}", record::summary_table(&results));
                    // The fits belong in results.json (docs/results.md); the report recomputes them
                    // from the points, so rendering stays a function of the points alone.
                    results.fits = report::fits(&results);
                    match results.write(&out) {
                        Ok(()) => {
                            say!("results: {}\n", out.join(record::sweep::FILE).display());
                            render(&out)
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => {
                    if let Ok(partial) = record::Results::read(&out) {
                        say!("{}", record::summary_table(&partial));
                        say!("partial results: {}\n", out.join(record::sweep::FILE).display());
                    }
                    Err(e)
                }
            }
        }
        Command::Report(args) => {
            let write_fits = || -> anyhow::Result<()> {
                let mut results = record::Results::read(&args.dir)?;
                results.fits = report::fits(&results);
                results.write(&args.dir)
            };
            if args.write_fits { write_fits().and_then(|()| render(&args.dir)) } else { render(&args.dir) }
        }
        Command::Revocation(args) => {
            let config = args.into_config();
            let out = config.out.clone();
            revocation::revocation(config, stop_rx.clone()).await.map(|results| {
                say!("{}", revocation::summary_table(&results));
                say!("results: {}\n", out.join(record::revocation::FILE).display());
                rerender(&out);
            })
        }
        Command::Chaos(args) => match args.into_config() {
            Ok(config) => {
                let out = config.out.clone();
                chaos::chaos(config, stop_rx.clone()).await.map(|results| {
                    say!("{}", chaos::summary_table(&results));
                    say!("results: {}\n", out.join(record::chaos::FILE).display());
                    rerender(&out);
                })
            }
            Err(e) => Err(e),
        },
        Command::Compare(args) => compare(&args),
        Command::Advise(args) => advise(&args),
        Command::Peers(args) if args.render => {
            let out = args.out.clone();
            harness::peers::PeersResults::read(&out).and_then(|results| {
                results.write_md(&out)?;
                say!("rendered: {}\n", out.join(harness::peers::FILE_MD).display());
                Ok(())
            })
        }
        Command::Peers(args) => {
            let config = args.into_config();
            let out = config.out.clone();
            harness::peers::peers(config, stop_rx.clone()).await.map(|results| {
                say!("{}", harness::peers::render(&results));
                say!("results: {}\n", out.join(harness::peers::FILE_MD).display());
            })
        }
        Command::DelayProxy(args) => {
            let serve = tokio::task::spawn_blocking(move || {
                let listener = std::net::TcpListener::bind(args.listen)
                    .map_err(|e| anyhow::anyhow!("delay-proxy: cannot listen on {}: {e}", args.listen))?;
                harness::deploy::delay::serve(
                    listener,
                    args.upstream,
                    args.rtt,
                    std::io::BufReader::new(std::io::stdin()),
                )
                .map_err(anyhow::Error::from)
            });
            let mut stop = stop_rx.clone();
            tokio::select! {
                r = serve => r.map_err(anyhow::Error::from).and_then(|r| r),
                // Its threads block in read(): leave at once rather than wait for them.
                _ = stop.wait_for(|stop| *stop) => std::process::exit(0),
            }
        }
        Command::Load(args) => {
            let json = args.json;
            match args.into_config() {
                Ok(config) => match load::run(config).await {
                    // Too late for --start-at: this generator would measure another window
                    // than its peers. Refused like a bad flag (exit 2), nothing written.
                    Err(e) if e.downcast_ref::<harness::drive::engine::TooLate>().is_some() => {
                        eprintln!("authbench: {e:#}");
                        return ExitCode::from(2);
                    }
                    result => result.and_then(|report| {
                        if json {
                            say!("{}\n", serde_json::to_string_pretty(&report)?);
                        } else {
                            say!("{}", load::text(&report));
                        }
                        Ok(())
                    }),
                },
                Err(e) => Err(e),
            }
        }
        Command::Merge(args) => {
            if let Err(e) = merge(&args) {
                // Bad input files: refused like a bad flag (exit 2), nothing written.
                eprintln!("authbench: {e:#}");
                return ExitCode::from(2);
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<harness::Refused>().is_some() => {
            eprintln!("authbench: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("authbench: {e:#}");
            if *stop_rx.borrow() { ExitCode::from(130) } else { ExitCode::FAILURE }
        }
    }
}
