//! The one table of the steps: each step's name (which is also the name of the context
//! section it writes), the sections it needs, what it makes and what it takes from `groundup
//! up` (`--renew`, `--wait`). The `Section` enum, the default pipeline, the sections a
//! teardown or a purge resets, the steps that run again after them, the runner's step names,
//! the flags it passes on and which steps a run of `up` runs ([`Run`]) all come from
//! [`STEPS`]; nothing else lists them.

use crate::error::ContextError;

/// The table, as one macro call so that the `Section` enum, its keys, the context's section
/// accessors and [`STEPS`] come from the same rows. A row is `Variant field { ... }`: the
/// section's variant and the context's field (the section's key, the step's name).
macro_rules! steps {
    ($($section:ident $field:ident {
        needs: [$($need:ident),*],
        makes: $makes:ident,
        head_start: $head_start:literal,
        acts: [$($act:ident),*],
        waits: $waits:expr $(,)?
    }),* $(,)?) => {
        /// A section of the context, written by the step of the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Section {
            $($section),*
        }

        impl Section {
            pub fn key(self) -> &'static str {
                match self {
                    $(Section::$section => stringify!($field)),*
                }
            }
        }

        /// The course's sections in the course's order: what `groundup up` runs unless told otherwise.
        pub const STEPS: &[Step] = {
            use Act::*;
            use Makes::*;
            use Section::*;
            use Waits::*;
            &[$(Step {
                section: $section,
                needs: &[$($need),*],
                makes: $makes,
                head_start: $head_start,
                acts: &[$($act),*],
                waits: $waits,
            }),*]
        };

        impl crate::Context {
            /// Whether the step that writes `section` has recorded it.
            pub fn has_section(&self, section: Section) -> bool {
                match section {
                    $(Section::$section => self.$field.is_some()),*
                }
            }

            /// Whether `other` records the same `section` (a step's run changed nothing of it).
            pub fn same_section(&self, other: &crate::Context, section: Section) -> bool {
                match section {
                    $(Section::$section => self.$field == other.$field),*
                }
            }

            pub(crate) fn forget_section(&mut self, section: Section) {
                match section {
                    $(Section::$section => self.$field = None),*
                }
            }
        }
    };
}

steps! {
    Vpc vpc { needs: [], makes: Cloud, head_start: false, acts: [], waits: No },
    Dhcp dhcp { needs: [Vpc], makes: Cloud, head_start: false, acts: [], waits: No },
    Subnet subnet { needs: [Vpc], makes: Cloud, head_start: false, acts: [], waits: No },
    Igw igw { needs: [Vpc], makes: Cloud, head_start: false, acts: [], waits: No },
    Routes routes { needs: [Vpc, Subnet, Igw], makes: Cloud, head_start: false, acts: [], waits: No },
    Sg sg { needs: [Vpc], makes: Cloud, head_start: false, acts: [], waits: No },
    Nlb nlb { needs: [Vpc, Subnet], makes: Cloud, head_start: false, acts: [], waits: ForItself },
    Compute compute {
        needs: [Subnet, Routes, Sg],
        makes: Cloud,
        head_start: true,
        acts: [],
        waits: AlsoFor(&[Nlb]),
    },
    Ca ca { needs: [], makes: Local, head_start: true, acts: [], waits: No },
    Certs certs { needs: [Ca, Nlb, Compute], makes: LocalFollowingCloud, head_start: false, acts: [Renew], waits: No },
    Kubeconfig kubeconfig {
        needs: [Certs, Nlb, Compute],
        makes: LocalFollowingCloud,
        head_start: false,
        acts: [],
        waits: No,
    },
    Encryption encryption {
        needs: [],
        makes: Local,
        head_start: false,
        acts: [RotateEncryptionKey, RetireOldEncryptionKey],
        waits: No,
    },
    Bundles bundles {
        needs: [Certs, Kubeconfig, Encryption, Compute],
        makes: LocalFollowingCloud,
        head_start: false,
        acts: [],
        waits: No,
    },
}

