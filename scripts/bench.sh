#!/usr/bin/env bash
# The benchmark: builds the release binaries and runs openfc-bench, which prints figures against their
# targets (see ARCHITECTURE.md). A measurement, not a test: it exits non-zero only if it cannot measure.
#
#   api     control plane: openfc and a bare axum handler side by side (throughput, latency, memory and
#           download figures)
#   invoke  invocations: a trivial custom runtime through openfc vs the same runtime server called
#           directly (warm latency pinned with taskset, throughput at concurrency 16), Python and custom
#           runtime cold starts, 1,000 concurrent invocations. Needs root (function sandboxes) and taskset.
#   async   durable async invocations and timers, on SQLite (and on PostgreSQL with --database-url URL, an
#           empty database): async InvokeFunction accepts/s at concurrency 16 next to synchronous invokes of
#           the same function, completions/s of a 5,000-event burst, 202 → start latency (p50, p99) idle and
#           under load, timer fire jitter (@every 1s and a per-second cron, p50 and max). The function (the
#           bench binary as a custom runtime) counts and timestamps what it runs and hands the records over
#           to control invocations; no log scraping. Needs root (function sandboxes).
#   images  custom-container images, against a docker-registry it starts on loopback: `openfc images pull` of
#           a ~200 MB image vs skopeo copy + umoci unpack --rootless of it (median of 5), cold start of a Ready
#           image vs a custom runtime running the same server (25 each), disk of two images sharing a base
#           layer. Needs root, docker-registry, skopeo, umoci and busybox-static.
#   prestart  pre-started runtimes (issue 9): python3.10 and nodejs20 event-function cold invokes, end to end,
#           min/p50/max over 20 distinct functions each, on openfc with --prestarted-runtimes 2 and with 0 (each
#           sample once /health shows the pools full again), next to the bare `python3 -c pass` / `node -e 0`
#           (20 runs each); RSS per waiting runtime from /health; 50 distinct Python functions invoked cold at
#           once with a pool of 8 and with none (p50, p99, errors). Needs root, python3 and node.
#
# Usage: scripts/bench.sh [api|invoke|async|images|prestart]... [--seconds N] [--database-url URL]   (no part named: all;
#        N = measured seconds per load run after a 1 s warm-up; default 5)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

cargo build --release -p openfc -p openfc-bench
exec target/release/openfc-bench --openfc target/release/openfc "$@"
