"""Function CRUD (spec 5.1, 5.3): every field, the defaults, updates, qualifier forms; on both backends."""

import time

import pytest

import zips
from crc64 import crc64_str
from helpers import assert_recent, assert_subset, b64, parse_time, unique
from sdk import CLIENTS, ApiError, api

PKG = zips.code_zip("functions-v1")
PKG2 = zips.code_zip("functions-v2")

# Every section 5.3 field (except layers and customContainerConfig, see the report) with a non-default value.
FUNCTION_FULL = {
    "runtime": "custom.debian10",
    "handler": "index.handler",
    "description": "every field set",
    "memorySize": 1024,
    "timeout": 120,
    "initializer": "index.init",
    "initializationTimeout": 20,
    "environmentVariables": {"A": "1", "b_2": "two", "LONG_VALUE": "x" * 100},
    "instanceConcurrency": 10,
    "instanceSoftConcurrency": 5,
    "instanceType": "fc.gpu.tesla.1",
    "caPort": 9001,
    "customRuntimeConfig": {"command": ["python3"], "args": ["app.py", "--port", "9001"]},
    "instanceLifecycleConfig": {"preFreeze": {"handler": "index.pre_freeze", "timeout": 10},
                                "preStop": {"handler": "index.pre_stop", "timeout": 20}},
    "customDNS": {"nameServers": ["8.8.8.8", "1.1.1.1"], "searches": ["svc.local"],
                  "dnsOptions": [{"name": "ndots", "value": "2"}]},
    "customHealthCheckConfig": {"httpGetUrl": "/ready", "initialDelaySeconds": 1, "periodSeconds": 3,
                                "timeoutSeconds": 2, "failureThreshold": 3, "successThreshold": 1},
    "cpu": 0.7,
    "diskSize": 10240,
    "gpuMemorySize": 4096,
}
# What aliyun-fc2's create_function can send (caPort only with runtime "custom").
FC2_FULL = {
    "runtime": "custom",
    "handler": "index.handler",
    "description": "fc2 fields",
    "memorySize": 512,
    "timeout": 30,
    "initializer": "index.init",
    "initializationTimeout": 10,
    "environmentVariables": {"K": "v"},
    "instanceConcurrency": 3,
    "instanceType": "c1",
    "caPort": 8080,
}
REQUIRED_KEYS = {"functionName", "functionId", "runtime", "handler", "codeChecksum", "codeSize", "createdTime",
                 "lastModifiedTime", "memorySize", "timeout", "instanceType"}


@pytest.fixture(scope="module")
def svc(server):
    name = unique("fnsvc")
    api(server, "raw16").create_service({"serviceName": name})
    return name


def full_body(client, name, pkg=PKG):
    fields = FC2_FULL if client == "fc2" else FUNCTION_FULL
    return {"functionName": name, "code": {"zipFile": b64(pkg)}, **fields}


def assert_code_fields(body, pkg):
    assert body["codeChecksum"] == crc64_str(pkg), body["codeChecksum"]
    assert body["codeSize"] == len(pkg)


@pytest.mark.parametrize("client", CLIENTS)
def test_create_get_list_function_round_trips_every_field(server, svc, client):
    a = api(server, client)
    name = unique("fn")
    body = full_body(client, name)
    created = a.create_function(svc, body)
    echo = {k: v for k, v in body.items() if k != "code"}
    created.assert_status(200)
    assert_subset(echo, created.body)
    assert "code" not in created.body or not created.body["code"], "the code package is not echoed"
    assert REQUIRED_KEYS <= set(created.body), REQUIRED_KEYS - set(created.body)
    assert_code_fields(created.body, PKG)
    assert created.body["functionId"]
    assert created.etag
    assert_recent(created.body["createdTime"])

    got = a.get_function(svc, name)
    assert_subset(echo, got.body)
    assert_code_fields(got.body, PKG)
    for k in ("functionId", "createdTime", "lastModifiedTime"):
        assert got.body[k] == created.body[k], k
    assert got.etag == created.etag

    listed = a.list_functions(svc, prefix=name).body["functions"]
    assert [f["functionName"] for f in listed] == [name]
    assert_subset(echo, listed[0])
    assert_code_fields(listed[0], PKG)


