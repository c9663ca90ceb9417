//! A fault-injecting HTTP proxy on loopback, between the steps and the emulator. A seeded
//! share of requests is answered with throttling errors or 500/503s without being forwarded
//! (so an injected fault never half-happens), or forwarded after a delay. It also keeps the
//! API action of every request, so that a test can check what a run sent.
//!
//! [`FaultProxy::slow`] plays real AWS's timing instead: a round trip added to every call, a
//! load balancer `provisioning` and instances `pending` for a while after they are created
//! (the emulator has them active and running at once). `latency-proxy` runs it for scripts.
//!
//! [`FaultProxy::holding_after`] is the crash of a test: it never returns the emulator's answer
//! to a chosen call, so that the test kills the caller right after the call was made
//! ([`kill_up_right_after`]). The shipped binaries carry no hook for it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use groundup_contracts::{Context, Target};

use crate::{endpoint, Rng, TestCluster};

pub struct FaultProxy {
    pub endpoint: String,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    forwarded: AtomicU64,
    faulted: AtomicU64,
    /// The action of every answer forwarded, in the order they went back, `(held)` added
    /// to those in which a state was rewritten to `provisioning` or `pending`.
    answers: Mutex<Vec<String>>,
    actions: Mutex<Vec<String>>,
    /// When each load balancer (by ARN) and instance (by id) was created through the proxy.
    created: Mutex<HashMap<String, Instant>>,
    /// The action whose first successful answer is held, until it is.
    hold_after: Mutex<Option<String>>,
    /// An answer is held: from then on nothing is forwarded, as if the caller had died.
    holding: AtomicBool,
}

/// Real AWS's timing, played by [`FaultProxy::slow`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Slow {
    /// Added to every request before it is forwarded: one round trip to a region.
    pub latency: Duration,
    /// How long a load balancer created through the proxy stays `provisioning`.
    pub provisioning: Duration,
    /// How long an instance launched through the proxy stays `pending`.
    pub pending: Duration,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://127.0.0.1:PORT` URL) that faults `rate` of
    /// the requests. It lives as long as the test process.
    pub fn start(upstream: &str, rate: f64, seed: u64) -> FaultProxy {
        FaultProxy::spawn(upstream, Behaviour { rate, without_elbv2: false, slow: Slow::default() }, seed)
    }

    /// A proxy that faults nothing and plays real AWS's timing (see [`Slow`]).
    pub fn slow(upstream: &str, slow: Slow) -> FaultProxy {
        FaultProxy::spawn(upstream, Behaviour { rate: 0.0, without_elbv2: false, slow }, 0)
    }

    /// A proxy that forwards EC2 and answers every ELBv2 call as LocalStack's free edition
    /// does: 501, not implemented.
    pub fn without_elbv2(upstream: &str) -> FaultProxy {
        FaultProxy::spawn(upstream, Behaviour { rate: 0.0, without_elbv2: true, slow: Slow::default() }, 0)
    }

    /// A proxy that forwards every call until the emulator has answered `action` (e.g.
    /// `CreateVpc`) with success: that answer never goes back, and no later request is
    /// forwarded. The caller is left as a process killed the moment its call succeeded would
    /// leave the cloud; [`FaultProxy::holds`] tells the test when to kill it.
    pub fn holding_after(upstream: &str, action: &str) -> FaultProxy {
        let proxy =
            FaultProxy::spawn(upstream, Behaviour { rate: 0.0, without_elbv2: false, slow: Slow::default() }, 0);
        *proxy.stats.hold_after.lock().unwrap() = Some(action.to_string());
        proxy
    }

    /// Whether the proxy holds an answer (see [`FaultProxy::holding_after`]).
    pub fn holds(&self) -> bool {
        self.stats.holding.load(Ordering::SeqCst)
    }

    fn spawn(upstream: &str, behaviour: Behaviour, seed: u64) -> FaultProxy {
        let upstream = upstream.strip_prefix("http://").expect("http upstream").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let stats = Arc::new(Stats::default());
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        let shared = Arc::clone(&stats);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, stats, rng) = (upstream.clone(), Arc::clone(&shared), Arc::clone(&rng));
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, behaviour, &stats, &rng);
                });
            }
        });
        FaultProxy { endpoint, stats }
    }

    pub fn faulted(&self) -> u64 {
        self.stats.faulted.load(Ordering::SeqCst)
    }

    pub fn forwarded(&self) -> u64 {
        self.stats.forwarded.load(Ordering::SeqCst)
    }

    /// The action of every answer forwarded so far, in order; those that said `provisioning`
    /// or `pending` where the emulator said otherwise end in ` (held)`.
    pub fn answers(&self) -> Vec<String> {
        self.stats.answers.lock().unwrap().clone()
    }

    /// The `Action` of every request so far (EC2 and ELBv2 speak the query protocol).
    pub fn actions(&self) -> Vec<String> {
        self.stats.actions.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy)]
