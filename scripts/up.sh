#!/usr/bin/env bash
# The whole pipeline on the local emulator: builds the binaries (debug: the AWS SDK takes
# ~10 minutes to build in release on 2 cores, and nothing here is CPU-bound), then runs
# `groundup up` in the current directory. Extra arguments go to `groundup up`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
exec "$("$root/scripts/bin-dir.sh")/groundup" up "$@"
