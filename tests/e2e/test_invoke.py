"""InvokeFunction (spec 5.6, 8, 4.1): results and FC response headers, the log tail, every runtime family and its
context / environment, initializers, warm instances, function failures (200 + X-Fc-Error-Type: exceptions,
callback errors, crashes, timeouts, out of memory), header validation, payload limits, async invocation,
unknown targets and runtimes, versions and weighted aliases; through the raw client on both prefixes and both
qualifier forms, and through both official SDKs. One SQLite server for the module (plus one PostgreSQL+S3 server
for the code-store test)."""

import base64
import json
import re
import time

import pytest

from helpers import assert_fc_error, unique
from invoke_helpers import (HANDLED, INVOKE_HEADERS, UNHANDLED, checksum, code_zip, create_alias, custom_zip,
                            health, invoke, invoke_error, invoke_fails, invoke_json, invoke_ok, new_function,
                            new_service, node_zip, publish, py_zip, update_code, wait_until)

# --- code under test ----------------------------------------------------------------------------------------
# Every runtime family reports what it sees in one JSON shape.
PY_PROBE = py_zip('''
    import json, os

    calls = 0

    def handler(event, context):
        global calls
        calls += 1
        print("python saw %d bytes" % len(event))
        return json.dumps({
            "event": event.decode("latin-1"), "eventType": type(event).__name__, "calls": calls,
            "requestId": context.request_id,
            "function": {"name": context.function.name, "handler": context.function.handler,
                         "memory": context.function.memory, "timeout": context.function.timeout,
                         "initializer": context.function.initializer},
            "service": {"name": context.service.name, "qualifier": context.service.qualifier,
                        "versionId": context.service.version_id},
            "region": context.region, "accountId": context.account_id,
            "credentials": sorted(k for k in ("access_key_id", "access_key_secret", "security_token")
                                  if hasattr(context.credentials, k)),
            "env": dict(os.environ), "uid": os.getuid(), "pid": os.getpid(),
        })
''')

NODE_PROBE = node_zip('''
    let calls = 0;
    exports.handler = (event, context, callback) => {
      calls += 1;
      console.log('node saw ' + event.length + ' bytes');
      callback(null, JSON.stringify({
        event: event.toString('latin1'), eventType: Buffer.isBuffer(event) ? 'Buffer' : typeof event, calls,
        requestId: context.requestId,
        function: {name: context.function.name, handler: context.function.handler, memory: context.function.memory,
                   timeout: context.function.timeout, initializer: context.function.initializer},
        service: {name: context.service.name, qualifier: context.service.qualifier,
                  versionId: context.service.versionId},
        region: context.region, accountId: context.accountId,
        credentials: ['accessKeyId', 'accessKeySecret', 'securityToken'].filter(k => k in context.credentials),
        env: process.env, uid: process.getuid(), pid: process.pid,
      }));
    };
''')

CUSTOM_PROBE = custom_zip('''
    calls = 0

    def invoke(headers, body):
        global calls
        calls += 1
        print("custom saw %d bytes" % len(body), flush=True)
        return 200, [("Content-Type", "application/json")], json.dumps({
            "event": body.decode("latin-1"), "eventType": "bytes", "calls": calls,
            "requestId": headers.get("x-fc-request-id"),
            "function": {"name": headers.get("x-fc-function-name"), "handler": headers.get("x-fc-function-handler"),
                         "memory": int(headers.get("x-fc-function-memory", "0")),
                         "timeout": int(headers.get("x-fc-function-timeout", "0")),
                         "initializer": headers.get("x-fc-function-initializer", "")},
            "service": {"name": headers.get("x-fc-service-name"), "qualifier": headers.get("x-fc-qualifier"),
                        "versionId": headers.get("x-fc-version-id", "")},
            "region": headers.get("x-fc-region"), "accountId": headers.get("x-fc-account-id"),
            "credentials": sorted(k for k in ("x-fc-access-key-id", "x-fc-access-key-secret", "x-fc-security-token")
                                  if k in headers),
            "env": dict(os.environ), "uid": os.getuid(), "pid": os.getpid(), "argv": sys.argv,
        })
''')

PY_RUNTIMES = ["python3", "python3.9", "python3.10", "python3.12"]
NODE_RUNTIMES = ["nodejs12", "nodejs14", "nodejs16", "nodejs18", "nodejs20"]
CUSTOM_RUNTIMES = ["custom", "custom.debian10", "custom.debian11"]
PROBES = {**{r: PY_PROBE for r in PY_RUNTIMES}, **{r: NODE_PROBE for r in NODE_RUNTIMES},
          **{r: CUSTOM_PROBE for r in CUSTOM_RUNTIMES}}
CRED_KEYS = {"python": ["access_key_id", "access_key_secret", "security_token"],
             "node": ["accessKeyId", "accessKeySecret", "securityToken"],
             "custom": ["x-fc-access-key-id", "x-fc-access-key-secret", "x-fc-security-token"]}


def family(runtime):
    return "python" if runtime.startswith("python") else "node" if runtime.startswith("nodejs") else "custom"


