//! The cluster steps, `nlb` and `compute` (in `src/bin/`), and what they plan before they call
//! AWS: node addresses and names, load balancer reservations, the SSH key's files, the pod routes. The
//! planning is pure, so it is unit-tested; every AWS call goes through `groundup-cloud`.
//! Nothing here depends on the PKI crate or the runner.

pub mod balancer;
pub mod keys;
pub mod pod_routes;
pub mod user_data;

use std::net::Ipv4Addr;

use groundup_contracts::infra::{node_logical_name, node_name, Role};
use groundup_contracts::kubernetes::KubernetesParams;
use groundup_contracts::params::{NodeSpec, Params, UBUNTU_NAME_PATTERN};
use ipnet::Ipv4Net;

/// The SSH host key fingerprints (`SHA256:...`) cloud-init's `write-ssh-key-fingerprints`
/// printed on the instance's console at boot: only those inside the block between
/// `-----BEGIN SSH HOST KEY FINGERPRINTS-----` and `-----END SSH HOST KEY FINGERPRINTS-----`
/// (each line may carry a prefix such as `ec2: `), so a fingerprint-like text a process
/// printed elsewhere is never taken. Older images' MD5 fingerprints are left out: OpenSSH
/// compares SHA-256 ones.
pub fn console_host_keys(console: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN SSH HOST KEY FINGERPRINTS-----";
    const END: &str = "-----END SSH HOST KEY FINGERPRINTS-----";
    let Some(start) = console.find(BEGIN) else { return Vec::new() };
    let block = &console[start + BEGIN.len()..];
    let Some(end) = block.find(END) else { return Vec::new() };
    let mut keys: Vec<String> = Vec::new();
    for word in block[..end].split_whitespace() {
        let digest = word.strip_prefix("SHA256:").unwrap_or_default();
        let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
        if digest.len() >= 43 && digest.chars().all(base64) && !keys.iter().any(|k| k == word) {
            keys.push(word.to_string());
        }
    }
    keys
}

/// The smallest set of aligned CIDR blocks that covers exactly these addresses. Reserving
/// them in the subnet (explicit reservations) keeps AWS from handing a planned node address
/// to anything else, such as the load balancer's network interface.
pub fn reservation_blocks(ips: &[Ipv4Addr]) -> Vec<Ipv4Net> {
    let mut sorted: Vec<u32> = ips.iter().map(|ip| u32::from(*ip)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let run = sorted[i..].iter().enumerate().take_while(|(k, ip)| **ip == start + *k as u32).count() as u32;
        let mut size = 1u32;
        while start.is_multiple_of(size * 2) && size * 2 <= run {
            size *= 2;
        }
        let prefix = 32 - size.trailing_zeros() as u8;
        blocks.push(Ipv4Net::new(Ipv4Addr::from(start), prefix).expect("prefix in 0..=32"));
        i += size as usize;
    }
    blocks
}

/// The description groundup gives the reservations it makes for node addresses.
pub const RESERVATION_DESCRIPTION: &str = "groundup: node addresses";

/// An explicit CIDR reservation found in the subnet; `ours` if groundup made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub id: String,
    pub cidr: Ipv4Net,
    pub ours: bool,
}

/// What makes the subnet's reservations cover exactly the node addresses.
#[derive(Debug, Default, PartialEq)]
pub struct ReservationChanges {
    /// Blocks no reservation covers yet.
    pub create: Vec<Ipv4Net>,
    /// Reservations of ours that no node needs any more (a node scaled away, or blocks that a
    /// new node set aggregates differently). Another's reservation is never removed.
    pub delete: Vec<Reservation>,
    /// The reservations of ours once the changes are made, to record in the context.
    pub ours: Vec<Ipv4Net>,
}

