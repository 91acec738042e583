"""The java8 / java11 runtimes (runtimes.md §4) on Debian's OpenJDK 17: openfc's Java shim (built from the
repository's sources with the JDK's javac on the first Java start) speaks the custom-runtime HTTP contract on
caPort and runs unmodified FC Java code — `package.Class::method` handlers implementing fc-java-core's
StreamRequestHandler / PojoRequestHandler (Jackson JSON in and out), FunctionInitializer and PreStopHandler, the
Context (request id, credentials, function parameters, service, logger with FC's line format, retry count), FC's
class path (/code classes, /code/*.jar, /code/lib/*.jar) and FC's Java error body. The test functions are Java
sources compiled here with javac (no Maven: Maven Central cannot be reached) against the shim's own interface
definitions, and one package bundles its own (older) copy of them: openfc's copies are loaded parent-first, so
both run. Through the official SDKs and raw signed requests; also the `--java` setting and the clear error when
the JDK is missing."""

import json
import os
import re
import shutil
import statistics
import subprocess
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import ROOT
from invoke_helpers import (UNHANDLED, code_zip, dedent, health, invoke, invoke_error, invoke_fails, invoke_ok,
                            new_function, new_service, wait_until)

JDK = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin")
API_SRC = ROOT / "crates" / "openfc-invoker" / "runtimes" / "java" / "api"

