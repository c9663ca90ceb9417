//! `latency-proxy --upstream URL`: the emulator with real AWS's timing, for the benchmark
//! scripts (see `FaultProxy::slow`). Prints its endpoint on stdout, then serves until killed.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use groundup_testkit::{FaultProxy, Slow};

#[derive(Parser)]
#[command(about = "A loopback proxy in front of the emulator that plays real AWS's timing")]
struct Args {
    /// The emulator, an http:// URL on loopback
    #[arg(long)]
    upstream: String,
    /// Added to every call: one round trip to a region
    #[arg(long, default_value_t = 40)]
    latency_ms: u64,
    /// How long a load balancer created through the proxy stays `provisioning`
    #[arg(long, default_value_t = 60.0)]
    provisioning_s: f64,
    /// How long an instance launched through the proxy stays `pending`
    #[arg(long, default_value_t = 30.0)]
    pending_s: f64,
}

fn main() {
    let args = Args::parse();
    if !groundup_contracts::context::is_loopback_url(&args.upstream) {
        eprintln!("latency-proxy: error: --upstream must be an http:// URL on loopback");
        std::process::exit(2);
    }
    let slow = Slow {
        latency: Duration::from_millis(args.latency_ms),
        provisioning: Duration::from_secs_f64(args.provisioning_s),
        pending: Duration::from_secs_f64(args.pending_s),
    };
    let proxy = FaultProxy::slow(&args.upstream, slow);
    println!("{}", proxy.endpoint);
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
