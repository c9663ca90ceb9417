#!/usr/bin/env bash
# Regenerates the README's picture: builds the course's cluster (3 masters, 3 workers) on a
# fresh local emulator in a temporary directory, then draws it with `groundup graph`
# (steps/graph/doc/cluster.dot and, with Graphviz installed, steps/graph/doc/cluster.svg).
# A test checks that the committed DOT has the shape the emulator's output has.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --bins
groundup=$(scripts/bin-dir.sh)/groundup
work=$(mktemp -d)
trap '"$groundup" emulator stop --emulator-dir "$work/emulator"; rm -rf "$work"' EXIT
endpoint=$("$groundup" emulator start --emulator-dir "$work/emulator")
(cd "$work" && "$groundup" up --endpoint "$endpoint" --pki-key ecdsa-p256 >/dev/null 2>up.log) || { cat "$work/up.log" >&2; exit 1; }
"$groundup" graph --state "$work/groundup.json" > steps/graph/doc/cluster.dot
if command -v dot >/dev/null; then
  dot -Tsvg -o steps/graph/doc/cluster.svg steps/graph/doc/cluster.dot
else
  echo "graph.sh: Graphviz's dot is not installed (apt-get install graphviz): cluster.svg not updated" >&2
fi
echo "graph.sh: wrote steps/graph/doc/cluster.dot" >&2
