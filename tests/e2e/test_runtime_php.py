"""The php7.2 runtime (runtimes.md §5) on Debian's PHP 8.2 CLI: openfc's PHP shim in /var/fc/runtime/php7.2 is a
client of the Runtime API that openfc serves inside the instance; user code sees FC's contract — `handler($event,
$context)` with `$context` an array, `$GLOBALS['fcLogger']` with FC's line format, HTTP handlers receiving a PSR-7
request with FC's attributes and returning `RingCentral\\Psr7\\Response`, `my_initializer($context)` and
`preStop($context)`, warnings as ErrorException, FC's error body. Plain PHP files (no Composer: Packagist cannot be
reached), through the official SDKs and raw signed requests. Also: the `--php` setting, reported in /health, and
the clear error when the interpreter is missing."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import zips
from helpers import b64, unique
from invoke_helpers import (UNHANDLED, code_zip, dedent, health, invoke, invoke_error, invoke_ok, new_function,
                            new_service, wait_until)

INDEX = dedent(r'''
    <?php
    use RingCentral\Psr7\Response;

    $counter = 0;
    $initialized = 'no';

    function my_initializer($context) {
        global $initialized;
        if (getenv('INIT_SLEEP')) { sleep((int) getenv('INIT_SLEEP')); }
        if (getenv('INIT_FAIL')) { throw new RuntimeException('init failed'); }
        $initialized = $context['function']['initializer'];
        echo "initializer ran\n";
    }

    function preStop($context) {
        global $counter;
        echo "prestop ran after $counter invocations\n";
    }

    function helper($what) {
        throw new InvalidArgumentException("bad $what");
    }

    function handler($event, $context) {
        global $counter, $initialized;
        $counter++;
        list($cmd, $arg) = array_pad(explode(':', $event, 2), 2, '');
        switch ($cmd) {
            case 'echo': return $arg;
            case 'json': return json_decode($arg, true) + ['seen' => true];
            case 'context': return $context;
            case 'state': return ['counter' => $counter, 'initialized' => $initialized, 'pid' => getmypid()];
            case 'env': return ['env' => $_ENV, 'getenv' => getenv('GREETING'), 'serverPath' => $_SERVER['FC_SERVER_PATH'] ?? null,
                                'cwd' => getcwd(), 'includePath' => get_include_path(), 'memoryLimit' => ini_get('memory_limit'),
                                'version' => PHP_VERSION];
            case 'log':
                $GLOBALS['fcLogger']->info($arg);
                $GLOBALS['fcLogger']->debug('hidden at INFO');
                echo "echoed $arg\n";
                return 'logged';
            case 'throw': throw new Exception($arg);
            case 'nested': helper($arg); return 'unreachable';
            case 'warn': $a = []; return $a['missing'];
            case 'silenced': $a = []; return @$a['missing'] ?? 'silenced';
            case 'sleep': usleep((int) $arg * 1000); return "slept $arg";
            case 'alloc': $s = str_repeat('x', (int) $arg * 1024 * 1024); return 'allocated ' . strlen($s);
            case 'layer': require_once 'lib.php'; return layer_hello();
            case 'exit': echo "exiting on purpose\n"; exit(4);
        }
        return null;
    }

    function http($request, $context) {
        if ($request->getAttribute('path') === '/boom') { throw new Exception('http boom'); }
        return new Response(201, ['X-A' => 'b', 'Content-Type' => 'application/json'], json_encode([
            'method' => $request->getMethod(),
            'path' => $request->getAttribute('path'),
            'requestURI' => $request->getAttribute('requestURI'),
            'clientIP' => $request->getAttribute('clientIP'),
            'query' => $request->getQueryParams(),
            'client' => $request->getHeaderLine('X-Client'),
            'body' => $request->getBody()->getContents(),
            'server' => $request->getServerParams()['REQUEST_METHOD'],
            'function' => $context['function']['name'],
        ]));
    }
''')


@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "phpsvc")


PKG = code_zip({"index.php": INDEX})


def php_fn(srv, svc, pkg=PKG, handler="index.handler", **fields):
    return new_function(srv, svc, pkg, runtime="php7.2", handler=handler, **fields)


@pytest.fixture(scope="module")
def fn(srv, svc):
    return php_fn(srv, svc, environmentVariables={"GREETING": "from-env"}, timeout=5)


def invoke_fails(srv, svc, fn, payload=b"", **kw):
    """A PHP function failure: 200 + X-Fc-Error-Type and FC's PHP body, whose stackTrace is an object
    {file, line, traceString} (runtimes.md §2.3) — or openfc's own body (a list) for exits, timeouts and OOM."""
    inv = invoke(srv, svc, fn, payload, **kw)
    assert (inv.status, inv.error_type) == (200, UNHANDLED), inv.describe()
    body = inv.json()
    assert isinstance(body["errorMessage"], str) and body["errorType"], body
    trace = body.get("stackTrace")
    assert trace == [] or set(trace) == {"file", "line", "traceString"}, body
    return body, inv


