"""The built-in Python runtime (crates/openfc-invoker/runtimes/python/bootstrap.py) over the custom-runtime
HTTP contract: event handlers, context, initializer, errors, WSGI, lifecycle hooks, logging, concurrency and
connection behaviour."""

import json
import re
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from runtime_helpers import META, PYTHON, check, markers_around, pool_connections

LANG = "python"

INDEX = r'''
import json
import logging
import os
import sys
import threading
import time


class MyError(Exception):
    pass


def echo(event, context):
    return event


def event_type(event, context):
    return type(event).__name__


def ret_str(event, context):
    return "h\u00e9llo \u4e2d"


def ret_bytes(event, context):
    return b"\x00\xffraw"


def ret_bytearray(event, context):
    return bytearray(b"ba")


def ret_dict(event, context):
    return {"a": 1, "b": [True, None], "s": "x"}


def ret_list(event, context):
    return [1, "two", 3.5]


def ret_int(event, context):
    return 42


def ret_float(event, context):
    return 1.5


def ret_bool(event, context):
    return True


def ret_none(event, context):
    return None


def ret_implicit(event, context):
    pass


def context_echo(event, context):
    c = context
    return {
        "request_id": c.request_id,
        "credentials": [c.credentials.access_key_id, c.credentials.access_key_secret, c.credentials.security_token],
        "function": {"name": c.function.name, "handler": c.function.handler, "memory": c.function.memory,
                     "timeout": c.function.timeout, "initializer": c.function.initializer,
                     "initialization_timeout": c.function.initialization_timeout},
        "service": {"name": c.service.name, "log_project": c.service.log_project, "log_store": c.service.log_store,
                    "qualifier": c.service.qualifier, "version_id": c.service.version_id},
        "region": c.region,
        "account_id": c.account_id,
        "has_tracing": hasattr(c, "tracing"),
        "remaining": c.get_remaining_time_in_ms(),
        "env": {k: os.environ.get(k) for k in ("FC_FUNCTION_NAME", "FC_INSTANCE_ID", "MY_USER_VAR",
                                                 "FC_FUNC_CODE_PATH")},
        "cwd": os.getcwd(),
        "sys_path0": sys.path[0],
    }


def div0(event, context):
    return 1 / 0


def custom(event, context):
    raise MyError("custom boom")


def exits(event, context):
    sys.exit(3)


def thread_name(event, context):
    return str(threading.get_ident())


def sleeper(event, context):
    time.sleep(0.2)
    return "slept"


def chatty(event, context):
    print("print from handler", context.request_id)
    sys.stderr.write("stderr from handler\n")
    logging.getLogger().info("info via logging")
    logging.getLogger("child").warning("warn via child logger")
    logging.getLogger().debug("debug is below the default level")
    return "ok"


def noisy_failure(event, context):
    print("about to fail")
    raise ValueError("noisy failure")


def not_callable_target(event, context):
    return "unused"


not_callable = 5
'''

FILES = {
    "index.py": INDEX,
    "broken.py": "def handler(event, context)\n    return 1\n",
    "needs_dep.py": "import not_installed_pkg\n\ndef handler(event, context):\n    return 1\n",
    "sub/dir/mod.py": "def handler(event, context):\n    return 'nested:' + __name__\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": "def handler(event, context):\n    return 'dotted:' + __name__\n",
    "helper_lib.py": "VALUE = 'from helper'\n",
    "uses_helper.py": "import helper_lib\n\ndef handler(event, context):\n    return helper_lib.VALUE\n",
}


@pytest.fixture
def rt(start_runtime):
    return start_runtime(LANG, FILES, handler="index.echo", env={"MY_USER_VAR": "user-value"})


# ---------------------------------------------------------------------------------------------------------------
# event handler results
# ---------------------------------------------------------------------------------------------------------------

