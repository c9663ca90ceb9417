//! The PKI's head start: keys and CAs depend only on the spec, so `up` makes them in the
//! background (`groundup-ca --prepare`) while the network and compute steps run, and the PKI
//! steps, when their turn comes, adopt what it wrote. The steps still run one after another;
//! the head start lives only in files (keys written once, atomically, 0600). It is a step
//! process like the others: it dies with the runner and holds its lock.

use std::path::Path;
use std::time::Instant;

use groundup_contracts::steps::{self, Makes};
use groundup_contracts::Context;

use crate::state::StateLock;
use crate::step::{find_step, step_command};

/// The step that runs the head start (`--prepare`).
const PREPARING_STEP: &str = "ca";

/// Whether `step` must wait for the head start to end: every step that writes the cluster's
/// local files (the steps table's non-cloud steps), so that each finds every key it made.
pub fn must_wait(step: &str) -> bool {
    steps::step(step).is_some_and(|s| s.makes != Makes::Cloud)
}

/// A running head start. Finished (waited for) before the first PKI step, or when dropped, so
/// that a run that fails earlier still leaves only complete keys and no process behind.
pub struct HeadStart {
    handle: Option<duct::Handle>,
    started: Instant,
}

impl HeadStart {
    /// Starts the head start if `ca` is among the steps to run and something comes before it.
    /// Not starting it is never an error: `ca` and `certs` make whatever is missing.
    pub fn start(context: &Context, steps: &[String], state: &Path, lock: &StateLock) -> Option<HeadStart> {
        if steps.first().is_none_or(|s| s == PREPARING_STEP) || !steps.iter().any(|s| s == PREPARING_STEP) {
            return None;
        }
        let started = find_step(PREPARING_STEP).and_then(|program| {
            let command = step_command(&program, &["--prepare"], state, false, Some(lock))?;
            Ok(command.stdin_bytes(context.to_json()).stdout_null().unchecked().start()?)
        });
        match started {
            Ok(handle) => {
                eprintln!("groundup: making the PKI's keys and CAs in the background");
                Some(HeadStart { handle: Some(handle), started: Instant::now() })
            }
            Err(e) => {
                eprintln!("groundup: warning: no head start for the PKI ({e:#}); its steps make everything");
                None
            }
        }
    }

    /// Waits for it to end, and says how it went.
    pub fn finish(mut self) {
        self.wait();
    }

    fn wait(&mut self) {
        let Some(handle) = self.handle.take() else { return };
        let outcome = handle.wait();
        let seconds = self.started.elapsed().as_secs_f64();
        match outcome {
            Ok(output) if output.status.success() => {
                eprintln!("groundup: PKI head start done ({seconds:.2}s after it started)");
            }
            outcome => {
                let why = outcome.map_or_else(|e| e.to_string(), |o| o.status.to_string());
                eprintln!("groundup: warning: the PKI head start failed ({why}); its steps make whatever is missing");
            }
        }
    }
}

impl Drop for HeadStart {
    fn drop(&mut self) {
        self.wait();
    }
}
