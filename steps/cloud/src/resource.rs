//! The one shape of every cloud resource a step owns, after kops' awstasks: the resource
//! declares how it is found (by its tags) and created, what else it is ([`Resource::observe`]) and
//! how that differs from what the context wants ([`Resource::diff`], pure, so every kind's
//! compare is unit tested without an emulator), and how each in-place change is made.
//! [`converge`] does the rest the same way for every kind: find or create, compare, refuse
//! what cannot change before anything changes, and send each change through the plan gate.
//! Plan placeholders stay in here: a resource the plan would create is never observed.

use std::fmt::Display;
use std::future::Future;

use groundup_contracts::kinds::Kind;
use groundup_contracts::Ref;

use crate::client::Aws;
use crate::error::{CloudError, Immutable};
use crate::find::{find_or_create, Attempt, AwsResource, Converged, Wanted};
use crate::progress::{wait_until, Polled};

/// One way the resource found differs from the one wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<F> {
    /// Made in place by [`Resource::apply`]; its `Display` is the line in plans and logs.
    InPlace(F),
    /// A field AWS cannot change on an existing resource.
    Immutable(Immutable),
}

/// One line per change, as plans and the diff tests read them.
impl<F: Display> Display for Change<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::InPlace(fix) => fix.fmt(f),
            Change::Immutable(i) => write!(f, "{} {} -> {} cannot change", i.field, i.now, i.wanted),
        }
    }
}

/// The fix of a kind that has no in-place changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoFix {}

impl Display for NoFix {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

/// A resource kind's declaration. `find`, `create`, `observe` and `apply` talk to AWS; `diff`
/// does not. The kind is the described type's row in the kinds table.
pub trait Resource {
    /// Whether the in-place changes' calls take DryRun (most of EC2 does; ELBv2 and
    /// ModifyVpcAttribute do not).
    const FIXES_TAKE_DRY_RUN: bool = true;
    /// Whether the step records what the changes alter, so the resource is described again
    /// after them.
    const DESCRIBE_AFTER_CHANGES: bool = false;
    /// The resource as a describe call returns it.
    type Described: AwsResource;
    /// What other calls say about it beyond its description (`()` for most kinds); the
    /// default is what a new resource has.
    type Observed: Default;
    /// A change made in place.
    type Fix: Display;

