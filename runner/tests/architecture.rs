//! ARCHITECTURE.md names, for each invariant, the test or the command that checks it. This
//! keeps those names true: every path it names in backticks exists, every function or test it
//! names is defined in the tree, and every count it states (`` `… | wc -l` is N ``) or command
//! it says finds only one thing (`` `grep …` finds only `X` ``) gives that today.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use groundup_testkit::workspace_root;

/// ARCHITECTURE.md's backticked spans outside its code blocks, each with the prose after it,
/// white space (line breaks, indents) read as one space.
fn spans(text: &str) -> Vec<(String, String)> {
    let prose: Vec<&str> = text.split("```").step_by(2).collect();
    let prose = prose.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
    let pieces: Vec<&str> = prose.split('`').collect();
    pieces[1..].chunks(2).map(|pair| (pair[0].to_string(), pair.get(1).unwrap_or(&"").to_string())).collect()
}

/// What the tree defines, by name: every `fn`, `mod`, `pub` field and Rust file stem, and every
/// file name, below `root` (neither `target` nor hidden directories).
#[derive(Default)]
struct Defined {
    items: BTreeSet<String>,
    files: BTreeSet<String>,
}

impl Defined {
    fn below(root: &Path) -> Defined {
        let mut defined = Defined::default();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let (path, name) = (entry.path(), entry.file_name().to_string_lossy().to_string());
                if entry.file_type().unwrap().is_dir() {
                    if !name.starts_with('.') && name != "target" {
                        stack.push(path);
                    }
                    continue;
                }
                if let Some(stem) = name.strip_suffix(".rs") {
                    defined.items.insert(stem.to_string());
                    defined.read(&std::fs::read_to_string(path).unwrap());
                }
                defined.files.insert(name);
            }
        }
        defined
    }

    /// The names after `fn`, `mod`, `pub` and `pub(crate)` (a field if a `:` follows).
    fn read(&mut self, source: &str) {
        let words: Vec<&str> =
            source.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '(' || c == ')')).collect();
        for pair in words.windows(2) {
            let name = pair[1].split([':', '(']).next().unwrap_or_default();
            if matches!(pair[0], "fn" | "mod" | "pub" | "pub(crate)") && !name.is_empty() {
                self.items.insert(name.to_string());
            }
        }
    }
}

