"""Aliases (spec 5.4): CRUD through both SDKs and both prefixes, If-Match, pagination and validation; on both
backends."""

import pytest

from helpers import assert_recent, unique
from resources_helpers import err, new_function, new_service, ok, publish, update_function
from sdk import (CLIENTS, Facade, expect_api_error, fc2_call, if_match_fc2, if_match_raw, present, raw_for,
                 runtime_options, tea_call, tea_models, walk_pages)

ROUTE_POLICY = {"condition": "AND", "policyItems": [
    {"type": "Header", "key": "x-canary", "value": "yes", "operator": "="},
    {"type": "Cookie", "key": "uid", "value": "42", "operator": "="},
    {"type": "Query", "key": "beta", "value": "1", "operator": "="},
]}


class Aliases(Facade):
    """Alias CRUD through one client; returns sdk.Resp, raises sdk.ApiError."""

    def create(self, svc, body):
        if self.client == "fc2":
            extra = set(body) - {"aliasName", "versionId", "description", "additionalVersionWeight"}
            assert not extra, f"aliyun-fc2 cannot send {extra}"
            return fc2_call(self.server.fc2.create_alias, svc, body["aliasName"], body["versionId"],
                            description=body.get("description"),
                            additionalVersionWeight=body.get("additionalVersionWeight"))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.create_alias, svc, m.CreateAliasRequest().from_map(body))
        return self._raw("POST", f"/services/{svc}/aliases", json=body)

    def get(self, svc, name):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.get_alias, svc, name)
        if self.client == "fc21":
            return tea_call(self.server.fc21.get_alias, svc, name)
        return self._raw("GET", f"/services/{svc}/aliases/{name}")

    def update(self, svc, name, body, if_match=None):
        if self.client == "fc2":
            extra = set(body) - {"versionId", "description", "additionalVersionWeight"}
            assert not extra, f"aliyun-fc2 cannot send {extra}"
            return fc2_call(self.server.fc2.update_alias, svc, name, body.get("versionId"),
                            description=body.get("description"),
                            additionalVersionWeight=body.get("additionalVersionWeight"),
                            headers=if_match_fc2(if_match))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.update_alias_with_options, svc, name,
                            m.UpdateAliasRequest().from_map(body), m.UpdateAliasHeaders(if_match=if_match),
                            runtime_options())
        return self._raw("PUT", f"/services/{svc}/aliases/{name}", json=body,
                         headers=if_match_raw(if_match))

    def delete(self, svc, name, if_match=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.delete_alias, svc, name,
                            headers=if_match_fc2(if_match))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.delete_alias_with_options, svc, name,
                            m.DeleteAliasHeaders(if_match=if_match), runtime_options())
        return self._raw("DELETE", f"/services/{svc}/aliases/{name}",
                         headers=if_match_raw(if_match), expect=204)

    def list(self, svc, limit=None, nextToken=None, prefix=None, startKey=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.list_aliases, svc, limit=limit, nextToken=nextToken, prefix=prefix,
                            startKey=startKey)
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.list_aliases, svc, m.ListAliasesRequest(
                limit=limit, next_token=nextToken, prefix=prefix, start_key=startKey))
        return self._raw("GET", f"/services/{svc}/aliases",
                         params=present(limit=limit, nextToken=nextToken, prefix=prefix, startKey=startKey))


@pytest.fixture(scope="module")
def svc(server):
    """A service with versions 1, 2, 3 and 4."""
    name = new_service(server, "alsvc")
    fn, _ = new_function(server, name)
    for n in (1, 2, 3, 4):
        if n > 1:
            update_function(server, name, fn, environmentVariables={"N": str(n)})
        assert publish(server, name)["versionId"] == str(n)
    return name


def full_body(client, name):
    body = {"aliasName": name, "versionId": "1", "description": "canary alias",
            "additionalVersionWeight": {"2": 0.1, "3": 0.25}}
    if client != "fc2":
        body.update(resolvePolicy="Content", routePolicy=ROUTE_POLICY)
    return body


