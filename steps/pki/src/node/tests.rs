//! Cross-checks of the rendered files against the PKI, the kubeconfigs and the bundles, for
//! the course's 3+3 cluster, a 1+1 one and kubeadm's layout.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use groundup_contracts::infra::{Node, Role};
use groundup_contracts::pki::Layout;
use groundup_contracts::Context;

use super::*;
use crate::bundle::{contents, BundleFile, Source};
use crate::catalogue::certificates;
use crate::kubeconfig::kubeconfigs;

fn course() -> Context {
    Context::from_json(include_str!("../../../../contracts/examples/03-infra.json")).unwrap()
}

/// The course's cluster, kubeadm's layout of it, and one master with one worker.
fn clusters() -> Vec<(&'static str, Context)> {
    let mut kubeadm = course();
    kubeadm.params.pki.layout = Layout::Kubeadm;
    let mut small = course();
    small.params.masters.truncate(1);
    small.params.workers.truncate(1);
    let compute = small.compute.as_mut().unwrap();
    compute.nodes.retain(|n| n.index == 0);
    vec![("3+3", course()), ("kubeadm", kubeadm), ("1+1", small)]
}

fn nodes(context: &Context) -> Vec<Node> {
    context.compute.as_ref().unwrap().nodes.clone()
}

fn rendered<T: serde::de::DeserializeOwned>(files: &[BundleFile], target: &str) -> T {
    let file = files.iter().find(|f| f.target == target).unwrap_or_else(|| panic!("no {target}"));
    match &file.source {
        Source::Rendered(text) => serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{target}: {e}")),
        Source::File(path) => panic!("{target} is a copy of {}", path.display()),
    }
}

fn manifests(files: &[BundleFile]) -> Vec<Pod> {
    let prefix = format!("{}/", paths::MANIFESTS);
    files.iter().filter(|f| f.target.starts_with(&prefix)).map(|f| rendered(files, &f.target)).collect()
}

fn pod<'a>(pods: &'a [Pod], name: &str) -> &'a Pod {
    pods.iter().find(|p| p.metadata.name == name).unwrap_or_else(|| panic!("no {name} pod"))
}

/// Every file the kubelet, its unit, kube-proxy and each static pod read, by its path on the node.
fn files_named(files: &[BundleFile]) -> Vec<String> {
    let kubelet: KubeletConfiguration = rendered(files, paths::KUBELET_CONFIG);
    let proxy: KubeProxyConfiguration = rendered(files, paths::PROXY_CONFIG);
    let mut named = vec![
        kubelet.authentication.x509.client_ca_file,
        kubelet.tls_cert_file,
        kubelet.tls_private_key_file,
        proxy.client_connection.kubeconfig,
    ];
    let unit = files.iter().find(|f| f.target == paths::KUBELET_UNIT).unwrap();
    let Source::Rendered(unit) = &unit.source else { panic!("the unit is rendered") };
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    named.extend(exec.split(' ').filter_map(|arg| arg.split_once("config=").map(|(_, path)| path.to_string())));
    for pod in manifests(files) {
        named.extend(pod.files().map(String::from));
    }
    if files.iter().any(|f| f.target == paths::SCHEDULER_CONFIG) {
        let scheduler: KubeSchedulerConfiguration = rendered(files, paths::SCHEDULER_CONFIG);
        named.push(scheduler.client_connection.kubeconfig);
    }
    named
}

#[test]
fn every_file_a_manifest_unit_or_config_names_is_in_the_nodes_bundle_with_a_sane_mode() {
    for (label, context) in clusters() {
        for node in nodes(&context) {
            let files = contents(&context, &node);
            let modes: BTreeMap<String, u32> = files.iter().map(|f| (on_node(&f.target), f.mode)).collect();
            let named = files_named(&files);
            assert!(named.len() >= 6, "{label} {}: {named:?}", node.hostname);
            for path in named {
                let mode = modes
                    .get(&path)
                    .unwrap_or_else(|| panic!("{label} {}: {path} is not in its bundle", node.hostname));
                let secret = path.ends_with("-key.pem") || path.ends_with("kubeconfig") || path.contains("encryption");
                let wanted = if secret { 0o600 } else { 0o644 };
                assert_eq!(*mode, wanted, "{label} {}: {path}", node.hostname);
            }
            // Manifests hold no secret but say what runs; only root reads them, as kubeadm's.
            assert!(files
                .iter()
                .filter(|f| f.target.ends_with(".yaml") && f.target.contains("manifests"))
                .all(|f| f.mode == 0o600));
        }
    }
}

