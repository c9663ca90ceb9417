//! What groundup says on stderr is for people: routine, planned work at info, a summary
//! where the details run to hundreds of lines, and a plan that lists what would change.

use groundup_contracts::plan::{Action, PlanSection};
use groundup_testkit::{assert_success, TestCluster};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `up --plan` listed every unchanged entry (52 of them); it lists what would change, `--all`
/// lists everything, and the JSON on stdout holds everything either way.
#[test]
fn a_plan_lists_what_would_change_and_everything_with_all() {
    let cluster = TestCluster::new("planlist");
    assert_success(&cluster.up(&[]), "up");
    let flags = ["up", "--plan", "--admin-cidr", "203.0.113.0/24"];
    let changes = cluster.groundup(&flags);
    assert_success(&changes, "up --plan");
    let plan: PlanSection = serde_json::from_slice(&changes.stdout).unwrap();
    let left = plan.resources.iter().filter(|r| !r.changes_anything()).count();
    assert!(left > 40 && plan.resources.iter().any(|r| r.action == Action::Leave), "{plan:?}");
    let leave_lines = |text: &str| text.lines().filter(|l| l.starts_with("  = leave")).count();
    assert_eq!(leave_lines(&stderr(&changes)), 0, "{}", stderr(&changes));
    assert!(stderr(&changes).lines().any(|l| l.contains("203.0.113.0/24")), "the change is not listed");

    let all = cluster.groundup(&[&flags[..], &["--all"]].concat());
    assert_success(&all, "up --plan --all");
    assert_eq!(leave_lines(&stderr(&all)), left, "{}", stderr(&all));
    assert_eq!(serde_json::from_slice::<PlanSection>(&all.stdout).unwrap(), plan);
}

/// Re-issued certificates, rewritten kubeconfigs and changed bundles after a scale are the
/// plan carried out, not warnings.
#[test]
fn routine_changes_are_not_warnings() {
    let cluster = TestCluster::new("routine");
    assert_success(&cluster.up(&[]), "up");
    let scaled = cluster.groundup(&["up", "--workers", "4"]);
    assert_success(&scaled, "up --workers 4");
    let text = stderr(&scaled);
    assert!(text.contains("certs:") || text.contains("bundles:"), "nothing logged the changes: {text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// `down --purge` printed a `removed` line per file, about 250; one line per directory now,
/// each file at debug.
#[test]
fn purge_sums_up_each_directory_and_lists_files_at_debug() {
    let cluster = TestCluster::new("purgesum");
    assert_success(&cluster.up(&[]), "up");
    let purged = cluster.groundup(&["down", "--yes", "--purge"]);
    assert_success(&purged, "down --yes --purge");
    let text = stderr(&purged);
    let summaries: Vec<&str> = text.lines().filter(|l| l.contains("--purge removed")).collect();
    assert_eq!(summaries.len(), 4, "one per directory (ssh, pki, kubeconfig, nodes): {text}");
    assert!(!text.lines().any(|l| l.starts_with("groundup: removed ")), "{text}");

    let detailed = TestCluster::new("purgedebug");
    assert_success(&detailed.up(&[]), "up");
    let output = detailed.command(&["down", "--yes", "--purge"]).env("GROUNDUP_LOG", "debug").output().unwrap();
    assert_success(&output, "down --yes --purge at debug");
    let files = stderr(&output).lines().filter(|l| l.contains("removed ") && l.contains("DEBUG")).count();
    assert!(files > 50, "the files are not listed at debug: {}", stderr(&output));
}
