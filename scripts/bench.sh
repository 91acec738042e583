#!/usr/bin/env bash
# The benchmark: builds the release binaries and runs openfc-bench, which starts openfc and a bare axum
# handler side by side and prints throughput, latency, memory and download figures against their
# targets (see ARCHITECTURE.md). A measurement, not a test: it exits non-zero only if it cannot measure.
#
# Usage: scripts/bench.sh [--seconds N]   (measured seconds per load run after a 1 s warm-up; default 5)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

cargo build --release -p openfc -p openfc-bench
exec target/release/openfc-bench --openfc target/release/openfc "$@"
