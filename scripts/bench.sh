#!/usr/bin/env bash
# The benchmark: builds the release binaries and runs openfc-bench, which prints figures against their
# targets (see ARCHITECTURE.md). A measurement, not a test: it exits non-zero only if it cannot measure.
#
#   api     control plane: openfc and a bare axum handler side by side (throughput, latency, memory and
#           download figures)
#   invoke  invocations: a trivial custom runtime through openfc vs the same runtime server called
#           directly (warm latency pinned with taskset, throughput at concurrency 16), Python and custom
#           runtime cold starts, 1,000 concurrent invocations. Needs root (function sandboxes) and taskset.
#
# Usage: scripts/bench.sh [api|invoke] [--seconds N]   (no part named: both; N = measured seconds per
#        load run after a 1 s warm-up; default 5)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

cargo build --release -p openfc -p openfc-bench
exec target/release/openfc-bench --openfc target/release/openfc "$@"
