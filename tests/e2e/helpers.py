"""Assertions and small utilities shared by the e2e tests."""

import base64
import datetime as dt
import re
import uuid

import pytest

ERROR_KEYS = {"ErrorCode", "ErrorMessage", "RequestId", "Code", "Message"}


def unique(prefix="t"):
    """A fresh valid resource name (letters, digits, '_'; starts with a letter)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hget(headers, name):
    """Case-insensitive header lookup on any mapping (requests, darabonba, plain dict)."""
    if headers is None:
        return None
    try:
        v = headers.get(name)
        if v is not None:
            return v
    except AttributeError:
        pass
    low = name.lower()
    for k, v in dict(headers).items():
        if k.lower() == low:
            return v
    return None


def assert_request_id(resp):
    rid = resp.headers.get("X-Fc-Request-Id")
    assert rid, f"no X-Fc-Request-Id on {resp.request.method} {resp.url} -> {resp.status_code}"
    return rid


def assert_ok(resp, status=200):
    """A successful raw response: exact status, X-Fc-Request-Id, JSON body (None for 204)."""
    assert resp.status_code == status, \
        f"{resp.request.method} {resp.url}: expected {status}, got {resp.status_code}: {resp.text[:2000]}"
    assert_request_id(resp)
    if status == 204:
        assert resp.content == b"", f"204 with a body: {resp.content[:200]!r}"
        return None
    if resp.request.method == "HEAD":
        return None
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"Content-Type {ctype!r}"
    return resp.json()


def assert_fc_error(resp, status, code):
    """An FC error: exact status and code, both key styles in a JSON body, RequestId = X-Fc-Request-Id."""
    assert resp.status_code == status, \
        f"{resp.request.method} {resp.url}: expected {status} {code}, got {resp.status_code}: {resp.text[:2000]}"
    rid = assert_request_id(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error Content-Type {ctype!r}: {resp.text[:500]}"
    body = resp.json()
    missing = ERROR_KEYS - set(body)
    assert not missing, f"error body lacks {missing}: {body}"
    assert body["ErrorCode"] == code, body
    assert body["Code"] == code, body
    assert isinstance(body["ErrorMessage"], str) and body["ErrorMessage"], body
    assert body["Message"] == body["ErrorMessage"], body
    assert body["RequestId"] == rid, (body, rid)
    return body


def fc2_error(status, code, fn, *args, **kwargs):
    """Call an fc2 SDK method expecting FcError with exactly this status and err_code."""
    from fc2.fc_exceptions import FcError
    with pytest.raises(FcError) as ei:
        fn(*args, **kwargs)
    e = ei.value
    assert (e.status_code, e.err_code) == (status, code), f"{e.status_code} {e.err_code}: {e.message}"
    assert e.request_id and e.request_id != "unknown", e.message
    return e


def tea_error(status, code, fn, *args, **kwargs):
    """Call a 2021 SDK method expecting ClientException with exactly this status and code."""
    from alibabacloud_tea_openapi.exceptions import ClientException
    with pytest.raises(ClientException) as ei:
        fn(*args, **kwargs)
    e = ei.value
    assert (e.status_code, e.code) == (status, code), f"{e.status_code} {e.code}: {e.message}"
    assert e.request_id and e.request_id != "None", e.message
    return e


def assert_subset(sent, got, path="$"):
    """Every key/value sent is echoed (recursively); the server may add keys (defaults, ids)."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{path}: expected object, got {got!r}"
        for k, v in sent.items():
            assert k in got, f"{path}.{k} missing in {sorted(got)}"
            assert_subset(v, got[k], f"{path}.{k}")
    elif isinstance(sent, list):
        assert isinstance(got, list) and len(got) == len(sent), f"{path}: {got!r} != {sent!r}"
        for i, (a, b) in enumerate(zip(sent, got)):
            assert_subset(a, b, f"{path}[{i}]")
    elif isinstance(sent, float):
        assert isinstance(got, (int, float)) and abs(got - sent) < 1e-9, f"{path}: {got!r} != {sent!r}"
    else:
        assert got == sent and type(got) is type(sent), f"{path}: {got!r} != {sent!r}"


_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def parse_time(s):
    """createdTime/lastModifiedTime: RFC 3339 (`2020-04-01T08:15:27Z`) or `2016-08-15T16:06:05.000+0000`."""
    m = _TIME_RE.match(s or "")
    assert m, f"not an RFC 3339 timestamp: {s!r}"
    base = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    frac = float(m.group(2) or 0)
    tz = m.group(3)
    offset = dt.timedelta(0)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (base - offset).replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=frac)


def assert_recent(s, slack=300):
    t = parse_time(s)
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - t).total_seconds()) < slack, f"{s} is not close to now ({now.isoformat()})"

