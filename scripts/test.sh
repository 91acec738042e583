#!/usr/bin/env bash
# The whole test suite: Rust unit/conformance tests (cargo nextest) and the end-to-end suite (pytest driving a
# real `openfc` binary with the official SDKs). CI runs this through .ci/run.
#
# Usage: scripts/test.sh [--infra-only | --no-nextest | --e2e-only] [PYTEST ARGS...]
#   --infra-only  set up the venv, PostgreSQL and moto, check them, collect the e2e tests, tear down; no cargo
#   --no-nextest  build the binary and run only the e2e suite
#   --e2e-only    no cargo at all: run the e2e suite against $OPENFC_BIN (default target/debug/openfc)
#   PYTEST ARGS   passed to pytest, e.g. scripts/test.sh --no-nextest -k pagination -x
#
# Side effects are confined to .testenv/ (gitignored): the venv, the Node.js SDK, a throw-away PostgreSQL cluster per run and the
# service logs. Idempotent; the cluster and moto are stopped and the cluster removed on any exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODE=all
while [[ $# -gt 0 ]]; do
    case $1 in
        --infra-only) MODE=infra; shift ;;
        --no-nextest) MODE=e2e; shift ;;
        --e2e-only) MODE=nocargo; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done

# cargo from rustup may not be on a non-login PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
    PATH=${HOME:-/root}/.cargo/bin:$PATH
fi

TESTENV=$ROOT/.testenv
VENV=$TESTENV/venv
REQS=$ROOT/tests/e2e/requirements.txt
mkdir -p "$TESTENV"

