"""Field rules of spec 5.2/5.3 (SQLite): each case is (input, expected) where expected is OK (and the value is
echoed) or 400 InvalidArgument."""

import pytest

import zips
from helpers import assert_fc_error, assert_ok, assert_subset, b64, unique
from sdk import api

PKG = zips.code_zip("validation")
OK = "ok"
BAD = (400, "InvalidArgument")


@pytest.fixture(scope="module")
def svc(sqlite_server):
    name = unique("valsvc")
    api(sqlite_server, "raw16").create_service({"serviceName": name})
    return name


def fn_body(**fields):
    body = {"functionName": unique("fn"), "runtime": "python3.10", "handler": "index.handler",
            "code": {"zipFile": b64(PKG)}}
    body.update(fields)
    return body


def check_create(server, path, body, expected, echo=None):
    r = server.raw.post(path, json=body)
    if expected == OK:
        got = assert_ok(r)
        assert_subset(echo if echo is not None else body, got)
    else:
        assert_fc_error(r, *expected)


SERVICE_NAMES = [
    ("a", OK), ("_svc", OK), ("A-b_9", OK), ("s" * 128, OK),
    ("s" * 129, BAD), ("1svc", BAD), ("-svc", BAD), ("svc.name", BAD), ("svc name", BAD), ("svc/x", BAD),
    ("中文", BAD), ("svc@x", BAD),
]


@pytest.mark.parametrize("name, expected", SERVICE_NAMES, ids=[n[:20] for n, _ in SERVICE_NAMES])
def test_service_name_rules(sqlite_server, name, expected):
    # Unique but keeping the shape under test: only the valid ones are actually created.
    check_create(sqlite_server, "/services", {"serviceName": name}, expected, echo={"serviceName": name})
    if expected == OK:
        assert_ok(sqlite_server.raw.delete(f"/services/{name}"), 204)


FUNCTION_NAMES = [
    ("f", OK), ("_fn", OK), ("A-b_9", OK), ("f" * 64, OK),
    ("f" * 65, BAD), ("1fn", BAD), ("-fn", BAD), ("fn.x", BAD), ("fn x", BAD), ("中文", BAD), ("", BAD),
]


@pytest.mark.parametrize("name, expected", FUNCTION_NAMES, ids=[n[:20] or "empty" for n, _ in FUNCTION_NAMES])
def test_function_name_rules(sqlite_server, name, expected):
    svc = unique("fnnames")
    api(sqlite_server, "raw16").create_service({"serviceName": svc})
    check_create(sqlite_server, f"/services/{svc}/functions", fn_body(functionName=name), expected,
                 echo={"functionName": name})


FIELD_CASES = [
    # memorySize: multiple of 64 in 128..=32768
    ({"memorySize": 128}, OK), ({"memorySize": 192}, OK), ({"memorySize": 32768}, OK),
    ({"memorySize": 64}, BAD), ({"memorySize": 100}, BAD), ({"memorySize": 200}, BAD), ({"memorySize": 1000}, BAD),
    ({"memorySize": 32832}, BAD), ({"memorySize": 0}, BAD),
    ({"memorySize": -128}, BAD),
    # timeout 1..=86400
    ({"timeout": 1}, OK), ({"timeout": 86400}, OK), ({"timeout": 0}, BAD), ({"timeout": 86401}, BAD),
    ({"timeout": -1}, BAD),
    # initializationTimeout 1..=300
    ({"initializationTimeout": 1}, OK), ({"initializationTimeout": 300}, OK),
    ({"initializationTimeout": 0}, BAD), ({"initializationTimeout": 301}, BAD),
    # instanceConcurrency 1..=200; instanceSoftConcurrency <= instanceConcurrency
    ({"instanceConcurrency": 1}, OK), ({"instanceConcurrency": 200}, OK),
    ({"instanceConcurrency": 0}, BAD), ({"instanceConcurrency": 201}, BAD),
    ({"instanceConcurrency": 5, "instanceSoftConcurrency": 5}, OK),
    ({"instanceConcurrency": 5, "instanceSoftConcurrency": 1}, OK),
    ({"instanceConcurrency": 5, "instanceSoftConcurrency": 6}, BAD),
    ({"instanceSoftConcurrency": 2}, BAD),  # default instanceConcurrency is 1
    # instanceType
    *[({"instanceType": t}, OK) for t in ("e1", "c1", "fc.gpu.tesla.1", "fc.gpu.ampere.1", "g1")],
    ({"instanceType": "x1"}, BAD), ({"instanceType": "E1"}, BAD), ({"instanceType": ""}, BAD),
    # caPort 1..=65535
    ({"runtime": "custom", "caPort": 1}, OK), ({"runtime": "custom", "caPort": 65535}, OK),
    ({"runtime": "custom", "caPort": 0}, BAD), ({"runtime": "custom", "caPort": 65536}, BAD),
    # diskSize 512 | 10240
    ({"diskSize": 512}, OK), ({"diskSize": 10240}, OK), ({"diskSize": 1024}, BAD), ({"diskSize": 0}, BAD),
    # cpu: multiple of 0.05
    ({"cpu": 0.05, "memorySize": 128}, OK), ({"cpu": 0.35, "memorySize": 512}, OK), ({"cpu": 2.0, "memorySize": 4096}, OK),
    ({"cpu": 0.33, "memorySize": 512}, BAD), ({"cpu": 0.01, "memorySize": 128}, BAD),
    # gpuMemorySize: multiple of 1024
    ({"instanceType": "fc.gpu.tesla.1", "gpuMemorySize": 2048}, OK),
    ({"instanceType": "fc.gpu.tesla.1", "gpuMemorySize": 1000}, BAD),
    ({"instanceType": "fc.gpu.tesla.1", "gpuMemorySize": 1536}, BAD),
    # environmentVariables: keys [A-Za-z][A-Za-z0-9_]*, no FC_ prefix, <= 4 KB total
    ({"environmentVariables": {"A": "1", "b_2": "x", "Zz9": ""}}, OK),
    ({"environmentVariables": {"BIG": "v" * 2000}}, OK),
    ({"environmentVariables": {"1A": "x"}}, BAD), ({"environmentVariables": {"_A": "x"}}, BAD),
    ({"environmentVariables": {"A-B": "x"}}, BAD), ({"environmentVariables": {"A.B": "x"}}, BAD),
    ({"environmentVariables": {"": "x"}}, BAD),
    ({"environmentVariables": {"FC_X": "x"}}, BAD), ({"environmentVariables": {"FC_FUNC_CODE_PATH": "/x"}}, BAD),
    ({"environmentVariables": {"BIG": "v" * 5000}}, BAD),
    ({"environmentVariables": {f"K{i}": "v" * 100 for i in range(50)}}, BAD),
    # runtime: spec 8.5
    *[({"runtime": r}, OK) for r in (
        "nodejs20", "nodejs18", "nodejs16", "nodejs14", "nodejs12", "python3.12", "python3.10", "python3.9",
        "python3", "java11", "java8", "php7.2", "dotnetcore3.1", "go1", "custom.debian11", "custom.debian10",
        "custom")],
    ({"runtime": "python4"}, BAD), ({"runtime": "PYTHON3"}, BAD), ({"runtime": ""}, BAD),
    ({"runtime": "nodejs99"}, BAD),
]


