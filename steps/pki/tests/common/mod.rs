//! What more than one of these test files starts from.

use groundup_testkit::{ok, run};

const EXAMPLE: &str = include_str!("../../../../contracts/examples/03-infra.json");

/// The example's 3+3 cluster with this PKI layout and ECDSA keys (quick to make), through the
/// real steps `ca` | `certs` | `kubeconfig` | `encryption` | `bundles` in a new directory: the
/// directory and the context they leave.
pub fn bundled(layout: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut context: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    context["params"]["pki"]["key"] = "ecdsa-p256".into();
    context["params"]["pki"]["layout"] = layout.into();
    let context = through_the_steps(context.to_string(), dir.path());
    (dir, context)
}

/// `context` through `ca` | `certs` | `kubeconfig` | `encryption` | `bundles` in `dir`: the
/// context they leave.
pub fn through_the_steps(mut context: String, dir: &std::path::Path) -> String {
    for bin in [
        env!("CARGO_BIN_EXE_groundup-ca"),
        env!("CARGO_BIN_EXE_groundup-certs"),
        env!("CARGO_BIN_EXE_groundup-kubeconfig"),
        env!("CARGO_BIN_EXE_groundup-encryption"),
        env!("CARGO_BIN_EXE_groundup-bundles"),
    ] {
        context = ok(&run(bin, &[], &context, dir), bin);
    }
    context
}