RESULT_CASES = [
    # handler, request body, expected response body, expected content type
    ("index.echo", b"raw \x00\xff event", b"raw \x00\xff event", "application/octet-stream"),
    ("index.event_type", b"{}", b"bytes", None),
    ("index.ret_str", b"", "h\u00e9llo \u4e2d".encode("utf-8"), "application/octet-stream"),
    ("index.ret_bytes", b"", b"\x00\xffraw", "application/octet-stream"),
    ("index.ret_bytearray", b"", b"ba", "application/octet-stream"),
    ("index.ret_dict", b"", json.dumps({"a": 1, "b": [True, None], "s": "x"}).encode(), "application/json"),
    ("index.ret_list", b"", json.dumps([1, "two", 3.5]).encode(), "application/json"),
    ("index.ret_int", b"", b"42", "application/json"),
    ("index.ret_float", b"", b"1.5", "application/json"),
    ("index.ret_bool", b"", b"true", "application/json"),
    ("index.ret_none", b"", b"", None),
    ("index.ret_implicit", b"", b"", None),
    ("sub/dir/mod.handler", b"", b"nested:sub/dir/mod", None),
    ("pkg.mod.handler", b"", b"dotted:pkg.mod", None),
    ("uses_helper.handler", b"", b"from helper", None),
]


def test_result_types(rt):
    for handler, event, want, ctype in RESULT_CASES:
        r = rt.invoke(event, handler=handler)
        check(r, 200, body=want, headers={"content-type": ctype} if ctype else None,
              absent=("x-fc-status", "x-fc-error-type"))


def test_large_event_round_trip(rt):
    event = bytes(range(256)) * 8192  # 2 MiB
    check(rt.invoke(event, handler="index.echo"), 200, body=event)


def test_context_fields(rt):
    rid = "req-" + uuid.uuid4().hex
    r = check(rt.invoke(b"", handler="index.context_echo", request_id=rid), 200)
    got = r.json()
    remaining = got.pop("remaining")
    assert 0 < remaining <= int(META["timeout"]) * 1000, remaining
    assert got == {
        "request_id": rid,
        "credentials": ["STS.ak-id", "ak-secret", "sec-token"],
        "function": {"name": META["function_name"], "handler": "index.context_echo", "memory": 256, "timeout": 30,
                     "initializer": "", "initialization_timeout": 7},
        "service": {"name": META["service_name"], "log_project": META["log_project"], "log_store": META["log_store"],
                    "qualifier": "LATEST", "version_id": ""},
        "region": META["region"],
        "account_id": META["account_id"],
        "has_tracing": True,
        "env": {"FC_FUNCTION_NAME": META["function_name"], "FC_INSTANCE_ID": META["instance_id"],
                "MY_USER_VAR": "user-value", "FC_FUNC_CODE_PATH": str(rt.code_dir)},
        "cwd": str(rt.code_dir),
        "sys_path0": str(rt.code_dir),
    }


def test_context_falls_back_to_environment(rt):
    # Only the request id and handler as headers: function/service metadata comes from the start-up env.
    r = rt.session.post(rt.base + "/invoke", data=b"",
                        headers={"x-fc-request-id": "rid-env", "x-fc-control-path": "/invoke",
                                 "x-fc-function-handler": "index.context_echo"})
    got = check(r, 200).json()
    assert got["request_id"] == "rid-env"
    assert got["function"]["name"] == META["function_name"]
    assert got["function"]["memory"] == 256
    assert got["service"]["log_store"] == META["log_store"]
    assert got["credentials"] == ["", "", ""]


def test_handler_from_environment_when_header_absent(start_runtime):
    rt = start_runtime(LANG, FILES, handler="index.ret_int")
    r = rt.session.post(rt.base + "/invoke", data=b"", headers={"x-fc-request-id": "r1"})
    check(r, 200, body=b"42")


# ---------------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------------

