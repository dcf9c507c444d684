#!/usr/bin/env bash
# User journeys with goose against one system: build the servers and authbench-goose, then
# run it; it starts the servers itself, checks every response and exits non-zero on any
# failure. The HTML report lands in bench-results/goose-SYSTEM.html.
# Usage: scripts/goose.sh SYSTEM [authbench-goose and goose flags, e.g. --users 16 -t 30s]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
    echo "usage: scripts/goose.sh SYSTEM [flags]   (SYSTEM: session-memory, session-redis, jwt-hs256, ...)" >&2
    exit 2
fi
system=$1
shift
cargo build --release -p journeys -p session-server -p jwt-server --bins
mkdir -p bench-results
exec cargo run --release --quiet -p journeys --bin authbench-goose -- \
    --system "$system" --report-file "bench-results/goose-$system.html" "$@"
