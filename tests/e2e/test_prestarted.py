"""Pre-started runtimes (issue 9): Python and Node.js interpreters with openfc's shim loaded wait in their own
sandboxes; a cold start hands one its function (package at /code, layers at /opt, environment, limits). Each
test checks that the instance really came from the pool (its runtime process is older than the request that
started it, and the pool's use counter moved) and that isolation is whole: its own environment, code, layers,
limits and context, nothing of a function started before it from the same pool."""

import json
import os
import signal
import time

import pytest

from helpers import assert_ok, b64, unique
from invoke_helpers import (function_logs, health, invoke, invoke_json as _invoke_json, new_function, new_service, node_zip, py_zip,
                            wait_until)

pytestmark = pytest.mark.timeout(180)

# The runtime's age (seconds since its process started, from /proc) and what it sees.
PY_PROBE = '''
import json, os, time

def _age():
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
    return float(open("/proc/uptime").read().split()[0]) - start

def _native_getenv(name):
    import ctypes
    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_char_p
    value = libc.getenv(name.encode())
    return value.decode() if value is not None else None

def handler(event, context):
    cmd = json.loads(event or b"{}")
    if cmd.get("alloc_mb"):
        hog = bytearray(cmd["alloc_mb"] * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
    if cmd.get("write"):
        open("/tmp/" + cmd["write"], "w").write("x")
    return json.dumps({
        "age": _age(),
        "env_marker": os.environ.get("MARKER"),
        "getenv_marker": _native_getenv("MARKER"),
        "tmp": sorted(os.listdir("/tmp")),
        "code": sorted(os.listdir("/code")),
        "opt": sorted(os.listdir("/opt")) if os.path.isdir("/opt") else None,
        "memory": context.function.memory,
        "fc_memory": os.environ.get("FC_FUNCTION_MEMORY_SIZE"),
        "function": context.function.name,
        "prestarted_flag": os.environ.get("OPENFC_PRESTARTED"),
        "cwd": os.getcwd(),
        "uid": os.getuid(),
        "cmdline": open("/proc/self/cmdline", "rb").read().decode().split("\\0"),
    })
'''

NODE_PROBE = '''
const fs = require('fs');
function age() {
  const ticks = 100;
  const start = parseInt(fs.readFileSync('/proc/self/stat', 'utf8').split(')').pop().trim().split(' ')[19], 10) / ticks;
  return parseFloat(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) - start;
}
exports.handler = (event, context, callback) => {
  callback(null, JSON.stringify({
    age: age(),
    env_marker: process.env.MARKER,
    code: fs.readdirSync('/code').sort(),
    function: context.function.name,
    memory: context.function.memory,
    prestarted_flag: process.env.OPENFC_PRESTARTED || null,
    cwd: process.cwd(),
  }));
};
'''


def invoke_json(srv, svc, fn, payload):
    return _invoke_json(srv, svc, fn, payload)[0]


def used(srv):
    for line in srv.metrics().splitlines():
        if line.startswith("openfc_prestarted_runtimes_used_total"):
            return float(line.split()[-1])
    return 0.0


def waiting(srv, runtime):
    return health(srv)["prestarted_runtimes"][runtime]["waiting"]


@pytest.fixture(scope="module")
def srv(server_factory):
    s = server_factory.start("sqlite", args=["--prestarted-runtimes", "2"])
    wait_until(lambda: waiting(s, "python") == 2 and waiting(s, "nodejs") == 2, 30, what="the pools filled")
    yield s
    s.close()


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "prest")


def probe(srv, svc, fn, cmd=None):
    return invoke_json(srv, svc, fn, json.dumps(cmd or {}).encode())


def test_a_python_cold_start_takes_a_waiting_runtime_with_its_own_function(srv, svc):
    # The pool filled well before this request: a runtime from it is older than the request.
    time.sleep(1.0)
    before = used(srv)
    fn = new_function(srv, svc, py_zip(PY_PROBE, extra_file="a"), memorySize=256,
                      environmentVariables={"MARKER": "first"})
    out = probe(srv, svc, fn)
    assert out["age"] > 0.8, out
    assert used(srv) == before + 1
    assert out["env_marker"] == "first" and out["getenv_marker"] == "first", out
    assert out["code"] == ["extra_file", "index.py"], out
    assert (out["memory"], out["fc_memory"], out["function"]) == (256, "256", fn), out
    assert out["prestarted_flag"] is None and out["cwd"] == "/code" and out["uid"] == 65534, out
    # Pre-started only once the shim was compiled: the waiting runtimes run the bytecode.
    assert out["cmdline"][-2] == "/var/fc/runtime/python/bootstrap.pyc", out["cmdline"]
    wait_until(lambda: waiting(srv, "python") == 2, 30, what="the pool refilled")


