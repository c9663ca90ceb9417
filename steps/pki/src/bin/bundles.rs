//! Node bundles: `nodes/<hostname>/` mirrors what each node needs on its filesystem (see
//! `groundup_pki::bundle`), with its modes, and `nodes/<hostname>.tar.gz` holds the same for
//! `scp` by hand. Files are rewritten only when their source changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flate2::write::GzEncoder;
use flate2::Compression;
use groundup_contracts::context::need;
use groundup_contracts::infra::Node;
use groundup_contracts::pki::{BundleRecord, BundlesSection};
use groundup_contracts::{Context, Section};
use groundup_pki::bundle::{contents, BundleFile};
use groundup_runtime::files::{self, ClusterDir};
use groundup_runtime::harness::{run_step, NoArgs, StepInfo};
use groundup_runtime::plan::Gate;
use groundup_runtime::StepError;
use rayon::prelude::*;

const KIND: &str = "node bundle";

fn main() -> ExitCode {
    let info = StepInfo { name: "bundles", about: "Lay out the files each node needs, as on its filesystem" };
    run_step(info, |mut context, NoArgs {}| {
        let compute = need(&context.compute, Section::Compute)?.clone();
        compute.check_names(&context.cluster.name)?;
        let gate = Gate::new("bundles", context.planning());
        let dir = Path::new(&context.params.nodes_dir).to_path_buf();
        let files = match gate.planning() {
            true => None,
            false => Some(ClusterDir::open(&dir, &context.cluster.name).map_err(StepError::new)?),
        };
        let bundles = Bundles { context: &context, gate: &gate, dir: &dir, files: files.as_ref() };
        let records = compute.nodes.par_iter().map(|node| bundles.converge(node)).collect::<Result<Vec<_>, _>>()?;
        match gate.planning() {
            true => context.add_plan(gate.take_in_order(compute.nodes.iter().map(|n| n.hostname.as_str()))),
            false => context.bundles = Some(BundlesSection { nodes: records }),
        }
        Ok(context)
    })
}

/// A file of the bundle and its source's bytes, read once for the compare and the copy.
type Sourced<'a> = (&'a BundleFile, std::io::Result<Vec<u8>>);

struct Bundles<'a> {
    context: &'a Context,
    gate: &'a Gate,
    dir: &'a Path,
    /// `None` in a plan, which writes nothing.
    files: Option<&'a ClusterDir>,
}

impl Bundles<'_> {
    /// One node's bundle: a new one is made whole; in one that exists, each file whose source
    /// changed is copied again, and then the archive.
    fn converge(&self, node: &Node) -> Result<BundleRecord, StepError> {
        let wanted = contents(self.context, node);
        let changed: Vec<Sourced> =
            wanted.iter().map(|file| (file, std::fs::read(&file.source))).filter(|c| self.differs(node, c)).collect();
        let archive = self.dir.join(format!("{}.tar.gz", node.hostname));
        let root = self.dir.join(&node.hostname);
        if archive.exists() {
            let recorded =
                self.context.bundles.as_ref().is_some_and(|b| b.nodes.iter().any(|n| n.hostname == node.hostname));
            self.gate.found(KIND, &node.hostname, &root.display().to_string(), recorded);
            let mut copied = false;
            for file in &changed {
                copied |= self
                    .gate
                    .change(&node.hostname, &format!("~ /{}", file.0.target), || self.copy(node, file))?
                    .is_some();
            }
            if copied {
                self.archive(node)?;
            }
        } else {
            self.gate.create(KIND, &node.hostname, || {
                changed.iter().try_for_each(|file| self.copy(node, file))?;
                self.archive(node)
            })?;
        }
        Ok(BundleRecord {
            hostname: node.hostname.clone(),
            dir: root.display().to_string(),
            archive: archive.display().to_string(),
            files: wanted.len(),
        })
    }

    /// A source that is missing is no match even for a missing copy: a plan shows the file
    /// coming (an earlier step would write it), a run says what to run.
    fn differs(&self, node: &Node, (file, source): &Sourced) -> bool {
        let current = std::fs::read(self.dir.join(&node.hostname).join(&file.target)).ok();
        source.as_ref().map_or(true, |bytes| current.as_ref() != Some(bytes))
    }

    fn copy(&self, node: &Node, (file, source): &Sourced) -> Result<(), StepError> {
        let Some(files) = self.files else { return Ok(()) };
        let bytes = source.as_ref().map_err(|e| {
            StepError::new(format!("cannot read {}: {e}", file.source.display()))
                .with_hint("run the ca, certs, kubeconfig and encryption steps first")
        })?;
        files.write(&format!("{}/{}", node.hostname, file.target), bytes, file.mode).map_err(StepError::new)?;
        Ok(())
    }

    /// The gate logs the bundle made or each file changed; the archive follows them.
    fn archive(&self, node: &Node) -> Result<(), StepError> {
        let Some(files) = self.files else { return Ok(()) };
        let archive = format!("{}.tar.gz", node.hostname);
        files.write(&archive, &tarball(&self.dir.join(&node.hostname))?, 0o600).map_err(StepError::new)?;
        Ok(())
    }
}

