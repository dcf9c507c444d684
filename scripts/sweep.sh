#!/usr/bin/env bash
# The main job: build the servers and the harness, then run the default sweep.
# Extra arguments go to `authbench sweep` (for example --quick or --systems jwt-hs256).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
exec cargo run --release --quiet -p harness --bin authbench -- sweep "$@"
