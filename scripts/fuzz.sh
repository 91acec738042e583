#!/usr/bin/env bash
# Runs every fuzz target for a long time (docs/fuzzing.md). CI runs the same tests for ~2 s each as part of
# `cargo nextest run --workspace`; this gives each target SECONDS instead.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 3600)] [NEXTEST FILTER (default: every fuzz target)]
#   scripts/fuzz.sh 600 'test(fuzz_zip)'      # one target for ten minutes
# Reproduce a run's random inputs with BOLERO_RANDOM_SEED=<seed printed on failure>. Failing inputs are saved
# under target/fuzz-crashes/<target>/; once fixed, copy them into fuzz/corpus/<target>/ as regression seeds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_PER_TARGET=${1:-3600}
FILTER=${2:-'test(/fuzz_/)'}
export OPENFC_FUZZ_SECONDS=$SECONDS_PER_TARGET
# Every target is one test process; nextest runs as many at once as there are cores.
exec env -u OPENFC_TEST_DATABASE_URL cargo nextest run --workspace --no-fail-fast -E "$FILTER"
