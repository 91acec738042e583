"""Request bodies are parsed like FC does (spec 0 and 2.2): case-insensitive keys, null = absent, any
Content-Type, chunked transfer encoding. SQLite."""

import json

import pytest

import zips
from crc64 import crc64_str
from helpers import assert_ok, assert_subset, b64, unique

PKG = zips.code_zip("lenient")


@pytest.fixture(scope="module")
def s(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(s):
    name = unique("lensvc")
    assert_ok(s.raw.post("/services", json={"serviceName": name}))
    return name


def test_capitalised_keys_on_create_function(s, svc):
    name = unique("fncaps")
    f = assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "FunctionName": name, "Runtime": "custom", "Handler": "index.handler", "Code": {"ZipFile": b64(PKG)},
        "InstanceConcurrency": 5, "MemorySize": 256, "CAPort": 8080, "Description": "caps",
        "EnvironmentVariables": {"Key": "Value"},
        "InstanceLifecycleConfig": {"PreStop": {"Handler": "index.stop", "Timeout": 5}}}))
    assert f["functionName"] == name
    assert (f["instanceConcurrency"], f["memorySize"], f["caPort"], f["description"]) == (5, 256, 8080, "caps")
    assert f["codeChecksum"] == crc64_str(PKG)
    # Map *values* keep their keys as sent: environment variable names are case-sensitive data.
    assert f["environmentVariables"] == {"Key": "Value"}
    assert_subset({"handler": "index.stop", "timeout": 5}, f["instanceLifecycleConfig"]["preStop"])


def test_any_case_keys_on_create_service(s):
    name = unique("svccase")
    got = assert_ok(s.raw.post("/services", json={
        "SERVICENAME": name, "description": "mixed", "InternetAccess": False,
        "logconfig": {"Project": "p", "LOGSTORE": "l"}}))
    assert got["serviceName"] == name
    assert got["internetAccess"] is False
    assert (got["logConfig"]["project"], got["logConfig"]["logstore"]) == ("p", "l")


def test_capitalised_instance_concurrency_on_update(s, svc):
    name = unique("fnupdcaps")
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": name, "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)}}))
    u = assert_ok(s.raw.put(f"/services/{svc}/functions/{name}", json={"InstanceConcurrency": 9}))
    assert u["instanceConcurrency"] == 9


def test_null_means_absent(s, svc):
    name = unique("svcnull")
    created = assert_ok(s.raw.post("/services", json={
        "serviceName": name, "description": None, "role": None, "logConfig": None, "internetAccess": None,
        "vpcConfig": None, "nasConfig": None, "tracingConfig": None}))
    assert created["internetAccess"] is True  # null -> default
    assert isinstance(created["logConfig"], dict)
    assert_ok(s.raw.put(f"/services/{name}", json={"description": "keep me", "role": "acs:ram::1:role/r"}))
    updated = assert_ok(s.raw.put(f"/services/{name}", json={"description": None, "role": None}))
    assert (updated["description"], updated["role"]) == ("keep me", "acs:ram::1:role/r")

    fname = unique("fnnull")
    f = assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": fname, "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)},
        "description": None, "memorySize": None, "timeout": None, "initializer": None, "environmentVariables": None,
        "instanceType": None, "layers": None}))
    assert (f["memorySize"], f["timeout"], f["instanceType"]) == (128, 3, "e1")
    u = assert_ok(s.raw.put(f"/services/{svc}/functions/{fname}", json={
        "memorySize": None, "code": None, "environmentVariables": None, "timeout": 7}))
    assert (u["memorySize"], u["timeout"], u["codeChecksum"]) == (128, 7, crc64_str(PKG))


@pytest.mark.parametrize("content_type", ["application/octet-stream", None, "text/plain",
                                          "application/json; charset=utf-8"])
def test_json_body_with_any_content_type(s, content_type):
    name = unique("svcctype")
    r = s.raw.post("/services", body=json.dumps({"serviceName": name, "description": "ct"}).encode(),
                   content_type=content_type)
    assert assert_ok(r)["description"] == "ct"


def test_chunked_request_body(s, svc):
    """fun deploy streams the JSON chunked as application/octet-stream."""
    name = unique("fnchunk")
    payload = json.dumps({"functionName": name, "runtime": "python3.10", "handler": "index.handler",
                          "code": {"zipFile": b64(PKG)}, "CAPort": 9000}).encode()

    def chunks():
        for i in range(0, len(payload), 100):
            yield payload[i:i + 100]

    r = s.raw.post(f"/services/{svc}/functions", body=chunks(), content_type="application/octet-stream")
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    f = assert_ok(r)
    assert f["functionName"] == name
    assert f["codeChecksum"] == crc64_str(PKG)


def test_unknown_fields_are_ignored(s):
    name = unique("svcunknown")
    got = assert_ok(s.raw.post("/services", json={"serviceName": name, "someFutureField": {"x": 1}}))
    assert got["serviceName"] == name
    assert "someFutureField" not in got
