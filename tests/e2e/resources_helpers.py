"""Shared bits of the resource modules (versions, aliases, triggers, layers, tags, configs): small setup
helpers on the raw client, ARNs, qualifier forms, garbage collection and a test certificate. The SDK call
wrappers, raw_call and walk_pages are in sdk.py."""

import time

import requests

import zips
from helpers import assert_fc_error, assert_ok, b64, unique

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


# --- raw client ---------------------------------------------------------------------------------------------
def ok(resp, status=200):
    return assert_ok(resp, status)


def err(resp, status, code):
    return assert_fc_error(resp, status, code)


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
