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
#   runtimes  built-in runtimes (issue 17 item 7): go1, java11 and php7.2 event-function cold invokes, end to end,
#           min/p50/max over 12 distinct functions each, with python3.10 and a custom runtime (the same Go echo
#           shape as the go1 function, as an HTTP server) as references, on openfc with --prestarted-runtimes 2
#           (java11 and php7.2 again with 0), each next to its bare start in the same run (`java -cp DIR Hello`,
#           `php -r ''`, a Go hello binary, `python3 -c pass`); warm invoke p50/p99 per runtime against the custom
#           runtime's. Needs root, golang-go, openjdk-17-jdk-headless, php8.2-cli and python3.
#   nodes   many nodes on one PostgreSQL and one S3 bucket (issue 10 item 7): signed GetFunction, UpdateFunction (a new
#           description each) and warm InvokeFunction throughput at concurrency 16 on SQLite vs PostgreSQL (one node
#           each), then on one node vs two (PostgreSQL + S3, the load round-robin over both), with the ratios; and
#           invalidation latency: a write on node A until GetFunction on node B shows it (p50/p99/max over 250
#           writes, nodes on a 60 s cache TTL) next to the documented 100 ms bound. Needs root (function sandboxes).
#           The database: --nodes-database-url URL, or --database-url URL when `async` does not run too (an empty
#           database either way). With neither, this script starts a private throw-away PostgreSQL cluster
#           (initdb + pg_ctl in a temp dir, as scripts/test.sh does; synchronous_commit=off, the durability of
#           openfc's SQLite in WAL mode with synchronous=NORMAL) and removes it on exit. The bucket: with
#           --code-store s3://BUCKET, an existing empty bucket at OPENFC_S3_ENDPOINT (OPENFC_S3_REGION,
#           OPENFC_S3_ACCESS_KEY_ID, OPENFC_S3_SECRET_ACCESS_KEY); without, this script starts moto from
#           .testenv/venv (set up by scripts/test.sh --infra-only, run here if missing) with a fresh bucket and
#           stops it on exit.
#
# Usage: scripts/bench.sh [api|invoke|warm|async|images|prestart|nodes|runtimes]... [--seconds N] [--database-url URL]
#                         [--nodes-database-url URL] [--code-store s3://BUCKET]
#        (no part named: all; N = measured seconds per load run after a 1 s warm-up; default 5)
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
        api|async|images|prestart|nodes|runtimes) want_nginx=0 ;;
    esac
done
if [[ $want_nginx == 1 ]]; then
    if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
        echo "installing Debian's nginx (the keep-alive reverse proxy baseline)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >&2 || echo "could not install nginx: its rows will be missing" >&2
    fi
fi

# What the nodes part needs that was not given: a private PostgreSQL cluster, moto with a bucket.
parts_named=0; want_nodes=0; want_async=0; have_db=0; have_nodes_db=0; have_store=0
for arg in "$@"; do
    case $arg in
        api|invoke|warm|images|prestart|runtimes) parts_named=1 ;;
        async) parts_named=1; want_async=1 ;;
        nodes) parts_named=1; want_nodes=1 ;;
        --database-url) have_db=1 ;;
        --nodes-database-url) have_nodes_db=1 ;;
        --code-store) have_store=1 ;;
    esac
done
if [[ $parts_named == 0 ]]; then want_nodes=1; want_async=1; fi
need_pg=0; need_moto=0
if [[ $want_nodes == 1 && $have_nodes_db == 0 && ( $have_db == 0 || $want_async == 1 ) ]]; then need_pg=1; fi
if [[ $want_nodes == 1 && $have_store == 0 ]]; then need_moto=1; fi

cargo build --release -p openfc -p openfc-bench
if [[ $need_pg == 0 && $need_moto == 0 ]]; then
    exec target/release/openfc-bench --openfc target/release/openfc "$@"
fi

