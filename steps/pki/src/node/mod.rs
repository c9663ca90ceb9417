//! What makes a node run Kubernetes, rendered from the context: on every node the container
//! runtime's config, the kubelet (its `KubeletConfiguration` and systemd unit), kube-proxy as a
//! static pod with its `KubeProxyConfiguration`, and the kernel settings; on each master the
//! control plane as static pods (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler with its `KubeSchedulerConfiguration`). Pure: the files are strings made from
//! the context, hold no secret, and name only the credentials the bundle carries
//! ([`crate::bundle::contents`], which lists these beside them).

pub mod pods;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use groundup_contracts::infra::{ComputeSection, Node, Role};
use groundup_contracts::kubernetes::{self, Version, CLUSTER_DOMAIN};
use groundup_contracts::Context;
use serde::{Deserialize, Serialize};

use pods::{Pod, PodBuilder};

/// Where the files go on a node, relative to `/` as in a bundle. The credentials are where the
/// course's bundles put them (see [`crate::bundle`]).
pub mod paths {
    pub const CA: &str = "var/lib/kubernetes/ca.pem";
    pub const CA_KEY: &str = "var/lib/kubernetes/ca-key.pem";
    pub const API_CERT: &str = "var/lib/kubernetes/kubernetes.pem";
    pub const API_KEY: &str = "var/lib/kubernetes/kubernetes-key.pem";
    pub const SERVICE_ACCOUNT_CERT: &str = "var/lib/kubernetes/service-account.pem";
    pub const SERVICE_ACCOUNT_KEY: &str = "var/lib/kubernetes/service-account-key.pem";
    pub const ETCD_CLIENT_CERT: &str = "var/lib/kubernetes/apiserver-etcd-client.pem";
    pub const ETCD_CLIENT_KEY: &str = "var/lib/kubernetes/apiserver-etcd-client-key.pem";
    pub const KUBELET_CLIENT_CERT: &str = "var/lib/kubernetes/apiserver-kubelet-client.pem";
    pub const KUBELET_CLIENT_KEY: &str = "var/lib/kubernetes/apiserver-kubelet-client-key.pem";
    pub const ETCD_CA_FOR_API: &str = "var/lib/kubernetes/etcd-ca.pem";
    pub const FRONT_PROXY_CA: &str = "var/lib/kubernetes/front-proxy-ca.pem";
    pub const FRONT_PROXY_CERT: &str = "var/lib/kubernetes/front-proxy-client.pem";
    pub const FRONT_PROXY_KEY: &str = "var/lib/kubernetes/front-proxy-client-key.pem";
    pub const ENCRYPTION_CONFIG: &str = "var/lib/kubernetes/encryption-config.yaml";
    pub const CONTROLLER_MANAGER_KUBECONFIG: &str = "var/lib/kubernetes/kube-controller-manager.kubeconfig";
    pub const SCHEDULER_KUBECONFIG: &str = "var/lib/kubernetes/kube-scheduler.kubeconfig";
    pub const SCHEDULER_CONFIG: &str = "var/lib/kubernetes/kube-scheduler.yaml";
    pub const ETCD_CA: &str = "etc/etcd/ca.pem";
    pub const ETCD_SERVER_CERT: &str = "etc/etcd/server.pem";
    pub const ETCD_SERVER_KEY: &str = "etc/etcd/server-key.pem";
    pub const ETCD_PEER_CERT: &str = "etc/etcd/peer.pem";
    pub const ETCD_PEER_KEY: &str = "etc/etcd/peer-key.pem";
    pub const ETCD_DATA: &str = "var/lib/etcd";
    pub const MANIFESTS: &str = "etc/kubernetes/manifests";
    pub const KUBELET_CONFIG: &str = "var/lib/kubelet/config.yaml";
    pub const KUBELET_KUBECONFIG: &str = "var/lib/kubelet/kubeconfig";
    pub const KUBELET_UNIT: &str = "etc/systemd/system/kubelet.service";
    pub const PROXY_CONFIG: &str = "var/lib/kube-proxy/config.yaml";
    pub const PROXY_KUBECONFIG: &str = "var/lib/kube-proxy/kubeconfig";
    pub const CONTAINERD_CONFIG: &str = "etc/containerd/config.toml";
    pub const MODULES: &str = "etc/modules-load.d/k8s.conf";
    pub const SYSCTL: &str = "etc/sysctl.d/99-kubernetes.conf";

