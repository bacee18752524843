#!/usr/bin/env bash
# Reproduces the course's performance table (batch sizes 10/25/50/100 × sequential, 5, 10
# and 25 concurrent) on the embedded mock at 1/100 time scale, pooled and unpooled, and
# writes the full report folder. Loopback only; about 2–3 minutes on a 2-core machine.
#
#   scripts/course-table.sh [OUT_DIR] [extra loadchain sweep flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-reports/$(date -u +%Y%m%dT%H%M%SZ)-course-table}"
shift || true
cargo build --release --quiet --bin loadchain
"${CARGO_TARGET_DIR:-target}/release/loadchain" sweep \
  --sizes 10,25,50,100 --limits 1,5,10,25 --steps 3 --pooling both \
  --out "$out" "$@"
echo "course table: $out/summary.md"
