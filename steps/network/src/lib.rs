//! The course's network steps, one executable each in `src/bin/`: `vpc`, `dhcp`, `subnet`,
//! `igw`, `routes` and `sg`, in the course's order, and `check`, which evaluates the policy's
//! flows over what the network's describe calls return ([`reach`]). Each reads the sections of the steps before
//! it from the context and adds its own.
//!
//! Every AWS call goes through `groundup-cloud` (clients, tags, find-or-create, the change
//! gate); a step file holds only what is particular to its resource. Nothing here depends on
//! the PKI crate or the runner, and nothing but these executables depends on this crate.

pub mod reach;

/// An instance's security groups: its own list, or its primary interface's where the
/// emulator leaves its own empty (an instance launched with an interface spec). On AWS the
/// two are one; the emulator's `ModifyInstanceAttribute --groups` sets the instance's own
/// list and appends to the interface's, so its own list, once there, is the one to read.
pub fn instance_groups(instance: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    let own: Vec<String> = instance.security_groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
    if !own.is_empty() {
        return own;
    }
    let primary = instance.network_interfaces().first();
    primary.map_or_else(Vec::new, |n| n.groups().iter().filter_map(|g| g.group_id().map(String::from)).collect())
}
