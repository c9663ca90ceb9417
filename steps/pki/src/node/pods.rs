//! The static pods: a `v1` Pod per component, typed as much of the API as they use, and the
//! control plane's and kube-proxy's pods as kubeadm lays them out (host network,
//! `system-node-critical`, its probes and requests), with one read-only `hostPath` volume per
//! file the component reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pod {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    pub host_network: bool,
    pub priority_class_name: String,
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub image_pull_policy: String,
    pub command: Vec<String>,
    pub resources: Resources,
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub requests: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityContext {
    pub privileged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    pub http_get: HttpGet,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGet {
    pub host: String,
    pub path: String,
    pub port: u16,
    pub scheme: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub host_path: HostPath,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPath {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
}

impl Pod {
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("a pod always serializes")
    }

    /// The paths on the node of the single files the pod mounts (`hostPath` of type `File`).
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.spec.volumes.iter().filter(|v| v.host_path.kind == "File").map(|v| v.host_path.path.as_str())
    }
}

/// How often and how patiently a probe asks.
#[derive(Clone, Copy)]
pub struct Patience {
    pub initial_delay: u32,
    pub period: u32,
    pub failures: u32,
}

/// kubeadm's liveness and startup probes: after 10 s, every 10 s, 15 s each; 8 failures end
/// a live container, 24 a starting one.
pub const LIVENESS: Patience = Patience { initial_delay: 10, period: 10, failures: 8 };
pub const STARTUP: Patience = Patience { initial_delay: 10, period: 10, failures: 24 };
/// kubeadm's readiness probe of the API server and etcd: every second, 3 failures.
pub const READINESS: Patience = Patience { initial_delay: 0, period: 1, failures: 3 };

/// One container of a static pod, built up flag by flag; each file a flag names becomes a
/// read-only `hostPath` volume of its own, so the pod sees exactly the files it reads.
pub struct PodBuilder {
    name: String,
    image: String,
    command: Vec<String>,
    requests: BTreeMap<String, String>,
    volumes: Vec<Volume>,
    mounts: Vec<VolumeMount>,
    probes: [Option<Probe>; 3],
    privileged: bool,
}

impl PodBuilder {
    pub fn new(name: &str, image: String, binary: &str) -> Self {
        PodBuilder {
            name: name.into(),
            image,
            command: vec![binary.into()],
            requests: BTreeMap::new(),
            volumes: Vec::new(),
            mounts: Vec::new(),
            probes: [None, None, None],
            privileged: false,
        }
    }

    pub fn flag(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        self.command.push(format!("--{name}={value}"));
        self
    }

    /// A flag whose value is a file the component reads, at `path` on the node.
    pub fn file(&mut self, name: &str, path: &str) -> &mut Self {
        self.mount(path, "File", true);
        self.flag(name, path)
    }

    /// A `hostPath` volume of `kind` (`File`, `DirectoryOrCreate`, `FileOrCreate`, ...),
    /// mounted at the same path. A path mounted already is not mounted twice.
    pub fn mount(&mut self, path: &str, kind: &str, read_only: bool) -> &mut Self {
        if self.volumes.iter().any(|v| v.host_path.path == path) {
            return self;
        }
        let name = volume_name(path, self.volumes.len());
        self.volumes.push(Volume { name: name.clone(), host_path: HostPath { path: path.into(), kind: kind.into() } });
        self.mounts.push(VolumeMount { name, mount_path: path.into(), read_only });
        self
    }

    pub fn request(&mut self, resource: &str, quantity: &str) -> &mut Self {
        self.requests.insert(resource.into(), quantity.into());
        self
    }

    pub fn privileged(&mut self) -> &mut Self {
        self.privileged = true;
        self
    }

    /// The liveness, readiness and startup probes (each where given) on `scheme://host:port`.
    pub fn probes(&mut self, endpoint: (&str, &str, u16), live: &str, ready: Option<&str>, start: &str) -> &mut Self {
        let (scheme, host, port) = endpoint;
        let probe = |path: &str, patience: Patience| Probe {
            http_get: HttpGet { host: host.into(), path: path.into(), port, scheme: scheme.into() },
            initial_delay_seconds: patience.initial_delay,
            period_seconds: patience.period,
            timeout_seconds: 15,
            failure_threshold: patience.failures,
        };
        self.probes =
            [Some(probe(live, LIVENESS)), ready.map(|path| probe(path, READINESS)), Some(probe(start, STARTUP))];
        self
    }

    pub fn build(&self) -> Pod {
        let [liveness_probe, readiness_probe, startup_probe] = self.probes.clone();
        let labels = BTreeMap::from([
            ("component".to_string(), self.name.clone()),
            ("tier".to_string(), if self.name == "kube-proxy" { "node" } else { "control-plane" }.to_string()),
        ]);
        Pod {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: Metadata { name: self.name.clone(), namespace: "kube-system".into(), labels },
            spec: PodSpec {
                host_network: true,
                priority_class_name: "system-node-critical".into(),
                containers: vec![Container {
                    name: self.name.clone(),
                    image: self.image.clone(),
                    image_pull_policy: "IfNotPresent".into(),
                    command: self.command.clone(),
                    resources: Resources { requests: self.requests.clone() },
                    volume_mounts: self.mounts.clone(),
                    liveness_probe,
                    readiness_probe,
                    startup_probe,
                    security_context: self.privileged.then_some(SecurityContext { privileged: true }),
                }],
                volumes: self.volumes.clone(),
            },
        }
    }
}

/// A DNS label from the path's last two components (`kubernetes-ca-pem` for
/// `/var/lib/kubernetes/ca.pem`), numbered to stay unique and short.
fn volume_name(path: &str, index: usize) -> String {
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty()).take(2).collect::<Vec<_>>();
    parts.reverse();
    let words: String =
        parts.join("-").chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let words: String = words.chars().take(50).collect();
    format!("{}-{index}", words.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_is_one_read_only_volume_with_a_dns_label_for_a_name() {
        let mut builder = PodBuilder::new("kube-x", "registry.k8s.io/kube-x:v1.34.2".into(), "kube-x");
        builder.file("a", "/var/lib/kubernetes/ca.pem").file("b", "/etc/etcd/ca.pem").file("c", "/etc/etcd/ca.pem");
        let pod = builder.build();
        let names: Vec<&str> = pod.spec.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["kubernetes-ca-pem-0", "etcd-ca-pem-1"]);
        assert!(pod.spec.containers[0].volume_mounts.iter().all(|m| m.read_only));
        assert_eq!(pod.files().collect::<Vec<_>>(), ["/var/lib/kubernetes/ca.pem", "/etc/etcd/ca.pem"]);
        assert_eq!(
            pod.spec.containers[0].command[1..],
            ["--a=/var/lib/kubernetes/ca.pem", "--b=/etc/etcd/ca.pem", "--c=/etc/etcd/ca.pem"]
        );
        let yaml = pod.to_yaml();
        assert_eq!(serde_yaml_ng::from_str::<Pod>(&yaml).unwrap(), pod);
        assert!(
            yaml.contains("hostNetwork: true") && yaml.contains("priorityClassName: system-node-critical"),
            "{yaml}"
        );
    }
}
