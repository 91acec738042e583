"""The resource CLI (`openfc services|functions|deploy|invoke`) run as a subprocess against a real openfc.

It talks to the server over the HTTP API only (signed with the FC scheme), so these tests give it nothing but
an endpoint and an AccessKey — by flags, by environment or through the data directory's credentials.json —
and check what a script relies on: stdout, stderr and the exit codes of `--help` (0 ok, 1 server error,
2 usage, 3 unreachable or no credentials, 4 the function failed).
"""

import json
import os
import subprocess
import time

import pytest

from conftest import free_port, openfc_bin
from helpers import unique

HANDLER = """\
def handler(event, context):
    print("cli-log {tag} " + event.decode())
    return "{tag}:" + event.decode()
"""


def run(args, env=None, cwd=None, timeout=120, stdin=None):
    """The binary with a clean environment (no OPENFC_* or ALIBABA_CLOUD_* of the caller) plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENFC_", "ALIBABA_CLOUD_"))}
    base.update(env or {})
    return subprocess.run([str(openfc_bin()), *args], capture_output=True, text=True, timeout=timeout, env=base,
                          cwd=cwd, input=stdin)


def describe(p):
    return f"{p.args} -> {p.returncode}\nstdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-3000:]}"


def key_flags(server):
    return ["--endpoint", server.endpoint, "--access-key-id", server.ak, "--access-key-secret", server.secret]


def cli(server, *args, code=0, **kw):
    """Runs a command with the server's endpoint and key as flags; asserts its exit code."""
    p = run([*args, *key_flags(server)], **kw)
    assert p.returncode == code, describe(p)
    return p


