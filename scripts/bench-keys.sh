#!/usr/bin/env bash
# Benchmark: CPU time per RSA-2048 key for each key backend groundup could use, and cfssl 1.2
# (the course's tool), interleaved in one run, as debug builds (what `cargo build` gives a user):
# steps/pki/examples/bench-keys.rs makes the keys; this script alternates its two builds (the
# system's OpenSSL, and a vendored OpenSSL in a target directory of its own), then prints the
# median per backend. cfssl: CPU time of `cfssl genkey` (user + system, all threads) minus the
# median of a `cfssl version` (process start-up). "clean build added": see below.
# Usage: scripts/bench-keys.sh [rounds]   (default 60 keys per backend)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-60}
batch=5
command -v cfssl >/dev/null || { echo "cfssl is missing: apt-get install golang-cfssl" >&2; exit 1; }
cd "$root"

# What a backend adds to a cold build, timed once (kept in the target directory): RustCrypto's
# rsa and its dependencies, built alone in a fresh target directory; the vendored OpenSSL, the
# openssl-src and openssl-sys units of the (cold) vendored build, from cargo's timings.
rsa_dir=target/bench-keys-rsa
if [ ! -f "$rsa_dir/build.seconds" ]; then
  echo "bench-keys: cold build of rsa alone in $rsa_dir (once)" >&2
  start=$SECONDS
  cargo build --quiet --target-dir "$rsa_dir" -p rsa
  echo $((SECONDS - start)) >"$rsa_dir/build.seconds"
fi
vendored=target/bench-keys-vendored
if [ ! -f "$vendored/build.seconds" ]; then
  echo "bench-keys: cold build with a vendored OpenSSL in $vendored (once, ~5 min on 2 cores)" >&2
  cargo build --quiet --timings --target-dir "$vendored" -p groundup-pki --features vendored-openssl --example bench-keys
  python3 - "$vendored/cargo-timings/cargo-timing.html" >"$vendored/build.seconds" <<'PY'
import json, re, sys
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(sys.argv[1]).read(), re.S).group(1))
print(round(sum(u["duration"] for u in units if u["name"] in ("openssl-src", "openssl-sys"))))
PY
fi
cargo build --quiet --workspace --example bench-keys
cargo build --quiet --target-dir "$vendored" -p groundup-pki --features vendored-openssl --example bench-keys
rsa_build=$(cat "$rsa_dir/build.seconds")
vendored_build=$(cat "$vendored/build.seconds")

samples=$(mktemp)
versions=$(mktemp)
trap 'rm -f "$samples" "$versions"' EXIT
for ((done = 0; done < rounds; done += batch)); do
  target/debug/examples/bench-keys --rounds "$batch" openssl rsa cfssl cfssl-startup >>"$samples" 2>>"$versions"
  "$vendored/debug/examples/bench-keys" --rounds "$batch" openssl 2>>"$versions" | sed 's/^openssl/openssl-vendored/' >>"$samples"
done

system=$(head -1 "$versions" | sed 's/^bench-keys: //')
bundled=$(sed -n 2p "$versions" | sed 's/^bench-keys: //')
rsa_version=$(sed -n '/^name = "rsa"$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock)
echo "RSA-2048, $rounds keys per backend, interleaved; median CPU ms per key; $(nproc) cores, $(date -u +%F)"
python3 - "$samples" "$system" "$bundled" "$rsa_version" "$rsa_build" "$vendored_build" <<'PY'
import statistics, sys
path, system, bundled, rsa_version, rsa_build, vendored_build = sys.argv[1:]
samples = {}
for line in open(path):
    backend, ms = line.split()
    samples.setdefault(backend, []).append(float(ms))
median = {backend: statistics.median(ms) for backend, ms in samples.items()}
median["cfssl"] -= median.pop("cfssl-startup")
rows = [
    ("`openssl` crate, system " + system, "openssl", "0"),
    ("`openssl` crate, `vendored` (" + bundled + ")", "openssl-vendored", vendored_build + " s"),
    ("RustCrypto `rsa` " + rsa_version + " (groundup's)", "rsa", rsa_build + " s"),
    ("cfssl 1.2 `genkey`, start-up subtracted", "cfssl", "-"),
]
print("| backend | median ms/key | cfssl's time / its time | clean build added |")
print("|---|---|---|---|")
for label, key, build in rows:
    print(f"| {label} | {median[key]:.0f} | {median['cfssl'] / median[key]:.2f} | {build} |")
PY
