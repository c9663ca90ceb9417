#!/usr/bin/env bash
# Benchmark: wall time and number of AWS API calls of `groundup up` on a fresh local emulator,
# for the course's 3 masters + 3 workers and for 5 + 50. API calls are counted from the
# emulator's request log (every EC2 and ELBv2 call is one POST). Also times a second,
# creation-free run of each, `groundup up --plan` after it, a no-op `groundup up` (nothing
# pending: every step runs and converges), a scale of the 3+3 cluster to 3+50 with
# `groundup up --workers 50`, and how a first run grows with the workers: 3+10, 3+25 and 3+50
# from scratch. Usage: scripts/bench-up.sh
#
# Side by side: scripts/bench-up.sh --against DIR [ROUNDS] times only `up` of a new 3+3 cluster,
# this build's and the one in DIR (a directory holding another build's `groundup` and its
# `groundup-*` steps, say a copy of main's target/debug), alternating them for ROUNDS rounds
# (default 5) on one emulator, and prints each one's median and the ratio of the medians; then,
# where both builds have `up --timings=json`, each step's median wall time in either, to show
# where a difference lies (the `wait` row: what `up` spent outside its steps, mostly waiting
# for the PKI's head start after `compute`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
against= rounds=5
if [ "${1:-}" = --against ]; then
  against=$(cd "${2:?--against needs a directory of groundup binaries}" && pwd)
  rounds=${3:-5}
  [ -x "$against/groundup" ] || { echo "no groundup binary in $against" >&2; exit 2; }
fi
cargo build --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
groundup="$root/target/debug/groundup"
work=$(mktemp -d)
trap '"$groundup" emulator stop --emulator-dir "$work/emulator" >/dev/null 2>&1; rm -rf "$work"' EXIT
endpoint=$("$groundup" emulator start --emulator-dir "$work/emulator" 2>/dev/null)
log="$work/emulator/emulator.log"
calls() { grep -c '"POST ' "$log" || true; }

# moto loads its backends on the first request; keep that out of the numbers.
"$groundup" init --name warmup --endpoint "$endpoint" | "$root/target/debug/groundup-vpc" >/dev/null 2>&1

if [ -n "$against" ]; then
  timings() { "$1" up --help 2>/dev/null | grep -q -- '--timings'; }
  steps=()
  if timings "$groundup" && timings "$against/groundup"; then steps=(--timings=json); fi
  new_cluster() { # binary label round: wall seconds of `up` of a new 3+3 cluster
    local dir="$work/$2-$3" start end
    mkdir -p "$dir"
    start=$(date +%s.%N)
    (cd "$dir" && "$1" up --name "vs-$2-$3" --endpoint "$endpoint" "${steps[@]}" 2>"$dir/up.log" \
      >"$dir/timings.json") || { cat "$dir/up.log" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
  }
  median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
  : >"$work/this" ; : >"$work/that"
  for round in $(seq "$rounds"); do
    new_cluster "$groundup" this "$round" >>"$work/this"
    new_cluster "$against/groundup" that "$round" >>"$work/that"
  done
  this=$(median <"$work/this") that=$(median <"$work/that")
  printf 'up of a new 3+3 cluster, median of %d alternating rounds
' "$rounds"
  printf '  this build (%s): %.2f s
  %s: %.2f s
  this / that: %.3f
' \
    "$root" "$this" "$against" "$that" "$(echo "$this / $that" | bc -l)"
  [ ${#steps[@]} -gt 0 ] || exit 0
  python3 - "$work" <<'PY'
import json, pathlib, statistics, sys
work = pathlib.Path(sys.argv[1])
def medians(label):
    runs = [json.loads(p.read_text()) for p in sorted(work.glob(f"{label}-*/timings.json"))]
    rows = {}
    for run in runs:
        for step in run["steps"]:
            rows.setdefault(step["step"], []).append(step["wall_seconds"])
        rows.setdefault("wait", []).append(run["total_seconds"] - sum(s["wall_seconds"] for s in run["steps"]))
    return {step: statistics.median(times) for step, times in rows.items()}
this, that = medians("this"), medians("that")
print(f"{'step':<12}{'this s':>9}{'that s':>9}")
for step in [*this, *(s for s in that if s not in this)]:
    cell = lambda m: f"{m[step]:9.3f}" if step in m else f"{'-':>9}"
    print(f"{step:<12}{cell(this)}{cell(that)}")
PY
  exit 0
fi

printf '%-8s %-6s %10s %10s\n' nodes run seconds api-calls
run() { # label masters workers [passes: first second plan]
  local label=$1 masters=$2 workers=$3 dir="$work/$1" passes=("${@:4}")
  [ ${#passes[@]} -gt 0 ] || passes=(first second plan)
  mkdir -p "$dir"
  for pass in "${passes[@]}"; do
    local before start end flags=()
    [ "$pass" = plan ] && flags=(--plan)
    before=$(calls)
    start=$(date +%s.%N)
    (cd "$dir" && "$groundup" up --name "bench-$masters-$workers" --endpoint "$endpoint" \
      --masters "$masters" --workers "$workers" "${flags[@]}" 2>"$dir/$pass.log" >/dev/null) ||
      { cat "$dir/$pass.log" >&2; exit 1; }
    end=$(date +%s.%N)
    printf '%-8s %-6s %10.2f %10d\n' "$label" "$pass" "$(echo "$end - $start" | bc)" $(( $(calls) - before ))
  done
}
run 3+3 3 3
run 5+50 5 50

timed() {
  local label=$1 run=$2 dir=$3 before start end
  shift 3
  before=$(calls)
  start=$(date +%s.%N)
  (cd "$dir" && "$groundup" up "$@" 2>"$dir/$run.log" >/dev/null) || { cat "$dir/$run.log" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-8s %-6s %10.2f %10d\n' "$label" "$run" "$(echo "$end - $start" | bc)" $(( $(calls) - before ))
}
timed 3+3 no-op "$work/3+3"
timed 3+3→3+50 scale "$work/3+3" --workers 50

# Growth with the worker count: first runs from scratch.
run 3+10 3 10 first
run 3+25 3 25 first
run 3+50 3 50 first
