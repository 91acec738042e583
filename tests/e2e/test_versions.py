"""Service versions (spec 5.4): publish, list, delete, version/alias qualifiers answering from the snapshot,
ServiceNotEmpty, and code packages pinned by a version surviving garbage collection; on both backends."""

import re

import pytest

import zips
from crc64 import crc64_str
from helpers import assert_recent, b64, parse_time, unique
from resources_helpers import (QUALIFIER_CASES, create_alias, download, err, new_function, new_service, ok, publish,
                               update_function, wait_for_gc)
from sdk import (CLIENTS, ApiError, Facade, api, expect_api_error, fc2_call, if_match_fc2, if_match_raw, present,
                 raw_for, runtime_options, tea_call, tea_models, walk_pages)

PKG_V1 = zips.code_zip("versions-v1")
PKG_V2 = zips.code_zip("versions-v2", extra=b"second package")
PKG_V3 = zips.code_zip("versions-v3", extra=b"third package, longer" * 10)


class Versions(Facade):
    """Publish / list / delete through one client; returns sdk.Resp, raises sdk.ApiError."""

    def publish(self, svc, description=None, if_match=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.publish_version, svc, description,
                            headers=if_match_fc2(if_match))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.publish_service_version_with_options, svc,
                            m.PublishServiceVersionRequest(description=description),
                            m.PublishServiceVersionHeaders(if_match=if_match), runtime_options())
        body = {} if description is None else {"description": description}
        return self._raw("POST", f"/services/{svc}/versions", json=body,
                         headers=if_match_raw(if_match))

    def list(self, svc, limit=None, nextToken=None, startKey=None, direction=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.list_versions, svc, limit=limit, nextToken=nextToken, startKey=startKey,
                            direction=direction)
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.list_service_versions, svc, m.ListServiceVersionsRequest(
                limit=limit, next_token=nextToken, start_key=startKey, direction=direction))
        return self._raw("GET", f"/services/{svc}/versions",
                         params=present(limit=limit, nextToken=nextToken, startKey=startKey, direction=direction))

    def delete(self, svc, version):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.delete_version, svc, version)
        if self.client == "fc21":
            return tea_call(self.server.fc21.delete_service_version, svc, version)
        return self._raw("DELETE", f"/services/{svc}/versions/{version}", expect=204)


def bump(server, svc, fn, n):
    """A change to LATEST, so the next publish has something to snapshot."""
    update_function(server, svc, fn, environmentVariables={"BUMP": str(n)})


def ids(body):
    return [v["versionId"] for v in body["versions"]]


# --- publish ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_publish_returns_version_one_with_description_and_times(server, client):
    svc = new_service(server, "pub")
    new_function(server, svc, pkg=PKG_V1)
    v = Versions(server, client).publish(svc, "first release")
    v.assert_status(200)
    assert v.body["versionId"] == "1" and isinstance(v.body["versionId"], str), v.body
    assert v.body["description"] == "first release"
    assert_recent(v.body["createdTime"])
    assert_recent(v.body["lastModifiedTime"])


@pytest.mark.parametrize("client", CLIENTS)
def test_publish_with_nothing_changed_is_invalid_argument(server, client):
    svc = new_service(server, "same")
    fn, _ = new_function(server, svc)
    publish(server, svc, "one")
    with pytest.raises(ApiError) as ei:
        Versions(server, client).publish(svc, "another description changes nothing")
    assert (ei.value.status, ei.value.code) == (400, "InvalidArgument"), str(ei.value)
    body = err(server.raw.post(f"/services/{svc}/versions", json={}), 400, "InvalidArgument")
    assert re.search(r"nothing|not changed|no change|unchanged", body["ErrorMessage"], re.I), body["ErrorMessage"]
    # A read is not a change either.
    ok(server.raw.get(f"/services/{svc}/functions/{fn}"))
    err(server.raw.post(f"/services/{svc}/versions", json={}), 400, "InvalidArgument")


