//! `groundup-graph` (`groundup graph`): the cluster drawn from the state file alone (no API
//! call), grouped the way the course draws it (VPC contains subnet contains nodes), with the
//! PKI's trust tree beside it, each certificate checked against its file on disk, and the files
//! made of the certificates: each kubeconfig linked from the certificate it embeds, each node
//! bundle from the kubeconfigs and the encryption config it holds (as `groundup-bundles` lays
//! them out). One model, two renderers: Graphviz DOT and Mermaid.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use groundup_contracts::infra::Role;
use groundup_contracts::pki::CertRecord;
use groundup_contracts::x509::CertTime;
use groundup_contracts::Context;
use groundup_pki::bundle::{contents, Source};
use groundup_pki::kubeconfig::kubeconfigs;
use groundup_pki::store::fingerprint;
use groundup_runtime::state;

#[derive(Args, Debug)]
struct GraphArgs {
    /// The state file to draw; nothing else is read but the certificates it names, each
    /// checked against its recorded fingerprint (no API call)
    #[arg(long, visible_alias = "context", value_name = "FILE", default_value = state::DEFAULT_STATE)]
    state: PathBuf,
    /// The language of the drawing printed on stdout
    #[arg(long, value_enum, default_value = "dot")]
    format: Format,
    /// Render to an SVG file with Graphviz's `dot` instead of printing; hovering a shortened
    /// ARN shows it in full
    #[arg(long, value_name = "FILE", conflicts_with = "format")]
    svg: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Graphviz DOT, for `dot -Tsvg` or `-Tpng`; full ARNs are tooltips
    Dot,
    /// Mermaid flowchart, which code hosts render inline in Markdown
    Mermaid,
}

fn main() -> ExitCode {
    groundup_runtime::tool::run_tool("graph", |args: GraphArgs| run(&args).map(|()| ExitCode::SUCCESS))
}

fn run(args: &GraphArgs) -> Result<()> {
    let context = state::load_existing(&args.state, None)?;
    let found = on_disk(&context, groundup_runtime::files::home_of(&args.state));
    let graph = Graph::of(&context, &found, now());
    match &args.svg {
        Some(file) => render_svg(&graph.dot(), file),
        None => {
            let text = match args.format {
                Format::Dot => graph.dot(),
                Format::Mermaid => graph.mermaid(),
            };
            Ok(groundup_runtime::output::print(&text)?)
        }
    }
}

fn render_svg(dot: &str, file: &Path) -> Result<()> {
    let spawned = Command::new("dot").arg("-Tsvg").arg("-o").arg(file).stdin(Stdio::piped()).spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--svg needs Graphviz's `dot`, which is not installed; install it (Debian/Ubuntu: `apt-get install graphviz`) or print DOT with `groundup graph > cluster.dot`"
        ),
        Err(e) => return Err(e).context("cannot run Graphviz's `dot`"),
    };
    child.stdin.take().expect("piped").write_all(dot.as_bytes()).context("cannot feed `dot`")?;
    if !child.wait()?.success() {
        bail!("Graphviz's `dot` could not render {}", file.display());
    }
    eprintln!("groundup: wrote {}", file.display());
    Ok(())
}

/// What is wrong with each recorded certificate's file, checked now and locally (no API call):
/// missing, unreadable, or not the certificate the context records (by SHA-256).
fn on_disk(context: &Context, home: &Path) -> HashMap<String, String> {
    let authorities = context.ca.iter().flat_map(|ca| &ca.authorities);
    let certificates = context.certs.iter().flat_map(|certs| &certs.certificates);
    authorities
        .chain(certificates)
        .filter_map(|record| {
            let problem = match std::fs::read(home.join(&record.cert_path)) {
                Err(_) => "its file is missing",
                Ok(pem) => match openssl::x509::X509::from_pem(&pem) {
                    Err(_) => "its file is not a certificate",
                    Ok(cert) if fingerprint(&cert) != record.sha256 => "its file is not the recorded certificate",
                    Ok(_) => return None,
                },
            };
            Some((record.name.clone(), problem.to_string()))
        })
        .collect()
}