impl Section {
    /// Each section is named after the step that writes it.
    pub fn step(self) -> &'static str {
        self.key()
    }

    pub fn missing(self) -> ContextError {
        ContextError::MissingSection { section: self.key(), step: self.step() }
    }
}

/// What a step's work is made of, which decides when it must run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Makes {
    /// Cloud resources: gone after `down`, so the step runs again.
    Cloud,
    /// Local files that name cloud resources (certificates with the instances' addresses,
    /// kubeconfigs with the load balancer, bundles of both): they follow the new resources
    /// after `down`, and are made again after a purge.
    LocalFollowingCloud,
    /// Local files that depend on no cloud resource (the CAs, the encryption key): kept
    /// across `down`, made again only after a purge.
    Local,
}

/// An act that `groundup up` asks of the steps whose rows list it, by a flag of `up` that it
/// passes on as the step's own: such a step runs even when it is done, and the steps that read
/// what it makes run after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `up --renew [NAME…] [--new-key]`: the step's flags of the same names. Re-issue what
    /// expires soon or no longer matches, and the certificates named even if they match.
    Renew,
    /// `up --rotate-encryption-key`: the step's `--rotate`, a new key first, the old ones kept.
    RotateEncryptionKey,
    /// `up --retire-old-encryption-key`: the step's `--retire-old`, only the first key kept.
    RetireOldEncryptionKey,
}

impl Act {
    /// The flag of `groundup up` that asks for the act.
    pub fn up_flag(self) -> &'static str {
        match self {
            Act::Renew => "--renew",
            Act::RotateEncryptionKey => "--rotate-encryption-key",
            Act::RetireOldEncryptionKey => "--retire-old-encryption-key",
        }
    }

    /// The step's own flag for it.
    pub fn step_flag(self) -> &'static str {
        match self {
            Act::Renew => "--renew",
            Act::RotateEncryptionKey => "--rotate",
            Act::RetireOldEncryptionKey => "--retire-old",
        }
    }
}

/// What a step does with `groundup up --wait` (passed on as its own `--wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waits {
    /// Nothing: it has nothing that takes time to become ready.
    No,
    /// Waits until its own resources are ready, unless a step of the run waits for them.
    ForItself,
    /// Waits for its own resources and for those of these sections' steps, meanwhile (`compute`
    /// waits for the load balancer while its instances start), so those do not wait themselves.
    AlsoFor(&'static [Section]),
}

pub struct Step {
    pub section: Section,
    /// The sections the step reads; each is written by an earlier step.
    pub needs: &'static [Section],
    pub makes: Makes,
    /// Whether the step has a head start (`--prepare`): work that depends only on the spec
    /// (keys), which `groundup up` runs in the background from the start of the run, and
    /// which the step adopts when its turn comes.
    pub head_start: bool,
    /// The acts `groundup up` may ask of the step (`up --renew` passes the step its
    /// `--renew`, and runs it even when it is done).
    pub acts: &'static [Act],
    pub waits: Waits,
}

impl Step {
    pub fn name(&self) -> &'static str {
        self.section.step()
    }

    /// Whether, in a run of `steps` with `--wait`, this step gets `--wait`: it waits for
    /// something, and no other step of the run waits for it.
    pub fn waits_among(&self, steps: &[&str]) -> bool {
        let covered = || {
            steps.iter().filter_map(|name| step(name)).any(|other| match other.waits {
                Waits::AlsoFor(sections) => sections.contains(&self.section),
                Waits::No | Waits::ForItself => false,
            })
        };
        match self.waits {
            Waits::No => false,
            Waits::AlsoFor(_) => true,
            Waits::ForItself => !covered(),
        }
    }
}

/// The default pipeline's step names, in order.
pub fn pipeline() -> impl Iterator<Item = &'static str> {
    STEPS.iter().map(Step::name)
}