pub fn reservation_changes(nodes: &[Ipv4Addr], existing: &[Reservation]) -> ReservationChanges {
    let wanted = reservation_blocks(nodes);
    let found = |block: &Ipv4Net| existing.iter().find(|r| r.cidr == *block);
    ReservationChanges {
        create: wanted.iter().filter(|b| found(b).is_none()).copied().collect(),
        delete: existing.iter().filter(|r| r.ours && !wanted.contains(&r.cidr)).cloned().collect(),
        ours: wanted.iter().filter(|b| found(b).is_none_or(|r| r.ours)).copied().collect(),
    }
}

/// One of the cluster's instances, as its tags and AWS describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundInstance {
    /// Its `groundup:resource` tag, e.g. `worker-4`.
    pub logical: String,
    pub id: String,
    pub state: String,
}

/// The instances to terminate: those of nodes the spec no longer plans that are not
/// terminated yet. One already shutting down is included, so that a run resumed after a kill
/// waits for it as the killed run would have.
pub fn unplanned_instances<'a>(found: &'a [FoundInstance], planned: &[PlannedNode]) -> Vec<&'a FoundInstance> {
    found
        .iter()
        .filter(|i| i.state != "terminated" && is_node_name(&i.logical))
        .filter(|i| !planned.iter().any(|node| node.logical() == i.logical))
        .collect()
}

/// `master-0`, `worker-12`: the logical names compute gives nodes, and nothing else.
fn is_node_name(logical: &str) -> bool {
    let index = logical.strip_prefix("master-").or_else(|| logical.strip_prefix("worker-"));
    index.is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// One machine to have: its role, index and the params that describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNode {
    pub role: Role,
    pub index: u32,
    pub spec: NodeSpec,
}

impl PlannedNode {
    /// The identity tag's logical name, e.g. `master-0`.
    pub fn logical(&self) -> String {
        node_logical_name(self.role, self.index)
    }

    /// The Name tag, as in the course: `<cluster>-master-0`.
    pub fn name(&self, cluster: &str) -> String {
        node_name(cluster, self.role, self.index)
    }

    /// The `#cloud-config` it boots with (see [`user_data`]).
    pub fn user_data(&self, kubernetes: &KubernetesParams) -> String {
        user_data::cloud_config(&self.logical(), kubernetes)
    }
}

pub fn planned_nodes(params: &Params) -> Vec<PlannedNode> {
    let with_role = |role: Role, nodes: &[NodeSpec]| -> Vec<PlannedNode> {
        nodes.iter().enumerate().map(|(i, spec)| PlannedNode { role, index: i as u32, spec: spec.clone() }).collect()
    };
    let mut nodes = with_role(Role::Master, &params.masters);
    nodes.extend(with_role(Role::Worker, &params.workers));
    nodes
}

/// Canonical's names carry the release, e.g. `ubuntu-xenial-16.04-amd64-server-20170721`;
/// LTS releases are the even years' .04.
pub fn is_lts_name(name: &str) -> bool {
    name.split('-').any(|part| {
        part.split_once('.').is_some_and(|(year, month)| {
            month == "04" && year.len() == 2 && year.parse::<u32>().is_ok_and(|y| y.is_multiple_of(2))
        })
    })
}

