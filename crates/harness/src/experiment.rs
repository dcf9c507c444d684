//! The run loop every experiment shares: sweep, revocation and chaos each measure a list of
//! steps, and each step gets a fresh [`Deployment`] that is stopped whatever happens — a
//! finished step, an error, or Ctrl-C in the middle of it — and is followed by the
//! experiment's bookkeeping (clean the store, write what was measured so far), so an
//! interrupted or failed run keeps every step it finished.

use std::path::Path;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::deploy::{Deployment, WorkDir};

/// An experiment, seen by the run loop.
// The loop awaits these on the caller's own task and never spawns them, so the futures
// need no `Send` bound: plain `async fn` is enough.
#[allow(async_fn_in_trait)]
pub trait Steps {
    type Step;

    /// Say which step starts (`i` of `total`, from 0).
    fn announce(&mut self, i: usize, total: usize, step: &Self::Step);

    /// Deploy into `deployment` and measure one step, recording its result.
    async fn run(&mut self, step: &Self::Step, deployment: &mut Deployment) -> anyhow::Result<()>;

    /// After every step, once its instances are stopped: whatever must not outlive it.
    async fn after(&mut self) -> anyhow::Result<()>;

    /// The error for a Ctrl-C between steps.
    fn interrupted(&self) -> anyhow::Error {
        anyhow::anyhow!("interrupted (Ctrl-C)")
    }
}

/// Run `steps` in order until one fails or `shutdown` turns true.
pub async fn run<S: Steps>(
    experiment: &mut S,
    steps: &[S::Step],
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        if *shutdown.borrow() {
            return Err(experiment.interrupted());
        }
        experiment.announce(i, total, step);
        let mut deployment = Deployment::default();
        let mut stop = shutdown.clone();
        let r = tokio::select! {
            r = experiment.run(step, &mut deployment) => r,
            _ = stop.wait_for(|stop| *stop) => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
        };
        deployment.stop().await;
        drop(deployment);
        experiment.after().await?;
        r?;
    }
    Ok(())
}

/// A new run's id (`20261127-101500`), from the clock.
pub fn run_id() -> String {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    t.replace(['-', ':'], "").replace('T', "-").trim_end_matches('Z').to_owned()
}

/// What a run starts with: its id, its scratch directory (`authbench-{kind}{id}` under the
/// temp dir: logs and keys, removed on drop) and its output directory, created.
pub fn start(kind: &str, out: &Path) -> anyhow::Result<(String, WorkDir)> {
    let id = run_id();
    let work = WorkDir::create(&format!("authbench-{kind}{id}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    Ok((id, work))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps that log what the loop did with them.
    struct Log {
        events: Vec<String>,
        fail_at: Option<usize>,
        stop: Option<(usize, watch::Sender<bool>)>,
    }

    impl Steps for Log {
        type Step = usize;

        fn announce(&mut self, i: usize, total: usize, _: &usize) {
            self.events.push(format!("announce {}/{total}", i + 1));
        }

        async fn run(&mut self, step: &usize, _: &mut Deployment) -> anyhow::Result<()> {
            if let Some((at, tx)) = &self.stop
                && at == step
            {
                let _ = tx.send(true);
                // A step that would go on: only Ctrl-C ends it.
                std::future::pending::<()>().await;
            }
            self.events.push(format!("run {step}"));
            anyhow::ensure!(self.fail_at != Some(*step), "step {step} failed");
            Ok(())
        }

        async fn after(&mut self) -> anyhow::Result<()> {
            self.events.push("after".into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_step_is_followed_by_its_bookkeeping_and_a_failure_ends_the_run() {
        let (_tx, rx) = watch::channel(false);
        let mut log = Log { events: Vec::new(), fail_at: Some(1), stop: None };
        let e = run(&mut log, &[0, 1, 2], &rx).await.unwrap_err();
        assert_eq!(e.to_string(), "step 1 failed");
        assert_eq!(log.events, ["announce 1/3", "run 0", "after", "announce 2/3", "run 1", "after"]);
    }

    #[tokio::test]
    async fn ctrl_c_during_a_step_stops_it_and_still_does_the_bookkeeping() {
        let (tx, rx) = watch::channel(false);
        let mut log = Log { events: Vec::new(), fail_at: None, stop: Some((1, tx)) };
        let e = run(&mut log, &[0, 1, 2], &rx).await.unwrap_err();
        assert!(e.to_string().contains("interrupted"), "{e}");
        assert_eq!(log.events, ["announce 1/3", "run 0", "after", "announce 2/3", "after"]);
        // Interrupted before it starts: nothing runs.
        let mut log = Log { events: Vec::new(), fail_at: None, stop: None };
        assert!(run(&mut log, &[0], &rx).await.is_err());
        assert!(log.events.is_empty());
    }

    #[test]
    fn run_ids_sort_by_time() {
        let id = run_id();
        assert_eq!(id.len(), "20261127-101500".len(), "{id}");
        assert_eq!(id.as_bytes()[8], b'-');
    }
}