# A Python function driven by its event: the behaviours the failure and header tests need.
PY_BEHAVIOURS = py_zip('''
    import json, os, sys, time

    keep = None
    count = 0

    def handler(event, context):
        global keep, count
        count += 1
        cmd, _, arg = event.partition(b":")
        cmd, arg = cmd.decode(), arg.decode("latin-1")
        if cmd == "echo":
            return event[5:]
        if cmd == "len":
            return str(len(event))
        if cmd == "count":
            return str(count)
        if cmd == "print":
            print(arg)
            return "printed"
        if cmd == "spam":
            for i in range(int(arg)):
                print("spam line %05d %s" % (i, "x" * 40))
            return "spammed"
        if cmd == "sleep":
            print("going to sleep", flush=True)
            time.sleep(float(arg))
            return "slept"
        if cmd == "raise":
            raise ValueError("bad value " + arg)
        if cmd == "exit":
            print("last words " + arg, flush=True)
            os._exit(3)
        if cmd == "hold":
            keep = bytearray(int(arg) << 20)
            return str(len(keep))
        if cmd == "oom":
            chunks = []
            for i in range(int(arg) // 16):
                chunks.append(bytearray(16 << 20))
                print("allocated %d MB" % ((i + 1) * 16), flush=True)
            return "survived"
        if cmd == "pid":
            return str(os.getpid())
        return "unknown command " + cmd
''')

NODE_BEHAVIOURS = node_zip('''
    exports.handler = (event, context, callback) => {
      const [cmd, arg] = event.toString().split(':');
      console.log('node handling ' + cmd);
      if (cmd === 'throw') throw new TypeError('sync throw ' + arg);
      if (cmd === 'cberr') return callback(new RangeError('callback error ' + arg));
      if (cmd === 'exit') { console.log('node last words ' + arg); process.exit(1); }
      if (cmd === 'hang') return;  // never calls back
      callback(null, 'node ok ' + arg);
    };
    exports.asyncHandler = async (event, context) => {
      const [cmd, arg] = event.toString().split(':');
      if (cmd === 'reject') throw new Error('async reject ' + arg);
      await new Promise(r => setTimeout(r, 5));
      return 'async ok ' + arg;
    };
''')

CUSTOM_BEHAVIOURS = custom_zip('''
    def invoke(headers, body):
        cmd, _, arg = body.decode().partition(":")
        print("custom handling " + cmd, flush=True)
        if cmd == "json500":
            return 500, [("Content-Type", "application/json")], json.dumps(
                {"errorMessage": "custom failure " + arg, "errorType": "CustomError", "stackTrace": ["frame 1"]})
        if cmd == "text500":
            return 500, [("Content-Type", "text/plain")], "plain text failure " + arg
        if cmd == "status404":
            return 200, [("Content-Type", "application/json"), ("x-fc-status", "404")], json.dumps(
                {"errorMessage": "flagged failure " + arg, "errorType": "Flagged"})
        if cmd == "exit":
            print("custom last words " + arg, flush=True)
            os._exit(1)
        return 200, [("Content-Type", "text/plain")], "custom ok " + arg
''')


# --- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "invsvc")


@pytest.fixture(scope="module")
def behave(srv, svc):
    """A Python function with the PY_BEHAVIOURS commands (256 MB, timeout 5 s)."""
    return new_function(srv, svc, PY_BEHAVIOURS, runtime="python3.10", memorySize=256, timeout=5)


@pytest.fixture(scope="module")
def node_behave(srv, svc):
    return new_function(srv, svc, NODE_BEHAVIOURS, runtime="nodejs18", timeout=5)


@pytest.fixture(scope="module")
def node_async(srv, svc):
    return new_function(srv, svc, NODE_BEHAVIOURS, runtime="nodejs20", handler="index.asyncHandler")


@pytest.fixture(scope="module")
def custom_behave(srv, svc):
    return new_function(srv, svc, CUSTOM_BEHAVIOURS, runtime="custom.debian10")


def assert_common_headers(inv, pkg, version="LATEST"):
    for h in INVOKE_HEADERS:
        assert inv.h(h), f"missing {h}: {inv.describe()}"
    assert inv.h("X-Fc-Code-Checksum") == checksum(pkg), inv.describe()
    assert re.fullmatch(r"\d+", inv.h("X-Fc-Invocation-Duration")), inv.describe()
    assert re.fullmatch(r"\d+", inv.h("X-Fc-Max-Memory-Usage")), inv.describe()
    assert inv.version == version, inv.describe()
    assert re.fullmatch(r"[0-9a-fA-F-]{8,}", inv.request_id), inv.request_id


# --- results, headers, logs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", PY_RUNTIMES + NODE_RUNTIMES + CUSTOM_RUNTIMES)
def test_each_runtime_runs_with_context_and_environment(srv, svc, runtime):
    fam = family(runtime)
    pkg = PROBES[runtime]
    fn = new_function(srv, svc, pkg, runtime=runtime, memorySize=192, timeout=7,
                      environmentVariables={"GREETING": "hello world", "EMPTY_ISH": "0"})
    event = bytes(range(32, 127)) + "é".encode("latin-1")
    got, inv = invoke_json(srv, svc, fn, event)
    assert_common_headers(inv, pkg)
    assert got["event"] == event.decode("latin-1")
    assert got["eventType"] in {"python": ("bytes",), "node": ("Buffer",), "custom": ("bytes",)}[fam], got["eventType"]
    assert got["requestId"] == inv.request_id
    assert got["function"] == {"name": fn, "handler": "index.handler", "memory": 192, "timeout": 7, "initializer": ""}
    assert got["service"]["name"] == svc
    assert got["service"]["qualifier"] == "LATEST"
    assert got["service"]["versionId"] in ("", None)
    assert got["region"] == srv.region
    assert got["accountId"] == srv.account_id
    assert got["credentials"] == CRED_KEYS[fam]
    env = got["env"]
    expected_env = {
        "FC_FUNCTION_NAME": fn, "FC_SERVICE_NAME": svc, "FC_FUNCTION_MEMORY_SIZE": "192",
        "FC_CUSTOM_LISTEN_PORT": "9000", "FC_INSTANCE_ID": inv.instance_id, "FC_QUALIFIER": "LATEST",
        "FC_REGION": srv.region, "FC_ACCOUNT_ID": srv.account_id, "FC_FUNC_CODE_PATH": "/code",
        "GREETING": "hello world", "EMPTY_ISH": "0",
    }
    assert {k: env.get(k) for k in expected_env} == expected_env
    assert got["uid"] == 65534
    assert got["calls"] == 1
    if fam == "custom":
        assert got["argv"] == ["/code/bootstrap"]


