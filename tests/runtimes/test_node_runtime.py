"""The built-in Node.js runtime (crates/openfc-invoker/runtimes/nodejs/bootstrap.js) over the custom-runtime
HTTP contract: event handlers (callback / async), context and logger, initializer, handled vs unhandled errors,
HTTP handlers, lifecycle hooks, concurrency and connection behaviour."""

import json
import re
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from runtime_helpers import META, NODE, check, markers_around, pool_connections

LANG = "nodejs"

INDEX = r'''
'use strict';

class MyError extends Error {
  constructor(message) { super(message); this.name = 'MyError'; }
}

exports.echo = (event, context, callback) => callback(null, event);
exports.eventType = (event, context, callback) => callback(null, Buffer.isBuffer(event) ? 'Buffer' : typeof event);
exports.retString = (event, context, callback) => callback(null, 'h\u00e9llo \u4e2d');
exports.retBuffer = (event, context, callback) => callback(null, Buffer.from([0, 255, 114, 97, 119]));
exports.retUint8 = (event, context, callback) => callback(null, new Uint8Array([65, 66]));
exports.retObject = (event, context, callback) => callback(null, { a: 1, b: [true, null], s: 'x' });
exports.retArray = (event, context, callback) => callback(null, [1, 'two', 3.5]);
exports.retNumber = (event, context, callback) => callback(null, 42);
exports.retBool = (event, context, callback) => callback(null, true);
exports.retNull = (event, context, callback) => callback(null, null);
exports.retUndefined = (event, context, callback) => callback();
exports.asyncReturn = async (event, context) => ({ async: true, event: event.toString() });
exports.asyncString = async () => 'async string';
exports.lateCallback = (event, context, callback) => setTimeout(() => callback(null, 'late'), 20);
exports.callbackTwice = (event, context, callback) => { callback(null, 'first'); callback(null, 'second'); };

exports.contextEcho = (event, context, callback) => {
  const c = context;
  callback(null, {
    requestId: c.requestId,
    credentials: c.credentials,
    function: c.function,
    service: c.service,
    region: c.region,
    accountId: c.accountId,
    loggerMethods: ['info', 'warn', 'error', 'debug', 'log'].filter((m) => typeof c.logger[m] === 'function'),
    hasTracing: typeof c.tracing === 'object',
    env: {
      FC_FUNCTION_NAME: process.env.FC_FUNCTION_NAME,
      FC_INSTANCE_ID: process.env.FC_INSTANCE_ID,
      MY_USER_VAR: process.env.MY_USER_VAR,
    },
    cwd: process.cwd(),
  });
};

exports.cbError = (event, context, callback) => callback(new TypeError('bad type'));
exports.cbCustom = (event, context, callback) => callback(new MyError('custom boom'));
exports.cbString = (event, context, callback) => callback('plain string error');
exports.throwSync = () => { throw new RangeError('sync boom'); };
exports.asyncReject = async () => { throw new Error('async boom'); };
exports.throwLater = (event, context, callback) => { setTimeout(() => { throw new Error('later boom'); }, 10); };
exports.unhandledRejection = (event, context, callback) => { Promise.reject(new Error('nobody catches me')); };
exports.notAFunction = 5;

let sleeping = 0;
exports.sleeper = (event, context, callback) => {
  sleeping++;
  setTimeout(() => { sleeping--; callback(null, 'slept'); }, 200);
};

exports.chatty = (event, context, callback) => {
  console.log('console.log from handler', context.requestId);
  console.error('console.error from handler');
  context.logger.info('hello %s', 'world');
  context.logger.warn({ k: 'v' });
  callback(null, 'ok');
};

exports.noisyFailure = (event, context, callback) => {
  console.log('about to fail');
  callback(new Error('noisy failure'));
};

exports.pid = (event, context, callback) => callback(null, String(process.pid));
'''

