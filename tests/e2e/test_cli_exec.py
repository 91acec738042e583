"""`openfc exec`, and `openfc logs` / `openfc async` over the HTTP API, run as subprocesses against a real openfc.

exec speaks InstanceExec's websocket (signed with the FC scheme over the path, frames 0 stdin, 1 stdout,
2 stderr); its exit code is the command's. logs and async switch from reading the data directory to the API when
given an endpoint, and are given nothing else here but the endpoint and an AccessKey (no --data-dir, a working
directory without openfc-data): only the API can answer them.
"""

import json
import queue
import subprocess
import threading
import time

import pytest

from conftest import openfc_bin
from invoke_helpers import invoke, invoke_ok, new_function, new_service, py_zip, wait_until
from test_cli import describe, key_flags, run

MARKER = py_zip('''
    import time
    def handler(event, context):
        text = event.decode()
        with open("/tmp/marker", "w") as f:
            f.write(context.request_id)
        print("LOGGED " + text, flush=True)
        if text.startswith("sleep:"):
            time.sleep(float(text.split(":")[1]))
        return "done " + text
''')

ARGS = ["--async-lease", "2", "--queue-timeout-ms", "300"]


@pytest.fixture(scope="module")
def srv(server_factory, backend):
    s = server_factory.start(backend, args=ARGS)
    yield s
    s.close()


@pytest.fixture(scope="module")
def running(srv):
    """A function with one running instance: (service, function, instance id, the request id it wrote)."""
    svc = new_service(srv, "cxs")
    fn = new_function(srv, svc, MARKER, timeout=30)
    inv = invoke_ok(srv, svc, fn, b"first")
    return svc, fn, inv.instance_id, inv.request_id


def cli(srv, *args, code=0, cwd=None, **kw):
    p = run([*args, *key_flags(srv)], cwd=cwd, **kw)
    assert p.returncode == code, describe(p)
    return p


def exec_cli(srv, target, *opts, cmd=(), code=0, **kw):
    """`openfc exec TARGET OPTS... --endpoint ... -- CMD...`: everything after `--` is the command's."""
    p = run(["exec", target, *opts, *key_flags(srv), "--", *cmd], **kw)
    assert p.returncode == code, describe(p)
    return p


def test_exec_prints_both_streams_and_exits_with_the_command_code(srv, running):
    svc, fn, inst, request_id = running
    p = exec_cli(srv, f"{svc}/{fn}", inst, cmd=["sh", "-c", "cat /tmp/marker; echo; echo to-err >&2; exit 3"], code=3)
    assert p.stdout == request_id + "\n", describe(p)
    assert p.stderr == "to-err\n", describe(p)
    # Arguments reach the command as they are (no shell in between; flags after `--` are the command's).
    p = exec_cli(srv, f"{svc}/{fn}", inst, cmd=["printf", "%s|", "a b", "$HOME", "", "--endpoint"])
    assert p.stdout == "a b|$HOME||--endpoint|", describe(p)
    p = exec_cli(srv, f"{svc}/{fn}", inst, cmd=["no-such-program"], code=126)
    assert "not found" in p.stderr, describe(p)


def test_exec_picks_a_running_instance_and_says_which(srv, running):
    svc, fn, inst, _ = running
    # ListInstances names what the nodes' heartbeats reported: the instance shows up within one.
    wait_until(lambda: srv.raw.get(f"/services/{svc}/functions/{fn}/instances").json()["instances"], 10,
               what="the instance is listed")
    p = exec_cli(srv, f"{svc}/{fn}", cmd=["hostname"])
    assert p.stdout == inst + "\n", describe(p)
    assert f"exec into instance {inst}" in p.stderr, describe(p)


def test_exec_sends_stdin_with_i_and_asks_for_a_terminal_with_t(srv, running):
    svc, fn, inst, _ = running
    read_one = ["sh", "-c", "read line; echo got:$line"]
    p = exec_cli(srv, f"{svc}/{fn}", inst, "-i", cmd=read_one, stdin="hello stdin\n")
    assert p.stdout == "got:hello stdin\n", describe(p)
    # The end of this input ends the command's (an empty stdin frame): `wc -c` counts everything and exits.
    p = exec_cli(srv, f"{svc}/{fn}", inst, "-i", cmd=["wc", "-c"], stdin="x" * 100_000)
    assert p.stdout.strip() == "100000", describe(p)
    # Without -i nothing is sent: the command's stdin is not this one's.
    p = exec_cli(srv, f"{svc}/{fn}", inst, cmd=read_one, stdin="ignored\n")
    assert p.stdout == "got:\n", describe(p)
    p = exec_cli(srv, f"{svc}/{fn}", inst, "-t", cmd=["python3", "-c", "import os; print(os.isatty(0), os.isatty(1))"])
    assert p.stdout.replace("\r", "") == "True True\n", describe(p)


def test_exec_without_an_instance_or_with_a_wrong_one_exits_1(srv, running):
    svc, _, inst, _ = running
    idle = new_function(srv, svc, MARKER)
    p = exec_cli(srv, f"{svc}/{idle}", cmd=["true"], code=1)
    assert "no running instance" in p.stderr and "invoke the function first" in p.stderr, describe(p)
    assert p.stdout == ""
    p = exec_cli(srv, f"{svc}/{idle}", inst, cmd=["true"], code=1)
    assert p.stderr.startswith("InstanceNotFound: ") and "(request id: " in p.stderr, describe(p)
    p = exec_cli(srv, f"{svc}/missing_fn", "c-x", cmd=["true"], code=1)
    assert p.stderr.startswith("FunctionNotFound: "), describe(p)
    # The command comes after `--`; without one it is a usage error.
    assert cli(srv, "exec", f"{svc}/{idle}", code=2).stdout == ""