fn now() -> CertTime {
    CertTime::from_unix(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64))
}

/// The encryption config's node, in the PKI's group.
const ENCRYPTION: &str = "encryption-config";

#[derive(Debug, Default)]
struct Group {
    id: String,
    label: String,
    nodes: Vec<Node>,
    groups: Vec<Group>,
}

#[derive(Debug)]
struct Node {
    id: String,
    lines: Vec<String>,
    /// Shown on hover (an SVG title): what the lines shorten, such as a full ARN.
    tooltip: Option<String>,
    /// Drawn in red: a certificate that expires within `params.pki.renew_within_days` (what
    /// `up --renew` would renew), or whose file is not the one recorded.
    marked: bool,
}

#[derive(Debug)]
struct Edge {
    from: String,
    to: String,
    label: String,
}

#[derive(Debug, Default)]
struct Graph {
    groups: Vec<Group>,
    edges: Vec<Edge>,
}

impl Group {
    fn new(id: &str, label: String) -> Group {
        Group { id: id.into(), label, ..Group::default() }
    }

    fn node(&mut self, id: &str, lines: Vec<String>) {
        self.nodes.push(Node { id: id.into(), lines, tooltip: None, marked: false });
    }

    /// A node for a resource whose ARN its lines shorten (see [`short_arn`]): the full ARN is its tooltip.
    fn node_with_arn(&mut self, id: &str, lines: Vec<String>, arn: &str) {
        self.nodes.push(Node { id: id.into(), lines, tooltip: Some(arn.into()), marked: false });
    }

    fn has_node(&self, id: &str) -> bool {
        self.nodes.iter().any(|n| n.id == id) || self.groups.iter().any(|g| g.has_node(id))
    }

    fn find(&self, id: &str) -> Option<&Group> {
        match self.id == id {
            true => Some(self),
            false => self.groups.iter().find_map(|g| g.find(id)),
        }
    }

    /// The first node drawn inside the group, where an edge to the group ends.
    fn first_node(&self) -> Option<&str> {
        self.nodes.first().map(|n| n.id.as_str()).or_else(|| self.groups.iter().find_map(Group::first_node))
    }
}

/// The last part of an ARN (`…/50dc6c495c0c9188` of a load balancer's): the rest is the same for
/// every resource of the cluster, and is in the node's tooltip.
fn short_arn(arn: &str) -> String {
    match arn.rsplit_once('/').or_else(|| arn.rsplit_once(':')) {
        Some((_, last)) => format!("…/{last}"),
        None => arn.to_string(),
    }
}

impl Graph {
    fn of(context: &Context, found: &HashMap<String, String>, now: CertTime) -> Graph {
        let mut graph = Graph::default();
        graph.network(context);
        graph.pki(context, found, now);
        graph.files(context);
        graph
    }

    fn find(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find_map(|g| g.find(id))
    }

    fn has_node(&self, id: &str) -> bool {
        self.groups.iter().any(|g| g.has_node(id))
    }

    fn edge(&mut self, from: &str, to: &str, label: &str) {
        self.edges.push(Edge { from: from.into(), to: to.into(), label: label.into() });
    }