def log_file(srv, svc, fn):
    return srv.data_dir / "logs" / srv.account_id / svc / f"{fn}.log"


def test_the_shim_lints():
    """openfc's PHP shim sources are valid PHP 8.2 (php -l), whatever the tests' own fixtures exercise."""
    import glob
    import subprocess
    shims = glob.glob(str(__import__("pathlib").Path(__file__).resolve().parents[2] / "crates/openfc-invoker/runtimes/php/*.php"))
    assert shims, "the PHP shim sources should be found"
    for path in shims:
        p = subprocess.run(["/usr/bin/php8.2", "-l", path], capture_output=True, text=True)
        assert p.returncode == 0, path + ": " + p.stdout + p.stderr


# --- invoke, round trips, context, environment, globals ---------------------------------------------------------
def test_event_invoke_and_json_round_trip_through_the_sdks(srv, svc, fn):
    r = srv.fc2.invoke_function(svc, fn, payload=b"echo:hello php", headers={})
    assert r.data == b"hello php", "a string result is returned as it is"
    r = srv.fc2.invoke_function(svc, fn, payload=b'json:{"name":"openfc","n":[1,2]}', headers={})
    assert json.loads(r.data) == {"name": "openfc", "n": [1, 2], "seen": True}
    assert invoke_ok(srv, svc, fn, b"none").body == b"null", "a non-string result is json_encode()d"
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_util.models import RuntimeOptions
    r = srv.fc21.invoke_function_with_options(svc, fn, models.InvokeFunctionRequest(body=b"echo:tea"),
                                              models.InvokeFunctionHeaders(), RuntimeOptions())
    assert r.status_code == 200 and r.body == b"tea"


def test_context_is_fcs_array(srv, svc, fn):
    inv = invoke_ok(srv, svc, fn, b"context:")
    ctx = inv.json()
    assert ctx == {
        "requestId": inv.request_id,
        "credentials": {"accessKeyId": "", "accessKeySecret": "", "securityToken": ""},
        "function": {"name": fn, "handler": "index.handler", "memory": 128, "timeout": 5, "initializer": "",
                     "initializationTimeout": 3},
        "service": {"name": svc, "logProject": "", "logStore": "", "qualifier": "LATEST", "versionId": ""},
        "region": srv.region, "accountId": srv.account_id,
        "tracing": {"openTracingSpanContext": "", "jaegerEndpoint": "", "openTracingSpanBaggages": []},
        "retryCount": 0,
    }