@pytest.mark.parametrize("prefix", ["2016", "2021"])
def test_sync_result_headers_and_binary_round_trip(srv, svc, behave, prefix):
    payload = b"echo:" + bytes(range(256)) * 4
    inv = invoke_ok(srv, svc, behave, payload, prefix=prefix)
    assert inv.body == bytes(range(256)) * 4
    assert_common_headers(inv, PY_BEHAVIOURS)
    assert inv.h("X-Fc-Error-Type") is None
    assert inv.h("X-Fc-Log-Result") is None, "no log without X-Fc-Log-Type: Tail"
    # X-Fc-Log-Type: None is the explicit default.
    inv2 = invoke_ok(srv, svc, behave, b"echo:x", prefix=prefix, headers={"X-Fc-Log-Type": "None"})
    assert inv2.body == b"x" and inv2.h("X-Fc-Log-Result") is None
    assert inv2.request_id != inv.request_id


def test_empty_and_large_payloads(srv, svc, behave):
    assert invoke_ok(srv, svc, behave, b"echo:").body == b""
    big = b"len:" + b"z" * (5 << 20)
    assert invoke_ok(srv, svc, behave, big).body == str(len(big)).encode()


def test_payload_of_exactly_32_mb_is_accepted_and_one_byte_more_is_not(srv, svc, behave):
    limit = 32 * 1024 * 1024
    payload = b"len:" + b"a" * (limit - 4)
    inv = invoke_ok(srv, svc, behave, payload, timeout=120)
    assert inv.body == str(limit).encode()
    body, _ = invoke_error(srv, svc, behave, 400, "EntityTooLarge", payload + b"a")
    assert str(limit) in body["ErrorMessage"], body


def test_log_tail_has_markers_output_and_summary(srv, svc, behave):
    token = unique("logline")
    inv = invoke_ok(srv, svc, behave, f"print:{token}".encode(), log=True)
    assert inv.body == b"printed"
    log = inv.log
    assert log is not None, inv.describe()
    rid = inv.request_id
    start, end = f"FC Invoke Start RequestId: {rid}", f"FC Invoke End RequestId: {rid}"
    assert start in log and end in log and token in log, log
    assert log.index(start) < log.index(token) < log.index(end), log
    m = re.search(r"Duration: ([\d.]+) ms, Billed Duration: (\d+) ms, Memory Size: (\d+) MB, Max Memory Used: (\d+) MB",
                  log)
    assert m, log
    assert m.start() > log.index(end), log
    assert int(m.group(3)) == 256
    assert 0 < int(m.group(4)) <= 256, log
    assert float(m.group(1)) >= 0 and int(m.group(2)) >= 1


def test_log_tail_is_this_invocations_only(srv, svc, behave):
    first = unique("first")
    invoke_ok(srv, svc, behave, f"print:{first}".encode(), log=True)
    second = unique("second")
    inv = invoke_ok(srv, svc, behave, f"print:{second}".encode(), log=True)
    assert second in inv.log and first not in inv.log, inv.log


def test_log_tail_is_the_last_4_kb(srv, svc, behave):
    inv = invoke_ok(srv, svc, behave, b"spam:2000", log=True)  # ~110 KB of output
    raw = base64.b64decode(inv.h("X-Fc-Log-Result"))
    assert 3000 < len(raw) <= 4096, len(raw)
    log = raw.decode("utf-8", "replace")
    assert "spam line 01999" in log, log[-500:]
    assert "spam line 00000" not in log
    assert "Memory Size: 256 MB" in log
    assert f"FC Invoke End RequestId: {inv.request_id}" in log


@pytest.mark.parametrize("fixture, payload, expected", [
    ("node_behave", b"ok:n1", "node handling ok"),
    ("custom_behave", b"ok:c1", "custom handling ok"),
])
def test_log_tail_of_node_and_custom_runtimes(srv, svc, request, fixture, payload, expected):
    fn = request.getfixturevalue(fixture)
    inv = invoke_ok(srv, svc, fn, payload, log=True)
    rid = inv.request_id
    log = inv.log
    assert log.index(f"FC Invoke Start RequestId: {rid}") < log.index(expected) < \
        log.index(f"FC Invoke End RequestId: {rid}"), log
    assert re.search(r"Memory Size: 128 MB, Max Memory Used: \d+ MB", log), log


def test_duration_and_memory_headers_measure_the_invocation(srv, svc, behave):
    slow = invoke_ok(srv, svc, behave, b"sleep:0.3")
    assert 300 <= int(slow.h("X-Fc-Invocation-Duration")) < 1000, slow.describe()
    heavy = invoke_ok(srv, svc, behave, b"hold:96")
    assert heavy.body == str(96 << 20).encode()
    assert 96 <= int(heavy.h("X-Fc-Max-Memory-Usage")) <= 256, heavy.describe()
    invoke_ok(srv, svc, behave, b"hold:0")
    light = invoke_ok(srv, svc, behave, b"echo:x")
    # Sequential calls at concurrency 1 reuse the one warm instance: the peak is per request, not per instance.
    assert light.instance_id == heavy.instance_id, (light.describe(), heavy.describe())
    assert int(light.h("X-Fc-Max-Memory-Usage")) < 96, light.describe()