def assert_alias(got, sent):
    for k, v in sent.items():
        if k == "additionalVersionWeight":
            assert {kk: float(vv) for kk, vv in got[k].items()} == v, got[k]
        else:
            assert got[k] == v, (k, got[k], v)


# --- CRUD ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_create_get_list_alias(server, svc, client):
    a = Aliases(server, client)
    name = unique("al")
    body = full_body(client, name)
    created = a.create(svc, body)
    created.assert_status(200)
    assert_alias(created.body, body)
    assert_recent(created.body["createdTime"])
    assert_recent(created.body["lastModifiedTime"])
    assert created.etag, "CreateAlias must send an ETag"

    got = a.get(svc, name)
    assert_alias(got.body, body)
    assert got.body["createdTime"] == created.body["createdTime"]
    assert got.etag == created.etag

    listed = a.list(svc, prefix=name).body["aliases"]
    assert [x["aliasName"] for x in listed] == [name]
    assert_alias(listed[0], body)


@pytest.mark.parametrize("client", CLIENTS)
def test_update_alias_is_partial_and_keeps_created_time(server, svc, client):
    a = Aliases(server, client)
    name = unique("al")
    created = a.create(svc, full_body(client, name))
    upd = a.update(svc, name, {"description": "renamed"})
    assert upd.body["description"] == "renamed"
    assert upd.body["versionId"] == "1"
    assert {k: float(v) for k, v in upd.body["additionalVersionWeight"].items()} == {"2": 0.1, "3": 0.25}
    assert upd.body["createdTime"] == created.body["createdTime"]
    assert upd.etag and upd.etag != created.etag
    if client != "fc2":
        assert upd.body["resolvePolicy"] == "Content"
        assert upd.body["routePolicy"] == ROUTE_POLICY

    moved = a.update(svc, name, {"versionId": "3", "additionalVersionWeight": {"1": 0.5}})
    assert moved.body["versionId"] == "3"
    assert {k: float(v) for k, v in moved.body["additionalVersionWeight"].items()} == {"1": 0.5}
    # The alias's own version among the weights: accepted and echoed, as FC does (the SDKs' tests send it).
    own = a.update(svc, name, {"additionalVersionWeight": {"3": 0.9}})
    assert {k: float(v) for k, v in own.body["additionalVersionWeight"].items()} == {"3": 0.9}
    own = a.update(svc, name, {"additionalVersionWeight": {"1": 0.5}})
    assert moved.body["description"] == "renamed"
    got = a.get(svc, name).body
    assert (got["versionId"], got["description"]) == ("3", "renamed")


@pytest.mark.parametrize("client", CLIENTS)
def test_delete_alias(server, svc, client):
    a = Aliases(server, client)
    name = unique("al")
    a.create(svc, {"aliasName": name, "versionId": "2"})
    a.delete(svc, name).assert_status(204)
    expect_api_error(404, "AliasNotFound", a.get, svc, name)
    assert a.list(svc, prefix=name).body["aliases"] == []


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_alias_defaults_and_numeric_version_id(server, svc, client):
    a = Aliases(server, client)
    name = unique("al")
    got = a.create(svc, {"aliasName": name, "versionId": 2}).body
    assert got["versionId"] == "2"
    assert got["resolvePolicy"] == "Random"
    assert got.get("additionalVersionWeight") in ({}, None), got
    assert got.get("description") in ("", None), got


@pytest.mark.parametrize("client", ["raw16", "raw21", "fc21"])
@pytest.mark.parametrize("name", ["a", "A-b_c", "x" * 128, "canary-2"])
def test_valid_alias_names(server, svc, client, name):
    # Each alias name may exist once per service; the backend-scoped service is shared by the clients.
    name = name if client == "raw16" else f"{name[:120]}_{client}"
    got = Aliases(server, client).create(svc, {"aliasName": name, "versionId": "1"}).body
    assert got["aliasName"] == name