def test_environment_and_settings(srv, svc, fn):
    got = invoke_ok(srv, svc, fn, b"env:").json()
    env = got["env"]
    assert env["GREETING"] == "from-env" and got["getenv"] == "from-env", "$_ENV is filled (variables_order)"
    assert got["serverPath"] == "/var/fc/runtime/php7.2", "code detects FC by $_SERVER['FC_SERVER_PATH']"
    assert env["FC_FUNCTION_NAME"] == fn and env["FC_FUNC_CODE_PATH"] == "/code"
    assert "FC_RUNTIME_API" not in env and "FC_SERVER_PATH" not in env, "FC's runtime keeps only FC_SAFE_ENV in $_ENV"
    assert env["PHP_INI_SCAN_DIR"] == "/code/extension:/etc/php/8.2/cli/conf.d"
    assert got["cwd"] == "/code"
    assert got["includePath"].split(":")[:3] == ["/code", "/opt/php", "/var/fc/runtime/php7.2"]
    assert got["memoryLimit"] == "3072M"
    assert got["version"].startswith("8.2.")


def test_globals_persist_in_an_instance(srv, svc):
    f = php_fn(srv, svc)
    runs = [invoke_ok(srv, svc, f, b"state:").json() for _ in range(3)]
    assert [r["counter"] for r in runs] == [1, 2, 3]
    assert len({r["pid"] for r in runs}) == 1


# --- errors --------------------------------------------------------------------------------------------------------
def test_an_exception_has_fcs_exact_body(srv, svc, fn):
    inv = invoke(srv, svc, fn, b"throw:oops")
    assert (inv.status, inv.error_type) == (200, UNHANDLED), inv.describe()
    line = INDEX.splitlines().index("        case 'throw': throw new Exception($arg);") + 1
    assert inv.body == ('{"errorMessage":"oops","errorType":"Exception","stackTrace":{"file":"/code/index.php",'
                        f'"line":{line},"traceString":""}}}}').encode(), inv.body
    from fc2.fc_exceptions import FcError
    with pytest.raises(FcError) as ei:
        srv.fc2.invoke_function(svc, fn, payload=b"throw:sdk", headers={})
    assert ei.value.status_code == 200 and json.loads(ei.value.message)["errorMessage"] == "sdk"


def test_a_nested_exception_keeps_the_users_frames(srv, svc, fn):
    body, _ = invoke_fails(srv, svc, fn, b"nested:thing")
    assert body["errorType"] == "InvalidArgumentException" and body["errorMessage"] == "bad thing", body
    # Debian's php.ini sets zend.exception_ignore_args: frames show no arguments.
    assert re.fullmatch(r"#0 /code/index\.php\(\d+\): helper\((?:'thing')?\)", body["stackTrace"]["traceString"]), body


def test_a_warning_becomes_an_error_exception_unless_silenced(srv, svc, fn):
    body, _ = invoke_fails(srv, svc, fn, b"warn:")
    assert body["errorType"] == "ErrorException" and body["errorMessage"] == 'Undefined array key "missing"', body
    assert body["stackTrace"]["file"] == "/code/index.php" and body["stackTrace"]["traceString"] == "", body
    assert invoke_ok(srv, svc, fn, b"silenced:").body == b"silenced"


@pytest.mark.parametrize("handler, message", [
    ("index.nothere", "function nothere not found"),
    ("missing.handler", "Module '/code/missing.php' is missing."),
])
def test_bad_handlers(srv, svc, handler, message):
    f = php_fn(srv, svc, handler=handler)
    body, _ = invoke_fails(srv, svc, f, b"x")
    assert body["errorMessage"] == message, body


@pytest.mark.parametrize("runtime, handler", [("php7.2", "nodot"), ("php7.2", "index."), ("go1", "../main"),
                                              ("go1", "/bin/sh")])
def test_malformed_handlers_are_refused_at_create(srv, svc, runtime, handler):
    """Handler strings are checked when the function is created (runtimes spec §2.1), as for Python/Node."""
    r = srv.raw.post(f"/services/{svc}/functions", json={
        "functionName": unique("badh"), "runtime": runtime, "handler": handler,
        "code": {"zipFile": b64(code_zip({"index.php": "<?php"}))}})
    assert r.status_code == 400 and r.json()["ErrorCode"] == "InvalidArgument", r.text
    assert handler in r.json()["ErrorMessage"], r.text


