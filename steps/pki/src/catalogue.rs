//! The certificate catalogue: the set a cluster needs as data, one table from the course
//! (cfssl names and subjects) and kubeadm (the etcd and front-proxy authorities and their
//! certificates), plus the custom requests of `params.pki.custom`.

use std::net::IpAddr;

use groundup_contracts::context::need;
use groundup_contracts::infra::Role;
use groundup_contracts::pki::{CustomCert, Layout};
use groundup_contracts::{Context, ContextError, Section};

use crate::error::PkiError;
use crate::names;
use crate::spec::{Authority, CertSpec, BOTH, CLIENT, SERVER};

const API_NAMES: [&str; 5] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
];

/// The users of kubeadm's `admin.conf` and `super-admin.conf`: their certificates' names and CNs.
pub const KUBEADM_ADMIN: &str = "kubernetes-admin";
pub const KUBEADM_SUPER_ADMIN: &str = "kubernetes-super-admin";

/// Every leaf certificate the cluster needs, from the nodes, the load balancer and the custom
/// requests. Names from the context become file names only once proven plain and distinct.
pub fn certificates(context: &Context) -> Result<Vec<CertSpec>, ContextError> {
    let mut set = built_in(context)?;
    for (i, custom) in context.params.pki.custom.iter().enumerate() {
        add_custom(&mut set, custom)
            .map_err(|e| ContextError::field(format!("params.pki.custom[{i}]"), e.to_string()))?;
    }
    Ok(set)
}

/// Proves every name of the context that becomes a file name of the PKI: the nodes' (see
/// `ComputeSection::check_names`), and each hostname, which names its kubelet's certificate and
/// key (`pki/<hostname>.pem`), as one that no CA and no other certificate has: a node called
/// `admin-key` would otherwise have the admin's key copied into its kubeconfig and bundle. The
/// steps that read a kubelet's files by its hostname (`kubeconfig`, `bundles`) call it first.
pub fn check_names(context: &Context) -> Result<(), ContextError> {
    certificates(context).map(drop)
}

/// Adds a cfssl request to the set, unless its name is taken (by a CA, a built-in or a
/// node's certificate) or anything in it is malformed.
pub fn add_custom(set: &mut Vec<CertSpec>, custom: &CustomCert) -> Result<(), PkiError> {
    let spec = crate::cfssl::spec(custom)?;
    add(set, spec).map_err(|e| PkiError::Input(format!("{e}; rename the CSR file (`<name>-csr.json`)")))
}

/// Adds a certificate whose name comes from outside the code (proven plain by the caller).
fn add(set: &mut Vec<CertSpec>, spec: CertSpec) -> Result<(), PkiError> {
    let taken_by_ca = Authority::ALL.iter().map(|a| a.file()).find(|ca| names::collide(&spec.name, ca));
    if let Some(ca) = taken_by_ca {
        return Err(PkiError::Input(format!("`{}` would overwrite the {ca} CA's files", spec.name)));
    }
    if let Some(other) = set.iter().find(|c| names::collide(&spec.name, &c.name)) {
        return Err(PkiError::Input(format!(
            "`{}` would overwrite the files of the certificate `{}`",
            spec.name, other.name
        )));
    }
    set.push(spec);
    Ok(())
}

