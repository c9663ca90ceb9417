//! Kubeconfigs with the certificates embedded (`certificate-authority-data`,
//! `client-certificate-data`, `client-key-data`), as the course's `kubectl config` commands
//! make them with `--embed-certs=true`: one cluster named after the cluster, one user, and
//! the context `default`.

use groundup_contracts::context::need;
use groundup_contracts::pki::Layout;
use groundup_contracts::{Context, ContextError, Section};
use openssl::base64;
use serde::{Deserialize, Serialize};

use crate::error::PkiError;
use crate::kubeadm::{self, Server};

/// One kubeconfig to have: its file, the certificate (cfssl base name) it authenticates with,
/// its user name and the server it talks to.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeconfigSpec {
    pub file: String,
    pub certificate: String,
    pub user: String,
    pub server: String,
}

/// The course's kubeconfigs: admin and kube-proxy and each node's kubelet talk to the load
/// balancer; the controller manager and the scheduler run on the masters and talk to the API
/// server there. With kubeadm's layout also each master's `/etc/kubernetes/*.conf`. A kubelet's
/// kubeconfig embeds the certificate named after its host, so the names are proven first.
pub fn kubeconfigs(context: &Context) -> Result<Vec<KubeconfigSpec>, ContextError> {
    let compute = need(&context.compute, Section::Compute)?;
    let nlb = need(&context.nlb, Section::Nlb)?;
    crate::catalogue::check_names(context)?;
    let port = context.params.ports.api;
    let public = format!("https://{}:{port}", nlb.dns_name);
    let local = format!("https://127.0.0.1:{port}");
    let spec = |file: &str, certificate: &str, user: &str, server: &str| KubeconfigSpec {
        file: format!("{file}.kubeconfig"),
        certificate: certificate.into(),
        user: user.into(),
        server: server.into(),
    };
    let mut specs = vec![
        spec("admin", "admin", "admin", &public),
        spec("kube-controller-manager", "kube-controller-manager", "system:kube-controller-manager", &local),
        spec("kube-scheduler", "kube-scheduler", "system:kube-scheduler", &local),
        spec("kube-proxy", "kube-proxy", "system:kube-proxy", &public),
    ];
    // Every node's kubelet, the masters' too.
    for (i, node) in compute.nodes.iter().enumerate() {
        let file = format!("{}.kubeconfig", node.hostname);
        if specs.iter().any(|s| s.file == file) {
            let message = format!("{:?} would replace the kubeconfig `{file}` of another user", node.hostname);
            return Err(ContextError::field(format!("compute.nodes[{i}].hostname"), message));
        }
        let user = format!("system:node:{}", node.hostname);
        specs.push(spec(&node.hostname, &node.hostname, &user, &public));
    }
    if context.params.pki.layout == Layout::Kubeadm {
        for master in compute.masters() {
            let own = format!("https://{}:{port}", master.private_ip);
            let fill = |text: &str| text.replace("{host}", &master.hostname);
            specs.extend(kubeadm::KUBECONFIGS.iter().map(|(file, certificate, user, server)| KubeconfigSpec {
                file: kubeadm::kubeconfig_path(&master.hostname, file),
                certificate: fill(certificate),
                user: fill(user),
                server: match server {
                    Server::Endpoint => public.clone(),
                    Server::Local => own.clone(),
                },
            }));
        }
    }
    Ok(specs)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    api_version: String,
    kind: String,
    clusters: Vec<Named<ClusterEntry>>,
    users: Vec<Named<UserEntry>>,
    contexts: Vec<Named<ContextEntry>>,
    current_context: String,
    preferences: Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(flatten)]
    entry: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClusterEntry {
    cluster: ClusterFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterFields {
    certificate_authority_data: String,
    server: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserEntry {
    user: UserFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UserFields {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ContextEntry {
    context: ContextFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ContextFields {
    cluster: String,
    user: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Empty {}

/// The file's content: PEM files embedded as base64, as kubectl's `--embed-certs` does.
pub fn render(spec: &KubeconfigSpec, cluster: &str, ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> String {
    let config = Kubeconfig {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![Named {
            name: cluster.into(),
            entry: ClusterEntry {
                cluster: ClusterFields {
                    certificate_authority_data: base64::encode_block(ca_pem),
                    server: spec.server.clone(),
                },
            },
        }],
        users: vec![Named {
            name: spec.user.clone(),
            entry: UserEntry {
                user: UserFields {
                    client_certificate_data: base64::encode_block(cert_pem),
                    client_key_data: base64::encode_block(key_pem),
                },
            },
        }],
        contexts: vec![Named {
            name: "default".into(),
            entry: ContextEntry { context: ContextFields { cluster: cluster.into(), user: spec.user.clone() } },
        }],
        current_context: "default".into(),
        preferences: Empty {},
    };
    serde_yaml_ng::to_string(&config).expect("a kubeconfig always serializes")
}

/// The PEM files a kubeconfig embeds.
pub struct Embedded {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// What a kubeconfig file embeds; an error says what is wrong with the file.
pub fn embedded(text: &str) -> Result<Embedded, PkiError> {
    let config: Kubeconfig =
        serde_yaml_ng::from_str(text).map_err(|e| PkiError::File(format!("not a kubeconfig: {e}")))?;
    let decode = |what: &str, data: &str| {
        base64::decode_block(data).map_err(|_| PkiError::File(format!("its {what} is not base64")))
    };
    let cluster = &config.clusters.first().ok_or_else(|| PkiError::File("it has no cluster".into()))?.entry.cluster;
    let user = &config.users.first().ok_or_else(|| PkiError::File("it has no user".into()))?.entry.user;
    Ok(Embedded {
        ca: decode("certificate-authority-data", &cluster.certificate_authority_data)?,
        cert: decode("client-certificate-data", &user.client_certificate_data)?,
        key: decode("client-key-data", &user.client_key_data)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundup_contracts::infra::Role;

    fn infra() -> Context {
        Context::from_json(include_str!("../../../contracts/examples/03-infra.json")).unwrap()
    }

    #[test]
    fn the_course_kubeconfigs_and_one_per_node() {
        let context = infra();
        let compute = context.compute.as_ref().unwrap();
        let specs = kubeconfigs(&context).unwrap();
        assert_eq!(specs.len(), 4 + compute.nodes.len());
        let admin = &specs[0];
        let public = format!("https://{}:6443", context.nlb.as_ref().unwrap().dns_name);
        assert_eq!((admin.file.as_str(), admin.server.as_str()), ("admin.kubeconfig", public.as_str()));
        assert_eq!(specs[1].server, "https://127.0.0.1:6443", "the controller manager talks to its own master");
        let worker = compute.workers().next().unwrap();
        let kubelet = specs.iter().find(|s| s.file == format!("{}.kubeconfig", worker.hostname)).unwrap();
        assert_eq!(kubelet.file, format!("{}.kubeconfig", worker.hostname));
        assert_eq!(kubelet.user, format!("system:node:{}", worker.hostname));
        assert_eq!(kubelet.certificate, worker.hostname);
    }

    #[test]
    fn the_kubeadm_layout_adds_each_masters_conf_files_with_kubeadms_servers() {
        let mut context = infra();
        context.params.pki.layout = Layout::Kubeadm;
        let compute = context.compute.as_ref().unwrap();
        let specs = kubeconfigs(&context).unwrap();
        let public = format!("https://{}:6443", context.nlb.as_ref().unwrap().dns_name);
        assert_eq!(specs.len(), 4 + compute.nodes.len() + 5 * compute.masters().count());
        let master = compute.masters().nth(1).unwrap();
        let conf = |file: &str| {
            let path = format!("kubeadm/{}/{file}", master.hostname);
            specs.iter().find(|s| s.file == path).unwrap_or_else(|| panic!("no {path}"))
        };
        assert_eq!(conf("admin.conf").user, "kubernetes-admin");
        assert_eq!(conf("super-admin.conf").server, public);
        assert_eq!(conf("scheduler.conf").server, format!("https://{}:6443", master.private_ip));
        assert_eq!(conf("controller-manager.conf").certificate, "kube-controller-manager");
        let kubelet = conf("kubelet.conf");
        assert_eq!(
            (kubelet.certificate.as_str(), kubelet.server.as_str()),
            (master.hostname.as_str(), public.as_str())
        );
        assert_eq!(kubelet.user, format!("system:node:{}", master.hostname));
    }

    /// A kubelet's kubeconfig embeds the certificate and key named after its host: a hostname
    /// that names another user's kubeconfig, or another certificate's or a CA's files, is refused
    /// before anything is read, so no node's kubeconfig ever holds another's key.
    #[test]
    fn a_name_that_is_not_the_nodes_or_a_hostname_that_is_not_plain_or_taken_is_refused() {
        let context = infra();
        let worker = context.compute.as_ref().unwrap().nodes.iter().position(|n| n.role == Role::Worker).unwrap();
        for (name, hostname, field) in [
            ("ca", None, "name"),
            ("../../elsewhere/stolen", None, "name"),
            ("", Some("../../evil"), "hostname"),
            ("", Some("admin"), "hostname"),
            ("", Some("admin-key"), "hostname"),
            ("", Some("ca"), "hostname"),
            ("", Some("service-account"), "hostname"),
            ("", Some("etcd-server-ip-172-31-0-10"), "hostname"),
        ] {
            let mut bad = context.clone();
            let node = &mut bad.compute.as_mut().unwrap().nodes[worker];
            if !name.is_empty() {
                node.name = name.into();
            }
            if let Some(hostname) = hostname {
                node.hostname = hostname.into();
            }
            let error = kubeconfigs(&bad).unwrap_err().to_string();
            assert!(error.contains(&format!("compute.nodes[{worker}].{field}")), "{name} {hostname:?}: {error}");
        }
    }

    #[test]
    fn the_file_embeds_the_pems_under_the_cluster_and_the_default_context() {
        let spec = KubeconfigSpec {
            file: "admin.kubeconfig".into(),
            certificate: "admin".into(),
            user: "admin".into(),
            server: "https://lb:6443".into(),
        };
        let text = render(&spec, "k8s", b"CA", b"CERT", b"KEY");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(doc["current-context"], "default");
        assert_eq!(doc["clusters"][0]["name"], "k8s");
        assert_eq!(doc["clusters"][0]["cluster"]["certificate-authority-data"], base64::encode_block(b"CA").as_str());
        assert_eq!(doc["users"][0]["user"]["client-key-data"], base64::encode_block(b"KEY").as_str());
        assert_eq!(doc["contexts"][0]["context"]["user"], "admin");
    }
}