/// What `groundup up` was asked to run, its flags read: the steps its selection `named`
/// (`--only`, or the `--from`..`--to` range, in pipeline order), whether it `resumes` (neither
/// `--from` nor `--only`: a done step is skipped), the `last` step a follower may be (`--to`)
/// and the `acts` asked for.
pub struct Selection {
    pub named: Vec<String>,
    pub resumes: bool,
    pub last: Option<String>,
    pub acts: Vec<Act>,
}

/// The steps a run of `groundup up` runs, in order: the one place that decides them, chosen
/// from the [`Selection`] and the state file before the run ([`Run::new`]) and grown as the run
/// goes ([`Run::ran`], [`Run::gone`]); the runner asks it for each next step. One rule brings
/// steps in: a step that changes what it makes brings in the later steps made from it (reading
/// its section, or that of a step that does: the table's `needs`), up to `--to`, so a
/// re-issued certificate reaches the kubeconfigs and the bundles that embed it in the same
/// run, whatever the selection. In a resume every step chosen is about to change, so the done
/// steps made from it are in the run from the start.
#[derive(Debug)]
pub struct Run {
    pipeline: Vec<String>,
    last: Option<String>,
    steps: Vec<String>,
}

impl Run {
    /// The steps a run starts with: the `named` ones; in a resume only those not done (a step
    /// whose files were made from one that changed since is not done, see `status`) or asked
    /// for an act, and the steps made from them. A resume of steps all done runs them all
    /// again, which finds everything and repairs drift.
    pub fn new(context: &crate::Context, mut selection: Selection) -> Run {
        let stale: Vec<String> = context.stale().into_iter().map(|stale| stale.step).collect();
        let done = |s: &str| context.is_completed(s) && !stale.iter().any(|t| t == s);
        selection.resumes &= !selection.named.iter().all(|s| context.is_completed(s));
        Run::start(context.pipeline.clone(), selection, done)
    }

    fn start(pipeline: Vec<String>, selection: Selection, done: impl Fn(&str) -> bool) -> Run {
        let Selection { named, resumes, last, acts } = selection;
        let asked = |name: &str| step(name).is_some_and(|row| row.acts.iter().any(|act| acts.contains(act)));
        let steps = match resumes {
            true => named.into_iter().filter(|s| !done(s) || asked(s)).collect(),
            false => named,
        };
        let mut run = Run { pipeline, last, steps };
        // A done step is one that has made its files: the one kind outside the run that follows.
        let mut i = 0;
        while resumes && i < run.steps.len() {
            run.follow(i, &done);
            i += 1;
        }
        run
    }

    /// The steps to run, as they stand.
    pub fn steps(&self) -> &[String] {
        &self.steps
    }

    /// `steps[i]` ran, turning the context `before` into `after`: if it changed its section,
    /// the steps made from it join the run. With the note that names those brought in, if any.
    pub fn ran(&mut self, i: usize, before: &crate::Context, after: &crate::Context) -> Option<String> {
        match step(&self.steps[i]) {
            Some(row) if !after.same_section(before, row.section) => self.changed(i, |s| after.is_completed(s)),
            _ => None,
        }
    }

    /// `steps[i]` changed its section: see [`Run::ran`].
    fn changed(&mut self, i: usize, made: impl Fn(&str) -> bool) -> Option<String> {
        let added = self.follow(i, made);
        let step = &self.steps[i];
        (!added.is_empty())
            .then(|| format!("`{step}` changed what it makes; {}, made from it, run too", added.join(", ")))
    }

    /// `steps[failed]` found a resource gone (`groundup up`): every step of the pipeline before
    /// it runs first, selected or not (each finds its resources by their tags or makes them
    /// anew, so what is gone comes back and everything made from it follows: ids,
    /// reservations, targets, routes, the certificates of changed addresses), then it and the
    /// rest of the run.
    pub fn gone(&mut self, failed: usize) {
        let before = self.pipeline.iter().take_while(|s| **s != self.steps[failed]);
        self.steps = before.chain(&self.steps[failed..]).cloned().collect();
    }

