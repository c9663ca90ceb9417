//! `groundup <command>` for a command the runner does not know runs `groundup-<command>` with
//! the arguments that follow, as cargo runs `cargo-<command>`: the shipped tools (`graph`,
//! `distribute`) and a third party's plugin alike.

use groundup_testkit::{assert_clean_failure, TestCluster};

#[test]
fn an_unknown_command_runs_the_plugin_of_its_name_with_the_rest_of_the_arguments() {
    let cluster = TestCluster::new("hello");
    cluster.plugin("hello", "printf '%s\\n' hello \"$@\"\necho 'hello: on stderr' >&2\nexit 7");
    let output = cluster.groundup_with_plugins(&["hello", "--flag", "two words", "-x"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n--flag\ntwo words\n-x\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "hello: on stderr\n");
    assert_eq!(output.status.code(), Some(7), "the plugin's exit code is the command's");
}

#[test]
fn a_command_with_no_program_or_a_name_that_is_not_plain_is_bad_input() {
    let cluster = TestCluster::new("noplugin");
    let ran = cluster.dir.path().join("ran");
    cluster.plugin("hello", &format!("touch {}", ran.display()));
    for (command, named) in [("nosuch", "groundup-nosuch"), ("../plugins/groundup-hello", "../plugins/groundup-hello")]
    {
        let output = cluster.groundup_with_plugins(&[command]);
        let stderr = assert_clean_failure(&output, command);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named) && stderr.contains("groundup --help"), "{stderr}");
    }
    assert!(!ran.exists(), "a path given as a command name was run");
}

#[test]
fn the_shipped_tools_are_listed_and_get_their_arguments_untouched() {
    let cluster = TestCluster::new("tools");
    let help = String::from_utf8(cluster.groundup(&["--help"]).stdout).unwrap();
    for tool in groundup_contracts::tools::TOOLS {
        assert!(help.contains(&format!("runs groundup-{}", tool.name)), "{} is not listed:\n{help}", tool.name);
    }
    let own_help = cluster.groundup(&["graph", "--help"]);
    let text = String::from_utf8_lossy(&own_help.stdout);
    assert!(text.contains("Usage: groundup-graph") && text.contains("--format"), "{text}");
    // The runner knows no `--connect-timeout`: the tool's own parser refused the value.
    let refused = cluster.groundup(&["distribute", "--connect-timeout", "soon"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'soon' for '--connect-timeout"), "{stderr}");
}