def test_logs_over_http_print_the_function_lines(srv, running, tmp_path):
    svc, fn, _, _ = running
    token = f"tok{time.time_ns()}"
    invoke_ok(srv, svc, fn, token.encode())
    # No data directory where it runs: the lines can only come from the API.
    p = wait_until(lambda: (lambda p: p if f"LOGGED {token}" in p.stdout else None)(
        cli(srv, "logs", f"{svc}/{fn}", "-n", "50", cwd=tmp_path)), 20, interval=0.5, what="the line over HTTP")
    assert p.stdout.endswith("\n") and not p.stdout.lstrip().startswith("{"), describe(p)
    doc = json.loads(cli(srv, "logs", f"{svc}/{fn}", "-o", "json", cwd=tmp_path).stdout)
    assert any(f"LOGGED {token}" in line for line in doc["lines"]), doc
    one = json.loads(cli(srv, "logs", f"{svc}/{fn}", "-n", "1", "-o", "json", cwd=tmp_path).stdout)["lines"]
    assert len(one) == 1, one
    p = cli(srv, "logs", f"{svc}/missing_fn", code=1, cwd=tmp_path)
    assert p.stderr.startswith("FunctionNotFound: "), describe(p)


def read_lines(proc, into):
    for line in proc.stdout:
        into.put(line)


def test_logs_follow_over_http_sees_a_new_invocation(srv, running, tmp_path):
    svc, fn, _, _ = running
    proc = subprocess.Popen([str(openfc_bin()), "logs", f"{svc}/{fn}", "-f", "-n", "5", *key_flags(srv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines = queue.Queue()
    threading.Thread(target=read_lines, args=(proc, lines), daemon=True).start()
    try:
        time.sleep(1.5)  # it has read its first window
        token = f"follow{time.time_ns()}"
        invoke_ok(srv, svc, fn, token.encode())
        seen, deadline = [], time.time() + 20
        while not any(f"LOGGED {token}" in line for line in seen):
            assert time.time() < deadline and proc.poll() is None, (seen, proc.poll())
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                pass
        # Printed once: the polls after it do not repeat it.
        time.sleep(1.5)
        while not lines.empty():
            seen.append(lines.get())
        assert sum(f"LOGGED {token}" in line for line in seen) == 1, seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def async_named(srv, svc, fn, inv_id, payload):
    inv = invoke(srv, svc, fn, payload, async_=True, headers={"X-Fc-Stateful-Async-Invocation-Id": inv_id})
    assert inv.status == 202, inv.describe()


def test_async_list_get_stop_over_http(srv, tmp_path):
    svc = new_service(srv, "cxa")
    fn = new_function(srv, svc, MARKER, timeout=30)
    async_named(srv, svc, fn, "http_ok", b"quick")
    async_named(srv, svc, fn, "http_long", b"sleep:20")

    def listed(*more):
        return json.loads(cli(srv, "async", "list", f"{svc}/{fn}", "-o", "json", *more, cwd=tmp_path).stdout)

    wait_until(lambda: {i["invocationId"]: i["status"] for i in listed()["invocations"]}
               == {"http_ok": "Succeeded", "http_long": "Running"}, 30, interval=0.5, what="one done, one running")
    only = listed("--status", "Succeeded")["invocations"]
    assert [i["invocationId"] for i in only] == ["http_ok"], only
    assert [i["invocationId"] for i in listed("-n", "1")["invocations"]] == ["http_long"], "newest first, limited"
    table = cli(srv, "async", "list", f"{svc}/{fn}", cwd=tmp_path).stdout.splitlines()
    assert table[0].split()[:3] == ["INVOCATION", "ID", "STATUS"], table
    assert sorted(line.split()[:2] for line in table[1:]) == [["http_long", "Running"], ["http_ok", "Succeeded"]]
    got = json.loads(cli(srv, "async", "get", f"{svc}/{fn}", "http_ok", "-o", "json", cwd=tmp_path).stdout)
    assert (got["invocationPayload"], got["returnPayload"], got["status"]) == ("quick", "done quick", "Succeeded"), got
    assert json.loads(cli(srv, "async", "stop", f"{svc}/{fn}", "http_long", "-o", "json", cwd=tmp_path).stdout) == {}
    wait_until(lambda: json.loads(cli(srv, "async", "get", f"{svc}/{fn}", "http_long", "-o", "json",
                                      cwd=tmp_path).stdout)["status"] == "Stopped", 10, interval=0.3, what="stopped")
    # FC's errors, as every other command prints them.
    p = cli(srv, "async", "stop", f"{svc}/{fn}", "http_ok", code=1, cwd=tmp_path)
    assert ": " in p.stderr and "(request id: " in p.stderr, describe(p)
    p = cli(srv, "async", "get", f"{svc}/{fn}", "no_such_id", code=1, cwd=tmp_path)
    assert "(request id: " in p.stderr, describe(p)
    new_id = cli(srv, "async", "redrive", f"{svc}/{fn}", "http_long", cwd=tmp_path).stdout.strip()
    assert new_id and new_id != "http_long"
    cli(srv, "async", "stop", f"{svc}/{fn}", new_id, cwd=tmp_path)


def test_logs_and_async_read_the_data_directory_without_an_endpoint(srv, running):
    """No endpoint: the direct mode as before (a data directory and database flags, no key needed)."""
    svc, fn, _, _ = running
    wait_until(lambda: "LOGGED first" in srv.cli("logs", f"{svc}/{fn}").stdout, 20, what="the direct read")
    assert srv.cli("async", "list", f"{svc}/{fn}").returncode == 0