PHASE_NAME=
PHASE_START=$SECONDS
phase() {
    phase_end
    PHASE_NAME=$1
    PHASE_START=$SECONDS
    echo "==> [$(date -u +%H:%M:%S)] $PHASE_NAME"
}
phase_end() {
    if [[ -n $PHASE_NAME ]]; then
        echo "<== $PHASE_NAME: $((SECONDS - PHASE_START))s (total ${SECONDS}s)"
        PHASE_NAME=
    fi
}
die() { echo "test.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# Cleanup: registered before anything is started.
PG_BIN=
PG_DIR=
PG_SOCK_DIR=
PG_STARTED=0
MOTO_PID=
as_pg() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
    local rc=$?
    set +e
    phase_end
    if [[ -n $MOTO_PID ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$MOTO_PID" 2>/dev/null
    fi
    if [[ $PG_STARTED -eq 1 ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
    fi
    if [[ -n $PG_DIR && -d $PG_DIR ]]; then
        if [[ $rc -ne 0 && -f $PG_DIR/postgres.log ]]; then
            echo "--- tail of the PostgreSQL log ($PG_DIR/postgres.log)"; tail -n 20 "$PG_DIR/postgres.log"
        fi
        rm -rf "$PG_DIR"
    fi
    [[ -n $PG_SOCK_DIR && -d $PG_SOCK_DIR ]] && rm -rf "$PG_SOCK_DIR"
    echo "test.sh: exit $rc after ${SECONDS}s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------------------------------------------------------
phase "python venv ($VENV)"
pick_python() {
    # Debian's interpreter first (no pyenv shim start-up cost); any python3 >= 3.9 with venv+ensurepip will do.
    local cand
    for cand in /usr/bin/python3 python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
            command -v "$cand"; return 0
        fi
    done
    return 1
}
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    BASE_PY=$(pick_python) || {
        echo "no python3 with venv/ensurepip; installing python3-venv"
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        BASE_PY=$(pick_python) || die "no usable python3"
    }
    echo "creating venv with $BASE_PY ($("$BASE_PY" --version 2>&1))"
    "$BASE_PY" -m venv "$VENV"
fi
PY=$VENV/bin/python
STAMP=$VENV/.requirements.stamp
WANT_STAMP="$(sha256sum "$REQS" | cut -d' ' -f1) $("$PY" -c 'import sys; print(sys.version.split()[0])')"
if [[ -f $STAMP && "$(cat "$STAMP")" == "$WANT_STAMP" ]]; then
    echo "requirements unchanged; skipping pip install"
else
    if ! "$PY" -m pip install --disable-pip-version-check --no-input -q -r "$REQS" >"$TESTENV/pip.log" 2>&1; then
        cat "$TESTENV/pip.log"; die "pip install failed"
    fi
    echo "$WANT_STAMP" >"$STAMP"
fi
"$PY" -c 'import fc2, alibabacloud_fc_open20210406.client, pytest, requests, moto' || die "venv is incomplete"

# ---------------------------------------------------------------------------------------------------------------
phase "slirp4netns (outbound network for functions with internetAccess)"
if ! command -v slirp4netns >/dev/null 2>&1; then
    echo "installing Debian's slirp4netns"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slirp4netns >/dev/null
fi
slirp4netns --version | head -n 1
if ! command -v ip >/dev/null 2>&1; then
    # The sandbox tests add a private address to the host's loopback to prove functions cannot reach it.
    echo "installing Debian's iproute2"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

# ---------------------------------------------------------------------------------------------------------------
phase "go1 and php7.2 runtimes (Debian's golang-go builds the go1 test functions; php8.2-cli runs php7.2)"
# php-monolog and php-guzzlehttp-psr7 give the PHP runtime FC's fcLogger and PSR-7 messages (runtimes.md §5.2).
RUNTIME_PKGS=()
command -v go >/dev/null 2>&1 || RUNTIME_PKGS+=(golang-go)
[[ -x /usr/bin/php8.2 ]] || RUNTIME_PKGS+=(php8.2-cli)
[[ -f /usr/share/php/Monolog/Logger.php ]] || RUNTIME_PKGS+=(php-monolog)
[[ -f /usr/share/php/GuzzleHttp/Psr7/ServerRequest.php ]] || RUNTIME_PKGS+=(php-guzzlehttp-psr7)
# java8/java11 run on Debian's OpenJDK 17 (its javac builds openfc's Java shim and the test functions); Jackson
# serves PojoRequestHandler's JSON (runtimes.md §4).
[[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ]] || RUNTIME_PKGS+=(openjdk-17-jdk-headless)
[[ -f /usr/share/java/jackson-databind.jar ]] || RUNTIME_PKGS+=(libjackson2-databind-java)
if [[ ${#RUNTIME_PKGS[@]} -gt 0 ]]; then
    echo "installing Debian's ${RUNTIME_PKGS[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${RUNTIME_PKGS[@]}" >/dev/null
fi
go version
/usr/bin/php8.2 --version | head -n 1

# ---------------------------------------------------------------------------------------------------------------
phase "container-image tools (a registry, skopeo, umoci and busybox build and serve the custom-container fixtures)"
# docker-registry serves images on loopback (tests never use :5000), umoci builds them and is the oracle for layer
# application, skopeo pushes them, busybox-static is the tiny rootfs, htpasswd -B makes bcrypt credentials.
IMAGE_PKGS=()
[[ -x /usr/bin/docker-registry ]] || IMAGE_PKGS+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || IMAGE_PKGS+=(skopeo)
command -v umoci >/dev/null 2>&1 || IMAGE_PKGS+=(umoci)
[[ -x /bin/busybox ]] || IMAGE_PKGS+=(busybox-static)
command -v htpasswd >/dev/null 2>&1 || IMAGE_PKGS+=(apache2-utils)
command -v zstd >/dev/null 2>&1 || IMAGE_PKGS+=(zstd)
if [[ ${#IMAGE_PKGS[@]} -gt 0 ]]; then
    echo "installing Debian's ${IMAGE_PKGS[*]}"
    # The package's own service would take :5000 with a config the tests do not want.
    mkdir -p /etc/systemd/system && ln -sf /dev/null /etc/systemd/system/docker-registry.service 2>/dev/null || true
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${IMAGE_PKGS[@]}" >/dev/null
fi
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry' 2>/dev/null || true
umoci --version; skopeo --version

# ---------------------------------------------------------------------------------------------------------------
phase "chromium and its driver (the web console's browser tests, tests/e2e/test_console.py)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "installing Debian's chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        || echo "could not install chromium: the console's browser tests will be skipped"
fi
command -v chromium >/dev/null 2>&1 && chromium --version 2>/dev/null | head -n 1 || true

# ---------------------------------------------------------------------------------------------------------------
phase "Node.js SDK (@alicloud/fc2, pinned in tests/e2e/node)"
NODE_DIR=$TESTENV/node
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "installing Debian's nodejs and npm"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
NODE_STAMP=$NODE_DIR/.lock.stamp
WANT_NODE_STAMP="$(sha256sum "$ROOT/tests/e2e/node/package-lock.json" | cut -d' ' -f1) $(node --version)"
if [[ -f $NODE_STAMP && "$(cat "$NODE_STAMP")" == "$WANT_NODE_STAMP" && -d $NODE_DIR/node_modules/@alicloud/fc2 ]]; then
    echo "package-lock unchanged; skipping npm ci"
else
    rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
    cp "$ROOT/tests/e2e/node/package.json" "$ROOT/tests/e2e/node/package-lock.json" "$NODE_DIR/"
    if ! (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts >"$TESTENV/npm.log" 2>&1); then
        cat "$TESTENV/npm.log"; die "npm ci failed"
    fi
    echo "$WANT_NODE_STAMP" >"$NODE_STAMP"
fi
export OPENFC_TEST_NODE_PATH=$NODE_DIR/node_modules
node -e 'require(process.argv[1] + "/@alicloud/fc2")' "$OPENFC_TEST_NODE_PATH" || die "the Node.js SDK is incomplete"
echo "OPENFC_TEST_NODE_PATH=$OPENFC_TEST_NODE_PATH ($(node --version))"

# ---------------------------------------------------------------------------------------------------------------
phase "PostgreSQL (private throw-away cluster)"
find_pg_bin() {
    local d
    [[ -x /usr/lib/postgresql/15/bin/initdb ]] && { echo /usr/lib/postgresql/15/bin; return 0; }
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d && -x $d/initdb ]] && { echo "$d"; return 0; }
    return 1
}
if ! PG_BIN=$(find_pg_bin); then
    echo "PostgreSQL binaries missing; installing the postgresql package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(find_pg_bin) || die "postgresql installed but no initdb found"
fi
if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
PG_DIR=$TESTENV/pg-$$
rm -rf "$PG_DIR"
mkdir -p "$PG_DIR"
[[ $EUID -eq 0 ]] && chown postgres: "$PG_DIR"
# The postgres user must be able to reach the directory; a clone under a private home (e.g. /root) is not.
if ! as_pg test -w "$PG_DIR" 2>/dev/null; then
    rm -rf "$PG_DIR"
    PG_DIR=$(mktemp -d /tmp/openfc-pg.XXXXXX)
    [[ $EUID -eq 0 ]] && chown postgres: "$PG_DIR"
    echo "(.testenv is not reachable by the postgres user; cluster in $PG_DIR)"
fi
# Unix socket paths are limited to ~107 bytes.
if [[ ${#PG_DIR} -le 80 ]]; then
    SOCK=$PG_DIR
else
    PG_SOCK_DIR=$(mktemp -d /tmp/openfc-pgsock.XXXXXX)
    [[ $EUID -eq 0 ]] && chown postgres: "$PG_SOCK_DIR"
    SOCK=$PG_SOCK_DIR
fi
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log"; die "initdb failed"; }
PG_PORT=
for _ in 1 2 3; do
    PG_PORT=$(free_port)
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
        -o "-p $PG_PORT -k $SOCK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null; then
        PG_STARTED=1
        break
    fi
done
[[ $PG_STARTED -eq 1 ]] || { tail -n 20 "$PG_DIR/postgres.log"; die "PostgreSQL did not start"; }
export OPENFC_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export OPENFC_TEST_PSQL="$PG_BIN/psql"
"$PG_BIN/psql" "$OPENFC_TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null || die "PostgreSQL does not answer"
echo "OPENFC_TEST_DATABASE_URL=$OPENFC_TEST_DATABASE_URL ($("$PG_BIN/postgres" --version))"

# ---------------------------------------------------------------------------------------------------------------
phase "moto S3 server"
MOTO_LOG=$TESTENV/moto.log
for _ in 1 2 3; do
    MOTO_PORT=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    if "$PY" - "$MOTO_PORT" "$MOTO_PID" <<'EOF'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 30
while time.time() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(1)
        time.sleep(0.1)
sys.exit(1)
EOF
    then
        break
    fi
    kill "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
done
[[ -n $MOTO_PID ]] || { tail -n 20 "$MOTO_LOG"; die "moto_server did not start"; }
export OPENFC_TEST_S3_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
echo "OPENFC_TEST_S3_ENDPOINT=$OPENFC_TEST_S3_ENDPOINT (pid $MOTO_PID)"

export OPENFC_REQUIRE_EXTERNAL=1

if [[ $MODE == infra ]]; then
    phase "infra self-check"
    "$PY" - <<'EOF'
import os, subprocess, uuid, requests
s3 = os.environ["OPENFC_TEST_S3_ENDPOINT"]
bucket = "selfcheck-" + uuid.uuid4().hex[:8]
assert requests.put(f"{s3}/{bucket}", timeout=10).status_code == 200
assert requests.put(f"{s3}/{bucket}/a/b.zip", data=b"xyz", timeout=10).status_code == 200
# moto refuses anonymous reads; any (unverified) signature makes the request authenticated.
auth = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host, Signature=00"}
r = requests.get(f"{s3}/{bucket}/a/b.zip", headers=auth, timeout=10)
assert r.status_code == 200 and r.content == b"xyz", r
db = "selfcheck_" + uuid.uuid4().hex[:8]
url = os.environ["OPENFC_TEST_DATABASE_URL"]
subprocess.run([os.environ["OPENFC_TEST_PSQL"], url, "-qAtc", f"CREATE DATABASE {db}"], check=True)
out = subprocess.run([os.environ["OPENFC_TEST_PSQL"], url.rsplit("/", 1)[0] + "/" + db, "-qAtc",
                      "select current_database()"], check=True, capture_output=True, text=True).stdout.strip()
assert out == db, out
print("moto: bucket + object OK; postgres: CREATE DATABASE + connect OK")
EOF
    phase "pytest --collect-only"
    OPENFC_BIN=${OPENFC_BIN:-$ROOT/target/debug/openfc} "$PY" -m pytest --collect-only -q \
        -o cache_dir="$TESTENV/pytest_cache" tests/e2e "$@"
    phase_end
    exit 0
fi

# ---------------------------------------------------------------------------------------------------------------
if [[ $MODE != nocargo ]]; then
    phase "cargo build --workspace --bins"
    cargo build --workspace --bins
    export OPENFC_BIN=$ROOT/target/debug/openfc
fi

if [[ $MODE == all ]]; then
    phase "cargo nextest run --workspace"
    # The fuzz targets run a fixed sequence of inputs unless OPENFC_FUZZ_SECONDS is set, and the property tests
    # a fixed seed here, so a CI result never depends on a draw; scripts/fuzz.sh (hours, fresh seeds) is where
    # new findings come from (docs/fuzzing.md).
    PROPTEST_RNG_SEED=${PROPTEST_RNG_SEED:-20261208} cargo nextest run --workspace --no-tests=warn
fi

# ---------------------------------------------------------------------------------------------------------------
if [[ $MODE != infra && $# -eq 0 ]]; then
    # The Python and Node.js runtime shims on their own, driven over HTTP like the invoker drives them.
    phase "pytest tests/runtimes"
    "$PY" -m pytest -q -o cache_dir="$TESTENV/pytest_cache" tests/runtimes
fi

# ---------------------------------------------------------------------------------------------------------------
phase "runtime built-ins (openfc runtimes install, cached in .testenv/builtins)"
# FC's built-in Python packages and Node.js modules, from PyPI and npm once per .testenv (then a stat); the e2e
# servers that test them point --builtins-dir here.
export OPENFC_TEST_BUILTINS_DIR=$TESTENV/builtins
"${OPENFC_BIN:-$ROOT/target/debug/openfc}" runtimes install --builtins-dir "$OPENFC_TEST_BUILTINS_DIR" \
    >"$TESTENV/builtins.log" 2>&1 || { cat "$TESTENV/builtins.log"; die "openfc runtimes install failed"; }
tail -n 1 "$TESTENV/builtins.log"

# ---------------------------------------------------------------------------------------------------------------
phase "pytest tests/e2e"
export OPENFC_BIN=${OPENFC_BIN:-$ROOT/target/debug/openfc}
[[ -x $OPENFC_BIN ]] || die "$OPENFC_BIN does not exist or is not executable"
echo "OPENFC_BIN=$OPENFC_BIN"
set +e
"$PY" -m pytest -q -o cache_dir="$TESTENV/pytest_cache" tests/e2e "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "pytest selected no tests (exit 5)"
    rc=0
fi
phase_end
exit "$rc"
