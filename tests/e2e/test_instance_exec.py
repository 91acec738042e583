"""InstanceExec (spec §5.1): a websocket session running a command inside a running instance — in its
namespaces (its /tmp, hostname, processes), its cgroup (memory cap), as its user with no capabilities and its
syscall filter. Signed and framed as FC's Go SDK does it (the only official SDK with InstanceExec): FC signature
over the path (the query is not signed), `command` repeated, frames whose first byte is the stream (0 stdin,
1 stdout, 2 stderr, 3 error, 4 resize); openfc closes with 1000 and `exit code N` when the command ends.
Errors before the upgrade are FC errors over plain HTTP."""

import json
import struct
import time
from urllib.parse import urlencode

import pytest
import websocket

import rawsign
from images import images  # noqa: F401  (the fixture of the container test below)
from invoke_helpers import invoke_ok, new_function, new_service, py_zip

MARKER = py_zip('''
    import os
    def handler(event, context):
        with open("/tmp/marker", "w") as f:
            f.write(context.request_id)
        return str(os.getpid())
''')


@pytest.fixture(scope="module")
def srv(server_factory, backend):
    s = server_factory.start(backend)
    yield s
    s.close()


@pytest.fixture(scope="module")
def running(srv):
    """A function with one running instance: (service, function, instance id, the request id it wrote)."""
    svc = new_service(srv, "exs")
    fn = new_function(srv, svc, MARKER, memorySize=128, environmentVariables={"GREETING": "hello from env"})
    r = invoke_ok(srv, svc, fn)
    return svc, fn, r.instance_id, r.request_id


def exec_path(svc, fn, instance, qualifier="LATEST"):
    return f"/2016-08-15/services/{svc}.{qualifier}/functions/{fn}/instances/{instance}/exec"


def exec_query(command, stdin=False, stdout=True, stderr=True, tty=False, idle=None):
    q = [("command", c) for c in command]
    q += [("stdin", str(stdin).lower()), ("stdout", str(stdout).lower()), ("stderr", str(stderr).lower()),
          ("tty", str(tty).lower())]
    if idle is not None:
        q.append(("idleTimeout", str(idle)))
    return urlencode(q)


def connect(srv, svc, fn, instance, command, **kw):
    path = exec_path(svc, fn, instance)
    headers = rawsign.signed_headers(srv.ak, srv.secret, "GET", path)
    url = srv.endpoint.replace("http://", "ws://") + path + "?" + exec_query(command, **kw)
    return websocket.create_connection(url, header=[f"{k}: {v}" for k, v in headers.items()], timeout=30)


def session(ws, send=(), deadline=30):
    """Sends `send` (frames), then reads until the close: ({stream: bytes}, close code, close reason)."""
    for f in send:
        ws.send_binary(f)
    out = {1: b"", 2: b"", 3: b""}
    end = time.time() + deadline
    while time.time() < end:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
            return out, code, data[2:].decode()
        if opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) and data:
            out[data[0]] = out.get(data[0], b"") + data[1:]
    raise AssertionError(f"the session did not end within {deadline} s: {out}")


def run(srv, running, command, **kw):
    svc, fn, inst, _ = running
    send = kw.pop("send", ())
    ws = connect(srv, svc, fn, inst, command, **kw)
    try:
        return session(ws, send)
    finally:
        ws.close()