#[test]
fn a_worker_runs_kube_proxy_only_and_a_master_the_control_plane_too() {
    for (label, context) in clusters() {
        for node in nodes(&context) {
            let files = contents(&context, &node);
            let mut names: Vec<String> = manifests(&files).into_iter().map(|p| p.metadata.name).collect();
            names.sort();
            let wanted: &[&str] = match node.role {
                Role::Master => &["etcd", "kube-apiserver", "kube-controller-manager", "kube-proxy", "kube-scheduler"],
                Role::Worker => &["kube-proxy"],
            };
            assert_eq!(names, wanted, "{label} {}", node.hostname);
            let kubelet: KubeletConfiguration = rendered(&files, paths::KUBELET_CONFIG);
            let tainted = kubelet.register_with_taints.iter().any(|t| t.key == "node-role.kubernetes.io/control-plane");
            assert_eq!(tainted, node.role == Role::Master, "{label} {}", node.hostname);
            assert_eq!(kubelet.pod_cidr, node.pod_cidr.map(|c| c.to_string()), "{label} {}", node.hostname);
            assert_eq!(
                (kubelet.cgroup_driver.as_str(), kubelet.static_pod_path.as_str()),
                ("systemd", "/etc/kubernetes/manifests")
            );
        }
    }
}

#[test]
fn the_kubelets_serving_pair_is_the_nodes_own() {
    for (label, context) in clusters() {
        let certs = certificates(&context).unwrap();
        for node in nodes(&context) {
            let files = contents(&context, &node);
            let kubelet: KubeletConfiguration = rendered(&files, paths::KUBELET_CONFIG);
            let source = |path: &str| {
                let file = files.iter().find(|f| on_node(&f.target) == path).unwrap();
                file.source.path().unwrap().to_path_buf()
            };
            let pki = Path::new(&context.params.pki.dir);
            assert_eq!(source(&kubelet.tls_cert_file), pki.join(format!("{}.pem", node.hostname)), "{label}");
            assert_eq!(
                source(&kubelet.tls_private_key_file),
                pki.join(format!("{}-key.pem", node.hostname)),
                "{label}"
            );
            let cert = certs.iter().find(|c| c.name == node.hostname).unwrap();
            assert_eq!(cert.common_name, format!("system:node:{}", node.hostname));
            assert!(cert.ips.contains(&IpAddr::V4(node.private_ip)), "{label} {}", node.hostname);
        }
    }
}

/// Each component's kubeconfig authenticates with the certificate whose CN is that component's
/// user, and the controller manager and scheduler talk to their own master's API server.
#[test]
fn every_kubeconfig_a_component_uses_has_the_cn_it_needs() {
    for (label, context) in clusters() {
        let specs = kubeconfigs(&context).unwrap();
        let certs = certificates(&context).unwrap();
        for node in nodes(&context) {
            let files = contents(&context, &node);
            let mut wanted = vec![
                (paths::KUBELET_KUBECONFIG, format!("system:node:{}", node.hostname)),
                (paths::PROXY_KUBECONFIG, "system:kube-proxy".to_string()),
            ];
            if node.role == Role::Master {
                wanted.push((paths::CONTROLLER_MANAGER_KUBECONFIG, "system:kube-controller-manager".into()));
                wanted.push((paths::SCHEDULER_KUBECONFIG, "system:kube-scheduler".into()));
            }
            for (target, cn) in wanted {
                let file = files.iter().find(|f| f.target == target).unwrap();
                let source = file.source.path().unwrap();
                let name = source.strip_prefix(&context.params.kubeconfig_dir).unwrap().to_str().unwrap();
                let spec =
                    specs.iter().find(|s| s.file == name).unwrap_or_else(|| panic!("{label}: no kubeconfig {name}"));
                let cert = certs.iter().find(|c| c.name == spec.certificate).unwrap();
                assert_eq!(cert.common_name, cn, "{label} {}: {target}", node.hostname);
                if target.starts_with("var/lib/kubernetes/") {
                    assert!(spec.server.starts_with("https://127.0.0.1:"), "{label}: {}", spec.server);
                }
            }
        }
    }
}

#[test]
fn the_service_range_holds_the_api_certificates_address_and_the_dns_one() {
    for (label, context) in clusters() {
        let service = context.params.service_cidr;
        let certs = certificates(&context).unwrap();
        let api = certs.iter().find(|c| c.name == "master-kubernetes").unwrap();
        let in_cert: Vec<&IpAddr> =
            api.ips.iter().filter(|ip| matches!(ip, IpAddr::V4(v4) if service.contains(v4))).collect();
        assert_eq!(in_cert, [&IpAddr::V4(service.hosts().next().unwrap())], "{label}");
        let master = nodes(&context).into_iter().find(|n| n.role == Role::Master).unwrap();
        let files = contents(&context, &master);
        let pods = manifests(&files);
        for name in ["kube-apiserver", "kube-controller-manager"] {
            assert_eq!(flags(pod(&pods, name))["service-cluster-ip-range"], service.to_string(), "{label} {name}");
        }
        let kubelet: KubeletConfiguration = rendered(&files, paths::KUBELET_CONFIG);
        assert!(kubelet.cluster_dns.iter().all(|dns| service.contains(dns) && Some(*dns) != service.hosts().next()));
    }
}