def test_code_checksum_follows_the_code_and_update_runs_new_code(srv, svc):
    v1 = py_zip("def handler(event, context):\n    return 'code one'\n")
    v2 = code_zip({"index.py": "def handler(event, context):\n    return 'code two'\n", "pad.txt": "pad"})
    fn = new_function(srv, svc, v1)
    one = invoke_ok(srv, svc, fn)
    assert (one.body, one.h("X-Fc-Code-Checksum")) == (b"code one", checksum(v1))
    update_code(srv, svc, fn, v2)
    two = invoke_ok(srv, svc, fn)
    assert (two.body, two.h("X-Fc-Code-Checksum")) == (b"code two", checksum(v2))
    assert checksum(v1) != checksum(v2)


# --- state, initializers ------------------------------------------------------------------------------------
def test_warm_instance_keeps_module_state(srv, svc):
    fn = new_function(srv, svc, PY_BEHAVIOURS)
    runs = [invoke_ok(srv, svc, fn, b"count:") for _ in range(4)]
    assert [r.body for r in runs] == [b"1", b"2", b"3", b"4"]
    assert len({r.instance_id for r in runs}) == 1


INIT_CASES = {
    "python3.9": (py_zip('''
        inits = 0
        calls = 0
        seen = {}

        def init(context):
            global inits
            inits += 1
            seen["name"] = context.function.initializer
            seen["rid"] = context.request_id
            print("python initializer ran")

        def handler(event, context):
            global calls
            calls += 1
            return "%d/%d/%s/%s" % (inits, calls, seen["name"], bool(seen["rid"]))
    '''), "index.init", "1/{n}/index.init/True"),
    "nodejs16": (node_zip('''
        let inits = 0, calls = 0, name = '';
        exports.init = (context, callback) => {
          inits += 1; name = context.function.initializer; callback(null, '');
        };
        exports.handler = (event, context, callback) => {
          calls += 1; callback(null, inits + '/' + calls + '/' + name);
        };
    '''), "index.init", "1/{n}/index.init"),
    "custom": (custom_zip('''
        inits = 0
        calls = 0

        def initialize(headers):
            global inits
            inits += 1
            return 200, [], b""

        def invoke(headers, body):
            global calls
            calls += 1
            return 200, [], "%d/%d/%s" % (inits, calls, headers.get("x-fc-function-initializer"))
    '''), "whatever.init", "1/{n}/whatever.init"),
}


@pytest.mark.parametrize("runtime", list(INIT_CASES))
def test_initializer_runs_once_per_instance_before_the_first_request(srv, svc, runtime):
    pkg, initializer, expected = INIT_CASES[runtime]
    fn = new_function(srv, svc, pkg, runtime=runtime, initializer=initializer, initializationTimeout=5)
    runs = [invoke_ok(srv, svc, fn) for _ in range(3)]
    assert [r.text for r in runs] == [expected.format(n=n) for n in (1, 2, 3)]
    assert len({r.instance_id for r in runs}) == 1


def test_custom_runtime_command_args_and_port(srv, svc):
    pkg = custom_zip('''
        def invoke(headers, body):
            return 200, [], json.dumps({"argv": sys.argv, "port": os.environ["FC_CUSTOM_LISTEN_PORT"],
                                        "exe": sys.executable, "cwd": os.getcwd()})
    ''', name="server.py")
    config = {"command": ["/usr/bin/python3"], "args": ["/code/server.py", "--flag", "two words"]}
    fn = new_function(srv, svc, pkg, runtime="custom", caPort=9123, customRuntimeConfig=config)
    got, inv = invoke_json(srv, svc, fn, b"")
    assert got == {"argv": ["/code/server.py", "--flag", "two words"], "port": "9123", "exe": "/usr/bin/python3",
                   "cwd": "/code"}


def test_custom_runtime_without_bootstrap_does_not_start(srv, svc):
    fn = new_function(srv, svc, code_zip({"readme.txt": "no bootstrap here"}), runtime="custom")
    inv = invoke(srv, svc, fn, b"x")
    assert inv.status in (412, 502), inv.describe()
    body = assert_fc_error(inv.resp, inv.status, inv.resp.json().get("ErrorCode"))
    assert body["ErrorCode"] in ("FunctionNotStarted", "CAExited", "CAFileNotFound"), body
    assert invoke(srv, svc, fn, b"x").status == inv.status, "a failed start is not cached as a working instance"
    assert health(srv)["status"] == "ok"


def test_default_limit_is_ten_instances_and_an_eleventh_request_waits_for_one(srv, svc):
    from concurrent.futures import ThreadPoolExecutor
    fn = new_function(srv, svc, PY_BEHAVIOURS, timeout=10)

    # One clock for all: the threads start a few ms apart, so each request's own start would let the eleventh
    # (started last) look up to that much faster than two sleeps in a row.
    start = time.monotonic()

    def one(_):
        inv = invoke(srv, svc, fn, b"sleep:1.5")
        return inv, time.monotonic() - start

    with ThreadPoolExecutor(11) as ex:
        results = list(ex.map(one, range(11)))
    for inv, _ in results:
        assert inv.status == 200 and inv.body == b"slept", inv.describe()
    assert len({inv.instance_id for inv, _ in results}) == 10
    assert max(t for _, t in results) >= 3.0, "the eleventh request ran only after another finished"


