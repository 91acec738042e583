"""Helpers for the built-in runtime tests (see conftest.py for the fixtures).

The bootstraps in crates/openfc-invoker/runtimes/ are started directly on the host (no sandbox) with a temporary
code directory, a free port and the start-up environment the invoker provides, then driven over HTTP exactly like
the invoker will (custom-runtime contract, spec fc-api.md section 8.1).

Environment:
  OPENFC_PYTHON   interpreter for the Python runtime (default /usr/bin/python3)
  OPENFC_NODE     interpreter for the Node.js runtime (default /usr/bin/node)
"""

import os
import re
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = ROOT / "crates" / "openfc-invoker" / "runtimes"
PYTHON = os.environ.get("OPENFC_PYTHON", "/usr/bin/python3")
NODE = os.environ.get("OPENFC_NODE", "/usr/bin/node")

# The exact commands the invoker runs (with /var/fc/runtime/... in the sandbox).
COMMANDS = {
    "python": [PYTHON, "-u", str(RUNTIMES / "python" / "bootstrap.py")],
    "nodejs": [NODE, str(RUNTIMES / "nodejs" / "bootstrap.js")],
}

READY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Lang:
    """What the language-independent contract suite (test_runtime_contract.py) needs from one runtime: its
    function sources and the handler names and answers that differ between languages (lang_*.py)."""

    name: str  # the key of COMMANDS
    bare_cmd: list  # the bare interpreter doing nothing (start-up cost baseline)
    max_startup_overhead_ms: float
    tiny_files: dict  # the smallest package (start-up cost)
    files: dict  # the main package: every handler below but the initializer, hook and HTTP ones
    result_cases: list  # (handler, request body, response body, content type or None)
    ret_42: str  # a handler answering 42
    keep_alive_probe: Callable  # (rt, session) -> two requests on the session, asserting what each language can see
    error_cases: list  # (handler, kind, errorType, errorMessage substring, stack trace substring or None)
    bootstrap_frames: tuple  # substrings no user-visible stack trace line may contain
    pid_handler: str  # a handler answering its process id, or None
    noisy_failure: str  # a handler that prints "about to fail", then fails
    noisy_error: dict  # its `check` error dict
    noisy_inside: Callable  # (request id) -> regexes logged between its markers
    chatty: str  # a handler that logs through every channel, then answers "ok"
    chatty_inside: Callable  # (request id) -> regexes between the markers, in the order they are logged
    chatty_order: tuple  # substrings of those lines, in order
    chatty_never: tuple  # substrings that must not be logged (below the default level)
    chatty_stderr: str  # the regex of the line written to stderr
    counter: dict  # init (sleeps 0.2 s, counts 1, prints "initializer ran"), handler (counts 1), report
    check_init_report: Callable  # (report JSON, initialize request id) -> asserts what the initializer saw
    header_init: tuple  # (initializer named only by the header, body of the next invoke after one invoke)
    init_fails_once: dict  # init fails on its first attempt only; handler answers the attempts
    init_failure: dict  # the `check` error dict of that first attempt
    http_files: dict  # HTTP handlers
    http_main: str  # the one echoing the request (the round trip)
    http_fixed: tuple  # (handler answering a fixed body, that body)
    http_cases: list  # (handler, method, status, body or None, `check` error dict or None)
    hooks: dict  # handler "ok", a pre-stop hook writing code_dir/stopped, a pre-freeze hook that fails
    pre_stop: str
    pre_freeze: str
    pre_freeze_error: dict