#[test]
fn every_workers_pod_range_is_inside_the_cluster_cidr() {
    for (label, context) in clusters() {
        let master = nodes(&context).into_iter().find(|n| n.role == Role::Master).unwrap();
        let pods = manifests(&contents(&context, &master));
        let cluster = context.params.kubernetes.cluster_cidr;
        assert_eq!(flags(pod(&pods, "kube-controller-manager"))["cluster-cidr"], cluster.to_string(), "{label}");
        for node in nodes(&context) {
            let files = contents(&context, &node);
            let proxy: KubeProxyConfiguration = rendered(&files, paths::PROXY_CONFIG);
            assert_eq!(proxy.cluster_cidr, cluster.to_string(), "{label}");
            assert_eq!(proxy.mode, "iptables");
            let kubelet: KubeletConfiguration = rendered(&files, paths::KUBELET_CONFIG);
            assert_eq!(kubelet.pod_cidr, node.pod_cidr.map(|range| range.to_string()));
            if let Some(range) = node.pod_cidr {
                assert!(cluster.contains(&range), "{label} {}: {range}", node.hostname);
            }
        }
    }
}

#[test]
fn etcd_and_the_api_server_name_every_master_and_the_etcd_pki() {
    for (label, context) in clusters() {
        let masters: Vec<Node> = nodes(&context).into_iter().filter(|n| n.role == Role::Master).collect();
        for master in &masters {
            let pods = manifests(&contents(&context, master));
            let etcd = flags(pod(&pods, "etcd"));
            assert_eq!(etcd["name"], master.hostname);
            let members: Vec<&str> = etcd["initial-cluster"].split(',').collect();
            assert_eq!(members.len(), masters.len(), "{label}");
            for other in &masters {
                assert!(members.contains(&format!("{}=https://{}:2380", other.hostname, other.private_ip).as_str()));
            }
            assert_eq!(
                etcd["listen-client-urls"],
                format!("https://{}:2379,https://127.0.0.1:2379", master.private_ip)
            );
            assert_eq!((etcd["client-cert-auth"].as_str(), etcd["peer-client-cert-auth"].as_str()), ("true", "true"));
            assert_eq!(etcd["data-dir"], "/var/lib/etcd");
            let api = flags(pod(&pods, "kube-apiserver"));
            assert_eq!(api["advertise-address"], master.private_ip.to_string());
            assert_eq!(api["etcd-servers"].split(',').count(), masters.len());
            assert_eq!(api["authorization-mode"], "Node,RBAC");
            assert_eq!(api["enable-admission-plugins"], "NodeRestriction");
            assert_eq!(api["encryption-provider-config"], "/var/lib/kubernetes/encryption-config.yaml");
            let probe = pod(&pods, "kube-apiserver").spec.containers[0].readiness_probe.as_ref().unwrap();
            assert_eq!((probe.http_get.path.as_str(), probe.http_get.port), ("/readyz", context.params.ports.api));
        }
    }
}

/// One release everywhere: every Kubernetes image's tag, the unit's and containerd's headers;
/// etcd and the sandbox come from the same registry.
#[test]
fn one_version_and_registry_in_every_image() {
    let mut context = course();
    context.params.kubernetes.version = "v1.33.5".into();
    context.params.kubernetes.image_registry = "mirror.example.com/k8s".into();
    for node in nodes(&context) {
        let files = contents(&context, &node);
        for pod in manifests(&files) {
            let image = &pod.spec.containers[0].image;
            assert!(image.starts_with("mirror.example.com/k8s/"), "{image}");
            if pod.metadata.name != "etcd" {
                assert_eq!(image, &format!("mirror.example.com/k8s/{}:v1.33.5", pod.metadata.name));
            }
        }
        for target in [paths::KUBELET_UNIT, paths::CONTAINERD_CONFIG] {
            let Source::Rendered(text) = &files.iter().find(|f| f.target == target).unwrap().source else { panic!() };
            assert!(text.contains("(v1.33.5)") && !text.contains("v1.34"), "{target}: {text}");
        }
        let Source::Rendered(containerd) = &files.iter().find(|f| f.target == paths::CONTAINERD_CONFIG).unwrap().source
        else {
            panic!()
        };
        assert!(containerd.contains("sandbox_image = \"mirror.example.com/k8s/pause:3.10\""), "{containerd}");
        assert!(containerd.contains("SystemdCgroup = true"));
    }
}