/// The bundle as a gzipped tar of paths relative to `/` (`etc/...`), with the tree's modes
/// and times, owned by root, as `tar -czf - --owner=0 --group=0 -C <root> .` makes it.
fn tarball(root: &Path) -> Result<Vec<u8>, StepError> {
    let fail = |e: std::io::Error| StepError::new(format!("cannot archive {}: {e}", root.display()));
    let mut archive = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for relative in tree(root, Path::new(".")).map_err(fail)? {
        let path = root.join(&relative);
        let metadata = std::fs::symlink_metadata(&path).map_err(fail)?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&metadata, tar::HeaderMode::Complete);
        header.set_uid(0);
        header.set_gid(0);
        if metadata.is_dir() {
            archive.append_data(&mut header, &relative, std::io::empty()).map_err(fail)?;
        } else if metadata.is_file() {
            archive.append_data(&mut header, &relative, std::fs::File::open(&path).map_err(fail)?).map_err(fail)?;
        } else {
            return Err(StepError::new(format!(
                "{} is not a file or a directory; only bundles' own files belong there",
                path.display()
            )));
        }
    }
    archive.into_inner().and_then(GzEncoder::finish).map_err(fail)
}

/// `relative` and everything below it in `root`, parents first, in name order; without the
/// temporary files a killed write left.
fn tree(root: &Path, relative: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = vec![relative.to_path_buf()];
    if std::fs::symlink_metadata(root.join(relative))?.is_dir() {
        let mut names: Vec<_> =
            std::fs::read_dir(root.join(relative))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.retain(|name| !files::is_partial(name));
        names.sort();
        for name in names {
            paths.extend(tree(root, &relative.join(name))?);
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_the_tree_without_what_a_killed_write_left() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib")).unwrap();
        std::fs::write(root.path().join("var/lib/ca.pem"), "ca").unwrap();
        std::fs::write(root.path().join("var/lib/.ca.pem.123.0.partial"), "c").unwrap();
        // As root (CI), the tree gets another owner, so that the archive's root ownership shows.
        // SAFETY: geteuid only reads this process's user id.
        let root_user = unsafe { libc::geteuid() } == 0;
        if root_user {
            std::os::unix::fs::chown(root.path().join("var/lib/ca.pem"), Some(1000), Some(1000)).unwrap();
        }
        let listed = tree(root.path(), Path::new(".")).unwrap();
        let listed: Vec<&str> = listed.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(listed, [".", "./var", "./var/lib", "./var/lib/ca.pem"]);

        let archive = tarball(root.path()).unwrap();
        let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
        let entries: Vec<(String, u64)> = entries
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.path().unwrap().display().to_string(), e.header().uid().unwrap()))
            .collect();
        assert!(!root_user || entries.iter().all(|(_, uid)| *uid == 0), "{entries:?}");
        assert!(entries.iter().any(|(path, _)| path == "var/lib/ca.pem"), "{entries:?}");
        assert!(!entries.iter().any(|(path, _)| path.ends_with(".partial")), "{entries:?}");
    }
}
