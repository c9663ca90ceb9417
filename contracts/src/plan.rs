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

use std::fmt;
use std::sync::Mutex;

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

/// The id a planned (not yet existing) resource stands under, so that later steps of the plan
/// can refer to it.
pub fn planned_id(logical: &str) -> String {
    format!("(new {logical})")
}

pub fn is_planned_id(id: &str) -> bool {
    id.starts_with("(new ")
}

/// Collects one step's plan while the step runs, possibly from several threads.
#[derive(Debug)]
pub struct PlanLog {
    step: String,
    entries: Mutex<Vec<PlannedResource>>,
}

impl PlanLog {
    pub fn new(step: &str) -> Self {
        PlanLog { step: step.into(), entries: Mutex::new(Vec::new()) }
    }

    /// The resource does not exist: it would be created.
    pub fn missing(&self, kind: &str, logical: &str) {
        self.put(kind, logical, Action::Create, None);
    }

    /// The resource exists; `recorded` says whether the context already holds it.
    pub fn found(&self, kind: &str, logical: &str, id: &str, recorded: bool) {
        let action = if recorded { Action::Leave } else { Action::Adopt };
        self.put(kind, logical, action, Some(id.to_string()));
    }

    /// The resource exists but is no longer wanted: the step would delete it (the calls that
    /// do it follow as changes).
    pub fn unwanted(&self, kind: &str, logical: &str, id: &str) {
        self.put(kind, logical, Action::Delete, Some(id.to_string()));
    }

    /// Something would be done to the resource: a found one becomes a change; a new one
    /// stays a create and one to delete stays a delete, with the change listed as part of it.
    pub fn change(&self, logical: &str, what: &str) {
        self.with_entry(logical, |entry| {
            if !matches!(entry.action, Action::Create | Action::Delete) {
                entry.action = Action::Change;
            }
            entry.changes.push(what.to_string());
        });
    }

    /// Real AWS refused a DryRun of this change.
    pub fn denied(&self, logical: &str, action: &str) {
        self.with_entry(logical, |entry| entry.denied.push(action.to_string()));
    }

    /// What was recorded so far, leaving the log empty.
    pub fn take(&self) -> Vec<PlannedResource> {
        std::mem::take(&mut *self.lock())
    }

    fn put(&self, kind: &str, logical: &str, action: Action, id: Option<String>) {
        let mut entries = self.lock();
        entries.retain(|e| e.resource != logical);
        entries.push(self.entry(kind, logical, action, id));
    }

    /// A change to something no find reported (a sub-resource such as an address
    /// reservation) gets an entry of its own.
    fn with_entry(&self, logical: &str, edit: impl FnOnce(&mut PlannedResource)) {
        let mut entries = self.lock();
        if !entries.iter().any(|e| e.resource == logical) {
            entries.push(self.entry(logical, logical, Action::Change, None));
        }
        let entry = entries.iter_mut().find(|e| e.resource == logical).expect("inserted above");
        edit(entry);
    }

    fn entry(&self, kind: &str, logical: &str, action: Action, id: Option<String>) -> PlannedResource {
        PlannedResource {
            step: self.step.clone(),
            resource: logical.into(),
            kind: kind.into(),
            action,
            id,
            changes: Vec::new(),
            denied: Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PlannedResource>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The runner names its state file in this variable, so that a step can journal a create
/// into it before sending the call. A step run by hand has no state file and journals nothing.
pub const STATE_FILE_ENV: &str = "GROUNDUP_STATE_FILE";

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

    fn plan(log: PlanLog) -> PlanSection {
        PlanSection { resources: log.take(), ..Default::default() }
    }

    #[test]
    fn actions_follow_what_was_found_and_changed() {
        let log = PlanLog::new("vpc");
        log.missing("VPC", "vpc");
        log.change("vpc", "enable DNS hostnames");
        log.found("subnet", "subnet", "subnet-1", true);
        log.found("route table", "route-table", "rtb-1", false);
        log.found("security group", "sg", "sg-1", true);
        log.change("sg", "authorize tcp 22 from 0.0.0.0/0");
        let plan = plan(log);
        let actions: Vec<(&str, Action)> = plan.resources.iter().map(|r| (r.resource.as_str(), r.action)).collect();
        assert_eq!(
            actions,
            [
                ("vpc", Action::Create),
                ("subnet", Action::Leave),
                ("route-table", Action::Adopt),
                ("sg", Action::Change)
            ]
        );
        assert_eq!(plan.resources[0].changes, ["enable DNS hostnames"]);
        assert_eq!(plan.counts(), "1 to create, 1 to adopt, 1 to change, 1 to leave");
    }

    #[test]
    fn a_change_without_a_find_gets_its_own_entry() {
        let log = PlanLog::new("nlb");
        log.change("node-addresses", "reserve 172.31.0.8/29");
        log.denied("node-addresses", "CreateSubnetCidrReservation");
        let plan = plan(log);
        assert_eq!(plan.resources[0].action, Action::Change);
        let lines: Vec<String> = plan.summary_lines().collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[2].contains("not permitted: CreateSubnetCidrReservation"));
    }

    /// Additions read `+`, removals `-`, modifications `~`, never all `-` as before.
    #[test]
    fn change_lines_carry_the_sign_of_their_meaning() {
        let log = PlanLog::new("sg");
        log.found("security group", "sg", "sg-1", true);
        log.change("sg", "authorize tcp 22 from 0.0.0.0/0");
        log.change("sg", "revoke tcp 23 from 0.0.0.0/0");
        log.change("sg", "renew (run with --renew): expires soon");
        let lines: Vec<String> = plan(log).summary_lines().collect();
        let signs: Vec<&str> = lines[1..].iter().map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(signs, ["+", "-", "~"], "{lines:?}");
    }

    /// Every entry has the same keys, whatever its action: `id` is null on a create, and
    /// `changes` and `denied` are empty lists when there are none.
    #[test]
    fn every_entry_has_one_shape() {
        let log = PlanLog::new("vpc");
        log.missing("VPC", "vpc");
        log.found("subnet", "subnet", "subnet-1", true);
        let json = serde_json::to_value(plan(log)).unwrap();
        for entry in json["resources"].as_array().unwrap() {
            let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["step", "resource", "kind", "action", "id", "changes", "denied"], "{entry}");
        }
        assert_eq!(json["not_planned"], serde_json::json!([]));
    }

    /// A node scaled away reads as a deletion, with its termination listed under it.
    #[test]
    fn an_unwanted_resource_is_a_deletion_and_stays_one() {
        let log = PlanLog::new("compute");
        log.found("instance", "worker-0", "i-0", true);
        log.unwanted("instance", "worker-4", "i-4");
        log.change("worker-4", "terminate i-4");
        let plan = plan(log);
        assert_eq!(plan.resources[1].action, Action::Delete);
        assert_eq!(plan.resources[1].changes, ["terminate i-4"]);
        assert_eq!(plan.counts(), "1 to leave, 1 to delete");
        let lines: Vec<String> = plan.summary_lines().collect();
        assert!(lines[1].trim_start().starts_with("- delete"), "{lines:?}");
        assert!(lines[2].trim_start().starts_with("- terminate"), "{lines:?}");
        assert_eq!(serde_json::to_value(Action::Delete).unwrap(), "delete");
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(is_planned_id(&planned_id("vpc")));
        assert!(!is_planned_id("vpc-0123"));
        assert_eq!(PlanSection::default().counts(), "nothing");
    }
}