    fn network(&mut self, context: &Context) {
        let Some(vpc) = &context.vpc else { return };
        let mut region =
            Group::new("region", format!("AWS {} (cluster {})", context.cluster.region, context.cluster.name));
        let mut inside = Group::new("vpc", format!("VPC {} {}", vpc.id, vpc.cidr));
        if let Some(dhcp) = &context.dhcp {
            inside.node("dhcp", vec![format!("DHCP options {}", dhcp.id), dhcp.domain_name.clone()]);
        }
        if let Some(igw) = &context.igw {
            region.node("igw", vec![format!("internet gateway {}", igw.id)]);
            self.edge("igw", "vpc", "attached");
        }
        for group in context.sg.iter().flat_map(|sg| &sg.groups) {
            let mut lines = vec![format!("security group {}", group.id), group.name.clone()];
            lines.extend(group.ingress.iter().map(|rule| format!("in: {rule}")));
            inside.node(group.role.logical(), lines);
        }
        if let Some(routes) = &context.routes {
            inside.node("routes", vec![format!("route table {}", routes.route_table_id)]);
            if context.igw.is_some() {
                self.edge("routes", "igw", &routes.default_route.to_string());
            }
            if context.subnet.is_some() {
                self.edge("routes", "subnet", "associated");
            }
        }
        if let Some(nlb) = &context.nlb {
            let arn = nlb.arn.to_string();
            inside.node_with_arn(
                "nlb",
                vec!["network load balancer".into(), nlb.dns_name.to_string(), short_arn(&arn)],
                &arn,
            );
            let arn = nlb.listener_arn.to_string();
            inside.node_with_arn(
                "listener",
                vec![format!("listener TCP {}", context.params.ports.api), short_arn(&arn)],
                &arn,
            );
            let arn = nlb.target_group_arn.to_string();
            inside.node_with_arn("target-group", vec!["target group".into(), short_arn(&arn)], &arn);
            self.edge("nlb", "listener", "");
            self.edge("listener", "target-group", "forwards");
        }
        // The subnet is drawn once: around its instances, or as a node while it has none.
        let instances = context.compute.iter().flat_map(|compute| &compute.nodes);
        let mut subnet_group = None;
        if let Some(subnet) = &context.subnet {
            let label = format!("subnet {} {} ({})", subnet.id, subnet.cidr, subnet.availability_zone);
            let mut group = Group::new("subnet", label.clone());
            for node in instances {
                let role = match node.role {
                    Role::Master => "master",
                    Role::Worker => "worker",
                };
                let mut lines = vec![
                    format!("{} ({role})", node.name),
                    node.instance_id.to_string(),
                    format!("private {}", node.private_ip),
                ];
                lines.extend(node.public_ip.map(|ip| format!("public {ip}")));
                lines.extend(node.pod_cidr.map(|cidr| format!("pods {cidr}")));
                let id = format!("node-{}", node.name);
                group.node(&id, lines);
                let targeted = context.nlb.as_ref().is_some_and(|nlb| nlb.targets.contains(&node.private_ip));
                if targeted {
                    self.edge("target-group", &id, &context.params.ports.api.to_string());
                }
                if let Some(group) = context.sg.as_ref().and_then(|sg| sg.group_of(node.role)) {
                    self.edge(group.role.logical(), &id, "");
                }
            }
            match group.nodes.is_empty() {
                true => inside.node("subnet", vec![label]),
                false => subnet_group = Some(group),
            }
        }
        // A key pair belongs to the region, not to a subnet.
        if let Some(compute) = &context.compute {
            region.node(
                "key-pair",
                vec![format!("key pair {}", compute.key_pair.name), compute.key_pair.fingerprint.clone()],
            );
        }
        inside.groups.extend(subnet_group);
        region.groups.push(inside);
        self.groups.push(region);
    }

    fn pki(&mut self, context: &Context, found: &HashMap<String, String>, now: CertTime) {
        // The CAs, then the certificates, each by name: the same state draws the same picture.
        let mut authorities: Vec<&CertRecord> = context.ca.iter().flat_map(|ca| &ca.authorities).collect();
        let mut certificates: Vec<&CertRecord> = context.certs.iter().flat_map(|certs| &certs.certificates).collect();
        authorities.sort_by(|a, b| a.name.cmp(&b.name));
        certificates.sort_by(|a, b| a.name.cmp(&b.name));
        let mut group = Group::new("pki", format!("PKI ({})", context.params.pki.dir));
        for record in authorities.into_iter().chain(certificates) {
            let id = format!("cert-{}", record.name);
            let (mut lines, mut marked) = certificate(record, now, context.params.pki.renew_within_days);
            if let Some(problem) = found.get(&record.name) {
                lines.push(format!("WRONG: {problem}"));
                marked = true;
            }
            group.nodes.push(Node { id: id.clone(), lines, tooltip: None, marked });
            if record.signer != record.name {
                self.edge(&format!("cert-{}", record.signer), &id, "");
            }
        }
        if let Some(encryption) = &context.encryption {
            let mut lines = vec!["encryption config".to_string(), encryption.path.clone()];
            lines.extend(encryption.providers.iter().map(|provider| {
                let keys: Vec<&str> = provider.keys.iter().map(|key| key.name.as_str()).collect();
                format!("{}: {}", provider.provider, keys.join(", "))
            }));
            group.node(ENCRYPTION, lines);
        }
        if !group.nodes.is_empty() {
            self.groups.push(group);
        }
    }

