"""Helpers for the invocation and sandbox tests (test_invoke*.py, test_sandbox.py): code packages built in the
test (Python, Node.js and custom-runtime functions), function setup on the raw client, and InvokeFunction through
the raw client with its response decoded (result, FC headers, the X-Fc-Log-Result tail)."""

import base64
import io
import json
import textwrap
import time
import zipfile
from dataclasses import dataclass

import requests

from crc64 import crc64_str
from helpers import assert_fc_error, assert_ok, b64, unique
from sdk import q_params, raw_for, svc_seg

FIXED_TIME = (2020, 1, 1, 0, 0, 0)

# The FC response headers every successful synchronous invocation carries.
INVOKE_HEADERS = ("X-Fc-Request-Id", "X-Fc-Code-Checksum", "X-Fc-Invocation-Duration", "X-Fc-Max-Memory-Usage",
                  "X-Fc-Invocation-Service-Version", "X-Fc-Instance-Id")

UNHANDLED = "UnhandledInvocationError"
HANDLED = "HandledInvocationError"


# --- code packages ----------------------------------------------------------------------------------------
def code_zip(files):
    """files: {name: str | bytes | (str|bytes, mode)}; a name with mode 0o755 (e.g. a custom runtime's
    `bootstrap`) is stored with the executable bit. Deterministic bytes for the same input."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            mode = 0o644
            if isinstance(data, tuple):
                data, mode = data
            if isinstance(data, str):
                data = data.encode()
            zi = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.create_system = 3
            zi.external_attr = (0o100000 | mode) << 16
            zf.writestr(zi, data)
    return buf.getvalue()


def dedent(src):
    return textwrap.dedent(src).lstrip("\n")


def py_zip(src, module="index", **extra):
    """A Python package with `module.py` = src (dedented) plus extra files."""
    return code_zip({f"{module}.py": dedent(src), **extra})


def node_zip(src, module="index", **extra):
    return code_zip({f"{module}.js": dedent(src), **extra})


# A minimal custom runtime: a Python stdlib HTTP server answering the custom-runtime contract (spec 8.1).
# `BODY` is the per-function part: it defines `invoke(headers, body) -> (status, headers, body)` and optionally
# `initialize(headers)`.
CUSTOM_SERVER = '''\
#!/usr/bin/python3 -u
import http.server, json, os, socket, sys

{body}

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def _answer(self, status, headers, body):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {{k.lower(): v for k, v in self.headers.items()}}
        if self.path == "/initialize":
            fn = globals().get("initialize")
            self._answer(*(fn(headers) if fn else (200, [], b"")))
        elif self.path == "/invoke":
            self._answer(*invoke(headers, body))
        else:
            self._answer(404, [], b"unknown path " + self.path.encode())

    do_GET = do_POST


class S(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    port = int(os.environ.get("FC_CUSTOM_LISTEN_PORT", "9000"))
    print("custom runtime listening on", port, "argv", sys.argv[1:], flush=True)
    S(("0.0.0.0", port), H).serve_forever()
'''


def custom_zip(body, name="bootstrap", **extra):
    """A custom-runtime package: `name` (executable) is a Python HTTP server whose behaviour is `body`."""
    return code_zip({name: (CUSTOM_SERVER.format(body=dedent(body)), 0o755), **extra})


# --- setup on the raw client ------------------------------------------------------------------------------
def new_service(server, prefix="isvc", **fields):
    name = unique(prefix)
    assert_ok(server.raw.post("/services", json={"serviceName": name, **fields}))
    return name


def function_body(name, pkg, runtime="python3.10", handler="index.handler", **fields):
    return {"functionName": name, "runtime": runtime, "handler": handler, "code": {"zipFile": b64(pkg)}, **fields}


def new_function(server, svc, pkg, runtime="python3.10", handler="index.handler", name=None, **fields):
    """Creates a function; returns its name."""
    name = name or unique("ifn")
    assert_ok(server.raw.post(f"/services/{svc}/functions", json=function_body(name, pkg, runtime, handler, **fields)))
    return name


def update_code(server, svc, fn, pkg, **fields):
    return assert_ok(server.raw.put(f"/services/{svc}/functions/{fn}", json={"code": {"zipFile": b64(pkg)}, **fields}))


def publish(server, svc, description=""):
    return int(assert_ok(server.raw.post(f"/services/{svc}/versions", json={"description": description}))["versionId"])


def create_alias(server, svc, alias, version, weights=None):
    body = {"aliasName": alias, "versionId": str(version)}
    if weights:
        body["additionalVersionWeight"] = weights
    return assert_ok(server.raw.post(f"/services/{svc}/aliases", json=body))


def http_trigger(server, svc, fn, methods=("GET", "POST"), auth="anonymous", qualifier=None, name="web"):
    """An HTTP trigger on the function (one per function); returns the trigger."""
    body = {"triggerName": name, "triggerType": "http", "triggerConfig": {"authType": auth, "methods": list(methods)}}
    if qualifier:
        body["qualifier"] = qualifier
    return assert_ok(server.raw.post(f"/services/{svc}/functions/{fn}/triggers", json=body))


def function_logs(server, svc, fn):
    """Every line the function's instances wrote (openfc's log API, which survives restarts)."""
    return assert_ok(server.raw.get(f"/services/{svc}/functions/{fn}/logs", params={"limit": "10000"}))["lines"]


# --- invocation -------------------------------------------------------------------------------------------
@dataclass
class Invocation:
    resp: requests.Response

    @property
    def status(self):
        return self.resp.status_code

    @property
    def body(self):
        return self.resp.content

    @property
    def text(self):
        return self.resp.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.resp.content)

    def h(self, name):
        return self.resp.headers.get(name)

    @property
    def request_id(self):
        return self.h("X-Fc-Request-Id")

    @property
    def instance_id(self):
        return self.h("X-Fc-Instance-Id")

    @property
    def error_type(self):
        return self.h("X-Fc-Error-Type")

    @property
    def version(self):
        return self.h("X-Fc-Invocation-Service-Version")

    @property
    def log(self):
        """The decoded X-Fc-Log-Result (None without Tail)."""
        v = self.h("X-Fc-Log-Result")
        return None if v is None else base64.b64decode(v).decode("utf-8", "replace")

    def describe(self):
        hdrs = {k: v for k, v in self.resp.headers.items() if k.lower().startswith("x-fc-") and k != "X-Fc-Log-Result"}
        return f"{self.status} {hdrs} body={self.body[:1500]!r} log={self.log!r}"


def invoke_path(svc, fn, qualifier=None, form="path"):
    return f"/services/{svc_seg(svc, qualifier, form)}/functions/{fn}/invocations"


def invoke(server, svc, fn, payload=b"", qualifier=None, form="path", log=False, async_=False, headers=None,
           prefix="2016", timeout=60):
    """InvokeFunction through the raw FC-signed client; returns an Invocation (never raises on status)."""
    raw = raw_for(server, prefix)
    hdrs = {}
    if log:
        hdrs["X-Fc-Log-Type"] = "Tail"
    if async_:
        hdrs["X-Fc-Invocation-Type"] = "Async"
    hdrs.update(headers or {})
    r = raw.post(invoke_path(svc, fn, qualifier, form), body=payload, headers=hdrs, params=q_params(qualifier, form),
                 content_type="application/octet-stream", timeout=timeout)
    return Invocation(r)


def invoke_ok(server, svc, fn, payload=b"", **kw):
    """A synchronous invocation that must succeed (200, no X-Fc-Error-Type, every FC header present)."""
    inv = invoke(server, svc, fn, payload, **kw)
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    missing = [h for h in INVOKE_HEADERS if not inv.h(h)]
    assert not missing, f"missing {missing}: {inv.describe()}"
    return inv


def invoke_json(server, svc, fn, payload=b"", **kw):
    inv = invoke_ok(server, svc, fn, payload if isinstance(payload, bytes) else json.dumps(payload).encode(), **kw)
    try:
        return inv.json(), inv
    except ValueError:
        raise AssertionError(f"not JSON: {inv.describe()}")


def invoke_fails(server, svc, fn, payload=b"", error_type=UNHANDLED, **kw):
    """A function failure: 200 + X-Fc-Error-Type, a JSON body {errorMessage, errorType, stackTrace}."""
    inv = invoke(server, svc, fn, payload, **kw)
    assert inv.status == 200, inv.describe()
    assert inv.error_type == error_type, inv.describe()
    assert inv.request_id, inv.describe()
    try:
        body = inv.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {inv.describe()}")
    assert isinstance(body, dict), inv.describe()
    assert isinstance(body.get("errorMessage"), str), body
    assert isinstance(body.get("errorType"), str) and body["errorType"], body
    assert isinstance(body.get("stackTrace", []), list), body
    return body, inv


def invoke_error(server, svc, fn, status, code, payload=b"", **kw):
    """An HTTP error from InvokeFunction (validation, not found, throttled...)."""
    inv = invoke(server, svc, fn, payload, **kw)
    return assert_fc_error(inv.resp, status, code), inv


def checksum(pkg):
    return crc64_str(pkg)


def health(server):
    r = requests.get(f"{server.endpoint}/health", timeout=10)
    assert r.status_code == 200, r.status_code
    return r.json()


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