def test_nothing_of_an_earlier_function_is_visible(srv, svc):
    first = new_function(srv, svc, py_zip(PY_PROBE, only_first="1"), environmentVariables={"MARKER": "one"})
    out1 = probe(srv, svc, first, {"write": "secret-of-first"})
    assert "secret-of-first" in out1["tmp"]
    second = new_function(srv, svc, py_zip(PY_PROBE), environmentVariables={"MARKER": "two"})
    out2 = probe(srv, svc, second)
    assert out2["age"] > 0.05, out2
    assert out2["env_marker"] == "two" and "secret-of-first" not in out2["tmp"], out2
    assert out2["code"] == ["index.py"], out2


def test_layers_appear_at_opt(srv, svc):
    name = unique("plyr")
    layer = assert_ok(srv.raw.post(f"/layers/{name}/versions", json={
        "code": {"zipFile": b64(py_zip("X = 1", module="python/layered"))}, "compatibleRuntime": ["python3.10"]}))
    fn = new_function(srv, svc, py_zip(PY_PROBE), layers=[layer["arn"]])
    out = probe(srv, svc, fn)
    assert out["opt"] == ["python"], out


def test_the_memory_limit_holds_in_a_prestarted_runtime(srv, svc):
    fn = new_function(srv, svc, py_zip(PY_PROBE), memorySize=128)
    inv = invoke(srv, svc, fn, json.dumps({"alloc_mb": 400}).encode())
    assert inv.status == 200 and inv.error_type is not None, inv.describe()


def test_initializer_and_pre_stop_still_run(start_server):
    s = start_server(args=["--prestarted-runtimes", "1", "--instance-idle-timeout", "1"])
    wait_until(lambda: waiting(s, "python") == 1, 30, what="the pool filled")
    sv = new_service(s, "prestinit")
    src = PY_PROBE + '''
STATE = {}
def init(context):
    STATE["init"] = True
def handler2(event, context):
    return json.dumps({"init": STATE.get("init", False)})
def stop(context):
    print("pre-stop ran in a pre-started runtime")
'''
    fn = new_function(s, sv, py_zip(src), handler="index.handler2", initializer="index.init",
                      instanceLifecycleConfig={"preStop": {"handler": "index.stop", "timeout": 3}})
    assert invoke_json(s, sv, fn, b"")["init"] is True
    assert used(s) == 1
    wait_until(lambda: any("pre-stop ran in a pre-started runtime" in line for line in function_logs(s, sv, fn)),
               20, interval=0.3, what="the pre-stop hook's log line")


def test_a_node_cold_start_takes_a_waiting_runtime(srv, svc):
    time.sleep(1.0)
    before = used(srv)
    fn = new_function(srv, svc, node_zip(NODE_PROBE), runtime="nodejs16", environmentVariables={"MARKER": "node"})
    out = invoke_json(srv, svc, fn, b"{}")
    assert out["age"] > 0.8, out
    assert used(srv) == before + 1
    assert (out["env_marker"], out["code"], out["function"], out["memory"]) == ("node", ["index.js"], fn, 128), out
    assert out["prestarted_flag"] is None and out["cwd"] == "/code", out


def descendants(pid):
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        children = []
        try:
            # Children hang off the thread that started them (openfc starts launchers from its workers).
            for task in os.listdir(f"/proc/{p}/task"):
                children += open(f"/proc/{p}/task/{task}/children").read().split()
        except OSError:
            continue
        for c in map(int, children):
            out.append(c)
            stack.append(c)
    return out


def waiting_pids(server):
    """This server's waiting runtimes: its descendants still carrying OPENFC_PRESTARTED=1."""
    pids = []
    for pid in descendants(server.proc.pid):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"OPENFC_PRESTARTED=1" in env:
            pids.append(pid)
    return pids


def test_a_killed_waiting_runtime_is_replaced(start_server):
    s = start_server(args=["--prestarted-runtimes", "1"])
    wait_until(lambda: waiting(s, "python") == 1 and waiting(s, "nodejs") == 1, 30, what="the pools filled")
    # Every language whose interpreter is installed has one waiting (PHP too; Java only once asked for).
    families = lambda: sum(v["waiting"] for v in health(s)["prestarted_runtimes"].values() if isinstance(v, dict))
    time.sleep(0.5)
    n = families()
    assert n >= 2
    wait_until(lambda: len(waiting_pids(s)) == n, 10, what="every waiting runtime running")
    killed = set(waiting_pids(s))
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(set(waiting_pids(s)) - killed) == n, 30, what="new waiting runtimes")
    sv = new_service(s, "prestkill")
    fn = new_function(s, sv, py_zip(PY_PROBE))
    before = used(s)
    out = invoke_json(s, sv, fn, b"{}")
    assert out["function"] == fn and used(s) == before + 1, out


def test_zero_turns_it_off(start_server):
    s = start_server(args=["--prestarted-runtimes", "0"])
    assert health(s)["prestarted_runtimes"]["target"] == 0
    sv = new_service(s, "prestoff")
    time.sleep(1.0)
    fn = new_function(s, sv, py_zip(PY_PROBE))
    out = invoke_json(s, sv, fn, b"{}")
    assert out["age"] < 0.8, out
    assert used(s) == 0
    assert waiting(s, "python") == 0
