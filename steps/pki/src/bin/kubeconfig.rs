//! Course part "Generating Kubernetes Configuration Files": the kubeconfigs of the admin, the
//! controller manager, the scheduler, kube-proxy and each worker's kubelet, certificates
//! embedded, 0600 in the cluster's kubeconfig directory. A file is rewritten only when its
//! content should change, so a hand edit shows in a plan and a run restores it. One that is no
//! longer wanted (a node scaled away, kubeadm's layout left) goes, listed in the plan: it is a
//! copy of credentials whose key `certs` keeps (retired to the PKI's `retired/`, never deleted).

use std::path::Path;
use std::process::ExitCode;

use groundup_contracts::context::need;
use groundup_contracts::pki::{KubeconfigRecord, KubeconfigSection};
use groundup_contracts::Section;
use groundup_pki::kubeconfig::{kubeconfigs, render};
use groundup_pki::spec::Authority;
use groundup_pki::store::Store;
use groundup_runtime::files::{self, ClusterDir};
use groundup_runtime::harness::{run_step, NoArgs, StepInfo};
use groundup_runtime::plan::Gate;
use groundup_runtime::StepError;

const KIND: &str = "kubeconfig";

fn main() -> ExitCode {
    let info = StepInfo { name: "kubeconfig", about: "Write (or keep) the kubeconfigs, certificates embedded" };
    run_step(info, |mut context, NoArgs {}| {
        let compute = need(&context.compute, Section::Compute)?;
        let nlb = need(&context.nlb, Section::Nlb)?;
        let specs = kubeconfigs(&context, compute, &nlb.dns_name)?;
        let store = Store::at(&context.params.pki.dir);
        let dir = Path::new(&context.params.kubeconfig_dir);
        let recorded = context.kubeconfig.as_ref().map(|k| k.files.clone()).unwrap_or_default();
        let gate = Gate::new("kubeconfig", context.planning());
        let files = match gate.planning() {
            true => None,
            false => Some(ClusterDir::open(dir, &context.cluster.name).map_err(StepError::new)?),
        };
        let ca = read(&store.cert_path(Authority::Kubernetes.file()));
        let mut records = Vec::new();
        for spec in &specs {
            let client =
                [store.cert_path(&spec.certificate), store.key_path(&spec.certificate)].map(|path| read(&path));
            let wanted = match (&ca, client) {
                (Ok(ca), [Ok(cert), Ok(key)]) => Some(render(spec, &context.cluster.name, ca, &cert, &key)),
                // A plan runs before the certificates exist: the kubeconfig would follow them.
                _ if gate.planning() => None,
                (Err(e), _) => return Err(StepError::new(e.to_string())),
                (Ok(_), [cert, key]) => return Err(cert.and(key).expect_err("one of them failed")),
            };
            let path = dir.join(&spec.file);
            let record = KubeconfigRecord {
                path: path.display().to_string(),
                user: spec.user.clone(),
                server: spec.server.clone(),
            };
            let write = || match (&files, &wanted) {
                (Some(files), Some(wanted)) => {
                    files.write(&spec.file, wanted.as_bytes(), 0o600).map(|_| ()).map_err(StepError::new)
                }
                _ => Ok(()),
            };
            match std::fs::read_to_string(&path).ok() {
                None => {
                    gate.create(KIND, &spec.file, write)?;
                }
                Some(current) => {
                    gate.found(KIND, &spec.file, &record.path, recorded.contains(&record));
                    if wanted.as_ref() != Some(&current) {
                        let why = "rewrite: its content differs from the certificates and the context";
                        gate.change(&spec.file, why, write)?;
                    }
                }
            }
            records.push(record);
        }
        for file in files::unwanted(dir, |file| specs.iter().any(|spec| spec.file == file)) {
            let path = dir.join(&file).display().to_string();
            let what = [format!("- {path}: no node or component uses it any more")];
            gate.delete(KIND, &file, &path, &what, || match &files {
                Some(files) => files.remove_emptied(&file).map_err(StepError::new),
                None => Ok(()),
            })?;
        }
        match gate.planning() {
            true => context.add_plan(gate.take()),
            false => context.kubeconfig = Some(KubeconfigSection { files: records }),
        }
        Ok(context)
    })
}

/// A PEM file the certs step wrote; without it there is nothing to embed.
fn read(path: &Path) -> Result<Vec<u8>, StepError> {
    std::fs::read(path).map_err(|e| {
        StepError::new(format!("cannot read {}: {e}", path.display()))
            .with_hint("run groundup-ca and groundup-certs first")
    })
}