HELLO = dedent(r'''
    package example;

    import com.aliyun.fc.runtime.Context;
    import com.aliyun.fc.runtime.FunctionComputeLogger;
    import com.aliyun.fc.runtime.FunctionInitializer;
    import com.aliyun.fc.runtime.PreStopHandler;
    import com.aliyun.fc.runtime.StreamRequestHandler;

    import java.io.ByteArrayOutputStream;
    import java.io.IOException;
    import java.io.InputStream;
    import java.io.OutputStream;
    import java.nio.charset.StandardCharsets;
    import java.util.ArrayList;
    import java.util.List;

    public class Hello implements StreamRequestHandler, FunctionInitializer, PreStopHandler {
        private int counter;
        private String initialized = "no";

        static String q(Object o) {
            if (o == null) { return "null"; }
            if (o instanceof Number || o instanceof Boolean) { return o.toString(); }
            return "\"" + o.toString().replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
        }

        static void helper(String what) {
            throw new IllegalStateException("bad " + what, new IOException("the root cause"));
        }

        @Override
        public void initialize(Context context) throws IOException {
            if (System.getenv("INIT_SLEEP") != null) {
                try { Thread.sleep(Long.parseLong(System.getenv("INIT_SLEEP")) * 1000); } catch (InterruptedException e) { }
            }
            if (System.getenv("INIT_FAIL") != null) { throw new IOException("init failed"); }
            initialized = context.getFunctionParam().getFunctionInitializer();
            System.out.println("initializer ran");
        }

        @Override
        public void preStop(Context context) throws IOException {
            System.out.println("prestop ran after " + counter + " invocations");
        }

        @Override
        public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
            counter++;
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            byte[] b = new byte[4096];
            int n;
            while ((n = input.read(b)) > 0) { buf.write(b, 0, n); }
            String event = new String(buf.toByteArray(), StandardCharsets.UTF_8);
            int colon = event.indexOf(':');
            String cmd = colon < 0 ? event : event.substring(0, colon);
            String arg = colon < 0 ? "" : event.substring(colon + 1);
            String out;
            switch (cmd) {
                case "echo": out = arg; break;
                case "context":
                    out = "{\"requestId\":" + q(context.getRequestId())
                        + ",\"accessKeyId\":" + q(context.getExecutionCredentials().getAccessKeyId())
                        + ",\"accessKeySecret\":" + q(context.getExecutionCredentials().getAccessKeySecret())
                        + ",\"securityToken\":" + q(context.getExecutionCredentials().getSecurityToken())
                        + ",\"functionName\":" + q(context.getFunctionParam().getFunctionName())
                        + ",\"handler\":" + q(context.getFunctionParam().getFunctionHandler())
                        + ",\"initializer\":" + q(context.getFunctionParam().getFunctionInitializer())
                        + ",\"timeLimit\":" + context.getFunctionParam().getExecTimeLimitInMillis()
                        + ",\"memory\":" + context.getFunctionParam().getMemoryLimitInMB()
                        + ",\"service\":" + q(context.getService().getName())
                        + ",\"logProject\":" + q(context.getService().getLogProject())
                        + ",\"logStore\":" + q(context.getService().getLogStore())
                        + ",\"qualifier\":" + q(context.getService().getQualifier())
                        + ",\"versionId\":" + q(context.getService().getVersionId())
                        + ",\"spanContext\":" + q(context.getTracing().getSpanContext())
                        + ",\"baggages\":" + context.getTracing().getSpanBaggages().size()
                        + ",\"retryCount\":" + context.getRetryCount() + "}";
                    break;
                case "env":
                    out = "{\"GREETING\":" + q(System.getenv("GREETING"))
                        + ",\"FC_SERVER_PATH\":" + q(System.getenv("FC_SERVER_PATH"))
                        + ",\"FC_FUNC_CODE_PATH\":" + q(System.getenv("FC_FUNC_CODE_PATH"))
                        + ",\"FC_FUNCTION_NAME\":" + q(System.getenv("FC_FUNCTION_NAME"))
                        + ",\"LD_LIBRARY_PATH\":" + q(System.getenv("LD_LIBRARY_PATH"))
                        + ",\"userDir\":" + q(System.getProperty("user.dir"))
                        + ",\"encoding\":" + q(System.getProperty("file.encoding"))
                        + ",\"javaVersion\":" + q(System.getProperty("java.specification.version"))
                        + ",\"maxHeapMb\":" + (Runtime.getRuntime().maxMemory() >> 20)
                        + ",\"cpus\":" + Runtime.getRuntime().availableProcessors()
                        + ",\"contextFrom\":" + q(Context.class.getProtectionDomain().getCodeSource().getLocation())
                        + ",\"resource\":" + q(Hello.class.getClassLoader().getResource("example/data.txt") != null) + "}";
                    break;
                case "log":
                    FunctionComputeLogger logger = context.getLogger();
                    logger.info(arg);
                    logger.debug("hidden at INFO");
                    System.out.println("printed " + arg);
                    logger.setLogLevel(FunctionComputeLogger.Level.DEBUG);
                    logger.debug("shown at DEBUG");
                    out = "logged";
                    break;
                case "state":
                    out = "{\"counter\":" + counter + ",\"initialized\":" + q(initialized)
                        + ",\"jvm\":" + q(java.lang.management.ManagementFactory.getRuntimeMXBean().getName()) + "}";
                    break;
                case "throw": throw new IOException(arg);
                case "nested": helper(arg); out = "unreachable"; break;
                case "handled":
                    try {
                        helper(arg);
                        out = "unreachable";
                    } catch (IllegalStateException e) {
                        out = "{\"error\":" + q(e.getMessage()) + "}";
                    }
                    break;
                case "sleep":
                    try { Thread.sleep(Long.parseLong(arg)); } catch (InterruptedException e) { }
                    out = "slept " + arg;
                    break;
                case "alloc":
                    List<byte[]> hold = new ArrayList<>();
                    for (int i = 0; i < Integer.parseInt(arg); i++) { hold.add(new byte[1 << 20]); }
                    out = "allocated " + hold.size();
                    break;
                case "exit":
                    System.out.println("exiting on purpose");
                    System.exit(-1);
                    out = "unreachable";
                    break;
                default: out = "unknown " + cmd;
            }
            output.write(out.getBytes(StandardCharsets.UTF_8));
        }
    }
''')