def write_handler(folder, tag, extra=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.py").write_text(HANDLER.format(tag=tag))
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    return folder


def deploy(server, folder, svc, fn, *more, code=0):
    return cli(server, "deploy", str(folder), "--service", svc, "--function", fn, "--runtime", "python3.10",
               "--handler", "index.handler", *more, code=code)


@pytest.fixture(scope="module")
def deployed(server, tmp_path_factory):
    """One function deployed by the CLI (the service created by it too): (svc, fn, folder)."""
    svc, fn = unique("cli"), "hello"
    folder = write_handler(tmp_path_factory.mktemp("cli_src"), "v1")
    p = deploy(server, folder, svc, fn, "--memory", "256", "--timeout", "20", "--env", "GREETING=hi there")
    assert f"created function {svc}/{fn}" in p.stdout, describe(p)
    assert f"created service {svc}" in p.stderr, describe(p)
    return svc, fn, folder


def test_services_ls_follows_every_page(server):
    prefix = unique("pg")
    names = sorted(f"{prefix}_{i}" for i in range(7))
    for name in names:
        server.fc2.create_service(name)
    server.fc2.create_service(unique("other"))  # outside the prefix
    p = cli(server, "services", "ls", "--prefix", prefix, "--page-size", "3", "-o", "json")
    listed = json.loads(p.stdout)["services"]
    # 7 names at 3 a page: only a client that follows nextToken over three pages sees them all.
    assert [s["serviceName"] for s in listed] == names, listed
    assert all("nextToken" not in s for s in listed)
    table = cli(server, "services", "list", "--prefix", prefix, "--page-size", "2").stdout.splitlines()
    assert table[0].split()[0] == "NAME" and [line.split()[0] for line in table[1:]] == names, table


def test_deploy_then_invoke_runs_the_folder(server, deployed):
    svc, fn, _ = deployed
    p = cli(server, "invoke", f"{svc}/{fn}", "--payload", "abc")
    assert p.stdout == "v1:abc", describe(p)
    f = server.fc2.get_function(svc, fn).data
    assert (f["runtime"], f["handler"], f["memorySize"], f["timeout"]) == ("python3.10", "index.handler", 256, 20)
    assert f["environmentVariables"] == {"GREETING": "hi there"}, f


def test_redeploy_updates_the_code_and_keeps_the_rest(server, deployed, tmp_path):
    svc, fn, folder = deployed
    version = server.fc2.publish_version(svc).data["versionId"]
    before = server.fc2.get_function(svc, fn).data["codeChecksum"]
    # Over the progress-bar threshold, incompressible: the upload is streamed in many chunks.
    write_handler(folder, "v2", {"blob.bin": os.urandom(5 * 1024 * 1024)})
    p = cli(server, "deploy", str(folder), "--service", svc, "--function", fn, "-o", "json")
    updated = json.loads(p.stdout)
    assert updated["codeChecksum"] != before and updated["codeSize"] > 5 * 1024 * 1024, updated
    assert (updated["runtime"], updated["memorySize"]) == ("python3.10", 256), "update keeps what was not given"
    assert updated["environmentVariables"] == {"GREETING": "hi there"}, updated
    assert cli(server, "invoke", f"{svc}/{fn}", "-p", "x").stdout == "v2:x"
    # The published version still runs, lists and shows the first code.
    assert cli(server, "invoke", f"{svc}/{fn}", "--qualifier", str(version), "-p", "x").stdout == "v1:x"
    old = json.loads(cli(server, "functions", "get", f"{svc}/{fn}", "-q", str(version), "-o", "json").stdout)
    assert old["codeChecksum"] == before, old
    listed = json.loads(cli(server, "functions", "ls", svc, "--qualifier", str(version), "-o", "json").stdout)
    assert [(f["functionName"], f["codeChecksum"]) for f in listed["functions"]] == [(fn, before)], listed


def test_tail_prints_the_log_on_stderr_and_only_the_result_on_stdout(server, deployed, tmp_path):
    svc, fn, _ = deployed
    token = unique("tok")
    event = tmp_path / "event.txt"
    event.write_text(token)
    p = cli(server, "invoke", f"{svc}/{fn}", "--file", str(event), "--tail")
    assert p.stdout.endswith(":" + token) and "cli-log" not in p.stdout, describe(p)
    assert f"cli-log" in p.stderr and token in p.stderr, describe(p)
    assert "FC Invoke Start RequestId:" in p.stderr and "Duration:" in p.stderr, describe(p)
    # `--file -` reads stdin; without --tail nothing goes to stderr.
    p = cli(server, "invoke", f"{svc}/{fn}", "--file", "-", stdin="from-stdin")
    assert p.stdout.endswith(":from-stdin") and p.stderr == "", describe(p)


def wait_for_status(server, svc, fn, inv_id, timeout=30):
    deadline = time.time() + timeout
    while True:
        r = server.raw.get(f"/services/{svc}/functions/{fn}/stateful-async-invocations/{inv_id}")
        if r.status_code == 200 and r.json()["status"] == "Succeeded":
            return r.json()
        assert time.time() < deadline, (r.status_code, r.text)
        time.sleep(0.3)


def test_async_prints_the_invocation_id(server, deployed):
    svc, fn, _ = deployed
    p = cli(server, "invoke", f"{svc}/{fn}", "--async", "-p", "later")
    inv_id = p.stdout.strip()
    assert inv_id and "\n" not in inv_id, describe(p)
    assert wait_for_status(server, svc, fn, inv_id)["returnPayload"].endswith(":later")
    named = unique("job")
    p = cli(server, "invoke", f"{svc}/{fn}", "--async", "--invocation-id", named, "-p", "named")
    assert p.stdout.strip() == named
    assert wait_for_status(server, svc, fn, named)["invocationPayload"] == "named"
    # --tail has no meaning for async calls: a usage error, like every bad flag.
    assert cli(server, "invoke", f"{svc}/{fn}", "--async", "--tail", code=2).stdout == ""


def test_functions_ls_get_delete_and_json_output(server, tmp_path):
    svc = unique("cfn")
    folder = write_handler(tmp_path / "src", "g")
    for fn in ("b_fn", "a_fn", "c_fn"):
        deploy(server, folder, svc, fn)
    listed = json.loads(cli(server, "functions", "ls", svc, "--page-size", "2", "-o", "json").stdout)
    assert [f["functionName"] for f in listed["functions"]] == ["a_fn", "b_fn", "c_fn"], listed
    table = cli(server, "functions", "ls", svc).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "RUNTIME", "HANDLER"], table
    assert [line.split()[:3] for line in table[1:]] == [[n, "python3.10", "index.handler"] for n in
                                                        ("a_fn", "b_fn", "c_fn")], table
    got = json.loads(cli(server, "functions", "get", f"{svc}/b_fn", "-o", "json").stdout)
    assert got == server.fc2.get_function(svc, "b_fn").data
    lines = cli(server, "functions", "get", f"{svc}/b_fn").stdout.splitlines()
    details = dict((line.split(None, 1) + [""])[:2] for line in lines)  # an empty value leaves the key alone
    assert details["functionName"] == "b_fn" and details["runtime"] == "python3.10", details
    p = cli(server, "functions", "delete", f"{svc}/b_fn")
    assert "deleted function" in p.stdout
    p = cli(server, "functions", "get", f"{svc}/b_fn", code=1)
    assert p.stderr.startswith("FunctionNotFound: ") and "(request id: " in p.stderr, describe(p)
    for fn in ("a_fn", "c_fn"):
        cli(server, "functions", "rm", f"{svc}/{fn}")
    cli(server, "services", "delete", svc)
    p = cli(server, "functions", "ls", svc, code=1)
    assert p.stderr.startswith("ServiceNotFound: "), describe(p)


def test_server_errors_exit_1_with_code_message_and_request_id(server, deployed):
    svc, _, _ = deployed
    p = cli(server, "invoke", f"{svc}/missing_fn", "-p", "x", code=1)
    assert p.stdout == ""
    line = p.stderr.strip()
    assert line.startswith("FunctionNotFound: ") and "missing_fn" in line, line
    rid = line.rsplit("(request id: ", 1)[1].rstrip(")")
    assert len(rid) >= 8 and rid != "-", line
    wrong = run(["services", "ls", "--endpoint", server.endpoint, "--access-key-id", server.ak,
                 "--access-key-secret", "not-the-secret"])
    assert wrong.returncode == 1 and wrong.stderr.startswith("SignatureNotMatch: "), describe(wrong)