    /// The kubelet's serving pair: the node's own certificate.
    pub fn kubelet_cert(hostname: &str) -> String {
        format!("var/lib/kubelet/{hostname}.pem")
    }

    pub fn kubelet_key(hostname: &str) -> String {
        format!("var/lib/kubelet/{hostname}-key.pem")
    }

    /// The path on the node.
    pub fn on_node(target: &str) -> String {
        format!("/{target}")
    }
}

use paths::on_node;

/// The ports the control plane serves its health on (kubeadm's), besides the API port.
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const SCHEDULER_PORT: u16 = 10259;
const ETCD_METRICS_PORT: u16 = 2381;
const PROXY_HEALTH_PORT: u16 = 10256;
const CONTAINERD_SOCKET: &str = "unix:///run/containerd/containerd.sock";

/// One rendered file: where it goes (relative to `/`), its mode there, and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFile {
    pub target: String,
    pub mode: u32,
    pub text: String,
}

/// The release's images: the control plane's and kube-proxy's carry its tag; etcd and the
/// sandbox (pause) are the ones kubeadm of that minor pins.
pub struct Images<'a> {
    registry: &'a str,
    version: Version,
}

impl Images<'_> {
    pub fn component(&self, name: &str) -> String {
        format!("{}/{name}:{}", self.registry, self.version)
    }

    pub fn etcd(&self) -> String {
        let tag = match self.version.minor {
            ..=31 => "3.5.15-0",
            32 => "3.5.16-0",
            33 => "3.5.21-0",
            _ => "3.6.4-0",
        };
        format!("{}/etcd:{tag}", self.registry)
    }

    pub fn pause(&self) -> String {
        let tag = match self.version.minor {
            ..=30 => "3.9",
            31..=33 => "3.10",
            _ => "3.10.1",
        };
        format!("{}/pause:{tag}", self.registry)
    }
}

/// Everything the files of one cluster share.
pub struct Cluster<'a> {
    context: &'a Context,
    compute: &'a ComputeSection,
    pub images: Images<'a>,
}

impl<'a> Cluster<'a> {
    pub fn new(context: &'a Context, compute: &'a ComputeSection) -> Self {
        let kubernetes = &context.params.kubernetes;
        Cluster {
            context,
            compute,
            images: Images { registry: &kubernetes.image_registry, version: kubernetes.version() },
        }
    }

    fn etcd_peer_port(&self) -> u16 {
        self.context.params.ports.etcd.to
    }

    fn etcd_client_port(&self) -> u16 {
        self.context.params.ports.etcd.from
    }

    /// The files `node` runs Kubernetes with.
    pub fn files(&self, node: &Node) -> Vec<NodeFile> {
        let yaml = |target: &str, text: String| NodeFile { target: target.into(), mode: 0o644, text };
        let manifest = |pod: Pod| NodeFile {
            target: format!("{}/{}.yaml", paths::MANIFESTS, pod.metadata.name),
            mode: 0o600,
            text: pod.to_yaml(),
        };
        let mut files = vec![
            yaml(paths::CONTAINERD_CONFIG, self.containerd_config()),
            yaml(paths::KUBELET_CONFIG, to_yaml(&self.kubelet_config(node))),
            yaml(paths::KUBELET_UNIT, self.kubelet_unit(node)),
            yaml(paths::PROXY_CONFIG, to_yaml(&self.proxy_config())),
            manifest(self.kube_proxy(node)),
            yaml(paths::MODULES, kubernetes::modules_conf()),
            yaml(paths::SYSCTL, kubernetes::sysctl_conf()),
        ];
        if node.role == Role::Master {
            files.push(yaml(paths::SCHEDULER_CONFIG, to_yaml(&scheduler_config())));
            files.extend(
                [self.etcd(node), self.api_server(node), self.controller_manager(), self.scheduler()].map(manifest),
            );
        }
        files
    }

