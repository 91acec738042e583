"""How function failures and results reach the caller, as FC answers them (issue 13, "FC semantics"):

* a custom runtime's failure — `x-fc-status` other than 200, or a non-2xx status without one — is the runtime's
  own body and content type with `X-Fc-Error-Type: UnhandledInvocationError` (status 200), never a JSON wrapper
  (FC's custom-runtime event-function page: StatusCode / x-fc-status 200 success, 404 failure; fc2's
  invoke_function has a branch for exactly these non-JSON error bodies);
* a Python WSGI handler returning a bare bytes or str is served as that body;
* Node.js: an object result is JSON with `application/json`; `callback(new Error('boom'))` is
  `{"errorMessage","errorType","stackTrace"}` with the lines of `err.stack`, and `callback('msg')` is
  `{"errorMessage":"msg"}` alone, both `HandledInvocationError` (FC's Node.js "Error handling" pages).

Through both official Python SDKs (fc2 and the 2021-04-06 Tea client) and the raw client for exact bytes."""

import json

import pytest
from fc2.fc_exceptions import FcError

from invoke_helpers import (HANDLED, UNHANDLED, code_zip, custom_zip, http_trigger, invoke, invoke_ok, new_function,
                            new_service, node_zip, py_zip)

CUSTOM = custom_zip('''
    def invoke(headers, body):
        cmd, _, arg = body.decode().partition(":")
        if cmd == "html404":  # FC's documented failure signal, with the runtime's own page
            return 200, [("Content-Type", "text/html"), ("x-fc-status", "404")], "<h1>not here " + arg + "</h1>"
        if cmd == "text500":  # a non-2xx status without x-fc-status
            return 500, [("Content-Type", "text/plain")], "plain failure " + arg
        if cmd == "json500":
            return 500, [("Content-Type", "application/json")], json.dumps({"errorMessage": "json " + arg})
        if cmd == "empty404":
            return 404, [("x-fc-status", "404")], ""
        if cmd == "ok200":  # x-fc-status 200 says success
            return 200, [("Content-Type", "text/plain"), ("x-fc-status", "200")], "fine " + arg
        return 200, [("Content-Type", "text/plain")], "ok " + arg
''')

WSGI = py_zip('''
    def handler(environ, start_response):
        path = environ["PATH_INFO"]
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        if path == "/bytes":
            return b"bare bytes body"
        if path == "/str":
            return "bare str body \\u00e9"
        if path == "/bytearray":
            return bytearray(b"bare bytearray body")
        return [b"list ", b"body"]
''')

NODE = node_zip('''
    exports.handler = (event, context, callback) => {
      const cmd = event.toString();
      if (cmd === 'object') return callback(null, { a: 1, nested: { b: [true, null] } });
      if (cmd === 'string') return callback('msg');
      if (cmd === 'error') return callback(new Error('boom'));
      if (cmd === 'typed') return callback(new TypeError('typed boom'));
      callback(null, 'ok ' + cmd);
    };
    exports.asyncHandler = async (event) => {
      if (event.toString() === 'reject') throw new Error('async boom');
      return { async: true };
    };
''')


@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "errsvc")


@pytest.fixture(scope="module")
def custom(srv, svc):
    return new_function(srv, svc, CUSTOM, runtime="custom.debian10", handler="index.handler", timeout=10)


@pytest.fixture(scope="module")
def node(srv, svc):
    return new_function(srv, svc, NODE, runtime="nodejs18")


def fc2_error(srv, svc, fn, payload):
    with pytest.raises(FcError) as ei:
        srv.fc2.invoke_function(svc, fn, payload=payload, headers={})
    return ei.value


# --- custom runtimes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload, content_type, body", [
    (b"html404:a", "text/html", b"<h1>not here a</h1>"),
    (b"text500:b", "text/plain", b"plain failure b"),
    (b"json500:c", "application/json", b'{"errorMessage": "json c"}'),
])
def test_custom_runtime_failure_is_its_own_body(srv, svc, custom, payload, content_type, body):
    inv = invoke(srv, svc, custom, payload)
    assert (inv.status, inv.error_type) == (200, UNHANDLED), inv.describe()
    assert inv.body == body, inv.describe()
    assert inv.h("Content-Type") == content_type, inv.describe()
    assert inv.request_id and inv.h("X-Fc-Instance-Id"), inv.describe()
    # No openfc wording around the runtime's answer, and no status in any message.
    assert b"status" not in inv.body
    # The instance reported a failure, it did not die: the next request runs on it.
    assert invoke_ok(srv, svc, custom, b"next:1").instance_id == inv.instance_id


def test_custom_runtime_failure_through_fc2(srv, svc, custom):
    e = fc2_error(srv, svc, custom, b"html404:sdk")
    assert e.status_code == 200
    # fc2 wraps a non-JSON error body itself: the runtime's text and FC's error type.
    detail = json.loads(e.message)
    assert detail["ErrorMessage"] == "<h1>not here sdk</h1>", detail
    assert detail["ErrorType"] == UNHANDLED, detail
    assert e.request_id and e.request_id != "unknown"
    e = fc2_error(srv, svc, custom, b"text500:sdk")
    assert json.loads(e.message)["ErrorMessage"] == "plain failure sdk"


def test_custom_runtime_failure_through_the_2021_sdk(srv, svc, custom):
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_util.models import RuntimeOptions
    r = srv.fc21.invoke_function_with_options(svc, custom, models.InvokeFunctionRequest(body=b"text500:tea"),
                                              models.InvokeFunctionHeaders(), RuntimeOptions())
    h = {k.lower(): v for k, v in r.headers.items()}
    assert (r.status_code, h.get("x-fc-error-type")) == (200, UNHANDLED), h
    assert r.body == b"plain failure tea"
    assert h["content-type"] == "text/plain"