    /// The kubeconfigs, each linked from the certificate it embeds, and the node bundles, each
    /// linked from the kubeconfigs and the encryption config it holds: what `groundup-kubeconfig`
    /// and `groundup-bundles` make of the context, so the links are theirs.
    fn files(&mut self, context: &Context) {
        let Some(compute) = &context.compute else { return };
        let Ok(specs) = kubeconfigs(context) else { return };
        let kubeconfig_dir = Path::new(&context.params.kubeconfig_dir);
        let mut drawn = Group::new("kubeconfigs", format!("kubeconfigs ({})", context.params.kubeconfig_dir));
        let recorded = context.kubeconfig.iter().flat_map(|k| &k.files);
        let mut sources = HashMap::new();
        for record in recorded {
            let Some(spec) = specs.iter().find(|spec| kubeconfig_dir.join(&spec.file) == Path::new(&record.path))
            else {
                continue;
            };
            let id = format!("kubeconfig-{}", spec.file);
            drawn.node(&id, vec![spec.file.clone(), format!("user {}", record.user), record.server.clone()]);
            let certificate = format!("cert-{}", spec.certificate);
            if self.has_node(&certificate) {
                self.edge(&certificate, &id, "");
            }
            sources.insert(PathBuf::from(&record.path), id);
        }
        if let Some(encryption) = &context.encryption {
            sources.insert(PathBuf::from(&encryption.path), ENCRYPTION.to_string());
        }
        let mut bundles = Group::new("bundles", format!("node bundles ({})", context.params.nodes_dir));
        for record in context.bundles.iter().flat_map(|b| &b.nodes) {
            let Some(node) = compute.nodes.iter().find(|n| n.hostname == record.hostname) else { continue };
            let id = format!("bundle-{}", record.hostname);
            bundles.node(&id, vec![record.dir.clone(), format!("{} files", record.files), record.archive.clone()]);
            for file in contents(context, node) {
                let Source::File(path) = &file.source else { continue };
                if let Some(source) = sources.get(path) {
                    self.edge(source, &id, "");
                }
            }
        }
        self.groups.extend([drawn, bundles].into_iter().filter(|g| !g.nodes.is_empty()));
    }

