# The whole pipeline on the local emulator (state in ./groundup.json)
all *ARGS:
    scripts/up.sh {{ARGS}}

# What `just all` would create, adopt, change or leave, changing nothing
plan *ARGS:
    cargo build --quiet --workspace --bins
    "$(scripts/bin-dir.sh)/groundup" up --plan {{ARGS}}

# Every test, against a local emulator the script starts and stops
test *ARGS:
    scripts/test.sh {{ARGS}}

# Formatting and lints, as CI checks them
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# One step on the current state file, e.g. `just step vpc`
step NAME:
    cargo build --quiet --workspace --bins
    "$(scripts/bin-dir.sh)/groundup-{{NAME}}" --state groundup.json

status:
    cargo run --quiet -p groundup -- status

emulator-stop:
    cargo run --quiet -p groundup -- emulator stop

# Regenerate the README's picture of the course's cluster (steps/graph/doc/cluster.svg)
picture:
    scripts/graph.sh
