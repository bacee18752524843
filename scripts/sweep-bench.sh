#!/usr/bin/env bash
# Scale and overhead figures for `loadchain sweep` against the in-process mock (fixed
# latency, no failures, no connection cost), printed, not asserted:
#   - harness overhead: measured p50 call latency minus the configured 50 ms at limit 10;
#   - efficiency (ideal wall / measured wall) at 50 ms, n=1000, limit 100 and at 100 ms,
#     n=10000, limit 1000, over HTTP/1.1 and HTTP/2, with the process's peak RSS
#     (client and mock together).
# Loopback only; every run is bounded (at most 10,000 calls). About a minute after the build.
#
#   scripts/sweep-bench.sh                      every point, one process each
#   scripts/sweep-bench.sh 100 10000 1000 warm  one point: LATENCY_MS N LIMIT [warm] [h2]
set -euo pipefail
cd "$(dirname "$0")/.."
# 1,000 chains in flight need ~2,000 descriptors (client and mock sockets).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --quiet --example sweep_bench
bench="${CARGO_TARGET_DIR:-target}/release/examples/sweep_bench"
echo "machine: $(nproc) CPUs, $(uname -sm), open-file limit $(ulimit -n)"
if (( $# > 0 )); then exec "$bench" "$@"; fi
# One process per point, so each peak RSS is that point's own.
echo "harness overhead (target: p50 under 1 ms over configured):"
"$bench" 50 1000 10
echo "efficiency (targets: >= 0.95, then >= 0.90 with RSS under 150 MB)"
echo "  cold: each run opens its connections inside the timed window (the default):"
"$bench" 50 1000 100
"$bench" 100 10000 1000
echo "  warm: --warmup opens min(limit, n) connections before the clock starts:"
"$bench" 50 1000 100 warm
"$bench" 100 10000 1000 warm
echo "  HTTP/2 (h2c), cold:"
"$bench" 50 1000 100 h2
"$bench" 100 10000 1000 h2
