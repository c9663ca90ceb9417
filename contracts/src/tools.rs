//! The tools groundup ships beside its steps: programs `groundup-<name>` that are not pipeline
//! steps (they read a state file; their stdout is a drawing or a report, never a context).
//! `groundup <name> ARGS` runs them, as it runs any `groundup-<name>` on PATH; this table is
//! what `groundup --help`, the completions and the man pages list, and each tool's own `--help`.

/// A tool: its name (the executable is `groundup-<name>`) and one line for help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    pub about: &'static str,
}

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "graph",
        about: "Draw the cluster from the state file: the network and the PKI's trust tree (DOT, Mermaid or SVG)",
    },
    Tool {
        name: "distribute",
        about: "Copy each node's bundle to the node over SSH (a cluster on AWS; not part of `up`)",
    },
];

/// The one line of help of the shipped tool `name`.
pub fn about(name: &str) -> &'static str {
    TOOLS.iter().find(|tool| tool.name == name).map_or("", |tool| tool.about)
}
