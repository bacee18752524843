#!/usr/bin/env bash
# Scale and overhead figures for `loadchain sweep` against the in-process mock (fixed
# latency, no failures, no connection cost), printed, not asserted:
#   - harness overhead: measured p50 call latency minus the configured 50 ms at limit 10;
#   - efficiency (ideal wall / measured wall) at 50 ms, n=1000, limit 100 and at 100 ms,
#     n=10000, limit 1000, over HTTP/1.1 and HTTP/2, with the process's peak RSS
#     (client and mock together).
# Loopback only; every run is bounded (at most 10,000 calls). About a minute after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
# 1,000 chains in flight need ~2,000 descriptors (client and mock sockets).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --quiet --example sweep_bench
echo "machine: $(nproc) CPUs, $(uname -sm), open-file limit $(ulimit -n)"
"${CARGO_TARGET_DIR:-target}/release/examples/sweep_bench" "$@"
