"""Code packages on both backends: upload paths, CRC-64 checksums, the signed download URL (GET, HEAD, Range,
tampering), code from the embedded OSS, X-Fc-Code-Checksum."""

import random
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

import zips
from crc64 import crc64_str
from helpers import assert_fc_error, b64, unique
from sdk import CLIENTS, ApiError, api

PKG = zips.code_zip("code-v1", extra=random.Random(3).randbytes(3000))
PKG_OTHER = zips.code_zip("code-v2")


@pytest.fixture(scope="module")
def svc(server):
    name = unique("codesvc")
    api(server, "raw16").create_service({"serviceName": name})
    return name


def new_function(server, svc, pkg=PKG, client="raw16", name=None):
    name = name or unique("fn")
    body = api(server, client).create_function(svc, {"functionName": name, "runtime": "python3.10",
                                                     "handler": "index.handler", "code": {"zipFile": b64(pkg)}}).body
    return name, body


@pytest.fixture(scope="module")
def fn_url(server, svc):
    """A function with PKG and a fresh download URL."""
    name, _ = new_function(server, svc)
    return api(server, "raw16").get_function_code(svc, name).body["url"]


def assert_download_headers(r, pkg):
    assert r.headers.get("Content-Type") == "application/zip", r.headers.get("Content-Type")
    assert r.headers.get("ETag"), "download has no ETag"
    assert r.headers.get("X-Oss-Hash-Crc64ecma") == crc64_str(pkg)


@pytest.mark.parametrize("client", CLIENTS)
def test_code_download_is_byte_identical_with_matching_checksums(server, svc, client):
    a = api(server, client)
    name, created = new_function(server, svc, client=client)
    assert created["codeChecksum"] == crc64_str(PKG)
    code = a.get_function_code(svc, name).body
    assert code["checksum"] == crc64_str(PKG) == created["codeChecksum"]
    url = code["url"]
    assert url.startswith(server.endpoint + "/_openfc/code/"), url
    assert urlsplit(url).query, f"the code URL is not signed: {url}"

    r = requests.get(url, timeout=30)  # no Authorization: the URL itself is the credential
    assert r.status_code == 200, r.text[:500]
    assert r.content == PKG
    assert crc64_str(r.content) == code["checksum"]
    assert int(r.headers["Content-Length"]) == len(PKG)
    assert_download_headers(r, PKG)


def test_code_url_head(server, fn_url):
    r = requests.head(fn_url, timeout=30)
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["Content-Length"]) == len(PKG)
    assert_download_headers(r, PKG)
    g = requests.get(fn_url, timeout=30)
    assert g.headers["ETag"] == r.headers["ETag"]


@pytest.mark.parametrize("first, last", [(0, 0), (10, 19), (len(PKG) - 10, len(PKG) - 1), (0, len(PKG) - 1),
                                         (100, len(PKG) - 1)])
def test_code_url_range(server, fn_url, first, last):
    r = requests.get(fn_url, headers={"Range": f"bytes={first}-{last}"}, timeout=30)
    assert r.status_code == 206, (r.status_code, r.text[:300])
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{len(PKG)}"
    assert int(r.headers["Content-Length"]) == last - first + 1
    assert r.content == PKG[first:last + 1]


def test_identical_package_uploaded_twice_has_the_same_checksum(server, svc):
    n1, f1 = new_function(server, svc, client="raw16")
    n2, f2 = new_function(server, svc, client="fc2")
    assert f1["codeChecksum"] == f2["codeChecksum"] == crc64_str(PKG)
    assert f1["codeSize"] == f2["codeSize"] == len(PKG)
    # Re-uploading the same bytes to an existing function keeps the checksum.
    again = api(server, "fc21").update_function(svc, n1, {"code": {"zipFile": b64(PKG)}}).body
    assert again["codeChecksum"] == crc64_str(PKG)
    for name in (n1, n2):
        url = api(server, "raw21").get_function_code(svc, name).body["url"]
        assert requests.get(url, timeout=30).content == PKG


def test_new_code_gives_a_new_checksum_and_download(server, svc):
    name, _ = new_function(server, svc)
    updated = api(server, "fc2").update_function(svc, name, {"code": {"zipFile": b64(PKG_OTHER)}}).body
    assert updated["codeChecksum"] == crc64_str(PKG_OTHER) != crc64_str(PKG)
    code = api(server, "fc2").get_function_code(svc, name).body
    assert code["checksum"] == crc64_str(PKG_OTHER)
    r = requests.get(code["url"], timeout=30)
    assert r.content == PKG_OTHER
    assert r.headers["X-Oss-Hash-Crc64ecma"] == crc64_str(PKG_OTHER)


def _mutate(value):
    c = value[0]
    if c.isdigit():
        repl = str((int(c) + 1) % 10)
    else:
        repl = "B" if c == "A" else "A"
    return repl + value[1:]


