//! The user data each instance boots with: a cloud-init `#cloud-config` that makes the node
//! ready to run Kubernetes: containerd, runc and the kubelet of the cluster's minor release
//! from the Kubernetes package repository (held at that version), swap off, the kernel
//! modules and settings, and a kubelet that starts only once its config has arrived.
//!
//! It holds no secret: instance metadata is readable by every process on the machine, so the
//! keys and kubeconfigs go only by `groundup distribute` over SSH.

use groundup_contracts::kubernetes::{self, KubernetesParams};
use serde::Serialize;

/// EC2 refuses user data above 16 KB (before base64).
pub const MAX_BYTES: usize = 16 * 1024;

const KEYRING: &str = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";
const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";

#[derive(Serialize)]
struct CloudConfig {
    write_files: Vec<WriteFile>,
    runcmd: Vec<Vec<String>>,
}

#[derive(Serialize)]
struct WriteFile {
    path: String,
    permissions: String,
    content: String,
}

/// The `#cloud-config` for a node (`logical`: `master-0`, named in its first line).
pub fn cloud_config(logical: &str, kubernetes: &KubernetesParams) -> String {
    let version = kubernetes.version();
    let repository = format!("https://pkgs.k8s.io/core:/stable:/{}/deb/", version.minor_channel());
    let file = |path: &str, content: String| WriteFile { path: path.into(), permissions: "0644".into(), content };
    let words = |line: &[&str]| line.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let shell = |script: String| vec!["sh".to_string(), "-c".to_string(), script];
    let pin = version.package_pin();
    let mut runcmd = vec![
        words(&["swapoff", "-a"]),
        // Keep it off after a reboot: comment out every swap line of fstab.
        words(&["sed", "-i", r"/\sswap\s/ s/^[^#]/#&/", "/etc/fstab"]),
    ];
    runcmd.extend(kubernetes::KERNEL_MODULES.iter().map(|module| words(&["modprobe", module])));
    runcmd.push(words(&["sysctl", "--system"]));
    runcmd.extend([
        words(&["mkdir", "-p", "-m", "0755", "/etc/apt/keyrings"]),
        shell(format!("curl -fsSL {repository}Release.key | gpg --dearmor --yes -o {KEYRING}")),
        shell(format!("echo 'deb [signed-by={KEYRING}] {repository} /' > /etc/apt/sources.list.d/kubernetes.list")),
        words(&["apt-get", "update"]),
        shell(format!("DEBIAN_FRONTEND=noninteractive apt-get install -y containerd runc 'kubelet={pin}'")),
        words(&["apt-mark", "hold", "containerd", "runc", "kubelet"]),
        words(&["systemctl", "daemon-reload"]),
        words(&["systemctl", "enable", "--now", "containerd", "kubelet-config.path"]),
        words(&["systemctl", "enable", "kubelet"]),
    ]);
    let config = CloudConfig {
        write_files: vec![
            file(kubernetes::MODULES_FILE, kubernetes::modules_conf()),
            file(kubernetes::SYSCTL_FILE, kubernetes::sysctl_conf()),
            // The kubelet waits for its config (`groundup distribute` brings it) instead of
            // failing in a loop, and starts when it arrives.
            file(
                "/etc/systemd/system/kubelet.service.d/05-groundup-wait.conf",
                format!("[Unit]\nConditionPathExists={KUBELET_CONFIG}\n"),
            ),
            file(
                "/etc/systemd/system/kubelet-config.path",
                format!(
                    "[Unit]\nDescription=Start the kubelet once its config has arrived\n\n\
                     [Path]\nPathExists={KUBELET_CONFIG}\nUnit=kubelet.service\n\n\
                     [Install]\nWantedBy=multi-user.target\n"
                ),
            ),
        ],
        runcmd,
    };
    let body = serde_yaml_ng::to_string(&config).expect("a cloud-config always serializes");
    format!("#cloud-config\n# groundup {logical}: Kubernetes {version}\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_pins_the_repository_and_the_kubelet_and_the_size_fits_ec2() {
        let kubernetes = KubernetesParams { version: "v1.33.5".into(), ..KubernetesParams::default() };
        let text = cloud_config("worker-12", &kubernetes);
        assert!(text.starts_with("#cloud-config\n# groundup worker-12: Kubernetes v1.33.5\n"), "{text}");
        assert!(text.contains("https://pkgs.k8s.io/core:/stable:/v1.33/deb/"), "{text}");
        assert!(text.contains("kubelet=1.33.5-*") && !text.contains("v1.34"), "{text}");
        assert!(text.contains("apt-mark") && text.contains("swapoff"), "{text}");
        assert!(text.len() < MAX_BYTES, "{} bytes", text.len());
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(parsed["write_files"][0]["content"].as_str(), Some("overlay\nbr_netfilter\n"));
    }

    /// Nothing in it is a credential: no PEM block, no kubeconfig, no key material.
    #[test]
    fn it_holds_no_secret() {
        let text = cloud_config("master-0", &KubernetesParams::default());
        for secret in ["-----BEGIN", "PRIVATE KEY", "client-key-data", "token", "password", "secret"] {
            assert!(!text.to_lowercase().contains(&secret.to_lowercase()), "{secret} in {text}");
        }
    }
}
