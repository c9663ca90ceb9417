//! Node bundles: `nodes/<hostname>/` mirrors what each node needs on its filesystem (see
//! `groundup_pki::bundle`), with its modes, and `nodes/<hostname>.tar.gz` holds the same for
//! `scp` by hand. Both hold exactly the bundle's list: a file it no longer lists (a role
//! changed, a certificate retired, a layout switched) goes, and so does the bundle of a node
//! that is gone. Files are rewritten only when their source changed.

use std::path::Path;
use std::process::ExitCode;

use flate2::write::GzEncoder;
use flate2::Compression;
use groundup_contracts::context::need;
use groundup_contracts::infra::Node;
use groundup_contracts::pki::{BundleRecord, BundlesSection};
use groundup_contracts::{Context, Section};
use groundup_pki::bundle::{contents, directories, BundleFile, DIR_MODE};
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
        let hostnames: Vec<&str> = compute.nodes.iter().map(|n| n.hostname.as_str()).collect();
        bundles.remove_gone(&hostnames)?;
        match gate.planning() {
            true => context.add_plan(gate.take_in_order(hostnames)),
            false => context.bundles = Some(BundlesSection { nodes: records }),
        }
        Ok(context)
    })
}

/// A file of the bundle and its source's bytes, read once for the compare, the copy and the
/// archive.
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
    /// changed is copied again, each file the bundle no longer lists is removed, and the
    /// archive is made again if it is not what the list gives.
    fn converge(&self, node: &Node) -> Result<BundleRecord, StepError> {
        let host = &node.hostname;
        let wanted = contents(self.context, node);
        let sourced: Vec<Sourced> = wanted.iter().map(|file| (file, std::fs::read(&file.source))).collect();
        let changed: Vec<&Sourced> = sourced.iter().filter(|c| self.differs(node, c)).collect();
        let prefix = format!("{host}/");
        let listed = |file: &str| wanted.iter().any(|w| file.strip_prefix(&prefix) == Some(w.target.as_str()));
        let stale = files::unwanted(self.dir, |file| !file.starts_with(&prefix) || listed(file));
        let archive = self.dir.join(format!("{host}.tar.gz"));
        let root = self.dir.join(host);
        if archive.exists() {
            let recorded = self.context.bundles.as_ref().is_some_and(|b| b.nodes.iter().any(|n| &n.hostname == host));
            self.gate.found(KIND, host, &root.display().to_string(), recorded);
            for file in &changed {
                self.gate.change(host, &format!("~ /{}", file.0.target), || self.copy(node, file))?;
            }
            for file in &stale {
                let what = format!("- /{}: no longer in the bundle", &file[prefix.len()..]);
                self.gate.change(host, &what, || self.remove(file))?;
            }
            // A plan without every source has a change listed above already.
            if let Ok(made) = tarball(&root, &sourced) {
                if std::fs::read(&archive).ok().as_ref() != Some(&made) {
                    let what = format!("~ {}: made again from the bundle's list", archive.display());
                    self.gate.change(host, &what, || self.write_archive(node, &made))?;
                }
            }
        } else {
            self.gate.create(KIND, host, || {
                changed.iter().try_for_each(|file| self.copy(node, file))?;
                stale.iter().try_for_each(|file| self.remove(file))?;
                let made = tarball(&root, &sourced).map_err(StepError::new)?;
                self.write_archive(node, &made)
            })?;
        }
        Ok(BundleRecord {
            hostname: host.clone(),
            dir: root.display().to_string(),
            archive: archive.display().to_string(),
            files: wanted.len(),
        })
    }

    /// The bundles of nodes that are gone: every file groundup wrote for them goes, each
    /// listed in the plan. They are copies: a node's key itself is retired to the PKI's
    /// `retired/` by `certs`, never deleted.
    fn remove_gone(&self, hostnames: &[&str]) -> Result<(), StepError> {
        for (host, files) in files::unwanted_by(self.dir, bundle_host, hostnames) {
            let what: Vec<String> = files.iter().map(|file| format!("- {}", self.dir.join(file).display())).collect();
            let id = self.dir.join(&host).display().to_string();
            self.gate.delete(KIND, &host, &id, &what, || files.iter().try_for_each(|file| self.remove(file)))?;
        }
        Ok(())
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

    fn remove(&self, relative: &str) -> Result<(), StepError> {
        let Some(files) = self.files else { return Ok(()) };
        files.remove_emptied(relative).map_err(StepError::new)
    }

    fn write_archive(&self, node: &Node, made: &[u8]) -> Result<(), StepError> {
        let Some(files) = self.files else { return Ok(()) };
        files.write(&format!("{}.tar.gz", node.hostname), made, 0o600).map_err(StepError::new)?;
        Ok(())
    }
}

