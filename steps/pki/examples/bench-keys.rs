//! RSA-2048 key generation per backend, interleaved, one sample per line on stdout:
//! `<backend>\t<CPU ms>`. `scripts/bench-keys.sh` runs it and prints the table; build it
//! as users build groundup (debug, `cargo build`), which is what the table is about.
//!
//! Backends: `openssl` (the openssl crate on whichever OpenSSL this binary links), `rsa`
//! (what groundup uses: `x509::new_key`, RustCrypto's rsa read into openssl as PKCS#8),
//! `cfssl` (`cfssl genkey`, its process start-up included: the script subtracts the median of
//! `cfssl-startup`, a `cfssl version`).
//!
//! Usage: bench-keys --rounds N BACKEND...

use std::process::{Command, Stdio};

use openssl::pkey::PKey;
use openssl::rsa::Rsa;

const BITS: u32 = 2048;

fn thread_cpu_ms() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 * 1e3 + now.tv_nsec as f64 / 1e6
}

fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct it is given; all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// CPU time of one cfssl run (user + system, all its threads), its output discarded.
fn cfssl(args: &[&str]) -> f64 {
    let before = children_cpu_ms();
    let status = Command::new("cfssl").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(status.is_ok_and(|s| s.success()), "cfssl {args:?} failed");
    children_cpu_ms() - before
}

fn in_process(generate: impl FnOnce()) -> f64 {
    let before = thread_cpu_ms();
    generate();
    thread_cpu_ms() - before
}

fn sample(backend: &str, csr: &str) -> f64 {
    match backend {
        "openssl" => in_process(|| {
            PKey::from_rsa(Rsa::generate(BITS).unwrap()).unwrap();
        }),
        "rsa" => in_process(|| {
            groundup_pki::x509::new_key(groundup_contracts::pki::KeyAlgorithm::Rsa2048).unwrap();
        }),
        "cfssl" => cfssl(&["genkey", csr]),
        "cfssl-startup" => cfssl(&["version"]),
        other => panic!("unknown backend {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rounds, backends) = match args.as_slice() {
        [flag, rounds, backends @ ..] if flag == "--rounds" && !backends.is_empty() => {
            (rounds.parse::<usize>().expect("--rounds N"), backends)
        }
        _ => panic!("usage: bench-keys --rounds N BACKEND..."),
    };
    let dir = tempfile::tempdir().unwrap();
    let csr = dir.path().join("key-csr.json");
    std::fs::write(&csr, format!(r#"{{"CN":"bench","key":{{"algo":"rsa","size":{BITS}}}}}"#)).unwrap();
    let csr = csr.to_str().unwrap();
    eprintln!("bench-keys: {}", openssl::version::version());
    for _ in 0..rounds {
        for backend in backends {
            println!("{backend}\t{:.1}", sample(backend, csr));
        }
    }
}