ERROR_CASES = [
    # handler, errorType, errorMessage substring, substring expected in the stack trace (or None)
    ("index.div0", "ZeroDivisionError", "division by zero", "index.py"),
    ("index.custom", "MyError", "custom boom", "in custom"),
    ("index.exits", "SystemExit", "3", "in exits"),
    ("nosuch.handler", "ModuleNotFoundError", "nosuch", None),
    ("index.nosuch", "HandlerNotFound", "Handler 'nosuch' is missing on module 'index'", None),
    ("index.not_callable", "HandlerNotFound", "not callable", None),
    ("broken.handler", "SyntaxError", "", "broken.py"),
    ("needs_dep.handler", "ModuleNotFoundError", "not_installed_pkg", "needs_dep.py"),
    ("noperiod", "InvalidHandler", "noperiod", None),
    ("sub/dir/missing.handler", "ModuleNotFoundError", "sub/dir/missing", None),
]


@pytest.mark.parametrize("handler,etype,message,stack", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_then_runtime_keeps_serving(rt, handler, etype, message, stack):
    r = rt.invoke(b"x", handler=handler)
    check(r, error={"errorType": etype, "errorMessage": message, "kind": "Unhandled"})
    trace = r.json()["stackTrace"]
    assert all(isinstance(line, str) for line in trace)
    assert not any("bootstrap.py" in line or "importlib" in line for line in trace), trace
    if stack:
        assert any(stack in line for line in trace), trace
    # the same process (and connection) answers the next request
    check(rt.invoke(b"next", handler="index.echo"), 200, body=b"next")
    assert rt.alive()


def test_error_is_logged_between_markers(rt):
    rid = "err-" + uuid.uuid4().hex
    check(rt.invoke(b"", handler="index.noisy_failure", request_id=rid), error={"errorType": "ValueError"})
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    markers_around(lines, "Invoke", rid, inside=[r"^about to fail$", re.escape(rid) + r" \[ERROR\] Traceback",
                                                 r"ValueError: noisy failure"])


# ---------------------------------------------------------------------------------------------------------------
# initializer
# ---------------------------------------------------------------------------------------------------------------

COUNTER = {
    "index.py": '''
        import time
        counter = 0
        seen = []

        def init(context):
            global counter
            time.sleep(0.2)
            counter += 1
            seen.append([context.request_id, context.function.initialization_timeout,
                         context.get_remaining_time_in_ms()])
            print("initializer ran")

        def handler(event, context):
            global counter
            counter += 1
            return str(counter)

        def report(event, context):
            return {"seen": seen}
    ''',
}


def test_initializer_runs_once(start_runtime):
    rt = start_runtime(LANG, COUNTER, handler="index.handler", initializer="index.init")
    rid = "init-" + uuid.uuid4().hex
    check(rt.initialize(request_id=rid), 200, body=b"")
    # concurrent and later /initialize calls are no-ops
    with ThreadPoolExecutor(3) as pool:
        for r in pool.map(lambda _: rt.initialize(session=requests.Session()), range(3)):
            check(r, 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"2")
    check(rt.invoke(b""), 200, body=b"3")
    seen = check(rt.invoke(b"", handler="index.report"), 200).json()["seen"]
    assert len(seen) == 1 and seen[0][0] == rid and seen[0][1] == 7 and 0 < seen[0][2] <= 7000, seen
    lines = rt.wait_stdout("FC Initialize End RequestId: " + rid)
    markers_around(lines, "Initialize", rid, inside=["^initializer ran$"])
    assert sum(1 for line in lines if line.startswith("FC Initialize Start")) == 1, lines


def test_initializer_failure_is_retried(start_runtime):
    rt = start_runtime(LANG, {"index.py": '''
        attempts = 0

        def init(context):
            global attempts
            attempts += 1
            if attempts == 1:
                raise RuntimeError("first attempt fails")

        def handler(event, context):
            return str(attempts)
    '''}, initializer="index.init")
    check(rt.initialize(), error={"errorType": "RuntimeError", "errorMessage": "first attempt fails"})
    check(rt.initialize(), 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"2")


def test_initializer_from_header_and_missing(start_runtime):
    rt = start_runtime(LANG, COUNTER, handler="index.handler", initializer="")
    check(rt.initialize(), 200)  # no initializer configured: nothing runs
    check(rt.invoke(b""), 200, body=b"1")
    check(rt.initialize(initializer="index.nosuch"), error={"errorType": "HandlerNotFound"})
    check(rt.initialize(initializer="index.init"), 200)  # named by the header only
    check(rt.invoke(b""), 200, body=b"3")


# ---------------------------------------------------------------------------------------------------------------
# logging and stdout markers
# ---------------------------------------------------------------------------------------------------------------

def test_stdout_markers_and_logging_format(rt):
    rid = "log-" + uuid.uuid4().hex
    check(rt.invoke(b"", handler="index.chatty", request_id=rid), 200, body=b"ok")
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    ts = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    between = markers_around(lines, "Invoke", rid, inside=[
        "^print from handler %s$" % rid,
        ts + re.escape(rid) + r" \[INFO\] info via logging$",
        ts + re.escape(rid) + r" \[WARNING\] warn via child logger$",
    ])
    assert not any("debug is below" in line for line in between)
    order = [next(i for i, line in enumerate(between) if needle in line)
             for needle in ("print from handler", "info via logging", "warn via child logger")]
    assert order == sorted(order), between
    rt.wait_stdout("^stderr from handler$", stream="stderr")


def test_markers_for_every_invocation(rt):
    rids = ["m%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(5)]
    for rid in rids:
        check(rt.invoke(b"", handler="index.ret_int", request_id=rid), 200)
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rids[-1])
    for rid in rids:
        markers_around(lines, "Invoke", rid)


# ---------------------------------------------------------------------------------------------------------------
# concurrency and connections
# ---------------------------------------------------------------------------------------------------------------

def test_concurrent_invocations(rt):
    def one(i):
        with requests.Session() as s:
            return rt.invoke(b"", handler="index.sleeper", session=s)

    t0 = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(one, range(10)))
    elapsed = time.monotonic() - t0
    for r in results:
        check(r, 200, body=b"slept")
    assert elapsed < 1.2, "10 x 0.2 s sleeps took %.2fs (not concurrent?)" % elapsed