def test_stdout_stderr_and_the_exit_code_come_back_as_frames(srv, running):
    out, code, reason = run(srv, running, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert out[1] == b"out\n" and out[2] == b"err\n", out
    assert (code, reason) == (1000, "exit code 3")
    out, _, reason = run(srv, running, ["true"])
    assert reason == "exit code 0"


def test_the_command_runs_inside_that_instance_as_its_user(srv, running):
    svc, fn, inst, request_id = running
    # Its /tmp (what the function wrote), its hostname, its working directory and environment.
    out, _, reason = run(srv, running, ["sh", "-c", 'cat /tmp/marker; echo; hostname; pwd; echo "$GREETING"'])
    assert reason == "exit code 0", out
    assert out[1].decode().splitlines() == [request_id, inst, "/code", "hello from env"]
    # The runtime's user, no capabilities, the syscall filter, and the instance's processes (its pid namespace).
    out, _, _ = run(srv, running, ["cat", "/proc/self/status"])
    status = dict(l.split(":", 1) for l in out[1].decode().splitlines() if ":" in l)
    assert status["Uid"].split()[0] == "65534"
    assert int(status["CapEff"].strip(), 16) == 0 and int(status["CapBnd"].strip(), 16) == 0
    assert status["Seccomp"].strip() == "2"
    out, _, _ = run(srv, running, ["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
    assert int(out[1]) < 10, "only the instance's own processes are visible"
    # It cannot do what a function cannot: no new user namespace, no writes to /code.
    out, _, reason = run(srv, running, ["sh", "-c", "touch /code/x || echo refused"])
    assert b"refused" in out[1]


def test_stdin_frames_reach_the_command(srv, running):
    out, _, reason = run(srv, running, ["head", "-n", "1"], stdin=True, send=[b"\x00hello stdin\n"])
    assert out[1] == b"hello stdin\n" and reason == "exit code 0"


def test_an_empty_stdin_frame_ends_the_commands_input(srv, running):
    out, _, reason = run(srv, running, ["cat"], stdin=True, send=[b"\x00abc", b"\x00def\n", b"\x00"])
    assert out[1] == b"abcdef\n" and reason == "exit code 0", (out, reason)


def test_a_terminal_when_tty_is_asked(srv, running):
    cmd = ["python3", "-c", "import os, sys; print(os.isatty(0), os.isatty(1), os.get_terminal_size()); sys.stdout.flush()"]
    out, _, reason = run(srv, running, cmd, tty=True, stderr=False)
    assert reason == "exit code 0", out
    assert b"True True" in out[1] and b"columns=80, lines=24" in out[1], out
    # A resize frame reaches the terminal before the command reads its size.
    cmd = ["sh", "-c", "read line; python3 -c 'import os; print(os.get_terminal_size())'"]
    resize = b"\x04" + json.dumps({"Width": 120, "Height": 40}).encode()
    out, _, _ = run(srv, running, cmd, tty=True, stdin=True, send=[resize, b"\x00go\r"])
    assert b"columns=120, lines=40" in out[1], out


def test_the_terminal_is_the_instances_own(srv, running):
    # Made in the instance's devpts: it has a name there (`tty`), and the host's terminals are not in sight.
    out, _, reason = run(srv, running, ["sh", "-c", "tty; ls /dev/pts"], tty=True, stderr=False)
    assert reason == "exit code 0", out
    lines = out[1].decode().split()
    assert lines[0].startswith("/dev/pts/"), lines
    assert sorted(lines[1:]) == sorted(["ptmx", lines[0].rsplit("/", 1)[1]]), lines
    # Without a terminal, none.
    out, _, reason = run(srv, running, ["sh", "-c", "tty || true"])
    assert out[1].strip() == b"not a tty", out


def test_the_idle_timeout_ends_a_silent_session(srv, running):
    started = time.time()
    out, code, reason = run(srv, running, ["sleep", "60"], idle=1)
    assert time.time() - started < 10
    assert reason == "idle timeout" and b"idle timeout" in out[3]


def test_memory_beyond_the_function_cap_is_refused_to_the_command_too(srv, running):
    out, _, reason = run(srv, running, ["python3", "-c", "x = bytearray(400 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])"])
    assert reason in ("exit code 137", "exit code 1"), (reason, out)
    # The instance itself still answers.
    svc, fn, _, _ = running
    invoke_ok(srv, svc, fn)


def test_a_missing_program_exits_126_with_the_reason(srv, running):
    out, _, reason = run(srv, running, ["no-such-program"])
    assert reason == "exit code 126" and b"not found" in out[2], out


def plain_get(srv, path, query, headers=None):
    import requests
    signed = rawsign.signed_headers(srv.ak, srv.secret, "GET", path, headers)
    return requests.get(srv.endpoint + path + "?" + query, headers=signed, timeout=30)


def test_errors_before_the_upgrade_are_fc_errors(srv, running):
    svc, fn, inst, _ = running
    q = exec_query(["ls"])
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    r = plain_get(srv, exec_path(svc, fn, "c-no-such-instance"), q, upgrade)
    assert (r.status_code, r.json()["ErrorCode"]) == (404, "InstanceNotFound"), r.text
    assert r.headers["x-fc-request-id"]
    r = plain_get(srv, exec_path(svc, "nofn", inst), q, upgrade)
    assert (r.status_code, r.json()["ErrorCode"]) == (404, "FunctionNotFound")
    r = plain_get(srv, exec_path(svc, fn, inst), "stdout=true", upgrade)
    assert (r.status_code, r.json()["ErrorCode"]) == (400, "InvalidArgument") and "command" in r.json()["ErrorMessage"]
    r = plain_get(srv, exec_path(svc, fn, inst), q)
    assert (r.status_code, r.json()["ErrorCode"]) == (400, "InvalidArgument") and "websocket" in r.json()["ErrorMessage"]
    # Unsigned or signed with another secret: refused like any API call, before anything runs.
    import requests
    r = requests.get(srv.endpoint + exec_path(svc, fn, inst) + "?" + q, headers=upgrade, timeout=30)
    assert (r.status_code, r.json()["ErrorCode"]) == (400, "MissingRequiredHeader"), r.text
    forged = rawsign.signed_headers(srv.ak, "not-the-secret", "GET", exec_path(svc, fn, inst), upgrade)
    r = requests.get(srv.endpoint + exec_path(svc, fn, inst) + "?" + q, headers=forged, timeout=30)
    assert (r.status_code, r.json()["ErrorCode"]) == (403, "SignatureNotMatch"), r.text


@pytest.mark.timeout(240)
def test_exec_into_a_container_instance_runs_in_its_user_namespace(server_factory, backend, images):
    """A custom-container runtime has a user namespace of its own (containers.md §4.4): the command joins it and
    runs as the image's user, in the image's root."""
    from images import expected_uid, ready_fn
    from invoke_helpers import invoke
    s = server_factory.start(backend, args=images.server_args())
    try:
        svc = new_service(s, "exc")
        fn = ready_fn(s, svc, images.ref("web"))
        inv = invoke(s, svc, fn, b"")
        assert inv.status == 200, inv.describe()
        out, _, reason = run(s, (svc, fn, inv.instance_id, None), ["sh", "-c", "id -u; cat /proc/self/uid_map; ls /bin/fc-start"])
        assert reason == "exit code 0", out
        lines = out[1].decode().splitlines()
        assert lines[0] == str(expected_uid(0)) and lines[1].split()[:2] == ["0", lines[1].split()[1]], lines
        assert lines[1].split()[1] != "0", "uid 0 inside is not the host's root"
        assert lines[2] == "/bin/fc-start"
        out, _, reason = run(s, (svc, fn, inv.instance_id, None), ["sh", "-c", "tty"], tty=True, stderr=False)
        assert reason == "exit code 0" and out[1].decode().strip().startswith("/dev/pts/"), (reason, out)
    finally:
        s.close()