/// The node whose bundle holds `file` (relative to the bundles' directory): `<host>/...` or
/// `<host>.tar.gz`.
fn bundle_host(file: &str) -> Option<&str> {
    file.split_once('/').map(|(host, _)| host).or_else(|| file.strip_suffix(".tar.gz"))
}

/// The bundle as a gzipped tar of paths relative to `/` (`etc/...`), owned by root: exactly
/// the bundle's files, with their modes, and the directories groundup makes on the node (see
/// `groundup_pki::bundle::ROOTS`), never one the node's OS owns, so that `tar xzf <bundle> -C /`
/// changes no system directory. Built from the list, never from a walk of `root`: a file left
/// there by hand is not shipped. Times are the copies' in `root`, so an unchanged bundle makes
/// the same bytes.
fn tarball(root: &Path, sourced: &[Sourced]) -> Result<Vec<u8>, String> {
    let modified = |target: &str| {
        let metadata = std::fs::symlink_metadata(root.join(target)).ok();
        metadata.and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    };
    let newest = sourced.iter().filter_map(|(file, _)| modified(&file.target)).max().unwrap_or_default();
    let mut archive = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let header = |kind: tar::EntryType, mode: u32, size: usize, time: std::time::Duration| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size as u64);
        header.set_mtime(time.as_secs());
        header.set_uid(0);
        header.set_gid(0);
        header
    };
    let fail = |e: std::io::Error| format!("cannot archive {}: {e}", root.display());
    for dir in directories(sourced.iter().map(|(file, _)| *file)) {
        let mut header = header(tar::EntryType::Directory, DIR_MODE, 0, newest);
        // With the slash GNU tar gives a directory's name.
        archive.append_data(&mut header, format!("{dir}/"), std::io::empty()).map_err(fail)?;
    }
    for (file, source) in sourced {
        let bytes = source.as_ref().map_err(|e| format!("cannot read {}: {e}", file.source.display()))?;
        let time = modified(&file.target).unwrap_or(newest);
        let mut header = header(tar::EntryType::Regular, file.mode, bytes.len(), time);
        archive.append_data(&mut header, &file.target, bytes.as_slice()).map_err(fail)?;
    }
    archive.into_inner().and_then(GzEncoder::finish).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries of an archive: (path, mode, uid, is a directory).
    fn entries(archive: &[u8]) -> Vec<(String, u32, u64, bool)> {
        let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        let entries = entries.entries().unwrap().map(|e| e.unwrap());
        entries
            .map(|e| {
                let header = e.header();
                let directory = header.entry_type().is_dir();
                (e.path().unwrap().display().to_string(), header.mode().unwrap(), header.uid().unwrap(), directory)
            })
            .collect()
    }

    #[test]
    fn the_archive_holds_the_list_and_its_own_directories_never_the_oss_or_what_else_is_there() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/kubelet")).unwrap();
        std::fs::write(root.path().join("var/lib/kubelet/key.pem"), "key").unwrap();
        std::fs::write(root.path().join("var/lib/kubelet/.key.pem.123.0.partial"), "k").unwrap();
        std::fs::write(root.path().join("var/lib/kubelet/stale-key.pem"), "an old key").unwrap();
        let file = BundleFile { source: "pki/w-key.pem".into(), target: "var/lib/kubelet/key.pem".into(), mode: 0o600 };
        let archive = tarball(root.path(), &[(&file, Ok(b"key".to_vec()))]).unwrap();
        assert_eq!(
            entries(&archive),
            [
                ("var/lib/kubelet/".to_string(), DIR_MODE, 0, true),
                ("var/lib/kubelet/key.pem".to_string(), 0o600, 0, false)
            ]
        );
        assert_eq!(
            tarball(root.path(), &[(&file, Ok(b"key".to_vec()))]).unwrap(),
            archive,
            "the same list, other bytes"
        );
        let missing = tarball(root.path(), &[(&file, Err(std::io::ErrorKind::NotFound.into()))]).unwrap_err();
        assert!(missing.contains("pki/w-key.pem"), "{missing}");
    }
}