def test_keep_alive_reuses_one_connection(rt, raw_conn):
    s = requests.Session()
    a = check(rt.invoke(b"", handler="index.thread_name", session=s), 200).content
    b = check(rt.invoke(b"", handler="index.thread_name", session=s), 200).content
    assert pool_connections(s, rt.base) == 1
    assert a == b  # one connection = one server thread
    # and over a raw socket: several requests, one TCP connection, the runtime never closes it
    c = raw_conn(rt.port)
    for i in range(3):
        status, headers, body = c.request("POST", "/invoke", rt.headers("index.echo"), b"raw-%d" % i)
        assert (status, body) == (200, b"raw-%d" % i)
        assert ("connection", "close") not in headers


def test_connection_close_is_honoured(rt, raw_conn):
    c = raw_conn(rt.port)
    h = rt.headers("index.echo")
    h["Connection"] = "close"
    status, headers, body = c.request("POST", "/invoke", h, b"bye")
    assert (status, body) == (200, b"bye")
    assert ("connection", "close") in headers
    with pytest.raises(EOFError):
        c.read_response()


def test_chunked_request_body(rt, raw_conn):
    c = raw_conn(rt.port)
    head = "POST /invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    head += "".join("%s: %s\r\n" % kv for kv in rt.headers("index.echo").items())
    c.send(head.encode() + b"\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    status, _, body = c.read_response()
    assert (status, body) == (200, b"hello world")


def test_small_requests_are_fast_tcp_nodelay(rt):
    s = requests.Session()
    check(rt.invoke(b"warm", handler="index.echo", session=s), 200)
    n = 50
    t0 = time.monotonic()
    for i in range(n):
        r = rt.invoke(b"p%d" % i, handler="index.echo", session=s)
        assert r.status_code == 200
    avg_ms = (time.monotonic() - t0) * 1000 / n
    assert pool_connections(s, rt.base) == 1
    assert avg_ms < 10, "average %.1f ms per keep-alive request (Nagle/delayed ACK?)" % avg_ms


def test_unknown_control_path(rt):
    r = rt.session.post(rt.base + "/nope", data=b"", headers={"x-fc-request-id": "x"})
    check(r, 400)
    check(rt.invoke(b"still up", handler="index.echo"), 200, body=b"still up")


def test_startup_is_cheap(start_runtime):
    t0 = time.monotonic()
    subprocess.run([PYTHON, "-c", "pass"], check=True)
    bare = time.monotonic() - t0
    best = min(start_runtime(LANG, {"index.py": "def handler(e, c):\n    return 1\n"}).ready_after for _ in range(3))
    overhead_ms = (best - bare) * 1000
    print("python runtime: listening %.1f ms after spawn, bare interpreter %.1f ms" % (best * 1000, bare * 1000))
    assert overhead_ms < 60, "runtime start-up costs %.1f ms over the bare interpreter" % overhead_ms


# ---------------------------------------------------------------------------------------------------------------
# HTTP trigger (WSGI)
# ---------------------------------------------------------------------------------------------------------------

WSGI = {
    "index.py": r'''
        import json

        def app(environ, start_response):
            n = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(n)
            keys = ["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME",
                    "SERVER_PORT", "REMOTE_ADDR", "wsgi.url_scheme", "fc.request_uri", "SCRIPT_NAME"]
            out = {k: environ.get(k) for k in keys}
            out["wsgi.version"] = list(environ["wsgi.version"])
            out["http"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
            out["body"] = body.decode("utf-8")
            out["request_id"] = environ["fc.context"].request_id
            out["function"] = environ["fc.context"].function.name
            out["has_errors"] = hasattr(environ["wsgi.errors"], "write")
            out["path_utf8"] = environ["PATH_INFO"].encode("latin-1").decode("utf-8")
            start_response("201 Created", [
                ("Content-Type", "application/json"),
                ("X-Custom", "yes"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("X-Fc-Sneaky", "no"),
                ("Connection", "close"),
                ("Content-Length", "99999"),
            ])
            return [json.dumps(out).encode("utf-8")]

        def not_found(environ, start_response):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such page"]

        def generator(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            for part in ("a", "b", "c"):
                yield part.encode()

        def write_callable(environ, start_response):
            write = start_response("202 Accepted", [])
            write(b"written-")
            return [b"returned"]

        def crashes(environ, start_response):
            raise KeyError("wsgi boom")

        def forgets_start_response(environ, start_response):
            return [b"x"]
    ''',
}


def test_wsgi_round_trip(start_runtime):
    rt = start_runtime(LANG, WSGI, handler="index.app")
    rid = "http-" + uuid.uuid4().hex
    s = requests.Session()
    r = rt.http("POST", "/a/b%20c/%E4%B8%AD?x=1&x=2&y=", request_id=rid, session=s,
                headers={"X-Custom-In": "v1", "Content-Type": "text/plain", "Cookie": "k=v"},
                body=b"hello wsgi")
    check(r, 201, headers={"X-Custom": "yes", "Content-Type": "application/json"},
          absent=("X-Fc-Sneaky", "x-fc-status", "x-fc-error-type"))
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert r.headers["Content-Length"] == str(len(r.content))
    got = r.json()
    http_headers = got.pop("http")
    assert got == {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/a/b c/\u00e4\u00b8\u00ad",  # PEP 3333: bytes as latin-1
        "path_utf8": "/a/b c/\u4e2d",
        "QUERY_STRING": "x=1&x=2&y=",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "10",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(rt.port),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "fc.request_uri": "/a/b%20c/%E4%B8%AD?x=1&x=2&y=",
        "SCRIPT_NAME": "",
        "wsgi.version": [1, 0],
        "body": "hello wsgi",
        "request_id": rid,
        "function": META["function_name"],
        "has_errors": True,
    }
    assert http_headers["HTTP_X_CUSTOM_IN"] == "v1"
    assert http_headers["HTTP_COOKIE"] == "k=v"
    assert not [k for k in http_headers if k.startswith("HTTP_X_FC_")], http_headers
    # the app's "Connection: close" was dropped: the connection stays usable
    check(rt.http("GET", "/again", session=s), 201)
    assert pool_connections(s, rt.base) == 1
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    markers_around(lines, "Invoke", rid)


WSGI_CASES = [
    # handler, method, status, body, error type
    ("index.not_found", "GET", 404, b"no such page", None),
    ("index.generator", "GET", 200, b"abc", None),
    ("index.write_callable", "PUT", 202, b"written-returned", None),
    ("index.crashes", "GET", 404, None, "KeyError"),
    ("index.forgets_start_response", "GET", 404, None, "RuntimeError"),
    ("index.nosuch", "GET", 404, None, "HandlerNotFound"),
]


@pytest.mark.parametrize("handler,method,status,body,etype", WSGI_CASES, ids=[c[0] for c in WSGI_CASES])
def test_wsgi_cases(start_runtime, handler, method, status, body, etype):
    rt = start_runtime(LANG, WSGI, handler="index.app")
    r = rt.http(method, "/p", handler=handler)
    if etype:
        check(r, error={"errorType": etype})
    else:
        # a user 404 is not a failed invocation: no x-fc-status / x-fc-error-type
        check(r, status, body=body, absent=("x-fc-status", "x-fc-error-type"))
    check(rt.http("GET", "/ok", handler="index.generator"), 200, body=b"abc")


def test_wsgi_head_has_no_body(start_runtime, raw_conn):
    rt = start_runtime(LANG, WSGI, handler="index.generator")
    c = raw_conn(rt.port)
    h = rt.headers(control_path="/http-invoke")
    status, headers, body = c.request("HEAD", "/x", h, head=True)
    assert status == 200 and body == b""
    assert ("content-length", "3") in headers
    status, _, body = c.request("GET", "/x", h)  # framing intact on the same connection
    assert (status, body) == (200, b"abc")


# ---------------------------------------------------------------------------------------------------------------
# lifecycle hooks
# ---------------------------------------------------------------------------------------------------------------

HOOKS = {
    "index.py": '''
        import os

        def handler(event, context):
            return "ok"

        def pre_stop(context):
            print("pre-stop ran", context.request_id)
            with open(os.path.join(os.environ["FC_FUNC_CODE_PATH"], "stopped"), "w") as f:
                f.write(context.function.name)

        def pre_freeze(context):
            raise OSError("cannot freeze")
    ''',
}


def test_lifecycle_hooks(start_runtime):
    rt = start_runtime(LANG, HOOKS)
    check(rt.lifecycle("pre-stop"), 200)  # no hook configured
    check(rt.lifecycle("pre-freeze"), 200)
    rid = "stop-" + uuid.uuid4().hex
    check(rt.lifecycle("pre-stop", "index.pre_stop", request_id=rid), 200)
    assert (rt.code_dir / "stopped").read_text() == META["function_name"]
    lines = rt.wait_stdout("FC PreStop End RequestId: " + rid)
    markers_around(lines, "PreStop", rid, inside=["^pre-stop ran " + rid])
    check(rt.lifecycle("pre-freeze", "index.pre_freeze"), error={"errorType": "OSError", "errorMessage": "cannot freeze"})
    check(rt.lifecycle("pre-stop", "index.missing"), error={"errorType": "HandlerNotFound"})
    check(rt.invoke(b""), 200, body=b"ok")
