//! Recording a plan: what a step run with `--plan` would do, collected while it runs (from
//! several threads) and added to the context's `plan` section at the end.

use std::sync::Mutex;

use groundup_contracts::plan::{Action, PlannedResource};
use groundup_contracts::Context;

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

    /// Something a run will not do but the reader must know (an instance that runs older
    /// user data): listed with the resource, whose action stays what it is.
    pub fn note(&self, logical: &str, what: &str) {
        self.with_entry(logical, |entry| entry.changes.push(what.to_string()));
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

/// The one gate every change of a step passes, local (the files `artifact::converge_file`
/// writes) or in the cloud (`groundup-cloud`'s `Aws` holds one): in a plan the change is
/// recorded and not made, in a run it is made and logged, one line in one style
/// ([`Gate::log`]). A step decides once what each thing needs and sends it through here, so
/// its plan and its run are one code path.
#[derive(Debug)]
pub struct Gate {
    step: String,
    plan: Option<PlanLog>,
}

impl Gate {
    pub fn new(step: &str, planning: bool) -> Self {
        Gate { step: step.into(), plan: planning.then(|| PlanLog::new(step)) }
    }

    /// The gate of `step` run on `context`: it records if the context is a plan. The one place
    /// a step's plan mode is read; everything after asks the gate.
    pub fn for_context(step: &str, context: &Context) -> Self {
        Gate::new(step, context.planning())
    }

    pub fn planning(&self) -> bool {
        self.plan.is_some()
    }

    /// The plan being recorded; `None` in a run. For what only the cloud records beside the
    /// gate's calls (a refused DryRun, a deletion made by several calls).
    pub fn plan(&self) -> Option<&PlanLog> {
        self.plan.as_ref()
    }

    /// The one line a change leaves in the log, cloud or local: `<step>: <name>: <what>`, at
    /// info (planned and routine: a re-issue, a rewrite, a bundle that follows, a create).
    pub fn log(&self, name: &str, what: impl std::fmt::Display) {
        tracing::info!("{}: {name}: {what}", self.step);
    }

    /// Does what only a run does (opening a directory for writing, settling the step's
    /// records); `None` in a plan.
    pub fn in_run<T, E>(&self, act: impl FnOnce() -> Result<T, E>) -> Result<Option<T>, E> {
        match &self.plan {
            Some(_) => Ok(None),
            None => act().map(Some),
        }
    }

    /// Something an earlier step makes is missing (a CA, a certificate to embed): a plan goes
    /// on, since that step would make it first; a run fails with `error`.
    pub fn source_missing<E>(&self, error: impl FnOnce() -> E) -> Result<(), E> {
        match &self.plan {
            Some(_) => Ok(()),
            None => Err(error()),
        }
    }

    /// A change only the user can allow (a certificate that needs `--renew`): a plan shows
    /// it; a run leaves it, and the step refuses what it left, saying how to allow it.
    pub fn propose(&self, name: &str, what: &str) {
        if let Some(plan) = &self.plan {
            plan.change(name, what);
        }
    }

    /// What a run leaves as it is but must tell (an instance with older user data): a note
    /// in a plan, a warning in a run, in the one style of [`Gate::log`].
    pub fn note(&self, name: &str, what: &str) {
        match &self.plan {
            Some(plan) => plan.note(name, what),
            None => tracing::warn!("{}: {name}: {what}", self.step),
        }
    }

    /// The step's end: in a plan, what it recorded joins the context's plan, in the order of
    /// `names` (see [`Gate::take_in_order`]); in a run, `record` writes the step's section.
    pub fn finish<'a>(
        &self,
        context: &mut Context,
        names: impl IntoIterator<Item = &'a str>,
        record: impl FnOnce(&mut Context),
    ) {
        match &self.plan {
            Some(_) => context.add_plan(self.take_in_order(names)),
            None => record(context),
        }
    }

    /// The thing exists; `recorded` says whether the context already holds it.
    pub fn found(&self, kind: &str, name: &str, id: &str, recorded: bool) {
        if let Some(plan) = &self.plan {
            plan.found(kind, name, id, recorded);
        }
    }

    /// Makes what is missing; `None` in a plan.
    pub fn create<T, E>(&self, kind: &str, name: &str, make: impl FnOnce() -> Result<T, E>) -> Result<Option<T>, E> {
        self.pass(|plan| plan.missing(kind, name), make, || self.log(name, format_args!("created {kind}")))
    }

    /// Changes what exists; `None` in a plan. `what` says what the change is and why.
    pub fn change<T, E>(&self, name: &str, what: &str, make: impl FnOnce() -> Result<T, E>) -> Result<Option<T>, E> {
        self.pass(|plan| plan.change(name, what), make, || self.log(name, what))
    }

    /// Removes what exists and is no longer wanted; `None` in a plan. `what` lists what goes.
    pub fn delete<T, E>(
        &self,
        kind: &str,
        name: &str,
        id: &str,
        what: &[String],
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Option<T>, E> {
        let record = |plan: &PlanLog| {
            plan.unwanted(kind, name, id);
            what.iter().for_each(|line| plan.change(name, line));
        };
        self.pass(record, make, || self.log(name, format_args!("removed {kind}: {}", what.join(", "))))
    }

    fn pass<T, E>(
        &self,
        record: impl FnOnce(&PlanLog),
        make: impl FnOnce() -> Result<T, E>,
        log: impl FnOnce(),
    ) -> Result<Option<T>, E> {
        if let Some(plan) = &self.plan {
            record(plan);
            return Ok(None);
        }
        let made = make()?;
        log();
        Ok(Some(made))
    }

    /// What the plan recorded, for the context's `plan` section; nothing in a run.
    pub fn take(&self) -> Vec<PlannedResource> {
        self.plan.as_ref().map(PlanLog::take).unwrap_or_default()
    }

    /// The same, in the order of `names` (the step's own order of the things it went through
    /// in parallel), so that a plan reads the same every time; anything else keeps its place
    /// after them.
    pub fn take_in_order<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<PlannedResource> {
        let order: Vec<&str> = names.into_iter().collect();
        let mut entries = self.take();
        entries.sort_by_key(|e| order.iter().position(|name| *name == e.resource).unwrap_or(order.len()));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_contracts::plan::PlanSection;

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

    /// What a step asks instead of branching on its plan mode: a plan does none of a run's
    /// work, tolerates a source an earlier step would make, and shows what only the user can
    /// allow; a run does the work, fails on the missing source, and leaves the proposal.
    #[test]
    fn the_gate_alone_decides_what_only_a_run_does() {
        let planning = Gate::new("certs", true);
        assert_eq!(planning.in_run(|| -> Result<u8, std::fmt::Error> { panic!("a plan did a run's work") }), Ok(None));
        assert_eq!(planning.source_missing(|| "run groundup-ca first"), Ok(()));
        planning.propose("admin", "renew (run with --renew)");
        planning.note("master-0", "runs older user data");
        let entries = planning.take();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].changes, ["renew (run with --renew)"]);

        let running = Gate::new("certs", false);
        assert_eq!(running.in_run(|| Ok::<_, String>(7)), Ok(Some(7)));
        assert_eq!(running.source_missing(|| "run groundup-ca first"), Err("run groundup-ca first"));
        running.propose("admin", "renew (run with --renew)");
        assert!(running.take().is_empty(), "a run records no proposal");
    }

    #[test]
    fn the_gate_records_in_a_plan_and_acts_in_a_run() {
        let planning = Gate::new("certs", true);
        planning.found("certificate", "admin", "pki/admin.pem", true);
        let made = planning
            .change("admin", "renew: expires soon", || -> Result<u8, std::fmt::Error> { panic!("a plan acts") });
        assert_eq!(made, Ok(None));
        assert_eq!(
            planning.create("certificate", "kube-proxy", || -> Result<u8, std::fmt::Error> { panic!("a plan acts") }),
            Ok(None)
        );
        let entries = planning.take();
        let actions: Vec<(&str, Action)> = entries.iter().map(|e| (e.resource.as_str(), e.action)).collect();
        assert_eq!(actions, [("admin", Action::Change), ("kube-proxy", Action::Create)]);
        assert_eq!(entries[0].changes, ["renew: expires soon"]);

        let running = Gate::new("certs", false);
        running.found("certificate", "admin", "pki/admin.pem", true);
        assert_eq!(running.change("admin", "renew", || Ok::<_, String>(1)), Ok(Some(1)));
        assert_eq!(
            running.create("certificate", "kube-proxy", || Err::<u8, _>("disk full".to_string())),
            Err("disk full".into())
        );
        assert!(running.take().is_empty(), "a run records no plan");

        let parallel = Gate::new("bundles", true);
        for name in ["c", "x", "a", "b"] {
            parallel.create("node bundle", name, || Ok::<_, String>(())).unwrap();
        }
        let entries = parallel.take_in_order(["a", "b", "c"]);
        let names: Vec<&str> = entries.iter().map(|e| e.resource.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "x"]);
    }
}