POJO = dedent(r'''
    package example;

    import com.aliyun.fc.runtime.Context;
    import com.aliyun.fc.runtime.PojoRequestHandler;

    import java.util.ArrayList;
    import java.util.List;

    public class Greeter implements PojoRequestHandler<Greeter.Request, Greeter.Response> {
        public static class Request {
            public String name;
            public int times;
        }

        public static class Response {
            public String greeting;
            public List<String> lines = new ArrayList<>();
            public String requestId;
        }

        @Override
        public Response handleRequest(Request input, Context context) {
            Response r = new Response();
            r.greeting = "hello " + input.name;
            for (int i = 0; i < input.times; i++) { r.lines.add(input.name + " #" + i); }
            r.requestId = context.getRequestId();
            return r;
        }
    }
''')

# An older fc-java-core copy (the 1.2-era Context: no getService/getRetryCount/getTracing) that the bundled
# package carries in its jar, as fat jars built with maven-assembly-plugin do.
OLD_API = {
    "com/aliyun/fc/runtime/Context.java": """package com.aliyun.fc.runtime;
public interface Context {
    String getRequestId();
    Credentials getExecutionCredentials();
    FunctionParam getFunctionParam();
    FunctionComputeLogger getLogger();
}
""",
    "com/aliyun/fc/runtime/Credentials.java": """package com.aliyun.fc.runtime;
public interface Credentials { String getAccessKeyId(); String getAccessKeySecret(); String getSecurityToken(); }
""",
    "com/aliyun/fc/runtime/FunctionParam.java": """package com.aliyun.fc.runtime;
public interface FunctionParam {
    String getFunctionName(); String getFunctionHandler(); int getExecTimeLimitInMillis(); int getMemoryLimitInMB();
}
""",
    "com/aliyun/fc/runtime/FunctionComputeLogger.java": """package com.aliyun.fc.runtime;
public interface FunctionComputeLogger {
    void trace(String s); void debug(String s); void info(String s); void warn(String s); void error(String s);
    void fatal(String s);
}
""",
    "com/aliyun/fc/runtime/StreamRequestHandler.java": """package com.aliyun.fc.runtime;
public interface StreamRequestHandler {
    void handleRequest(java.io.InputStream input, java.io.OutputStream output, Context context)
        throws java.io.IOException;
}
""",
}

BUNDLED = dedent(r'''
    package bundled;

    import com.aliyun.fc.runtime.Context;
    import com.aliyun.fc.runtime.StreamRequestHandler;

    import java.io.IOException;
    import java.io.InputStream;
    import java.io.OutputStream;
    import java.nio.charset.StandardCharsets;

    public class Echo implements StreamRequestHandler {
        @Override
        public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
            context.getLogger().info("bundled handler");
            String where = String.valueOf(Context.class.getProtectionDomain().getCodeSource().getLocation());
            output.write(("bundled " + context.getFunctionParam().getFunctionName() + " " + where)
                .getBytes(StandardCharsets.UTF_8));
        }
    }
''')


def javac(src_dir, out_dir, classpath=None):
    cmd = [str(JDK / "javac"), "--release", "8", "-nowarn", "-encoding", "UTF-8", "-d", str(out_dir)]
    if classpath:
        cmd += ["-cp", str(classpath)]
    cmd += [str(p) for p in sorted(Path(src_dir).rglob("*.java"))]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"javac failed:\n{p.stdout}\n{p.stderr}"


