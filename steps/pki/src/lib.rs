//! The cluster PKI with openssl: what to issue ([`catalogue`] of [`spec`]s), how to issue and inspect it
//! ([`x509`]), and where it lives on disk ([`store`]); a certificate as a local artifact, with
//! the compare a run acts on and `certs check` reports ([`certificate`], [`check`]); the keys
//! made ahead of the infrastructure
//! ([`prepare`]); the kubeconfigs that embed the certificates
//! ([`kubeconfig`]); the encryption-at-rest config ([`encryption`]), whose key lives
//! beside the CA keys; and what each node needs ([`bundle`]): its credentials and the files that make it run
//! Kubernetes ([`node`]: static pods, the kubelet's and kube-proxy's configs, containerd's). No AWS here: the steps read node names,
//! addresses and the load balancer's DNS name from the context. Its one error type is
//! [`error::PkiError`]: what the user gave is wrong (exit code 2), or a file or OpenSSL failed.
//!
//! It must never depend on the AWS SDK or `groundup-cloud`: `ca` and `certs` build and run
//! without them (a cold build of this crate skips the SDK), and the runner links it for
//! fingerprints.

pub mod bundle;
pub mod catalogue;
pub mod certificate;
pub mod cfssl;
pub mod check;
pub mod encryption;
pub mod error;
pub mod kubeadm;
pub mod kubeconfig;
pub mod names;
pub mod node;
pub mod prepare;
pub mod spec;
pub mod store;
pub mod x509;
