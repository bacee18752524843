#!/usr/bin/env bash
# peer-bench: loadchain side by side with oha and wrk, against one loadchain-mock process
# (the release binary, its own process, 127.0.0.1 only; restarted between workloads with
# the workload's latency), which every tool shares, so that what differs is the client alone. Each tool runs only if it is installed; a missing one is named with the
# command that installs it. Every measurement is printed, nothing is asserted.
#
# Workloads (tools alternate order in every round; ROUNDS rounds, medians printed):
#   A  zero latency, 100,000 calls, 50 connections      loadchain, oha, wrk (wrk: 5 s, 50 conns)
#   B  fixed 100 ms, 10,000 calls, 1,000 connections    loadchain, oha (ideal wall 1.00 s)
#   C  fixed 50 ms, 1,000 calls, 10 connections         loadchain, oha: p50 minus 50 ms
#   W  as C, the mock started with --keep-cpus-awake (Linux): no CPU is idle when a response
#      is due, so the wake-up of an idle (virtual) CPU leaves the figure
#   F  fixed 1 s, 10,000 calls, 10,000 connections      loadchain, oha: peak RSS with every
#      call in flight at once (needs an open-file limit of 10,100 or more; skipped below it)
#   M  loadchain's peak RSS at 10,000 calls (and 1,000,000 with --full), zero latency, limit 50
# loadchain runs `sweep --steps 1 --pooling on --limits L --n N --no-report -q --json` against
# the mock; oha and wrk POST the same chat body to /v1/chat/completions over keep-alive.
#
# Per tool and workload: wall time of the process and of the run itself (loadchain's in-run
# wall_ms, which excludes start-up and the preflight call; oha's and wrk's own duration),
# CPU time (user + sys of the process, from GNU time), calls/s (calls / run wall), CPU µs per
# call, peak RSS (GNU time's maximum resident set size), and the loadchain/oha ratios. The
# mock's own CPU is not counted. The machine's load average is printed before and after: on
# a shared machine, compare figures from one run only.
#
# Takes about 2 minutes after the release build on a 2-core machine; --full adds the 1M-call
# RSS point (about 1 minute today, and ~1.3 GB of RSS while call records are kept in memory).
#
#   scripts/peer-bench.sh [--full] [--rounds N] [--only LIST] [--raw FILE]
#
# --only LIST runs only the named workloads, e.g. `--only A` or `--only A,B` (letters A, B, C,
# W, F, M); the others are skipped and their tables left out.
#
# --raw FILE keeps every round's figures as TSV: workload, tool, process wall s, run wall s,
# CPU s, calls, peak RSS KiB, p50 µs.
#
# Needs: jq, GNU time (/usr/bin/time; Debian: apt-get install -y time). Optional: oha
# (cargo install oha --locked), wrk (apt-get install -y wrk). Honours CARGO_TARGET_DIR.
set -euo pipefail
start_dir="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FULL=0
ROUNDS=3
RAW=""
ONLY="A,B,C,W,F,M"
while (($# > 0)); do
    case "$1" in
        --full) FULL=1 ;;
        --rounds)
            ROUNDS="${2:-}"
            shift
            ;;
        --only)
            ONLY="${2:-}"
            shift
            ;;
        --raw)
            RAW="${2:-}"
            [[ -z "$RAW" || "$RAW" == /* ]] || RAW="$start_dir/$RAW"
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "error: unknown argument '$1' (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done
if ! [[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]]; then
    echo "error: --rounds takes a number from 1 to 99" >&2
    exit 2
fi
if ! [[ "$ONLY" =~ ^[ABCWFM](,[ABCWFM])*$ ]]; then
    echo "error: --only takes a comma-separated list of the workloads A, B, C, W, F, M" >&2
    exit 2
fi
# wanted W: whether workload W was selected with --only (all by default).
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

# Requirements: jq to read JSON, GNU time for CPU and peak RSS of each process.
if ! command -v jq >/dev/null; then
    echo "error: jq is needed to read the tools' JSON (apt-get install -y jq)" >&2
    exit 1
fi
GNU_TIME=/usr/bin/time
if ! "$GNU_TIME" -f '%M' true >/dev/null 2>&1; then
    echo "error: GNU time is needed at $GNU_TIME for CPU time and peak RSS (apt-get install -y time)" >&2
    exit 1
fi
HAVE_OHA=0
HAVE_WRK=0
command -v oha >/dev/null && HAVE_OHA=1
command -v wrk >/dev/null && HAVE_WRK=1

# 1,000 connections need ~1,000 descriptors on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 2100)); then
    echo "error: open-file limit $(ulimit -n) is below 2,100; raise the hard limit" >&2
    exit 1
fi

cargo build --release --quiet -p loadchain -p loadchain-mock --bin loadchain --bin loadchain-mock
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
LOADCHAIN="$TARGET_DIR/release/loadchain"
MOCK="$TARGET_DIR/release/loadchain-mock"

work="$(mktemp -d)"
RESULTS="$work/results.tsv"
: >"$RESULTS"
mock_pid=""
stop_mock() {
    if [[ -n "$mock_pid" ]] && kill -0 "$mock_pid" 2>/dev/null; then
        kill -TERM "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
    fi
    mock_pid=""
}
trap 'stop_mock; rm -rf "$work"' EXIT

# start_mock LATENCY [MOCK_FLAGS...]: one fresh mock process for a workload; sets MOCK_URL
# (scheme://ip:port).
start_mock() {
    stop_mock
    : >"$work/mock.out" # not the previous mock's URL
    "$MOCK" --latency "$@" --port 0 >"$work/mock.out" 2>"$work/mock.err" &
    mock_pid=$!
    MOCK_URL=""
    for _ in $(seq 100); do
        MOCK_URL="$(sed -n 's/^loadchain-mock listening on //p' "$work/mock.out")"
        [[ -n "$MOCK_URL" ]] && return 0
        sleep 0.1
    done
    echo "error: the mock did not start within 10 s:" >&2
    cat "$work/mock.err" >&2
    exit 1
}

BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Research the topic \"topic 1\" and list the key facts."}]}'
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' \
    "$BODY" >"$work/post.lua"
# oha's JSON flag changed name across versions.
OHA_JSON=(-j)
if ((HAVE_OHA)) && oha --help 2>/dev/null | grep -q -- '--output-format'; then
    OHA_JSON=(--output-format json)
fi

# timed OUT CMD...: run CMD (bounded to 15 minutes) under GNU time; stdout goes to OUT and
# "wall user sys maxrss_kb" to OUT.time. A failing tool stops the script with its stderr.
timed() {
    local out="$1"
    shift
    if ! timeout 900 "$GNU_TIME" -f '%e %U %S %M' -o "$out.time" "$@" >"$out" 2>"$out.err"; then
        echo "error: '$*' failed:" >&2
        tail -n 20 "$out.err" >&2
        exit 1
    fi
}

# record WORKLOAD TOOL CALLS RUN_WALL_S P50_US: append one row from the last timed run.
record() {
    local w p50="${5:-}"
    read -r -a w <"$work/out.time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "${w[0]}" "$4" \
        "$(awk -v u="${w[1]}" -v s="${w[2]}" 'BEGIN { print u + s }')" "$3" "${w[3]}" "${p50:-nan}" >>"$RESULTS"
}

# run_loadchain WORKLOAD N LIMIT
run_loadchain() {
    timed "$work/out" "$LOADCHAIN" sweep --target "$MOCK_URL/v1" --limits "$3" --n "$2" \
        --steps 1 --pooling on --no-report -q --json
    local failed
    failed="$(jq '.runs[0].calls_failed' "$work/out")"
    ((failed == 0)) || echo "warning: loadchain: $failed calls failed in workload $1" >&2
    record "$1" loadchain "$(jq '.runs[0].calls' "$work/out")" \
        "$(jq '.runs[0].wall_ms / 1000' "$work/out")" "$(jq '.runs[0].call_latency.p50_us' "$work/out")"
}

# run_oha WORKLOAD N CONNECTIONS
run_oha() {
    timed "$work/out" oha -n "$2" -c "$3" -m POST -H 'content-type: application/json' -d "$BODY" \
        --no-tui "${OHA_JSON[@]}" "$MOCK_URL/v1/chat/completions"
    local ok
    ok="$(jq '[.statusCodeDistribution["200"] // 0] | add' "$work/out")"
    ((ok == $2)) || echo "warning: oha: $ok of $2 calls answered 200 in workload $1" >&2
    record "$1" oha "$2" "$(jq '.summary.total' "$work/out")" \
        "$(jq '.latencyPercentiles.p50 * 1000000 | round' "$work/out")"
}

# run_wrk WORKLOAD SECONDS CONNECTIONS
run_wrk() {
    timed "$work/out" wrk -t 2 -c "$3" -d "${2}s" -s "$work/post.lua" "$MOCK_URL/v1/chat/completions"
    if grep -q 'Non-2xx' "$work/out"; then
        echo "warning: wrk: $(grep 'Non-2xx' "$work/out" | xargs) in workload $1" >&2
    fi
    # "  431234 requests in 5.00s, 210.12MB read"
    local calls secs
    calls="$(awk '/ requests in / { print $1 }' "$work/out")"
    secs="$(awk '/ requests in / { sub(/s,?$/, "", $4); print $4 }' "$work/out")"
    record "$1" wrk "$calls" "$secs"
}

# workload NAME LATENCY LOADCHAIN_ARGS OHA_ARGS [WRK_ARGS]: ROUNDS rounds, the tools'
# order rotated each round so that none always runs first (or last) on a warming machine.
# MOCK_FLAGS (an array, empty by default) goes to the workload's mock.
MOCK_FLAGS=()
workload() {
    local name="$1" latency="$2" lc="$3" oh="$4" wr="${5:-}" r i
    start_mock "$latency" "${MOCK_FLAGS[@]}"
    local tools=(loadchain)
    ((HAVE_OHA)) && tools+=(oha)
    ((HAVE_WRK)) && [[ -n "$wr" ]] && tools+=(wrk)
    echo "workload $name: $latency, mock $MOCK_URL (pid $mock_pid), ${ROUNDS} rounds of: ${tools[*]}" >&2
    for ((r = 0; r < ROUNDS; r++)); do
        for ((i = 0; i < ${#tools[@]}; i++)); do
            local tool="${tools[$(((i + r) % ${#tools[@]}))]}"
            # shellcheck disable=SC2086 # the argument lists are word lists on purpose
            case "$tool" in
                loadchain) run_loadchain "$name" $lc ;;
                oha) run_oha "$name" $oh ;;
                wrk) run_wrk "$name" $wr ;;
            esac
        done
    done
    stop_mock
}

# median WORKLOAD TOOL EXPR: median over rounds of an awk expression of the row's fields
# ($3 wall_s, $4 run_s, $5 cpu_s, $6 calls, $7 rss_kb, $8 p50_us); "-" when absent.
median() {
    awk -F'\t' -v w="$1" -v t="$2" "\$1 == w && \$2 == t { print $3 }" "$RESULTS" |
        sort -g | awk '{ a[NR] = $1 } END {
            if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "-" || v == "nan") print "-"; else printf f, v }'; }

# table WORKLOAD TITLE: one row per tool, then loadchain/oha.
table() {
    local w="$1" tool
    echo
    echo "$2"
    echo "| tool | wall (process) | run wall | CPU (user+sys) | calls | calls/s | CPU µs/call | peak RSS |"
    echo "|---|---|---|---|---|---|---|---|"
    for tool in loadchain oha wrk; do
        [[ "$(median "$w" "$tool" '$6')" == "-" ]] && continue
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$tool" \
            "$(fmt "$(median "$w" "$tool" '$3')" '%.2f s')" \
            "$(fmt "$(median "$w" "$tool" '$4')" '%.2f s')" \
            "$(fmt "$(median "$w" "$tool" '$5')" '%.2f s')" \
            "$(fmt "$(median "$w" "$tool" '$6')" '%d')" \
            "$(fmt "$(median "$w" "$tool" '$6 / $4')" '%.0f')" \
            "$(fmt "$(median "$w" "$tool" '$5 / $6 * 1000000')" '%.1f')" \
            "$(fmt "$(median "$w" "$tool" '$7 / 1024')" '%.1f MB')"
    done
    if [[ "$(median "$w" oha '$6')" != "-" ]]; then
        printf '| loadchain/oha | %s | %s | %s | | %s | %s | %s |\n' \
            "$(ratio "$(median "$w" loadchain '$3')" "$(median "$w" oha '$3')")" \
            "$(ratio "$(median "$w" loadchain '$4')" "$(median "$w" oha '$4')")" \
            "$(ratio "$(median "$w" loadchain '$5')" "$(median "$w" oha '$5')")" \
            "$(ratio "$(median "$w" loadchain '$6 / $4')" "$(median "$w" oha '$6 / $4')")" \
            "$(ratio "$(median "$w" loadchain '$5 / $6')" "$(median "$w" oha '$5 / $6')")" \
            "$(ratio "$(median "$w" loadchain '$7')" "$(median "$w" oha '$7')")"
    fi
}

wrk_version() {
    if ((HAVE_WRK)); then
        { wrk -v 2>&1 || true; } | awk 'NR == 1 { print "wrk", $2 }'
    else
        echo "wrk: not installed (apt-get install -y wrk)"
    fi
}
echo "peer-bench $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(uname -sr)"
echo "loadchain $("$LOADCHAIN" --version | awk '{ print $2 }'), $( ((HAVE_OHA)) && oha --version || echo 'oha: not installed (cargo install oha --locked)'), $(wrk_version)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); rounds: $ROUNDS"

wanted A && workload A fixed:0ms "100000 50" "100000 50" "5 50"
wanted B && workload B fixed:100ms "10000 1000" "10000 1000"
wanted C && workload C fixed:50ms "1000 10" "1000 10"
if wanted W; then
    MOCK_FLAGS=(--keep-cpus-awake)
    workload W fixed:50ms "1000 10" "1000 10"
    MOCK_FLAGS=()
fi
if wanted F && (($(ulimit -n) < 10100)); then
    echo "workload F skipped: open-file limit $(ulimit -n) is below 10,100" >&2
elif wanted F; then
    workload F fixed:1s "10000 10000" "10000 10000"
fi
if wanted M; then
    start_mock fixed:0ms
    echo "workload M: loadchain peak RSS, zero latency, limit 50, mock $MOCK_URL" >&2
    run_loadchain M10k 10000 50
    if ((FULL)); then run_loadchain M1m 1000000 50; fi
    stop_mock
fi

wanted A && table A "A: zero latency, 100,000 calls, 50 connections, 1 step (wrk: 5 s; medians of $ROUNDS rounds)"
if wanted B; then
    table B "B: fixed 100 ms, 10,000 calls, 1,000 connections (ideal run wall 1.00 s; medians of $ROUNDS rounds)"
    echo "   loadchain efficiency (1.00 s / run wall): $(fmt "$(median B loadchain '1 / $4')" '%.2f'); oha: $(fmt "$(median B oha '1 / $4')" '%.2f')"
fi
# p50_over WORKLOAD TITLE: each tool's median p50 minus the configured 50 ms, and the gap.
p50_over() {
    local lc_p50 oha_p50
    echo
    echo "$2"
    lc_p50="$(median "$1" loadchain '$8 / 1000 - 50')"
    oha_p50="$(median "$1" oha '$8 / 1000 - 50')"
    echo "   loadchain $(fmt "$lc_p50" '%+.3f ms'), oha $(fmt "$oha_p50" '%+.3f ms'), loadchain - oha $(fmt "$(awk -v a="$lc_p50" -v b="$oha_p50" 'BEGIN { print (b == "-") ? "-" : a - b }')" '%+.3f ms')"
}
wanted C && p50_over C "C: fixed 50 ms, 1,000 calls, 10 connections: p50 minus 50 ms (medians of $ROUNDS rounds)"
wanted W && p50_over W "W: as C, the mock keeping every CPU awake (--keep-cpus-awake; medians of $ROUNDS rounds)"
if wanted F && [[ "$(median F loadchain '$7')" != "-" ]]; then
    echo
    echo "F: fixed 1 s, 10,000 calls, 10,000 connections, all in flight at once (medians of $ROUNDS rounds)"
    echo "   peak RSS: loadchain $(fmt "$(median F loadchain '$7 / 1024')" '%.1f MB'), oha $(fmt "$(median F oha '$7 / 1024')" '%.1f MB'); loadchain/oha $(ratio "$(median F loadchain '$7')" "$(median F oha '$7')")"
fi
if wanted M; then
    echo
    echo "M: loadchain peak RSS, zero latency, limit 50, 1 step"
    echo "   10k calls $(fmt "$(median M10k loadchain '$7 / 1024')" '%.1f MB'), 100k calls $(fmt "$(median A loadchain '$7 / 1024')" '%.1f MB') (workload A), 1M calls $( ((FULL)) && fmt "$(median M1m loadchain '$7 / 1024')" '%.1f MB' || echo '(run with --full)')"
    if ((FULL)); then
        echo "   1M / 10k: $(ratio "$(median M1m loadchain '$7')" "$(median M10k loadchain '$7')")"
    fi
fi
if [[ -n "$RAW" ]]; then
    printf 'workload\ttool\twall_s\trun_s\tcpu_s\tcalls\trss_kib\tp50_us\n' >"$RAW"
    cat "$RESULTS" >>"$RAW"
    echo "every round: $RAW"
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