# --- If-Match -----------------------------------------------------------------------------------------------
STALE = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("client", CLIENTS)
def test_update_and_delete_alias_honour_if_match(server, svc, client):
    a = Aliases(server, client)
    name = unique("al")
    etag = a.create(svc, {"aliasName": name, "versionId": "1"}).etag
    expect_api_error(412, "PreconditionFailed", a.update, svc, name, {"description": "x"}, if_match=STALE)
    upd = a.update(svc, name, {"description": "x"}, if_match=etag)
    assert upd.body["description"] == "x"
    expect_api_error(412, "PreconditionFailed", a.delete, svc, name, if_match=etag)  # the update changed it
    expect_api_error(412, "PreconditionFailed", a.delete, svc, name, if_match=STALE)
    a.get(svc, name)
    a.delete(svc, name, if_match=upd.etag).assert_status(204)


# --- errors -------------------------------------------------------------------------------------------------
CREATE_ERRORS = [
    # (case, body without aliasName, status, codes)
    ("versionId missing", {}, 400, {"InvalidArgument"}),
    ("versionId does not exist", {"versionId": "99"}, 404, {"VersionNotFound"}),
    ("negative weight", {"versionId": "1", "additionalVersionWeight": {"2": -0.1}}, 400, {"InvalidArgument"}),
    ("weight above 1", {"versionId": "1", "additionalVersionWeight": {"2": 1.1}}, 400, {"InvalidArgument"}),
    ("weights sum above 1", {"versionId": "1", "additionalVersionWeight": {"2": 0.6, "3": 0.5}}, 400,
     {"InvalidArgument"}),
    ("weight names a missing version", {"versionId": "1", "additionalVersionWeight": {"99": 0.1}}, 404,
     {"VersionNotFound"}),
    ("resolvePolicy unknown", {"versionId": "1", "resolvePolicy": "Weighted"}, 400, {"InvalidArgument"}),
]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case, body, status, codes", CREATE_ERRORS, ids=[c[0] for c in CREATE_ERRORS])
def test_create_alias_errors(server, svc, client, case, body, status, codes):
    name = unique("bad")
    r = raw_for(server, client).post(f"/services/{svc}/aliases", json={"aliasName": name, **body})
    assert r.status_code == status, (r.status_code, r.text)
    code = r.json().get("ErrorCode")
    assert code in codes, r.text
    err(r, status, code)
    err(server.raw.get(f"/services/{svc}/aliases/{name}"), 404, "AliasNotFound")


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("name", ["LATEST", "1abc", "9", "-abc", "has space", "dot.ted", "x" * 129, ""])
def test_create_alias_invalid_name(server, svc, client, name):
    err(raw_for(server, client).post(f"/services/{svc}/aliases", json={"aliasName": name, "versionId": "1"}), 400,
        "InvalidArgument")


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("weights", [{"2": 1.0}, {"2": 0.5, "3": 0.5}, {"2": 0}, {"3": 0.999},
                                     {"2": 0.1, "3": 0.2, "4": 0.7}],
                         ids=["one", "sum-one", "zero", "almost-one", "sum-one-in-decimal"])
def test_create_alias_weight_boundaries_are_accepted(server, svc, client, weights):
    # 0.1 + 0.2 + 0.7 is 1.0000000000000002 in binary floating point, but the weights sum to exactly 1.
    got = ok(raw_for(server, client).post(f"/services/{svc}/aliases", json={
        "aliasName": unique("w"), "versionId": "1", "additionalVersionWeight": weights}))
    assert {k: float(v) for k, v in got["additionalVersionWeight"].items()} == weights


@pytest.mark.parametrize("client", CLIENTS)
def test_duplicate_alias(server, svc, client):
    a = Aliases(server, client)
    name = unique("dup")
    a.create(svc, {"aliasName": name, "versionId": "1"})
    expect_api_error(409, "AliasAlreadyExists", a.create, svc, {"aliasName": name, "versionId": "2"})
    assert a.get(svc, name).body["versionId"] == "1"