/// Whether the image lookup is the default Ubuntu one, where only LTS releases qualify.
pub fn wants_lts_only(name_pattern: &str) -> bool {
    name_pattern == UBUNTU_NAME_PATTERN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_come_only_from_cloud_inits_block_on_the_console() {
        // An Ubuntu instance's console as GetConsoleOutput returns it (decoded), abridged.
        let console = "[   12.345678] cloud-init[1029]: Cloud-init v. 24.1.3 running 'modules:final'\n\
ci-info: no authorized SSH keys fingerprints found for user ubuntu.\n\
<14>Dec  7 13:01:02 ec2: #############################################################\n\
<14>Dec  7 13:01:02 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
<14>Dec  7 13:01:02 ec2: 256 SHA256:q7SIEu7u0oZ8x7Hm0LB8G6w1H1xG8YQb5n9Zl9cT8Vg root@ip-172-31-0-20 (ECDSA)\n\
<14>Dec  7 13:01:02 ec2: 256 SHA256:3Wd0hA7bC9mQ0k2n8ZKx4p6yG1sV5uR2tE3wQ9oL7jI root@ip-172-31-0-20 (ED25519)\n\
<14>Dec  7 13:01:02 ec2: 3072 SHA256:Yx1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0Uv root@ip-172-31-0-20 (RSA)\n\
<14>Dec  7 13:01:02 ec2: -----END SSH HOST KEY FINGERPRINTS-----\n\
<14>Dec  7 13:01:02 ec2: #############################################################\n\
-----BEGIN SSH HOST KEY KEYS-----\n\
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIV1 root@ip-172-31-0-20\n\
-----END SSH HOST KEY KEYS-----\n\
later: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA planted by a process\n";
        assert_eq!(
            console_host_keys(console),
            [
                "SHA256:q7SIEu7u0oZ8x7Hm0LB8G6w1H1xG8YQb5n9Zl9cT8Vg",
                "SHA256:3Wd0hA7bC9mQ0k2n8ZKx4p6yG1sV5uR2tE3wQ9oL7jI",
                "SHA256:Yx1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0Uv"
            ]
        );
        // Amazon Linux's `ec2: ` prefix, and an old image's MD5 fingerprints, which are left out.
        let old = "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
ec2: 256 98:c4:86:02:4e:f3:47:b4:04:d6:46:86:31:6b:5c:1c  root@ip-172-31-70-225 (ECDSA)\n\
ec2: 256 SHA256:3Wd0hA7bC9mQ0k2n8ZKx4p6yG1sV5uR2tE3wQ9oL7jI root@ip-172-31-70-225 (ED25519)\n\
ec2: -----END SSH HOST KEY FINGERPRINTS-----\n";
        assert_eq!(console_host_keys(old), ["SHA256:3Wd0hA7bC9mQ0k2n8ZKx4p6yG1sV5uR2tE3wQ9oL7jI"]);
        // No block, or one cut short (the console is still being written): nothing.
        assert!(console_host_keys("[    0.000000] Linux version 6.8.0\n").is_empty());
        assert!(console_host_keys(&console[..console.find("-----END SSH").unwrap()]).is_empty());
    }

    fn ips(list: &[&str]) -> Vec<Ipv4Addr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn blocks(list: &[&str]) -> Vec<String> {
        reservation_blocks(&ips(list)).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn course_nodes_are_covered_exactly() {
        let course = ["172.31.0.10", "172.31.0.11", "172.31.0.12", "172.31.0.20", "172.31.0.21", "172.31.0.22"];
        assert_eq!(blocks(&course), ["172.31.0.10/31", "172.31.0.12/32", "172.31.0.20/31", "172.31.0.22/32"]);
    }

    #[test]
    fn blocks_cover_every_node_and_nothing_else() {
        let params = {
            let mut p = Params::course_defaults("us-east-2");
            let layout = groundup_contracts::params::NodeLayout {
                masters: 5,
                workers: 50,
                ..groundup_contracts::params::NodeLayout::course_default()
            };
            (p.masters, p.workers) = layout.expand().unwrap();
            p
        };
        let nodes: Vec<Ipv4Addr> = params.masters.iter().chain(&params.workers).map(|n| n.private_ip).collect();
        let covered: Vec<Ipv4Addr> = reservation_blocks(&nodes)
            .iter()
            .flat_map(|b| ipnet::Ipv4AddrRange::new(b.network(), b.broadcast()))
            .collect();
        let mut expected = nodes.clone();
        expected.sort();
        assert_eq!(covered, expected);
        assert!(reservation_blocks(&nodes).len() < 12, "blocks are aggregated");
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn reservation(id: &str, cidr: &str, ours: bool) -> Reservation {
        Reservation { id: id.into(), cidr: net(cidr), ours }
    }

    #[test]
    fn reservations_follow_the_node_set_and_spare_anothers() {
        let course = ["172.31.0.10", "172.31.0.11", "172.31.0.12", "172.31.0.20", "172.31.0.21", "172.31.0.22"];
        let existing = [
            reservation("r1", "172.31.0.10/31", true),
            reservation("r2", "172.31.0.12/32", true),
            reservation("r3", "172.31.0.20/31", true),
            reservation("r4", "172.31.0.22/32", true),
            reservation("r5", "172.31.0.200/32", false),
        ];
        assert_eq!(reservation_changes(&ips(&course), &existing).create, []);
        assert_eq!(reservation_changes(&ips(&course), &existing).delete, []);

        // Workers 3 -> 5: .20-.24 is one /30 and a /32, so the /31 and the .22 go.
        let five = [&course[..3], &["172.31.0.20", "172.31.0.21", "172.31.0.22", "172.31.0.23", "172.31.0.24"]];
        let changes = reservation_changes(&ips(&five.concat()), &existing);
        assert_eq!(changes.create, [net("172.31.0.20/30"), net("172.31.0.24/32")]);
        assert_eq!(changes.delete, [existing[2].clone(), existing[3].clone()]);
        assert_eq!(changes.ours, reservation_blocks(&ips(&five.concat())));

        // Workers 3 -> 1: only .20 stays; another's reservation is never touched.
        let one = [&course[..3], &["172.31.0.20"]];
        let changes = reservation_changes(&ips(&one.concat()), &existing);
        assert_eq!(changes.create, [net("172.31.0.20/32")]);
        let deleted: Vec<&str> = changes.delete.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(deleted, ["r3", "r4"]);
    }

    #[test]
    fn a_wanted_block_another_reserved_is_used_but_not_claimed() {
        let existing = [reservation("theirs", "172.31.0.10/32", false)];
        let changes = reservation_changes(&ips(&["172.31.0.10", "172.31.0.20"]), &existing);
        assert_eq!(changes.create, [net("172.31.0.20/32")]);
        assert_eq!(changes.delete, []);
        assert_eq!(changes.ours, [net("172.31.0.20/32")]);
    }

    fn instance(logical: &str, state: &str) -> FoundInstance {
        FoundInstance { logical: logical.into(), id: format!("i-{logical}"), state: state.into() }
    }

    #[test]
    fn only_live_instances_of_unplanned_nodes_are_terminated() {
        let planned = planned_nodes(&Params::course_defaults("us-east-2"));
        let found = [
            instance("master-0", "running"),
            instance("worker-2", "running"),
            instance("worker-3", "running"),
            instance("worker-4", "shutting-down"),
            instance("worker-5", "terminated"),
            instance("master-3", "stopped"),
            instance("bastion", "running"),
            instance("worker-", "running"),
        ];
        let retired: Vec<&str> = unplanned_instances(&found, &planned).iter().map(|i| i.id.as_str()).collect();
        assert_eq!(retired, ["i-worker-3", "i-worker-4", "i-master-3"]);
    }

    #[test]
    fn planned_nodes_follow_the_course() {
        let params = Params::course_defaults("us-east-2");
        let nodes = planned_nodes(&params);
        assert_eq!(nodes.len(), 6);
        assert_eq!(nodes[0].name("k8s-cluster"), "k8s-cluster-master-0");
        assert!(nodes[0].user_data(&params.kubernetes).starts_with("#cloud-config\n# groundup master-0: "));
        assert_eq!(nodes[5].name("k8s-cluster"), "k8s-cluster-worker-2");
        assert_eq!(nodes[5].spec.private_ip.to_string(), "172.31.0.22");
    }

    #[test]
    fn only_even_year_april_releases_are_lts() {
        assert!(is_lts_name("ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721"));
        assert!(is_lts_name("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101"));
        assert!(!is_lts_name("ubuntu/images/hvm-ssd/ubuntu-mantic-23.10-amd64-server-20231011"));
        assert!(!is_lts_name("ubuntu/images/hvm-ssd/ubuntu-lunar-23.04-amd64-server-20230420"));
    }
}
