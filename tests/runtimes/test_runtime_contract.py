"""The custom-runtime HTTP contract every built-in runtime speaks (crates/openfc-invoker/runtimes), one suite run
once per language: event handler results, errors, the initializer, logging and stdout markers, lifecycle hooks,
HTTP handlers, concurrency and connection behaviour. What differs between languages (function sources, handler
names, error kinds, log formats) is data in lang_*.py; tests of one language only are in test_<lang>_runtime.py."""

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import lang_nodejs
import lang_python
from runtime_helpers import META, check, markers_around, pool_connections

LANGS = [lang_python.PROFILE, lang_nodejs.PROFILE]


def per_lang(cases_of):
    """Parameters (lang, case) for every case of every language, with ids `<lang>-<handler>`."""
    params = [(lang, case) for lang in LANGS for case in cases_of(lang)]
    return {"argvalues": params, "ids": ["%s-%s" % (lang.name, case[0]) for lang, case in params]}


@pytest.fixture(params=LANGS, ids=[lang.name for lang in LANGS])
def lang(request):
    return request.param


@pytest.fixture
def rt(start_runtime, lang):
    return start_runtime(lang.name, lang.files, handler="index.echo", env={"MY_USER_VAR": "user-value"})


# ---------------------------------------------------------------------------------------------------------------
# event handler results
# ---------------------------------------------------------------------------------------------------------------

def test_result_types(rt, lang):
    for handler, event, want, ctype in lang.result_cases:
        r = rt.invoke(event, handler=handler)
        check(r, 200, body=want, headers={"content-type": ctype} if ctype else None,
              absent=("x-fc-status", "x-fc-error-type"))


def test_large_event_round_trip(rt):
    event = bytes(range(256)) * 8192  # 2 MiB
    check(rt.invoke(event, handler="index.echo"), 200, body=event)


def test_handler_from_environment_when_header_absent(start_runtime, lang):
    rt = start_runtime(lang.name, lang.files, handler=lang.ret_42)
    r = rt.session.post(rt.base + "/invoke", data=b"", headers={"x-fc-request-id": "r1"})
    check(r, 200, body=b"42")


# ---------------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, case", **per_lang(lambda lang: lang.error_cases))
def test_errors_then_runtime_keeps_serving(rt, lang, case):
    handler, kind, etype, message, stack = case
    pid = rt.invoke(b"", handler=lang.pid_handler).content if lang.pid_handler else None
    r = rt.invoke(b"x", handler=handler)
    check(r, error={"errorType": etype, "errorMessage": message, "kind": kind})
    trace = r.json().get("stackTrace", [])
    assert all(isinstance(line, str) for line in trace)
    assert not any(frame in line for line in trace for frame in lang.bootstrap_frames), trace
    if stack:
        assert any(stack in line for line in trace), trace
    # the same process (and connection) answers the next request
    check(rt.invoke(b"next", handler="index.echo"), 200, body=b"next")
    if pid is not None:
        assert rt.invoke(b"", handler=lang.pid_handler).content == pid  # same process
    assert rt.alive()


def test_error_is_logged_between_markers(rt, lang):
    rid = "err-" + uuid.uuid4().hex
    check(rt.invoke(b"", handler=lang.noisy_failure, request_id=rid), error=lang.noisy_error)
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    markers_around(lines, "Invoke", rid, inside=lang.noisy_inside(rid))


# ---------------------------------------------------------------------------------------------------------------
# initializer
# ---------------------------------------------------------------------------------------------------------------

def test_initializer_runs_once(start_runtime, lang):
    rt = start_runtime(lang.name, lang.counter, handler="index.handler", initializer="index.init")
    rid = "init-" + uuid.uuid4().hex
    check(rt.initialize(request_id=rid), 200, body=b"")
    # concurrent and later /initialize calls are no-ops
    with ThreadPoolExecutor(3) as pool:
        for r in pool.map(lambda _: rt.initialize(session=requests.Session()), range(3)):
            check(r, 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"2")
    check(rt.invoke(b""), 200, body=b"3")
    lang.check_init_report(check(rt.invoke(b"", handler="index.report"), 200).json(), rid)
    lines = rt.wait_stdout("FC Initialize End RequestId: " + rid)
    markers_around(lines, "Initialize", rid, inside=["^initializer ran$"])
    assert sum(1 for line in lines if line.startswith("FC Initialize Start")) == 1, lines


def test_initializer_failure_is_retried(start_runtime, lang):
    rt = start_runtime(lang.name, lang.init_fails_once, initializer="index.init")
    check(rt.initialize(), error=lang.init_failure)
    check(rt.initialize(), 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"2")


def test_initializer_missing_and_from_header(start_runtime, lang):
    rt = start_runtime(lang.name, lang.counter, handler="index.handler", initializer="")
    check(rt.initialize(), 200)  # no initializer configured: nothing runs
    check(rt.invoke(b""), 200, body=b"1")
    check(rt.initialize(initializer="index.nosuch"), error={"errorType": "HandlerNotFound"})
    initializer, after = lang.header_init
    check(rt.initialize(initializer=initializer), 200)  # named by the header only
    check(rt.invoke(b""), 200, body=after)