def jar_bytes(classes_dir, extra=None):
    """A jar (a zip with a manifest) of every file under classes_dir (+ extra {name: bytes})."""
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: openfc tests\r\n\r\n")
        for p in sorted(Path(classes_dir).rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(classes_dir).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_sources(root, files):
    for name, text in files.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """Compiles the test functions: (a) against openfc's interface copies (from the shim's sources), not
    bundling them; (b) against an older copy bundled in the jar."""
    if not (JDK / "javac").exists():
        msg = "java8/java11 tests need Debian's openjdk-17-jdk-headless (scripts/test.sh installs it)"
        if os.environ.get("OPENFC_REQUIRE_EXTERNAL") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    t = tmp_path_factory.mktemp("javafixture")
    javac(API_SRC, t / "api")
    write_sources(t / "src", {"example/Hello.java": HELLO, "example/Greeter.java": POJO})
    javac(t / "src", t / "out", classpath=t / "api")
    write_sources(t / "oldapi-src", OLD_API)
    write_sources(t / "bundled-src", {"bundled/Echo.java": BUNDLED})
    javac(t / "oldapi-src", t / "bundled-out")
    javac(t / "bundled-src", t / "bundled-out", classpath=t / "bundled-out")
    assert not (t / "out" / "com").exists() and (t / "bundled-out" / "com/aliyun/fc/runtime/Context.class").exists()
    return {
        # The jar itself uploaded as the code package (FC unpacks it into /code).
        "jar": jar_bytes(t / "out", {"example/data.txt": b"data"}),
        # `fun build`'s layout: classes at the root.
        "classes": code_zip({p.relative_to(t / "out").as_posix(): p.read_bytes()
                             for p in (t / "out").rglob("*.class")}),
        # A zip holding a fat jar (with its own fc-java-core copy) under lib/.
        "bundled": code_zip({"lib/bundled-1.0.jar": jar_bytes(t / "bundled-out")}),
        "out": t / "out",
    }


@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "javasvc")


HANDLER = "example.Hello::handleRequest"


def java_fn(srv, svc, pkg, runtime="java11", handler=HANDLER, **fields):
    fields.setdefault("timeout", 10)
    return new_function(srv, svc, pkg, runtime=runtime, handler=handler, **fields)


@pytest.fixture(scope="module")
def fn(srv, svc, fixtures):
    return java_fn(srv, svc, fixtures["jar"], environmentVariables={"GREETING": "from-env"})


def log_file(srv, svc, fn):
    return srv.data_dir / "logs" / srv.account_id / svc / f"{fn}.log"


def java_line(src, text):
    return src.splitlines().index(text) + 1


# --- invoke, round trips, context, environment -------------------------------------------------------------------
def test_event_invoke_through_the_sdks(srv, svc, fn):
    r = srv.fc2.invoke_function(svc, fn, payload=b"echo:hello java", headers={})
    assert r.data == b"hello java"
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_util.models import RuntimeOptions
    r = srv.fc21.invoke_function_with_options(svc, fn, models.InvokeFunctionRequest(body=b"echo:tea"),
                                              models.InvokeFunctionHeaders(), RuntimeOptions())
    assert r.status_code == 200 and r.body == b"tea"