    /// Brings in after `steps[i]` the later steps of the pipeline, up to `last`, made from what
    /// it makes. A step outside the run follows only if it has `made` its files: one that never
    /// ran embeds nothing old, and may lack its inputs (`up --only ca` on a new cluster has no
    /// nodes for `certs`). Returns the steps brought in, as the note names them.
    fn follow(&mut self, i: usize, made: impl Fn(&str) -> bool) -> Vec<String> {
        let (step, rest) = (&self.steps[i], &self.steps[i + 1..]);
        let mut changed: Vec<Section> = self::step(step).map(|row| row.section).into_iter().collect();
        let last = self.last.as_deref().and_then(|last| self.pipeline.iter().position(|s| s == last));
        let end = last.map_or(self.pipeline.len(), |last| last + 1);
        let mut run = self.steps[..=i].to_vec();
        let mut added = Vec::new();
        for name in self.pipeline.iter().take(end).skip_while(|s| *s != step).skip(1) {
            let row = self::step(name);
            let follows = row.is_some_and(|row| row.needs.iter().any(|need| changed.contains(need)));
            if follows && (rest.contains(name) || made(name)) {
                changed.extend(row.map(|row| row.section));
                if !rest.contains(name) {
                    added.push(format!("`{name}`"));
                }
                run.push(name.clone());
            } else if rest.contains(name) {
                run.push(name.clone());
            }
        }
        self.steps = run;
        added
    }
}

