"""Operating openfc (SQLite): credentials.json, /health, /metrics, request logs, GetAccountSettings, the
`openfc keys` CLI, configuration through environment variables."""

import json
import re
import stat
import time

import pytest
import requests

import zips
from helpers import assert_fc_error, assert_ok, b64, fc2_error, unique
from sdk import api

PKG = zips.code_zip("ops")


@pytest.fixture(scope="module")
def s(sqlite_server):
    return sqlite_server


def test_credentials_file(s):
    path = s.data_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    creds = json.loads(path.read_text())
    assert {"accountId", "accessKeyId", "accessKeySecret", "region", "endpoint"} <= set(creds), creds
    assert re.fullmatch(r"\d+", creds["accountId"]), creds["accountId"]
    assert creds["accessKeyId"] and creds["accessKeySecret"]
    assert creds["accessKeyId"] != creds["accessKeySecret"]
    assert creds["region"] == "cn-hangzhou"
    assert creds["endpoint"] == s.endpoint


def test_health_needs_no_signature(s):
    r = requests.get(f"{s.endpoint}/health", timeout=10)
    assert r.status_code == 200


def parse_metrics(text):
    """{(name, frozenset(labels)): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def counter(text, operation, status):
    total = 0.0
    for (name, labels), v in parse_metrics(text).items():
        d = dict(labels)
        if name == "openfc_requests_total" and d.get("operation") == operation and d.get("status") == str(status):
            total += v
    return total


def test_metrics_count_requests(s):
    svc = unique("metsvc")
    assert_ok(s.raw.post("/services", json={"serviceName": svc}))
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": "fn", "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)}}))
    before = s.metrics()
    ok0, nf0 = counter(before, "GetFunction", 200), counter(before, "GetFunction", 404)
    assert_ok(s.raw.get(f"/services/{svc}/functions/fn"))
    assert_ok(s.raw21.get(f"/services/{svc}/functions/fn"))
    assert_fc_error(s.raw.get(f"/services/{svc}/functions/missing"), 404, "FunctionNotFound")
    after = s.metrics()
    assert counter(after, "GetFunction", 200) == ok0 + 2
    assert counter(after, "GetFunction", 404) == nf0 + 1
    assert re.search(r"^# TYPE openfc_request_duration_seconds histogram$", after, re.M), \
        "openfc_request_duration_seconds must be a histogram"
    assert re.search(r"^openfc_request_duration_seconds_bucket\{", after, re.M)
    assert re.search(r"^openfc_request_duration_seconds_count", after, re.M)
    # /metrics and /health themselves need no signature.
    assert requests.get(f"{s.endpoint}/metrics", timeout=10).headers["Content-Type"].startswith("text/plain")


def test_one_log_line_per_request(s):
    svc = unique("logsvc")
    r = s.raw.post("/services", json={"serviceName": svc})
    assert_ok(r)
    missing = s.raw.get("/services/" + unique("missing"))
    assert_fc_error(missing, 404, "ServiceNotFound")
    for resp, op, status in ((r, "CreateService", "200"), (missing, "GetService", "404")):
        rid = resp.headers["X-Fc-Request-Id"]
        lines = []
        for _ in range(40):
            lines = [ln for ln in s.log_text().splitlines() if rid in ln and op in ln]
            if lines:
                break
            time.sleep(0.05)
        assert len(lines) == 1, f"expected one log line with {rid} and {op}, got {lines}"
        line = lines[0]
        assert re.search(rf"\b{status}\b", line), f"no status {status} in {line!r}"
        assert re.search(r"latency|duration|elapsed|took", line, re.I), f"no latency in {line!r}"


@pytest.mark.parametrize("client", ["fc2", "fc21", "raw16", "raw21"])
def test_get_account_settings(s, client):
    body = api(s, client).get_account_settings().body
    azs = body["availableAZs"]
    assert isinstance(azs, list) and azs and all(isinstance(z, str) and z for z in azs), body
    assert body["defaultRole"] == f"acs:ram::{s.account_id}:role/aliyunfcdefaultrole", body


def keys_list(s):
    out = s.cli("keys", "list").stdout
    rows = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    for row in rows:
        assert set(row) >= {"accessKeyId", "status", "createdTime"}, row
        assert row["status"] in ("Active", "Inactive"), row
        assert not any("secret" in k.lower() for k in row), f"keys list leaks a secret: {row}"
    assert s.secret not in out
    return {row["accessKeyId"]: row for row in rows}


def eventually(check, timeout=5.0):
    """Key changes made by another process must take effect promptly (allow a short cache)."""
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_keys_cli_lifecycle(s):
    rows = keys_list(s)
    assert rows[s.ak]["status"] == "Active"

    created = json.loads(s.cli("keys", "create").stdout)
    assert set(created) >= {"accountId", "accessKeyId", "accessKeySecret"}, created
    assert created["accountId"] == s.account_id
    ak, secret = created["accessKeyId"], created["accessKeySecret"]
    assert ak != s.ak
    rows = keys_list(s)
    assert rows[ak]["status"] == "Active"
    assert secret not in s.cli("keys", "list").stdout

    client = s.fc2_with(ak, secret)
    svc = unique("keysvc")
    client.create_service(svc)  # the new key works, on the same account
    assert assert_ok(s.raw.get(f"/services/{svc}"))["serviceName"] == svc

    s.cli("keys", "disable", ak)
    assert keys_list(s)[ak]["status"] == "Inactive"
    eventually(lambda: assert_fc_error(s.raw.get("/services", ak=ak, secret=secret), 403, "AccessDenied"))
    fc2_error(403, "AccessDenied", client.get_service, svc)
    assert_ok(s.raw.get("/services"))  # the root key is unaffected

    s.cli("keys", "enable", ak)
    assert keys_list(s)[ak]["status"] == "Active"
    eventually(lambda: assert_ok(s.raw.get("/services", ak=ak, secret=secret)))

    s.cli("keys", "delete", ak)
    assert ak not in keys_list(s)
    eventually(lambda: assert_fc_error(s.raw.get("/services", ak=ak, secret=secret), 403, "InvalidAccessKeyID"))


def test_keys_cli_rejects_unknown_keys(s):
    for verb in ("disable", "enable", "delete"):
        p = s.cli("keys", verb, "LTAINoSuchKey0000000", check=False)
        assert p.returncode != 0, f"keys {verb} of an unknown key succeeded: {p.stdout}"


def test_configuration_through_environment_variables(start_server):
    srv = start_server(config_via_env=True, env={
        "OPENFC_PUBLIC_URL": "http://localhost:{port}", "OPENFC_CODE_URL_TTL": "2", "OPENFC_MAX_CODE_SIZE": "4096"})
    public = f"http://localhost:{srv.port}"
    assert srv.creds["endpoint"] == public
    assert (srv.data_dir / "credentials.json").exists()
    svc = unique("envsvc")
    assert_ok(srv.raw.post("/services", json={"serviceName": svc}))
    r = srv.raw.post(f"/services/{svc}/functions", json={
        "functionName": "big", "runtime": "python3.10", "handler": "index.handler",
        "code": {"zipFile": b64(zips.zip_of_exact_size(4097))}})
    assert_fc_error(r, 400, "EntityTooLarge")
    assert_ok(srv.raw.post(f"/services/{svc}/functions", json={
        "functionName": "fn", "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)}}))
    url = assert_ok(srv.raw.get(f"/services/{svc}/functions/fn/code"))["url"]
    assert url.startswith(public + "/_openfc/code/")
    assert requests.get(url, timeout=30).status_code == 200
    time.sleep(3.5)
    assert requests.get(url, timeout=30).status_code == 403