def test_exit_is_unhandled_and_the_instance_is_replaced(srv, svc):
    f = php_fn(srv, svc)
    before = invoke_ok(srv, svc, f, b"echo:x")
    body, inv = invoke_fails(srv, svc, f, b"exit:")
    assert body["errorType"] == "FunctionExitedError" and "exiting on purpose" in body["errorMessage"], body
    after = invoke_ok(srv, svc, f, b"echo:y")
    assert inv.instance_id == before.instance_id != after.instance_id


def test_timeout(srv, svc):
    f = php_fn(srv, svc, timeout=1)
    invoke_ok(srv, svc, f, b"echo:warm")
    t0 = time.monotonic()
    body, inv = invoke_fails(srv, svc, f, b"sleep:5000", log=True)
    assert 0.95 <= time.monotonic() - t0 < 3.0
    assert body["errorType"] == "FunctionTimeoutError", body
    assert f"FC Invoke Start RequestId: {inv.request_id}" in inv.log
    assert invoke_ok(srv, svc, f, b"echo:after").instance_id != inv.instance_id


def test_memory_limit_is_enforced(srv, svc):
    f = php_fn(srv, svc, memorySize=128, timeout=20)
    assert invoke_ok(srv, svc, f, b"alloc:30").body == b"allocated %d" % (30 << 20)
    body, inv = invoke_fails(srv, svc, f, b"alloc:400")
    assert body["errorType"] == "FunctionOOMError", body
    assert invoke_ok(srv, svc, f, b"echo:alive").instance_id != inv.instance_id


# --- logs ----------------------------------------------------------------------------------------------------------
def test_fc_logger_echo_and_markers_in_the_log_tail_and_the_function_log(srv, svc, fn):
    inv = invoke_ok(srv, svc, fn, b"log:hello log", log=True)
    rid = inv.request_id
    lines = inv.log.splitlines()
    assert lines[0] == f"FC Invoke Start RequestId: {rid}", lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ " + re.escape(rid) + r" \[INFO\] hello log", lines[1]), lines
    assert lines[2] == "echoed hello log", "DEBUG is below the logger's INFO level"
    assert lines[3] == f"FC Invoke End RequestId: {rid}", lines
    assert "Billed Duration" in lines[4]
    path = log_file(srv, svc, fn)
    wait_until(lambda: path.exists() and f"{rid} [INFO] hello log" in path.read_text(), 5, what="the function log")


# --- lifecycle -----------------------------------------------------------------------------------------------------
def test_initializer_runs_once_before_the_first_request(srv, svc):
    f = php_fn(srv, svc, initializer="index.my_initializer", initializationTimeout=5)
    runs = [invoke_ok(srv, svc, f, b"state:").json() for _ in range(2)]
    assert [r["initialized"] for r in runs] == ["index.my_initializer"] * 2
    assert [r["counter"] for r in runs] == [1, 2]
    text = log_file(srv, svc, f).read_text()
    assert "FC Initialize Start RequestId:" in text and "initializer ran" in text


@pytest.mark.parametrize("env, words", [({"INIT_FAIL": "1"}, "init failed"), ({"INIT_SLEEP": "4"}, "timed out after 1 s")])
def test_initializer_failure_and_timeout_fail_the_start(srv, svc, env, words):
    f = php_fn(srv, svc, initializer="index.my_initializer", initializationTimeout=1, environmentVariables=env)
    inv = invoke(srv, svc, f, b"echo:x")
    assert inv.status == 412, inv.describe()
    body = inv.json()
    assert body["ErrorCode"] == "FunctionNotStarted" and words in body["ErrorMessage"], body


