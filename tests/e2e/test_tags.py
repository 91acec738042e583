"""Tags (spec 5.10, 9): TagResource / UntagResource / GetResourceTags / ListTaggedResources through both SDKs
and both prefixes, ListServices tag filters, ARN and tag validation, --region; on both backends."""

import pytest

from helpers import unique
from resources_helpers import err, new_service, ok, service_arn
from sdk import CLIENTS, Facade, expect_api_error, fc2_call, present, raw_for, tea_call, tea_models, walk_pages


class Tags(Facade):
    """The four tag operations through one client; returns sdk.Resp, raises sdk.ApiError."""

    def tag(self, arn, tags):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.tag_resource, arn, tags)
        if self.client == "fc21":
            return tea_call(self.server.fc21.tag_resource, tea_models().TagResourceRequest(resource_arn=arn,
                                                                                          tags=tags))
        return self._raw("POST", "/tag", json={"resourceArn": arn, "tags": tags})

    def untag(self, arn, keys=None, all=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.untag_resource, arn, keys if keys is not None else [], bool(all))
        if self.client == "fc21":
            return tea_call(self.server.fc21.untag_resource, tea_models().UntagResourceRequest(
                resource_arn=arn, tag_keys=keys, all=all))
        body = {"resourceArn": arn}
        if keys is not None:
            body["tagKeys"] = keys
        if all is not None:
            body["all"] = all
        # aliyun-fc2 untags with DELETE /tag, the 2021 SDK with PUT /tag.
        return self._raw("DELETE" if self.client == "raw16" else "PUT", "/tag", json=body)

    def get(self, arn):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.get_resource_tags, arn)
        if self.client == "fc21":
            return tea_call(self.server.fc21.get_resource_tags, tea_models().GetResourceTagsRequest(resource_arn=arn))
        return self._raw("GET", "/tag", params={"resourceArn": arn})

    def list(self, limit=None, nextToken=None):
        assert self.client != "fc2", "aliyun-fc2 (Python) has no ListTaggedResources"
        if self.client == "fc21":
            return tea_call(self.server.fc21.list_tagged_resources, tea_models().ListTaggedResourcesRequest(
                limit=limit, next_token=nextToken))
        return self._raw("GET", "/tags", params=present(limit=limit, nextToken=nextToken))


def tags_of(server, arn):
    return ok(server.raw.get("/tag", params={"resourceArn": arn}))["tags"]


# --- tag / get / untag --------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_tag_get_untag(server, client):
    a = Tags(server, client)
    svc = new_service(server, "tag")
    arn = service_arn(server, svc)
    tagged = a.tag(arn, {"env": "prod", "team": "core", "cost": "42"})
    tagged.assert_status(200)
    if client in ("fc2", "raw16", "raw21"):  # the 2021 SDK reads no body
        assert isinstance(tagged.body, dict) and tagged.body.get("requestId"), tagged.body
    got = a.get(arn).body
    assert got["resourceArn"] == arn
    assert got["tags"] == {"env": "prod", "team": "core", "cost": "42"}

    untagged = a.untag(arn, keys=["team", "no-such-key"])
    untagged.assert_status(200)
    if client in ("fc2", "raw16", "raw21"):
        assert isinstance(untagged.body, dict) and untagged.body.get("requestId"), untagged.body
    assert a.get(arn).body["tags"] == {"env": "prod", "cost": "42"}

    a.untag(arn, keys=[], all=True)
    assert a.get(arn).body["tags"] == {}


@pytest.mark.parametrize("client", CLIENTS)
def test_untagged_service_has_empty_tags(server, client):
    svc = new_service(server, "notag")
    got = Tags(server, client).get(service_arn(server, svc)).body
    assert got["resourceArn"] == service_arn(server, svc)
    assert got["tags"] == {}


def test_tagging_again_adds_and_overwrites(server):
    svc = new_service(server, "retag")
    arn = service_arn(server, svc)
    a = Tags(server, "raw16")
    a.tag(arn, {"a": "1", "b": "2"})
    a.tag(arn, {"b": "two", "c": "3"})
    assert tags_of(server, arn) == {"a": "1", "b": "two", "c": "3"}


def test_twenty_tags_are_allowed(server):
    svc = new_service(server, "t20")
    arn = service_arn(server, svc)
    tags = {f"k{i:02d}": f"v{i}" for i in range(20)}
    ok(server.raw.post("/tag", json={"resourceArn": arn, "tags": tags}))
    assert tags_of(server, arn) == tags
    # Re-tagging existing keys keeps the count at 20.
    ok(server.raw.post("/tag", json={"resourceArn": arn, "tags": {"k00": "new"}}))