def case_id(case):
    fields, expected = case
    s = ",".join(f"{k}={str(v)[:24]}" for k, v in fields.items())
    return f"{'ok' if expected == OK else 'bad'}:{s}"


@pytest.mark.parametrize("fields, expected", FIELD_CASES, ids=[case_id(c) for c in FIELD_CASES])
def test_create_function_field_rules(sqlite_server, svc, fields, expected):
    check_create(sqlite_server, f"/services/{svc}/functions", fn_body(**fields), expected, echo=fields)


UPDATE_CASES = [
    ({"memorySize": 256}, OK), ({"memorySize": 100}, BAD), ({"timeout": 0}, BAD), ({"timeout": 600}, OK),
    ({"instanceType": "x1"}, BAD), ({"runtime": "python4"}, BAD), ({"runtime": "nodejs20"}, OK),
    ({"environmentVariables": {"FC_X": "1"}}, BAD), ({"environmentVariables": {"OK_1": "1"}}, OK),
    # The stored instanceConcurrency is 2.
    ({"instanceSoftConcurrency": 2}, OK), ({"instanceSoftConcurrency": 3}, BAD),
    ({"diskSize": 10240}, OK), ({"diskSize": 2048}, BAD),
]


@pytest.mark.parametrize("fields, expected", UPDATE_CASES, ids=[case_id(c) for c in UPDATE_CASES])
def test_update_function_field_rules(sqlite_server, svc, fields, expected):
    s = sqlite_server
    body = fn_body(instanceConcurrency=2, description="before")
    name = body["functionName"]
    before = assert_ok(s.raw.post(f"/services/{svc}/functions", json=body))
    r = s.raw.put(f"/services/{svc}/functions/{name}", json=fields)
    if expected == OK:
        assert_subset(fields, assert_ok(r))
    else:
        assert_fc_error(r, *expected)
        after = assert_ok(s.raw.get(f"/services/{svc}/functions/{name}"))
        for k in fields:
            assert after.get(k) == before.get(k), f"{k} changed by a refused update"


MISSING = [
    ("functionName", {"functionName": None}),
    ("runtime", {"runtime": None}),
    ("handler", {"handler": None}),
    ("code", {"code": None}),
    ("code without a form", {"code": {}}),
    ("code with both forms", {"code": {"zipFile": b64(PKG), "ossBucketName": "b", "ossObjectName": "o.zip"}}),
]


@pytest.mark.parametrize("what, patch", MISSING, ids=[m[0] for m in MISSING])
def test_create_function_requires_fields(sqlite_server, svc, what, patch):
    body = fn_body()
    for k, v in patch.items():
        if v is None:
            del body[k]
        else:
            body[k] = v
    assert_fc_error(sqlite_server.raw.post(f"/services/{svc}/functions", json=body), 400, "InvalidArgument")


@pytest.mark.parametrize("path, body", [
    ("/services", b"{not json"),
    ("/services", b"[1, 2, 3]"),
    ("/services", b'{"serviceName": 42}'),
    ("/services", b'{"description": "no name"}'),
], ids=["not-json", "json-array", "name-not-string", "no-service-name"])
def test_malformed_service_bodies(sqlite_server, path, body):
    assert_fc_error(sqlite_server.raw.post(path, body=body), 400, "InvalidArgument")


@pytest.mark.parametrize("body", [b"{not json", b'{"memorySize": "lots"}', b'{"timeout": 1.5}'],
                         ids=["not-json", "string-for-int", "float-for-int"])
def test_malformed_function_update_bodies(sqlite_server, svc, body):
    name = unique("fnmal")
    assert_ok(sqlite_server.raw.post(f"/services/{svc}/functions", json=fn_body(functionName=name)))
    r = sqlite_server.raw.put(f"/services/{svc}/functions/{name}", body=body)
    assert_fc_error(r, 400, "InvalidArgument")
