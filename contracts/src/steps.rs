//! The one table of the steps: each step's name (which is also the name of the context
//! section it writes), the sections it needs, and what it makes. The default pipeline, the
//! steps that run again after a teardown or a purge, and the runner's step names all come from
//! [`STEPS`]; nothing else lists them.

use crate::error::ContextError;

/// A section of the context, written by the step of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Vpc,
    Dhcp,
    Subnet,
    Igw,
    Routes,
    Sg,
    Nlb,
    Compute,
    Ca,
    Certs,
    Kubeconfig,
    Encryption,
    Bundles,
}

impl Section {
    pub fn key(self) -> &'static str {
        match self {
            Section::Vpc => "vpc",
            Section::Dhcp => "dhcp",
            Section::Subnet => "subnet",
            Section::Igw => "igw",
            Section::Routes => "routes",
            Section::Sg => "sg",
            Section::Nlb => "nlb",
            Section::Compute => "compute",
            Section::Ca => "ca",
            Section::Certs => "certs",
            Section::Kubeconfig => "kubeconfig",
            Section::Encryption => "encryption",
            Section::Bundles => "bundles",
        }
    }

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

pub struct Step {
    pub section: Section,
    /// The sections the step reads; each is written by an earlier step.
    pub needs: &'static [Section],
    pub makes: Makes,
    /// Whether the step has a head start (`--prepare`): work that depends only on the spec
    /// (keys), which `groundup up` runs in the background from the start of the run, and
    /// which the step adopts when its turn comes.
    pub head_start: bool,
}

impl Step {
    pub fn name(&self) -> &'static str {
        self.section.step()
    }
}

/// The course's sections in the course's order: what `groundup up` runs unless told otherwise.
pub const STEPS: &[Step] = {
    use Makes::*;
    use Section::*;
    &[
        Step { section: Vpc, needs: &[], makes: Cloud, head_start: false },
        Step { section: Dhcp, needs: &[Vpc], makes: Cloud, head_start: false },
        Step { section: Subnet, needs: &[Vpc], makes: Cloud, head_start: false },
        Step { section: Igw, needs: &[Vpc], makes: Cloud, head_start: false },
        Step { section: Routes, needs: &[Vpc, Subnet, Igw], makes: Cloud, head_start: false },
        Step { section: Sg, needs: &[Vpc], makes: Cloud, head_start: false },
        Step { section: Nlb, needs: &[Vpc, Subnet], makes: Cloud, head_start: false },
        Step { section: Compute, needs: &[Subnet, Routes, Sg], makes: Cloud, head_start: true },
        Step { section: Ca, needs: &[], makes: Local, head_start: true },
        Step { section: Certs, needs: &[Ca, Nlb, Compute], makes: LocalFollowingCloud, head_start: false },
        Step { section: Kubeconfig, needs: &[Certs, Nlb, Compute], makes: LocalFollowingCloud, head_start: false },
        Step { section: Encryption, needs: &[], makes: Local, head_start: false },
        Step {
            section: Bundles,
            needs: &[Certs, Kubeconfig, Encryption, Compute],
            makes: LocalFollowingCloud,
            head_start: false,
        },
    ]
};

/// The default pipeline's step names, in order.
pub fn pipeline() -> impl Iterator<Item = &'static str> {
    STEPS.iter().map(Step::name)
}

/// The table's entry for a step name; `None` for a plugin's step.
pub fn step(name: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_needs_only_what_earlier_steps_write() {
        for (i, step) in STEPS.iter().enumerate() {
            for need in step.needs {
                let writer = STEPS.iter().position(|s| s.section == *need);
                assert!(writer.is_some_and(|w| w < i), "{} needs {} before it", step.name(), need.key());
            }
        }
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