def test_more_than_twenty_tags_in_total(server):
    svc = new_service(server, "t21")
    arn = service_arn(server, svc)
    first = {f"k{i:02d}": "v" for i in range(15)}
    ok(server.raw.post("/tag", json={"resourceArn": arn, "tags": first}))
    err(server.raw.post("/tag", json={"resourceArn": arn, "tags": {f"n{i}": "v" for i in range(6)}}), 400,
        "InvalidArgument")
    assert tags_of(server, arn) == first


# --- errors -------------------------------------------------------------------------------------------------
def bad_arns(server, svc):
    return {
        "another account": service_arn(server, svc, account="1111111111111111"),
        "another region": service_arn(server, svc, region="cn-shanghai" if server.region != "cn-shanghai"
                                      else "cn-beijing"),
        "not an arn": "functions/" + svc,
        "another product": f"acs:oss:{server.region}:{server.account_id}:services/{svc}",
        "empty": "",
    }


ARN_CASES = ["another account", "another region", "not an arn", "another product", "empty"]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_partial_arns_name_services_and_functions(server, client):
    """The SDKs document "full ARN or partial ARN": `services/SVC` and `services/SVC/functions/FN` work like the
    full ARN they stand for (which the answers name); functions can be tagged too."""
    raw = raw_for(server, client)
    svc = new_service(server, "partial")
    ok(raw.post("/tag", json={"resourceArn": f"services/{svc}", "tags": {"via": "partial"}}))
    assert tags_of(server, service_arn(server, svc)) == {"via": "partial"}
    got = ok(raw.get("/tag", params={"resourceArn": f"services/{svc}"}))
    assert got["resourceArn"] == service_arn(server, svc) and got["tags"] == {"via": "partial"}, got
    ok(server.raw.post(f"/services/{svc}/functions", json={
        "functionName": "f", "runtime": "python3.10", "handler": "index.handler",
        "code": {"zipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}))
    fn_arn = service_arn(server, svc) + "/functions/f"
    ok(raw.post("/tag", json={"resourceArn": f"services/{svc}/functions/f", "tags": {"fn": "yes"}}))
    assert ok(raw.get("/tag", params={"resourceArn": fn_arn}))["tags"] == {"fn": "yes"}
    assert tags_of(server, service_arn(server, svc)) == {"via": "partial"}, "the function's tags are its own"
    err(raw.post("/tag", json={"resourceArn": f"services/{svc}/functions/nope", "tags": {"a": "b"}}), 404,
        "FunctionNotFound")
    # A deleted function's tags go with it.
    ok(server.raw.delete(f"/services/{svc}/functions/f"), 204)
    assert fn_arn not in [r["resourceArn"] for r in walk_tagged(server, "raw16")]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case", ARN_CASES)
def test_tag_with_a_bad_arn(server, client, case):
    svc = new_service(server, "badarn")
    arn = bad_arns(server, svc)[case]
    raw = raw_for(server, client)
    err(raw.post("/tag", json={"resourceArn": arn, "tags": {"a": "b"}}), 400, "InvalidArgument")
    err(raw.get("/tag", params={"resourceArn": arn}), 400, "InvalidArgument")
    err(raw.request("DELETE" if client == "raw16" else "PUT", "/tag",
                    json={"resourceArn": arn, "tagKeys": ["a"]}), 400, "InvalidArgument")
    assert tags_of(server, service_arn(server, svc)) == {}


@pytest.mark.parametrize("client", CLIENTS)
def test_tags_of_a_missing_service(server, client):
    a = Tags(server, client)
    arn = service_arn(server, unique("nosvc"))
    expect_api_error(404, "ServiceNotFound", a.tag, arn, {"a": "b"})
    expect_api_error(404, "ServiceNotFound", a.get, arn)
    expect_api_error(404, "ServiceNotFound", a.untag, arn, keys=["a"])


BAD_TAGS = {
    "21 tags": {f"k{i:02d}": "v" for i in range(21)},
    "key starts with aliyun": {"aliyun_team": "x"},
    "key is aliyun": {"aliyun": "x"},
    "key starts with acs:": {"acs:team": "x"},
    "empty tags": {},
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", list(BAD_TAGS))
def test_invalid_tags(server, client, case):
    svc = new_service(server, "badtag")
    arn = service_arn(server, svc)
    expect_api_error(400, "InvalidArgument", Tags(server, client).tag, arn, BAD_TAGS[case])
    assert tags_of(server, arn) == {}


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("body", [{}, {"all": False}, {"tagKeys": None}], ids=["nothing", "all-false", "null-keys"])
def test_untag_needs_keys_or_all(server, client, body):
    svc = new_service(server, "untag")
    arn = service_arn(server, svc)
    ok(server.raw.post("/tag", json={"resourceArn": arn, "tags": {"a": "1"}}))
    raw = raw_for(server, client)
    err(raw.request("DELETE" if client == "raw16" else "PUT", "/tag", json={"resourceArn": arn, **body}), 400,
        "InvalidArgument")
    assert tags_of(server, arn) == {"a": "1"}


def test_deleting_a_service_removes_its_tags(server):
    svc = new_service(server, "gone")
    arn = service_arn(server, svc)
    ok(server.raw.post("/tag", json={"resourceArn": arn, "tags": {"a": "1"}}))
    ok(server.raw.delete(f"/services/{svc}"), 204)
    err(server.raw.get("/tag", params={"resourceArn": arn}), 404, "ServiceNotFound")
    assert arn not in [r["resourceArn"] for r in walk_tagged(server, "raw16")]
    # The same name again starts without tags.
    ok(server.raw.post("/services", json={"serviceName": svc}))
    assert tags_of(server, arn) == {}
    assert arn not in [r["resourceArn"] for r in walk_tagged(server, "raw16")]


# --- ListTaggedResources ------------------------------------------------------------------------------------
def walk_tagged(server, client, limit=None):
    a = Tags(server, client)
    pages = walk_pages(lambda token: a.list(limit=limit, nextToken=token).body, "resources", limit, max_pages=200)
    return sum(pages, [])


@pytest.fixture(scope="module")
def tagged(server):
    """Three services tagged under a unique prefix: <p>a {env:prod, team:x}, <p>b {env:prod}, <p>c {env:dev};
    <p>d untagged."""
    p = unique("flt") + "_"
    want = {p + "a": {"env": "prod", "team": "x"}, p + "b": {"env": "prod"}, p + "c": {"env": "dev"}}
    for name, tags in want.items():
        ok(server.raw.post("/services", json={"serviceName": name}))
        ok(server.raw.post("/tag", json={"resourceArn": service_arn(server, name), "tags": tags}))
    ok(server.raw.post("/services", json={"serviceName": p + "d"}))
    return p, want


@pytest.mark.parametrize("client", ["fc21", "raw16", "raw21"])
@pytest.mark.parametrize("limit", [None, 1, 2])
def test_list_tagged_resources(server, tagged, client, limit):
    p, want = tagged
    resources = walk_tagged(server, client, limit)
    arns = [r["resourceArn"] for r in resources]
    assert len(arns) == len(set(arns)), "a resource listed twice"
    got = {r["resourceArn"]: r["tags"] for r in resources if r["resourceArn"].split("/")[-1].startswith(p)}
    assert got == {service_arn(server, n): t for n, t in want.items()}


@pytest.mark.parametrize("client", ["fc2", "raw16", "raw21"])
@pytest.mark.parametrize("filters, expected", [
    ({"env": "prod"}, ["a", "b"]),
    ({"env": "prod", "team": "x"}, ["a"]),
    ({"env": "dev"}, ["c"]),
    ({"env": "staging"}, []),
    ({"env": ""}, ["a", "b", "c"]),
    ({"team": "x", "env": "dev"}, []),
    ({}, ["a", "b", "c", "d"]),
])
def test_list_services_filtered_by_tags(server, tagged, client, filters, expected):
    p, _ = tagged
    if client == "fc2":
        body = fc2_call(server.fc2.list_services, prefix=p, tags=filters or None).body
    else:
        params = {"prefix": p, **{f"tag_{k}": v for k, v in filters.items()}}
        body = ok(raw_for(server, client).get("/services", params=params))
    assert [s["serviceName"] for s in body["services"]] == [p + x for x in expected]


# --- region -------------------------------------------------------------------------------------------------
def test_region_flag_changes_the_accepted_arn(start_server):
    s = start_server(args=["--region", "cn-beijing"])
    svc = new_service(s, "region")
    ok(s.raw.post("/tag", json={"resourceArn": f"acs:fc:cn-beijing:{s.account_id}:services/{svc}",
                                "tags": {"a": "1"}}))
    err(s.raw.post("/tag", json={"resourceArn": f"acs:fc:cn-hangzhou:{s.account_id}:services/{svc}",
                                 "tags": {"a": "1"}}), 400, "InvalidArgument")
    got = ok(s.raw.get("/tag", params={"resourceArn": f"acs:fc:cn-beijing:{s.account_id}:services/{svc}"}))
    assert got["tags"] == {"a": "1"}