# --- function failures --------------------------------------------------------------------------------------
def test_python_exception_is_unhandled_with_message_type_and_stack(srv, svc, behave):
    body, inv = invoke_fails(srv, svc, behave, b"raise:42", log=True)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad value 42"
    assert any("index.py" in frame for frame in body["stackTrace"]), body
    assert "ValueError: bad value 42" in inv.log, inv.log
    assert_common_headers(inv, PY_BEHAVIOURS)
    assert invoke_ok(srv, svc, behave, b"echo:after").body == b"after"


@pytest.mark.parametrize("handler, error_fragment", [
    ("index.nothere", "nothere"),
    ("missing_module.handler", "missing_module"),
])
def test_python_bad_handler_is_unhandled(srv, svc, handler, error_fragment):
    fn = new_function(srv, svc, PY_BEHAVIOURS, handler=handler)
    body, _ = invoke_fails(srv, svc, fn, b"echo:x")
    assert error_fragment in body["errorMessage"], body


@pytest.mark.parametrize("fixture, payload, error_type, err_type, message", [
    ("node_behave", b"throw:t1", UNHANDLED, "TypeError", "sync throw t1"),
    ("node_behave", b"cberr:c1", HANDLED, "RangeError", "callback error c1"),
    ("node_async", b"reject:r1", HANDLED, "Error", "async reject r1"),
])
def test_node_errors(srv, svc, request, fixture, payload, error_type, err_type, message):
    fn = request.getfixturevalue(fixture)
    body, inv = invoke_fails(srv, svc, fn, payload, error_type=error_type)
    assert (body["errorType"], body["errorMessage"]) == (err_type, message), body
    ok = invoke_ok(srv, svc, fn, b"fine:1")
    assert ok.body in (b"node ok 1", b"async ok 1")
    assert ok.instance_id == inv.instance_id, "a reported error does not cost the instance"


def test_node_async_handler_result(srv, svc, node_async):
    assert invoke_ok(srv, svc, node_async, b"go:a9").body == b"async ok a9"


# FC: a custom runtime's failure is an UnhandledInvocationError carrying the runtime's own body and content type
# (a JSON body is not "handled" for being JSON; a text body is not wrapped). More in test_runtime_errors.py.
@pytest.mark.parametrize("payload, check", [
    (b"json500:j1", lambda inv: inv.json() == {"errorMessage": "custom failure j1", "errorType": "CustomError",
                                               "stackTrace": ["frame 1"]}),
    (b"status404:s1", lambda inv: inv.json()["errorMessage"] == "flagged failure s1"),
    (b"text500:p1", lambda inv: (inv.body, inv.h("Content-Type")) == (b"plain text failure p1", "text/plain")),
])
def test_custom_runtime_errors(srv, svc, custom_behave, payload, check):
    inv = invoke(srv, svc, custom_behave, payload)
    assert (inv.status, inv.error_type) == (200, UNHANDLED), inv.describe()
    assert check(inv), inv.describe()
    assert invoke_ok(srv, svc, custom_behave, b"ok:x").instance_id == inv.instance_id


# Destructive cases get a function of their own, so a failure cannot leak into other tests.
FAMILIES = {  # kind -> (package, runtime, a payload that succeeds)
    "python": (PY_BEHAVIOURS, "python3.10", b"echo:fine"),
    "nodejs": (NODE_BEHAVIOURS, "nodejs18", b"ok:fine"),
    "custom": (CUSTOM_BEHAVIOURS, "custom.debian10", b"ok:fine"),
}


def fresh(srv, svc, kind, **fields):
    pkg, runtime, fine = FAMILIES[kind]
    return new_function(srv, svc, pkg, runtime=runtime, **fields), fine


@pytest.mark.parametrize("kind, payload, words", [
    ("python", b"exit:py-7f3a", "last words py-7f3a"),
    ("nodejs", b"exit:js-91c2", "node last words js-91c2"),
    ("custom", b"exit:cu-5d0e", "custom last words cu-5d0e"),
])
def test_runtime_crash_is_unhandled_and_the_instance_is_replaced(srv, svc, kind, payload, words):
    fn, fine = fresh(srv, svc, kind)
    before = invoke_ok(srv, svc, fn, fine)
    body, inv = invoke_fails(srv, svc, fn, payload, log=True)
    assert body["errorType"] == "FunctionExitedError", body
    assert words in body["errorMessage"], body
    assert words in inv.log, inv.log
    assert inv.instance_id == before.instance_id
    after = [invoke(srv, svc, fn, fine) for _ in range(3)]
    assert [(a.status, a.error_type) for a in after] == [(200, None)] * 3, after[0].describe()
    assert inv.instance_id not in {a.instance_id for a in after}
    assert health(srv)["status"] == "ok"


@pytest.mark.parametrize("kind, payload", [("python", b"sleep:10"), ("nodejs", b"hang:")])
def test_timeout_is_unhandled_and_returns_at_the_deadline(srv, svc, kind, payload):
    fn, fine = fresh(srv, svc, kind, timeout=1)
    warm = invoke_ok(srv, svc, fn, fine)
    t0 = time.monotonic()
    body, inv = invoke_fails(srv, svc, fn, payload, log=True)
    elapsed = time.monotonic() - t0
    assert 0.95 <= elapsed < 3.0, elapsed
    assert body["errorType"] == "FunctionTimeoutError", body
    assert "timed out" in body["errorMessage"], body
    assert int(inv.h("X-Fc-Invocation-Duration")) >= 1000, inv.describe()
    assert f"FC Invoke Start RequestId: {inv.request_id}" in inv.log
    if kind == "python":
        assert "going to sleep" in inv.log, inv.log
    assert inv.instance_id == warm.instance_id
    t1 = time.monotonic()
    after = [invoke(srv, svc, fn, fine) for _ in range(3)]
    assert time.monotonic() - t1 < 2.0
    assert [(a.status, a.error_type) for a in after] == [(200, None)] * 3, after[0].describe()
    assert inv.instance_id not in {a.instance_id for a in after}, "a timed-out instance is replaced"


