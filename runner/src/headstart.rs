//! The head starts: what a step makes from the spec alone (the PKI's keys and CAs, the SSH
//! key) `up` starts in the background at once (`groundup-<step> --prepare`, for each step the
//! steps table marks), while the network steps run, and each step, when its turn comes,
//! adopts what its head start wrote. The steps still run one after another; a head start
//! lives only in files (keys written once, atomically, 0600). It is a step process like the
//! others: it dies with the runner and holds its lock.

use std::path::Path;
use std::time::Instant;

use groundup_contracts::steps;
use groundup_contracts::Context;
use groundup_runtime::harness::StepContract;

use crate::events::{Channel, Listener, Reported, Sink};
use crate::interrupt::{watch, Watched};
use crate::state::StateLock;
use crate::step::{find_step, step_command};

/// The running head starts. Each is finished (waited for) before its step, and all of them
/// when dropped, so that a run that fails earlier still leaves only complete keys and no
/// process behind.
pub struct HeadStarts {
    running: Vec<HeadStart>,
}

struct HeadStart {
    step: String,
    handle: duct::Handle,
    started: Instant,
    /// Its events: the figures of its keys.
    listener: Listener,
    /// Ctrl-C reaches it while it runs.
    _watched: Vec<Watched>,
}

impl HeadStarts {
    /// Starts the head start of every step to run that has one, except the first (which would
    /// wait for it at once); what they spend goes into `figures`, if given. Not starting one is
    /// never an error: the step makes whatever is missing.
    pub fn start(
        context: &Context,
        steps: &[String],
        state: &Path,
        lock: &StateLock,
        figures: Option<&Reported>,
    ) -> HeadStarts {
        let with_head_start = steps.iter().skip(1).filter(|s| steps::step(s).is_some_and(|s| s.head_start));
        let running = with_head_start
            .enumerate()
            .filter_map(|(position, step)| {
                let started = find_step(step).map_err(anyhow::Error::from).and_then(|program| {
                    let channel = Channel::new()?;
                    // A head start is a built-in step's: it follows this runner's contract.
                    let contract = StepContract::CURRENT;
                    let command =
                        step_command(&program, &["--prepare"], state, Some(&contract), Some(&channel), Some(lock));
                    let command = command.before_spawn(move |cmd| {
                        use std::os::unix::process::CommandExt;
                        let nice = niceness(position);
                        // SAFETY: setpriority is async-signal-safe and changes only the child.
                        unsafe { cmd.pre_exec(move || lower_priority(nice)) };
                        Ok(())
                    });
                    let handle = command.stdin_bytes(context.to_json()).stdout_null().unchecked().start()?;
                    Ok((handle, channel.listen(Sink { figures: figures.cloned(), ..Sink::default() })))
                });
                match started {
                    Ok((handle, listener)) => {
                        let _watched = handle.pids().into_iter().map(watch).collect();
                        Some(HeadStart { step: step.clone(), handle, started: Instant::now(), listener, _watched })
                    }
                    Err(e) => {
                        eprintln!("groundup: warning: no head start for {step} ({e:#}); the step makes everything");
                        None
                    }
                }
            })
            .collect::<Vec<_>>();
        if !running.is_empty() {
            let names: Vec<&str> = running.iter().map(|h| h.step.as_str()).collect();
            eprintln!("groundup: head start of {} in the background (keys that need only the spec)", names.join(", "));
        }
        HeadStarts { running }
    }

    /// Waits for `step`'s head start, if it has one running, and says how it went.
    pub fn finish(&mut self, step: &str) {
        if let Some(i) = self.running.iter().position(|h| h.step == step) {
            self.running.remove(i).wait();
        }
    }
}

/// Head starts run below the steps, which are the critical path, and take only the CPU they
/// leave; the one whose step comes first goes before the later ones (nice 5, then 10, ...).
fn niceness(position: usize) -> i32 {
    (5 * (position as i32 + 1)).min(19)
}

/// Set in the child before it starts its threads, which inherit it (on Linux a nice value is
/// per thread).
fn lower_priority(nice: i32) -> std::io::Result<()> {
    // SAFETY: see the caller.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl HeadStart {
    fn wait(self) {
        let outcome = self.handle.wait();
        let listened = self.listener.finish();
        let (step, seconds) = (&self.step, self.started.elapsed().as_secs_f64());
        match outcome {
            Ok(output) if output.status.success() => {
                if let Err(e) = listened {
                    eprintln!("groundup: warning: the head start of {step} broke the step contract: {e:#}");
                }
                eprintln!("groundup: head start of {step} done; {step} starts {seconds:.2}s after it");
            }
            outcome => {
                let why = outcome.map_or_else(|e| e.to_string(), |o| o.status.to_string());
                eprintln!(
                    "groundup: warning: the head start of {step} failed ({why}); the step makes whatever is missing"
                );
            }
        }
    }
}

impl Drop for HeadStarts {
    fn drop(&mut self) {
        self.running.drain(..).for_each(HeadStart::wait);
    }
}
