//! A fault-injecting HTTP proxy on loopback, between the steps and the emulator. A seeded
//! share of requests is answered with throttling errors or 500/503s without being forwarded
//! (so an injected fault never half-happens), or forwarded after a delay. It also keeps the
//! API action of every request, so that a test can check what a run sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Rng;

pub struct FaultProxy {
    pub endpoint: String,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    forwarded: AtomicU64,
    faulted: AtomicU64,
    actions: Mutex<Vec<String>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://127.0.0.1:PORT` URL) that faults `rate` of
    /// the requests. It lives as long as the test process.
    pub fn start(upstream: &str, rate: f64, seed: u64) -> FaultProxy {
        FaultProxy::spawn(upstream, Behaviour { rate, without_elbv2: false }, seed)
    }

    /// A proxy that forwards EC2 and answers every ELBv2 call as LocalStack's free edition
    /// does: 501, not implemented.
    pub fn without_elbv2(upstream: &str) -> FaultProxy {
        FaultProxy::spawn(upstream, Behaviour { rate: 0.0, without_elbv2: true }, 0)
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
            forward(client, upstream, &request, stats)
        }
        None => forward(client, upstream, &request, stats),
    }
}

fn forward(mut client: TcpStream, upstream: &str, request: &[u8], stats: &Stats) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(request)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    stats.forwarded.fetch_add(1, Ordering::SeqCst);
    client.write_all(&response)
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