def test_a_failing_function_exits_4_with_its_error_on_stdout(server, tmp_path):
    svc = unique("cerr")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "index.py").write_text("def handler(event, context):\n    raise ValueError('boom-' + event.decode())\n")
    deploy(server, folder, svc, "fails")
    p = cli(server, "invoke", f"{svc}/fails", "-p", "x", code=4)
    assert json.loads(p.stdout)["errorMessage"] == "boom-x", describe(p)
    assert "the function failed: " in p.stderr and "InvocationError" in p.stderr, describe(p)


def test_usage_errors_exit_2_and_upload_nothing(server, tmp_path):
    svc = unique("cuse")
    assert run(["services", "ls", "--no-such-flag"]).returncode == 2
    p = cli(server, "invoke", "no-slash", code=2)
    assert "SERVICE/FUNCTION" in p.stderr
    p = cli(server, "deploy", str(tmp_path / "absent"), "--service", svc, "--function", "f", "--runtime",
            "python3.10", "--handler", "index.handler", code=2)
    assert "absent" in p.stderr, describe(p)
    big = write_handler(tmp_path / "big", "big", {"blob.bin": os.urandom(2 * 1024 * 1024)})
    p = deploy(server, big, svc, "f", "--max-code-size", "1", code=2)
    assert "zips to more than 1.0 MiB" in p.stderr, describe(p)
    # Creating needs --runtime and --handler (an update keeps the function's own).
    small = write_handler(tmp_path / "small", "s")
    p = cli(server, "deploy", str(small), "--service", svc, "--function", "f", code=2)
    assert "--runtime and --handler" in p.stderr, describe(p)
    assert cli(server, "functions", "get", f"{svc}/f", code=1).stderr.startswith("FunctionNotFound: ")


def test_unreachable_endpoint_and_missing_credentials_exit_3(server, tmp_path):
    port = free_port()  # nothing listens there
    p = run(["services", "ls", "--endpoint", f"http://127.0.0.1:{port}", "--access-key-id", "a",
             "--access-key-secret", "b"], timeout=60)
    assert p.returncode == 3 and f"cannot reach http://127.0.0.1:{port}" in p.stderr, describe(p)
    p = run(["invoke", "s/f", "-p", "x"], cwd=tmp_path)  # no flags, no environment, no openfc-data here
    assert p.returncode == 3 and "no credentials" in p.stderr, describe(p)
    p = run(["services", "ls", "--access-key-id", "only-the-id"], cwd=tmp_path)
    assert p.returncode == 3 and "--access-key-secret" in p.stderr, describe(p)


def test_credentials_from_the_environment(server, deployed):
    svc, fn, _ = deployed
    env = {"OPENFC_ENDPOINT": server.endpoint, "OPENFC_ACCESS_KEY_ID": server.ak,
           "OPENFC_ACCESS_KEY_SECRET": server.secret}
    p = run(["services", "ls", "--prefix", svc, "-o", "json"], env=env)
    assert p.returncode == 0 and [s["serviceName"] for s in json.loads(p.stdout)["services"]] == [svc], describe(p)
    alibaba = {"ALIBABA_CLOUD_ACCESS_KEY_ID": server.ak, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": server.secret}
    p = run(["invoke", f"{svc}/{fn}", "-p", "env", "--endpoint", server.endpoint], env=alibaba)
    assert p.returncode == 0 and p.stdout.endswith(":env"), describe(p)
    # Flags win over the environment.
    p = run(["services", "ls", "--access-key-secret", "wrong"], env=env)
    assert p.returncode == 1 and p.stderr.startswith("SignatureNotMatch: "), describe(p)


def test_credentials_and_endpoint_from_the_data_directory(server, deployed, tmp_path):
    svc, fn, _ = deployed
    p = run(["invoke", f"{svc}/{fn}", "-p", "dd", "--data-dir", str(server.data_dir)])
    assert p.returncode == 0 and p.stdout.endswith(":dd"), describe(p)
    p = run(["functions", "get", f"{svc}/{fn}", "-o", "json"], env={"OPENFC_DATA_DIR": str(server.data_dir)})
    assert p.returncode == 0 and json.loads(p.stdout)["functionName"] == fn, describe(p)
    # The default data directory is `openfc-data` in the working directory, as for `openfc serve`.
    (tmp_path / "openfc-data").symlink_to(server.data_dir)
    p = run(["services", "ls", "--prefix", svc], cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.splitlines()[1].split()[0] == svc, describe(p)


def test_help_documents_the_exit_codes():
    for command in (["services", "ls"], ["functions", "get"], ["deploy"], ["invoke"]):
        p = run([*command, "--help"])
        assert p.returncode == 0 and "Exit codes:" in p.stdout and "4  invoke only" in p.stdout, describe(p)
