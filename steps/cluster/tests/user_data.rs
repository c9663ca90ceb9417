//! The user data, checked by Debian's cloud-init: every node's `#cloud-config` passes
//! `cloud-init schema`, for the default release and another, and fits EC2's 16 KB.

use std::process::Command;

use groundup_cluster::user_data::{cloud_config, MAX_BYTES};
use groundup_contracts::kubernetes::KubernetesParams;

#[test]
fn cloud_init_accepts_every_nodes_user_data() {
    let found = Command::new("sh").args(["-c", "command -v cloud-init"]).output().unwrap();
    assert!(found.status.success(), "`cloud-init` is not installed: apt-get install cloud-init (.ci/run does)");
    let dir = tempfile::tempdir().unwrap();
    let older = KubernetesParams { version: "v1.31.4".into(), ..KubernetesParams::default() };
    for (logical, kubernetes) in [("master-0", KubernetesParams::default()), ("worker-41", older)] {
        let text = cloud_config(logical, &kubernetes);
        assert!(text.len() < MAX_BYTES, "{logical}: {} bytes", text.len());
        let file = dir.path().join(format!("{logical}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let output = Command::new("cloud-init").args(["schema", "--config-file"]).arg(&file).output().unwrap();
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{logical}: {report}\n{text}");
        assert!(report.contains("Valid cloud-config"), "{logical}: {report}");
    }
}