fn built_in(context: &Context) -> Result<Vec<CertSpec>, ContextError> {
    let compute = need(&context.compute, Section::Compute)?;
    let nlb = need(&context.nlb, Section::Nlb)?;
    // A load balancer a plan would create has no name yet to check (and a plan writes nothing).
    if let Some(name) = nlb.dns_name.known() {
        names::dns(name).map_err(|e| ContextError::field("nlb.dns_name", e.to_string()))?;
    }
    compute.check_names(&context.cluster.name)?;
    for (i, node) in compute.nodes.iter().enumerate() {
        names::dns(&node.private_dns)
            .map_err(|e| ContextError::field(format!("compute.nodes[{i}].private_dns"), e.to_string()))?;
    }
    let service_ip = context
        .params
        .service_cidr
        .hosts()
        .next()
        .ok_or_else(|| ContextError::field("params.service_cidr", "has no host address for the API service"))?;
    let loopback: IpAddr = "127.0.0.1".parse().expect("literal IP");
    let masters: Vec<_> = compute.masters().collect();

    let mut infra_dns = vec![nlb.dns_name.to_string()];
    infra_dns.extend(masters.iter().flat_map(|m| [m.hostname.clone(), m.private_dns.clone()]));
    let infra_ips: Vec<IpAddr> = masters.iter().map(|m| IpAddr::V4(m.private_ip)).collect();
    let mut api_dns: Vec<String> = vec!["localhost".into()];
    api_dns.extend(infra_dns.iter().cloned());
    api_dns.extend(API_NAMES.iter().map(|s| s.to_string()));
    let mut api_ips = vec![loopback, IpAddr::V4(service_ip)];
    api_ips.extend(infra_ips.iter().copied());

    let k = Authority::Kubernetes;
    let mut set = vec![
        CertSpec::new("master-kubernetes", k, "kubernetes", Some(&context.params.pki.subject.organization), SERVER)
            .with_sans(api_dns, api_ips)
            .following(&infra_dns, &infra_ips),
        CertSpec::new("kube-scheduler", k, "system:kube-scheduler", Some("system:kube-scheduler"), CLIENT),
        CertSpec::new(
            "kube-controller-manager",
            k,
            "system:kube-controller-manager",
            Some("system:kube-controller-manager"),
            CLIENT,
        ),
        CertSpec::new("kube-proxy", k, "system:kube-proxy", Some("system:node-proxier"), CLIENT),
        CertSpec::new("admin", k, "admin", Some("system:masters"), CLIENT),
        CertSpec::new("service-account", k, "service-accounts", Some("Kubernetes"), CLIENT),
        CertSpec::new("apiserver-kubelet-client", k, "kube-apiserver-kubelet-client", Some("system:masters"), CLIENT),
        CertSpec::new("apiserver-etcd-client", Authority::Etcd, "kube-apiserver-etcd-client", None, CLIENT),
        CertSpec::new("etcd-healthcheck-client", Authority::Etcd, "kube-etcd-healthcheck-client", None, CLIENT),
        CertSpec::new("front-proxy-client", Authority::FrontProxy, "front-proxy-client", None, CLIENT),
    ];
    let kubeadm = context.params.pki.layout == Layout::Kubeadm;
    if kubeadm {
        // kubeadm's admin.conf (an RBAC group, revocable, as since kubeadm 1.29) and
        // super-admin.conf (system:masters, the break-glass credential).
        set.push(CertSpec::new(KUBEADM_ADMIN, k, KUBEADM_ADMIN, Some("kubeadm:cluster-admins"), CLIENT));
        set.push(CertSpec::new(KUBEADM_SUPER_ADMIN, k, KUBEADM_SUPER_ADMIN, Some("system:masters"), CLIENT));
    }
    let field = |i: usize, what: &str| format!("compute.nodes[{i}].{what}");
    // The masters' etcd certificates first: a hostname that takes one of their names is then
    // blamed on its own node.
    for (i, node) in compute.nodes.iter().enumerate().filter(|(_, n)| n.role == Role::Master) {
        let dns = vec![node.hostname.clone(), "localhost".to_string()];
        let ips = vec![IpAddr::V4(node.private_ip), loopback, "::1".parse().expect("literal IP")];
        for role in ["etcd-server", "etcd-peer"] {
            let etcd = CertSpec::new(format!("{role}-{}", node.hostname), Authority::Etcd, &node.hostname, None, BOTH)
                .with_sans(dns.clone(), ips.clone())
                .following(&dns[..1], &ips[..1]);
            add(&mut set, etcd).map_err(|e| ContextError::field(field(i, "hostname"), e.to_string()))?;
        }
    }
    // Every node runs a kubelet: the masters too (their control plane runs as static pods),
    // registered with the control-plane taint.
    for (i, node) in compute.nodes.iter().enumerate() {
        let mut ips = vec![IpAddr::V4(node.private_ip)];
        ips.extend(node.public_ip.map(IpAddr::V4));
        let dns = vec![node.hostname.clone(), node.private_dns.clone()];
        // Named after the host, as its CN, its kubeconfig and its bundle are: one name per node.
        let kubelet =
            CertSpec::new(&node.hostname, k, format!("system:node:{}", node.hostname), Some("system:nodes"), BOTH)
                .following(&dns, &ips)
                .with_sans(dns, ips);
        add(&mut set, kubelet).map_err(|e| ContextError::field(field(i, "hostname"), e.to_string()))?;
    }
    Ok(set)
}

