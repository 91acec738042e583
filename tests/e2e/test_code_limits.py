"""Code package validation and limits (SQLite): hostile ZIPs, size limit, URL expiry, public URL."""

import time

import pytest
import requests

import zips
from crc64 import crc64_str
from helpers import assert_fc_error, assert_ok, b64, fc2_error, unique
from sdk import api

GIB = 1 << 30
MIB = 1 << 20
PKG = zips.code_zip("limits")


@pytest.fixture(scope="module")
def svc(sqlite_server):
    name = unique("limsvc")
    api(sqlite_server, "raw16").create_service({"serviceName": name})
    return name


def create_raw(server, svc, zip_file, name=None):
    return server.raw.post(f"/services/{svc}/functions", json={
        "functionName": name or unique("fn"), "runtime": "python3.10", "handler": "index.handler",
        "code": {"zipFile": zip_file}})


# At the default limits. The contract caps the unpacked total at 1 GiB and the entries at 65536; the sizes here
# are above 2 GiB (openfc's --max-unzipped-size default) so they hold for either cap. Exact boundaries are tested
# below with a server started with small --max-unzipped-size / --max-code-entries.
BAD_PACKAGES = {
    "bad base64": lambda: "this is not base64!!",
    "empty package": lambda: "",
    "not a zip": lambda: b64(b"hello world, this is not a zip archive at all"),
    "truncated zip": lambda: b64(PKG[: len(PKG) // 2]),
    "absolute entry /etc/x": lambda: b64(zips.zip_with_entry_name("/etc/x")),
    "parent entry ../x": lambda: b64(zips.zip_with_entry_name("../x")),
    "nested parent entry a/../../x": lambda: b64(zips.zip_with_entry_name("a/../../x")),
    "symlink entry": lambda: b64(zips.symlink_zip("/etc/passwd")),
    "declared size 4 GiB in one entry": lambda: b64(zips.declared_size_zip([0xFFFFFFF0])),
    "declared sizes 3 x 1 GiB": lambda: b64(zips.declared_size_zip([GIB] * 3)),
    "deflate bomb 2 GiB + 1 MiB of zeros": lambda: b64(zips.deflate_bomb(2 * GIB + MIB)),
    "65537 entries": lambda: b64(zips.many_entries_zip(65537)),
}


@pytest.mark.parametrize("what", list(BAD_PACKAGES))
def test_bad_package_is_invalid_argument(sqlite_server, svc, what):
    name = unique("fnbad")
    r = create_raw(sqlite_server, svc, BAD_PACKAGES[what](), name=name)
    assert_fc_error(r, 400, "InvalidArgument")
    assert_fc_error(sqlite_server.raw.get(f"/services/{svc}/functions/{name}"), 404, "FunctionNotFound")


@pytest.mark.parametrize("what", ["parent entry ../x", "symlink entry", "not a zip"])
def test_bad_package_on_update_keeps_the_old_code(sqlite_server, svc, what):
    name = unique("fnbadupd")
    assert_ok(create_raw(sqlite_server, svc, b64(PKG), name=name))
    r = sqlite_server.raw.put(f"/services/{svc}/functions/{name}", json={"code": {"zipFile": BAD_PACKAGES[what]()}})
    assert_fc_error(r, 400, "InvalidArgument")
    got = assert_ok(sqlite_server.raw.get(f"/services/{svc}/functions/{name}"))
    assert got["codeChecksum"] == crc64_str(PKG)


@pytest.mark.parametrize("what, package", [
    ("directories and nested files", zips.make_zip({"a/": b"", "a/b/": b"", "a/b/c.txt": b"c", "index.py": b"x"})),
    ("1000 entries", zips.many_entries_zip(1000)),
    ("stored (uncompressed) entries", zips.make_zip({"index.py": zips.INDEX_PY}, compress=0)),
    ("a 2 MiB package", zips.random_zip(2 * MIB)),
])
def test_unusual_but_valid_packages_are_accepted(sqlite_server, svc, what, package):
    f = assert_ok(create_raw(sqlite_server, svc, b64(package)))
    assert f["codeChecksum"] == crc64_str(package)
    assert f["codeSize"] == len(package)


MAX = 4096


@pytest.fixture(scope="module")
def small_server(server_factory):
    srv = server_factory.start("sqlite", args=["--max-code-size", str(MAX)])
    yield srv
    srv.close()


def test_package_over_max_code_size_is_entity_too_large(small_server):
    s = small_server
    svc = unique("bigsvc")
    api(s, "raw16").create_service({"serviceName": svc})
    at_max, over = zips.zip_of_exact_size(MAX), zips.zip_of_exact_size(MAX + 1)

    name = unique("fn")
    assert_fc_error(create_raw(s, svc, b64(over), name=name), 400, "EntityTooLarge")
    f = assert_ok(create_raw(s, svc, b64(at_max), name=name))
    assert f["codeSize"] == MAX

    # UpdateFunction has the same limit, and the old code stays.
    r = s.raw.put(f"/services/{svc}/functions/{name}", json={"code": {"zipFile": b64(over)}})
    assert_fc_error(r, 400, "EntityTooLarge")
    assert assert_ok(s.raw.get(f"/services/{svc}/functions/{name}"))["codeSize"] == MAX

    # What the SDK user sees.
    tmp = s.workdir / "over.zip"
    tmp.write_bytes(over)
    fc2_error(400, "EntityTooLarge", s.fc2.create_function, svc, unique("fn"), "python3.10", "index.handler",
              codeZipFile=str(tmp))


def test_code_url_expires(start_server):
    s = start_server(args=["--code-url-ttl", "2"])
    svc, name = unique("ttlsvc"), unique("fn")
    api(s, "raw16").create_service({"serviceName": svc})
    assert_ok(create_raw(s, svc, b64(PKG), name=name))
    url = api(s, "fc2").get_function_code(svc, name).body["url"]
    assert requests.get(url, timeout=30).content == PKG
    time.sleep(3.5)
    r = requests.get(url, timeout=30)
    assert r.status_code == 403, r.status_code
    body = r.json()
    assert {"ErrorCode", "ErrorMessage", "RequestId", "Code", "Message"} <= set(body), body
    assert body["ErrorCode"] in ("SignatureNotMatch", "AccessDenied"), body
    assert r.headers.get("X-Fc-Request-Id") == body["RequestId"]
    # A new URL works again.
    fresh = api(s, "fc2").get_function_code(svc, name).body["url"]
    assert requests.get(fresh, timeout=30).content == PKG


def test_public_url_and_region_flags(start_server):
    s = start_server(args=["--public-url", "http://localhost:{port}", "--region", "cn-shanghai"])
    public = f"http://localhost:{s.port}"
    assert s.creds["region"] == "cn-shanghai"
    assert s.creds["endpoint"] == public
    svc, name = unique("pubsvc"), unique("fn")
    api(s, "raw16").create_service({"serviceName": svc})
    assert_ok(create_raw(s, svc, b64(PKG), name=name))
    url = api(s, "fc21").get_function_code(svc, name).body["url"]
    assert url.startswith(public + "/_openfc/code/"), url
    assert requests.get(url, timeout=30).content == PKG


UNZIPPED_MAX = MIB
ENTRIES_MAX = 100


@pytest.fixture(scope="module")
def tight_server(server_factory):
    srv = server_factory.start("sqlite", args=["--max-unzipped-size", str(UNZIPPED_MAX),
                                               "--max-code-entries", str(ENTRIES_MAX)])
    yield srv
    srv.close()


def _zeros_zip(total):
    """index.py plus zeros.bin, `total` unpacked bytes in all (deflated: a few KiB on the wire)."""
    return zips.make_zip({"index.py": zips.INDEX_PY, "zeros.bin": bytes(total - len(zips.INDEX_PY))})


LIMIT_CASES = [
    ("unpacked size at the limit", lambda: _zeros_zip(UNZIPPED_MAX), 200),
    ("unpacked size one byte over", lambda: _zeros_zip(UNZIPPED_MAX + 1), 400),
    ("declared sizes over the limit", lambda: zips.declared_size_zip([600 * 1024, 600 * 1024]), 400),
    ("entries at the limit", lambda: zips.many_entries_zip(ENTRIES_MAX), 200),
    ("one entry too many", lambda: zips.many_entries_zip(ENTRIES_MAX + 1), 400),
]


@pytest.mark.parametrize("what, package, expected", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_unpacked_size_and_entry_limits(tight_server, what, package, expected):
    s = tight_server
    svc = unique("tightsvc")
    api(s, "raw16").create_service({"serviceName": svc})
    data = package()
    r = create_raw(s, svc, b64(data))
    if expected == 200:
        assert assert_ok(r)["codeChecksum"] == crc64_str(data)
    else:
        assert_fc_error(r, 400, "InvalidArgument")
