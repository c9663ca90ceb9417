#!/usr/bin/env bash
# Benchmark: how much of the PKI the head start hides. In one run, alternating, each on a new
# cluster of the same emulator (3 masters + 3 workers, RSA 2048): `groundup up` end to end;
# the infrastructure alone (`up --to compute`: network and cluster steps, with compute's head
# start, the SSH key, but not the PKI's); and
# the PKI alone on that infrastructure's context (`up --from ca`: ca, certs, kubeconfig,
# encryption, bundles). Prints the medians and end to end / max(infrastructure, PKI), which
# issue 12 wants within 1.15, and the CPU each run kept busy (the whole machine's, from
# /proc/stat, and the emulator's), which bounds what overlap can gain on this machine's cores.
# Usage: scripts/bench-overlap.sh [rounds]   (default 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
cargo build --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
groundup="$root/target/debug/groundup"
work=$(mktemp -d)
trap '"$groundup" emulator stop --emulator-dir "$work/emulator" >/dev/null 2>&1; rm -rf "$work"' EXIT
endpoint=$("$groundup" emulator start --emulator-dir "$work/emulator" 2>/dev/null)
emulator_pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$work/emulator/emulator.json")
# moto loads its backends on the first request; keep that out of the numbers.
"$groundup" init --name warmup --endpoint "$endpoint" | "$root/target/debug/groundup-vpc" >/dev/null 2>&1

busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; } # user nice system irq softirq
emulator_ticks() { awk '{print $14 + $15}' "/proc/$emulator_pid/stat"; } # utime stime
timed() { # dir cluster-name up-flags... -> "seconds busy-cpu-seconds emulator-cpu-seconds"
  local dir=$1 name=$2 start end busy emulator ticks
  shift 2
  mkdir -p "$dir"
  busy=$(busy_ticks) emulator=$(emulator_ticks) start=$(date +%s.%N)
  (cd "$dir" && "$groundup" up --name "$name" --endpoint "$endpoint" "$@" >/dev/null 2>"$dir/up.log") ||
    { cat "$dir/up.log" >&2; exit 1; }
  end=$(date +%s.%N) ticks=$(getconf CLK_TCK)
  echo "$(echo "$end - $start" | bc) $(echo "($(busy_ticks) - $busy) / $ticks" | bc -l) $(echo "($(emulator_ticks) - $emulator) / $ticks" | bc -l)"
}

results="$work/results"
for ((round = 0; round < rounds; round++)); do
  echo "whole $(timed "$work/whole-$round" "whole-$round")" >>"$results"
  echo "infra $(timed "$work/parts-$round" "parts-$round" --to compute)" >>"$results"
  echo "pki $(timed "$work/parts-$round" "parts-$round" --from ca)" >>"$results"
done
python3 - "$results" "$rounds" "$(nproc)" <<'PY'
import statistics, sys
samples = {}
for line in open(sys.argv[1]):
    what, *figures = line.split()
    samples.setdefault(what, []).append([float(f) for f in figures])
m = {what: [statistics.median(column) for column in zip(*runs)] for what, runs in samples.items()}
wall = {what: figures[0] for what, figures in m.items()}
cores = int(sys.argv[3])
print(f"{sys.argv[2]} rounds, medians (3+3, RSA 2048, {cores} cores):")
print("| run | seconds | CPU-seconds, whole machine | of which the emulator |\n|---|---|---|---|")
for what, label in [("whole", "`up` end to end"), ("infra", "infrastructure alone (`up --to compute`)"),
                    ("pki", "PKI alone (`up --from ca` on that infrastructure)")]:
    print(f"| {label} | {m[what][0]:.2f} | {m[what][1]:.2f} | {m[what][2]:.2f} |")
print(f"| infrastructure + PKI, one after the other | {wall['infra'] + wall['pki']:.2f} | | |")
print(f"end to end / max(infrastructure, PKI) = {wall['whole'] / max(wall['infra'], wall['pki']):.2f} (issue 12 wants <= 1.15)")
floor = (m["infra"][1] + m["pki"][1]) / cores
print(f"CPU floor for end to end on {cores} cores, perfect overlap: {floor:.2f} s, "
      f"{floor / max(wall['infra'], wall['pki']):.2f} x max(infrastructure, PKI)")
PY
