//! Pod routes, as Kubernetes the Hard Way's "Provisioning Pod Network Routes": each worker's
//! pod range routed to the worker, so that pods reach pods on other nodes by their own
//! addresses. The cluster's route table is groundup's, so every route in it to an instance or
//! a network interface is a pod route: one no worker wants any more (a removed worker's,
//! or one left dangling by a terminated instance) goes.

use groundup_contracts::Ref;
use ipnet::Ipv4Net;

/// A worker's pod range and where it must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRoute {
    pub cidr: Ipv4Net,
    /// The worker's logical name, e.g. `worker-1`.
    pub worker: String,
    pub instance_id: Ref,
}

/// A route of the table, as the describe call gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRoute {
    pub cidr: Ipv4Net,
    pub instance_id: Option<String>,
    /// Whether it goes to an instance or a network interface (not a gateway, not `local`).
    pub to_node: bool,
    /// Its target is gone.
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRouteFix {
    Create(PodRoute),
    Replace(PodRoute),
    Remove(Ipv4Net),
}

impl std::fmt::Display for PodRouteFix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodRouteFix::Create(r) => write!(f, "route {r}"),
            PodRouteFix::Replace(r) => write!(f, "re-point route {r}"),
            PodRouteFix::Remove(cidr) => write!(f, "remove route {cidr}, which no worker has"),
        }
    }
}

/// `<range> to <worker> (<instance id>)`; a worker the plan would launch has no id to show.
impl std::fmt::Display for PodRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", self.cidr, self.worker)?;
        match self.instance_id.known() {
            Some(id) => write!(f, " ({id})"),
            None => f.write_str(" (to be launched)"),
        }
    }
}

/// The changes that make the table's pod routes exactly the wanted ones: the stale first.
pub fn pod_route_changes(wanted: &[PodRoute], found: &[FoundRoute]) -> Vec<PodRouteFix> {
    let stale = found
        .iter()
        .filter(|f| f.to_node && !wanted.iter().any(|w| w.cidr == f.cidr))
        .map(|f| PodRouteFix::Remove(f.cidr));
    let missing = wanted.iter().filter_map(|w| match found.iter().find(|f| f.cidr == w.cidr) {
        None => Some(PodRouteFix::Create(w.clone())),
        Some(f) if f.blackhole || !f.instance_id.as_deref().is_some_and(|id| w.instance_id == *id) => {
            Some(PodRouteFix::Replace(w.clone()))
        }
        Some(_) => None,
    });
    stale.chain(missing).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(i: u8, instance: &str) -> PodRoute {
        PodRoute {
            cidr: format!("172.20.{i}.0/24").parse().unwrap(),
            worker: format!("worker-{i}"),
            instance_id: Ref::Known(instance.into()),
        }
    }

    fn found(cidr: &str, instance: Option<&str>, blackhole: bool) -> FoundRoute {
        FoundRoute {
            cidr: cidr.parse().unwrap(),
            instance_id: instance.map(String::from),
            to_node: instance.is_some() || blackhole,
            blackhole,
        }
    }

    fn lines(fixes: &[PodRouteFix]) -> Vec<String> {
        fixes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_pod_routes_follow_the_workers() {
        let workers = [wanted(0, "i-0"), wanted(1, "i-1")];
        let gateway = found("0.0.0.0/0", None, false);
        let local = found("172.31.0.0/16", None, false);
        let settled = [
            gateway.clone(),
            local.clone(),
            found("172.20.0.0/24", Some("i-0"), false),
            found("172.20.1.0/24", Some("i-1"), false),
        ];
        assert!(pod_route_changes(&workers, &settled).is_empty());
        assert_eq!(
            lines(&pod_route_changes(&workers, &[gateway.clone(), local])),
            ["route 172.20.0.0/24 to worker-0 (i-0)", "route 172.20.1.0/24 to worker-1 (i-1)"]
        );
        // A worker replaced (a new instance), one removed by scaling, one whose instance is gone.
        let drifted = [
            gateway,
            found("172.20.0.0/24", Some("i-old"), false),
            found("172.20.1.0/24", None, true),
            found("172.20.2.0/24", Some("i-2"), false),
        ];
        assert_eq!(
            lines(&pod_route_changes(&workers, &drifted)),
            [
                "remove route 172.20.2.0/24, which no worker has",
                "re-point route 172.20.0.0/24 to worker-0 (i-0)",
                "re-point route 172.20.1.0/24 to worker-1 (i-1)",
            ]
        );
        // In a plan, a worker still to be launched has no instance id yet.
        let launching = PodRoute { instance_id: Ref::Planned("worker-3".into()), ..wanted(3, "") };
        assert_eq!(lines(&pod_route_changes(&[launching], &[])), ["route 172.20.3.0/24 to worker-3 (to be launched)"]);
    }
}