/// What users of the course get wrong, as readable problems.
pub fn lint(spec: &CertSpec) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, value) in [("CN", Some(&spec.common_name)), ("O", spec.organization.as_ref())] {
        if value.is_some_and(|v| v.contains("system:system:")) {
            problems.push(format!("{what} has a doubled `system:system:` prefix"));
        }
    }
    if spec.organization.as_deref() == Some("system:nodes") {
        let node = spec.common_name.strip_prefix("system:node:");
        if node.is_none_or(|n| !spec.dns.iter().any(|d| d == n)) {
            problems.push(format!("kubelet CN `{}` does not match the node's name among its SANs", spec.common_name));
        }
    }
    let is_api_server = spec.dns.iter().any(|d| d == "kubernetes");
    if is_api_server && !spec.dns.iter().any(|d| d == "kubernetes.default.svc.cluster.local") {
        problems.push("API server certificate lacks kubernetes.default.svc.cluster.local".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Context {
        let text = include_str!("../../../contracts/examples/03-infra.json");
        Context::from_json(text).unwrap()
    }

    fn find<'a>(set: &'a [CertSpec], name: &str) -> &'a CertSpec {
        set.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn the_api_server_certificate_covers_every_way_to_reach_it() {
        let set = certificates(&example()).unwrap();
        let api = find(&set, "master-kubernetes");
        assert_eq!(api.common_name, "kubernetes");
        assert_eq!(api.usage, SERVER);
        let sans = api.sans();
        for expected in [
            "IP:127.0.0.1",
            "IP:10.32.0.1",
            "IP:172.31.0.10",
            "IP:172.31.0.12",
            "DNS:localhost",
            "DNS:ip-172-31-0-11",
            "DNS:ip-172-31-0-11.us-east-2.compute.internal",
            "DNS:k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com",
            "DNS:kubernetes.default.svc.cluster.local",
        ] {
            assert!(sans.contains(&expected.to_string()), "{expected} missing from {sans:?}");
        }
        assert_eq!(sans.len(), 5 + 2 + 6 + 2 + 3);
        assert!(lint(api).is_empty());
    }

    #[test]
    fn one_kubelet_certificate_per_worker_named_after_its_host() {
        let set = certificates(&example()).unwrap();
        let kubelet = find(&set, "ip-172-31-0-21");
        assert_eq!(kubelet.common_name, "system:node:ip-172-31-0-21");
        assert_eq!(kubelet.organization.as_deref(), Some("system:nodes"));
        assert_eq!(kubelet.usage, BOTH);
        assert_eq!(
            kubelet.sans(),
            ["DNS:ip-172-31-0-21", "DNS:ip-172-31-0-21.us-east-2.compute.internal", "IP:172.31.0.21", "IP:3.15.20.101"]
        );
        assert!(lint(kubelet).is_empty());
    }

    #[test]
    fn only_the_sans_the_infrastructure_decides_follow_it() {
        let set = certificates(&example()).unwrap();
        let api = &find(&set, "master-kubernetes").infrastructure_sans;
        assert!(api.contains(&"DNS:k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com".to_string()));
        assert!(api.contains(&"IP:172.31.0.11".to_string()) && api.contains(&"DNS:ip-172-31-0-12".to_string()));
        assert_eq!(api.len(), 1 + 3 * 3, "{api:?}");
        for fixed in ["DNS:localhost", "IP:127.0.0.1", "IP:10.32.0.1", "DNS:kubernetes.default.svc.cluster.local"] {
            assert!(!api.contains(&fixed.to_string()), "{fixed} is not the infrastructure's");
        }
        assert_eq!(find(&set, "ip-172-31-0-21").infrastructure_sans, find(&set, "ip-172-31-0-21").sans());
        let etcd = &find(&set, "etcd-peer-ip-172-31-0-10").infrastructure_sans;
        assert_eq!(etcd, &["DNS:ip-172-31-0-10", "IP:172.31.0.10"]);
        assert!(find(&set, "admin").infrastructure_sans.is_empty());
    }

    #[test]
    fn the_set_is_the_course_plus_kubeadm() {
        let set = certificates(&example()).unwrap();
        // The course's 10, a kubelet per node (masters run one too), an etcd server and peer per master.
        assert_eq!(set.len(), 10 + 6 + 2 * 3);
        assert_eq!(find(&set, "kube-proxy").organization.as_deref(), Some("system:node-proxier"));
        assert_eq!(find(&set, "admin").organization.as_deref(), Some("system:masters"));
        assert_eq!(find(&set, "apiserver-etcd-client").signer, Authority::Etcd);
        assert_eq!(find(&set, "front-proxy-client").signer, Authority::FrontProxy);
        let etcd = find(&set, "etcd-server-ip-172-31-0-10");
        assert_eq!(etcd.signer, Authority::Etcd);
        assert_eq!(etcd.sans(), ["DNS:ip-172-31-0-10", "DNS:localhost", "IP:127.0.0.1", "IP:172.31.0.10", "IP:::1"]);
    }

    #[test]
    fn the_kubeadm_layout_adds_its_admins() {
        let mut context = example();
        context.params.pki.layout = Layout::Kubeadm;
        let set = certificates(&context).unwrap();
        assert_eq!(set.len(), 22 + 2);
        let admin = find(&set, KUBEADM_ADMIN);
        assert_eq!(
            (admin.common_name.as_str(), admin.organization.as_deref()),
            (KUBEADM_ADMIN, Some("kubeadm:cluster-admins"))
        );
        let super_admin = find(&set, KUBEADM_SUPER_ADMIN);
        assert_eq!(super_admin.organization.as_deref(), Some("system:masters"));
        let master = context.compute.as_ref().unwrap().masters().next().unwrap();
        let kubelet = find(&set, &master.hostname);
        assert_eq!(kubelet.common_name, format!("system:node:{}", master.hostname));
        assert_eq!(kubelet.organization.as_deref(), Some("system:nodes"));
        assert!(lint(kubelet).is_empty());
    }

    #[test]
    fn lint_catches_the_course_mistakes() {
        let set = certificates(&example()).unwrap();
        let mut doubled = find(&set, "kube-scheduler").clone();
        doubled.common_name = "system:system:kube-scheduler".into();
        assert!(lint(&doubled)[0].contains("system:system:"));
        let mut kubelet = find(&set, "ip-172-31-0-20").clone();
        kubelet.common_name = "system:node:k8s-cluster-worker-0".into();
        assert!(lint(&kubelet)[0].contains("does not match"));
        let mut api = find(&set, "master-kubernetes").clone();
        api.dns.retain(|d| d != "kubernetes.default.svc.cluster.local");
        api.dns.push("kubernetes.svc.cluster.local".into());
        assert!(lint(&api)[0].contains("kubernetes.default.svc.cluster.local"));
    }

    #[test]
    fn missing_infrastructure_names_the_step_to_run() {
        let mut context = example();
        context.compute = None;
        assert!(certificates(&context).unwrap_err().to_string().contains("groundup-compute"));
    }

    /// A node's hostname names its kubelet's files: two nodes never share one, and none takes
    /// a CA's, a course certificate's or a master's etcd certificate's files (`x-key` would be
    /// `x`'s key), so a kubeconfig or a bundle made for a node never holds another's key.
    #[test]
    fn a_hostname_is_a_plain_name_no_other_node_or_certificate_uses() {
        let hostname = |i: usize, value: &str| {
            let mut context = example();
            context.compute.as_mut().unwrap().nodes[i].hostname = value.into();
            context
        };
        for (i, taken) in [
            (4, "ip-172-31-0-20"),
            (4, "ip-172-31-0-20-key"),
            (3, "ip-172-31-0-10-key"),
            (3, "ca"),
            (3, "etcd-ca-key"),
            (3, "front-proxy-ca"),
            (3, "admin"),
            (3, "admin-key"),
            (3, "master-kubernetes"),
            (3, "service-account-key"),
            (3, "etcd-peer-ip-172-31-0-10"),
            (0, "etcd-server-ip-172-31-0-11"),
        ] {
            let error = certificates(&hostname(i, taken)).unwrap_err();
            assert!(error.to_string().contains(&format!("compute.nodes[{i}].hostname")), "{taken}: {error}");
            assert_eq!(check_names(&hostname(i, taken)).unwrap_err().to_string(), error.to_string(), "{taken}");
        }
        for path in ["../../x/evil", "x/evil", ".hidden", "ip_172", "ip-172-31-0-20.internal", ""] {
            let error = check_names(&hostname(3, path)).unwrap_err().to_string();
            assert!(error.contains("compute.nodes[3].hostname"), "{path:?}: {error}");
        }
        assert!(check_names(&hostname(3, "ip-172-31-0-99")).is_ok());
        let mut context = example();
        context.compute.as_mut().unwrap().nodes[3].name = "ca".into();
        let error = certificates(&context).unwrap_err().to_string();
        assert!(error.contains("compute.nodes[3].name") && error.contains("k8s-cluster-worker-0"), "{error}");
    }

    #[test]
    fn a_custom_certificate_takes_no_name_of_a_ca_a_certificate_or_a_node() {
        let mut context = example();
        let custom = |name: &str| CustomCert {
            name: name.into(),
            csr: serde_json::from_str(r#"{"CN":"x"}"#).unwrap(),
            usages: vec!["client auth".into()],
            expiry_hours: None,
        };
        for name in ["ca-key", "etcd-peer-ip-172-31-0-10", "ip-172-31-0-20", "ip-172-31-0-20-key", "../../x/evil"] {
            context.params.pki.custom = vec![custom(name)];
            let error = certificates(&context).unwrap_err().to_string();
            assert!(error.contains("params.pki.custom[0]"), "{name}: {error}");
        }
        context.params.pki.custom = vec![custom("dashboard")];
        assert_eq!(certificates(&context).unwrap().len(), 22 + 1);
    }

    #[test]
    fn a_planned_load_balancer_has_no_name_to_check_and_a_known_one_is_checked() {
        let mut context = example();
        context.nlb.as_mut().unwrap().dns_name = groundup_contracts::Ref::Known("bad name".into());
        assert!(certificates(&context).unwrap_err().to_string().contains("nlb.dns_name"));
        context.nlb.as_mut().unwrap().dns_name = groundup_contracts::Ref::Planned("nlb".into());
        assert!(certificates(&context).is_ok());
    }
}
