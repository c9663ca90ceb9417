#!/usr/bin/env bash
# Benchmark: how much of the PKI the head start hides. In one run, alternating, each on a new
# cluster of the same emulator (3 masters + 3 workers, RSA 2048): `groundup up` end to end;
# the infrastructure alone (`up --to compute`: network and cluster steps, with compute's head
# start, the SSH key, but not the PKI's); and
# the PKI alone on that infrastructure's context (`up --from ca`: ca, certs, kubeconfig,
# encryption, bundles). Prints the medians and end to end / max(infrastructure, PKI), which
# issue 12 wants within 1.15. Usage: scripts/bench-overlap.sh [rounds]   (default 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
cargo build --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
groundup="$root/target/debug/groundup"
work=$(mktemp -d)
trap '"$groundup" emulator stop --dir "$work/emulator" >/dev/null 2>&1; rm -rf "$work"' EXIT
endpoint=$("$groundup" emulator start --dir "$work/emulator" 2>/dev/null)
# moto loads its backends on the first request; keep that out of the numbers.
"$groundup" init --name warmup --endpoint "$endpoint" | "$root/target/debug/groundup-vpc" >/dev/null 2>&1

timed() { # dir cluster-name up-flags... -> seconds on stdout
  local dir=$1 name=$2 start end
  shift 2
  mkdir -p "$dir"
  start=$(date +%s.%N)
  (cd "$dir" && "$groundup" up --name "$name" --endpoint "$endpoint" "$@" >/dev/null 2>"$dir/up.log") ||
    { cat "$dir/up.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

results="$work/results"
for ((round = 0; round < rounds; round++)); do
  echo "whole $(timed "$work/whole-$round" "whole-$round")" >>"$results"
  echo "infra $(timed "$work/parts-$round" "parts-$round" --to compute)" >>"$results"
  echo "pki $(timed "$work/parts-$round" "parts-$round" --from ca)" >>"$results"
done
python3 - "$results" "$rounds" <<'PY'
import statistics, sys
samples = {}
for line in open(sys.argv[1]):
    what, seconds = line.split()
    samples.setdefault(what, []).append(float(seconds))
m = {what: statistics.median(s) for what, s in samples.items()}
print(f"{sys.argv[2]} rounds, median seconds (3+3, RSA 2048):")
print("| run | seconds |\n|---|---|")
print(f"| `up` end to end | {m['whole']:.2f} |")
print(f"| infrastructure alone (`up --to compute`) | {m['infra']:.2f} |")
print(f"| PKI alone (`up --from ca` on that infrastructure) | {m['pki']:.2f} |")
print(f"| infrastructure + PKI, one after the other | {m['infra'] + m['pki']:.2f} |")
print(f"end to end / max(infrastructure, PKI) = {m['whole'] / max(m['infra'], m['pki']):.2f} (issue 12 wants <= 1.15)")
PY
