#!/usr/bin/env bash
# The reference run for architecture decisions, in one go on a quiet machine, into one
# directory (issue 18's structure; budget ≤ 60 minutes on 2 cores):
#
#   DIR/results.json   the read workload: every system and the control at N = 1,2,3,4,8,
#                      5 interleaved repeats (--reference), with the store axes at the
#                      largest N (store CPU, round trip, Redis Cluster shards)
#   DIR/revocation.json, DIR/chaos.json   beside it, in its report
#   DIR/mixed/         the realistic mix (per-route demands; advise --mix-from DIR/mixed)
#   DIR/live/          the live-sessions axis
#   DIR/haproxy/       HAProxy in the path (N = 2: at N = 8 on 2 cores the proxy and the
#                      instances would leave the generator too little)
#   DIR/peers.md, DIR/micro.md            re-made the same day on the same machine
#   DIR/compare.md     authbench compare from the old reference to this one
#   DIR/phases.txt     each phase's wall time
#
# Usage: scripts/reference.sh [bench-results/NAME]
#   REFERENCE_QUICK=1 runs every phase at smoke size (a few minutes) to check the structure;
#   its numbers are not a reference.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-results/$(date -u +%Y-%m-%d)-reference}"
old="${REFERENCE_OLD:-bench-results/2026-11-27-default}"
quick="${REFERENCE_QUICK:-0}"

cargo build --release --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"
ab="$bin/authbench"
mkdir -p "$out"
: > "$out/phases.txt"

phase() {
    local name="$1"
    shift
    local t0
    t0=$(date +%s)
    echo "== $name: $*" >&2
    "$@"
    echo "$name $(( $(date +%s) - t0 )) s" >> "$out/phases.txt"
}

read_systems="session-memory,session-redis,session-redis+cached,session-postgres,session-redis-cluster"
read_systems+=",jwt-hs256,jwt-rs256,jwt-es256,jwt-eddsa,jwt-hs256@stock,jwt-hs256+denylist,jwt-hs256+denylist-cached,control"
mixed_systems="session-memory,session-redis,session-redis+cached,session-postgres,session-redis-cluster"
mixed_systems+=",jwt-hs256,jwt-rs256,jwt-es256,jwt-eddsa,jwt-hs256+denylist,jwt-hs256+denylist-cached,control"
chaos_systems="session-memory,session-redis,session-postgres,session-redis-cluster,jwt-hs256,jwt-hs256+denylist,jwt-hs256+denylist-cached"

if [ "$quick" = 1 ]; then
    # Smoke size: the structure, not the numbers.
    read=(--systems session-memory,session-redis,session-redis-cluster,jwt-hs256,control --instances 1,2 --repeat 2 --quick)
    axes=(--store-cpu 0.1,0.2 --store-rtt 0,500us --store-shards 1,2)
    mixed=(--systems session-redis,jwt-hs256,control --instances 1,2 --quick)
    live=(--systems session-memory,session-redis,jwt-hs256 --instances 2 --live-sessions 1000 --quick)
    proxy=(--systems session-memory,jwt-hs256 --instances 2 --quick)
    chaos=(--systems session-memory,session-redis,jwt-hs256 --duration 6s --fault-at 2s --outage 1s --users 60)
    revocation=(--repeats 5)
    peers=(--rounds 1 --duration 1s --warmup 500ms)
else
    # Shorter windows than a sweep's defaults (3 s, tries of 1 s, 5 000 requests) so that 13
    # systems × 5 N × 5 repeats fit the budget; the repeats give each point its range.
    lengths=(--duration 1.5s --warmup 300ms --step-duration 700ms --min-requests 2000)
    read=(--systems "$read_systems" --reference "${lengths[@]}")
    axes=(--store-cpu 0.1,0.2 --store-rtt 0,500us --store-shards 1,2)
    mixed=(--systems "$mixed_systems" --instances 1,2 "${lengths[@]}")
    live=(--systems session-memory,session-redis,session-postgres,jwt-hs256 --instances 4
          --live-sessions 100000,1000000 --live-spread uniform,zipf "${lengths[@]}")
    proxy=(--systems session-memory,session-redis,jwt-hs256,control --instances 2 --lb-cpu 0.75 "${lengths[@]}")
    chaos=(--systems "$chaos_systems")
    revocation=()
    peers=()
fi

phase read "$ab" sweep --out "$out" "${read[@]}" "${axes[@]}"
phase mixed "$ab" sweep --out "$out/mixed" --workload mixed "${mixed[@]}"
phase live "$ab" sweep --out "$out/live" "${live[@]}"
phase haproxy "$ab" sweep --out "$out/haproxy" --haproxy "${proxy[@]}"
phase haproxy-chaos "$ab" chaos --out "$out/haproxy" --experiments instance-loss --haproxy \
    --systems session-memory,session-redis,jwt-hs256
phase revocation "$ab" revocation --out "$out" "${revocation[@]}"
phase chaos "$ab" chaos --out "$out" "${chaos[@]}"
phase peers "$ab" peers --out "$out" "${peers[@]}"
if [ "$quick" = 1 ]; then
    echo "micro 0 s (left out at smoke size)" >> "$out/phases.txt"
else
    phase micro cargo bench --workspace
    phase micro-summary "$bin/micro-summary" --out "$out/micro.md"
fi
phase compare "$ab" compare "$old" "$out"
cat "$out/phases.txt" >&2
