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

# Built before the clock starts: nothing compiles while a phase measures (the micro-benchmarks
# included).
cargo build --release --workspace --bins
[ "$quick" = 1 ] || cargo bench -p benches --benches --no-run
bin="${CARGO_TARGET_DIR:-target}/release"
ab="$bin/authbench"
mkdir -p "$out"
: > "$out/phases.txt"
t_start=$(date +%s)

# A phase that fails is recorded and the run goes on (the others do not depend on it); the
# script exits 1 at the end if any failed.
failed=()
phase() {
    local name="$1"
    shift
    local t0 status=0
    t0=$(date +%s)
    echo "== $name: $*" >&2
    "$@" || status=$?
    if [ "$status" = 0 ]; then
        echo "$name $(( $(date +%s) - t0 )) s" >> "$out/phases.txt"
    else
        echo "$name FAILED (exit $status) after $(( $(date +%s) - t0 )) s" >> "$out/phases.txt"
        failed+=("$name")
    fi
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
    # systems and the control × 5 N × 5 repeats fit the budget: measured on a 2-core EPYC VM,
    # one point of 5 rounds took 34 s at 1.5 s windows (a first round of ~12 s, then ~5 s a
    # round), so the read sweep's 80-odd points need the 1 s windows below to leave the other
    # phases ~25 minutes. The repeats give each point its range.
    lengths=(--duration 1s --warmup 200ms --step-duration 500ms --min-requests 1500)
    read=(--systems "$read_systems" --reference "${lengths[@]}")
    axes=(--store-cpu 0.1,0.2 --store-rtt 0,500us --store-shards 1,2)
    # Logins are rare in the mix (one per session): longer windows than the read sweep's.
    mixed=(--systems "$mixed_systems" --instances 1,2 --duration 1.5s --warmup 300ms
           --step-duration 700ms --min-requests 2000)
    # Uniform spread only (zipf matters for the per-instance caches, measured in
    # 2026-12-03-live), and one purge wait long enough for session-memory's 30 s purge.
    live=(--systems session-memory,session-redis,session-postgres,jwt-hs256 --instances 4
          --live-sessions 100000,1000000 --live-spread uniform --live-purge-wait 35s "${lengths[@]}")
    proxy=(--systems session-memory,session-redis,jwt-hs256,control --instances 2 --lb-cpu 0.75 "${lengths[@]}")
    chaos=(--systems "$chaos_systems" --duration 12s --fault-at 3s)
    revocation=()
    peers=(--rounds 5 --warmup 1s --duration 2s)
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
    # criterion's own windows shortened (1 s warm-up, 2 s measured; the argon2id group keeps
    # its 3 s): the medians move little, the budget a lot.
    phase micro cargo bench -p benches --benches -- --warm-up-time 1 --measurement-time 2
    phase micro-summary "$bin/micro-summary" --out "$out/micro.md" --note "Measured inside scripts/reference.sh \
with criterion's windows shortened to fit the run's budget (cargo bench -p benches --benches -- --warm-up-time 1 \
--measurement-time 2; the argon2id group keeps its own 3 s): medians move little, confidence intervals are wider \
than at the defaults."
fi
phase compare "$ab" compare "$old" "$out"
echo "total $(( $(date +%s) - t_start )) s" >> "$out/phases.txt"
cat "$out/phases.txt" >&2
if [ "$quick" != 1 ]; then
    # The run's index: its parts and what it left out to fit the budget (the choices above).
    {
        cat <<'INDEX'
# Reference run

Made by `scripts/reference.sh` in one go on one machine (named in each report). Start with
[report.md](report.md): the read sweep of every system and the control at N = 1, 2, 3, 4, 8
with 5 interleaved rounds per point, the store axes, and the revocation and chaos runs.

| part | what |
|---|---|
| [report.md](report.md) | read sweep, store CPU / round trip / shard axes at N = 8, revocation, chaos (store freeze, store restart, instance loss, a stopped Redis Cluster shard, login storm) |
| [mixed/report.md](mixed/report.md) | the realistic mix (derived from the web-app profile), per-route objectives and demands, N = 1, 2 at the mixed workload's default caps (0.3-core instances, a 0.6-core store) |
| [live/report.md](live/report.md) | 100 000 and 1 000 000 live sessions at N = 4 |
| [haproxy/report.md](haproxy/report.md) | a real HAProxy in the path at N = 2, and instance loss through it |
| [peers.md](peers.md) | our servers beside what users would build instead |
| [micro.md](micro.md) | the pieces of a request, in-process (criterion) |
| [compare.md](compare.md) | `authbench compare` from the superseded reference (2026-11-27) to this one |

## Left out to fit the budget (aimed at ≤ 60 minutes of measuring on 2 cores; the phases below say what it took)

- Point lengths: the read sweep's and the live/HAProxy points' windows are 1 s (200 ms warm-up, find-max tries of 500 ms) instead of 3 s / 500 ms / 1 s; the rounds give each point its range instead.
- Read sweep: `session-postgres+touch` (measured in `2026-12-02-postgres`); the store round trip axis for session-postgres (the delay proxy speaks Redis only); store CPU 0.1 and 0.2 core only (not 0.05 or 0.4), Redis Cluster 1 and 2 shards only (not 4).
- Mix: N = 1 and 2 only (0.5-core instances: at N = 3 the generator would have less than half a core), one round per point; session-memory behind round-robin (it rejects by design) and the stock verifier (the same mix cost as jwt-hs256 but for the verify).
- Live sessions: N = 4 only, uniform spread only (zipf matters for the per-instance caches, measured in `2026-12-03-live`); a 35 s wait for a background purge, so jwt-server's and PostgreSQL's 60 s purges are recorded only when one ran during the points.
- HAProxy: N = 2 only (the proxy at 0.75 core plus the instances leave the generator too little at N = 4 on 2 cores), one round per point.
- Revocation: its default five systems (session-memory, session-redis, jwt-hs256 and both denylist modes); session-postgres, the Redis Cluster and session-redis+cached are not in it, so their logout windows are not measured here.
- Chaos: 12 s runs (fault at 3 s, 3 s outage) instead of 14 s; jwt-rs256/es256/eddsa (the same stateless behaviour as jwt-hs256).
- Peers: 1 s warm-up and 2 s windows (default 2 s / 5 s), 5 rounds. Micro-benchmarks: criterion's 1 s warm-up and 2 s measurement (default 3 s / 5 s).

## Phases (wall time)

```
INDEX
        cat "$out/phases.txt"
        echo '```'
    } > "$out/README.md"
fi
if [ "${#failed[@]}" -gt 0 ]; then
    echo "reference.sh: phases failed: ${failed[*]}" >&2
    exit 1
fi