    /// The name in the cluster's tags: the kinds table's, for a kind a cluster has one of
    /// (instances, one per node, are each named after their node).
    fn logical(&self) -> &str {
        let kind = Self::Described::KIND;
        kind.logical().unwrap_or_else(|| panic!("{} resources each declare their logical name", kind.label()))
    }
    /// For a create call that takes an idempotency token: what the token is scoped to (the
    /// resource it hangs off), so that it never names a deleted resource.
    fn token_scope(&self) -> Option<String> {
        None
    }
    /// The cluster's resources of this kind with this logical name: by their tags, unless the
    /// kind finds them another way.
    fn find(&self, aws: &Aws) -> impl Future<Output = Result<Vec<Self::Described>, CloudError>> {
        Self::Described::find_tagged(aws, self.logical())
    }
    fn create(&self, aws: &Aws, attempt: Attempt) -> impl Future<Output = Result<Self::Described, CloudError>>;
    /// Reads what the compare needs beyond the description, for a resource that exists.
    fn observe(&self, _: &Aws, _: &Self::Described) -> impl Future<Output = Result<Self::Observed, CloudError>> {
        std::future::ready(Ok(Self::Observed::default()))
    }
    /// The changes from what is to what is wanted. `found` is `None` for a resource the plan
    /// would create (with the default `observed`): it still needs what its create call does
    /// not set.
    fn diff(&self, found: Option<&Self::Described>, observed: &Self::Observed) -> Vec<Change<Self::Fix>>;
    fn apply(
        &self,
        aws: &Aws,
        id: &str,
        fix: &Self::Fix,
        dry_run: bool,
    ) -> impl Future<Output = Result<(), CloudError>>;
}

/// The lines of a diff, as the diff tests compare them.
pub fn lines<F: Display>(changes: &[Change<F>]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

/// Finds or creates the resource, compares it with what is wanted, refuses an immutable
/// difference before changing anything, and makes (or, in a plan, records) the rest.
/// `recorded` is the reference the context holds, which tells adopting from leaving in a plan.
pub async fn converge<R: Resource>(
    aws: &Aws,
    resource: &R,
    recorded: Option<&Ref>,
) -> Result<Converged<R::Described>, CloudError> {
    let obtained = obtain(aws, resource, recorded).await?;
    converge_obtained(aws, resource, obtained).await
}

/// The first half of [`converge`]: finds the resource by its tags or creates it, and compares
/// nothing yet. For resources whose wanted state names each other by id (the two security
/// groups' rules), so that all of them are found or made first, then each converged with
/// [`converge_obtained`] once every id is known.
pub async fn obtain<R: Resource>(
    aws: &Aws,
    resource: &R,
    recorded: Option<&Ref>,
) -> Result<Converged<R::Described>, CloudError> {
    let (kind, logical) = (R::Described::KIND, resource.logical());
    let token = resource.token_scope().map(|scope| aws.identity.client_token(logical, &scope)).unwrap_or_default();
    let wanted = Wanted::new(kind, logical).recorded(recorded).client_token(token);
    find_or_create(aws, wanted, || resource.find(aws), |attempt| resource.create(aws, attempt)).await
}

/// The second half of [`converge`]: compares what [`obtain`] gave with what is wanted, refuses
/// an immutable difference before changing anything, and makes (or, in a plan, records) the
/// rest.
pub async fn converge_obtained<R: Resource>(
    aws: &Aws,
    resource: &R,
    converged: Converged<R::Described>,
) -> Result<Converged<R::Described>, CloudError> {
    let (kind, logical) = (R::Described::KIND, resource.logical());
    let id = converged.id();
    let observed = match converged.existing() {
        Some(found) => resource.observe(aws, found).await?,
        None => R::Observed::default(),
    };
    let mut fixes = Vec::new();
    for change in resource.diff(converged.existing(), &observed) {
        match change {
            Change::InPlace(fix) => fixes.push(fix),
            Change::Immutable(refused) => {
                return Err(CloudError::Immutable {
                    kind: kind.label(),
                    id: id.to_string(),
                    refused: Box::new(refused),
                })
            }
        }
    }
    // A resource the plan would create has its changes recorded, never applied, so the
    // placeholder never reaches an API call but a dry run's.
    let call_id = id.to_string();
    let mut made = 0;
    for fix in &fixes {
        let what = fix.to_string();
        let gate =
            aws.gate(logical, &what, R::FIXES_TAKE_DRY_RUN, |dry_run| resource.apply(aws, &call_id, fix, dry_run));
        made += usize::from(gate.await?.is_some());
    }
    match converged {
        Converged::Existing(found) if made < fixes.len() => Ok(Converged::Changing(found)),
        converged if made == 0 || !R::DESCRIBE_AFTER_CHANGES => Ok(converged),
        _ => match resource.find(aws).await?.as_mut_slice() {
            [again] => Ok(Converged::Existing(again.clone())),
            _ => Err(CloudError::Vanished { kind: kind.label(), id: call_id }),
        },
    }
}

impl Aws {
    /// Deletes a resource of ours the context no longer wants (a node scaled away): a plan
    /// lists it as a delete, with `what` as its change; a run makes the call (which takes
    /// DryRun) and logs it.
    pub async fn delete<T, F, Fut>(
        &self,
        kind: Kind,
        logical: &str,
        id: &str,
        what: &str,
        call: F,
    ) -> Result<(), CloudError>
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        if let Some(plan) = self.gate.plan() {
            plan.unwanted(kind.label(), logical, id);
        }
        self.gate(logical, what, true, call).await?;
        Ok(())
    }

    /// Reads about a resource another step made; one the plan would create has nothing to
    /// read yet.
    pub async fn read_existing<'r, T, F, Fut>(&self, reference: &'r Ref, read: F) -> Result<Option<T>, CloudError>
    where
        F: FnOnce(&'r str) -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        match reference.known() {
            Some(id) => read(id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Waits, showing progress, until each existing resource of `resources` is done (see
    /// [`wait_until`]). A plan waits for nothing: what it would wait for is not being made.
    pub async fn wait_for<F, Fut>(
        &self,
        step: &str,
        what: &str,
        resources: &[Ref],
        timeout: std::time::Duration,
        poll: F,
    ) -> Result<(), CloudError>
    where
        F: FnMut(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<Polled>, CloudError>>,
    {
        let ids: Vec<String> = resources.iter().filter_map(|r| r.known().map(String::from)).collect();
        if self.gate.planning() || ids.is_empty() {
            return Ok(());
        }
        wait_until(step, what, ids, timeout, poll).await
    }
}