def test_pre_stop_runs_before_an_idle_instance_stops(start_server):
    s = start_server(args=["--instance-idle-timeout", "1"])
    sv = new_service(s, "phpstop")
    f = php_fn(s, sv, instanceLifecycleConfig={"preStop": {"handler": "index.preStop", "timeout": 3}})
    invoke_ok(s, sv, f, b"echo:x")
    invoke_ok(s, sv, f, b"echo:y")
    path = log_file(s, sv, f)
    wait_until(lambda: "prestop ran after 2 invocations" in path.read_text(), 15, what="the pre-stop hook's output")
    assert "FC PreStop Start RequestId:" in path.read_text()


def test_one_request_at_a_time_per_instance(srv, svc):
    """The shim serves one request at a time: instanceConcurrency 3 gives three concurrent requests three
    instances rather than a queue in one."""
    f = php_fn(srv, svc, instanceConcurrency=3, timeout=10)
    with ThreadPoolExecutor(3) as ex:
        runs = list(ex.map(lambda _: invoke_ok(srv, svc, f, b"sleep:800"), range(3)))
    assert len({r.instance_id for r in runs}) == 3


# --- HTTP trigger --------------------------------------------------------------------------------------------------
def test_http_trigger_psr7_request_and_ringcentral_response(srv, svc):
    f = php_fn(srv, svc, handler="index.http")
    r = srv.raw.post(f"/services/{svc}/functions/{f}/triggers", json={
        "triggerName": "web", "triggerType": "http",
        "triggerConfig": {"authType": "anonymous", "methods": ["GET", "POST"]}})
    assert r.status_code == 200, r.text
    base = f"{srv.endpoint}/2016-08-15/proxy/{svc}/{f}"
    r = requests.post(f"{base}/a/b?x=1&y=2&y=3", data=b"the body", headers={"X-Client": "me"}, timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers["X-A"] == "b" and r.headers["X-Powered-By"] == "fc/php-runtime"
    got = r.json()
    assert got == {"method": "POST", "path": "/a/b", "requestURI": f"/2016-08-15/proxy/{svc}/{f}/a/b?x=1&y=2&y=3",
                   "clientIP": got["clientIP"], "query": {"x": "1", "y": ["2", "3"]}, "client": "me",
                   "body": "the body", "server": "POST", "function": f}
    r = requests.get(f"{base}/boom", timeout=30)
    assert r.status_code == 200 and r.headers["X-Fc-Error-Type"] == UNHANDLED
    assert r.json()["errorMessage"] == "http boom"


# --- layers, interpreter setting ------------------------------------------------------------------------------------
def test_layer_php_directory_is_on_the_include_path(srv, svc):
    layer = unique("phplayer").replace("_", "-")
    lib = b"<?php\nfunction layer_hello() { return 'hello from a layer'; }\n"
    r = srv.raw.post(f"/layers/{layer}/versions", json={"code": {"zipFile": b64(zips.make_zip({"php/lib.php": lib}))},
                                                     "compatibleRuntime": ["php7.2"]})
    assert r.status_code == 200, r.text
    f = php_fn(srv, svc, layers=[r.json()["arnV2"]])
    assert invoke_ok(srv, svc, f, b"layer:").body == b"hello from a layer"


def test_health_reports_the_interpreters(srv):
    php = health(srv)["interpreters"]["php"]
    assert php == {"path": "/usr/bin/php8.2", "found": True}


def test_a_missing_interpreter_names_the_debian_package(start_server, tmp_path):
    s = start_server(args=["--php", str(tmp_path / "no-php")])
    assert health(s)["interpreters"]["php"] == {"path": str(tmp_path / "no-php"), "found": False}
    sv = new_service(s, "nophp")
    f = php_fn(s, sv)
    body, _ = invoke_error(s, sv, f, 400, "InvalidArgument", b"echo:x")
    assert "php7.2" in body["ErrorMessage"] and "php8.2-cli" in body["ErrorMessage"], body
    assert "--php" in body["ErrorMessage"], body
