//! One run: targets → servers → goose → stop → verdict.
//!
//! Interrupts (Ctrl-C, SIGTERM): ours from the start, see [`interrupts`]. While servers
//! start, an interrupt abandons the start; while goose runs, the first one trips goose's
//! killswitch, so goose stops its users, prints its metrics and writes its reports; a
//! second one abandons goose. The servers are stopped on every path, and an interrupted
//! run fails.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use goose::{config::GooseConfiguration, metrics::GooseMetrics, prelude::*};
use tokio::sync::watch;

use crate::{
    cli::{self, Cli},
    journey::{self, Journey},
    servers::{self, Servers},
    summary::{self, Tally},
    targets::{self, Targets},
};

/// How long goose gets to wind down after its killswitch before it is abandoned.
const WIND_DOWN: Duration = Duration::from_secs(30);

/// Count SIGINT/SIGTERM/SIGHUP from now on, tripping goose's killswitch at each. Call
/// once, before goose runs: ctrlc takes one handler per process, so goose's own (which
/// would `exit(1)` on a second Ctrl-C, orphaning the servers) then declines to install.
pub fn interrupts() -> anyhow::Result<watch::Receiver<u32>> {
    let (tx, rx) = watch::channel(0u32);
    ctrlc::set_handler(move || {
        goose::trigger_killswitch("interrupted (Ctrl-C)");
        tx.send_modify(|n| *n += 1);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(rx)
}

/// Run the journeys; `Err` when anything failed (the message says what).
pub async fn run(cli: Cli, mut interrupts: watch::Receiver<u32>) -> anyhow::Result<()> {
    let config = cli.goose_configuration()?;
    if cli.informational() {
        // --version / --list / --scenarios-list: goose prints and returns, no load.
        let targets = Targets::new(vec!["http://127.0.0.1:9".into()], None, cli.lb)?;
        let (attack, _) = attack(&cli, config, targets, "")?;
        attack.execute().await?;
        return Ok(());
    }
    if let Some(users) = config.users {
        anyhow::ensure!(users >= 1, "--users must be at least 1");
        if config.host.is_none() {
            anyhow::ensure!(
                users <= cli.demo_users,
                "--users {users} needs at least as many demo users (--demo-users {})",
                cli.demo_users
            );
        }
    }

    let mut servers = Servers::default();
    let outcome = match config.host.clone() {
        Some(host) => against_host(&cli, config, &host, &mut interrupts).await,
        None => start_and_drive(&cli, config, &mut servers, &mut interrupts).await,
    };
    servers.stop().await;
    outcome
}

/// `--host`: one server someone else started.
async fn against_host(
    cli: &Cli,
    config: GooseConfiguration,
    host: &str,
    interrupts: &mut watch::Receiver<u32>,
) -> anyhow::Result<()> {
    anyhow::ensure!(cli.instances.is_none(), "--instances starts servers; --host runs against one");
    let url = targets::loopback_url(host)?;
    let about = format!("{} journeys against {url} (not started here)", cli.system);
    println!("authbench-goose: {about}");
    drive(cli, config, Targets::new(vec![url], None, cli.lb)?, &about, interrupts, None).await
}

/// Start the servers, then drive them; the caller stops them, whatever happened.
async fn start_and_drive(
    cli: &Cli,
    config: GooseConfiguration,
    servers: &mut Servers,
    interrupts: &mut watch::Receiver<u32>,
) -> anyhow::Result<()> {
    let plan = servers::Plan {
        system: cli.system,
        instances: cli.instances.unwrap_or(2),
        password: &cli.demo_password,
        demo_users: cli.demo_users,
        redis_url: cli.redis_url.as_deref(),
        bin_dir: cli.bin_dir.as_deref(),
    };
    tokio::select! {
        r = servers.start(&plan) => r?,
        _ = interrupts.changed() => bail!("interrupted (Ctrl-C) while starting the servers"),
    }
    let urls = servers.urls();
    let store = servers.store.as_ref().map(|s| format!(", store {}", s.url)).unwrap_or_default();
    let about = format!("{} journeys, {} instance(s) ({}): {}{store}", cli.system, urls.len(), cli.lb, urls.join(" "));
    println!("authbench-goose: {about}");
    let targets = Targets::new(urls, Some(servers.ids(cli.system)), cli.lb)?;
    drive(cli, config, targets, &about, interrupts, Some(servers)).await
}

/// Build the goose attack for `targets`: our scenario, and our defaults under goose's flags.
/// `about` labels the run in goose's reports (goose itself knows only the first instance).
fn attack(
    cli: &Cli,
    config: GooseConfiguration,
    targets: Targets,
    about: &str,
) -> anyhow::Result<(GooseAttack, Arc<Tally>)> {
    let plan = has_test_plan(&config);
    let reports = !config.report_file.is_empty();
    let bounded = config.iterations.is_some() || plan;
    let (ramp_given, run_time_given) =
        (config.increase_rate.is_some() || config.increase_time.is_some(), config.run_time.is_some());
    let host = targets.urls[0].clone();
    let tally = Arc::new(Tally::default());
    let journey = Arc::new(Journey {
        targets,
        password: cli.demo_password.clone(),
        me_per_journey: usize::from(cli.me_per_journey),
        tally: Arc::clone(&tally),
    });
    let scenario = journey::scenario(cli.system, &journey)?.set_host(&host);
    let mut attack = GooseAttack::initialize_with_config(config)?
        .register_scenario(scenario)
        // The telnet controller would listen on a fixed port: two runs would collide.
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::Timeout, cli::DEFAULT_TIMEOUT_SECS)?;
    if reports {
        attack = attack.set_default(GooseDefault::Notes, format!("authbench-goose: {about}").as_str())?;
    }
    if !plan {
        attack = attack.set_default(GooseDefault::Users, cli::DEFAULT_USERS)?;
        if !ramp_given {
            attack = attack.set_default(GooseDefault::IncreaseRate, cli::DEFAULT_USERS.to_string().as_str())?;
        }
    }
    if !bounded {
        // Never unbounded; and every request counts, including those made while users start.
        if !run_time_given {
            attack = attack.set_default(GooseDefault::RunTime, cli::DEFAULT_RUN_TIME_SECS)?;
        }
        attack = attack.set_default(GooseDefault::NoResetMetrics, true)?;
    }
    Ok((*attack, tally))
}

/// Whether `--test-plan` was given. Goose keeps the parsed plan private; its serialized
/// configuration shows it.
fn has_test_plan(config: &GooseConfiguration) -> bool {
    serde_json::to_value(config).is_ok_and(|v| !v["test_plan"].is_null())
}

/// Run goose against `targets` and judge the result.
async fn drive(
    cli: &Cli,
    config: GooseConfiguration,
    targets: Targets,
    about: &str,
    interrupts: &mut watch::Receiver<u32>,
    servers: Option<&mut Servers>,
) -> anyhow::Result<()> {
    let (attack, tally) = attack(cli, config, targets, about)?;
    if *interrupts.borrow() > 0 {
        bail!("interrupted (Ctrl-C)");
    }
    let goose = attack.execute();
    tokio::pin!(goose);
    let cap = tokio::time::sleep(cli.max_duration);
    tokio::pin!(cap);
    let mut capped = false;
    let metrics: Option<GooseMetrics> = loop {
        tokio::select! {
            r = &mut goose => break Some(r?),
            () = &mut cap => {
                if capped {
                    eprintln!("authbench-goose: goose did not stop within {WIND_DOWN:?}; abandoning it");
                    break None;
                }
                capped = true;
                eprintln!("authbench-goose: --max-duration {} reached; stopping goose",
                    humantime::format_duration(cli.max_duration));
                goose::trigger_killswitch("--max-duration reached");
                cap.as_mut().reset(tokio::time::Instant::now() + WIND_DOWN);
            }
            _ = interrupts.changed() => {
                if *interrupts.borrow() >= 2 {
                    eprintln!("authbench-goose: interrupted again; abandoning goose");
                    break None;
                }
                eprintln!("authbench-goose: interrupted; goose is stopping its users (Ctrl-C again to abandon)");
            }
        }
    };

    let mut problems = Vec::new();
    if let Some(m) = &metrics {
        println!("\nauthbench-goose: {} journeys, every response checked", cli.system);
        print!("{}", summary::table(&summary::rows(m)));
    }
    problems.extend(summary::problems(&tally, metrics.as_ref()));
    if let Some(why) = servers.and_then(Servers::casualty) {
        problems.push(format!("an instance died: {why}"));
    }
    if capped {
        problems.push(format!("stopped at --max-duration {}", humantime::format_duration(cli.max_duration)));
    }
    if *interrupts.borrow() > 0 {
        problems.push("interrupted (Ctrl-C)".into());
    }
    for f in &cli.goose.report_file {
        if !f.is_empty() && f != goose::config::RUN_FOLDER {
            println!("report: {f}");
        }
    }
    if problems.is_empty() {
        println!("authbench-goose: PASS ({} requests, 0 failed)", tally.requests());
        Ok(())
    } else {
        bail!("FAIL\n{}", problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_plan_is_seen_through_goose_private_field() {
        let parse = |args: &[&str]| GooseConfiguration::parse_args_default(args).unwrap();
        assert!(has_test_plan(&parse(&["--test-plan", "4,1s;0,1s"])));
        assert!(!has_test_plan(&parse(&["--users", "4"])));
    }
}
