#!/usr/bin/env bash
# Holds 10,000 concurrent requests against the mock server and prints, per pass: how many
# were answered, how far latency sits above the configured value at p50/p99, the server's
# peak in-flight count (from /stats) and the server's peak RSS (VmHWM of the server process).
#
# Pass 1 is the benchmark proper: fixed 100 ms latency. Pass 2 repeats it with a longer
# latency (1 s) so that all 10,000 requests are provably in flight at once even on a small
# machine, where writing and ingesting 10,000 requests takes longer than 100 ms.
#
# The server runs as its own process (target/release/loadchain-mock), so the RSS figure is
# the server's alone; the client is mock-server/examples/hold10k.rs (one TCP connection per
# request, all connected first, then released together). Loopback only; every step is
# bounded in time.
#
# Usage: scripts/mock-bench.sh     (env: N=10000 LATENCY_MS=100 HOLD_LATENCY_MS=1000 TIMEOUT_S=120)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
N="${N:-10000}"
LATENCY_MS="${LATENCY_MS:-100}"
HOLD_LATENCY_MS="${HOLD_LATENCY_MS:-1000}"
TIMEOUT_S="${TIMEOUT_S:-120}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

# Each side needs one descriptor per connection plus a few; ask for plenty, else the max.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < N + 100 )); then
    echo "error: open-file limit $(ulimit -n) is below N+100=$((N + 100)); raise the hard limit" >&2
    exit 1
fi

# The binary belongs to the root package (so `cargo install --path .` ships it); the
# example to the mock crate.
cargo build --release --bin loadchain-mock
cargo build --release -p loadchain-mock --example hold10k

out="$(mktemp)"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap 'stop_server; rm -f "$out"' EXIT

# run_pass LATENCY_MS: start a fresh server, run the client, print the figures.
run_pass() {
    local latency_ms="$1" url="" status=0
    "$TARGET_DIR/release/loadchain-mock" --latency "fixed:${latency_ms}ms" --port 0 >"$out" 2>/dev/null &
    server_pid=$!
    for _ in $(seq 100); do
        url="$(sed -n 's/^loadchain-mock listening on //p' "$out")"
        [[ -n "$url" ]] && break
        sleep 0.1
    done
    if [[ -z "$url" ]]; then
        echo "error: the mock server did not start within 10 s" >&2
        return 1
    fi
    echo "== fixed ${latency_ms} ms latency: $N concurrent requests, one connection each ($url, pid $server_pid)"
    timeout "$((TIMEOUT_S + 30))" "$TARGET_DIR/release/examples/hold10k" \
        --url "$url" --n "$N" --latency-ms "$latency_ms" --timeout-s "$TIMEOUT_S" || status=$?
    echo "server peak RSS (VmHWM): $(awk '/^VmHWM/ {print $2, $3}' "/proc/$server_pid/status")"
    stop_server
    return "$status"
}

echo "machine: $(nproc) cores, $(uname -sr), open-file limit $(ulimit -n)"
overall=0
run_pass "$LATENCY_MS" || overall=$?
echo
run_pass "$HOLD_LATENCY_MS" || overall=$?
exit "$overall"
