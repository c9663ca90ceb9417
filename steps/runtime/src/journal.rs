use std::path::PathBuf;
use std::sync::Mutex;

use groundup_contracts::plan::JournalEntry;
use groundup_contracts::Context;

use crate::state::STATE_FILE_ENV;

/// The creates in flight: those a killed run left in the context, and the ones this run
/// starts. Each is written to the state file (the runner names it in the environment) before
/// its create call goes out, so a run killed at any moment leaves what it may have created
/// on record, for the next run to find (by the same client token) instead of duplicating.
#[derive(Debug)]
pub struct Journal {
    step: String,
    entries: Mutex<Vec<JournalEntry>>,
    sink: Option<(PathBuf, Context)>,
}

impl Journal {
    pub fn new(context: &Context, step: &str) -> Self {
        let sink = std::env::var_os(STATE_FILE_ENV).map(|path| (PathBuf::from(path), context.clone()));
        Journal { step: step.into(), entries: Mutex::new(context.journal.clone()), sink }
    }

    /// The entry a killed run left for `logical`, if any.
    pub fn pending(&self, logical: &str) -> Option<JournalEntry> {
        self.lock().iter().find(|e| e.resource == logical).cloned()
    }

    /// Records the create and writes the state file; only then may the call go out.
    pub fn begin(&self, kind: &str, logical: &str, client_token: &str) -> Result<(), String> {
        let mut entries = self.lock();
        entries.retain(|e| e.resource != logical);
        entries.push(JournalEntry {
            step: self.step.clone(),
            resource: logical.into(),
            kind: kind.into(),
            client_token: client_token.into(),
        });
        let Some((path, base)) = &self.sink else { return Ok(()) };
        let mut state = base.clone();
        state.journal = entries.clone();
        crate::state::save(&state, path)
            .map_err(|e| format!("cannot journal the {kind} `{logical}` in {} before creating it: {e}", path.display()))
    }

    /// The resource is known (found or created): nothing is in flight for it any more. The
    /// state file learns it with the step's output.
    pub fn settle(&self, logical: &str) {
        self.lock().retain(|e| e.resource != logical);
    }

    /// After a teardown: a journaled client token would name a deleted resource.
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn entries(&self) -> Vec<JournalEntry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JournalEntry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
