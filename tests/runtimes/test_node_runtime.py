"""The built-in Node.js runtime (crates/openfc-invoker/runtimes/nodejs/bootstrap.js): what only Node.js has — its
context and logger, async initializers, idle keep-alive sockets and the (request, response, context) HTTP handler.
The contract every runtime shares is test_runtime_contract.py; the functions are in lang_nodejs.py."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lang_nodejs import COUNTER, FILES, HTTP
from runtime_helpers import META, check, markers_around, pool_connections

LANG = "nodejs"


@pytest.fixture
def rt(start_runtime):
    return start_runtime(LANG, FILES, handler="index.echo", env={"MY_USER_VAR": "user-value"})


def test_context_fields(rt):
    rid = "req-" + uuid.uuid4().hex
    got = check(rt.invoke(b"", handler="index.contextEcho", request_id=rid), 200).json()
    assert got == {
        "requestId": rid,
        "credentials": {"accessKeyId": "STS.ak-id", "accessKeySecret": "ak-secret", "securityToken": "sec-token"},
        "function": {"name": META["function_name"], "handler": "index.contextEcho", "memory": 256, "timeout": 30,
                     "initializer": "", "initializationTimeout": 7},
        "service": {"name": META["service_name"], "logProject": META["log_project"], "logStore": META["log_store"],
                    "qualifier": "LATEST", "versionId": ""},
        "region": META["region"],
        "accountId": META["account_id"],
        "loggerMethods": ["info", "warn", "error", "debug", "log"],
        "hasTracing": True,
        "env": {"FC_FUNCTION_NAME": META["function_name"], "FC_INSTANCE_ID": META["instance_id"],
                "MY_USER_VAR": "user-value"},
        "cwd": str(rt.code_dir),
    }


# ---------------------------------------------------------------------------------------------------------------
# initializer
# ---------------------------------------------------------------------------------------------------------------

def test_concurrent_first_initialize_calls(start_runtime):
    rt = start_runtime(LANG, COUNTER, handler="index.handler", initializer="index.init")
    with ThreadPoolExecutor(4) as pool:
        for r in pool.map(lambda _: rt.initialize(session=requests.Session()), range(4)):
            check(r, 200)
    check(rt.invoke(b""), 200, body=b"2")


def test_async_initializer(start_runtime):
    rt = start_runtime(LANG, COUNTER, handler="index.handler", initializer="index.asyncInit")
    check(rt.initialize(), 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"11")


# ---------------------------------------------------------------------------------------------------------------
# connections
# ---------------------------------------------------------------------------------------------------------------

def test_idle_keep_alive_connection_is_not_closed(rt, raw_conn):
    # Node closes idle keep-alive sockets after ~5-6 s by default; the invoker pools connections for longer.
    c = raw_conn(rt.port)
    assert c.request("POST", "/invoke", rt.headers("index.echo"), b"one")[2] == b"one"
    time.sleep(7.0)  # default: 5 s + a 1 s grace in Node 20
    assert c.request("POST", "/invoke", rt.headers("index.echo"), b"two")[2] == b"two"


# ---------------------------------------------------------------------------------------------------------------
# HTTP trigger handlers
# ---------------------------------------------------------------------------------------------------------------

def test_http_round_trip(start_runtime):
    rt = start_runtime(LANG, HTTP, handler="index.echo")
    rid = "http-" + uuid.uuid4().hex
    s = requests.Session()
    r = rt.http("POST", "/a/b%20c/%E4%B8%AD?x=1&x=2&y=&z=%20sp", request_id=rid, session=s,
                headers={"X-Custom-In": "v1", "Content-Type": "text/plain"}, body=b"hello http")
    check(r, 201, headers={"X-Custom": "yes", "Content-Type": "application/json"},
          absent=("X-Removed", "X-Fc-Sneaky", "x-fc-status", "x-fc-error-type"))
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    got = r.json()
    headers = got.pop("headers")
    assert got == {
        "method": "POST",
        "path": "/a/b c/\u4e2d",
        "queries": {"x": ["1", "2"], "y": "", "z": " sp"},
        "url": "/a/b%20c/%E4%B8%AD?x=1&x=2&y=&z=%20sp",
        "clientIP": "127.0.0.1",
        "body": "hello http",
        "isStream": True,
        "requestId": rid,
        "functionName": META["function_name"],
    }
    assert headers["x-custom-in"] == "v1" and headers["content-type"] == "text/plain"
    assert not [k for k in headers if k.startswith("x-fc-")], headers
    check(rt.http("GET", "/again", session=s), 201)  # the user's Connection: close was dropped
    assert pool_connections(s, rt.base) == 1
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    markers_around(lines, "Invoke", rid)
