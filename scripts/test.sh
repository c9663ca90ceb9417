#!/usr/bin/env bash
# The test command: builds every binary, starts one local emulator for the whole run (moto,
# installed into target/test-emulator/venv if missing), runs all tests, stops the emulator.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
bin=$(scripts/bin-dir.sh)
dir=$bin/../test-emulator
GROUNDUP_TEST_ENDPOINT=$("$bin/groundup" emulator start --emulator-dir "$dir")
export GROUNDUP_TEST_ENDPOINT
trap '"$bin/groundup" emulator stop --emulator-dir "$dir"' EXIT
cargo test --workspace "$@"