/// The table's entry for a step name; `None` for a plugin's step.
pub fn step(name: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps a resume of the whole `pipeline` starts with, given those `done` and the acts asked for.
    fn to_run(pipeline: Vec<String>, done: impl Fn(&str) -> bool, acts: &[Act]) -> Vec<String> {
        let selection = Selection { named: pipeline.clone(), resumes: true, last: None, acts: acts.to_vec() };
        Run::start(pipeline, selection, done).steps
    }

    /// A run of `steps` once `steps[failed]` found a resource gone.
    fn again_from_the_start(pipeline: &[String], steps: &[String], failed: usize) -> Vec<String> {
        let mut run = Run { pipeline: pipeline.to_vec(), last: None, steps: steps.to_vec() };
        run.gone(failed);
        run.steps
    }

    /// A run of `steps` ending at `last` once `steps[done]` changed its section, with its note.
    fn with_followers(
        pipeline: &[String],
        steps: &[String],
        done: usize,
        last: Option<&str>,
        made: impl Fn(&str) -> bool,
    ) -> (Vec<String>, Option<String>) {
        let mut run = Run { pipeline: pipeline.to_vec(), last: last.map(String::from), steps: steps.to_vec() };
        let note = run.changed(done, made);
        (run.steps, note)
    }

    #[test]
    fn every_step_needs_only_what_earlier_steps_write() {
        for (i, step) in STEPS.iter().enumerate() {
            for need in step.needs {
                let writer = STEPS.iter().position(|s| s.section == *need);
                assert!(writer.is_some_and(|w| w < i), "{} needs {} before it", step.name(), need.key());
            }
        }
    }

    /// The example of a whole pipeline records every section; a teardown forgets exactly the
    /// sections of the steps that make cloud resources, a purge exactly the others'.
    #[test]
    fn a_teardown_forgets_the_cloud_sections_and_a_purge_the_local_ones() {
        let built = crate::Context::from_json(include_str!("../examples/05-kubeadm.json")).unwrap();
        let sections = |context: &crate::Context| -> Vec<&str> {
            STEPS.iter().filter(|s| context.has_section(s.section)).map(Step::name).collect()
        };
        assert_eq!(sections(&built), pipeline().collect::<Vec<_>>());
        let named = |wanted: fn(Makes) -> bool| -> Vec<&str> {
            STEPS.iter().filter(|s| wanted(s.makes)).map(Step::name).collect()
        };
        let mut torn_down = built.clone();
        torn_down.forget_cloud_resources();
        assert_eq!(sections(&torn_down), named(|makes| makes != Makes::Cloud));
        let mut purged = built;
        purged.forget_pki();
        assert_eq!(sections(&purged), named(|makes| makes == Makes::Cloud));
    }

    /// A step asked for an act runs though it is done, and the done steps that read what it
    /// makes run after it; the others stay done.
    #[test]
    fn the_steps_that_read_what_a_running_step_makes_follow_it() {
        let all: Vec<String> = pipeline().map(String::from).collect();
        let but_bundles = |s: &str| s != "bundles";
        assert_eq!(to_run(all.clone(), but_bundles, &[]), ["bundles"]);
        assert_eq!(to_run(all.clone(), but_bundles, &[Act::RotateEncryptionKey]), ["encryption", "bundles"]);
        assert_eq!(to_run(all.clone(), but_bundles, &[Act::Renew]), ["certs", "kubeconfig", "bundles"]);
        let but_ca = |s: &str| s != "ca";
        assert_eq!(to_run(all, but_ca, &[]), ["ca", "certs", "kubeconfig", "bundles"]);
    }

    #[test]
    fn a_resource_gone_runs_the_steps_before_its_finder_again() {
        let names = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pipeline = names(&["vpc", "dhcp", "subnet", "igw", "certs"]);
        assert_eq!(again_from_the_start(&pipeline, &names(&["igw", "certs"]), 0), pipeline[..]);
        let run = names(&["dhcp", "subnet", "igw"]);
        assert_eq!(again_from_the_start(&pipeline, &run, 1), names(&["vpc", "dhcp", "subnet", "igw"]));
        assert_eq!(again_from_the_start(&pipeline, &names(&["subnet"]), 0), names(&["vpc", "dhcp", "subnet"]));
    }

    /// `certs` changed: `kubeconfig` and `bundles` run too (`bundles` also through
    /// `kubeconfig`), `encryption` does not; `--to kubeconfig` keeps `bundles` out.
    #[test]
    fn a_changed_section_brings_in_the_steps_made_from_it() {
        let pipeline: Vec<String> = super::pipeline().map(String::from).collect();
        let names = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all_made = |_: &str| true;
        let follow = |run: &[&str], last| with_followers(&pipeline, &names(run), 0, last, all_made).0;
        assert_eq!(follow(&["certs"], None), ["certs", "kubeconfig", "bundles"]);
        assert_eq!(follow(&["certs", "encryption"], None), ["certs", "kubeconfig", "encryption", "bundles"]);
        assert_eq!(follow(&["certs"], Some("kubeconfig")), ["certs", "kubeconfig"]);
        assert_eq!(follow(&["encryption"], None), ["encryption", "bundles"]);
        let (run, note) = with_followers(&pipeline, &names(&["vpc", "certs"]), 1, None, all_made);
        assert_eq!(run, ["vpc", "certs", "kubeconfig", "bundles"]);
        assert_eq!(note.unwrap(), "`certs` changed what it makes; `kubeconfig`, `bundles`, made from it, run too");
        let with_plugin = [&pipeline[..], &names(&["mystep"])].concat();
        assert_eq!(
            with_followers(&with_plugin, &names(&["bundles", "mystep"]), 0, None, all_made),
            (names(&["bundles", "mystep"]), None)
        );
        let compute = follow(&["compute"], None);
        assert_eq!(
            compute,
            ["compute", "certs", "kubeconfig", "bundles"],
            "the nodes' addresses reach their certificates"
        );
        let only_kubeconfig_made = |step: &str| step == "kubeconfig";
        assert_eq!(
            with_followers(&pipeline, &names(&["ca"]), 0, None, only_kubeconfig_made).0,
            ["ca"],
            "a step that never ran does not follow, nor what it would have changed"
        );
    }

    #[test]
    fn the_pipeline_is_the_courses_order() {
        let names: Vec<&str> = pipeline().collect();
        assert_eq!(
            names,
            [
                "vpc",
                "dhcp",
                "subnet",
                "igw",
                "routes",
                "sg",
                "nlb",
                "compute",
                "ca",
                "certs",
                "kubeconfig",
                "encryption",
                "bundles"
            ]
        );
    }
}
