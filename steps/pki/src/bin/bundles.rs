//! Node bundles: `nodes/<hostname>/` mirrors what each node needs on its filesystem (see
//! `groundup_pki::bundle`), with its modes, and `nodes/<hostname>.tar.gz` holds the same for
//! `scp` by hand. Both hold exactly the bundle's list: a file it no longer lists (a role
//! changed, a certificate retired, a layout switched) goes, and so does the bundle of a node
//! that is gone. Files are rewritten only when their source changed.

use std::process::ExitCode;

use flate2::write::GzEncoder;
use flate2::Compression;
use groundup_contracts::context::need;
use groundup_contracts::infra::Node;
use groundup_contracts::pki::{BundleRecord, BundlesSection};
use groundup_contracts::{Context, Section};
use groundup_pki::bundle::{contents, directories, BundleFile, DIR_MODE};
use groundup_pki::catalogue::check_names;
use groundup_pki::error::PkiError;
use groundup_pki::store::disk_writers;
use groundup_runtime::artifact::WritePolicy::Replace;
use groundup_runtime::artifact::{converge_file, Contents, Files, LocalDir, LocalFile};
use groundup_runtime::files;
use groundup_runtime::harness::{run_step, NoArgs, StepInfo};
use groundup_runtime::plan::Gate;
use groundup_runtime::StepError;
use rayon::prelude::*;

const KIND: &str = "node bundle";

fn main() -> ExitCode {
    let info = StepInfo { name: "bundles", about: "Lay out the files each node needs, as on its filesystem" };
    run_step(info, |mut context, NoArgs {}| {
        let compute = need(&context.compute, Section::Compute)?.clone();
        // A bundle copies the kubelet's certificate and key named after its host.
        check_names(&context)?;
        let gate = Gate::for_context("bundles", &context);
        let dir = LocalDir::open(&context.params.nodes_dir, &context.cluster.name, &gate)?;
        let bundles = Bundles { context: &context, gate: &gate, dir: &dir };
        let records = disk_writers(compute.nodes.len())?
            .install(|| compute.nodes.par_iter().map(|node| bundles.converge(node)).collect::<Result<Vec<_>, _>>())?;
        let hostnames: Vec<&str> = compute.nodes.iter().map(|n| n.hostname.as_str()).collect();
        bundles.remove_gone(&hostnames)?;
        gate.finish(&mut context, hostnames, |context| context.bundles = Some(BundlesSection { nodes: records }));
        Ok(context)
    })
}

struct Bundles<'a> {
    context: &'a Context,
    gate: &'a Gate,
    dir: &'a LocalDir,
}

