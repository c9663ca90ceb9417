//! `groundup-graph` (`groundup graph`): the cluster drawn from the state file alone (no API
//! call), grouped the way the course draws it (VPC contains subnet contains nodes), with the
//! PKI's trust tree beside it, each certificate checked against its file on disk. One model, two
//! renderers: Graphviz DOT and Mermaid.

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
use groundup_pki::store::fingerprint;
use groundup_runtime::state;

#[derive(Args, Debug)]
struct GraphArgs {
    /// The state file to draw
    #[arg(long, visible_alias = "context", value_name = "FILE", default_value = state::DEFAULT_STATE)]
    state: PathBuf,
    /// What to print on stdout
    #[arg(long, value_enum, default_value = "dot")]
    format: Format,
    /// Render to an SVG file with Graphviz's `dot` instead of printing
    #[arg(long, value_name = "FILE", conflicts_with = "format")]
    svg: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Graphviz
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
        self.nodes.push(Node { id: id.into(), lines, marked: false });
    }
}

impl Graph {
    fn of(context: &Context, found: &HashMap<String, String>, now: CertTime) -> Graph {
        let mut graph = Graph::default();
        graph.network(context);
        graph.pki(context, found, now);
        graph
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
        }
        if let Some(sg) = &context.sg {
            let mut lines = vec![format!("security group {}", sg.id), sg.name.clone()];
            lines.extend(sg.ingress.iter().map(|rule| format!("in: {rule}")));
            inside.node("sg", lines);
        }
        let mut subnet_group = None;
        if let Some(subnet) = &context.subnet {
            let mut group =
                Group::new("subnet", format!("subnet {} {} ({})", subnet.id, subnet.cidr, subnet.availability_zone));
            group.node("subnet-id", vec![format!("subnet {}", subnet.id), subnet.cidr.to_string()]);
            subnet_group = Some(group);
        }
        if let Some(routes) = &context.routes {
            inside.node("routes", vec![format!("route table {}", routes.route_table_id)]);
            if context.igw.is_some() {
                self.edge("routes", "igw", &routes.default_route.to_string());
            }
            if subnet_group.is_some() {
                self.edge("routes", "subnet-id", "associated");
            }
        }
        if let Some(nlb) = &context.nlb {
            inside.node("nlb", vec!["network load balancer".into(), nlb.dns_name.to_string(), nlb.arn.to_string()]);
            inside.node(
                "listener",
                vec![format!("listener TCP {}", context.params.ports.api), nlb.listener_arn.to_string()],
            );
            inside.node("target-group", vec!["target group".into(), nlb.target_group_arn.to_string()]);
            self.edge("nlb", "listener", "");
            self.edge("listener", "target-group", "forwards");
        }
        if let (Some(compute), Some(group)) = (&context.compute, subnet_group.as_mut()) {
            for node in &compute.nodes {
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
                if context.sg.is_some() {
                    self.edge("sg", &id, "");
                }
            }
            group.node(
                "key-pair",
                vec![format!("key pair {}", compute.key_pair.name), compute.key_pair.fingerprint.clone()],
            );
        }
        inside.groups.extend(subnet_group);
        region.groups.push(inside);
        self.groups.push(region);
    }

    fn pki(&mut self, context: &Context, found: &HashMap<String, String>, now: CertTime) {
        let authorities = context.ca.iter().flat_map(|ca| &ca.authorities);
        let certificates = context.certs.iter().flat_map(|certs| &certs.certificates);
        let mut group = Group::new("pki", format!("PKI ({})", context.params.pki.dir));
        for record in authorities.chain(certificates) {
            let id = format!("cert-{}", record.name);
            let (mut lines, mut marked) = certificate(record, now, context.params.pki.renew_within_days);
            if let Some(problem) = found.get(&record.name) {
                lines.push(format!("WRONG: {problem}"));
                marked = true;
            }
            group.nodes.push(Node { id: id.clone(), lines, marked });
            if record.signer != record.name {
                self.edge(&format!("cert-{}", record.signer), &id, "");
            }
        }
        if !group.nodes.is_empty() {
            self.groups.push(group);
        }
    }

    fn dot(&self) -> String {
        let mut out = String::from("digraph groundup {\n  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11];\n  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
        for group in &self.groups {
            dot_group(&mut out, group, 1);
        }
        for edge in &self.edges {
            out.push_str(&format!(
                "  {} -> {} [label={}];\n",
                dot_quote(&edge.from),
                dot_quote(&edge.to),
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
        let number = |id: &str| ids.iter().position(|known| known == id).map(|i| format!("n{i}"));
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
        out.push_str(&format!(
            "{pad}  {} [label={}{style}];\n",
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
    out.push_str(&format!("{pad}subgraph {}[\"{}\"]\n", group.id.replace('-', "_"), mermaid_text(&group.label)));
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
            &context.sg.as_ref().unwrap().id,
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

    #[test]
    fn mermaid_edges_name_declared_nodes_and_subgraphs_close() {
        let text = Graph::of(&infra(), &HashMap::new(), CertTime::from_unix(0)).mermaid();
        assert!(text.starts_with("flowchart LR\n"));
        let declared: Vec<&str> = text.lines().filter_map(|l| l.trim().split_once("[\"").map(|(id, _)| id)).collect();
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