    fn dot(&self) -> String {
        let mut out = String::from("digraph groundup {\n  graph [rankdir=LR, compound=true, fontname=\"Helvetica\", fontsize=11];\n  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
        for group in &self.groups {
            dot_group(&mut out, group, 1);
        }
        for edge in &self.edges {
            // An edge to a group ends at its border (Graphviz's `lhead`), drawn to a node inside.
            let (to, head) = match self.find(&edge.to) {
                Some(group) => (
                    group.first_node().unwrap_or_default(),
                    format!(", lhead={}", dot_quote(&format!("cluster_{}", group.id))),
                ),
                None => (edge.to.as_str(), String::new()),
            };
            out.push_str(&format!(
                "  {} -> {} [label={}{head}];\n",
                dot_quote(&edge.from),
                dot_quote(to),
                dot_quote(&edge.label)
            ));
        }
        out.push_str("}\n");
        out
    }

    fn mermaid(&self) -> String {
        let mut ids = Vec::new();
        let mut out = String::from("flowchart LR\n");
        for group in &self.groups {
            mermaid_group(&mut out, group, 1, &mut ids);
        }
        // A node by its number, a group by its subgraph's id.
        let number = |id: &str| match self.find(id) {
            Some(group) => Some(mermaid_id(group)),
            None => ids.iter().position(|known| known == id).map(|i| format!("n{i}")),
        };
        for edge in &self.edges {
            let (Some(from), Some(to)) = (number(&edge.from), number(&edge.to)) else { continue };
            match edge.label.as_str() {
                "" => out.push_str(&format!("  {from} --> {to}\n")),
                label => out.push_str(&format!("  {from} -->|{}| {to}\n", mermaid_text(label))),
            }
        }
        out.push_str("  classDef marked stroke:#c00,stroke-width:3px,color:#c00\n");
        out
    }
}

/// The certificate's lines (name, CN and O, expiry) and whether it expires within
/// `renew_within_days` days of `now`.
fn certificate(record: &CertRecord, now: CertTime, renew_within_days: u32) -> (Vec<String>, bool) {
    let mut lines = vec![record.name.clone(), format!("CN={}", record.subject.get("CN").unwrap_or_default())];
    lines.extend(record.subject.get("O").map(|o| format!("O={o}")));
    let expiring = record.not_after.within_days(now, renew_within_days);
    lines.push(format!("{} {}", if expiring { "EXPIRES" } else { "until" }, record.not_after));
    (lines, expiring)
}

fn dot_group(out: &mut String, group: &Group, depth: usize) {
    let pad = "  ".repeat(depth);
    out.push_str(&format!(
        "{pad}subgraph {} {{\n{pad}  label={};\n",
        dot_quote(&format!("cluster_{}", group.id)),
        dot_quote(&group.label)
    ));
    for node in &group.nodes {
        let style = if node.marked { ", color=red, fontcolor=red, penwidth=2" } else { "" };
        let tooltip = node.tooltip.as_deref().map(|t| format!(", tooltip={}", dot_quote(t))).unwrap_or_default();
        out.push_str(&format!(
            "{pad}  {} [label={}{tooltip}{style}];\n",
            dot_quote(&node.id),
            dot_quote(&node.lines.join("\n"))
        ));
    }
    for inner in &group.groups {
        dot_group(out, inner, depth + 1);
    }
    out.push_str(&format!("{pad}}}\n"));
}

fn dot_quote(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// Mermaid node ids must be plain words: nodes are numbered in the order they are declared.
fn mermaid_group(out: &mut String, group: &Group, depth: usize, ids: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    out.push_str(&format!("{pad}subgraph {}[\"{}\"]\n", mermaid_id(group), mermaid_text(&group.label)));
    for node in &group.nodes {
        let id = format!("n{}", ids.len());
        ids.push(node.id.clone());
        let lines: Vec<String> = node.lines.iter().map(|l| mermaid_text(l)).collect();
        let class = if node.marked { ":::marked" } else { "" };
        out.push_str(&format!("{pad}  {id}[\"{}\"]{class}\n", lines.join("<br/>")));
    }
    for inner in &group.groups {
        mermaid_group(out, inner, depth + 1, ids);
    }
    out.push_str(&format!("{pad}end\n"));
}

fn mermaid_id(group: &Group) -> String {
    group.id.replace('-', "_")
}

/// Mermaid's entity codes for what would end a label or start markup.
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;").replace('|', "#124;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infra() -> Context {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/examples/03-infra.json"))
                .unwrap();
        Context::from_json(&text).unwrap()
    }