def test_out_of_memory_is_unhandled_and_the_instance_is_replaced(srv, svc):
    fn = new_function(srv, svc, PY_BEHAVIOURS, memorySize=128, timeout=10)
    body, inv = invoke_fails(srv, svc, fn, b"oom:640", log=True)
    assert body["errorType"] == "FunctionOOMError", body
    assert "memory" in body["errorMessage"].lower(), body
    assert "allocated 16 MB" in inv.log, inv.log
    assert "allocated 160 MB" not in inv.log, "the limit is memorySize (128 MB)"
    after = [invoke(srv, svc, fn, b"echo:alive") for _ in range(3)]
    assert [(a.status, a.error_type, a.body) for a in after] == [(200, None, b"alive")] * 3, after[0].describe()
    assert inv.instance_id not in {a.instance_id for a in after}
    assert health(srv)["status"] == "ok"


@pytest.mark.parametrize("kind, payload, fields", [
    ("python", b"exit:end-marker", {}), ("nodejs", b"exit:end-marker", {}), ("custom", b"exit:end-marker", {}),
    ("python", b"oom:640", {"memorySize": 128, "timeout": 10}), ("python", b"sleep:10", {"timeout": 1}),
    ("nodejs", b"hang:", {"timeout": 1}),
], ids=["python-crash", "node-crash", "custom-crash", "oom", "python-timeout", "node-timeout"])
def test_the_log_of_a_failed_invocation_is_closed(srv, svc, kind, payload, fields):
    """Like a successful one (and as the timeout's is), a failed invocation's log ends with its End marker."""
    fn, _ = fresh(srv, svc, kind, **fields)
    _, inv = invoke_fails(srv, svc, fn, payload, log=True)
    rid = inv.request_id
    assert f"FC Invoke Start RequestId: {rid}" in inv.log, inv.log
    assert f"FC Invoke End RequestId: {rid}" in inv.log, inv.log
    assert inv.log.index(f"FC Invoke End RequestId: {rid}") < inv.log.index("Billed Duration"), inv.log


def test_memory_below_the_limit_is_fine(srv, svc):
    fn = new_function(srv, svc, PY_BEHAVIOURS, memorySize=256)
    inv = invoke_ok(srv, svc, fn, b"hold:160")
    assert inv.body == str(160 << 20).encode()


# --- header validation, limits ------------------------------------------------------------------------------
@pytest.mark.parametrize("headers, message", [
    ({"X-Fc-Log-Type": "x"}, "LogType is set to an invalid value (allowed: Tail | None, actual: 'x')"),
    ({"X-Fc-Log-Type": "tail"}, "LogType is set to an invalid value (allowed: Tail | None, actual: 'tail')"),
    ({"X-Fc-Invocation-Type": "Async", "X-Fc-Log-Type": "Tail"},
     "LogType is set to an invalid value (allowed: None, actual: 'Tail')"),
    ({"X-Fc-Invocation-Type": "sync"}, None),
    ({"X-Fc-Invocation-Type": "Later"}, None),
])
@pytest.mark.parametrize("prefix", ["2016", "2021"])
def test_invalid_invocation_headers(srv, svc, behave, headers, message, prefix):
    body, _ = invoke_error(srv, svc, behave, 400, "InvalidArgument", b"count:", headers=headers, prefix=prefix)
    if message is not None:
        assert body["ErrorMessage"] == message
    else:
        assert headers["X-Fc-Invocation-Type"] in body["ErrorMessage"], body


def test_async_payload_limit_is_128_kb(srv, svc):
    behave = new_function(srv, svc, PY_BEHAVIOURS)
    inv = invoke(srv, svc, behave, b"echo:" + b"a" * (128 * 1024 - 5), async_=True)
    assert inv.status == 202, inv.describe()
    body, _ = invoke_error(srv, svc, behave, 400, "EntityTooLarge", b"echo:" + b"a" * (128 * 1024 - 4), async_=True)
    assert "131072" in body["ErrorMessage"], body


# --- async --------------------------------------------------------------------------------------------------
ASYNC_MARKER = py_zip('''
    import json, os
    seen = []

    def handler(event, context):
        msg = json.loads(event)
        if msg["op"] == "mark":
            seen.append(msg["id"])
            if msg.get("fail"):
                raise RuntimeError("async failure")
        return json.dumps({"seen": seen, "instance": os.environ["FC_INSTANCE_ID"]})
''')


@pytest.mark.parametrize("fail", [False, True])
def test_async_invocation_is_accepted_and_runs(srv, svc, fail):
    # Enough concurrency that the warm instance serves the async request and the polls alike.
    fn = new_function(srv, svc, ASYNC_MARKER, instanceConcurrency=5)
    warm, warm_inv = invoke_json(srv, svc, fn, {"op": "get"})
    assert warm["seen"] == []
    marker = unique("async")
    inv = invoke(srv, svc, fn, json.dumps({"op": "mark", "id": marker, "fail": fail}).encode(), async_=True)
    assert inv.status == 202, inv.describe()
    assert inv.body == b""
    assert inv.request_id
    assert inv.error_type is None

    def seen():
        got, poll = invoke_json(srv, svc, fn, {"op": "get"})
        assert poll.instance_id == warm_inv.instance_id
        return marker in got["seen"] and got

    got = wait_until(seen, 10, 0.05, "the async invocation's marker")
    assert got["seen"] == [marker]


