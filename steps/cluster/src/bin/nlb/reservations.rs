//! Explicit reservations of the node addresses in the subnet: AWS assigns no address from
//! them on its own, so the load balancer's interface can never take a node's address;
//! instances may still ask for them by name. They have no tags: they are parts of the subnet
//! (`groundup_cloud::Parts`).

use std::net::Ipv4Addr;

use aws_sdk_ec2::types::SubnetCidrReservationType;
use groundup_cloud::{Aws, AwsResultExt, CloudError, Parts};
use groundup_cluster::{reservation_changes, Reservation, RESERVATION_DESCRIPTION};
use groundup_contracts::Ref;
use ipnet::Ipv4Net;

/// The subnet's reservations follow the node set.
pub(super) struct NodeAddresses {
    pub subnet_id: Ref,
    pub nodes: Vec<Ipv4Addr>,
    /// The reservations the context records as ours.
    pub recorded: Vec<Ipv4Net>,
}

/// Stale reservations of ours go first, since AWS refuses overlapping blocks and a changed
/// node set aggregates into other blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fix {
    Remove { id: String, cidr: Ipv4Net },
    Reserve(Ipv4Net),
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Remove { cidr, .. } => write!(f, "remove the reservation of {cidr}"),
            Fix::Reserve(cidr) => write!(f, "reserve {cidr} for the nodes"),
        }
    }
}

impl NodeAddresses {
    /// The reservations of ours once the changes are made, to record in the context.
    pub fn ours(&self, found: &[Reservation]) -> Vec<Ipv4Net> {
        reservation_changes(&self.nodes, found).ours
    }

    /// The journal's name for the reservation of `block`: where the target keeps no
    /// description (the emulator), a reservation a killed run made is known to be ours only
    /// by its entry.
    fn journaled(block: &Ipv4Net) -> String {
        format!("{} {block}", Self::LOGICAL)
    }
}

impl Parts for NodeAddresses {
    const LABEL: &'static str = "address reservation";
    const LOGICAL: &'static str = "node-addresses";
    type Found = Reservation;
    type Fix = Fix;

    fn parent(&self) -> &Ref {
        &self.subnet_id
    }

    /// The subnet's IPv4 reservations; ours carry our description, or (where the target keeps
    /// no description) are the ones the context records or a killed run journaled.
    async fn find(&self, aws: &Aws, subnet_id: &str) -> Result<Vec<Reservation>, CloudError> {
        let request = aws.ec2().get_subnet_cidr_reservations().subnet_id(subnet_id);
        let existing = request.send().await.api("GetSubnetCidrReservations")?;
        Ok(existing
            .subnet_ipv4_cidr_reservations()
            .iter()
            .filter_map(|r| {
                let cidr: Ipv4Net = r.cidr()?.parse().ok()?;
                let ours = r.description() == Some(RESERVATION_DESCRIPTION)
                    || self.recorded.contains(&cidr)
                    || aws.create_pending(&Self::journaled(&cidr));
                Some(Reservation { id: r.subnet_cidr_reservation_id()?.to_string(), cidr, ours })
            })
            .collect())
    }

    fn ours(found: &Reservation) -> bool {
        found.ours
    }

    fn diff(&self, found: &[Reservation]) -> Vec<Fix> {
        let changes = reservation_changes(&self.nodes, found);
        let removes = changes.delete.into_iter().map(|r| Fix::Remove { id: r.id, cidr: r.cidr });
        removes.chain(changes.create.into_iter().map(Fix::Reserve)).collect()
    }

    fn journaled(&self, fix: &Fix) -> Option<String> {
        match fix {
            Fix::Reserve(block) => Some(Self::journaled(block)),
            Fix::Remove { .. } => None,
        }
    }

    async fn apply(&self, aws: &Aws, subnet_id: &str, fix: &Fix, dry_run: bool) -> Result<(), CloudError> {
        match fix {
            Fix::Remove { id, .. } => {
                let request = aws.ec2().delete_subnet_cidr_reservation().dry_run(dry_run);
                request.subnet_cidr_reservation_id(id).send().await.api("DeleteSubnetCidrReservation")?;
            }
            Fix::Reserve(block) => {
                aws.ec2()
                    .create_subnet_cidr_reservation()
                    .dry_run(dry_run)
                    .subnet_id(subnet_id)
                    .cidr(block.to_string())
                    .reservation_type(SubnetCidrReservationType::Explicit)
                    .description(RESERVATION_DESCRIPTION)
                    .send()
                    .await
                    .api("CreateSubnetCidrReservation")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stale reservation of ours is removed before the new blocks are reserved; another's
    /// is never touched.
    #[test]
    fn stale_reservations_go_before_new_ones_and_anothers_stay() {
        let addresses = NodeAddresses {
            subnet_id: Ref::Known("subnet-1".into()),
            nodes: vec!["10.240.0.10".parse().unwrap()],
            recorded: Vec::new(),
        };
        let found = |cidr: &str, ours| Reservation { id: format!("r-{cidr}"), cidr: cidr.parse().unwrap(), ours };
        let lines = |found: &[Reservation]| addresses.diff(found).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            lines(&[found("10.240.0.20/32", true), found("10.240.0.30/32", false)]),
            ["remove the reservation of 10.240.0.20/32", "reserve 10.240.0.10/32 for the nodes"]
        );
        assert!(lines(&[found("10.240.0.10/32", true)]).is_empty());
        assert_eq!(
            addresses.journaled(&Fix::Reserve("10.240.0.10/32".parse().unwrap())).unwrap(),
            "node-addresses 10.240.0.10/32"
        );
    }
}
