#!/usr/bin/env bash
# A full reference run into one directory: the default sweep, then the revocation and
# chaos experiments beside it (each re-renders the sweep's report with its numbers).
# Usage: scripts/reference.sh [bench-results/NAME]   (~17 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-results/$(date -u +%Y-%m-%d)-reference}"
cargo build --release --workspace --bins
authbench() { cargo run --release --quiet -p harness --bin authbench -- "$@"; }
authbench sweep --out "$out"
authbench revocation --out "$out"
authbench chaos --out "$out"