@pytest.mark.parametrize("client", CLIENTS)
def test_unknown_alias(server, svc, client):
    a = Aliases(server, client)
    name = unique("none")
    expect_api_error(404, "AliasNotFound", a.get, svc, name)
    expect_api_error(404, "AliasNotFound", a.update, svc, name, {"description": "x"})
    expect_api_error(404, "AliasNotFound", a.delete, svc, name)


@pytest.mark.parametrize("client", CLIENTS)
def test_aliases_of_an_unknown_service(server, client):
    a = Aliases(server, client)
    missing = unique("nosvc")
    expect_api_error(404, "ServiceNotFound", a.create, missing, {"aliasName": "a", "versionId": "1"})
    expect_api_error(404, "ServiceNotFound", a.get, missing, "a")
    expect_api_error(404, "ServiceNotFound", a.list, missing)


UPDATE_ERRORS = [
    ("versionId does not exist", {"versionId": "99"}, 404, {"VersionNotFound"}),
    ("weight above 1", {"additionalVersionWeight": {"3": 1.5}}, 400, {"InvalidArgument"}),
    ("negative weight", {"additionalVersionWeight": {"3": -1}}, 400, {"InvalidArgument"}),
    ("weights sum above 1", {"additionalVersionWeight": {"2": 0.7, "3": 0.7}}, 400, {"InvalidArgument"}),
    ("weight names a missing version", {"additionalVersionWeight": {"42": 0.1}}, 404, {"VersionNotFound"}),
    ("resolvePolicy unknown", {"resolvePolicy": "Nope"}, 400, {"InvalidArgument"}),
]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case, body, status, codes", UPDATE_ERRORS, ids=[c[0] for c in UPDATE_ERRORS])
def test_update_alias_errors_leave_it_unchanged(server, svc, client, case, body, status, codes):
    name = unique("upd")
    raw = raw_for(server, client)
    before = ok(raw.post(f"/services/{svc}/aliases", json={"aliasName": name, "versionId": "1",
                                                           "additionalVersionWeight": {"2": 0.3}}))
    r = raw.put(f"/services/{svc}/aliases/{name}", json=body)
    assert r.status_code == status, (r.status_code, r.text)
    code = r.json().get("ErrorCode")
    assert code in codes, r.text
    err(r, status, code)
    after = ok(raw.get(f"/services/{svc}/aliases/{name}"))
    assert after == before


# --- pagination ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def five(server):
    """A service of its own with version 1 and aliases p_0..p_4 plus q_0."""
    name = new_service(server, "alpg")
    new_function(server, name)
    publish(server, name)
    aliases = [f"p_{i}" for i in range(5)]
    for al in aliases + ["q_0"]:
        ok(server.raw.post(f"/services/{name}/aliases", json={"aliasName": al, "versionId": "1"}))
    return name, aliases


@pytest.mark.parametrize("client", CLIENTS)
def test_list_aliases_pages(server, five, client):
    svc, aliases = five
    a = Aliases(server, client)
    pages = walk_pages(lambda token: a.list(svc, limit=2, prefix="p_", nextToken=token).body, "aliases",
                       max_pages=10)
    assert [[x["aliasName"] for x in page] for page in pages] == [aliases[0:2], aliases[2:4], aliases[4:5]]


@pytest.mark.parametrize("client", CLIENTS)
def test_list_aliases_start_key_and_prefix(server, five, client):
    svc, aliases = five
    a = Aliases(server, client)
    assert [x["aliasName"] for x in a.list(svc, startKey="p_3").body["aliases"]] == ["p_3", "p_4", "q_0"]
    assert [x["aliasName"] for x in a.list(svc, prefix="q").body["aliases"]] == ["q_0"]
    assert [x["aliasName"] for x in a.list(svc).body["aliases"]] == aliases + ["q_0"]
    assert a.list(svc, prefix="zzz").body["aliases"] == []


def test_list_aliases_last_page_has_no_token(server, five):
    svc, _ = five
    body = ok(server.raw.get(f"/services/{svc}/aliases", params={"limit": 6}))
    assert len(body["aliases"]) == 6
    assert body.get("nextToken") is None
