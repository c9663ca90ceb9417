//! Progress of long waits (a load balancer provisioning, instances starting, a teardown waiting
//! for dependencies), always on stderr: on a terminal a live line per resource with its state
//! and the time waited; elsewhere (CI, a log file) one plain line every few seconds.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::CloudError;

/// How often the plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// The plain line names at most this many resources still waited for.
const NAMED: usize = 5;

/// One resource's answer to a poll: its name, its state in words, and whether it is there.
pub struct Polled {
    pub resource: String,
    pub state: String,
    pub done: bool,
}

/// Polls `resources` until each is done, with backoff from 1 s to 5 s (so a wait ends at most
/// 5 s after its resources are ready), showing progress; fails after `timeout`, naming what
/// is still pending. `poll` gets the pending resources and
/// returns an error for a state that will never come right (an instance terminated on its way).
pub async fn wait_until<F, Fut>(
    step: &str,
    what: &str,
    resources: Vec<String>,
    timeout: Duration,
    mut poll: F,
) -> Result<(), CloudError>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Polled>, CloudError>>,
{
    let mut waiting = Waiting::new(step, what, resources.iter().cloned());
    let mut pending = resources;
    let mut delay = Duration::from_secs(1);
    loop {
        for answer in poll(pending.clone()).await? {
            waiting.set(&answer.resource, &answer.state, answer.done);
            if answer.done {
                pending.retain(|r| *r != answer.resource);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if waiting.started.elapsed() >= timeout {
            return Err(CloudError::TimedOut { what: what.into(), seconds: timeout.as_secs(), left: pending });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

pub struct Waiting {
    step: String,
    what: String,
    started: Instant,
    last_line: Instant,
    /// resource -> (state, done)
    states: BTreeMap<String, (String, bool)>,
    live: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
}

impl Waiting {
    /// Starts waiting for `resources`, e.g. `Waiting::new("compute", "instances to run", ids)`.
    pub fn new(step: &str, what: &str, resources: impl IntoIterator<Item = String>) -> Waiting {
        let states: BTreeMap<String, (String, bool)> =
            resources.into_iter().map(|r| (r, ("waiting".to_string(), false))).collect();
        let live = std::io::stderr().is_terminal().then(|| {
            let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {prefix} {msg} ({elapsed})").expect("a valid template");
            let lines = states
                .keys()
                .map(|resource| {
                    let bar = bars.add(ProgressBar::new_spinner().with_style(style.clone()));
                    bar.set_prefix(format!("{step}: {resource}"));
                    bar.set_message("waiting");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    (resource.clone(), bar)
                })
                .collect();
            (bars, lines)
        });
        let now = Instant::now();
        Waiting { step: step.into(), what: what.into(), started: now, last_line: now, states, live }
    }

    /// Records what a resource is doing now; `done` ends its line.
    pub fn set(&mut self, resource: &str, state: &str, done: bool) {
        if let Some((_, bars)) = &self.live {
            if let Some(bar) = bars.get(resource) {
                if done {
                    bar.finish_with_message(state.to_string());
                } else {
                    bar.set_message(state.to_string());
                }
            }
        }
        self.states.insert(resource.to_string(), (state.to_string(), done));
        if self.live.is_none() {
            if let Some(line) = self.plain_line(Instant::now()) {
                eprintln!("{line}");
            }
        }
    }

    /// The plain line, when one is due at `now`: how long, how many in each state, and the
    /// first few resources still waited for.
    fn plain_line(&mut self, now: Instant) -> Option<String> {
        if now.duration_since(self.last_line) < PLAIN_EVERY || self.states.values().all(|(_, done)| *done) {
            return None;
        }
        self.last_line = now;
        let mut counts = BTreeMap::<&str, usize>::new();
        for (state, _) in self.states.values() {
            *counts.entry(state).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(state, n)| format!("{n} {state}")).collect();
        let pending: Vec<&str> =
            self.states.iter().filter(|(_, (_, done))| !done).map(|(r, _)| r.as_str()).take(NAMED).collect();
        Some(format!(
            "{}: waiting {}s for {}: {}; still waiting for {}",
            self.step,
            now.duration_since(self.started).as_secs(),
            self.what,
            counts.join(", "),
            pending.join(", ")
        ))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some((bars, lines)) = self.live.take() {
            lines.values().for_each(ProgressBar::finish);
            let _ = bars.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(resources: &[&str]) -> Waiting {
        let mut waiting = Waiting::new("compute", "instances to run", resources.iter().map(|r| r.to_string()));
        waiting.live = None;
        waiting
    }

    #[test]
    fn a_plain_line_comes_every_few_seconds_with_counts_and_names() {
        let mut waiting = waiting(&["i-1", "i-2", "i-3"]);
        let start = waiting.started;
        waiting.states.insert("i-1".into(), ("running".into(), true));
        waiting.states.insert("i-2".into(), ("pending".into(), false));
        waiting.states.insert("i-3".into(), ("pending".into(), false));
        assert_eq!(waiting.plain_line(start + Duration::from_secs(1)), None, "too early");
        let line = waiting.plain_line(start + Duration::from_secs(6)).unwrap();
        assert_eq!(line, "compute: waiting 6s for instances to run: 2 pending, 1 running; still waiting for i-2, i-3");
        assert_eq!(waiting.plain_line(start + Duration::from_secs(7)), None, "one line per period");
        assert!(waiting.plain_line(start + Duration::from_secs(12)).is_some());
    }

    #[test]
    fn nothing_is_printed_once_everything_is_done() {
        let mut waiting = waiting(&["lb"]);
        let start = waiting.started;
        waiting.states.insert("lb".into(), ("active".into(), true));
        assert_eq!(waiting.plain_line(start + Duration::from_secs(60)), None);
    }

    #[test]
    fn only_the_first_few_pending_resources_are_named() {
        let names: Vec<String> = (0..20).map(|i| format!("i-{i:02}")).collect();
        let mut waiting = waiting(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let line = waiting.plain_line(waiting.started + Duration::from_secs(5)).unwrap();
        assert!(line.ends_with("i-00, i-01, i-02, i-03, i-04"), "{line}");
        assert!(line.contains("20 waiting"), "{line}");
    }
}