def test_custom_runtime_empty_failure_and_explicit_success(srv, svc, custom):
    inv = invoke(srv, svc, custom, b"empty404:x")
    assert (inv.status, inv.error_type, inv.body) == (200, UNHANDLED, b""), inv.describe()
    ok = invoke_ok(srv, svc, custom, b"ok200:y")
    assert (ok.body, ok.h("Content-Type")) == (b"fine y", "text/plain"), ok.describe()


# --- Python WSGI ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wsgi(srv, svc):
    fn = new_function(srv, svc, WSGI, runtime="python3.10")
    http_trigger(srv, svc, fn, ["GET"])
    return fn


@pytest.mark.parametrize("path, body", [
    ("/bytes", b"bare bytes body"),
    ("/str", "bare str body \u00e9".encode("utf-8")),
    ("/bytearray", b"bare bytearray body"),
    ("/list", b"list body"),
])
def test_wsgi_bare_bytes_or_str_is_the_body(srv, svc, wsgi, path, body):
    r = srv.fc2.do_http_request("GET", svc, wsgi, path)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Fc-Error-Type") is None, r.headers
    assert r.content == body
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


# --- Node.js ---------------------------------------------------------------------------------------------------
def test_node_object_result_is_json(srv, svc, node):
    r = srv.fc2.invoke_function(svc, node, payload=b"object", headers={})
    assert json.loads(r.data) == {"a": 1, "nested": {"b": [True, None]}}
    assert r.headers["Content-Type"] == "application/json"
    inv = invoke_ok(srv, svc, node, b"plain")
    assert (inv.body, inv.h("Content-Type")) == (b"ok plain", "application/octet-stream")


def test_node_async_object_result_is_json(srv, svc):
    fn = new_function(srv, svc, NODE, runtime="nodejs18", handler="index.asyncHandler")
    inv = invoke_ok(srv, svc, fn, b"go")
    assert (json.loads(inv.body), inv.h("Content-Type")) == ({"async": True}, "application/json")


def test_node_callback_string_is_errormessage_alone(srv, svc, node):
    inv = invoke(srv, svc, node, b"string")
    assert (inv.status, inv.error_type) == (200, HANDLED), inv.describe()
    assert inv.json() == {"errorMessage": "msg"}, inv.describe()
    assert inv.h("Content-Type") == "application/json"
    e = fc2_error(srv, svc, node, b"string")
    assert e.status_code == 200 and json.loads(e.message)["errorMessage"] == "msg"


@pytest.mark.parametrize("payload, etype, message", [
    (b"error", "Error", "boom"),
    (b"typed", "TypeError", "typed boom"),
])
def test_node_callback_error_has_fcs_shape(srv, svc, node, payload, etype, message):
    inv = invoke(srv, svc, node, payload)
    assert (inv.status, inv.error_type) == (200, HANDLED), inv.describe()
    body = inv.json()
    assert sorted(body) == ["errorMessage", "errorType", "stackTrace"], body
    assert (body["errorMessage"], body["errorType"]) == (message, etype), body
    # FC's stackTrace is err.stack line by line: the "Type: message" line, then the frames as V8 prints them.
    trace = body["stackTrace"]
    assert trace[0] == f"{etype}: {message}", trace
    assert any(line.startswith("    at ") and "/code/index.js" in line for line in trace[1:]), trace
    assert not any("/var/fc/runtime" in line for line in trace), trace


def test_node_async_rejection_through_the_2021_sdk(srv, svc):
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_util.models import RuntimeOptions
    fn = new_function(srv, svc, NODE, runtime="nodejs18", handler="index.asyncHandler")
    r = srv.fc21.invoke_function_with_options(svc, fn, models.InvokeFunctionRequest(body=b"reject"),
                                              models.InvokeFunctionHeaders(), RuntimeOptions())
    h = {k.lower(): v for k, v in r.headers.items()}
    assert (r.status_code, h.get("x-fc-error-type")) == (200, HANDLED), h
    body = json.loads(r.body)
    assert (body["errorMessage"], body["errorType"], body["stackTrace"][0]) == ("async boom", "Error", "Error: async boom")


# An HTTP custom runtime: any path; the body "fail" marks the response failed with FC's x-fc-status.
HTTP_CUSTOM = code_zip({"bootstrap": ("""#!/usr/bin/python3 -u
import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        failed = body == b"fail"
        out = b"<h1>failed</h1>" if failed else b"ok " + body
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if failed else "text/plain")
        if failed:
            self.send_header("x-fc-status", "404")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("FC_CUSTOM_LISTEN_PORT", "9000"))), H).serve_forever()
""", 0o755)})


def test_custom_runtime_failure_through_an_http_trigger_keeps_its_content_type(srv, svc):
    """An HTTP function whose runtime marks a response failed (x-fc-status) answers its own body and content
    type with X-Fc-Error-Type, as an event invocation does."""
    import requests
    fn = new_function(srv, svc, HTTP_CUSTOM, runtime="custom.debian10", handler="index.handler", timeout=10)
    http_trigger(srv, svc, fn, methods=("POST",))
    url = f"{srv.endpoint}/2016-08-15/proxy/{svc}.LATEST/{fn}/page"
    r = requests.post(url, data=b"fail", timeout=30)
    assert r.headers.get("X-Fc-Error-Type") == UNHANDLED, (r.status_code, r.headers, r.text)
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert r.content == b"<h1>failed</h1>"
    ok = requests.post(url, data=b"hello", timeout=30)
    assert ok.status_code == 200 and "X-Fc-Error-Type" not in ok.headers and ok.content == b"ok hello"