# ---------------------------------------------------------------------------------------------------------------
# Private PostgreSQL and moto for the nodes part, stopped and removed on any exit.
WORK=$(mktemp -d /tmp/openfc-bench-infra.XXXXXX)
PG_BIN=
PG_STARTED=0
MOTO_PID=
as_pg() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
    local rc=$?
    set +e
    if [[ -n $MOTO_PID ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$MOTO_PID" 2>/dev/null
    fi
    if [[ $PG_STARTED -eq 1 ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null 2>&1
    fi
    if [[ $rc -ne 0 ]]; then
        [[ -f $WORK/pg/postgres.log ]] && { echo "--- tail of the PostgreSQL log"; tail -n 20 "$WORK/pg/postgres.log"; } >&2
        [[ -f $WORK/moto.log ]] && { echo "--- tail of the moto log"; tail -n 20 "$WORK/moto.log"; } >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "bench.sh: $*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

EXTRA=()
if [[ $need_pg == 1 ]]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -z $PG_BIN || ! -x $PG_BIN/initdb ]]; then
        echo "installing Debian's postgresql (binaries only; the benchmark runs its own cluster)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
        [[ -n $PG_BIN && -x $PG_BIN/initdb ]] || die "postgresql installed but no initdb found"
    fi
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    mkdir -p "$WORK/pg"
    [[ $EUID -eq 0 ]] && chown postgres: "$WORK" "$WORK/pg"
    as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 --no-sync >"$WORK/pg/initdb.log" 2>&1 ||
        { cat "$WORK/pg/initdb.log" >&2; die "initdb failed"; }
    for _ in 1 2 3; do
        PG_PORT=$(free_port)
        if as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/postgres.log" -w -t 60 \
            -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c synchronous_commit=off -c max_connections=200" \
            start >/dev/null; then
            PG_STARTED=1
            break
        fi
    done
    [[ $PG_STARTED -eq 1 ]] || die "PostgreSQL did not start"
    as_pg "$PG_BIN/psql" -h "$WORK/pg" -p "$PG_PORT" -U postgres -qAtc 'CREATE DATABASE openfc_bench_nodes' postgres >/dev/null ||
        die "CREATE DATABASE failed"
    EXTRA+=(--nodes-database-url "postgres://postgres@127.0.0.1:$PG_PORT/openfc_bench_nodes")
    echo "private PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PG_PORT, data in $WORK/pg" >&2
fi
if [[ $need_moto == 1 ]]; then
    MOTO=$ROOT/.testenv/venv/bin/moto_server
    if [[ ! -x $MOTO ]]; then
        echo "no moto in .testenv/venv: running scripts/test.sh --infra-only to set it up" >&2
        scripts/test.sh --infra-only >&2 || die "scripts/test.sh --infra-only failed"
    fi
    for _ in 1 2 3; do
        MOTO_PORT=$(free_port)
        "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
        MOTO_PID=$!
        for _ in $(seq 300); do
            curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/" 2>/dev/null && break
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/" 2>/dev/null && break
        kill "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=
    done
    [[ -n $MOTO_PID ]] || die "moto_server did not start"
    BUCKET=openfc-bench-nodes
    curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$MOTO_PORT/$BUCKET" || die "could not create the bucket on moto"
    export OPENFC_S3_ENDPOINT=http://127.0.0.1:$MOTO_PORT OPENFC_S3_REGION=us-east-1 OPENFC_S3_ACCESS_KEY_ID=test \
        OPENFC_S3_SECRET_ACCESS_KEY=test
    EXTRA+=(--code-store "s3://$BUCKET")
    echo "moto S3 on $OPENFC_S3_ENDPOINT (pid $MOTO_PID), bucket $BUCKET" >&2
fi
# Not exec'd: the cleanup above runs when it ends.
target/release/openfc-bench --openfc target/release/openfc "$@" "${EXTRA[@]}"