impl Bundles<'_> {
    /// One node's bundle, an artifact of its files and, last, its archive: a new one is made
    /// whole; in one that exists, each file whose source changed is copied again and the
    /// archive is made again if it is not what the list gives. Then each file the bundle no
    /// longer lists is removed.
    fn converge(&self, node: &Node) -> Result<BundleRecord, StepError> {
        let host = &node.hostname;
        let wanted = contents(self.context, node);
        // A source that is missing is no match even for a missing copy: a plan shows the file
        // coming (an earlier step would write it), a run says what to run.
        let sourced: Vec<(&BundleFile, Result<Vec<u8>, String>)> = wanted
            .iter()
            .map(|file| {
                let read = file.source.read().map_err(|e| {
                    format!(
                        "cannot read {}: {e}; run the ca, certs, kubeconfig and encryption steps first",
                        file.source
                    )
                });
                (file, read)
            })
            .collect();
        let complete: Option<Vec<(&BundleFile, &[u8])>> =
            sourced.iter().map(|(file, source)| source.as_deref().ok().map(|bytes| (*file, bytes))).collect();
        let made = complete.map(|complete| tarball(&complete)).transpose()?;
        let archive = self.dir.path().join(format!("{host}.tar.gz"));
        let mut parts: Vec<LocalFile> = sourced
            .into_iter()
            .map(|(file, source)| {
                let wanted = source.map(|bytes| Contents { bytes, mode: file.mode });
                LocalFile::new(format!("{host}/{}", file.target), wanted, Replace).shown(format!("~ /{}", file.target))
            })
            .collect();
        // A plan without every source has a change listed for the missing one already.
        if let Some(made) = made {
            let what = format!("~ {}: made again from the bundle's list", archive.display());
            parts.push(
                LocalFile::new(format!("{host}.tar.gz"), Ok(Contents { bytes: made, mode: 0o600 }), Replace)
                    .shown(what),
            );
        }
        let recorded = self.context.bundles.as_ref().is_some_and(|b| b.nodes.iter().any(|n| &n.hostname == host));
        converge_file(self.gate, &Files::new(self.dir, KIND, host, recorded, parts))?;
        let prefix = format!("{host}/");
        let listed = |file: &str| wanted.iter().any(|w| file.strip_prefix(&prefix) == Some(w.target.as_str()));
        for file in files::unwanted(self.dir.path(), |file| !file.starts_with(&prefix) || listed(file)) {
            let what = format!("- /{}: no longer in the bundle", &file[prefix.len()..]);
            self.gate.change(host, &what, || self.remove(&file))?;
        }
        let copied = wanted.iter().filter_map(|file| file.source.path()).map(|path| path.display().to_string());
        Ok(BundleRecord {
            hostname: host.clone(),
            dir: self.dir.path().join(host).display().to_string(),
            archive: archive.display().to_string(),
            files: wanted.len(),
            sources: self.context.sources(copied),
        })
    }

    /// The bundles of nodes that are gone: every file groundup wrote for them goes, each
    /// listed in the plan. They are copies: a node's key itself is retired to the PKI's
    /// `retired/` by `certs`, never deleted.
    fn remove_gone(&self, hostnames: &[&str]) -> Result<(), StepError> {
        for (host, files) in files::unwanted_by(self.dir.path(), bundle_host, hostnames) {
            let what: Vec<String> =
                files.iter().map(|file| format!("- {}", self.dir.path().join(file).display())).collect();
            let id = self.dir.path().join(&host).display().to_string();
            self.gate.delete(KIND, &host, &id, &what, || files.iter().try_for_each(|file| self.remove(file)))?;
        }
        Ok(())
    }

    fn remove(&self, relative: &str) -> Result<(), StepError> {
        Ok(self.dir.writable()?.remove_emptied(relative)?)
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
/// changes no system directory. Built from the list, never from a walk of the bundle's
/// directory: a file left there by hand is not shipped. Times are the sources', so an
/// unchanged bundle makes the same bytes, whatever order its files are written in; a rendered
/// file has the newest of theirs.
fn tarball(sourced: &[(&BundleFile, &[u8])]) -> Result<Vec<u8>, PkiError> {
    let modified = |file: &BundleFile| {
        let metadata = file.source.path().and_then(|path| std::fs::symlink_metadata(path).ok());
        metadata.and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    };
    let newest = sourced.iter().filter_map(|(file, _)| modified(file)).max().unwrap_or_default();
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
    let fail = |e: std::io::Error| PkiError::File(format!("cannot make a node's archive: {e}"));
    for dir in directories(sourced.iter().map(|(file, _)| *file)) {
        let mut header = header(tar::EntryType::Directory, DIR_MODE, 0, newest);
        // With the slash GNU tar gives a directory's name.
        archive.append_data(&mut header, format!("{dir}/"), std::io::empty()).map_err(fail)?;
    }
    for (file, bytes) in sourced {
        let time = modified(file).unwrap_or(newest);
        let mut header = header(tar::EntryType::Regular, file.mode, bytes.len(), time);
        archive.append_data(&mut header, &file.target, *bytes).map_err(fail)?;
    }
    archive.into_inner().and_then(GzEncoder::finish).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_pki::bundle::Source;

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
    fn the_archive_holds_the_list_and_its_own_directories_never_the_oss() {
        let file = BundleFile {
            source: Source::File("pki/w-key.pem".into()),
            target: "var/lib/kubelet/key.pem".into(),
            mode: 0o600,
        };
        let archive = tarball(&[(&file, b"key")]).unwrap();
        assert_eq!(
            entries(&archive),
            [
                ("var/lib/kubelet/".to_string(), DIR_MODE, 0, true),
                ("var/lib/kubelet/key.pem".to_string(), 0o600, 0, false)
            ]
        );
        assert_eq!(tarball(&[(&file, b"key")]).unwrap(), archive, "the same list, other bytes");
    }
}
