//! Explicit reservations of the node addresses in the subnet: AWS assigns no address from
//! them on its own, so the load balancer's interface can never take a node's address;
//! instances may still ask for them by name.

use std::net::Ipv4Addr;

use aws_sdk_ec2::types::SubnetCidrReservationType;
use groundup_cloud::{Aws, AwsResultExt, CloudError};
use groundup_cluster::{reservation_changes, Reservation, RESERVATION_DESCRIPTION};
use ipnet::Ipv4Net;

const LOGICAL: &str = "node-addresses";
const KIND: &str = "address reservation";

/// The journal's name for the reservation of `block`: where the target keeps no description
/// (the emulator), a reservation a killed run made is known to be ours only by its entry.
fn journaled(block: &Ipv4Net) -> String {
    format!("{LOGICAL} {block}")
}

/// The reservations follow the node set: stale ones of ours go first, since AWS refuses
/// overlapping blocks and a changed node set aggregates into other blocks. Returns the
/// reservations of ours.
pub(super) async fn reserve_node_addresses(
    aws: &Aws,
    subnet_id: &str,
    nodes: &[Ipv4Addr],
    recorded: &[Ipv4Net],
) -> Result<Vec<Ipv4Net>, CloudError> {
    let existing = aws.read_existing(subnet_id, || reservations(aws, subnet_id, recorded)).await?.unwrap_or_default();
    if let Some(plan) = &aws.plan {
        if existing.iter().any(|r| r.ours) {
            plan.found("address reservations", LOGICAL, subnet_id, true);
        } else {
            plan.missing("address reservations", LOGICAL);
        }
    }
    let changes = reservation_changes(nodes, &existing);
    for stale in &changes.delete {
        let (id, cidr) = (stale.id.as_str(), stale.cidr);
        aws.change(LOGICAL, &format!("remove the reservation of {cidr} from {subnet_id}"), |dry_run| async move {
            let request = aws.ec2.delete_subnet_cidr_reservation().dry_run(dry_run);
            request.subnet_cidr_reservation_id(id).send().await.api("DeleteSubnetCidrReservation")
        })
        .await?;
    }
    for block in &changes.create {
        let cidr = block.to_string();
        aws.change(LOGICAL, &format!("reserve {cidr} in {subnet_id} for the nodes"), |dry_run| async move {
            if !dry_run {
                aws.journal.begin(KIND, &journaled(block), "").map_err(CloudError::Journal)?;
            }
            aws.ec2
                .create_subnet_cidr_reservation()
                .dry_run(dry_run)
                .subnet_id(subnet_id)
                .cidr(&cidr)
                .reservation_type(SubnetCidrReservationType::Explicit)
                .description(RESERVATION_DESCRIPTION)
                .send()
                .await
                .api("CreateSubnetCidrReservation")
        })
        .await?;
    }
    // In a run, every reservation is as wanted now: none is in flight any more.
    if !aws.planning() {
        for entry in aws.journal.entries().iter().filter(|e| e.kind == KIND) {
            aws.journal.settle(&entry.resource);
        }
    }
    Ok(changes.ours)
}

/// The subnet's IPv4 reservations; ours carry our description, or (where the target keeps no
/// description) are the ones the context records or a killed run journaled.
async fn reservations(aws: &Aws, subnet_id: &str, recorded: &[Ipv4Net]) -> Result<Vec<Reservation>, CloudError> {
    let existing =
        aws.ec2.get_subnet_cidr_reservations().subnet_id(subnet_id).send().await.api("GetSubnetCidrReservations")?;
    Ok(existing
        .subnet_ipv4_cidr_reservations()
        .iter()
        .filter_map(|r| {
            let cidr: Ipv4Net = r.cidr()?.parse().ok()?;
            let ours = r.description() == Some(RESERVATION_DESCRIPTION)
                || recorded.contains(&cidr)
                || aws.journal.pending(&journaled(&cidr)).is_some();
            Some(Reservation { id: r.subnet_cidr_reservation_id()?.to_string(), cidr, ours })
        })
        .collect())
}
