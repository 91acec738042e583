"""Shared bits of the resource modules (versions, aliases, triggers, layers, tags, configs): small setup
helpers on the raw client, the 2021 SDK call wrapper, ARNs, qualifier forms and a test certificate."""

import time

import requests

import zips
from helpers import assert_fc_error, assert_ok, b64, hget, unique
from sdk import ApiError, Resp

PKG = zips.code_zip("resources-v1")

# (client, qualifier form) pairs that can address a qualifier: fc2 puts it in the path (svc.Q), the 2021 SDK in
# ?qualifier=, the raw client does both on both prefixes.
QUALIFIER_CASES = [("fc2", "path"), ("fc21", "query"), ("raw16", "path"), ("raw16", "query"), ("raw21", "path"),
                   ("raw21", "query")]

# A self-signed P-256 certificate (CN=openfc-e2e.example.com, valid until 2126) and its key.
CERT_PEM = """-----BEGIN CERTIFICATE-----
MIIBmjCCAT+gAwIBAgIUZuirYDE1hCFnqjNgMaHrZ3P1D+UwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWb3BlbmZjLWUyZS5leGFtcGxlLmNvbTAgFw0yNjExMjkxODU1
NTNaGA8yMTI2MTEwNTE4NTU1M1owITEfMB0GA1UEAwwWb3BlbmZjLWUyZS5leGFt
cGxlLmNvbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLVIIvqycH1DbN2a6d4e
lRyZhcWi3fI+kEitDXQ/J4ecXahD9ARTkGJj6Pt2NW3n4JjqSlNCox6/HZZChb/u
ZnKjUzBRMB0GA1UdDgQWBBQ512KHJ1jmBFkINHFd3oyLlsrbLjAfBgNVHSMEGDAW
gBQ512KHJ1jmBFkINHFd3oyLlsrbLjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0kAMEYCIQDiflh3nnYO030DYqmBPoI737Tc6fBA9u3u4M0y+KpkLgIhAKAa
bxGh2KF5OjEB38s7XAO+6PIIuL3G3NtNnJ+Zr4Fm
-----END CERTIFICATE-----
"""
KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgi/+vTokfO/w7sOVz
Ca9XpT1YMOx2ePbhg++RoNFwTLChRANCAAS1SCL6snB9Q2zdmuneHpUcmYXFot3y
PpBIrQ10PyeHnF2oQ/QEU5BiY+j7djVt5+CY6kpTQqMevx2WQoW/7mZy
-----END PRIVATE KEY-----
"""


# --- raw client -------------------------------------------------------------------------------------------
def raw_for(server, client):
    """'raw16' / 'raw21' (also accepts '2016' / '2021') -> the raw FC-signed client on that prefix."""
    return server.raw21 if "21" in client else server.raw


def ok(resp, status=200):
    return assert_ok(resp, status)


def err(resp, status, code):
    return assert_fc_error(resp, status, code)


def svc_seg(svc, qualifier=None, form="path"):
    return f"{svc}.{qualifier}" if qualifier and form == "path" else svc


def q_params(qualifier=None, form="path", **extra):
    params = {k: v for k, v in extra.items() if v is not None}
    if qualifier and form == "query":
        params["qualifier"] = qualifier
    return params or None


# --- setup ------------------------------------------------------------------------------------------------
def new_service(server, prefix="svc", **fields):
    name = unique(prefix)
    ok(server.raw.post("/services", json={"serviceName": name, **fields}))
    return name


def new_function(server, svc, name=None, pkg=PKG, **fields):
    name = name or unique("fn")
    body = {"functionName": name, "runtime": "python3.10", "handler": "index.handler",
            "code": {"zipFile": b64(pkg)}, **fields}
    return name, ok(server.raw.post(f"/services/{svc}/functions", json=body))


def update_function(server, svc, fn, **fields):
    return ok(server.raw.put(f"/services/{svc}/functions/{fn}", json=fields))


def publish(server, svc, description=None):
    body = {} if description is None else {"description": description}
    return ok(server.raw.post(f"/services/{svc}/versions", json=body))


def create_alias(server, svc, name, version, **fields):
    return ok(server.raw.post(f"/services/{svc}/aliases", json={"aliasName": name, "versionId": version,
                                                                 **fields}))


def service_arn(server, svc, region=None, account=None):
    return f"acs:fc:{region or server.region}:{account or server.account_id}:services/{svc}"


def download(url):
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, (url, r.status_code, r.text[:500])
    return r.content


# --- 2021 SDK ---------------------------------------------------------------------------------------------
def tea_models():
    from alibabacloud_fc_open20210406 import models
    return models


def runtime_options():
    from alibabacloud_tea_util import models as util_models
    return util_models.RuntimeOptions()


def tea_call(fn, *args):
    """Call a 2021 SDK method; Resp(status, headers, body as the camelCase map) or ApiError."""
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
    try:
        r = fn(*args)
    except AlibabaCloudException as e:
        raise ApiError(e.status_code, e.code, e.request_id, e.data) from None
    body = r.body.to_map() if getattr(r, "body", None) is not None else None
    assert hget(r.headers, "X-Fc-Request-Id"), "no X-Fc-Request-Id"
    return Resp(r.status_code, r.headers, body)


def fc2_call(fn, *args, **kwargs):
    """Call an aliyun-fc2 method; Resp(None, headers, data) (fc2 shows no status) or ApiError."""
    from fc2.fc_exceptions import FcError
    try:
        r = fn(*args, **kwargs)
    except FcError as e:
        raise ApiError(e.status_code, e.err_code, e.request_id, e.message) from None
    if r is None:
        return Resp(None, {}, None)
    return Resp(None, r.headers, r.data)


def expect_api_error(status, code, fn, *args, **kwargs):
    """Run a Resp-returning call expecting ApiError(status, code)."""
    try:
        got = fn(*args, **kwargs)
    except ApiError as e:
        assert (e.status, e.code) == (status, code), str(e)
        return e
    raise AssertionError(f"expected {status} {code}, got {got.status}: {got.body}")


# --- garbage collection -----------------------------------------------------------------------------------
def gc_deleted(server):
    """openfc_gc_packages_deleted_total from /metrics (0 before the first collection that deleted anything)."""
    for line in server.metrics().splitlines():
        if line.startswith("openfc_gc_packages_deleted_total"):
            return float(line.split()[-1])
    return 0.0


def wait_for_gc(server, at_least=1, timeout=15.0):
    """Wait until the collector has deleted `at_least` packages, then one more interval so that a collection
    that started after that has finished too (a server started with --gc-interval 1 --gc-grace 1)."""
    deadline = time.time() + timeout
    while gc_deleted(server) < at_least:
        assert time.time() < deadline, "no package was ever collected: the test would prove nothing"
        time.sleep(0.25)
    time.sleep(1.5)
