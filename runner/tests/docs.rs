//! Completions and man pages, generated from the clap definitions of the runner and every step,
//! checked with a real bash.

use std::process::Command;

use groundup_testkit::{assert_success, bin};

/// What bash's programmable completion offers for `words` (the last one being completed).
fn complete(words: &[&str]) -> Vec<String> {
    let script = format!(
        "source <({} completions bash) || exit 3\nCOMP_WORDS=({})\nCOMP_CWORD={}\ncomplete -p {} >/dev/null || exit 4\nfunction=$(complete -p {} | awk '{{print $(NF-1)}}')\n\"$function\" {} {} {}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin("groundup").display(),
        words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        words.len() - 1,
        words[0],
        words[0],
        words[0],
        words.last().map(|w| format!("'{w}'")).unwrap(),
        words.get(words.len().wrapping_sub(2)).map_or("''".to_string(), |w| format!("'{w}'")),
    );
    let output = Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert_success(&output, "bash completion");
    String::from_utf8(output.stdout).unwrap().lines().map(String::from).collect()
}

#[test]
fn bash_completes_the_step_names_after_from_to_and_only() {
    let steps: Vec<&str> = groundup_contracts::steps::pipeline().collect();
    for flag in ["--from", "--to", "--only"] {
        assert_eq!(complete(&["groundup", "up", flag, ""]), steps, "after `groundup up {flag}`");
    }
    assert_eq!(complete(&["groundup", "up", "--from", "ro"]), ["routes"]);
    for tool in ["graph", "distribute"] {
        assert!(complete(&["groundup", ""]).contains(&tool.to_string()), "{tool} is not offered");
    }
}

#[test]
fn every_step_gets_completions_of_its_own_flags() {
    assert!(complete(&["groundup-certs", "--re"]).contains(&"--renew".to_string()));
    assert!(complete(&["groundup-nlb", "--"]).contains(&"--plan".to_string()));
    assert!(complete(&["groundup-down", "--"]).contains(&"--yes".to_string()));
    assert!(complete(&["groundup-graph", "--"]).contains(&"--format".to_string()));
    assert!(complete(&["groundup-distribute", "--"]).contains(&"--user".to_string()));
}

#[test]
fn zsh_and_fish_scripts_name_the_runner_and_the_steps() {
    for (shell, marker) in [("zsh", "#compdef groundup"), ("fish", "complete -c groundup")] {
        let output = Command::new(bin("groundup")).args(["completions", shell]).output().unwrap();
        assert_success(&output, shell);
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        assert!(script.contains("groundup-certs"), "{shell}: the steps are missing");
    }
}

#[test]
fn man_pages_for_the_runner_its_commands_and_every_step() {
    let output = Command::new(bin("groundup")).arg("man").output().unwrap();
    assert_success(&output, "groundup man");
    assert!(String::from_utf8_lossy(&output.stdout).contains(".TH groundup 1"));

    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(bin("groundup")).args(["man", "--dir"]).arg(dir.path()).output().unwrap();
    assert_success(&output, "groundup man --dir");
    for page in [
        "groundup",
        "groundup-up",
        "groundup-down",
        "groundup-graph",
        "groundup-distribute",
        "groundup-vpc",
        "groundup-certs",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("{page}.1"))).unwrap_or_default();
        assert!(text.contains(&format!(".TH {page} 1")), "{page}.1 is missing or not a man page");
    }
    let certs = std::fs::read_to_string(dir.path().join("groundup-certs.1")).unwrap();
    assert!(certs.contains("renew"), "the step's own flags are not in its page");
    let graph = std::fs::read_to_string(dir.path().join("groundup-graph.1")).unwrap();
    assert!(graph.contains("mermaid"), "the tool's own flags are not in its page");
}

/// The README says `groundup man | man -l -`: the page renders with the real man, and
/// `down --help` says everything `--purge` removes.
#[test]
fn the_man_page_renders_with_man_and_down_help_names_what_purge_removes() {
    let page = Command::new("sh")
        .arg("-c")
        .arg(format!("{} man | MANWIDTH=100 man -l - 2>&1", bin("groundup").display()))
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert_success(&page, "groundup man | man -l -");
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(text.contains("groundup") && text.contains("SUBCOMMANDS") && !text.contains(".TH"), "{text}");

    let help = Command::new(bin("groundup")).args(["down", "--help"]).output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for dir in ["ssh/", "pki/", "kubeconfig/", "nodes/"] {
        assert!(text.contains(dir), "down --help does not say --purge removes {dir}:\n{text}");
    }
}
