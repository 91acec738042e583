"""Fixtures for the end-to-end suite: real `openfc serve` processes driven by the official SDKs.

Environment:
  OPENFC_BIN                 the binary (default: <repo>/target/debug/openfc)
  OPENFC_TEST_DATABASE_URL   postgres://... of a throw-away cluster (scripts/test.sh starts one)
  OPENFC_TEST_S3_ENDPOINT    http://... of an S3-compatible test server (moto; scripts/test.sh starts one)
  OPENFC_TEST_PSQL           psql binary (default: psql on PATH, else /usr/lib/postgresql/*/bin/psql)
  OPENFC_REQUIRE_EXTERNAL=1  the postgres+s3 backend fails instead of skipping when the two URLs are missing

Backends: `sqlite` (SQLite + local code store, always) and `postgres` (PostgreSQL + S3 code store: a fresh
database and a fresh bucket per server). Modules that use the `server` fixture run on both; `sqlite_server` and
`start_server` default to sqlite.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

import rawsign

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = ROOT / "target" / "debug" / "openfc"
READY_TIMEOUT = 30.0
S3_REGION = "us-east-1"
S3_KEY = "test"
S3_SECRET = "test"

# Servers not yet torn down; their stderr tails are attached to failing test reports.
ACTIVE = []


def openfc_bin():
    return Path(os.environ.get("OPENFC_BIN") or DEFAULT_BIN)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql_bin():
    env = os.environ.get("OPENFC_TEST_PSQL")
    if env:
        return env
    found = shutil.which("psql")
    if found:
        return found
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if cands:
        return cands[-1]
    pytest.fail("psql not found (set OPENFC_TEST_PSQL)")


def external_missing():
    return [v for v in ("OPENFC_TEST_DATABASE_URL", "OPENFC_TEST_S3_ENDPOINT") if not os.environ.get(v)]


def require_external():
    missing = external_missing()
    if missing:
        msg = f"postgres+s3 backend needs {', '.join(missing)} (scripts/test.sh sets them)"
        if os.environ.get("OPENFC_REQUIRE_EXTERNAL") == "1":
            pytest.fail(msg + " and OPENFC_REQUIRE_EXTERNAL=1")
        pytest.skip(msg)


def create_pg_database():
    base = os.environ["OPENFC_TEST_DATABASE_URL"]
    name = "openfc_" + uuid.uuid4().hex[:12]
    subprocess.run([psql_bin(), base, "-qAtc", f"CREATE DATABASE {name}"], check=True, capture_output=True,
                   timeout=60)
    return base.rsplit("/", 1)[0] + "/" + name


def create_s3_bucket(name=None):
    name = name or "openfc-" + uuid.uuid4().hex[:12]
    r = requests.put(f"{os.environ['OPENFC_TEST_S3_ENDPOINT']}/{name}", timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    return name


class Server:
    """One `openfc serve` process; survives kill()/restart() with the same port, data dir and database."""

    def __init__(self, backend, workdir, args=(), env=None, name="openfc", config_via_env=False):
        self.backend = backend
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.stderr.log"
        self.name = name
        self.port = free_port()
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.database_url = None
        self.bucket = None
        self.s3_endpoint = None
        self.proc = None
        self._clients = {}
        # config_via_env: data dir, listen address, database URL and code store go in OPENFC_* variables
        # instead of flags (each flag has an environment twin).
        self.config_via_env = config_via_env
        if backend == "postgres":
            require_external()
            self.database_url = create_pg_database()
            self.bucket = create_s3_bucket()
            self.s3_endpoint = os.environ["OPENFC_TEST_S3_ENDPOINT"]
        elif backend != "sqlite":
            raise ValueError(backend)

    # --- process control -------------------------------------------------------------------------------
    def backend_args(self):
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    def command(self):
        args = [a.replace("{port}", str(self.port)) for a in self.extra_args]
        cmd = [str(openfc_bin()), "serve"]
        if not self.config_via_env:
            cmd += [*self.backend_args(), "--listen", f"127.0.0.1:{self.port}"]
            if self.bucket:
                cmd += ["--code-store", f"s3://{self.bucket}"]
        return cmd + args

    def environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFC_")}
        env.setdefault("RUST_BACKTRACE", "1")
        if self.s3_endpoint:
            env.update(OPENFC_S3_ENDPOINT=self.s3_endpoint, OPENFC_S3_REGION=S3_REGION,
                       OPENFC_S3_ACCESS_KEY_ID=S3_KEY, OPENFC_S3_SECRET_ACCESS_KEY=S3_SECRET)
        if self.config_via_env:
            env.update(OPENFC_DATA_DIR=str(self.data_dir), OPENFC_LISTEN=f"127.0.0.1:{self.port}")
            if self.database_url:
                env["OPENFC_DATABASE_URL"] = self.database_url
            if self.bucket:
                env["OPENFC_CODE_STORE"] = f"s3://{self.bucket}"
        env.update({k: v.replace("{port}", str(self.port)) for k, v in self.extra_env.items()})
        return env

    def start(self):
        binary = openfc_bin()
        if not binary.exists():
            pytest.fail(f"{binary} does not exist: build it (cargo build --workspace --bins) or set OPENFC_BIN")
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.environment(), cwd=str(self.workdir))
        if self not in ACTIVE:
            ACTIVE.append(self)
        self.wait_ready()
        self.load_credentials()
        return self

    def wait_ready(self):
        deadline = time.time() + READY_TIMEOUT
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"openfc exited with {self.proc.returncode} before /health answered\n{self.log_tail()}")
            try:
                r = requests.get(f"{self.endpoint}/health", timeout=2)
                if r.status_code == 200:
                    return
                last = f"status {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        pytest.fail(f"openfc not ready after {READY_TIMEOUT}s ({last})\n{self.log_tail()}")

    def load_credentials(self):
        path = self.data_dir / "credentials.json"
        assert path.exists(), f"{path} missing after start"
        self.creds = json.loads(path.read_text())
        self.ak = self.creds["accessKeyId"]
        self.secret = self.creds["accessKeySecret"]
        self.account_id = self.creds["accountId"]
        self.region = self.creds.get("region", "cn-hangzhou")
        self._clients = {}

    def kill(self):
        """SIGKILL, no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        self.stop()
        if self in ACTIVE:
            ACTIVE.remove(self)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])

    # --- clients ---------------------------------------------------------------------------------------
    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def fc2(self):
        """aliyun-fc2 (prefix /2016-08-15, FC signature)."""
        if "fc2" not in self._clients:
            import fc2
            self._clients["fc2"] = fc2.Client(endpoint=self.endpoint, accessKeyID=self.ak,
                                              accessKeySecret=self.secret, Timeout=30)
        return self._clients["fc2"]

    @property
    def fc21(self):
        """alibabacloud-fc-open20210406 (prefix /2021-04-06, ACS3-HMAC-SHA256)."""
        if "fc21" not in self._clients:
            self._clients["fc21"] = tea_client(self.endpoint_hostport, self.ak, self.secret, self.region)
        return self._clients["fc21"]

    @property
    def endpoint_hostport(self):
        return f"127.0.0.1:{self.port}"

    @property
    def raw(self):
        """Raw FC-signed client on /2016-08-15."""
        return rawsign.RawClient(self.endpoint, self.ak, self.secret, rawsign.PREFIX_2016)

    @property
    def raw21(self):
        """Raw FC-signed client on /2021-04-06."""
        return rawsign.RawClient(self.endpoint, self.ak, self.secret, rawsign.PREFIX_2021)

    def fc2_with(self, ak, secret):
        import fc2
        return fc2.Client(endpoint=self.endpoint, accessKeyID=ak, accessKeySecret=secret, Timeout=30)

    # --- helpers ---------------------------------------------------------------------------------------
    def cli(self, group, *args, check=True):
        """`openfc GROUP --data-dir D [--database-url U] ARGS...`, e.g. cli('keys', 'disable', AK). The storage
        flags go right after the command group (they belong to `openfc keys`, not to its actions)."""
        cmd = [str(openfc_bin()), group, *self.backend_args(), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.environment(),
                           cwd=str(self.workdir))
        if check:
            assert p.returncode == 0, f"{cmd} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        return p

    def put_oss_object(self, bucket, key, data):
        """Make `bucket/key` readable through the embedded OSS (a folder locally, the S3 endpoint otherwise)."""
        if self.s3_endpoint:
            requests.put(f"{self.s3_endpoint}/{bucket}", timeout=30)  # 200 or 409 if it exists
            r = requests.put(f"{self.s3_endpoint}/{bucket}/{key}", data=data, timeout=30)
            assert r.status_code == 200, (r.status_code, r.text)
        else:
            path = self.data_dir / "oss" / bucket / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def metrics(self):
        r = requests.get(f"{self.endpoint}/metrics", timeout=10)
        assert r.status_code == 200, r.status_code
        return r.text


