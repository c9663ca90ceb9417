//! The runner's end of a step's side channel (contract 2, see [`groundup_runtime::events`]):
//! a socket pair per step process, whose step end the step inherits as `--events-fd N`. A
//! thread applies each event as it arrives: a journal is saved in the state file before the
//! step gets its answer (so the runner is the state file's only writer, and a kill at any
//! moment still leaves the create on record), figures join the run's timings, a report of a
//! resource gone goes to `up`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _, Result};
use groundup_contracts::Context;
use groundup_runtime::events::{Ack, Event};
use groundup_runtime::timings::StepFigures;

use crate::state;

/// The figures the steps of a run reported, in the order they came.
pub type Reported = Arc<Mutex<Vec<StepFigures>>>;

/// What a step reported gone ([`Event::Gone`]), if it did.
pub type Gone = Arc<Mutex<Option<String>>>;
/// Where a step's events go.
#[derive(Clone, Default)]
pub struct Sink {
    /// The state file and the context it holds while the step runs: a journal event replaces
    /// that context's journal and saves it. `None` for a head start, which makes only files.
    pub journal: Option<(PathBuf, Context)>,
    /// The run's figures, when `up --timings` asked for them.
    pub figures: Option<Reported>,
    /// Where a step's report of a resource gone goes (a head start's is not read).
    pub gone: Gone,
}

/// A channel made for one step process, before it starts.
pub struct Channel {
    step_end: OwnedFd,
    runner_end: UnixStream,
}

impl Channel {
    pub fn new() -> Result<Channel> {
        // Both ends are closed on exec: only the step the channel is for keeps its end open.
        let (runner_end, step_end) = UnixStream::pair().context("cannot make a step's events channel")?;
        Ok(Channel { step_end: step_end.into(), runner_end })
    }

    /// The descriptor the step inherits, as `--events-fd` names it.
    pub fn step_fd(&self) -> RawFd {
        self.step_end.as_raw_fd()
    }

    /// Once the step has started: lets go of the step's end (so the channel ends when the step
    /// does) and listens on the runner's.
    pub fn listen(self, sink: Sink) -> Listener {
        let Channel { step_end, runner_end } = self;
        drop(step_end);
        Listener { thread: std::thread::spawn(move || serve(runner_end, &sink)) }
    }
}

/// The thread that applies a step's events.
pub struct Listener {
    thread: JoinHandle<Result<()>>,
}

impl Listener {
    /// After the step has ended: waits for its last event to be applied.
    pub fn finish(self) -> Result<()> {
        self.thread.join().map_err(|_| anyhow!("the events thread panicked"))?
    }
}

fn serve(stream: UnixStream, sink: &Sink) -> Result<()> {
    let mut answers = stream.try_clone().context("cannot answer on the events channel")?;
    for line in BufReader::new(stream).lines() {
        let line = line.context("cannot read the events channel")?;
        let event: Event =
            serde_json::from_str(&line).with_context(|| format!("it sent `{line}` on its events channel"))?;
        match event {
            Event::Journal { entries } => {
                let ack = match &sink.journal {
                    Some((path, context)) => {
                        let mut state = context.clone();
                        state.journal = entries;
                        match state::save(path, &state) {
                            Ok(()) => Ack { saved: true, error: None },
                            Err(e) => Ack { saved: false, error: Some(format!("{e:#}")) },
                        }
                    }
                    None => {
                        Ack { saved: false, error: Some("a head start makes only files; it journals no create".into()) }
                    }
                };
                let line = format!("{}\n", serde_json::to_string(&ack).expect("an answer serializes"));
                answers.write_all(line.as_bytes()).context("cannot answer on the events channel")?;
            }
            Event::Timings(figures) => {
                if let Some(reported) = &sink.figures {
                    reported.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(figures);
                }
            }
            Event::Gone { what } => *sink.gone.lock().unwrap_or_else(PoisonError::into_inner) = Some(what),
        }
    }
    Ok(())
}