FILES = {
    "index.js": INDEX,
    "broken.js": "exports.handler = (event, context, callback) => { callback(null, 1) ;;; )\n",
    "needsDep.js": "require('not-installed-pkg');\nexports.handler = (e, c, cb) => cb(null, 1);\n",
    "sub/dir/mod.js": "exports.handler = (e, c, cb) => cb(null, 'nested:' + require('path').basename(__filename));\n",
    "esm.mjs": "export const handler = async (event) => 'esm:' + event.toString();\n",
    "node_modules/local-dep/index.js": "module.exports = 'from node_modules';\n",
    "usesDep.js": "const v = require('local-dep');\nexports.handler = (e, c, cb) => cb(null, v);\n",
}


@pytest.fixture
def rt(start_runtime):
    return start_runtime(LANG, FILES, handler="index.echo", env={"MY_USER_VAR": "user-value"})


# ---------------------------------------------------------------------------------------------------------------
# event handler results
# ---------------------------------------------------------------------------------------------------------------

RESULT_CASES = [
    # handler, request body, expected response body, expected content type (None = not checked)
    ("index.echo", b"raw \x00\xff event", b"raw \x00\xff event", "application/octet-stream"),
    ("index.eventType", b"{}", b"Buffer", None),
    ("index.retString", b"", "h\u00e9llo \u4e2d".encode("utf-8"), "application/octet-stream"),
    ("index.retBuffer", b"", b"\x00\xffraw", "application/octet-stream"),
    ("index.retUint8", b"", b"AB", "application/octet-stream"),
    ("index.retObject", b"", json.dumps({"a": 1, "b": [True, None], "s": "x"}, separators=(",", ":")).encode(),
     "application/json"),
    ("index.retArray", b"", b'[1,"two",3.5]', "application/json"),
    ("index.retNumber", b"", b"42", "application/json"),
    ("index.retBool", b"", b"true", "application/json"),
    ("index.retNull", b"", b"", None),
    ("index.retUndefined", b"", b"", None),
    ("index.asyncReturn", b"ev", b'{"async":true,"event":"ev"}', "application/json"),
    ("index.asyncString", b"", b"async string", None),
    ("index.lateCallback", b"", b"late", None),
    ("index.callbackTwice", b"", b"first", None),
    ("sub/dir/mod.handler", b"", b"nested:mod.js", None),
    ("esm.handler", b"x", b"esm:x", None),
    ("usesDep.handler", b"", b"from node_modules", None),
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


def test_handler_from_environment_when_header_absent(start_runtime):
    rt = start_runtime(LANG, FILES, handler="index.retNumber")
    r = rt.session.post(rt.base + "/invoke", data=b"", headers={"x-fc-request-id": "r1"})
    check(r, 200, body=b"42")


# ---------------------------------------------------------------------------------------------------------------
# errors: callback(err) / rejected promise -> Handled; throw / uncaught / load failure -> Unhandled
# ---------------------------------------------------------------------------------------------------------------

ERROR_CASES = [
    # handler, kind, errorType, errorMessage substring, substring expected in the stack trace (or None)
    ("index.cbError", "Handled", "TypeError", "bad type", "index.js"),
    ("index.cbCustom", "Handled", "MyError", "custom boom", "index.js"),
    ("index.cbString", "Handled", "Error", "plain string error", None),
    ("index.asyncReject", "Handled", "Error", "async boom", "index.js"),
    ("index.throwSync", "Unhandled", "RangeError", "sync boom", "index.js"),
    ("index.throwLater", "Unhandled", "Error", "later boom", "index.js"),
    ("index.unhandledRejection", "Unhandled", "Error", "nobody catches me", "index.js"),
    ("nosuch.handler", "Unhandled", "ModuleNotFoundError", "nosuch", None),
    ("index.nosuch", "Unhandled", "HandlerNotFound", "Handler 'nosuch' is missing on module 'index'", None),
    ("index.notAFunction", "Unhandled", "HandlerNotFound", "notAFunction", None),
    ("broken.handler", "Unhandled", "SyntaxError", "", None),
    ("needsDep.handler", "Unhandled", "Error", "not-installed-pkg", None),
    ("noperiod", "Unhandled", "InvalidHandler", "noperiod", None),
]


@pytest.mark.parametrize("handler,kind,etype,message,stack", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_then_runtime_keeps_serving(rt, handler, kind, etype, message, stack):
    pid = rt.invoke(b"", handler="index.pid").content
    r = rt.invoke(b"x", handler=handler)
    check(r, error={"errorType": etype, "errorMessage": message, "kind": kind})
    trace = r.json()["stackTrace"]
    assert all(isinstance(line, str) for line in trace)
    assert not any("bootstrap.js" in line for line in trace), trace
    if stack:
        assert any(stack in line for line in trace), trace
    check(rt.invoke(b"next", handler="index.echo"), 200, body=b"next")
    assert rt.invoke(b"", handler="index.pid").content == pid  # same process
    assert rt.alive()


def test_error_is_logged_between_markers(rt):
    rid = "err-" + uuid.uuid4().hex
    check(rt.invoke(b"", handler="index.noisyFailure", request_id=rid), error={"kind": "Handled"})
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    markers_around(lines, "Invoke", rid, inside=["^about to fail$", re.escape(rid) + r" \[ERROR\] Error: noisy failure"])


# ---------------------------------------------------------------------------------------------------------------
# initializer
# ---------------------------------------------------------------------------------------------------------------

COUNTER = {
    "index.js": '''
        let counter = 0;
        const seen = [];
        exports.init = (context, callback) => {
          setTimeout(() => {
            counter++;
            seen.push([context.requestId, context.function.initializationTimeout]);
            console.log('initializer ran');
            callback(null, '');
          }, 200);
        };
        exports.asyncInit = async (context) => { counter += 10; };
        exports.handler = (event, context, callback) => { counter++; callback(null, String(counter)); };
        exports.report = async () => ({ seen });
    ''',
}


def test_initializer_runs_once(start_runtime):
    rt = start_runtime(LANG, COUNTER, handler="index.handler", initializer="index.init")
    rid = "init-" + uuid.uuid4().hex
    check(rt.initialize(request_id=rid), 200, body=b"")
    with ThreadPoolExecutor(3) as pool:
        for r in pool.map(lambda _: rt.initialize(session=requests.Session()), range(3)):
            check(r, 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"2")
    check(rt.invoke(b""), 200, body=b"3")
    assert check(rt.invoke(b"", handler="index.report"), 200).json() == {"seen": [[rid, 7]]}
    lines = rt.wait_stdout("FC Initialize End RequestId: " + rid)
    markers_around(lines, "Initialize", rid, inside=["^initializer ran$"])
    assert sum(1 for line in lines if line.startswith("FC Initialize Start")) == 1, lines


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


def test_initializer_failure_is_retried(start_runtime):
    rt = start_runtime(LANG, {"index.js": '''
        let attempts = 0;
        exports.init = (context, callback) => {
          attempts++;
          if (attempts === 1) return callback(new Error('first attempt fails'));
          callback(null, '');
        };
        exports.handler = (event, context, callback) => callback(null, String(attempts));
    '''}, initializer="index.init")
    check(rt.initialize(), error={"kind": "Handled", "errorType": "Error", "errorMessage": "first attempt fails"})
    check(rt.initialize(), 200)
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"2")


def test_initializer_missing_and_from_header(start_runtime):
    rt = start_runtime(LANG, COUNTER, handler="index.handler", initializer="")
    check(rt.initialize(), 200)
    check(rt.invoke(b""), 200, body=b"1")
    check(rt.initialize(initializer="index.nosuch"), error={"errorType": "HandlerNotFound"})
    check(rt.initialize(initializer="index.asyncInit"), 200)
    check(rt.invoke(b""), 200, body=b"12")


# ---------------------------------------------------------------------------------------------------------------
# logging and stdout markers
# ---------------------------------------------------------------------------------------------------------------

def test_stdout_markers_and_logger_format(rt):
    rid = "log-" + uuid.uuid4().hex
    check(rt.invoke(b"", handler="index.chatty", request_id=rid), 200, body=b"ok")
    lines = rt.wait_stdout("FC Invoke End RequestId: " + rid)
    ts = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    between = markers_around(lines, "Invoke", rid, inside=[
        "^console.log from handler %s$" % rid,
        ts + re.escape(rid) + r" \[INFO\] hello world$",
        ts + re.escape(rid) + r" \[WARN\] \{ k: 'v' \}$",
    ])
    order = [next(i for i, line in enumerate(between) if needle in line)
             for needle in ("console.log from handler", "hello world", "k: 'v'")]
    assert order == sorted(order), between
    rt.wait_stdout("^console.error from handler$", stream="stderr")


def test_markers_for_every_invocation(rt):
    rids = ["m%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(5)]
    for rid in rids:
        check(rt.invoke(b"", handler="index.retNumber", request_id=rid), 200)
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


def test_keep_alive_reuses_one_connection(rt, raw_conn):
    s = requests.Session()
    check(rt.invoke(b"a", handler="index.echo", session=s), 200, body=b"a")
    check(rt.invoke(b"b", handler="index.echo", session=s), 200, body=b"b")
    assert pool_connections(s, rt.base) == 1
    c = raw_conn(rt.port)
    for i in range(3):
        status, headers, body = c.request("POST", "/invoke", rt.headers("index.echo"), b"raw-%d" % i)
        assert (status, body) == (200, b"raw-%d" % i)
        assert ("connection", "close") not in headers


def test_idle_keep_alive_connection_is_not_closed(rt, raw_conn):
    # Node closes idle keep-alive sockets after ~5-6 s by default; the invoker pools connections for longer.
    c = raw_conn(rt.port)
    assert c.request("POST", "/invoke", rt.headers("index.echo"), b"one")[2] == b"one"
    time.sleep(7.0)  # default: 5 s + a 1 s grace in Node 20
    assert c.request("POST", "/invoke", rt.headers("index.echo"), b"two")[2] == b"two"


def test_chunked_request_body(rt, raw_conn):
    c = raw_conn(rt.port)
    head = "POST /invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    head += "".join("%s: %s\r\n" % kv for kv in rt.headers("index.echo").items())
    c.send(head.encode() + b"\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
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


def test_startup_is_cheap(start_runtime):
    t0 = time.monotonic()
    subprocess.run([NODE, "-e", "0"], check=True)
    bare = time.monotonic() - t0
    best = min(start_runtime(LANG, {"index.js": "exports.handler = (e, c, cb) => cb(null, 1);\n"}).ready_after
               for _ in range(3))
    print("node runtime: listening %.1f ms after spawn, bare interpreter %.1f ms" % (best * 1000, bare * 1000))
    assert (best - bare) * 1000 < 100, "runtime start-up costs %.1f ms over the bare interpreter" % ((best - bare) * 1000)


# ---------------------------------------------------------------------------------------------------------------
# HTTP trigger handlers
# ---------------------------------------------------------------------------------------------------------------

HTTP = {
    "index.js": r'''
        const { Readable } = require('stream');

        exports.echo = (request, response, context) => {
          const chunks = [];
          request.on('data', (c) => chunks.push(c));
          request.on('end', () => {
            response.setStatusCode(201);
            response.setHeader('Content-Type', 'application/json');
            response.setHeader('X-Custom', 'yes');
            response.setHeader('X-Removed', 'gone');
            response.deleteHeader('x-removed');
            response.setHeader('X-Fc-Sneaky', 'no');
            response.setHeader('Connection', 'close');
            response.setHeader('Set-Cookie', ['a=1', 'b=2']);
            response.send(JSON.stringify({
              method: request.method,
              path: request.path,
              queries: request.queries,
              url: request.url,
              clientIP: request.clientIP,
              headers: request.headers,
              body: Buffer.concat(chunks).toString(),
              isStream: typeof request.pipe === 'function',
              requestId: context.requestId,
              functionName: context.function.name,
            }));
          });
        };

        exports.notFound = (request, response) => {
          response.setStatusCode(404);
          response.send('no such page');
        };

        exports.sendBuffer = (request, response) => response.send(Buffer.from([1, 2, 3]));
        exports.sendStream = (request, response) => response.send(Readable.from(['str', 'eam']));
        exports.asyncSend = async (request, response) => {
          await new Promise((r) => setTimeout(r, 10));
          response.send('async sent');
        };
        exports.throws = () => { throw new Error('http sync boom'); };
        exports.rejects = async () => { throw new Error('http async boom'); };
        exports.badStatus = (request, response) => { response.setStatusCode('abc'); };
    ''',
}


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


HTTP_CASES = [
    # handler, status, body, error (kind, type)
    ("index.notFound", 404, b"no such page", None),
    ("index.sendBuffer", 200, b"\x01\x02\x03", None),
    ("index.sendStream", 200, b"stream", None),
    ("index.asyncSend", 200, b"async sent", None),
    ("index.throws", 404, None, ("Unhandled", "Error")),
    ("index.rejects", 404, None, ("Handled", "Error")),
    ("index.badStatus", 404, None, ("Unhandled", "TypeError")),
    ("index.nosuch", 404, None, ("Unhandled", "HandlerNotFound")),
]


@pytest.mark.parametrize("handler,status,body,err", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_http_cases(start_runtime, handler, status, body, err):
    rt = start_runtime(LANG, HTTP, handler="index.echo")
    r = rt.http("GET", "/p", handler=handler)
    if err:
        check(r, error={"kind": err[0], "errorType": err[1]})
    else:
        check(r, status, body=body, absent=("x-fc-status", "x-fc-error-type"))
    check(rt.http("GET", "/ok", handler="index.sendBuffer"), 200, body=b"\x01\x02\x03")


def test_http_head_has_no_body(start_runtime, raw_conn):
    rt = start_runtime(LANG, HTTP, handler="index.sendBuffer")
    c = raw_conn(rt.port)
    h = rt.headers(control_path="/http-invoke")
    status, headers, body = c.request("HEAD", "/x", h, head=True)
    assert status == 200 and body == b""
    status, _, body = c.request("GET", "/x", h)
    assert (status, body) == (200, b"\x01\x02\x03")


# ---------------------------------------------------------------------------------------------------------------
# lifecycle hooks
# ---------------------------------------------------------------------------------------------------------------

HOOKS = {
    "index.js": '''
        const fs = require('fs');
        const path = require('path');
        exports.handler = (event, context, callback) => callback(null, 'ok');
        exports.preStop = (context, callback) => {
          console.log('pre-stop ran ' + context.requestId);
          fs.writeFileSync(path.join(process.env.FC_FUNC_CODE_PATH, 'stopped'), context.function.name);
          callback(null, '');
        };
        exports.preFreeze = async (context) => { throw new Error('cannot freeze'); };
    ''',
}


def test_lifecycle_hooks(start_runtime):
    rt = start_runtime(LANG, HOOKS)
    check(rt.lifecycle("pre-stop"), 200)
    check(rt.lifecycle("pre-freeze"), 200)
    rid = "stop-" + uuid.uuid4().hex
    check(rt.lifecycle("pre-stop", "index.preStop", request_id=rid), 200)
    assert (rt.code_dir / "stopped").read_text() == META["function_name"]
    lines = rt.wait_stdout("FC PreStop End RequestId: " + rid)
    markers_around(lines, "PreStop", rid, inside=["^pre-stop ran " + rid])
    check(rt.lifecycle("pre-freeze", "index.preFreeze"),
          error={"kind": "Handled", "errorType": "Error", "errorMessage": "cannot freeze"})
    check(rt.lifecycle("pre-stop", "index.missing"), error={"errorType": "HandlerNotFound"})
    check(rt.invoke(b""), 200, body=b"ok")
