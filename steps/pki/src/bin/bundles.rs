//! Node bundles: `nodes/<hostname>/` mirrors what each node needs on its filesystem (see
//! `groundup_pki::bundle`), with its modes, and `nodes/<hostname>.tar.gz` holds the same for
//! `scp` by hand. Files are rewritten only when their source changed.

use std::path::Path;
use std::process::ExitCode;

use groundup_contracts::context::need;
use groundup_contracts::pki::{BundleRecord, BundlesSection};
use groundup_contracts::Section;
use groundup_pki::bundle::contents;
use groundup_pki::names;
use groundup_runtime::files::ClusterDir;
use groundup_runtime::harness::{run_step, NoArgs, StepInfo};
use groundup_runtime::plan::PlanLog;
use groundup_runtime::StepError;

const KIND: &str = "node bundle";

fn main() -> ExitCode {
    let info = StepInfo { name: "bundles", about: "Lay out the files each node needs, as on its filesystem" };
    run_step(info, |mut context, NoArgs {}| {
        let compute = need(&context.compute, Section::Compute)?.clone();
        let dir = Path::new(&context.params.nodes_dir).to_path_buf();
        let files = match context.planning() {
            true => None,
            false => Some(ClusterDir::open(&dir, &context.cluster.name).map_err(StepError::new)?),
        };
        let log = PlanLog::new("bundles");
        let mut records = Vec::new();
        for node in &compute.nodes {
            names::plain(&node.hostname).map_err(|e| StepError::new(format!("a node's hostname: {e}")))?;
            let mut changed = Vec::new();
            let wanted = contents(&context, node);
            for file in &wanted {
                let relative = format!("{}/{}", node.hostname, file.target);
                let source = std::fs::read(&file.source);
                let current = std::fs::read(dir.join(&relative)).ok();
                // A source that is missing is no match even for a missing copy: a plan shows
                // the file coming (an earlier step would write it), a run says what to run.
                if source.as_ref().is_ok_and(|bytes| current.as_ref() == Some(bytes)) {
                    continue;
                }
                changed.push(file.target.clone());
                if let Some(files) = &files {
                    let bytes = source.map_err(|e| {
                        StepError::new(format!("cannot read {}: {e}", file.source.display()))
                            .with_hint("run the ca, certs, kubeconfig and encryption steps first")
                    })?;
                    files.write(&relative, &bytes, file.mode).map_err(StepError::new)?;
                }
            }
            let archive = format!("{}.tar.gz", node.hostname);
            let archive_missing = !dir.join(&archive).exists();
            if let Some(files) = &files {
                if !changed.is_empty() || archive_missing {
                    files.write(&archive, &tarball(&dir.join(&node.hostname))?, 0o600).map_err(StepError::new)?;
                    tracing::info!("bundles: {} ({} file(s) updated)", dir.join(&archive).display(), changed.len());
                }
            } else if archive_missing {
                log.missing(KIND, &node.hostname);
            } else {
                let recorded =
                    context.bundles.as_ref().is_some_and(|b| b.nodes.iter().any(|n| n.hostname == node.hostname));
                log.found(KIND, &node.hostname, &dir.join(&node.hostname).display().to_string(), recorded);
                for target in &changed {
                    log.change(&node.hostname, &format!("~ /{target}"));
                }
            }
            records.push(BundleRecord {
                hostname: node.hostname.clone(),
                dir: dir.join(&node.hostname).display().to_string(),
                archive: dir.join(&archive).display().to_string(),
                files: wanted.len(),
            });
        }
        if context.planning() {
            context.add_plan(log.take());
        } else {
            context.bundles = Some(BundlesSection { nodes: records });
        }
        Ok(context)
    })
}

/// The bundle as a gzipped tar of paths relative to `/`, as `tar` makes it.
fn tarball(root: &Path) -> Result<Vec<u8>, StepError> {
    let output = std::process::Command::new("tar")
        .args(["-czf", "-", "--owner=0", "--group=0", "-C"])
        .arg(root)
        .arg(".")
        .output()
        .map_err(|e| StepError::new(format!("cannot run tar: {e}")))?;
    if !output.status.success() {
        return Err(StepError::new(format!("tar failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    Ok(output.stdout)
}