    /// etcd as the course runs it, from the etcd CA: server and peer TLS with client
    /// certificates required on both; clients on the master's address and loopback, peers on
    /// its address. Only flags etcd 3.4 (Debian's) and 3.5 and later all accept.
    pub fn etcd(&self, node: &Node) -> Pod {
        let ip = node.private_ip;
        let (client, peer) = (self.etcd_client_port(), self.etcd_peer_port());
        let initial_cluster: Vec<String> =
            self.compute.masters().map(|m| format!("{}=https://{}:{peer}", m.hostname, m.private_ip)).collect();
        let mut pod = PodBuilder::new("etcd", self.images.etcd(), "etcd");
        pod.flag("name", &node.hostname)
            .flag("data-dir", on_node(paths::ETCD_DATA))
            .file("cert-file", &on_node(paths::ETCD_SERVER_CERT))
            .file("key-file", &on_node(paths::ETCD_SERVER_KEY))
            .file("trusted-ca-file", &on_node(paths::ETCD_CA))
            .flag("client-cert-auth", true)
            .file("peer-cert-file", &on_node(paths::ETCD_PEER_CERT))
            .file("peer-key-file", &on_node(paths::ETCD_PEER_KEY))
            .file("peer-trusted-ca-file", &on_node(paths::ETCD_CA))
            .flag("peer-client-cert-auth", true)
            .flag("listen-client-urls", format!("https://{ip}:{client},https://127.0.0.1:{client}"))
            .flag("advertise-client-urls", format!("https://{ip}:{client}"))
            .flag("listen-peer-urls", format!("https://{ip}:{peer}"))
            .flag("initial-advertise-peer-urls", format!("https://{ip}:{peer}"))
            .flag("initial-cluster", initial_cluster.join(","))
            .flag("initial-cluster-state", "new")
            .flag("initial-cluster-token", &self.context.cluster.name)
            .flag("listen-metrics-urls", format!("http://127.0.0.1:{ETCD_METRICS_PORT}"))
            .mount(&on_node(paths::ETCD_DATA), "DirectoryOrCreate", false)
            .request("cpu", "100m")
            .request("memory", "100Mi")
            .probes(("HTTP", "127.0.0.1", ETCD_METRICS_PORT), "/livez", Some("/readyz"), "/readyz");
        pod.build()
    }

    /// Every master's etcd, for the API server.
    pub fn etcd_servers(&self) -> String {
        let port = self.etcd_client_port();
        self.compute.masters().map(|m| format!("https://{}:{port}", m.private_ip)).collect::<Vec<_>>().join(",")
    }

    pub fn api_server(&self, node: &Node) -> Pod {
        let params = &self.context.params;
        let ip = node.private_ip.to_string();
        let ports = &params.ports;
        let mut pod = PodBuilder::new("kube-apiserver", self.images.component("kube-apiserver"), "kube-apiserver");
        pod.flag("advertise-address", &ip)
            .flag("secure-port", ports.api)
            .flag("allow-privileged", true)
            .flag("authorization-mode", "Node,RBAC")
            .flag("enable-admission-plugins", "NodeRestriction")
            .file("client-ca-file", &on_node(paths::CA))
            .file("tls-cert-file", &on_node(paths::API_CERT))
            .file("tls-private-key-file", &on_node(paths::API_KEY))
            .flag("etcd-servers", self.etcd_servers())
            .file("etcd-cafile", &on_node(paths::ETCD_CA_FOR_API))
            .file("etcd-certfile", &on_node(paths::ETCD_CLIENT_CERT))
            .file("etcd-keyfile", &on_node(paths::ETCD_CLIENT_KEY))
            .file("kubelet-client-certificate", &on_node(paths::KUBELET_CLIENT_CERT))
            .file("kubelet-client-key", &on_node(paths::KUBELET_CLIENT_KEY))
            .file("kubelet-certificate-authority", &on_node(paths::CA))
            .flag("kubelet-preferred-address-types", "InternalIP,Hostname")
            .file("service-account-key-file", &on_node(paths::SERVICE_ACCOUNT_CERT))
            .file("service-account-signing-key-file", &on_node(paths::SERVICE_ACCOUNT_KEY))
            .flag("service-account-issuer", format!("https://kubernetes.default.svc.{CLUSTER_DOMAIN}"))
            .flag("service-cluster-ip-range", params.service_cidr)
            .flag("service-node-port-range", format!("{}-{}", ports.node_ports.from, ports.node_ports.to))
            .file("encryption-provider-config", &on_node(paths::ENCRYPTION_CONFIG))
            .file("requestheader-client-ca-file", &on_node(paths::FRONT_PROXY_CA))
            .flag("requestheader-allowed-names", "front-proxy-client")
            .flag("requestheader-extra-headers-prefix", "X-Remote-Extra-")
            .flag("requestheader-group-headers", "X-Remote-Group")
            .flag("requestheader-username-headers", "X-Remote-User")
            .file("proxy-client-cert-file", &on_node(paths::FRONT_PROXY_CERT))
            .file("proxy-client-key-file", &on_node(paths::FRONT_PROXY_KEY))
            .request("cpu", "250m")
            .probes(("HTTPS", &ip, ports.api), "/livez", Some("/readyz"), "/livez");
        pod.build()
    }