# ---------------------------------------------------------------------------------------------------------------
# logging and stdout markers
# ---------------------------------------------------------------------------------------------------------------

def test_stdout_markers_and_logging_format(rt, lang):
    rid = "log-" + uuid.uuid4().hex
    check(rt.invoke(b"", handler=lang.chatty, request_id=rid), 200, body=b"ok")
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    between = markers_around(lines, "Invoke", rid, inside=lang.chatty_inside(rid))
    for needle in lang.chatty_never:
        assert not any(needle in line for line in between)
    order = [next(i for i, line in enumerate(between) if needle in line) for needle in lang.chatty_order]
    assert order == sorted(order), between
    rt.wait_stdout(lang.chatty_stderr, stream="stderr")


def test_markers_for_every_invocation(rt, lang):
    rids = ["m%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(5)]
    for rid in rids:
        check(rt.invoke(b"", handler=lang.ret_42, request_id=rid), 200)
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

    check(rt.invoke(b"warm", handler="index.echo"), 200)
    t0 = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(one, range(10)))
    elapsed = time.monotonic() - t0
    for r in results:
        check(r, 200, body=b"slept")
    assert elapsed < 1.2, "10 x 0.2 s sleeps took %.2fs (not concurrent?)" % elapsed


def test_keep_alive_reuses_one_connection(rt, lang, raw_conn):
    s = requests.Session()
    lang.keep_alive_probe(rt, s)
    assert pool_connections(s, rt.base) == 1
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
    check(rt.session.post(rt.base + "/nope", data=b"", headers={"x-fc-request-id": "x"}), 400)
    check(rt.invoke(b"still up", handler="index.echo"), 200, body=b"still up")


def test_startup_is_cheap(start_runtime, lang):
    t0 = time.monotonic()
    subprocess.run(lang.bare_cmd, check=True)
    bare = time.monotonic() - t0
    best = min(start_runtime(lang.name, lang.tiny_files).ready_after for _ in range(3))
    overhead_ms = (best - bare) * 1000
    print("%s runtime: listening %.1f ms after spawn, bare interpreter %.1f ms" % (lang.name, best * 1000, bare * 1000))
    assert overhead_ms < lang.max_startup_overhead_ms, \
        "runtime start-up costs %.1f ms over the bare interpreter" % overhead_ms


# ---------------------------------------------------------------------------------------------------------------
# HTTP handlers (the round trips, whose programming models differ, are in the per-language files)
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, case", **per_lang(lambda lang: lang.http_cases))
def test_http_cases(start_runtime, lang, case):
    handler, method, status, body, error = case
    rt = start_runtime(lang.name, lang.http_files, handler=lang.http_main)
    r = rt.http(method, "/p", handler=handler)
    if error:
        check(r, error=error)
    else:
        # a user 404 is not a failed invocation: no x-fc-status / x-fc-error-type
        check(r, status, body=body, absent=("x-fc-status", "x-fc-error-type"))
    fixed, fixed_body = lang.http_fixed
    check(rt.http("GET", "/ok", handler=fixed), 200, body=fixed_body)


def test_http_head_has_no_body(start_runtime, lang, raw_conn):
    fixed, fixed_body = lang.http_fixed
    rt = start_runtime(lang.name, lang.http_files, handler=fixed)
    c = raw_conn(rt.port)
    h = rt.headers(control_path="/http-invoke")
    status, headers, body = c.request("HEAD", "/x", h, head=True)
    assert status == 200 and body == b""
    assert ("content-length", str(len(fixed_body))) in headers
    status, _, body = c.request("GET", "/x", h)  # framing intact on the same connection
    assert (status, body) == (200, fixed_body)


# ---------------------------------------------------------------------------------------------------------------
# lifecycle hooks
# ---------------------------------------------------------------------------------------------------------------

def test_lifecycle_hooks(start_runtime, lang):
    rt = start_runtime(lang.name, lang.hooks)
    check(rt.lifecycle("pre-stop"), 200)  # no hook configured
    check(rt.lifecycle("pre-freeze"), 200)
    rid = "stop-" + uuid.uuid4().hex
    check(rt.lifecycle("pre-stop", lang.pre_stop, request_id=rid), 200)
    assert (rt.code_dir / "stopped").read_text() == META["function_name"]
    lines = rt.wait_stdout("FC PreStop End RequestId: " + rid)
    markers_around(lines, "PreStop", rid, inside=["^pre-stop ran " + rid])
    check(rt.lifecycle("pre-freeze", lang.pre_freeze), error=lang.pre_freeze_error)
    check(rt.lifecycle("pre-stop", "index.missing"), error={"errorType": "HandlerNotFound"})
    check(rt.invoke(b""), 200, body=b"ok")