MUTATIONS = {
    "update service config": lambda s, svc, fn: ok(s.raw.put(f"/services/{svc}", json={"internetAccess": False})),
    "update function config": lambda s, svc, fn: update_function(s, svc, fn, memorySize=512),
    "update function code": lambda s, svc, fn: update_function(s, svc, fn, code={"zipFile": b64(PKG_V2)}),
    "create function": lambda s, svc, fn: new_function(s, svc),
    "delete function": lambda s, svc, fn: ok(s.raw.delete(f"/services/{svc}/functions/{fn}"), 204),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_publish_after_a_change_gives_the_next_id(server, mutation):
    svc = new_service(server, "chg")
    fn, _ = new_function(server, svc, pkg=PKG_V1)
    assert publish(server, svc)["versionId"] == "1"
    MUTATIONS[mutation](server, svc, fn)
    assert publish(server, svc)["versionId"] == "2"


def test_version_ids_are_never_reused(server):
    svc = new_service(server, "reuse")
    fn, _ = new_function(server, svc)
    a = Versions(server, "raw16")
    assert publish(server, svc)["versionId"] == "1"
    a.delete(svc, "1")
    # No version exists any more, so there is nothing to compare with: publishing is allowed, with a fresh id.
    assert publish(server, svc)["versionId"] == "2"
    bump(server, svc, fn, 1)
    assert publish(server, svc)["versionId"] == "3"
    # Deleting the newest version does not hand its id out again either.
    a.delete(svc, "3")
    bump(server, svc, fn, 2)
    assert publish(server, svc)["versionId"] == "4"
    assert ids(a.list(svc, direction="FORWARD").body) == ["2", "4"]


@pytest.mark.parametrize("client", CLIENTS)
def test_publish_honours_if_match(server, client):
    svc = new_service(server, "ifm")
    new_function(server, svc)
    etag = server.raw.get(f"/services/{svc}").headers["ETag"]
    assert etag
    a = Versions(server, client)
    with pytest.raises(ApiError) as ei:
        a.publish(svc, "stale", if_match="0123456789abcdef0123456789abcdef")
    assert (ei.value.status, ei.value.code) == (412, "PreconditionFailed"), str(ei.value)
    assert a.publish(svc, "fresh", if_match=etag).body["versionId"] == "1"


@pytest.mark.parametrize("if_match", ["*", '"{etag}"'])
def test_if_match_any_or_quoted_is_honoured_everywhere(server, if_match):
    """`If-Match: *` (any ETag) and a quoted ETag mean the same on every operation, including the
    ones whose check is a compare-and-set in the database (publish, delete service)."""
    svc = new_service(server, "ifany")
    fn, _ = new_function(server, svc)
    etag = server.raw.get(f"/services/{svc}").headers["ETag"]
    header = {"If-Match": if_match.format(etag=etag)}
    r = server.raw.post(f"/services/{svc}/versions", json={}, headers=header)
    assert r.status_code == 200, r.text
    assert server.raw.delete(f"/services/{svc}/versions/1").status_code == 204
    assert server.raw.delete(f"/services/{svc}/functions/{fn}").status_code == 204
    etag = server.raw.get(f"/services/{svc}").headers["ETag"]
    r = server.raw.delete(f"/services/{svc}", headers={"If-Match": if_match.format(etag=etag)})
    assert r.status_code == 204, r.text


def test_publish_on_a_missing_service(server):
    err(server.raw.post(f"/services/{unique('nosvc')}/versions", json={}), 404, "ServiceNotFound")


# --- list ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def five(server):
    """A service with versions 1..5, described 'v1'..'v5'."""
    svc = new_service(server, "five")
    fn, _ = new_function(server, svc)
    for n in range(1, 6):
        if n > 1:
            bump(server, svc, fn, n)
        assert publish(server, svc, f"v{n}")["versionId"] == str(n)
    return svc


@pytest.mark.parametrize("client", CLIENTS)
def test_list_versions_default_is_backward(server, five, client):
    body = Versions(server, client).list(five).body
    assert ids(body) == ["5", "4", "3", "2", "1"]
    assert body["direction"] == "BACKWARD"
    assert body.get("nextToken") is None, body
    for v in body["versions"]:
        assert v["description"] == f"v{v['versionId']}"
        assert_recent(v["createdTime"])
        assert_recent(v["lastModifiedTime"])


@pytest.mark.parametrize("client", CLIENTS)
def test_list_versions_forward(server, five, client):
    body = Versions(server, client).list(five, direction="FORWARD").body
    assert ids(body) == ["1", "2", "3", "4", "5"]
    assert body["direction"] == "FORWARD"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("direction, pages, tokens", [
    ("BACKWARD", [["5", "4"], ["3", "2"], ["1"]], ["3", "1", None]),
    ("FORWARD", [["1", "2"], ["3", "4"], ["5"]], ["3", "5", None]),
])
def test_list_versions_pages(server, five, client, direction, pages, tokens):
    a = Versions(server, client)
    got_tokens = []

    def page(token):
        body = a.list(five, limit=2, nextToken=token, direction=direction).body
        got_tokens.append(body.get("nextToken"))
        return body

    got_pages = [[v["versionId"] for v in p] for p in walk_pages(page, "versions", max_pages=5)]
    assert (got_pages, got_tokens) == (pages, tokens)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("direction, expected", [("BACKWARD", ["3", "2", "1"]), ("FORWARD", ["3", "4", "5"])])
def test_list_versions_start_key_is_inclusive(server, five, client, direction, expected):
    assert ids(Versions(server, client).list(five, startKey="3", direction=direction).body) == expected


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("direction", ["SIDEWAYS", "backward", "1"])
def test_list_versions_invalid_direction(server, five, client, direction):
    err(raw_for(server, client).get(f"/services/{five}/versions", params={"direction": direction}), 400,
        "InvalidArgument")


def test_list_versions_of_a_service_without_versions(server):
    svc = new_service(server, "nover")
    body = ok(server.raw.get(f"/services/{svc}/versions"))
    assert body["versions"] == []
    assert body.get("nextToken") is None


# --- delete -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_delete_version(server, client):
    svc = new_service(server, "delv")
    fn, _ = new_function(server, svc)
    publish(server, svc)
    bump(server, svc, fn, 1)
    publish(server, svc)
    a = Versions(server, client)
    r = a.delete(svc, "1")
    r.assert_status(204)
    assert ids(a.list(svc).body) == ["2"]
    expect_api_error(404, "VersionNotFound", a.delete, svc, "1")
    expect_api_error(404, "VersionNotFound", api(server, "raw16").get_function, svc, fn, "1")


@pytest.mark.parametrize("version", ["9", "0", "12345"])
def test_delete_unknown_version(server, version):
    svc = new_service(server, "delu")
    new_function(server, svc)
    publish(server, svc)
    err(server.raw.delete(f"/services/{svc}/versions/{version}"), 404, "VersionNotFound")


def test_delete_version_of_a_missing_service(server):
    err(server.raw.delete(f"/services/{unique('nosvc')}/versions/1"), 404, "ServiceNotFound")


@pytest.mark.parametrize("how", ["versionId", "additionalVersionWeight"])
def test_a_version_an_alias_uses_can_be_deleted(server, how):
    """As FC allows: the alias stays; invoking through it answers VersionNotFound for the deleted version."""
    svc = new_service(server, "used")
    fn, _ = new_function(server, svc)
    publish(server, svc)
    bump(server, svc, fn, 1)
    publish(server, svc)
    alias = unique("al")
    if how == "versionId":
        create_alias(server, svc, alias, "1")
    else:
        create_alias(server, svc, alias, "2", additionalVersionWeight={"1": 0.2})
    ok(server.raw.delete(f"/services/{svc}/versions/1"), 204)
    got = ok(server.raw.get(f"/services/{svc}/aliases/{alias}"))
    assert got["versionId"] == ("1" if how == "versionId" else "2"), got
    if how == "versionId":
        body = err(server.raw.post(f"/services/{svc}.{alias}/functions/{fn}/invocations", body=b"x"), 404,
                   "VersionNotFound")
        assert "'1'" in body["ErrorMessage"], body["ErrorMessage"]
    err(server.raw.get(f"/services/{svc}.1/functions/{fn}"), 404, "VersionNotFound")


# --- qualifiers answer from the snapshot --------------------------------------------------------------------
@pytest.fixture(scope="module")
def snap(server):
    """Version 1 = service 'release one' + function fa (PKG_V1, 'a-v1', 256 MB). Afterwards LATEST changes: fa
    gets PKG_V2/'a-v2'/512 MB, fb is created, the service description changes. Alias 'live' -> 1."""
    svc = new_service(server, "snap", description="svc-before", internetAccess=True)
    fa, _ = new_function(server, svc, name=unique("fa"), pkg=PKG_V1, description="a-v1", memorySize=256)
    assert publish(server, svc, "release one")["versionId"] == "1"
    update_function(server, svc, fa, code={"zipFile": b64(PKG_V2)}, description="a-v2", memorySize=512)
    fb, _ = new_function(server, svc, name=unique("fb"), pkg=PKG_V3)
    ok(server.raw.put(f"/services/{svc}", json={"description": "svc-after", "internetAccess": False}))
    alias = unique("live")
    create_alias(server, svc, alias, "1")
    return {"svc": svc, "fa": fa, "fb": fb, "alias": alias}


def qualifiers(snap):
    return {"version": "1", "alias": snap["alias"]}


@pytest.mark.parametrize("qkind", ["version", "alias"])
@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_get_function_with_a_qualifier_returns_the_snapshot(server, snap, client, form, qkind):
    q = qualifiers(snap)[qkind]
    f = api(server, client).get_function(snap["svc"], snap["fa"], qualifier=q, form=form).body
    assert (f["description"], f["memorySize"]) == ("a-v1", 256)
    assert f["codeChecksum"] == crc64_str(PKG_V1)
    assert f["codeSize"] == len(PKG_V1)


@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_get_function_latest_has_moved_on(server, snap, client, form):
    f = api(server, client).get_function(snap["svc"], snap["fa"], qualifier="LATEST", form=form).body
    assert (f["description"], f["memorySize"], f["codeChecksum"]) == ("a-v2", 512, crc64_str(PKG_V2))


@pytest.mark.parametrize("qkind", ["version", "alias"])
@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_get_function_code_with_a_qualifier_downloads_the_snapshot_bytes(server, snap, client, form, qkind):
    q = qualifiers(snap)[qkind]
    code = api(server, client).get_function_code(snap["svc"], snap["fa"], qualifier=q, form=form).body
    assert code["checksum"] == crc64_str(PKG_V1)
    data = download(code["url"])
    assert data == PKG_V1
    assert crc64_str(data) == code["checksum"]


def test_get_function_code_latest_downloads_the_new_bytes(server, snap):
    code = api(server, "raw16").get_function_code(snap["svc"], snap["fa"]).body
    assert code["checksum"] == crc64_str(PKG_V2)
    assert download(code["url"]) == PKG_V2


@pytest.mark.parametrize("qkind", ["version", "alias"])
@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_get_service_with_a_qualifier_returns_the_snapshot(server, snap, client, form, qkind):
    q = qualifiers(snap)[qkind]
    s = api(server, client).get_service(snap["svc"], qualifier=q, form=form).body
    assert s["serviceName"] == snap["svc"]
    assert s["description"] == "release one"
    assert s["internetAccess"] is True


def test_get_service_latest_has_moved_on(server, snap):
    s = api(server, "raw16").get_service(snap["svc"]).body
    assert (s["description"], s["internetAccess"]) == ("svc-after", False)


@pytest.mark.parametrize("qkind", ["version", "alias"])
@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_list_functions_with_a_qualifier_lists_what_existed_at_publish_time(server, snap, client, form, qkind):
    q = qualifiers(snap)[qkind]
    listed = api(server, client).list_functions(snap["svc"], qualifier=q, form=form).body["functions"]
    assert [f["functionName"] for f in listed] == [snap["fa"]]
    assert listed[0]["codeChecksum"] == crc64_str(PKG_V1)
    assert listed[0]["description"] == "a-v1"


@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_list_functions_with_a_qualifier_and_a_prefix(server, snap, client, form):
    a = api(server, client)
    assert [f["functionName"] for f in a.list_functions(snap["svc"], qualifier="1", form=form,
                                                        prefix=snap["fa"]).body["functions"]] == [snap["fa"]]
    assert a.list_functions(snap["svc"], qualifier="1", form=form, prefix=snap["fb"]).body["functions"] == []


def test_list_functions_latest_lists_both(server, snap):
    listed = api(server, "raw16").list_functions(snap["svc"]).body["functions"]
    assert [f["functionName"] for f in listed] == [snap["fa"], snap["fb"]]


@pytest.mark.parametrize("client, form", QUALIFIER_CASES)
def test_function_created_after_publishing_is_not_in_the_version(server, snap, client, form):
    a = api(server, client)
    expect_api_error(404, "FunctionNotFound", a.get_function, snap["svc"], snap["fb"], qualifier="1", form=form)
    expect_api_error(404, "FunctionNotFound", a.get_function_code, snap["svc"], snap["fb"], qualifier="1",
                     form=form)


def test_function_deleted_from_latest_lives_on_in_the_version(server):
    svc = new_service(server, "gone")
    fn, _ = new_function(server, svc, pkg=PKG_V3, description="kept")
    publish(server, svc)
    ok(server.raw.delete(f"/services/{svc}/functions/{fn}"), 204)
    err(server.raw.get(f"/services/{svc}/functions/{fn}"), 404, "FunctionNotFound")
    f = ok(server.raw.get(f"/services/{svc}.1/functions/{fn}"))
    assert (f["description"], f["codeChecksum"]) == ("kept", crc64_str(PKG_V3))
    code = ok(server.raw21.get(f"/services/{svc}/functions/{fn}/code", params={"qualifier": "1"}))
    assert download(code["url"]) == PKG_V3
    assert [x["functionName"] for x in ok(server.raw.get(f"/services/{svc}.1/functions"))["functions"]] == [fn]
    assert ok(server.raw.get(f"/services/{svc}/functions"))["functions"] == []


QUALIFIER_OPS = {
    "GetService": lambda a, svc, fn, q, form: a.get_service(svc, qualifier=q, form=form),
    "GetFunction": lambda a, svc, fn, q, form: a.get_function(svc, fn, qualifier=q, form=form),
    "GetFunctionCode": lambda a, svc, fn, q, form: a.get_function_code(svc, fn, qualifier=q, form=form),
    "ListFunctions": lambda a, svc, fn, q, form: a.list_functions(svc, qualifier=q, form=form),
}


@pytest.mark.parametrize("op", list(QUALIFIER_OPS))
@pytest.mark.parametrize("case, status, code", [
    ("unknown version", 404, "VersionNotFound"),
    ("unknown alias", 404, "AliasNotFound"),
    ("unknown service", 404, "ServiceNotFound"),
])
@pytest.mark.parametrize("client, form", [("fc2", "path"), ("fc21", "query"), ("raw16", "path"),
                                          ("raw21", "query")])
def test_unknown_qualifier_or_service(server, snap, op, case, status, code, client, form):
    svc, q = snap["svc"], {"unknown version": "99", "unknown alias": "no_such_alias"}.get(case, "1")
    if case == "unknown service":
        svc = unique("nosvc")
    expect_api_error(status, code, QUALIFIER_OPS[op], api(server, client), svc, snap["fa"], q, form)


# --- deletion rules -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("contents, word", [
    ("function", "function"),
    ("version", "version"),
    ("alias", "alias"),
])
def test_delete_service_that_is_not_empty(server, contents, word):
    svc = new_service(server, "full")
    fn = None
    if contents == "function":
        fn, _ = new_function(server, svc)
    else:
        publish(server, svc)  # a service without functions can still be published
    alias = None
    if contents == "alias":
        alias = unique("al")
        create_alias(server, svc, alias, "1")
    body = err(server.raw.delete(f"/services/{svc}"), 409, "ServiceNotEmpty")
    assert word in body["ErrorMessage"].lower(), body["ErrorMessage"]
    expect_api_error(409, "ServiceNotEmpty", api(server, "fc2").delete_service, svc)
    expect_api_error(409, "ServiceNotEmpty", api(server, "fc21").delete_service, svc)
    # Empty it in order; then it goes.
    if alias:
        ok(server.raw.delete(f"/services/{svc}/aliases/{alias}"), 204)
        err(server.raw.delete(f"/services/{svc}"), 409, "ServiceNotEmpty")
    if fn:
        ok(server.raw.delete(f"/services/{svc}/functions/{fn}"), 204)
    else:
        ok(server.raw.delete(f"/services/{svc}/versions/1"), 204)
    ok(server.raw.delete(f"/services/{svc}"), 204)
    err(server.raw.get(f"/services/{svc}"), 404, "ServiceNotFound")