@pytest.mark.parametrize("prefix", ["2016", "2021"])
def test_async_with_explicit_log_type_none(srv, svc, prefix):
    behave = new_function(srv, svc, PY_BEHAVIOURS)
    inv = invoke(srv, svc, behave, b"echo:x", prefix=prefix,
                 headers={"X-Fc-Invocation-Type": "Async", "X-Fc-Log-Type": "None"})
    assert inv.status == 202 and inv.body == b"", inv.describe()


# --- unknown targets and runtimes ---------------------------------------------------------------------------
@pytest.mark.parametrize("async_", [False, True])
@pytest.mark.parametrize("form", ["path", "query"])
def test_unknown_targets(srv, svc, behave, form, async_):
    cases = [
        (unique("nosvc"), behave, None, "ServiceNotFound"),
        (svc, unique("nofn"), None, "FunctionNotFound"),
        (svc, behave, "99", "VersionNotFound"),
        (svc, behave, "noalias", "AliasNotFound"),
    ]
    for s, f, q, code in cases:
        body, _ = invoke_error(srv, s, f, 404, code, b"x", qualifier=q, form=form, async_=async_)
        name = {"ServiceNotFound": s, "FunctionNotFound": f}.get(code, q)
        assert name in body["ErrorMessage"], body


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("runtime, advice", [
    ("dotnetcore3.1", "custom-container"), ("dotnetcore2.1", "custom-container"),
    ("python2.7", "python3.9 or later"), ("nodejs8", "nodejs12 or later"), ("nodejs4.4", "nodejs12 or later"),
])
def test_runtimes_openfc_cannot_run(srv, svc, runtime, advice, async_):
    """Refused up front, naming the runtime; asynchronously too (assumed: a request that can never run is not
    accepted with 202 only to be dropped, just as unknown targets are refused before the 202). custom-container
    runs: test_custom_container*.py."""
    name = unique("norun")
    body = {"functionName": name, "runtime": runtime, "handler": "index.handler"}
    body["code"] = {"zipFile": base64.b64encode(PY_BEHAVIOURS).decode()}
    r = srv.raw.post(f"/services/{svc}/functions", json=body)
    assert r.status_code == 200, r.text
    err, _ = invoke_error(srv, svc, name, 400, "InvalidArgument", b"x", async_=async_)
    assert runtime in err["ErrorMessage"], err
    # Actionable: what to update the function to.
    assert advice in err["ErrorMessage"], err
    assert health(srv)["status"] == "ok"


# --- versions and aliases -----------------------------------------------------------------------------------
def tagged(tag):
    return py_zip(f'''
        import json
        def handler(event, context):
            return json.dumps({{"code": "{tag}", "qualifier": context.service.qualifier,
                               "versionId": context.service.version_id}})
    ''')


@pytest.fixture(scope="module")
def versioned(srv):
    """A service whose function has code v1 in version 1, v2 in version 2, v3 in LATEST; alias `stable` -> 1,
    alias `canary` -> 1 with 30 % on 2."""
    svc = new_service(srv, "versvc")
    pkgs = {t: tagged(t) for t in ("v1", "v2", "v3")}
    fn = new_function(srv, svc, pkgs["v1"])
    assert publish(srv, svc) == 1
    update_code(srv, svc, fn, pkgs["v2"])
    assert publish(srv, svc) == 2
    update_code(srv, svc, fn, pkgs["v3"])
    create_alias(srv, svc, "stable", 1)
    create_alias(srv, svc, "canary", 1, {"2": 0.3})
    return svc, fn, pkgs


QUALIFIED = [
    (None, "v3", "LATEST", "LATEST", ""),
    ("LATEST", "v3", "LATEST", "LATEST", ""),
    ("1", "v1", "1", "1", "1"),
    ("2", "v2", "2", "2", "2"),
    ("stable", "v1", "1", "stable", "1"),
]


@pytest.mark.parametrize("prefix, form", [("2016", "path"), ("2016", "query"), ("2021", "path"), ("2021", "query")])
@pytest.mark.parametrize("qualifier, code, version, seen_qualifier, seen_version", QUALIFIED)
def test_qualifier_selects_the_code_that_runs(srv, versioned, prefix, form, qualifier, code, version,
                                             seen_qualifier, seen_version):
    svc, fn, pkgs = versioned
    got, inv = invoke_json(srv, svc, fn, b"", qualifier=qualifier, form=form, prefix=prefix)
    assert got["code"] == code
    assert inv.version == version
    assert inv.h("X-Fc-Code-Checksum") == checksum(pkgs[code])
    assert got["qualifier"] == seen_qualifier
    assert got["versionId"] == seen_version


def test_weighted_alias_splits_traffic(srv, versioned):
    svc, fn, pkgs = versioned
    counts = {"1": 0, "2": 0}
    for _ in range(100):
        got, inv = invoke_json(srv, svc, fn, b"", qualifier="canary")
        counts[inv.version] += 1
        assert got["code"] == {"1": "v1", "2": "v2"}[inv.version]
        assert got["qualifier"] == "canary" and got["versionId"] == inv.version
    assert 15 <= counts["2"] <= 45, counts
    assert counts["1"] + counts["2"] == 100


