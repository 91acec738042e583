#!/usr/bin/env bash
# The benchmark: builds the release binaries and runs openfc-bench, which prints figures against their
# targets (see ARCHITECTURE.md). A measurement, not a test: it exits non-zero only if it cannot measure.
#
#   api     control plane: openfc and a bare axum handler side by side (throughput, latency, memory and
#           download figures)
#   invoke  invocations: the `warm` figures below, Python and custom runtime cold starts, 1,000 concurrent
#           invocations. Needs root (function sandboxes), taskset and nginx.
#   warm    warm invocations only (issue 9 items 3-4): a trivial custom runtime through openfc vs the same
#           runtime server behind Debian's nginx as a keep-alive reverse proxy (private config in a temp dir,
#           free port; upstream keepalive 64, HTTP/1.1, Connection "") vs called directly: p50 overhead at
#           concurrency 1 pinned with taskset, throughput at concurrency 16, CPU per invocation (openfc +
#           instance, from /proc) next to a signed GetFunction's. Installs Debian's nginx if missing.
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
# Usage: scripts/bench.sh [api|invoke|warm|async|images|prestart]... [--seconds N] [--database-url URL]   (no part named: all;
#        N = measured seconds per load run after a 1 s warm-up; default 5)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The warm invocation figures compare against Debian's nginx (never its system configuration: the benchmark
# writes its own). Where policy-rc.d allows it, the package's postinst may start the system service; the
# benchmark does not use it.
want_nginx=1
for arg in "$@"; do
    case $arg in
        invoke|warm) want_nginx=1; break ;;
        api|async|images|prestart) want_nginx=0 ;;
    esac
done
if [[ $want_nginx == 1 ]]; then
    if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
        echo "installing Debian's nginx (the keep-alive reverse proxy baseline)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >&2 || echo "could not install nginx: its rows will be missing" >&2
    fi
fi

cargo build --release -p openfc -p openfc-bench
exec target/release/openfc-bench --openfc target/release/openfc "$@"
