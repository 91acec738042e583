"""Crash safety: SIGKILL the server and start it again on the same data dir. SQLite (the embedded default)."""

import requests

import zips
from crc64 import crc64_str
from helpers import assert_ok, b64, unique

PKG = zips.code_zip("durable")


def test_state_survives_kill_9(start_server):
    s = start_server()
    creds_before = dict(s.creds)
    svc, fn = unique("dursvc"), unique("fn")
    assert_ok(s.raw.post("/services", json={"serviceName": svc, "description": "durable"}))
    f = assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": fn, "runtime": "python3.10", "handler": "index.handler", "memorySize": 512,
        "code": {"zipFile": b64(PKG)}}))
    # An update right before the crash must survive too.
    u = s.raw.put(f"/services/{svc}/functions/{fn}", json={"description": "last write"})
    assert_ok(u)

    s.kill()
    assert s.proc.returncode == -9
    s.start()

    assert s.creds == creds_before, "credentials.json changed across a restart"
    got = s.raw.get(f"/services/{svc}/functions/{fn}")
    body = assert_ok(got)
    assert body["functionId"] == f["functionId"]
    assert body["codeChecksum"] == crc64_str(PKG)
    assert body["memorySize"] == 512
    assert body["description"] == "last write"
    assert got.headers["ETag"] == u.headers["ETag"]
    assert assert_ok(s.raw.get(f"/services/{svc}"))["description"] == "durable"

    code = s.fc2.get_function_code(svc, fn).data
    r = requests.get(code["url"], timeout=30)
    assert r.status_code == 200
    assert r.content == PKG
    assert r.headers["X-Oss-Hash-Crc64ecma"] == crc64_str(PKG)

    # And it keeps working for writes.
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": unique("fn"), "runtime": "python3.10", "handler": "index.handler",
        "code": {"zipFile": b64(PKG)}}))


def test_graceful_restart_keeps_everything(start_server):
    s = start_server()
    svc = unique("gracesvc")
    assert_ok(s.raw.post("/services", json={"serviceName": svc}))
    s.stop()
    assert s.proc.returncode == 0, f"SIGTERM should exit 0, got {s.proc.returncode}"
    s.start()
    assert assert_ok(s.raw.get(f"/services/{svc}"))["serviceName"] == svc