    pub fn controller_manager(&self) -> Pod {
        let params = &self.context.params;
        let kubeconfig = on_node(paths::CONTROLLER_MANAGER_KUBECONFIG);
        let name = "kube-controller-manager";
        let mut pod = PodBuilder::new(name, self.images.component(name), name);
        pod.file("kubeconfig", &kubeconfig)
            .file("authentication-kubeconfig", &kubeconfig)
            .file("authorization-kubeconfig", &kubeconfig)
            .flag("bind-address", "127.0.0.1")
            .flag("cluster-name", &self.context.cluster.name)
            .flag("cluster-cidr", params.kubernetes.cluster_cidr)
            .flag("service-cluster-ip-range", params.service_cidr)
            // The pod ranges are the context's, routed by `compute`: the kubelets are given
            // theirs, none is allocated here.
            .flag("allocate-node-cidrs", false)
            .file("root-ca-file", &on_node(paths::CA))
            .file("service-account-private-key-file", &on_node(paths::SERVICE_ACCOUNT_KEY))
            .file("cluster-signing-cert-file", &on_node(paths::CA))
            .file("cluster-signing-key-file", &on_node(paths::CA_KEY))
            .flag("use-service-account-credentials", true)
            .flag("leader-elect", true)
            .request("cpu", "200m")
            .probes(("HTTPS", "127.0.0.1", CONTROLLER_MANAGER_PORT), "/healthz", None, "/healthz");
        pod.build()
    }

    pub fn scheduler(&self) -> Pod {
        let name = "kube-scheduler";
        let mut pod = PodBuilder::new(name, self.images.component(name), name);
        pod.file("config", &on_node(paths::SCHEDULER_CONFIG))
            .file("authentication-kubeconfig", &on_node(paths::SCHEDULER_KUBECONFIG))
            .file("authorization-kubeconfig", &on_node(paths::SCHEDULER_KUBECONFIG))
            .flag("bind-address", "127.0.0.1")
            .request("cpu", "100m")
            .probes(("HTTPS", "127.0.0.1", SCHEDULER_PORT), "/livez", Some("/readyz"), "/livez");
        pod.build()
    }

    pub fn kube_proxy(&self, node: &Node) -> Pod {
        let name = "kube-proxy";
        let mut pod = PodBuilder::new(name, self.images.component(name), name);
        pod.file("config", &on_node(paths::PROXY_CONFIG))
            .flag("hostname-override", &node.hostname)
            .mount(&on_node(paths::PROXY_KUBECONFIG), "File", true)
            // iptables' lock, shared with the node's own iptables, and the kernel's modules.
            .mount("/run/xtables.lock", "FileOrCreate", false)
            .mount("/lib/modules", "Directory", true)
            .privileged()
            .request("cpu", "100m")
            .probes(("HTTP", "127.0.0.1", PROXY_HEALTH_PORT), "/healthz", None, "/healthz");
        pod.build()
    }

    pub fn kubelet_config(&self, node: &Node) -> KubeletConfiguration {
        let kubernetes = &self.context.params.kubernetes;
        let taint = Taint { key: "node-role.kubernetes.io/control-plane".into(), effect: "NoSchedule".into() };
        KubeletConfiguration {
            api_version: "kubelet.config.k8s.io/v1beta1".into(),
            kind: "KubeletConfiguration".into(),
            authentication: KubeletAuthentication {
                anonymous: Enabled { enabled: false },
                webhook: Enabled { enabled: true },
                x509: X509 { client_ca_file: on_node(paths::CA) },
            },
            authorization: KubeletAuthorization { mode: "Webhook".into() },
            cgroup_driver: "systemd".into(),
            container_runtime_endpoint: CONTAINERD_SOCKET.into(),
            cluster_dns: vec![kubernetes.cluster_dns],
            cluster_domain: CLUSTER_DOMAIN.into(),
            tls_cert_file: on_node(&paths::kubelet_cert(&node.hostname)),
            tls_private_key_file: on_node(&paths::kubelet_key(&node.hostname)),
            pod_cidr: node.pod_cidr.map(|cidr| cidr.to_string()),
            // Every node runs kube-proxy as a static pod; a master its control plane too.
            static_pod_path: on_node(paths::MANIFESTS),
            register_with_taints: match node.role {
                Role::Master => vec![taint],
                Role::Worker => Vec::new(),
            },
            // Ubuntu's resolver stub is 127.0.0.53, which a pod cannot reach; this is the real list.
            resolv_conf: "/run/systemd/resolve/resolv.conf".into(),
            rotate_certificates: false,
        }
    }