def test_alias_follows_its_update(srv, versioned):
    svc, fn, _ = versioned
    alias = unique("moving")
    create_alias(srv, svc, alias, 1)
    assert invoke_json(srv, svc, fn, b"", qualifier=alias)[0]["code"] == "v1"
    r = srv.raw.put(f"/services/{svc}/aliases/{alias}", json={"versionId": "2"})
    assert r.status_code == 200, r.text
    assert wait_until(lambda: invoke_json(srv, svc, fn, b"", qualifier=alias)[0]["code"] == "v2", 3, 0.1,
                      "the alias update taking effect")


def test_instances_are_per_function_version(srv):
    svc = new_service(srv, "pervsvc")
    fn = new_function(srv, svc, ASYNC_MARKER)
    assert publish(srv, svc) == 1  # version 1 has the same code as LATEST
    latest = invoke_json(srv, svc, fn, {"op": "mark", "id": "latest"})
    v1 = invoke_json(srv, svc, fn, {"op": "mark", "id": "v1"}, qualifier="1")
    assert latest[0]["seen"] == ["latest"] and v1[0]["seen"] == ["v1"], (latest[0], v1[0])
    assert latest[1].instance_id != v1[1].instance_id
    assert invoke_json(srv, svc, fn, {"op": "get"})[0]["seen"] == ["latest"]


# --- official SDKs ------------------------------------------------------------------------------------------
def test_fc2_sdk_invoke(srv, versioned):
    from fc2.fc_exceptions import FcError
    svc, fn, pkgs = versioned
    client = srv.fc2
    r = client.invoke_function(svc, fn, payload=b"x", headers={"x-fc-log-type": "Tail"})
    assert json.loads(r.data)["code"] == "v3"
    assert r.headers["x-fc-code-checksum"] == checksum(pkgs["v3"])
    log = base64.b64decode(r.headers["x-fc-log-result"]).decode()
    assert f"FC Invoke End RequestId: {r.headers['x-fc-request-id']}" in log
    r = client.invoke_function(svc, fn, payload=b"x", headers={}, qualifier="1")
    assert json.loads(r.data)["code"] == "v1"
    assert r.headers["x-fc-invocation-service-version"] == "1"
    r = client.invoke_function(svc, fn, payload=b"x", headers={"x-fc-invocation-type": "Async"}, qualifier="stable")
    assert r.data == b""
    with pytest.raises(FcError) as ei:
        client.invoke_function(svc, fn, payload=b"x", headers={"x-fc-log-type": "Bogus"})
    assert (ei.value.status_code, ei.value.err_code) == (400, "InvalidArgument")
    with pytest.raises(FcError) as ei:
        client.invoke_function(svc, unique("nofn"), payload=b"x", headers={})
    assert (ei.value.status_code, ei.value.err_code) == (404, "FunctionNotFound")


def test_fc2_sdk_raises_on_function_error(srv, svc, behave):
    from fc2.fc_exceptions import FcError
    with pytest.raises(FcError) as ei:
        srv.fc2.invoke_function(svc, behave, payload=b"raise:sdk", headers={})
    e = ei.value
    assert e.status_code == 200
    assert json.loads(e.message)["errorMessage"] == "bad value sdk"
    assert e.request_id and e.request_id != "unknown"


def test_fc21_sdk_invoke(srv, versioned, svc, behave):
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_openapi.exceptions import ClientException
    from alibabacloud_tea_util.models import RuntimeOptions
    vsvc, fn, pkgs = versioned
    c = srv.fc21

    def call(s, f, body=b"", qualifier=None, **headers):
        return c.invoke_function_with_options(s, f, models.InvokeFunctionRequest(body=body, qualifier=qualifier),
                                              models.InvokeFunctionHeaders(**headers), RuntimeOptions())

    r = call(vsvc, fn, b"x", qualifier="2", x_fc_log_type="Tail")
    h = {k.lower(): v for k, v in r.headers.items()}
    assert r.status_code == 200
    assert json.loads(r.body)["code"] == "v2"
    assert h["x-fc-invocation-service-version"] == "2"
    assert h["x-fc-code-checksum"] == checksum(pkgs["v2"])
    assert "Billed Duration" in base64.b64decode(h["x-fc-log-result"]).decode()
    r = call(svc, behave, b"raise:tea")
    h = {k.lower(): v for k, v in r.headers.items()}
    assert r.status_code == 200 and h["x-fc-error-type"] == UNHANDLED
    assert json.loads(r.body)["errorMessage"] == "bad value tea"
    r = call(svc, behave, b"echo:x", x_fc_invocation_type="Async")
    assert r.status_code == 202 and not r.body
    with pytest.raises(ClientException) as ei:
        call(svc, behave, b"x", x_fc_invocation_type="Async", x_fc_log_type="Tail")
    assert (ei.value.status_code, ei.value.code) == (400, "InvalidArgument")
    with pytest.raises(ClientException) as ei:
        call(vsvc, fn, b"x", qualifier="77")
    assert (ei.value.status_code, ei.value.code) == (404, "VersionNotFound")


# --- the other backend --------------------------------------------------------------------------------------
def test_invoke_runs_code_from_the_s3_code_store(start_server):
    pg = start_server(backend="postgres")
    s = new_service(pg, "pgsvc")
    v1 = tagged("pg1")
    fn = new_function(pg, s, v1)
    got, inv = invoke_json(pg, s, fn, b"")
    assert got["code"] == "pg1" and inv.h("X-Fc-Code-Checksum") == checksum(v1)
    assert publish(pg, s) == 1
    v2 = tagged("pg2")
    update_code(pg, s, fn, v2)
    assert invoke_json(pg, s, fn, b"")[0]["code"] == "pg2"
    assert invoke_json(pg, s, fn, b"", qualifier="1")[0]["code"] == "pg1"