def test_service_not_empty_names_everything_in_the_way(server):
    svc = new_service(server, "all")
    new_function(server, svc)
    publish(server, svc)
    create_alias(server, svc, unique("al"), "1")
    msg = err(server.raw.delete(f"/services/{svc}"), 409, "ServiceNotEmpty")["ErrorMessage"].lower()
    for word in ("function", "version", "alias"):
        assert word in msg, msg


# --- code packages pinned by versions -----------------------------------------------------------------------
@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_version_code_survives_garbage_collection(start_server, backend_name):
    s = start_server(args=["--gc-interval", "1", "--gc-grace", "1"], backend=backend_name)
    svc = new_service(s, "gc")
    fn, _ = new_function(s, svc, pkg=PKG_V1)
    assert publish(s, svc)["versionId"] == "1"
    update_function(s, svc, fn, code={"zipFile": b64(PKG_V2)})
    update_function(s, svc, fn, code={"zipFile": b64(PKG_V3)})  # PKG_V2 is now referenced by nothing
    # The collector runs (it removes PKG_V2), so the version's package really is spared, not just unvisited.
    wait_for_gc(s)
    code = ok(s.raw.get(f"/services/{svc}.1/functions/{fn}/code"))
    assert code["checksum"] == crc64_str(PKG_V1)
    data = download(code["url"])
    assert data == PKG_V1 and crc64_str(data) == crc64_str(PKG_V1)
    latest = ok(s.raw.get(f"/services/{svc}/functions/{fn}/code"))
    assert download(latest["url"]) == PKG_V3


def test_version_times_are_ordered(server):
    svc = new_service(server, "times")
    fn, _ = new_function(server, svc)
    v1 = publish(server, svc)
    bump(server, svc, fn, 1)
    v2 = publish(server, svc)
    assert parse_time(v2["createdTime"]) >= parse_time(v1["createdTime"])