def test_pojo_json_round_trip(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"], handler="example.Greeter::handleRequest")
    r = srv.fc2.invoke_function(svc, f, payload=json.dumps({"name": "openfc", "times": 2}).encode(), headers={})
    got = json.loads(r.data)
    assert got == {"greeting": "hello openfc", "lines": ["openfc #0", "openfc #1"], "requestId": got["requestId"]}
    assert got["requestId"]
    body, _ = invoke_fails(srv, svc, f, b'{"name": "x", "unknown": 1}')
    assert body["errorType"] == "com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException", body


def test_context_fields(srv, svc, fn):
    inv = invoke_ok(srv, svc, fn, b"context:")
    assert inv.json() == {
        "requestId": inv.request_id, "accessKeyId": "", "accessKeySecret": "", "securityToken": "",
        "functionName": fn, "handler": HANDLER, "initializer": "", "timeLimit": 10000, "memory": 128,
        "service": svc, "logProject": "", "logStore": "", "qualifier": "LATEST", "versionId": "",
        "spanContext": "", "baggages": 0, "retryCount": 0,
    }


@pytest.mark.parametrize("runtime", ["java8", "java11"])
def test_environment_jvm_and_class_path(srv, svc, fixtures, runtime):
    f = java_fn(srv, svc, fixtures["jar"], runtime=runtime, environmentVariables={"GREETING": "from-env"},
                memorySize=512)
    got = invoke_ok(srv, svc, f, b"env:").json()
    assert got["GREETING"] == "from-env" and got["FC_FUNCTION_NAME"] == f
    assert got["FC_SERVER_PATH"] == f"/var/fc/runtime/{runtime}" and got["FC_FUNC_CODE_PATH"] == "/code"
    assert got["LD_LIBRARY_PATH"] == "/code:/code/lib"
    assert got["userDir"] == "/code" and got["encoding"] == "UTF-8" and got["javaVersion"] == "17"
    assert got["resource"] is True, "resources of the uploaded jar are on the class path"
    assert got["contextFrom"] == "file:/var/fc/runtime/java/classes/", "openfc's own interface copies"
    # 90 % of 512 MB minus the non-heap budget (metaspace 64, code cache 32, direct 32).
    assert 300 <= got["maxHeapMb"] <= 332, got
    assert got["cpus"] == 1


def test_classes_at_the_root_run_too(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["classes"])
    assert invoke_ok(srv, svc, f, b"echo:from classes").body == b"from classes"


def test_a_jar_bundling_its_own_older_fc_java_core_runs_on_openfcs(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["bundled"], handler="bundled.Echo::handleRequest")
    inv = invoke_ok(srv, svc, f, b"x", log=True)
    assert inv.body == f"bundled {f} file:/var/fc/runtime/java/classes/".encode(), inv.describe()
    assert f"{inv.request_id} [INFO] bundled handler" in inv.log


# --- errors --------------------------------------------------------------------------------------------------------
def test_an_unhandled_exception_has_fcs_exact_body(srv, svc, fn):
    inv = invoke(srv, svc, fn, b"throw:oops")
    assert (inv.status, inv.error_type) == (200, UNHANDLED), inv.describe()
    line = java_line(HELLO, '            case "throw": throw new IOException(arg);')
    assert inv.body == ('{"errorMessage":"oops","errorType":"java.io.IOException","errorCause":"oops",'
                        f'"stackTrace":["example.Hello.handleRequest(Hello.java:{line})"]}}').encode(), inv.body
    from fc2.fc_exceptions import FcError
    with pytest.raises(FcError) as ei:
        srv.fc2.invoke_function(svc, fn, payload=b"throw:sdk", headers={})
    assert ei.value.status_code == 200 and json.loads(ei.value.message)["errorMessage"] == "sdk"


def test_a_nested_exception_keeps_the_users_frames_and_its_cause(srv, svc, fn):
    body, inv = invoke_fails(srv, svc, fn, b"nested:thing", log=True)
    helper = java_line(HELLO, '        throw new IllegalStateException("bad " + what, new IOException("the root cause"));')
    call = java_line(HELLO, '            case "nested": helper(arg); out = "unreachable"; break;')
    assert body == {"errorMessage": "bad thing", "errorType": "java.lang.IllegalStateException",
                    "errorCause": "the root cause",
                    "stackTrace": [f"example.Hello.helper(Hello.java:{helper})",
                                   f"example.Hello.handleRequest(Hello.java:{call})"]}, body
    assert re.search(re.escape(inv.request_id) + r" \[ERROR\] java.lang.IllegalStateException: bad thing", inv.log), inv.log


def test_a_handled_error_is_the_functions_own_answer(srv, svc, fn):
    """Java has no HandledInvocationError: an exception the function catches is its ordinary result."""
    inv = invoke_ok(srv, svc, fn, b"handled:input")
    assert inv.json() == {"error": "bad input"}


@pytest.mark.parametrize("handler, words", [
    ("example.Nope::handleRequest", "Class example.Nope not found"),
    ("example.Hello::nothere", "Method nothere not found in class example.Hello"),
    ("example.Hello", "Invalid handler 'example.Hello'"),
])
def test_bad_handlers(srv, svc, fixtures, handler, words):
    f = java_fn(srv, svc, fixtures["jar"], handler=handler)
    body, _ = invoke_fails(srv, svc, f, b"x")
    assert words in body["errorMessage"], body


def test_exit_is_unhandled_and_the_instance_is_replaced(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"])
    before = invoke_ok(srv, svc, f, b"echo:x")
    body, inv = invoke_fails(srv, svc, f, b"exit:")
    assert body["errorType"] == "FunctionExitedError" and "exiting on purpose" in body["errorMessage"], body
    assert invoke_ok(srv, svc, f, b"echo:y").instance_id not in (inv.instance_id, None)
    assert inv.instance_id == before.instance_id


def test_timeout(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"], timeout=1)
    invoke_ok(srv, svc, f, b"echo:warm")
    t0 = time.monotonic()
    body, inv = invoke_fails(srv, svc, f, b"sleep:5000", log=True)
    assert 0.95 <= time.monotonic() - t0 < 3.0
    assert body["errorType"] == "FunctionTimeoutError", body
    assert f"FC Invoke Start RequestId: {inv.request_id}" in inv.log
    assert invoke_ok(srv, svc, f, b"echo:after").instance_id != inv.instance_id


def test_memory_limit_is_a_java_out_of_memory_error_not_a_kill(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"], memorySize=128, timeout=30)
    assert invoke_ok(srv, svc, f, b"alloc:20").body == b"allocated 20"
    body, inv = invoke_fails(srv, svc, f, b"alloc:400")
    assert body["errorType"] == "java.lang.OutOfMemoryError" and body["errorMessage"] == "Java heap space", body
    after = invoke_ok(srv, svc, f, b"echo:alive")
    assert after.instance_id == inv.instance_id, "the JVM survives its own OutOfMemoryError"


# --- logs ----------------------------------------------------------------------------------------------------------
def test_logger_prints_and_markers_in_the_log_tail_and_the_function_log(srv, svc, fn):
    inv = invoke_ok(srv, svc, fn, b"log:hello log", log=True)
    rid = inv.request_id
    lines = inv.log.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    assert lines[0] == f"FC Invoke Start RequestId: {rid}", lines
    assert re.fullmatch(stamp + re.escape(rid) + r" \[INFO\] hello log", lines[1]), lines
    assert lines[2] == "printed hello log", "DEBUG is below the logger's INFO level"
    assert re.fullmatch(stamp + re.escape(rid) + r" \[DEBUG\] shown at DEBUG", lines[3]), lines
    assert lines[4] == f"FC Invoke End RequestId: {rid}", lines
    path = log_file(srv, svc, fn)
    wait_until(lambda: path.exists() and f"{rid} [INFO] hello log" in path.read_text(), 5, what="the function log")


# --- lifecycle, concurrency ----------------------------------------------------------------------------------------
def test_initializer_runs_once_on_the_handlers_object(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"], initializer="example.Hello::initialize", initializationTimeout=10)
    runs = [invoke_ok(srv, svc, f, b"state:").json() for _ in range(2)]
    assert [r["initialized"] for r in runs] == ["example.Hello::initialize"] * 2
    assert [r["counter"] for r in runs] == [1, 2] and runs[0]["jvm"] == runs[1]["jvm"]
    text = log_file(srv, svc, f).read_text()
    assert "FC Initialize Start RequestId:" in text and "initializer ran" in text


@pytest.mark.parametrize("env, words", [({"INIT_FAIL": "1"}, "init failed"), ({"INIT_SLEEP": "4"}, "timed out after 2 s")])
def test_initializer_failure_and_timeout_fail_the_start(srv, svc, fixtures, env, words):
    f = java_fn(srv, svc, fixtures["jar"], initializer="example.Hello::initialize", initializationTimeout=2,
                environmentVariables=env)
    inv = invoke(srv, svc, f, b"echo:x")
    assert inv.status == 412, inv.describe()
    body = inv.json()
    assert body["ErrorCode"] == "FunctionNotStarted" and words in body["ErrorMessage"], body


def test_pre_stop_runs_before_an_idle_instance_stops(start_server, fixtures):
    s = start_server(args=["--instance-idle-timeout", "1"])
    sv = new_service(s, "javastop")
    f = java_fn(s, sv, fixtures["jar"], instanceLifecycleConfig={"preStop": {"handler": "example.Hello::preStop", "timeout": 3}})
    invoke_ok(s, sv, f, b"echo:x")
    invoke_ok(s, sv, f, b"echo:y")
    path = log_file(s, sv, f)
    wait_until(lambda: path.exists() and "prestop ran after 2 invocations" in path.read_text(), 20,
               what="the pre-stop hook's output")
    assert "FC PreStop Start RequestId:" in path.read_text()


def test_concurrent_requests_share_one_instance(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"], instanceConcurrency=3)
    invoke_ok(srv, svc, f, b"echo:warm")
    t0 = time.monotonic()
    with ThreadPoolExecutor(3) as ex:
        runs = list(ex.map(lambda _: invoke_ok(srv, svc, f, b"sleep:1000"), range(3)))
    assert len({r.instance_id for r in runs}) == 1
    assert time.monotonic() - t0 < 2.5


def test_http_handlers_are_refused_clearly(srv, svc, fixtures):
    f = java_fn(srv, svc, fixtures["jar"])
    r = srv.raw.post(f"/services/{svc}/functions/{f}/triggers", json={
        "triggerName": "web", "triggerType": "http",
        "triggerConfig": {"authType": "anonymous", "methods": ["GET", "POST"]}})
    assert r.status_code == 200, r.text
    r = requests.get(f"{srv.endpoint}/2016-08-15/proxy/{svc}/{f}/a", timeout=30)
    assert r.status_code == 200 and r.headers["X-Fc-Error-Type"] == UNHANDLED, (r.status_code, r.text)
    assert "HttpRequestHandler" in r.json()["errorMessage"] and "not supported" in r.json()["errorMessage"]


# --- interpreter setting, cold start -------------------------------------------------------------------------------
def test_health_reports_java(srv):
    assert health(srv)["interpreters"]["java"] == {"path": str(JDK / "java"), "found": True}


def test_a_missing_jdk_names_the_debian_package(start_server, tmp_path, fixtures):
    s = start_server(args=["--java", str(tmp_path / "no-java")])
    assert health(s)["interpreters"]["java"] == {"path": str(tmp_path / "no-java"), "found": False}
    sv = new_service(s, "nojava")
    f = java_fn(s, sv, fixtures["jar"])
    body, _ = invoke_error(s, sv, f, 400, "InvalidArgument", b"echo:x")
    msg = body["ErrorMessage"]
    assert "java11" in msg and "openjdk-17-jdk-headless" in msg and "--java" in msg, body


def test_cold_start(srv, svc, fixtures):
    """Cold start of a Java function (a new function each time: JVM + shim + first call), printed with the bare
    JVM's `java -cp . Hello` start on this machine for comparison (run with -s to see the figures)."""
    invoke_ok(srv, svc, java_fn(srv, svc, fixtures["jar"]), b"echo:build")  # the shim is built by now
    colds = []
    for _ in range(5):
        f = java_fn(srv, svc, fixtures["jar"])
        t0 = time.monotonic()
        invoke_ok(srv, svc, f, b"echo:cold")
        colds.append((time.monotonic() - t0) * 1000)
    src = fixtures["out"].parent / "bare"
    write_sources(src, {"Hello.java": "public class Hello { public static void main(String[] a) { System.out.println(\"hi\"); } }"})
    javac(src, src)
    bare = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run([str(JDK / "java"), "-cp", str(src), "Hello"], check=True, capture_output=True)
        bare.append((time.monotonic() - t0) * 1000)
    print(f"\njava11 cold start p50 {statistics.median(colds):.0f} ms ({', '.join(f'{c:.0f}' for c in colds)}); "
          f"bare `java -cp . Hello` p50 {statistics.median(bare):.0f} ms")
    assert statistics.median(colds) < 10000
