"""Warm sandbox launchers (--warm-sandboxes, default 2): launchers started ahead of need, already in their
cgroups, that a cold start hands its spec to. What a user relies on: the limits an instance runs under are its
own function's whether or not its launcher was warm, the warm set is refilled after a cold start, with 0 every
sandbox starts on demand, and stopping openfc leaves no launcher behind."""

import glob
import os
import time

import pytest

from invoke_helpers import health, invoke, new_function, new_service, py_zip, wait_until

ECHO_ID = py_zip('''
    import os

    def handler(event, context):
        return os.environ["FC_INSTANCE_ID"]
''')


# Pre-started runtimes have launchers of their own (test_prestarted.py): off here, so every `__sandbox` process
# counted is a warm launcher or an instance's.
NO_PRESTART = ["--prestarted-runtimes", "0"]


def launchers(server_pid):
    """{pid: has_children} of the `openfc __sandbox` processes the server started."""
    out = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        pid = stat.split("/")[2]
        try:
            with open(stat) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != server_pid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"__sandbox" not in f.read():
                    continue
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                out[int(pid)] = bool(f.read().strip())
        except (OSError, ValueError, IndexError):
            continue
    return out


def warm(server_pid):
    return sorted(pid for pid, busy in launchers(server_pid).items() if not busy)


def memory_group(pid):
    """The directory of the memory cgroup `pid` is in (v1), once it has joined one of openfc's."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(",") and "/openfc/" in path:
                return "/sys/fs/cgroup/memory" + path
    return None


def memory_limit_mb(instance_id):
    paths = glob.glob(f"/sys/fs/cgroup/memory/openfc/*/{instance_id}/memory.limit_in_bytes") + \
        glob.glob(f"/sys/fs/cgroup/openfc/*/{instance_id}/memory.max")
    assert paths, f"no memory cgroup for instance {instance_id}"
    with open(paths[0]) as f:
        return int(f.read()) // (1024 * 1024)


def cold_invoke(srv, svc, memory):
    fn = new_function(srv, svc, ECHO_ID, memorySize=memory)
    inv = invoke(srv, svc, fn, b"")
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    assert inv.body.decode() == inv.instance_id
    return inv.instance_id


def test_warm_launchers_wait_are_used_refilled_and_gone_after_stop(start_server):
    srv = start_server(args=NO_PRESTART)
    pid = srv.proc.pid
    first = wait_until(lambda: warm(pid) if len(warm(pid)) == 2 else None, 10, 0.05, "2 warm launchers")
    svc = new_service(srv, "warm")
    instance = cold_invoke(srv, svc, 256)
    # The instance runs in a launcher that was warm, under its own function's memory size.
    assert memory_limit_mb(instance) == 256
    running = [p for p, busy in launchers(pid).items() if busy]
    assert len(running) == 1 and running[0] in first, (running, first)
    # The set is topped up again, and /health says so.
    wait_until(lambda: len(warm(pid)) == 2, 10, 0.05, "the warm set refilled")
    assert health(srv)["warm_sandboxes"] == 2
    # A second cold start with other limits.
    other = cold_invoke(srv, svc, 512)
    assert memory_limit_mb(other) == 512
    everything = list(launchers(pid))
    srv.close()
    deadline = time.time() + 5
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in everything):
        time.sleep(0.05)
    left = [p for p in everything if os.path.exists(f"/proc/{p}")]
    assert left == [], f"launchers left after openfc stopped: {left}"


def test_zero_warm_sandboxes_starts_each_sandbox_on_demand(start_server):
    srv = start_server(args=["--warm-sandboxes", "0", *NO_PRESTART])
    time.sleep(0.5)
    assert launchers(srv.proc.pid) == {}
    svc = new_service(srv, "cold")
    instance = cold_invoke(srv, svc, 128)
    assert memory_limit_mb(instance) == 128
    # The detection itself works: the one launcher there is, is the instance's.
    assert list(launchers(srv.proc.pid).values()) == [True]
    time.sleep(0.3)
    assert warm(srv.proc.pid) == [], "no launcher may wait with --warm-sandboxes 0"
    assert health(srv)["warm_sandboxes"] == 0


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_warm_sandboxes_value_is_refused_at_start(value, tmp_path):
    import subprocess
    from conftest import openfc_bin
    p = subprocess.run([str(openfc_bin()), "serve", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                        f"--warm-sandboxes={value}"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "warm-sandboxes" in p.stderr, p.stderr


def test_a_killed_warm_launcher_is_replaced_not_used(start_server):
    """The OOM killer or an operator may end a waiting launcher: the next cold start must not fail for it."""
    import signal
    srv = start_server(args=NO_PRESTART)
    pid = srv.proc.pid
    # Waiting launchers that have joined their groups (a join takes a moment).
    def joined():
        w = warm(pid)
        return w if len(w) == 2 and all(memory_group(p) for p in w) else None
    waiting = wait_until(joined, 10, 0.05, "2 warm launchers in their cgroups")
    groups = [memory_group(p) for p in waiting]
    for p in waiting:
        os.kill(p, signal.SIGKILL)
    wait_until(lambda: not any(p in launchers(pid) for p in waiting), 5, 0.02, "the killed launchers reaped")
    svc = new_service(srv, "killed")
    instance = cold_invoke(srv, svc, 128)
    assert memory_limit_mb(instance) == 128
    wait_until(lambda: len(warm(pid)) == 2, 10, 0.05, "the warm set refilled")
    # The killed launchers' cgroups are removed too.
    wait_until(lambda: not any(os.path.exists(g) for g in groups), 10, 0.05, "the killed launchers' cgroups removed")


def test_python_instances_run_the_precompiled_shim(start_server):
    """openfc compiles its Python shim once at start (with the configured interpreter), so no cold start
    compiles it; error stack traces still show the user's frames and leave the shim's out."""
    srv = start_server(args=NO_PRESTART)
    pyc = srv.data_dir / "run" / "runtime" / "python" / "bootstrap.pyc"
    wait_until(pyc.exists, 10, 0.05, f"{pyc} written")
    time.sleep(0.2)  # the flag that the file is complete is set right after it is written
    svc = new_service(srv, "pyc")
    fn = new_function(srv, svc, py_zip('''
        def handler(event, context):
            return open("/proc/self/cmdline", "rb").read().replace(b"\\0", b" ")
    '''))
    inv = invoke(srv, svc, fn, b"")
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    assert inv.body.split()[-1] == b"/var/fc/runtime/python/bootstrap.pyc", inv.body
    failing = new_function(srv, svc, py_zip('''
        def handler(event, context):
            raise ValueError("broken on purpose")
    '''))
    inv = invoke(srv, svc, failing, b"")
    body = inv.json()
    assert body["errorType"] == "ValueError", body
    assert any("index.py" in frame for frame in body["stackTrace"]), body
    assert not any("/var/fc/runtime" in frame for frame in body["stackTrace"]), body
