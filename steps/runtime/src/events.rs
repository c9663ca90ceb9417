//! The side channel of contract 2: what a step tells the runner while it works, as JSON lines
//! on a file descriptor the runner passes (`--events-fd N`), so that stdout keeps carrying
//! only the context and the runner stays the only writer of its state file.
//!
//! - [`Event::Journal`], before a create call goes out: every create in flight. The runner
//!   saves them in the state file and answers one line, an [`Ack`]; only then is the call
//!   sent, so a kill at any moment leaves the create on record.
//! - [`Event::Timings`], when the step ends: its figures for `groundup up --timings`.
//! - [`Event::Gone`], before the step fails because the cloud no longer has a resource the
//!   context records: the runner makes it again (see the event).
//!
//! A step run by hand (no `--events-fd`) sends nothing and journals nothing, as a plugin of
//! contract 1 does.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};
use std::sync::{Mutex, OnceLock};

use groundup_contracts::plan::JournalEntry;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::timings::StepFigures;

/// One line a step sends on its events descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Every create in flight (the earlier ones too), before the newest one's call goes out.
    Journal { entries: Vec<JournalEntry> },
    /// What the step spent, when it ends.
    Timings(StepFigures),
    /// The cloud answered that a resource does not exist (`what` is its answer), and the step
    /// fails: a resource the context records was deleted by hand, or went with an emulator
    /// that restarted empty. The runner then runs the steps before this one again, each of
    /// which finds its resource by its tags or makes it anew, and this one after them.
    Gone { what: String },
}

impl Event {
    /// Whether the step waits for the runner's [`Ack`] before it goes on.
    pub fn needs_ack(&self) -> bool {
        matches!(self, Event::Journal { .. })
    }
}

/// The runner's answer to an event that needs one: `{"saved":true}`, or `{"saved":false,
/// "error":"..."}` when it could not record it (then the step must not send the call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub saved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The step's end of the channel, once the harness has connected it.
static CHANNEL: OnceLock<Mutex<BufReader<File>>> = OnceLock::new();

/// Takes over `fd`, inherited from the runner, as this step's events channel. Called by the
/// harness before the step's work starts; the descriptor is closed on exec, so nothing the step
/// runs inherits it.
pub fn connect(fd: RawFd) -> Result<(), RuntimeError> {
    if fd <= 2 {
        let why = "stdin, stdout and stderr carry the context and the logs, not events".into();
        return Err(RuntimeError::BadEventsFd { fd, why });
    }
    // SAFETY: only borrowed for the checks below; `fcntl` fails cleanly on a closed descriptor.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = rustix::io::fcntl_getfd(borrowed).map_err(|e| RuntimeError::BadEventsFd {
        fd,
        why: format!("not an open file descriptor of this process ({e})"),
    })?;
    rustix::io::fcntl_setfd(borrowed, flags | rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| RuntimeError::BadEventsFd { fd, why: e.to_string() })?;
    // SAFETY: the descriptor is open, was passed to this process for this purpose, and
    // nothing else in the process owns it (the harness connects before any work starts).
    let file = unsafe { File::from_raw_fd(fd) };
    CHANNEL.set(Mutex::new(BufReader::new(file))).map_err(|_| RuntimeError::EventsConnected)
}

/// Sends `event` to the runner, and for one that needs it waits for the [`Ack`]. Without a
/// channel (a step run by hand) there is no one to tell, and it is not an error.
pub fn send(event: &Event) -> Result<(), RuntimeError> {
    let Some(channel) = CHANNEL.get() else { return Ok(()) };
    let mut channel = channel.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let line = format!("{}\n", serde_json::to_string(event).expect("an event serializes"));
    channel.get_mut().write_all(line.as_bytes()).map_err(|e| RuntimeError::EventNotSent(e.to_string()))?;
    if !event.needs_ack() {
        return Ok(());
    }
    let mut answer = String::new();
    channel.read_line(&mut answer).map_err(|e| RuntimeError::NoAnswer(e.to_string()))?;
    let ack: Ack = serde_json::from_str(&answer).map_err(|_| RuntimeError::NotAnAck(answer.trim_end().into()))?;
    match ack {
        Ack { saved: true, .. } => Ok(()),
        Ack { error, .. } => {
            Err(RuntimeError::NotSaved(error.unwrap_or_else(|| "the runner did not record it".into())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the contract, as the README documents them.
    #[test]
    fn events_and_acks_are_the_documented_json_lines() {
        let entry =
            JournalEntry { step: "vpc".into(), resource: "vpc".into(), kind: "vpc".into(), client_token: "t-1".into() };
        let journal = Event::Journal { entries: vec![entry] };
        assert_eq!(
            serde_json::to_string(&journal).unwrap(),
            r#"{"event":"journal","entries":[{"step":"vpc","resource":"vpc","kind":"vpc","client_token":"t-1"}]}"#
        );
        let figures = StepFigures { step: "ca".into(), api_calls: 0, api_seconds: 0.0, keys: 3, keygen_seconds: 0.5 };
        let timings = serde_json::to_string(&Event::Timings(figures.clone())).unwrap();
        assert_eq!(
            timings,
            r#"{"event":"timings","step":"ca","api_calls":0,"api_seconds":0.0,"keys":3,"keygen_seconds":0.5}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&timings).unwrap(), Event::Timings(figures));
        assert!(journal.needs_ack());
        let gone = Event::Gone { what: "subnet-1 does not exist".into() };
        assert_eq!(serde_json::to_string(&gone).unwrap(), r#"{"event":"gone","what":"subnet-1 does not exist"}"#);
        assert!(!gone.needs_ack());
        assert_eq!(serde_json::to_string(&Ack { saved: true, error: None }).unwrap(), r#"{"saved":true}"#);
    }

    #[test]
    fn the_standard_streams_are_never_an_events_channel() {
        for fd in 0..=2 {
            assert!(connect(fd).unwrap_err().to_string().contains("not events"));
        }
    }
}
