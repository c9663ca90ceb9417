//! What `--plan` reports, and the journal of creates in flight.
//!
//! A step run with `--plan` changes nothing: it reads what exists and records, per resource,
//! whether it would create it, adopt it (it exists but the context does not record it), change
//! it, leave it, or delete it (it exists but the spec no longer has it). The records accumulate in the context's `plan` section as the context
//! passes from step to step; a context with that section holds placeholder ids for resources
//! that do not exist yet, so no step will apply it.
//!
//! The journal is the other half of crash safety: a step writes an entry (logical name, client
//! token) to the runner's state file before a create call and drops it once the resource is
//! known, so that a run killed in between looks harder for that resource before creating it.
//! The types live here because both are sections of the context; the code that records them
//! is the step runtime's (`groundup-runtime`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It does not exist; the step would create it.
    Create,
    /// It exists, matches, but the context does not record it (a crash, a lost state file).
    Adopt,
    /// It exists and differs from the context; the step would change it.
    Change,
    /// It exists, matches and is recorded: nothing to do.
    Leave,
    /// It exists but the spec no longer has it (a node scaled away); the step would delete it.
    Delete,
}

impl Action {
    fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Adopt => ">",
            Action::Change => "~",
            Action::Leave => "=",
            Action::Delete => "-",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Change => "change",
            Action::Leave => "leave",
            Action::Delete => "delete",
        })
    }
}

/// What a step would do to one of its resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedResource {
    pub step: String,
    /// The resource's logical name (its `groundup:resource` tag, or its file name).
    pub resource: String,
    pub kind: String,
    pub action: Action,
    /// The existing resource's id; null for one that would be created.
    #[serde(default)]
    pub id: Option<String>,
    /// What would be done to it, in order; each starts with its verb ("authorize ...",
    /// "revoke ...", "renew ...").
    #[serde(default)]
    pub changes: Vec<String>,
    /// Calls that real AWS refused in a DryRun: permissions to grant before applying.
    #[serde(default)]
    pub denied: Vec<String>,
}

impl PlannedResource {
    /// Whether a run would do anything to it, or real AWS would refuse something: what a
    /// plan lists by default (`--all` lists the rest too).
    pub fn changes_anything(&self) -> bool {
        self.action != Action::Leave || !self.changes.is_empty() || !self.denied.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanSection {
    pub resources: Vec<PlannedResource>,
    /// Steps that were not asked: plugins that do not declare `--plan` support (see
    /// `--contract`), which might otherwise make real changes.
    #[serde(default)]
    pub not_planned: Vec<String>,
}

impl PlanSection {
    /// How many resources each action touches, e.g. "2 to create, 1 to change, 9 to leave".
    pub fn counts(&self) -> String {
        let phrases = [
            (Action::Create, "to create"),
            (Action::Adopt, "to adopt"),
            (Action::Change, "to change"),
            (Action::Leave, "to leave"),
            (Action::Delete, "to delete"),
        ];
        let parts: Vec<String> = phrases
            .iter()
            .filter_map(|(action, phrase)| {
                let n = self.resources.iter().filter(|r| r.action == *action).count();
                (n > 0).then(|| format!("{n} {phrase}"))
            })
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }

    /// One readable line per resource (and per change), for stderr.
    pub fn summary_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.resources.iter().flat_map(|r| {
            let head = format!(
                "  {} {:<7} {:<20} {:<26} {}",
                r.action.symbol(),
                r.action,
                r.kind,
                r.resource,
                r.id.as_deref().unwrap_or("")
            );
            let changes = r.changes.iter().map(|c| format!("        {} {c}", change_symbol(c)));
            let denied = r.denied.iter().map(|d| format!("        ! not permitted: {d}"));
            std::iter::once(head.trim_end().to_string()).chain(changes).chain(denied)
        })
    }
}

/// `+` for a change that adds (a rule, a route, an attachment), `-` for one that removes, `~`
/// for one that modifies in place; read from the change's verb.
fn change_symbol(change: &str) -> char {
    const ADDS: &[&str] =
        &["add", "associate", "attach", "authorize", "create", "enable", "register", "reserve", "route", "tag"];
    const REMOVES: &[&str] =
        &["delete", "deregister", "detach", "disable", "disassociate", "remove", "revoke", "terminate"];
    let verb = change.split_whitespace().next().unwrap_or_default();
    if ADDS.contains(&verb) {
        '+'
    } else if REMOVES.contains(&verb) {
        '-'
    } else {
        '~'
    }
}

/// A create about to be sent: written to the state file before the call, removed once the
/// resource is found or created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JournalEntry {
    pub step: String,
    /// The resource's logical name.
    pub resource: String,
    pub kind: String,
    /// The idempotency token the create call carries (real AWS returns the same resource for
    /// the same token); empty for calls that take none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plan_counts_nothing() {
        assert_eq!(PlanSection::default().counts(), "nothing");
    }
}