@pytest.mark.parametrize("client", ["fc21", "raw16", "raw21"])
@pytest.mark.parametrize("runtime", ["python3.10", "custom.debian10"])
def test_create_function_defaults(server, svc, client, runtime):
    a = api(server, client)
    name = unique("fndef")
    f = a.create_function(svc, {"functionName": name, "runtime": runtime, "handler": "index.handler",
                                 "code": {"zipFile": b64(PKG)}}).body
    assert REQUIRED_KEYS <= set(f), REQUIRED_KEYS - set(f)
    assert f["memorySize"] == 128
    assert f["timeout"] == 3
    assert f["initializationTimeout"] == 3
    assert f["instanceConcurrency"] == 1
    assert f["instanceType"] == "e1"
    assert f["diskSize"] == 512
    if runtime.startswith("custom"):
        assert f["caPort"] == 9000
    else:
        assert f.get("caPort", 9000) == 9000
    assert f.get("environmentVariables") in ({}, None)
    assert_code_fields(f, PKG)


def test_fc2_sdk_defaults_are_echoed(server, svc):
    """aliyun-fc2 always sends memorySize 256, timeout 60, initializationTimeout 30 (its Python defaults)."""
    a = api(server, "fc2")
    name = unique("fnfc2def")
    f = a.create_function(svc, {"functionName": name, "runtime": "python3.9", "handler": "index.handler",
                                 "code": {"zipFile": b64(PKG)}}).body
    assert (f["memorySize"], f["timeout"], f["initializationTimeout"]) == (256, 60, 30)
    assert f["instanceType"] == "e1"


@pytest.mark.parametrize("client", CLIENTS)
def test_update_function_fields_code_and_times(server, svc, client):
    a = api(server, client)
    name = unique("fnupd")
    created = a.create_function(svc, {"functionName": name, "runtime": "python3.10", "handler": "index.handler",
                                      "description": "before", "environmentVariables": {"KEEP": "1"},
                                      "code": {"zipFile": b64(PKG)}})
    c = created.body
    time.sleep(1.1)  # timestamps may have one-second resolution

    u = a.update_function(svc, name, {"description": "after", "memorySize": 512, "timeout": 30,
                                      "environmentVariables": {"X": "1", "Y": "2"}})
    u.assert_status(200)
    assert (u.body["description"], u.body["memorySize"], u.body["timeout"]) == ("after", 512, 30)
    assert u.body["environmentVariables"] == {"X": "1", "Y": "2"}
    # Untouched fields stay.
    assert (u.body["runtime"], u.body["handler"]) == ("python3.10", "index.handler")
    assert u.body["functionId"] == c["functionId"]
    assert_code_fields(u.body, PKG)
    assert u.body["createdTime"] == c["createdTime"]
    assert parse_time(u.body["lastModifiedTime"]) > parse_time(c["lastModifiedTime"])
    assert u.etag and u.etag != created.etag

    # environmentVariables: {} clears them.
    cleared = a.update_function(svc, name, {"environmentVariables": {}})
    assert cleared.body.get("environmentVariables") in ({}, None), cleared.body
    assert a.get_function(svc, name).body.get("environmentVariables") in ({}, None)
    assert cleared.body["description"] == "after"

    # New code: checksum and size follow the new package.
    recoded = a.update_function(svc, name, {"code": {"zipFile": b64(PKG2)}})
    assert_code_fields(recoded.body, PKG2)
    assert recoded.body["codeChecksum"] != c["codeChecksum"]
    got = a.get_function(svc, name)
    assert_code_fields(got.body, PKG2)
    assert got.body["description"] == "after"
    assert got.etag == recoded.etag