    /// The kubelet as a unit of its own, replacing the package's: it starts only once its
    /// config has arrived (`distribute`), and after containerd.
    pub fn kubelet_unit(&self, node: &Node) -> String {
        format!(
            "# Written by groundup ({version}).\n\
             [Unit]\n\
             Description=Kubernetes kubelet\n\
             Documentation=https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/\n\
             After=containerd.service\n\
             Requires=containerd.service\n\
             ConditionPathExists={config}\n\
             ConditionPathExists={kubeconfig}\n\
             \n\
             [Service]\n\
             ExecStart=/usr/bin/kubelet --config={config} --kubeconfig={kubeconfig} --hostname-override={host} --node-ip={ip}\n\
             Restart=always\n\
             RestartSec=10\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            version = self.images.version,
            config = on_node(paths::KUBELET_CONFIG),
            kubeconfig = on_node(paths::KUBELET_KUBECONFIG),
            host = node.hostname,
            ip = node.private_ip,
        )
    }

    pub fn proxy_config(&self) -> KubeProxyConfiguration {
        KubeProxyConfiguration {
            api_version: "kubeproxy.config.k8s.io/v1alpha1".into(),
            kind: "KubeProxyConfiguration".into(),
            client_connection: ClientConnection { kubeconfig: on_node(paths::PROXY_KUBECONFIG) },
            mode: "iptables".into(),
            cluster_cidr: self.context.params.kubernetes.cluster_cidr.to_string(),
        }
    }

    /// containerd's config (version 2, which containerd 1.6 and 1.7 read): the CRI plugin runs
    /// runc with the systemd cgroup driver, as the kubelet does, and the release's sandbox image.
    pub fn containerd_config(&self) -> String {
        format!(
            "# Written by groundup ({version}).\n\
             version = 2\n\
             \n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n\
             \x20 sandbox_image = {sandbox}\n\
             \n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n\
             \x20 default_runtime_name = \"runc\"\n\
             \n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n\
             \x20 runtime_type = \"io.containerd.runc.v2\"\n\
             \n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n\
             \x20 SystemdCgroup = true\n",
            version = self.images.version,
            sandbox = toml_string(&self.images.pause()),
        )
    }
}

/// A TOML basic string (the image reference comes from the context).
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

fn to_yaml(value: &impl Serialize) -> String {
    serde_yaml_ng::to_string(value).expect("a config always serializes")
}

/// The scheduler's config: its kubeconfig and leader election among the masters.
pub fn scheduler_config() -> KubeSchedulerConfiguration {
    KubeSchedulerConfiguration {
        api_version: "kubescheduler.config.k8s.io/v1".into(),
        kind: "KubeSchedulerConfiguration".into(),
        client_connection: ClientConnection { kubeconfig: on_node(paths::SCHEDULER_KUBECONFIG) },
        leader_election: LeaderElection { leader_elect: true },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletConfiguration {
    pub api_version: String,
    pub kind: String,
    pub authentication: KubeletAuthentication,
    pub authorization: KubeletAuthorization,
    pub cgroup_driver: String,
    pub container_runtime_endpoint: String,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<Ipv4Addr>,
    pub cluster_domain: String,
    pub tls_cert_file: String,
    pub tls_private_key_file: String,
    #[serde(rename = "podCIDR", default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    pub static_pod_path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub register_with_taints: Vec<Taint>,
    pub resolv_conf: String,
    /// The serving and client pairs are groundup's, renewed by `certs`, not by the kubelet.
    pub rotate_certificates: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletAuthentication {
    pub anonymous: Enabled,
    pub webhook: Enabled,
    pub x509: X509,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct X509 {
    pub client_ca_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletAuthorization {
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeProxyConfiguration {
    pub api_version: String,
    pub kind: String,
    pub client_connection: ClientConnection,
    pub mode: String,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConnection {
    pub kubeconfig: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeSchedulerConfiguration {
    pub api_version: String,
    pub kind: String,
    pub client_connection: ClientConnection,
    pub leader_election: LeaderElection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElection {
    pub leader_elect: bool,
}

/// The flags of a pod's command, as a map (`--name=value`).
pub fn flags(pod: &Pod) -> BTreeMap<String, String> {
    pod.spec.containers[0]
        .command
        .iter()
        .filter_map(|arg| arg.strip_prefix("--")?.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
