#!/usr/bin/env bash
# manifest-bench: how long `loadchain run` takes to start on a large manifest, and how much
# memory it holds while it runs. Generates a CSV manifest of ROWS rows (id, topic, a 40-byte
# note), runs `loadchain run` on it against the embedded mock (127.0.0.1 only, zero latency,
# one step, limit 50), and measures:
#   start   seconds from the process start to the first line in results.jsonl (checking the
#           whole manifest, the preflight call and the first chain)
#   rss     peak RSS (VmHWM) after RUN_SECONDS seconds of running, and the rows done by then
# Then stops the run with SIGINT (as Ctrl-C would) and waits for it to exit. Nothing is
# asserted; the figures are printed. About 30 s for 1M rows after the release build.
#
#   scripts/manifest-bench.sh [ROWS] [RUN_SECONDS]      (defaults: 1000000, 10)
#
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROWS="${1:-1000000}"
RUN_SECONDS="${2:-10}"
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet --bin loadchain
bin="$target_dir/release/loadchain"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
manifest="$work/rows.csv"
awk -v n="$ROWS" 'BEGIN {
    print "id,topic"
    for (i = 1; i <= n; i++) printf "row-%d,\"subject, number %d\"\n", i, i
}' > "$manifest"
size_mb=$(du -m "$manifest" | cut -f1)
echo "manifest: $ROWS rows, ${size_mb} MB"

out="$work/out"
t0=$(date +%s.%N)
"$bin" run --manifest "$manifest" --out "$out" --limit 50 --steps 1 --mock-latency fixed:0ms \
    --calls-csv off -q > "$work/stdout" 2> "$work/stderr" &
pid=$!

# Bounded wait for the first result line: at most 60 s.
first=""
for _ in $(seq 1 6000); do
    if [[ -s "$out/results.jsonl" ]]; then
        first=$(date +%s.%N)
        break
    fi
    if ! kill -0 "$pid" 2> /dev/null; then
        echo "loadchain exited early:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    sleep 0.01
done
[[ -n "$first" ]] || { kill -INT "$pid"; echo "no result line within 60 s" >&2; exit 1; }
hwm_of() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2> /dev/null || true; }
hwm_start=$(hwm_of "$pid")
hwm="$hwm_start"
# Sample every 0.1 s for RUN_SECONDS (a small manifest may finish first).
for _ in $(seq 1 $((RUN_SECONDS * 10))); do
    now=$(hwm_of "$pid")
    [[ -n "$now" ]] || break
    hwm="$now"
    sleep 0.1
done
done_rows=$(wc -l < "$out/results.jsonl")
kill -INT "$pid" 2> /dev/null || true
wait "$pid" || true

printf 'start (process start to first result line): %.2f s\n' "$(echo "$first - $t0" | bc -l)"
printf 'peak RSS at the first result line: %d MB\n' $((hwm_start / 1024))
printf 'peak RSS while running (up to %s s): %d MB (%s rows done)\n' "$RUN_SECONDS" $((hwm / 1024)) "$done_rows"
