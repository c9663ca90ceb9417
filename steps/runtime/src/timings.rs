//! Where a step's time goes, for `groundup up --timings`: the AWS calls it made and their
//! time (counted where every AWS client is built), and the time spent generating keys. The
//! harness sends them to the runner as an event ([`crate::events::Event::Timings`]) when the
//! step ends, so stdout keeps carrying only the context.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::events::{self, Event};

static API_CALLS: AtomicU64 = AtomicU64::new(0);
static API_NANOS: AtomicU64 = AtomicU64::new(0);
static KEYS: AtomicU64 = AtomicU64::new(0);
static KEY_NANOS: AtomicU64 = AtomicU64::new(0);

/// What one step run reports. Times of calls or keys made concurrently add up, so
/// `api_seconds` and `keygen_seconds` can exceed the step's wall time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFigures {
    pub step: String,
    /// HTTP attempts sent to AWS (a retried call counts each attempt).
    pub api_calls: u64,
    pub api_seconds: f64,
    pub keys: u64,
    pub keygen_seconds: f64,
}

/// One AWS call attempt that took `elapsed`.
pub fn record_api_call(elapsed: Duration) {
    API_CALLS.fetch_add(1, Ordering::Relaxed);
    API_NANOS.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
}

/// Runs `generate` (one key) and counts its time as key generation.
pub fn keygen<T>(generate: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let key = generate();
    KEYS.fetch_add(1, Ordering::Relaxed);
    KEY_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    key
}

/// This process's figures so far.
pub fn figures(step: &str) -> StepFigures {
    let seconds = |nanos: &AtomicU64| Duration::from_nanos(nanos.load(Ordering::Relaxed)).as_secs_f64();
    StepFigures {
        step: step.to_string(),
        api_calls: API_CALLS.load(Ordering::Relaxed),
        api_seconds: seconds(&API_NANOS),
        keys: KEYS.load(Ordering::Relaxed),
        keygen_seconds: seconds(&KEY_NANOS),
    }
}

/// Sends this process's figures to the runner, if a runner listens. A failure is only
/// logged: figures are never worth failing a step for.
pub fn report(step: &str) {
    if let Err(e) = events::send(&Event::Timings(figures(step))) {
        eprintln!("groundup-{step}: warning: cannot report the timings: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_keys_add_up() {
        let before = figures("x");
        record_api_call(Duration::from_millis(30));
        record_api_call(Duration::from_millis(10));
        assert_eq!(keygen(|| 7), 7);
        let after = figures("x");
        assert_eq!(after.api_calls - before.api_calls, 2);
        assert!(after.api_seconds - before.api_seconds >= 0.039, "{after:?}");
        assert_eq!(after.keys - before.keys, 1);
    }
}
