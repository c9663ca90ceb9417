//! The course's network steps, one executable each in `src/bin/`: `vpc`, `dhcp`, `subnet`,
//! `igw`, `routes` and `sg`, in the course's order, and `check`, which evaluates the policy's
//! flows over what the network's describe calls return ([`reach`]). Each reads the sections of the steps before
//! it from the context and adds its own.
//!
//! Every AWS call goes through `groundup-cloud` (clients, tags, find-or-create, the change
//! gate); a step file holds only what is particular to its resource. Nothing here depends on
//! the PKI crate or the runner, and nothing but these executables depends on this crate.

pub mod reach;