struct Behaviour {
    /// The share of requests that get a fault.
    rate: f64,
    without_elbv2: bool,
    slow: Slow,
}

enum Fault {
    Throttle,
    ServerError(u16),
    Delay(Duration),
}

/// One request per connection (`Connection: close`), so each request is faulted or forwarded
/// as a whole.
fn serve(
    mut client: TcpStream,
    upstream: &str,
    behaviour: Behaviour,
    stats: &Stats,
    rng: &Mutex<Rng>,
) -> std::io::Result<()> {
    let request = read_request(&mut client)?;
    stats.actions.lock().unwrap().push(action(&request));
    if behaviour.without_elbv2 && is_elbv2(&request) {
        let body = "<ErrorResponse><Error><Code>InternalFailure</Code><Message>API for service 'elbv2' not yet implemented or pro feature</Message></Error></ErrorResponse>";
        return client.write_all(&http_response(501, "Not Implemented", body));
    }
    let fault = {
        let mut rng = rng.lock().unwrap();
        (rng.unit() < behaviour.rate).then(|| match rng.below(4) {
            0 | 1 => Fault::Throttle,
            2 => Fault::ServerError(if rng.below(2) == 0 { 500 } else { 503 }),
            _ => Fault::Delay(Duration::from_millis(200 + rng.below(800))),
        })
    };
    match fault {
        Some(Fault::Throttle) => {
            stats.faulted.fetch_add(1, Ordering::SeqCst);
            client.write_all(&throttle_response(&request))
        }
        Some(Fault::ServerError(status)) => {
            stats.faulted.fetch_add(1, Ordering::SeqCst);
            client.write_all(&server_error(status))
        }
        Some(Fault::Delay(delay)) => {
            stats.faulted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(delay);
            client.write_all(&forward(upstream, &request, stats)?)
        }
        None if stats.holding.load(Ordering::SeqCst) => wait_for_hang_up(client),
        None => {
            std::thread::sleep(behaviour.slow.latency);
            let action = action(&request);
            let response = forward(upstream, &request, stats)?;
            if is_success(&response) && take_hold(stats, &action) {
                return wait_for_hang_up(client);
            }
            let (response, held) = hold(&action, response, behaviour.slow, stats);
            stats.answers.lock().unwrap().push(if held { format!("{action} (held)") } else { action });
            client.write_all(&response)
        }
    }
}

/// Whether `action` is the one to hold, the first time it succeeds; from then on the proxy holds.
fn take_hold(stats: &Stats, action: &str) -> bool {
    let mut hold_after = stats.hold_after.lock().unwrap();
    if hold_after.as_deref() != Some(action) {
        return false;
    }
    *hold_after = None;
    stats.holding.store(true, Ordering::SeqCst);
    true
}

/// Answers nothing: returns when the caller has closed the connection (it was killed).
fn wait_for_hang_up(mut client: TcpStream) -> std::io::Result<()> {
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).map(drop)
}

