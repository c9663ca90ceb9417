use std::sync::Mutex;

use groundup_contracts::plan::JournalEntry;
use groundup_contracts::Context;

use crate::error::RuntimeError;
use crate::events::{self, Event};

/// The creates in flight: those a killed run left in the context, and the ones this run
/// starts. Each is sent to the runner (an [`Event::Journal`]), which saves it in the state
/// file and answers before the create call goes out, so a run killed at any moment leaves
/// what it may have created on record, for the next run to find (by the same client token)
/// instead of duplicating.
#[derive(Debug)]
pub struct Journal {
    step: String,
    entries: Mutex<Vec<JournalEntry>>,
}

impl Journal {
    pub fn new(context: &Context, step: &str) -> Self {
        Journal { step: step.into(), entries: Mutex::new(context.journal.clone()) }
    }

    /// The entry a killed run left for `logical`, if any.
    pub fn pending(&self, logical: &str) -> Option<JournalEntry> {
        self.lock().iter().find(|e| e.resource == logical).cloned()
    }

    /// Records the create and has the runner save it in the state file; only then may the
    /// call go out. A step run by hand has no runner to tell, and journals in memory only.
    pub fn begin(&self, kind: &str, logical: &str, client_token: &str) -> Result<(), RuntimeError> {
        let mut entries = self.lock();
        entries.retain(|e| e.resource != logical);
        entries.push(JournalEntry {
            step: self.step.clone(),
            resource: logical.into(),
            kind: kind.into(),
            client_token: client_token.into(),
        });
        // Sent under the lock: concurrent creates reach the runner in order, each list
        // holding the ones before it.
        events::send(&Event::Journal { entries: entries.clone() }).map_err(|cause| RuntimeError::Unjournaled {
            kind: kind.into(),
            logical: logical.into(),
            cause: Box::new(cause),
        })
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