# Function metadata used both for the start-up environment and the per-request headers.
META = {
    "function_name": "fn-under-test",
    "service_name": "svc-under-test",
    "memory": "256",
    "timeout": "30",
    "initialization_timeout": "7",
    "region": "cn-hangzhou",
    "account_id": "1234567890",
    "qualifier": "LATEST",
    "version_id": "",
    "log_project": "proj-a",
    "log_store": "store-a",
    "instance_id": "inst-0001",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_files(root, files):
    for rel, content in files.items():
        p = Path(root) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(textwrap.dedent(content).lstrip("\n"))


def startup_env(code_dir, port, handler, initializer="", extra=None):
    """The start-up environment the invoker must provide (all strings)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "FC_FUNC_CODE_PATH": str(code_dir),
        "FC_CUSTOM_LISTEN_PORT": str(port),
        "FC_FUNCTION_HANDLER": handler,
        "FC_FUNCTION_INITIALIZER": initializer,
        "FC_FUNCTION_NAME": META["function_name"],
        "FC_SERVICE_NAME": META["service_name"],
        "FC_FUNCTION_MEMORY_SIZE": META["memory"],
        "FC_FUNCTION_TIMEOUT": META["timeout"],
        "FC_INITIALIZATION_TIMEOUT": META["initialization_timeout"],
        "FC_REGION": META["region"],
        "FC_ACCOUNT_ID": META["account_id"],
        "FC_QUALIFIER": META["qualifier"],
        "FC_VERSION_ID": META["version_id"],
        "FC_SERVICE_LOG_PROJECT": META["log_project"],
        "FC_SERVICE_LOG_STORE": META["log_store"],
        "FC_INSTANCE_ID": META["instance_id"],
    }
    env.update(extra or {})
    return env


def fc_headers(handler, request_id=None, control_path="/invoke", initializer="", **extra):
    """The request headers the invoker sends (lower-case)."""
    h = {
        "x-fc-request-id": request_id or str(uuid.uuid4()),
        "x-fc-function-handler": handler,
        "x-fc-function-memory": META["memory"],
        "x-fc-function-timeout": META["timeout"],
        "x-fc-function-initializer": initializer,
        "x-fc-initialization-timeout": META["initialization_timeout"],
        "x-fc-access-key-id": "STS.ak-id",
        "x-fc-access-key-secret": "ak-secret",
        "x-fc-security-token": "sec-token",
        "x-fc-region": META["region"],
        "x-fc-account-id": META["account_id"],
        "x-fc-qualifier": META["qualifier"],
        "x-fc-version-id": META["version_id"],
        "x-fc-function-name": META["function_name"],
        "x-fc-service-name": META["service_name"],
        "x-fc-service-logproject": META["log_project"],
        "x-fc-service-logstore": META["log_store"],
        "x-fc-control-path": control_path,
    }
    for k, v in extra.items():
        h[k.replace("_", "-")] = v
    return h


class Runtime:
    """A running bootstrap process plus helpers that speak the invoker's side of the contract."""

    def __init__(self, lang, code_dir, handler, initializer="", env=None):
        self.lang = lang
        self.code_dir = Path(code_dir)
        self.handler = handler
        self.initializer = initializer
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.env = startup_env(code_dir, self.port, handler, initializer, env)
        self.stdout_lines = []
        self.stderr_lines = []
        self._cond = threading.Condition()
        self.session = requests.Session()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(COMMANDS[lang], env=self.env, cwd="/", stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for stream, sink in ((self.proc.stdout, self.stdout_lines), (self.proc.stderr, self.stderr_lines)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()
        self.ready_after = self._wait_ready()

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self._cond:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("runtime exited with %s before listening\n%s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return time.monotonic() - self.started_at
            except OSError:
                time.sleep(0.001)
        raise AssertionError("runtime not listening after %ss\n%s" % (READY_TIMEOUT, self.output()))

    # --- output --------------------------------------------------------------------------------------------

    def output(self):
        with self._cond:
            return "--- stdout ---\n%s\n--- stderr ---\n%s" % ("\n".join(self.stdout_lines), "\n".join(self.stderr_lines))

    def wait_stdout(self, pattern, timeout=5.0, stream="stdout"):
        """Wait until a stdout (or stderr) line matches `pattern` (regex); return a snapshot of that stream."""
        rx = re.compile(pattern)
        lines = self.stdout_lines if stream == "stdout" else self.stderr_lines
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(rx.search(line) for line in lines):
                    return list(lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s line matches %r\n%s" % (stream, pattern, self.output()))
                self._cond.wait(left)

    # --- requests ------------------------------------------------------------------------------------------

    def headers(self, handler=None, request_id=None, control_path="/invoke", **extra):
        return fc_headers(handler or self.handler, request_id, control_path, self.initializer, **extra)

    def invoke(self, body=b"", handler=None, request_id=None, session=None, headers=None):
        h = self.headers(handler, request_id)
        h.update(headers or {})
        return (session or self.session).post(self.base + "/invoke", data=body, headers=h, timeout=30)

    def initialize(self, request_id=None, initializer=None, session=None):
        h = self.headers(request_id=request_id, control_path="/initialize")
        if initializer is not None:
            h["x-fc-function-initializer"] = initializer
        return (session or self.session).post(self.base + "/initialize", headers=h, timeout=30)

    def http(self, method, path, handler=None, request_id=None, headers=None, body=None, session=None):
        h = self.headers(handler, request_id, control_path="/http-invoke")
        h.update(headers or {})
        return (session or self.session).request(method, self.base + path, headers=h, data=body, timeout=30)

    def lifecycle(self, kind, hook=None, request_id=None):
        h = self.headers(request_id=request_id, control_path="/" + kind)
        if hook:
            h["x-fc-instance-lifecycle-%s-handler" % kind] = hook
        return self.session.get(self.base + "/" + kind, headers=h, timeout=30)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.session.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------------------------------------------------------
# assertions
# ---------------------------------------------------------------------------------------------------------------

_MISSING = object()


def check(resp, status=200, body=_MISSING, json=_MISSING, headers=None, absent=(), contains=(), error=None):
    """Data-driven response check; collects every mismatch, then fails once with all of them.

    body      exact bytes (str is UTF-8 encoded)
    json      the parsed JSON body must equal this
    headers   {name: value} that must be present (value None = any value)
    absent    header names that must not be present
    contains  substrings (str) the decoded body must contain
    error     {"errorType": ..., "errorMessage": ..., "kind": "Handled"|"Unhandled"} for a failed invocation:
              checks status 404, x-fc-status, x-fc-error-type, JSON content type and the error body shape
              (errorType None: the body is {"errorMessage"} alone);
              errorMessage is matched as a substring
    """
    problems = []
    if error is not None:
        status = 404
    if resp.status_code != status:
        problems.append("status %s != %s" % (resp.status_code, status))
    if body is not _MISSING:
        want = body.encode("utf-8") if isinstance(body, str) else body
        if resp.content != want:
            problems.append("body %r != %r" % (resp.content[:300], want[:300]))
    if json is not _MISSING:
        try:
            got = resp.json()
            if got != json:
                problems.append("json %r != %r" % (got, json))
        except ValueError:
            problems.append("body is not JSON: %r" % resp.content[:300])
    for name, value in (headers or {}).items():
        got = resp.headers.get(name)
        if got is None:
            problems.append("header %s missing" % name)
        elif value is not None and got != value:
            problems.append("header %s = %r, want %r" % (name, got, value))
    for name in absent:
        if name in resp.headers:
            problems.append("header %s present (%r)" % (name, resp.headers[name]))
    text = resp.content.decode("utf-8", "replace")
    for needle in contains:
        if needle not in text:
            problems.append("body lacks %r" % needle)
    if error is not None:
        kind = error.get("kind", "Unhandled") + "InvocationError"
        if resp.headers.get("x-fc-status") != "404":
            problems.append("x-fc-status = %r" % resp.headers.get("x-fc-status"))
        if resp.headers.get("x-fc-error-type") != kind:
            problems.append("x-fc-error-type = %r, want %r" % (resp.headers.get("x-fc-error-type"), kind))
        if not resp.headers.get("content-type", "").startswith("application/json"):
            problems.append("content-type = %r" % resp.headers.get("content-type"))
        try:
            payload = resp.json()
        except ValueError:
            payload = None
            problems.append("error body is not JSON: %r" % resp.content[:300])
        if payload is not None:
            # errorType None: an error that is no exception object (Node's callback('msg')), which FC answers
            # with {"errorMessage"} alone.
            bare = "errorType" in error and error["errorType"] is None
            keys = {"errorMessage"} if bare else {"errorMessage", "errorType", "stackTrace"}
            if set(payload) != keys:
                problems.append("error keys %r" % sorted(payload))
            if not bare and not isinstance(payload.get("stackTrace"), list):
                problems.append("stackTrace is not a list")
            if "errorType" in error and payload.get("errorType") != error["errorType"]:
                problems.append("errorType %r != %r" % (payload.get("errorType"), error["errorType"]))
            if "errorMessage" in error and error["errorMessage"] not in str(payload.get("errorMessage")):
                problems.append("errorMessage %r lacks %r" % (payload.get("errorMessage"), error["errorMessage"]))
    assert not problems, "; ".join(problems) + "\nresponse: %s %r %r" % (resp.status_code, dict(resp.headers), resp.content[:500])
    return resp


def markers_around(lines, kind, request_id, inside=()):
    """Assert `FC <kind> Start/End RequestId: <id>` appear once each, in order, with every regex in `inside`
    matching some line between them. Returns the lines between the markers."""
    start = "FC %s Start RequestId: %s" % (kind, request_id)
    end = "FC %s End RequestId: %s" % (kind, request_id)
    assert lines.count(start) == 1, "%r appears %d times in %r" % (start, lines.count(start), lines)
    assert lines.count(end) == 1, "%r appears %d times in %r" % (end, lines.count(end), lines)
    i, j = lines.index(start), lines.index(end)
    assert i < j, "end marker before start marker: %r" % lines
    between = lines[i + 1:j]
    for pattern in inside:
        assert any(re.search(pattern, line) for line in between), "%r not between the markers: %r" % (pattern, between)
    return between


# ---------------------------------------------------------------------------------------------------------------
# raw HTTP/1.1 over one socket (keep-alive and framing checks)
# ---------------------------------------------------------------------------------------------------------------

class RawConnection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the runtime")
        self.buf += chunk

    def read_response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        hd = dict(headers)
        body = b""
        if not head and status not in (204, 304) and not (100 <= status < 200):
            if "chunked" in hd.get("transfer-encoding", ""):
                while True:
                    while b"\r\n" not in self.buf:
                        self._fill()
                    size_line, self.buf = self.buf.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    while len(self.buf) < size + 2:
                        self._fill()
                    body += self.buf[:size]
                    self.buf = self.buf[size + 2:]
                    if size == 0:
                        break
            else:
                n = int(hd.get("content-length", "0"))
                while len(self.buf) < n:
                    self._fill()
                body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def request(self, method, path, headers, body=b"", head=False):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
        lines += ["%s: %s" % (k, v) for k, v in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append("Content-Length: %d" % len(body))
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return self.read_response(head=head)


def pool_connections(session, base):
    """Number of connections urllib3 opened for `base` in this session."""
    pools = session.get_adapter(base).poolmanager.pools
    return sum(pools[key].num_connections for key in pools.keys())
