"""Pre-started JVMs and PHP runtimes (issue 17 item 5, issue 9): a JVM with openfc's Java shim loaded (its heap
sized for one of the common memory sizes, once a cold start of that size was seen) and a PHP with the PHP shim
loaded wait in their own sandboxes; a cold start hands one its function — package at /code (a jar under
/code/lib), environment, limits. Each test checks the instance really came from the pool (the runtime is older
than the request that started it, and the pool's use counter moved) and that isolation is whole: its own
environment, code, memory limit (a Java OutOfMemoryError at the heap sized from memorySize), context and
initializer, and nothing of a function started before it."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT
from invoke_helpers import (code_zip, dedent, health, invoke, invoke_fails, invoke_ok, new_function, new_service,
                            wait_until)
from test_prestarted import used, waiting
from test_runtime_java import jar_bytes, javac, write_sources

pytestmark = pytest.mark.timeout(300)

JDK = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin")
API_SRC = ROOT / "crates" / "openfc-invoker" / "runtimes" / "java" / "api"

PROBE = dedent(r'''
    package probe;

    import com.aliyun.fc.runtime.Context;
    import com.aliyun.fc.runtime.FunctionInitializer;
    import com.aliyun.fc.runtime.StreamRequestHandler;

    import java.io.ByteArrayOutputStream;
    import java.io.File;
    import java.io.IOException;
    import java.io.InputStream;
    import java.io.OutputStream;
    import java.nio.charset.StandardCharsets;
    import java.util.ArrayList;
    import java.util.Arrays;
    import java.util.List;

    public class Probe implements StreamRequestHandler, FunctionInitializer {
        private static final List<byte[]> HOG = new ArrayList<>();
        private String initializedBy = "";

        static String q(Object o) {
            if (o == null) { return "null"; }
            if (o instanceof Number || o instanceof Boolean) { return o.toString(); }
            return "\"" + o.toString().replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
        }

        static String list(String dir) {
            String[] names = new File(dir).list();
            if (names == null) { return "null"; }
            Arrays.sort(names);
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < names.length; i++) { b.append(i == 0 ? "" : ",").append(q(names[i])); }
            return b.append("]").toString();
        }

        @Override
        public void initialize(Context context) {
            initializedBy = context.getFunctionParam().getFunctionName();
        }

        @Override
        public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            byte[] b = new byte[4096];
            int n;
            while ((n = input.read(b)) > 0) { buf.write(b, 0, n); }
            String event = new String(buf.toByteArray(), StandardCharsets.UTF_8);
            if (event.startsWith("alloc:")) {
                int mb = Integer.parseInt(event.substring(6));
                for (int i = 0; i < mb; i++) { HOG.add(new byte[1 << 20]); }
            }
            if (event.startsWith("write:")) {
                new File("/tmp/" + event.substring(6)).createNewFile();
            }
            String out = "{\"uptimeMs\":" + java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime()
                + ",\"marker\":" + q(System.getenv("MARKER"))
                + ",\"prestartedFlag\":" + q(System.getenv("OPENFC_PRESTARTED"))
                + ",\"fcMemory\":" + q(System.getenv("FC_FUNCTION_MEMORY_SIZE"))
                + ",\"port\":" + q(System.getenv("FC_CUSTOM_LISTEN_PORT"))
                + ",\"function\":" + q(context.getFunctionParam().getFunctionName())
                + ",\"memory\":" + context.getFunctionParam().getMemoryLimitInMB()
                + ",\"requestId\":" + q(context.getRequestId())
                + ",\"initializedBy\":" + q(initializedBy)
                + ",\"maxHeapMb\":" + (Runtime.getRuntime().maxMemory() >> 20)
                + ",\"userDir\":" + q(System.getProperty("user.dir"))
                + ",\"libraryPath\":" + q(System.getProperty("java.library.path"))
                + ",\"loader\":" + q(Probe.class.getProtectionDomain().getCodeSource().getLocation())
                + ",\"resource\":" + q(Probe.class.getClassLoader().getResource("probe/data.txt") != null)
                + ",\"code\":" + list("/code")
                + ",\"tmp\":" + list("/tmp") + "}";
            output.write(out.getBytes(StandardCharsets.UTF_8));
        }
    }
''')

HANDLER = "probe.Probe::handleRequest"
INITIALIZER = "probe.Probe::initialize"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The probe as a jar under lib/ of the code package (FC's `/code/lib/*.jar`), with a resource."""
    if not (JDK / "javac").exists():
        msg = "pre-started JVM tests need Debian's openjdk-17-jdk-headless (scripts/test.sh installs it)"
        if os.environ.get("OPENFC_REQUIRE_EXTERNAL") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    t = tmp_path_factory.mktemp("jvmprobe")
    javac(API_SRC, t / "api")
    write_sources(t / "src", {"probe/Probe.java": PROBE})
    javac(t / "src", t / "out", classpath=t / "api")
    jar = jar_bytes(t / "out", {"probe/data.txt": b"data"})

    def pkg(**extra):
        files = {"lib/probe-1.0.jar": jar}
        files.update({k: v.encode() if isinstance(v, str) else v for k, v in extra.items()})
        return code_zip(files)
    return pkg


