#!/usr/bin/env bash
# Prints where cargo puts this workspace's debug binaries, asked of cargo itself:
# CARGO_TARGET_DIR, or a build.target-dir in a cargo config, moves them out of target/.
# The scripts and the justfile run the binaries from here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"] + "/debug")'