def tampered_urls(url):
    """(what, url) pairs: each query value changed in turn, the query dropped, the path pointed elsewhere."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    out = []
    for i, (k, v) in enumerate(query):
        if not v:
            continue
        q = list(query)
        q[i] = (k, _mutate(v))
        out.append((f"query {k}", urlunsplit(parts._replace(query=urlencode(q)))))
    out.append(("no query", urlunsplit(parts._replace(query=""))))
    path = parts.path
    out.append(("other path", urlunsplit(parts._replace(path=path[:-1] + ("x" if path[-1] != "x" else "y")))))
    return out


def test_tampered_code_url_is_rejected(server, fn_url):
    cases = tampered_urls(fn_url)
    assert len(cases) >= 3, fn_url
    for what, bad in cases:
        r = requests.get(bad, timeout=30)
        assert r.status_code == 403, f"{what}: {bad} -> {r.status_code}"
        body = r.json()
        assert {"ErrorCode", "ErrorMessage", "RequestId", "Code", "Message"} <= set(body), (what, body)
        assert body["ErrorCode"] in ("SignatureNotMatch", "AccessDenied"), (what, body)
        assert body["Code"] == body["ErrorCode"]
        assert r.headers.get("X-Fc-Request-Id") == body["RequestId"]
    # The untouched URL still works.
    assert requests.get(fn_url, timeout=30).content == PKG


@pytest.mark.parametrize("client", ["fc2", "fc21", "raw16"])
def test_code_from_the_embedded_oss(server, svc, client):
    bucket = "oss-" + uuid.uuid4().hex[:10]
    key = f"dir/{uuid.uuid4().hex[:6]}/code.zip"
    pkg = zips.code_zip("from-oss-" + bucket)
    server.put_oss_object(bucket, key, pkg)
    a = api(server, client)
    name = unique("fnoss")
    created = a.create_function(svc, {"functionName": name, "runtime": "python3.10", "handler": "index.handler",
                                      "code": {"ossBucketName": bucket, "ossObjectName": key}}).body
    assert created["codeChecksum"] == crc64_str(pkg)
    assert created["codeSize"] == len(pkg)
    code = a.get_function_code(svc, name).body
    assert code["checksum"] == crc64_str(pkg)
    assert requests.get(code["url"], timeout=30).content == pkg

    # UpdateFunction from OSS too.
    pkg2 = zips.code_zip("from-oss-2-" + bucket)
    server.put_oss_object(bucket, key + ".2", pkg2)
    updated = a.update_function(svc, name, {"code": {"ossBucketName": bucket, "ossObjectName": key + ".2"}}).body
    assert updated["codeChecksum"] == crc64_str(pkg2)


@pytest.mark.parametrize("what", ["missing object", "missing bucket"])
def test_code_from_a_missing_oss_object_is_invalid(server, svc, what):
    bucket = "oss-" + uuid.uuid4().hex[:10]
    if what == "missing object":
        server.put_oss_object(bucket, "present.zip", PKG)
    r = server.raw.post(f"/services/{svc}/functions", json={
        "functionName": unique("fnossmiss"), "runtime": "python3.10", "handler": "index.handler",
        "code": {"ossBucketName": bucket, "ossObjectName": "absent.zip"}})
    assert_fc_error(r, 400, "InvalidArgument")


def test_code_checksum_header_matching_and_mismatching(server, svc):
    a = api(server, "fc21")
    good = crc64_str(PKG)
    bad = str((int(good) + 1) % (1 << 64))
    name = unique("fnck")
    body = {"functionName": name, "runtime": "python3.10", "handler": "index.handler",
            "code": {"zipFile": b64(PKG)}}
    # Mismatch on create: refused, nothing created.
    with pytest.raises(ApiError) as ei:
        a.create_function(svc, body, code_checksum=bad)
    assert (ei.value.status, ei.value.code) == (400, "InvalidArgument")
    with pytest.raises(ApiError) as ei:
        a.get_function(svc, name)
    assert ei.value.code == "FunctionNotFound"
    # Match on create.
    assert a.create_function(svc, body, code_checksum=good).body["codeChecksum"] == good
    # Update: mismatch refused and the old code kept; match accepted.
    with pytest.raises(ApiError) as ei:
        a.update_function(svc, name, {"code": {"zipFile": b64(PKG_OTHER)}}, code_checksum=good)
    assert (ei.value.status, ei.value.code) == (400, "InvalidArgument")
    assert a.get_function(svc, name).body["codeChecksum"] == good
    other = crc64_str(PKG_OTHER)
    assert a.update_function(svc, name, {"code": {"zipFile": b64(PKG_OTHER)}},
                             code_checksum=other).body["codeChecksum"] == other
    # The same header through the FC-signed prefix.
    r = server.raw.post(f"/services/{svc}/functions", headers={"X-Fc-Code-Checksum": bad},
                        json={**body, "functionName": unique("fnck")})
    assert_fc_error(r, 400, "InvalidArgument")
    r = server.raw.post(f"/services/{svc}/functions", headers={"X-Fc-Code-Checksum": good},
                        json={**body, "functionName": unique("fnck")})
    assert r.status_code == 200, r.text
