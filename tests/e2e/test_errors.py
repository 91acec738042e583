"""Error codes (spec section 4 + the UNCONFIRMED choices fixed by the project), authentication failures,
If-Match, and how the official SDKs surface errors. SQLite."""

import threading
import time

import pytest

import rawsign
import zips
from helpers import assert_fc_error, assert_ok, b64, fc2_error, tea_error, unique
from sdk import api

PKG = zips.code_zip("errors")
PREFIXES = [rawsign.PREFIX_2016, rawsign.PREFIX_2021]


@pytest.fixture(scope="module")
def s(sqlite_server):
    return sqlite_server


def create_function(s, svc, name):
    """Creates function `name` in `svc`; its ETag."""
    created = s.raw.post(f"/services/{svc}/functions", json={
        "functionName": name, "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)}})
    assert_ok(created)
    return created.headers["ETag"]


@pytest.fixture(scope="module")
def svc(s):
    name = unique("errsvc")
    assert_ok(s.raw.post("/services", json={"serviceName": name}))
    create_function(s, name, "fn")
    return name


# --- authentication ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", PREFIXES)
def test_no_authorization_header(s, prefix):
    r = s.raw.get(prefix + "/services", sign=False)
    assert_fc_error(r, 400, "MissingRequiredHeader")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_fc_signature_without_date(s, prefix):
    r = s.raw.get(prefix + "/services", omit_date=True)
    assert_fc_error(r, 400, "MissingRequiredHeader")


@pytest.mark.parametrize("auth", ["Bearer abc", "FC", "FC ", "FC akonly", "Basic dXNlcjpwYXNz",
                                  "ACS3-HMAC-SHA256 nonsense", "garbage"])
def test_unparseable_authorization(s, auth):
    r = s.raw.get("/services", auth_header=auth)
    assert_fc_error(r, 400, "InvalidArgument")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_unknown_access_key(s, prefix):
    r = s.raw.get(prefix + "/services", ak="LTAINoSuchKey0000000", secret="whatever")
    assert_fc_error(r, 403, "InvalidAccessKeyID")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_wrong_secret(s, prefix):
    r = s.raw.get(prefix + "/services", secret=s.secret + "x")
    assert_fc_error(r, 403, "SignatureNotMatch")


def test_signature_for_another_path(s, svc):
    r = s.raw.get(f"/services/{svc}", sign_path="/2016-08-15/services")
    assert_fc_error(r, 403, "SignatureNotMatch")


def test_signature_for_another_method(s):
    good = rawsign.authorization(s.ak, s.secret, "GET", "/2016-08-15/services",
                                 {"Content-Type": "application/json", "Date": rawsign.http_date()})
    r = s.raw.post("/services", json={"serviceName": unique("x")}, auth_header=good)
    assert_fc_error(r, 403, "SignatureNotMatch")


def test_signed_header_changed_after_signing(s):
    date = rawsign.http_date()
    auth = rawsign.authorization(s.ak, s.secret, "GET", "/2016-08-15/services",
                                 {"Content-Type": "application/json", "Date": date, "x-fc-trace-id": "a"})
    r = s.raw.get("/services", date=date, headers={"x-fc-trace-id": "b"}, auth_header=auth)
    assert_fc_error(r, 403, "SignatureNotMatch")


@pytest.mark.parametrize("skew_minutes", [-20, 20, -60 * 24])
def test_clock_skew_beyond_15_minutes(s, skew_minutes):
    r = s.raw.get("/services", date=time.time() + skew_minutes * 60)
    assert_fc_error(r, 403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("skew_minutes", [-10, 10])
def test_clock_skew_within_15_minutes(s, skew_minutes):
    assert_ok(s.raw.get("/services", date=time.time() + skew_minutes * 60))


def test_unparseable_date_is_rejected(s):
    """Not fixed by the contract: any 400/403 FC error will do, but never a success."""
    r = s.raw.get("/services", date="yesterday at noon")
    assert r.status_code in (400, 403), r.status_code
    assert r.json().get("ErrorCode") in ("InvalidArgument", "MissingRequiredHeader", "RequestTimeTooSkewed",
                                         "SignatureNotMatch", "AccessDenied"), r.text
    assert_fc_error(r, r.status_code, r.json()["ErrorCode"])


def test_2021_sdk_with_a_wrong_secret_or_unknown_key(s):
    from conftest import tea_client
    wrong = tea_client(s.endpoint_hostport, s.ak, s.secret + "x")
    tea_error(403, "SignatureNotMatch", wrong.get_account_settings)
    unknown = tea_client(s.endpoint_hostport, "LTAINoSuchKey0000000", "x")
    tea_error(403, "InvalidAccessKeyID", unknown.get_account_settings)


def test_fc2_sdk_with_a_wrong_secret_or_unknown_key(s):
    fc2_error(403, "SignatureNotMatch", s.fc2_with(s.ak, s.secret + "x").list_services)
    fc2_error(403, "InvalidAccessKeyID", s.fc2_with("LTAINoSuchKey0000000", "x").list_services)


def test_authentication_comes_before_not_found(s):
    r = s.raw.get("/services/" + unique("nope"), secret="wrong")
    assert_fc_error(r, 403, "SignatureNotMatch")


# --- routing, not found, conflicts ---------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/2016-08-15/no-such-thing"),
    ("GET", "/2021-04-06/services/svc/functions/fn/no-such-thing"),
    ("PATCH", "/2016-08-15/services"),
    ("POST", "/2021-04-06/services/svc/functions/fn"),
    ("GET", "/2099-01-01/services"),
    ("GET", "/"),
])
def test_unknown_path_is_path_not_supported(s, method, path):
    assert_fc_error(s.raw.request(method, path), 400, "PathNotSupported")


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("method, path, code", [
    ("GET", "/services/{missing}", "ServiceNotFound"),
    ("PUT", "/services/{missing}", "ServiceNotFound"),
    ("DELETE", "/services/{missing}", "ServiceNotFound"),
    ("GET", "/services/{missing}/functions", "ServiceNotFound"),
    ("POST", "/services/{missing}/functions", "ServiceNotFound"),
    ("GET", "/services/{missing}/functions/fn", "ServiceNotFound"),
    ("GET", "/services/{svc}/functions/{missing}", "FunctionNotFound"),
    ("PUT", "/services/{svc}/functions/{missing}", "FunctionNotFound"),
    ("DELETE", "/services/{svc}/functions/{missing}", "FunctionNotFound"),
    ("GET", "/services/{svc}/functions/{missing}/code", "FunctionNotFound"),
    ("GET", "/services/{svc}.LATEST/functions/{missing}", "FunctionNotFound"),
])
def test_not_found(s, svc, prefix, method, path, code):
    path = prefix + path.format(svc=svc, missing=unique("missing"))
    body = None
    if method == "POST":
        body = {"functionName": "fn", "runtime": "python3.10", "handler": "index.handler",
                "code": {"zipFile": b64(PKG)}}
    elif method == "PUT":
        body = {"description": "x"}
    assert_fc_error(s.raw.request(method, path, json=body), 404, code)


def test_already_exists(s, svc):
    assert_fc_error(s.raw.post("/services", json={"serviceName": svc}), 409, "ServiceAlreadyExists")
    r = s.raw21.post(f"/services/{svc}/functions", json={
        "functionName": "fn", "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)}})
    assert_fc_error(r, 409, "FunctionAlreadyExists")


def test_sdks_surface_error_codes(s, svc):
    missing = unique("missing")
    fc2_error(404, "ServiceNotFound", s.fc2.get_service, missing)
    fc2_error(404, "FunctionNotFound", s.fc2.get_function, svc, missing)
    fc2_error(409, "ServiceAlreadyExists", s.fc2.create_service, svc)
    m = api(s, "fc21").m
    tea_error(404, "ServiceNotFound", s.fc21.get_service, missing, m.GetServiceRequest())
    tea_error(404, "FunctionNotFound", s.fc21.get_function, svc, missing, m.GetFunctionRequest())
    tea_error(409, "ServiceAlreadyExists", s.fc21.create_service, m.CreateServiceRequest(service_name=svc))


def test_delete_non_empty_service(s):
    name = unique("full")
    assert_ok(s.raw.post("/services", json={"serviceName": name}))
    assert_ok(s.raw.post(f"/services/{name}/functions", json={
        "functionName": "fn", "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(PKG)}}))
    assert_fc_error(s.raw.delete(f"/services/{name}"), 409, "ServiceNotEmpty")
    fc2_error(409, "ServiceNotEmpty", s.fc2.delete_service, name)
    assert_ok(s.raw.get(f"/services/{name}/functions/fn"))
    assert_ok(s.raw.delete(f"/services/{name}/functions/fn"), 204)
    assert_ok(s.raw.delete(f"/services/{name}"), 204)


# --- If-Match ------------------------------------------------------------------------------------------------

def test_if_match_on_service_update_and_delete(s):
    name = unique("etag")
    created = s.raw.post("/services", json={"serviceName": name})
    assert_ok(created)
    etag = created.headers["ETag"]
    assert s.raw.get(f"/services/{name}").headers["ETag"] == etag

    assert_fc_error(s.raw.put(f"/services/{name}", json={"description": "x"}, headers={"If-Match": "nope"}),
                    412, "PreconditionFailed")
    assert assert_ok(s.raw.get(f"/services/{name}"))["description"] != "x"

    r = s.raw.put(f"/services/{name}", json={"description": "y"}, headers={"If-Match": etag})
    assert assert_ok(r)["description"] == "y"
    etag2 = r.headers["ETag"]
    assert etag2 != etag
    # The old ETag is stale now, for update and delete.
    assert_fc_error(s.raw.put(f"/services/{name}", json={"description": "z"}, headers={"If-Match": etag}),
                    412, "PreconditionFailed")
    assert_fc_error(s.raw.delete(f"/services/{name}", headers={"If-Match": etag}), 412, "PreconditionFailed")
    assert_ok(s.raw.delete(f"/services/{name}", headers={"If-Match": etag2}), 204)


def test_if_match_on_function_update_and_delete(s, svc):
    name = unique("fnetag")
    etag = create_function(s, svc, name)
    path = f"/services/{svc}/functions/{name}"
    assert_fc_error(s.raw.put(path, json={"timeout": 9}, headers={"If-Match": etag + "0"}), 412,
                    "PreconditionFailed")
    assert assert_ok(s.raw.get(path))["timeout"] != 9
    r = s.raw.put(path, json={"timeout": 9}, headers={"If-Match": etag})
    assert assert_ok(r)["timeout"] == 9
    assert_fc_error(s.raw.delete(path, headers={"If-Match": etag}), 412, "PreconditionFailed")
    assert_ok(s.raw.delete(path, headers={"If-Match": r.headers["ETag"]}), 204)


def test_if_match_through_the_sdks(s, svc):
    name = unique("fnsdketag")
    f = api(s, "fc2").create_function(svc, {"functionName": name, "runtime": "python3.10",
                                            "handler": "index.handler", "code": {"zipFile": b64(PKG)}})
    fc2_error(412, "PreconditionFailed", s.fc2.update_function, svc, name, description="a",
              headers={"if-match": "stale"})
    r = s.fc2.update_function(svc, name, description="b", headers={"if-match": f.etag})
    assert r.data["description"] == "b"
    m = api(s, "fc21").m
    from alibabacloud_tea_util.models import RuntimeOptions
    tea_error(412, "PreconditionFailed", s.fc21.update_function_with_options, svc, name,
              m.UpdateFunctionRequest(description="c"), m.UpdateFunctionHeaders(if_match=f.etag), RuntimeOptions())
    ok = s.fc21.update_function_with_options(svc, name, m.UpdateFunctionRequest(description="d"),
                                             m.UpdateFunctionHeaders(if_match=r.headers["etag"]), RuntimeOptions())
    assert ok.body.description == "d"


# --- request ids ---------------------------------------------------------------------------------------------

def test_every_response_has_a_distinct_request_id(s, svc):
    responses = [
        s.raw.get("/services"), s.raw.get(f"/services/{svc}"), s.raw21.get(f"/services/{svc}/functions/fn"),
        s.raw.get("/services/" + unique("missing")), s.raw.get("/nope"), s.raw.get("/services", sign=False),
        s.raw.get("/services", secret="bad"),
    ]
    ids = [r.headers.get("X-Fc-Request-Id") for r in responses]
    assert all(ids), [(r.status_code, i) for r, i in zip(responses, ids)]
    assert len(set(ids)) == len(ids), ids


# --- concurrency ---------------------------------------------------------------------------------------------

def race(s, n, send):
    """`send(raw, i)` from n threads at once, each with its own client (a session per thread); the responses."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        raw = s.raw
        barrier.wait()
        results[i] = send(raw, i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_updates_with_the_same_if_match(s, svc):
    """8 updates race with the same ETag: exactly one wins, the other seven get 412."""
    name = unique("race")
    etag = create_function(s, svc, name)
    results = race(s, 8, lambda raw, i: raw.put(f"/services/{svc}/functions/{name}",
                                                json={"description": f"writer-{i}"}, headers={"If-Match": etag}))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * 7, statuses
    for r in results:
        if r.status_code == 412:
            assert_fc_error(r, 412, "PreconditionFailed")
    winner = next(i for i, r in enumerate(results) if r.status_code == 200)
    got = assert_ok(s.raw.get(f"/services/{svc}/functions/{name}"))
    assert got["description"] == f"writer-{winner}"


def test_concurrent_creates_of_the_same_service(s):
    name = unique("samename")
    results = race(s, 8, lambda raw, i: raw.post("/services", json={"serviceName": name,
                                                                    "description": f"creator-{i}"}))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [409] * 7, statuses
    for r in results:
        if r.status_code == 409:
            assert_fc_error(r, 409, "ServiceAlreadyExists")
