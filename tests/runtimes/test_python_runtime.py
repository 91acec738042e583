"""The built-in Python runtime (crates/openfc-invoker/runtimes/python/bootstrap.py): what only Python has — its
context object and WSGI. The contract every runtime shares is test_runtime_contract.py; the functions are in
lang_python.py."""

import uuid

import pytest
import requests

from lang_python import FILES, WSGI
from runtime_helpers import META, check, markers_around, pool_connections

LANG = "python"


@pytest.fixture
def rt(start_runtime):
    return start_runtime(LANG, FILES, handler="index.echo", env={"MY_USER_VAR": "user-value"})


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


# ---------------------------------------------------------------------------------------------------------------
# HTTP trigger (WSGI)
# ---------------------------------------------------------------------------------------------------------------

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