    #[test]
    fn certificates_expiring_within_the_renewal_window_are_marked() {
        let record = |not_after: &str| CertRecord {
            name: "admin".into(),
            signer: "ca".into(),
            cert_path: "pki/admin.pem".into(),
            key_path: "pki/admin-key.pem".into(),
            subject: serde_json::from_str(r#"[["C","UK"],["O","system:masters"],["CN","admin"]]"#).unwrap(),
            sans: Vec::new(),
            serial: "01".into(),
            sha256: "AA".into(),
            not_after: CertTime::parse(not_after).unwrap(),
        };
        let now = CertTime::parse("2026-11-25T00:00:00Z").unwrap();
        let (lines, marked) = certificate(&record("2026-12-20T00:00:00Z"), now, 30);
        assert!(marked && lines.contains(&"O=system:masters".to_string()) && lines.contains(&"CN=admin".to_string()));
        assert!(lines.contains(&"EXPIRES 2026-12-20T00:00:00Z".to_string()), "{lines:?}");
        assert!(!certificate(&record("2026-12-30T00:00:00Z"), now, 30).1);
        assert!(certificate(&record("2026-12-30T00:00:00Z"), now, 40).1, "the window is the params' own");
    }

    #[test]
    fn every_resource_of_the_context_is_drawn_inside_its_container() {
        let context = infra();
        let dot = Graph::of(&context, &HashMap::new(), CertTime::from_unix(0)).dot();
        let compute = context.compute.as_ref().unwrap();
        let nlb = context.nlb.as_ref().unwrap();
        let ids = [
            &context.vpc.as_ref().unwrap().id,
            &context.subnet.as_ref().unwrap().id,
            &context.igw.as_ref().unwrap().id,
            &context.sg.as_ref().unwrap().groups[0].id,
            &context.dhcp.as_ref().unwrap().id,
            &context.routes.as_ref().unwrap().route_table_id,
            &nlb.arn,
            &nlb.listener_arn,
            &nlb.target_group_arn,
        ];
        for id in ids.into_iter().chain(compute.nodes.iter().map(|n| &n.instance_id)) {
            assert!(dot.contains(&id.to_string()), "{id} is not drawn");
        }
        let vpc = dot.find("\"cluster_vpc\"").unwrap();
        let subnet = dot.find("\"cluster_subnet\"").unwrap();
        let first_node = dot.find(&format!("\"node-{}\"", compute.nodes[0].name)).unwrap();
        assert!(vpc < subnet && subnet < first_node, "VPC contains subnet contains nodes");
        let masters = compute.masters().count();
        assert_eq!(dot.matches("\"target-group\" -> ").count(), masters, "the NLB targets the masters only");
    }

    fn built() -> Context {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/examples/05-kubeadm.json"))
                .unwrap();
        Context::from_json(&text).unwrap()
    }

    fn edges(graph: &Graph) -> Vec<(&str, &str)> {
        graph.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect()
    }

    #[test]
    fn the_subnet_is_drawn_once_the_key_pair_outside_it_and_the_gateway_links_the_vpc_and_routes() {
        let context = infra();
        let graph = Graph::of(&context, &HashMap::new(), CertTime::from_unix(0));
        let dot = graph.dot();
        let subnet = context.subnet.as_ref().unwrap().id.to_string();
        assert_eq!(dot.matches(&subnet).count(), 1, "the subnet is drawn more than once:\n{dot}");
        assert!(!graph.find("subnet").unwrap().has_node("key-pair"), "the key pair is drawn inside the subnet");
        assert!(graph.find("region").unwrap().nodes.iter().any(|n| n.id == "key-pair"));
        assert!(edges(&graph).contains(&("igw", "vpc")) && edges(&graph).contains(&("routes", "igw")));
        let attached = dot.lines().find(|l| l.trim_start().starts_with("\"igw\" -> ")).unwrap();
        assert!(attached.contains("lhead=\"cluster_vpc\""), "{attached}");

        let mut without_instances = context.clone();
        without_instances.compute = None;
        let dot = Graph::of(&without_instances, &HashMap::new(), CertTime::from_unix(0)).dot();
        assert_eq!(dot.matches(&subnet).count(), 1, "a subnet without instances is not drawn:\n{dot}");
        assert!(dot.contains("\"routes\" -> \"subnet\""), "{dot}");
    }

    #[test]
    fn arns_are_shortened_to_their_last_part_with_the_full_arn_as_tooltip() {
        let context = infra();
        let dot = Graph::of(&context, &HashMap::new(), CertTime::from_unix(0)).dot();
        let nlb = context.nlb.as_ref().unwrap();
        for (id, arn) in [("nlb", &nlb.arn), ("listener", &nlb.listener_arn), ("target-group", &nlb.target_group_arn)] {
            let arn = arn.to_string();
            let line = dot.lines().find(|l| l.trim_start().starts_with(&format!("\"{id}\" ["))).unwrap();
            let (label, tooltip) = line.split_once(", tooltip=").unwrap();
            assert!(!label.contains(&arn) && label.contains(&short_arn(&arn)), "{line}");
            assert!(tooltip.starts_with(&format!("\"{arn}\"")), "{line}");
        }
        assert_eq!(short_arn("arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/k8s/73e2d6bc"), "…/73e2d6bc");
    }

    #[test]
    fn certificates_are_drawn_in_the_same_order_whatever_the_records_order() {
        let context = built();
        let mut reversed = context.clone();
        reversed.certs.as_mut().unwrap().certificates.reverse();
        reversed.ca.as_mut().unwrap().authorities.reverse();
        let draw = |context: &Context| Graph::of(context, &HashMap::new(), CertTime::from_unix(0)).dot();
        assert_eq!(draw(&context), draw(&reversed));
    }

    #[test]
    fn kubeconfigs_bundles_and_the_encryption_config_are_linked_to_what_they_hold() {
        let context = built();
        let graph = Graph::of(&context, &HashMap::new(), CertTime::from_unix(0));
        let edges = edges(&graph);
        let recorded = &context.kubeconfig.as_ref().unwrap().files;
        let kubeconfigs = graph.find("kubeconfigs").unwrap();
        assert_eq!(kubeconfigs.nodes.len(), recorded.len(), "every kubeconfig is drawn");
        for node in &kubeconfigs.nodes {
            assert_eq!(
                edges.iter().filter(|(from, to)| *to == node.id && from.starts_with("cert-")).count(),
                1,
                "{}",
                node.id
            );
        }
        assert!(edges.contains(&("cert-admin", "kubeconfig-admin.kubeconfig")));
        let compute = context.compute.as_ref().unwrap();
        assert!(compute.workers().all(|w| kubeconfigs.has_node(&format!("kubeconfig-{}.kubeconfig", w.hostname))));
        for node in &compute.nodes {
            let bundle = format!("bundle-{}", node.hostname);
            let kubelet = format!("kubeconfig-{}.kubeconfig", node.hostname);
            // The example predates the masters' kubelets: a kubelet's kubeconfig, where recorded.
            if kubeconfigs.has_node(&kubelet) {
                assert!(
                    edges.contains(&(format!("cert-{}", node.hostname).as_str(), kubelet.as_str())),
                    "{}",
                    node.name
                );
                assert!(
                    edges.contains(&(kubelet.as_str(), bundle.as_str())),
                    "{bundle} lacks its kubelet's kubeconfig"
                );
            }
            assert!(edges.contains(&("kubeconfig-kube-proxy.kubeconfig", bundle.as_str())), "{bundle}");
            let holds_key = edges.contains(&(ENCRYPTION, bundle.as_str()));
            assert_eq!(
                holds_key,
                node.role == Role::Master,
                "{bundle}: the encryption config goes to the masters only"
            );
        }
        assert!(!edges.iter().any(|(from, _)| *from == "kubeconfig-admin.kubeconfig"), "no node holds the admin's");
        let text = graph.mermaid();
        assert!(text.contains("kubeconfigs[") && text.contains("bundles["), "{text}");
    }

    #[test]
    fn mermaid_edges_name_declared_nodes_and_subgraphs_close() {
        let text = Graph::of(&infra(), &HashMap::new(), CertTime::from_unix(0)).mermaid();
        assert!(text.starts_with("flowchart LR\n"));
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().split_once("[\"").map(|(id, _)| id.trim_start_matches("subgraph ")))
            .collect();
        let edges: Vec<&str> = text.lines().filter(|l| l.contains("-->")).collect();
        assert!(!edges.is_empty());
        for edge in edges {
            let words: Vec<&str> = edge.split_whitespace().collect();
            let (from, to) = (words[0], words[words.len() - 1]);
            assert!(declared.contains(&from) && declared.contains(&to), "undeclared node in `{edge}`");
        }
        let opened = text.lines().filter(|l| l.trim_start().starts_with("subgraph ")).count();
        assert_eq!(opened, text.lines().filter(|l| l.trim() == "end").count());
    }
}