def java_fn(srv, svc, pkg, memory=128, **fields):
    fields.setdefault("timeout", 30)
    return new_function(srv, svc, pkg, runtime=fields.pop("runtime", "java11"), handler=HANDLER, memorySize=memory,
                        **fields)


def probe(srv, svc, fn, event=b"x"):
    return invoke_ok(srv, svc, fn, event).json()


@pytest.fixture(scope="module")
def srv(server_factory):
    s = server_factory.start("sqlite", args=["--prestarted-runtimes", "1"])
    yield s
    s.close()


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "prejvm")


@pytest.fixture(scope="module")
def warm(srv, svc, package):
    """The first Java cold start of 128 MB builds the shim and starts afresh; a JVM for 128 MB then waits."""
    fn = java_fn(srv, svc, package(), memory=128)
    before = used(srv)
    out = probe(srv, svc, fn)
    assert used(srv) == before, "no JVM could be waiting before the first Java cold start"
    wait_until(lambda: waiting(srv, "java") == 1, 60, what="a JVM pre-started for 128 MB")
    return out


def test_a_java_cold_start_takes_a_waiting_jvm_with_its_own_function(srv, svc, package, warm):
    time.sleep(1.0)
    before = used(srv)
    fn = java_fn(srv, svc, package(extra_file="x"), memory=128, initializer=INITIALIZER,
                 environmentVariables={"MARKER": "first"})
    out = probe(srv, svc, fn)
    assert used(srv) == before + 1
    assert out["uptimeMs"] > 800, out
    assert (out["marker"], out["prestartedFlag"], out["fcMemory"]) == ("first", None, "128"), out
    assert (out["function"], out["memory"], out["initializedBy"]) == (fn, 128, fn), out
    assert out["requestId"], out
    assert out["code"] == ["extra_file", "lib"], out
    assert out["loader"] == "file:/code/lib/probe-1.0.jar" and out["resource"] is True, out
    assert out["userDir"] == "/code" and out["libraryPath"].startswith("/code:/code/lib:"), out
    # The heap is the one a fresh JVM of the same size gets.
    assert out["maxHeapMb"] == warm["maxHeapMb"], (out, warm)
    wait_until(lambda: waiting(srv, "java") == 1, 60, what="the pool refilled")


def test_nothing_of_an_earlier_function_is_visible(srv, svc, package, warm):
    wait_until(lambda: waiting(srv, "java") == 1, 60, what="a waiting JVM")
    first = java_fn(srv, svc, package(only_first="1"), environmentVariables={"MARKER": "one"})
    before = used(srv)
    out1 = probe(srv, svc, first, b"write:secret-of-first")
    assert used(srv) == before + 1 and "secret-of-first" in out1["tmp"], out1
    wait_until(lambda: waiting(srv, "java") == 1, 60, what="the pool refilled")
    second = java_fn(srv, svc, package(), environmentVariables={"MARKER": "two"})
    out2 = probe(srv, svc, second)
    assert used(srv) == before + 2
    assert out2["marker"] == "two" and "secret-of-first" not in out2["tmp"], out2
    assert out2["code"] == ["lib"] and out2["function"] == second, out2


def test_the_memory_limit_is_a_java_out_of_memory_error(srv, svc, package, warm):
    wait_until(lambda: waiting(srv, "java") == 1, 60, what="a waiting JVM")
    fn = java_fn(srv, svc, package())
    before = used(srv)
    body, inv = invoke_fails(srv, svc, fn, b"alloc:400")
    assert used(srv) == before + 1
    assert body["errorType"] == "java.lang.OutOfMemoryError" and body["errorMessage"] == "Java heap space", body
    assert invoke_ok(srv, svc, fn, b"x").instance_id == inv.instance_id, "the JVM survives its own OutOfMemoryError"


def test_each_common_memory_size_gets_its_own_jvms(srv, svc, package, warm):
    first = java_fn(srv, svc, package(), memory=256, runtime="java8")
    before = used(srv)
    fresh = probe(srv, svc, first)
    assert used(srv) == before, "no JVM was waiting for 256 MB before one was asked for"
    wait_until(lambda: waiting(srv, "java") == 2, 60, what="JVMs for 128 and 256 MB waiting")
    second = java_fn(srv, svc, package(), memory=256, runtime="java8")
    out = probe(srv, svc, second)
    assert used(srv) == before + 1 and out["memory"] == 256, out
    assert out["maxHeapMb"] == fresh["maxHeapMb"] and out["maxHeapMb"] > warm["maxHeapMb"], (out, fresh, warm)
    # An uncommon size always starts afresh.
    odd = java_fn(srv, svc, package(), memory=384)
    assert probe(srv, svc, odd)["memory"] == 384
    assert used(srv) == before + 1


def test_zero_turns_it_off_for_java(start_server, package):
    s = start_server(args=["--prestarted-runtimes", "0"])
    sv = new_service(s, "prejvmoff")
    for marker in ("a", "b"):
        fn = java_fn(s, sv, package(), environmentVariables={"MARKER": marker})
        out = probe(s, sv, fn)
        assert out["marker"] == marker and out["userDir"] == "/code", out
    assert used(s) == 0 and waiting(s, "java") == 0