def tea_client(hostport, ak, secret, region="cn-hangzhou"):
    from alibabacloud_fc_open20210406.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    cfg = open_api_models.Config(access_key_id=ak, access_key_secret=secret, endpoint=hostport, protocol="http",
                                 region_id=region, read_timeout=30000, connect_timeout=5000)
    return Client(cfg)


class ServerFactory:
    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.count = 0

    def start(self, backend="sqlite", args=(), env=None, name=None, config_via_env=False):
        self.count += 1
        name = name or f"openfc-{self.count}-{backend}"
        workdir = self.tmp.mktemp(name, numbered=True)
        return Server(backend, workdir, args=args, env=env, name=name, config_via_env=config_via_env).start()


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory
    for srv in list(ACTIVE):
        srv.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request):
    if request.param == "postgres":
        require_external()
    return request.param


@pytest.fixture(scope="module")
def server(server_factory, backend):
    """One server per module and backend (sqlite+local, postgres+s3)."""
    srv = server_factory.start(backend)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def sqlite_server(server_factory):
    srv = server_factory.start("sqlite")
    yield srv
    srv.close()


@pytest.fixture
def start_server(server_factory):
    """Start extra servers inside one test (own flags/env); all are stopped when the test ends."""
    started = []

    def start(args=(), env=None, backend="sqlite", config_via_env=False):
        srv = server_factory.start(backend, args=args, env=env, config_via_env=config_via_env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for srv in ACTIVE:
            report.sections.append((f"openfc stderr tail: {srv.name} ({srv.log_path})", srv.log_tail()))
