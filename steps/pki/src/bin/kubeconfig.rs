//! Course part "Generating Kubernetes Configuration Files": the kubeconfigs of the admin, the
//! controller manager, the scheduler, kube-proxy and each worker's kubelet, certificates
//! embedded, 0600 in the cluster's kubeconfig directory. A file is rewritten only when its
//! content should change, so a hand edit shows in a plan and a run restores it. One that is no
//! longer wanted (a node scaled away, kubeadm's layout left) goes, listed in the plan: it is a
//! copy of credentials whose key `certs` keeps (retired to the PKI's `retired/`, never deleted).

use std::path::Path;
use std::process::ExitCode;

use groundup_contracts::pki::{KubeconfigRecord, KubeconfigSection};
use groundup_pki::error::PkiError;
use groundup_pki::kubeconfig::{kubeconfigs, render};
use groundup_pki::spec::Authority;
use groundup_pki::store::{file_fingerprint, Store};
use groundup_runtime::artifact::{converge_file, Contents, Files, LocalDir, LocalFile, WritePolicy};
use groundup_runtime::files;
use groundup_runtime::harness::{run_step, NoArgs, StepInfo};
use groundup_runtime::plan::Gate;
use groundup_runtime::StepError;

const KIND: &str = "kubeconfig";

fn main() -> ExitCode {
    let info = StepInfo { name: "kubeconfig", about: "Write (or keep) the kubeconfigs, certificates embedded" };
    run_step(info, |mut context, NoArgs {}| {
        let specs = kubeconfigs(&context)?;
        let store = Store::at(&context.params.pki.dir);
        let recorded = context.kubeconfig.as_ref().map(|k| k.files.clone()).unwrap_or_default();
        let gate = Gate::for_context("kubeconfig", &context);
        let dir = LocalDir::open(&context.params.kubeconfig_dir, &context.cluster.name, &gate)?;
        let ca = read(&store.cert_path(Authority::Kubernetes.file()));
        let mut records = Vec::new();
        for spec in &specs {
            let [cert, key] =
                [store.cert_path(&spec.certificate), store.key_path(&spec.certificate)].map(|path| read(&path));
            let rendered = (ca.as_deref().map_err(PkiError::clone))
                .and_then(|ca| Ok(render(spec, &context.cluster.name, ca, &cert?, &key?)));
            let wanted = match rendered {
                Ok(text) => Ok(Contents { bytes: text.into_bytes(), mode: 0o600 }),
                // A plan runs before the certificates exist: the kubeconfig would follow them.
                Err(e) => {
                    let hint = "run groundup-ca and groundup-certs first";
                    gate.source_missing(|| StepError::from(e.clone()).with_hint(hint))?;
                    Err(e.to_string())
                }
            };
            let path = dir.path().join(&spec.file);
            let embedded = [store.cert_path(Authority::Kubernetes.file()), store.cert_path(&spec.certificate)];
            let record = KubeconfigRecord {
                path: path.display().to_string(),
                user: spec.user.clone(),
                server: spec.server.clone(),
                sha256: wanted.as_ref().map(|w| file_fingerprint(&w.bytes)).unwrap_or_default(),
                sources: context.sources(embedded.iter().map(|path| path.display().to_string())),
            };
            let known =
                recorded.iter().any(|r| (&r.path, &r.user, &r.server) == (&record.path, &record.user, &record.server));
            let file = LocalFile::new(spec.file.as_str(), wanted, WritePolicy::Replace)
                .shown("rewrite from the certificates and the context");
            converge_file(&gate, &Files::new(&dir, KIND, &spec.file, known, vec![file]))?;
            records.push(record);
        }
        for file in files::unwanted(dir.path(), |file| specs.iter().any(|spec| spec.file == file)) {
            let path = dir.path().join(&file).display().to_string();
            let what = [format!("- {path}: no node or component uses it any more")];
            gate.delete(KIND, &file, &path, &what, || Ok::<_, StepError>(dir.writable()?.remove_emptied(&file)?))?;
        }
        gate.finish(&mut context, [], |context| context.kubeconfig = Some(KubeconfigSection { files: records }));
        Ok(context)
    })
}

/// A PEM file the certs step wrote; without it there is nothing to embed.
fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|e| PkiError::File(format!("cannot read {}: {e}", path.display())))
}