def test_update_function_instance_concurrency_from_the_2021_sdk(server, svc):
    """The 2021 SDK sends UpdateFunction's concurrency as `InstanceConcurrency` (capitalised)."""
    a = api(server, "fc21")
    name = unique("fnconc")
    a.create_function(svc, {"functionName": name, "runtime": "python3.10", "handler": "index.handler",
                            "code": {"zipFile": b64(PKG)}})
    u = a.update_function(svc, name, {"instanceConcurrency": 7})
    assert u.body["instanceConcurrency"] == 7
    assert a.get_function(svc, name).body["instanceConcurrency"] == 7
    assert api(server, "raw16").get_function(svc, name).body["instanceConcurrency"] == 7


@pytest.mark.parametrize("client", CLIENTS)
def test_delete_function(server, svc, client):
    a = api(server, client)
    name = unique("fndel")
    a.create_function(svc, {"functionName": name, "runtime": "python3.10", "handler": "index.handler",
                            "code": {"zipFile": b64(PKG)}})
    deleted = a.delete_function(svc, name)
    deleted.assert_status(204)
    with pytest.raises(ApiError) as ei:
        a.get_function(svc, name)
    assert (ei.value.status, ei.value.code) == (404, "FunctionNotFound")
    assert a.list_functions(svc, prefix=name).body["functions"] == []


QUALIFIER_CASES = [("fc2", "path"), ("fc21", "query"), ("raw16", "path"), ("raw16", "query"), ("raw21", "path"),
                   ("raw21", "query")]


@pytest.fixture(scope="module")
def qfn(server, svc):
    name = unique("fnq")
    body = api(server, "raw16").create_function(svc, {"functionName": name, "runtime": "python3.10",
                                                      "handler": "index.handler", "description": "q",
                                                      "code": {"zipFile": b64(PKG)}}).body
    return name, body


@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_get_function_qualifier_forms(server, svc, qfn, client, form):
    name, created = qfn
    got = api(server, client).get_function(svc, name, qualifier="LATEST", form=form).body
    assert got["functionName"] == name
    assert got["functionId"] == created["functionId"]
    assert got["codeChecksum"] == created["codeChecksum"]


@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_get_function_code_qualifier_forms(server, svc, qfn, client, form):
    name, _ = qfn
    got = api(server, client).get_function_code(svc, name, qualifier="LATEST", form=form).body
    assert got["checksum"] == crc64_str(PKG)
    assert got["url"].startswith(server.endpoint + "/_openfc/code/")


@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_list_functions_qualifier_forms(server, svc, qfn, client, form):
    name, created = qfn
    listed = api(server, client).list_functions(svc, qualifier="LATEST", form=form, prefix=name).body["functions"]
    assert [f["functionName"] for f in listed] == [name]
    assert listed[0]["functionId"] == created["functionId"]


@pytest.mark.parametrize("client", CLIENTS)
def test_functions_of_a_service_are_not_shared_with_another(server, client):
    a = api(server, client)
    s1, s2 = unique("iso"), unique("iso")
    a.create_service({"serviceName": s1})
    a.create_service({"serviceName": s2})
    a.create_function(s1, {"functionName": "same_name", "runtime": "python3.10", "handler": "index.handler",
                           "code": {"zipFile": b64(PKG)}})
    assert [f["functionName"] for f in a.list_functions(s1).body["functions"]] == ["same_name"]
    assert a.list_functions(s2).body["functions"] == []
    with pytest.raises(ApiError) as ei:
        a.get_function(s2, "same_name")
    assert (ei.value.status, ei.value.code) == (404, "FunctionNotFound")
    # The same function name in another service is allowed.
    a.create_function(s2, {"functionName": "same_name", "runtime": "python3.10", "handler": "index.handler",
                           "code": {"zipFile": b64(PKG2)}})
    assert a.get_function(s2, "same_name").body["codeChecksum"] == crc64_str(PKG2)
    assert a.get_function(s1, "same_name").body["codeChecksum"] == crc64_str(PKG)