/// A span that names a Rust item: `name`, `module::name`, `Type::method`.
fn rust_path(span: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = span.split("::").collect();
    let identifier = |s: &&str| {
        s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    segments.iter().all(identifier).then_some(segments)
}

/// The shell command's output, run at the workspace's root.
fn output_of(command: &str, root: &Path) -> String {
    let output = Command::new("sh").arg("-c").arg(command).current_dir(root).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// What ARCHITECTURE.md names or states that the tree does not bear out, one line each.
fn untrue_in(architecture: &str, root: &Path) -> Vec<String> {
    let defined = Defined::below(root);
    let top: BTreeSet<String> =
        std::fs::read_dir(root).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    let spans = spans(architecture);
    let mut untrue = Vec::new();
    for (i, (span, after)) in spans.iter().enumerate() {
        let path_like = !span.is_empty() && span.chars().all(|c| c.is_alphanumeric() || "_-./".contains(c));
        if path_like && span.contains('/') {
            // A path of this repository (not, say, ripgrep's `flags/defs.rs`) exists.
            if top.contains(span.split('/').next().unwrap()) && !root.join(span).exists() {
                untrue.push(format!("`{span}`: no such path"));
            }
        } else if path_like && (span.ends_with(".rs") || span.ends_with(".sh")) {
            if !defined.files.contains(span) {
                untrue.push(format!("`{span}`: no file of that name"));
            }
        } else if let Some(segments) = rust_path(span) {
            // A lowercase name in a path (`files::unwanted`, `Gate::note`) or a test's name
            // (`every_row_is_a_flag_of_init_and_up`); a field, a step or a word alone is not checked.
            let name = segments[segments.len() - 1];
            let lowercase = name.chars().all(|c| c.is_lowercase() || c.is_ascii_digit() || c == '_');
            if lowercase && (segments.len() > 1 || name.contains('_')) && !defined.items.contains(name) {
                untrue.push(format!("`{span}`: `{name}` is defined nowhere in the tree"));
            }
        }
        let stated = after.strip_prefix(" is ").filter(|_| span.ends_with("wc -l"));
        let count = stated.and_then(|rest| rest.split([' ', ',', '.', ';', ')']).next());
        if let Some((count, found)) =
            count.map(|count| (count, output_of(span, root))).filter(|(count, found)| *count != found.as_str())
        {
            untrue.push(format!("`{span}` is {found}, not {count}"));
        }
        if after.trim() == "finds only" {
            let only = spans.get(i + 1).map_or("", |(only, _)| only.rsplit("::").next().unwrap_or_default());
            let found = output_of(span, root);
            if found.is_empty() || found.lines().any(|line| !line.contains(only)) {
                untrue.push(format!("`{span}` finds more than `{only}`:\n{found}"));
            }
        }
    }
    untrue
}

/// The crates a "must not depend on" cell of the crates table forbids: those it names in
/// backticks, and those its words stand for.
fn forbidden(cell: &str) -> Vec<String> {
    let steps: &[&str] = &["groundup-network", "groundup-cluster", "groundup-pki", "groundup-teardown"];
    let words: &[(&str, &[&str])] = &[
        ("AWS", &["aws-config", "aws-sdk-ec2", "aws-sdk-elasticloadbalancingv2"]),
        ("tokio", &["tokio"]),
        ("async", &["tokio"]),
        ("OpenSSL", &["openssl"]),
        ("CLI", &["clap"]),
        ("logging", &["tracing"]),
        ("PKI", &["groundup-pki"]),
        ("runner", &["groundup"]),
        ("step crate", steps),
    ];
    let named = cell.split('`').skip(1).step_by(2).map(String::from);
    let meant = words.iter().filter(|(word, _)| cell.contains(word)).flat_map(|(_, crates)| crates.iter());
    named.chain(meant.map(|c| c.to_string())).collect()
}

/// The crates `manifest` lists under `[dependencies]`.
fn dependencies(manifest: &str) -> Vec<String> {
    let section = manifest.split("\n[").find(|s| s.starts_with("dependencies]")).unwrap_or_default();
    let lines = section.lines().skip(1).filter(|line| !line.trim_start().starts_with('#'));
    lines
        .filter_map(|line| line.split(['.', ' ', '=']).next())
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect()
}

/// "Crates and the direction of their dependencies": no crate depends on what its row forbids.
#[test]
fn each_crate_depends_on_none_of_what_its_row_forbids() {
    let root = workspace_root();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let rows: Vec<Vec<&str>> = architecture
        .lines()
        .filter(|line| line.starts_with("| `groundup"))
        .map(|line| line.split(" | ").map(|cell| cell.trim_matches(['|', ' ', '`'])).collect())
        .collect();
    assert!(rows.len() >= 10, "the crates table has {} rows", rows.len());
    for row in rows {
        let (name, path, cell) = (row[0], row[1], row[3]);
        let manifest = std::fs::read_to_string(root.join(path).join("Cargo.toml")).unwrap();
        let depends = dependencies(&manifest);
        assert!(!depends.is_empty() || name == "groundup-contracts", "{name}: no dependencies read");
        let broken: Vec<String> = forbidden(cell).into_iter().filter(|c| c != name && depends.contains(c)).collect();
        assert!(broken.is_empty(), "{name} depends on {broken:?}, which its row in ARCHITECTURE.md forbids");
    }
}

#[test]
fn every_check_architecture_md_names_exists_and_every_count_it_states_holds() {
    let root = workspace_root();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let untrue = untrue_in(&architecture, &root);
    assert!(untrue.is_empty(), "ARCHITECTURE.md is no longer true; fix the text or the code:\n{}", untrue.join("\n"));
}

/// The check fails on what it is for: a renamed test, a moved file, a count gone stale.
#[test]
fn a_renamed_test_a_missing_file_and_a_wrong_count_are_found() {
    let root = workspace_root();
    let text = "Checked by `a_test_nobody_wrote_yet` and `runner/tests/nowhere.rs`, by `plan::no_such_fn`, \
                and `ls Cargo.toml | wc -l` is 2 (one file). `ls Cargo.toml` finds only `Cargo.lock`.";
    let untrue = untrue_in(text, &root);
    assert_eq!(untrue.len(), 5, "{untrue:#?}");
    assert!(untrue_in("`ls Cargo.toml | wc -l` is 1 and `runner/tests/architecture.rs`", &root).is_empty());
}