# --- PHP ----------------------------------------------------------------------------------------------------------
PHP_PROBE = dedent(r'''
    <?php
    $initializedBy = '';

    function age() {
        $stat = file_get_contents('/proc/self/stat');
        $fields = explode(' ', trim(substr($stat, strrpos($stat, ')') + 2)));
        return (float) explode(' ', file_get_contents('/proc/uptime'))[0] - $fields[19] / 100;
    }

    function init($context) {
        global $initializedBy;
        $initializedBy = $context['function']['name'];
    }

    function handler($event, $context) {
        global $initializedBy;
        $cmd = json_decode($event ?: '{}', true);
        if (!empty($cmd['write'])) { touch('/tmp/' . $cmd['write']); }
        $code = scandir('/code');
        $tmp = scandir('/tmp');
        return array(
            'age' => age(),
            'getenv' => getenv('MARKER'),
            'env' => isset($_ENV['MARKER']) ? $_ENV['MARKER'] : null,
            'server' => isset($_SERVER['MARKER']) ? $_SERVER['MARKER'] : null,
            'prestartedFlag' => getenv('OPENFC_PRESTARTED'),
            'function' => $context['function']['name'],
            'memory' => $context['function']['memory'],
            'requestId' => $context['requestId'],
            'initializedBy' => $initializedBy,
            'cwd' => getcwd(),
            'code' => array_values(array_diff($code, array('.', '..'))),
            'tmp' => array_values(array_diff($tmp, array('.', '..'))),
            'included' => function_exists('helper_from_include') ? helper_from_include() : null,
        );
    }
''')


def php_zip(**extra):
    files = {"index.php": PHP_PROBE, "helper.php": "<?php function helper_from_include() { return 'inc'; }\n"}
    files.update(extra)
    return code_zip({k: v.encode() if isinstance(v, str) else v for k, v in files.items()})


def php_probe(srv, svc, fn, cmd=None):
    return invoke_ok(srv, svc, fn, json.dumps(cmd or {}).encode()).json()


def test_a_php_cold_start_takes_a_waiting_runtime_with_its_own_function(srv, svc):
    wait_until(lambda: waiting(srv, "php") == 1, 30, what="a waiting PHP")
    time.sleep(1.0)
    before = used(srv)
    fn = new_function(srv, svc, php_zip(extra_file="x"), runtime="php7.2", memorySize=256, initializer="index.init",
                      environmentVariables={"MARKER": "first"})
    out = php_probe(srv, svc, fn)
    assert used(srv) == before + 1
    assert out["age"] > 0.8, out
    assert (out["getenv"], out["env"], out["server"], out["prestartedFlag"]) == ("first", "first", "first", False), out
    assert (out["function"], out["memory"], out["initializedBy"]) == (fn, 256, fn), out
    assert out["cwd"] == "/code" and out["code"] == ["extra_file", "helper.php", "index.php"], out
    assert out["requestId"], out


def test_nothing_of_an_earlier_php_function_is_visible(srv, svc):
    wait_until(lambda: waiting(srv, "php") == 1, 30, what="a waiting PHP")
    first = new_function(srv, svc, php_zip(only_first="1"), runtime="php7.2", environmentVariables={"MARKER": "one"})
    before = used(srv)
    out1 = php_probe(srv, svc, first, {"write": "secret-of-first"})
    assert used(srv) == before + 1 and "secret-of-first" in out1["tmp"], out1
    wait_until(lambda: waiting(srv, "php") == 1, 30, what="the pool refilled")
    second = new_function(srv, svc, php_zip(), runtime="php7.2", environmentVariables={"MARKER": "two"})
    out2 = php_probe(srv, svc, second)
    assert used(srv) == before + 2
    assert out2["getenv"] == "two" and "secret-of-first" not in out2["tmp"], out2
    assert out2["code"] == ["helper.php", "index.php"], out2


def test_a_php_package_with_its_own_extensions_starts_afresh(srv, svc):
    wait_until(lambda: waiting(srv, "php") == 1, 30, what="a waiting PHP")
    # PHP reads /code/extension/*.ini at its start (PHP_INI_SCAN_DIR): only a fresh PHP sees them.
    ini = "; an empty ini file\nprecision=10\n"
    fn = new_function(srv, svc, php_zip(**{"extension/my.ini": ini}), runtime="php7.2")
    before = used(srv)
    out = php_probe(srv, svc, fn)
    assert used(srv) == before and out["age"] < 5, out


def test_zero_turns_it_off_for_php(start_server):
    s = start_server(args=["--prestarted-runtimes", "0"])
    sv = new_service(s, "prephpoff")
    fn = new_function(s, sv, php_zip(), runtime="php7.2", environmentVariables={"MARKER": "off"})
    out = php_probe(s, sv, fn)
    assert out["getenv"] == "off" and out["cwd"] == "/code" and used(s) == 0, out