fn is_success(response: &[u8]) -> bool {
    response.starts_with(b"HTTP/1.1 2") || response.starts_with(b"HTTP/1.0 2")
}

fn forward(upstream: &str, request: &[u8], stats: &Stats) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(request)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    stats.forwarded.fetch_add(1, Ordering::SeqCst);
    Ok(response)
}

/// Notes what a create made, and rewrites describe answers about a load balancer or instance
/// made less than `provisioning` or `pending` ago (a resource made elsewhere is left alone);
/// says whether it rewrote any.
fn hold(action: &str, response: Vec<u8>, slow: Slow, stats: &Stats) -> (Vec<u8>, bool) {
    let (id_tag, state, held_state, hold_for) = match action {
        "CreateLoadBalancer" | "DescribeLoadBalancers" => {
            ("LoadBalancerArn", "<State><Code>active</Code>", "<State><Code>provisioning</Code>", slow.provisioning)
        }
        "RunInstances" | "DescribeInstances" => (
            "instanceId",
            "<instanceState><code>16</code><name>running</name>",
            "<instanceState><code>0</code><name>pending</name>",
            slow.pending,
        ),
        _ => return (response, false),
    };
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else { return (response, false) };
    let (head, body) = (String::from_utf8_lossy(&response[..split]), String::from_utf8_lossy(&response[split + 4..]));
    let mut created = stats.created.lock().unwrap();
    if action.starts_with("Create") || action.starts_with("Run") {
        let now = Instant::now();
        for id in tagged(&body, id_tag) {
            created.entry(id).or_insert(now);
        }
        return (response, false);
    }
    let mut held = false;
    let mut rewritten = String::with_capacity(body.len());
    let mut rest: &str = &body;
    let open = format!("<{id_tag}>");
    while let Some(start) = rest.find(&open) {
        let id = first_tagged(&rest[start..], id_tag).unwrap_or_default();
        let young = created.get(&id).is_some_and(|t| t.elapsed() < hold_for);
        let after_id = start + open.len();
        rewritten.push_str(&rest[..after_id]);
        rest = &rest[after_id..];
        // The state belongs to this resource if it comes before the next resource's id.
        let next_id = rest.find(&open).unwrap_or(rest.len());
        if let Some(at) = rest[..next_id].find(state).filter(|_| young) {
            rewritten.push_str(&rest[..at]);
            rewritten.push_str(held_state);
            rest = &rest[at + state.len()..];
            held = true;
        }
    }
    rewritten.push_str(rest);
    let head: String = head
        .lines()
        .map(|l| match l.to_ascii_lowercase().starts_with("content-length:") {
            true => format!("Content-Length: {}", rewritten.len()),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    (format!("{head}\r\n\r\n{rewritten}").into_bytes(), held)
}

/// `groundup up --name <cluster> <flags>`, killed (SIGKILL to its process group: the runner and
/// the step) the moment the emulator has answered the first `action` call with success: the
/// worst moment to die, the resource made and nothing but the journal on record. The run goes
/// through a [`FaultProxy::holding_after`]; afterwards the state file points at the emulator
/// again, so that the test resumes as usual.
pub fn kill_up_right_after(cluster: &TestCluster, action: &str, flags: &[&str]) {
    let proxy = FaultProxy::holding_after(endpoint(), action);
    let mut args = vec!["up", "--name", &cluster.name];
    if cluster.state_path().exists() {
        cluster.edit_state(|state| retarget(state, &proxy.endpoint));
    } else {
        args.extend(["--endpoint", proxy.endpoint.as_str()]);
    }
    args.extend_from_slice(flags);
    let mut run = cluster.spawn_in_own_group(&args);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !proxy.holds() {
        if let Some(status) = run.try_wait().unwrap() {
            panic!("`groundup {}` ended ({status}) before {action} was answered", args.join(" "));
        }
        assert!(Instant::now() < deadline, "no {action} within 300 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", run.id())]).status();
    let _ = run.wait();
    wait_until_unlocked(cluster);
    cluster.edit_state(|state| retarget(state, endpoint()));
}

/// Points a cluster's context at another endpoint (a proxy, or the emulator again).
pub fn retarget(context: &mut Context, to: &str) {
    match &mut context.target {
        Target::Emulator { endpoint } | Target::Endpoint { endpoint } => *endpoint = to.to_string(),
        Target::Aws => panic!("a test cluster on real AWS"),
    }
}

/// The steps hold the runner's state lock and die a moment after it: the next run must not
/// start before the killed run's last process has let go of it (a loaded machine can take a
/// while to finish off a killed process).
pub fn wait_until_unlocked(cluster: &TestCluster) {
    let lock = cluster.state_path().with_file_name("groundup.json.lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Ok(file) = std::fs::File::open(&lock) else { return };
        if file.try_lock().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the killed run still holds {} after 20 s", lock.display());
}

/// The values of `<tag>...</tag>` in `xml`, in order.
fn tagged(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    xml.match_indices(&open).filter_map(|(i, _)| first_tagged(&xml[i..], tag)).collect()
}

fn first_tagged(xml: &str, tag: &str) -> Option<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let value = &xml[xml.find(&open)? + open.len()..];
    Some(value[..value.find(&close)?].to_string())
}

/// Reads head and body, and rewrites the request to close the connection afterwards.
fn read_request(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    head.extend_from_slice(&body);
    Ok(head)
}

fn action(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    let start = text.find("Action=").map(|i| i + "Action=".len());
    start.map(|i| text[i..].split(['&', '\r', '\n']).next().unwrap_or_default().to_string()).unwrap_or_default()
}

/// ELBv2 speaks the query protocol with API version 2015-12-01, EC2 with 2016-11-15.
fn is_elbv2(request: &[u8]) -> bool {
    String::from_utf8_lossy(request).contains("Version=2015-12-01")
}

/// EC2 answers `RequestLimitExceeded`, ELBv2 `Throttling`.
fn throttle_response(request: &[u8]) -> Vec<u8> {
    let body = if is_elbv2(request) {
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
    } else {
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>"
    };
    http_response(400, "Bad Request", body)
}

fn server_error(status: u16) -> Vec<u8> {
    let (reason, code) =
        if status == 503 { ("Service Unavailable", "Unavailable") } else { ("Internal Server Error", "InternalError") };
    let body = format!("<Response><Errors><Error><Code>{code}</Code><Message>injected</Message></Error></Errors><RequestID>fault</RequestID></Response>");
    http_response(status, reason, &body)
}

fn http_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
    }

    /// Only the young instance is held, and the length follows the new body.
    #[test]
    fn holds_young_instances_pending() {
        let stats = Stats::default();
        let slow = Slow { pending: Duration::from_secs(600), ..Slow::default() };
        let item = |id: &str, state: &str| {
            format!("<item><instanceId>{id}</instanceId><x/><instanceState>{state}</instanceState></item>")
        };
        let running = "<code>16</code><name>running</name>";
        hold("RunInstances", answer(&item("i-new", "<code>0</code><name>pending</name>")), slow, &stats);
        let body = format!("<r>{}{}</r>", item("i-old", running), item("i-new", running));
        let (rewritten, held) = hold("DescribeInstances", answer(&body), slow, &stats);
        let expected =
            format!("<r>{}{}</r>", item("i-old", running), item("i-new", "<code>0</code><name>pending</name>"));
        assert!(held);
        assert_eq!(String::from_utf8(rewritten).unwrap(), String::from_utf8(answer(&expected)).unwrap());
        let (unchanged, held) = hold("DescribeInstances", answer(&item("i-old", running)), slow, &stats);
        assert!(!held);
        assert_eq!(unchanged, answer(&item("i-old", running)));
    }
}
