"""The small operations of spec 5.1 that openfc stores but does not act on (issue 13 item 3): ListReservedCapacities
(always empty), CreateVpcBinding / ListVpcBindings / DeleteVpcBinding (stored per service, no effect on
networking) and RegisterEventSource / ListEventSources / DeregisterEventSource (stored per function and
qualifier, nothing delivers events). Through the SDKs that have them — aliyun-fc2 and the Node.js SDK have only
ListReservedCapacities, the 2021 SDK has all seven — and the raw client on both prefixes; on both backends."""

import json
import os
import shutil
import subprocess
import urllib.parse

import pytest

from helpers import unique
from resources_helpers import err, new_function, new_service, ok
from sdk import CLIENTS, Facade, expect_api_error, fc2_call, present, tea_call, tea_models

# Clients with the binding and event source operations: the 2021 SDK and the raw client (aliyun-fc2 has none).
STORE_CLIENTS = ["fc21", "raw16", "raw21"]
MNS_ARN = "acs:mns:cn-hangzhou:1234567890123456:/topics/orders"
OSS_ARN = "acs:oss:cn-hangzhou:1234567890123456:bucket-a"


class Small(Facade):
    """The seven operations through one client; returns sdk.Resp, raises sdk.ApiError."""

    # ---- reserved capacities ----
    def list_reserved(self, limit=None, nextToken=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.list_reserved_capacities, limit=limit, nextToken=nextToken)
        if self.client == "fc21":
            return tea_call(self.server.fc21.list_reserved_capacities, tea_models().ListReservedCapacitiesRequest(
                limit=None if limit is None else str(limit), next_token=nextToken))
        return self._raw("GET", "/reservedCapacities" if self.client == "raw16" else "/reserved-capacities",
                         params=present(limit=limit, nextToken=nextToken) or None)

    # ---- VPC bindings ----
    def bind(self, svc, vpc_id):
        if self.client == "fc21":
            return tea_call(self.server.fc21.create_vpc_binding, svc, tea_models().CreateVpcBindingRequest(
                vpc_id=vpc_id))
        return self._raw("POST", f"/services/{svc}/bindings", json={"vpcId": vpc_id})

    def bindings(self, svc):
        if self.client == "fc21":
            return tea_call(self.server.fc21.list_vpc_bindings, svc)
        return self._raw("GET", f"/services/{svc}/bindings")

    def unbind(self, svc, vpc_id):
        if self.client == "fc21":
            return tea_call(self.server.fc21.delete_vpc_binding, svc, vpc_id)
        return self._raw("DELETE", f"/services/{svc}/bindings/{vpc_id}", expect=204)

    # ---- event sources ----
    def _fn_path(self, svc, fn, qualifier, form):
        seg = f"{svc}.{qualifier}" if qualifier and form == "path" else svc
        params = {"qualifier": qualifier} if qualifier and form == "query" else None
        return f"/services/{seg}/functions/{fn}/event-sources", params

    def register(self, svc, fn, arn, qualifier=None, form="query"):
        if self.client == "fc21":
            return tea_call(self.server.fc21.register_event_source, svc, fn, tea_models().RegisterEventSourceRequest(
                source_arn=arn, qualifier=qualifier))
        path, params = self._fn_path(svc, fn, qualifier, form)
        return self._raw("POST", path, params=params, json={"sourceArn": arn})

    def sources(self, svc, fn, qualifier=None, form="query"):
        if self.client == "fc21":
            return tea_call(self.server.fc21.list_event_sources, svc, fn, tea_models().ListEventSourcesRequest(
                qualifier=qualifier))
        path, params = self._fn_path(svc, fn, qualifier, form)
        return self._raw("GET", path, params=params)

    def deregister(self, svc, fn, arn, qualifier=None, form="query"):
        if self.client == "fc21":
            return tea_call(self.server.fc21.deregister_event_source, svc, fn, arn,
                            tea_models().DeregisterEventSourceRequest(qualifier=qualifier))
        path, params = self._fn_path(svc, fn, qualifier, form)
        return self._raw("DELETE", f"{path}/{urllib.parse.quote(arn, safe='')}", params=params, expect=204)


def arns_of(resp):
    return [s["sourceArn"] for s in resp.body["eventSources"]]


# --- ListReservedCapacities ---------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_reserved_capacities_are_an_empty_list(server, client):
    a = Small(server, client)
    for kw in ({}, {"limit": 10}, {"limit": 5, "nextToken": "x"}):
        got = a.list_reserved(**kw)
        got.assert_status(200)
        assert got.body == {"reservedCapacities": []}, got.body


@pytest.mark.parametrize("path", ["/reservedCapacities", "/reserved-capacities"])
@pytest.mark.parametrize("prefix", ["raw16", "raw21"])
def test_reserved_capacities_on_both_spellings_and_prefixes(server, prefix, path):
    raw = server.raw21 if prefix == "raw21" else server.raw
    assert ok(raw.get(path)) == {"reservedCapacities": []}
    body = err(raw.get(path, params={"limit": "many"}), 400, "InvalidArgument")
    assert body["ErrorMessage"] == "Limit is set to an invalid value (allowed: 1 to 100, actual: 'many')", body


def test_reserved_capacities_through_the_node_sdk(server):
    from test_node_sdk import node_path
    modules = node_path()
    script = """
        const FC = require('@alicloud/fc2');
        const c = new FC(process.env.OPENFC_ACCOUNT_ID, {accessKeyID: process.env.OPENFC_AK,
            accessKeySecret: process.env.OPENFC_SK, endpoint: process.env.OPENFC_ENDPOINT, region: 'cn-hangzhou'});
        c.listReservedCapacities({limit: 10}).then(
            (r) => console.log(JSON.stringify(r.data)),
            (e) => { console.error(e); process.exit(1); });
    """
    env = dict(os.environ, NODE_PATH=modules, OPENFC_ENDPOINT=server.endpoint, OPENFC_ACCOUNT_ID=server.account_id,
               OPENFC_AK=server.ak, OPENFC_SK=server.secret)
    p = subprocess.run([shutil.which("node") or "node", "-e", script], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"reservedCapacities": []}


# --- VPC bindings -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", STORE_CLIENTS)
def test_vpc_bindings_round_trip(server, client):
    a = Small(server, client)
    svc = new_service(server, "bind")
    assert a.bindings(svc).body == {"vpcIds": []}
    a.bind(svc, "vpc-bp1second").assert_status(200)
    a.bind(svc, "vpc-bp1first").assert_status(200)
    a.bind(svc, "vpc-bp1first").assert_status(200)  # binding again changes nothing
    assert a.bindings(svc).body == {"vpcIds": ["vpc-bp1first", "vpc-bp1second"]}
    # Stored per service; visible on the other prefix.
    other = new_service(server, "bind")
    assert ok(server.raw21.get(f"/services/{other}/bindings")) == {"vpcIds": []}
    assert ok(server.raw.get(f"/services/{svc}/bindings"))["vpcIds"] == ["vpc-bp1first", "vpc-bp1second"]
    a.unbind(svc, "vpc-bp1second").assert_status(204)
    assert a.bindings(svc).body == {"vpcIds": ["vpc-bp1first"]}
    e = expect_api_error(404, "VpcBindingNotFound", a.unbind, svc, "vpc-bp1second")
    if client != "fc21":
        assert "vpc-bp1second" in e.body["ErrorMessage"] and svc in e.body["ErrorMessage"], e.body


@pytest.mark.parametrize("client", STORE_CLIENTS)
def test_vpc_bindings_of_a_missing_service(server, client):
    a = Small(server, client)
    svc = unique("nosvc")
    expect_api_error(404, "ServiceNotFound", a.bind, svc, "vpc-1")
    expect_api_error(404, "ServiceNotFound", a.bindings, svc)
    expect_api_error(404, "ServiceNotFound", a.unbind, svc, "vpc-1")


BAD_VPC_BODIES = {
    "no vpcId": ({}, "VpcId is required but not provided."),
    "empty vpcId": ({"vpcId": ""}, "VpcId is set to an invalid value (allowed: a non-empty string, actual: '')"),
    "number": ({"vpcId": 42}, "VpcId is set to an invalid value (allowed: a string, actual: '42')"),
    "bad characters": ({"vpcId": "vpc 1/x"},
                       "VpcId doesn't match expected format (allowed: '^[-_a-zA-Z0-9]{1,128}$', actual: 'vpc 1/x')"),
}


@pytest.mark.parametrize("prefix", ["raw16", "raw21"])
@pytest.mark.parametrize("case", list(BAD_VPC_BODIES))
def test_create_vpc_binding_with_a_bad_body(server, prefix, case):
    raw = server.raw21 if prefix == "raw21" else server.raw
    svc = new_service(server, "badbind")
    body, message = BAD_VPC_BODIES[case]
    got = err(raw.post(f"/services/{svc}/bindings", json=body), 400, "InvalidArgument")
    assert message in got["ErrorMessage"], got
    got = err(raw.post(f"/services/{svc}/bindings", body=b"{not json", headers={"Content-Type": "application/json"}),
              400, "InvalidArgument")
    assert "not valid JSON" in got["ErrorMessage"], got
    assert ok(raw.get(f"/services/{svc}/bindings")) == {"vpcIds": []}


def test_vpc_binding_through_the_2021_sdk_with_a_bad_body(server):
    svc = new_service(server, "badbind")
    expect_api_error(400, "InvalidArgument", Small(server, "fc21").bind, svc, None)


def test_vpc_bindings_go_with_their_service(server):
    svc = new_service(server, "bindgone")
    ok(server.raw.post(f"/services/{svc}/bindings", json={"vpcId": "vpc-old"}))
    ok(server.raw.delete(f"/services/{svc}"), 204)
    err(server.raw.get(f"/services/{svc}/bindings"), 404, "ServiceNotFound")
    # A re-created service of the same name starts with none.
    ok(server.raw.post("/services", json={"serviceName": svc}))
    assert ok(server.raw.get(f"/services/{svc}/bindings")) == {"vpcIds": []}


def test_a_service_with_bindings_can_be_deleted_with_its_etag(server):
    svc = new_service(server, "bindetag")
    etag = server.raw.get(f"/services/{svc}").headers["ETag"]
    ok(server.raw.post(f"/services/{svc}/bindings", json={"vpcId": "vpc-x"}))
    ok(server.raw.delete(f"/services/{svc}", headers={"If-Match": etag}), 204)
    ok(server.raw.post("/services", json={"serviceName": svc}))
    assert ok(server.raw.get(f"/services/{svc}/bindings")) == {"vpcIds": []}


# --- event sources ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", STORE_CLIENTS)
def test_event_sources_round_trip(server, client):
    a = Small(server, client)
    svc = new_service(server, "evsrc")
    fn, _ = new_function(server, svc)
    assert a.sources(svc, fn).body == {"eventSources": []}
    reg = a.register(svc, fn, MNS_ARN)
    reg.assert_status(200)
    assert reg.body["sourceArn"] == MNS_ARN and reg.body["createdTime"], reg.body
    a.register(svc, fn, OSS_ARN)
    again = a.register(svc, fn, MNS_ARN)  # registering again keeps the first createdTime
    assert again.body["createdTime"] == reg.body["createdTime"], (again.body, reg.body)
    listed = a.sources(svc, fn).body["eventSources"]
    assert sorted(s["sourceArn"] for s in listed) == sorted([MNS_ARN, OSS_ARN]), listed
    assert all(s["createdTime"] for s in listed), listed
    a.deregister(svc, fn, MNS_ARN).assert_status(204)
    assert arns_of(a.sources(svc, fn)) == [OSS_ARN]
    expect_api_error(404, "EventSourceNotFound", a.deregister, svc, fn, MNS_ARN)


@pytest.mark.parametrize("client,form", [("fc21", "query"), ("raw16", "path"), ("raw16", "query"),
                                         ("raw21", "path"), ("raw21", "query")])
def test_event_sources_are_per_qualifier(server, client, form):
    a = Small(server, client)
    svc = new_service(server, "evq")
    fn, _ = new_function(server, svc)
    ok(server.raw.post(f"/services/{svc}/versions", json={}))
    ok(server.raw.post(f"/services/{svc}/aliases", json={"aliasName": "prod", "versionId": "1"}))
    a.register(svc, fn, MNS_ARN, qualifier="prod", form=form)
    a.register(svc, fn, OSS_ARN, qualifier="1", form=form)
    assert arns_of(a.sources(svc, fn, qualifier="prod", form=form)) == [MNS_ARN]
    assert arns_of(a.sources(svc, fn, qualifier="1", form=form)) == [OSS_ARN]
    assert arns_of(a.sources(svc, fn)) == []
    assert arns_of(a.sources(svc, fn, qualifier="LATEST", form=form)) == []
    expect_api_error(404, "EventSourceNotFound", a.deregister, svc, fn, MNS_ARN, qualifier="1", form=form)
    a.deregister(svc, fn, MNS_ARN, qualifier="prod", form=form)
    assert arns_of(a.sources(svc, fn, qualifier="prod", form=form)) == []
    expect_api_error(404, "AliasNotFound", a.register, svc, fn, MNS_ARN, qualifier="staging", form=form)
    expect_api_error(404, "VersionNotFound", a.sources, svc, fn, qualifier="9", form=form)


@pytest.mark.parametrize("client", STORE_CLIENTS)
def test_event_sources_of_a_missing_service_or_function(server, client):
    a = Small(server, client)
    nosvc = unique("nosvc")
    expect_api_error(404, "ServiceNotFound", a.register, nosvc, "f", MNS_ARN)
    expect_api_error(404, "ServiceNotFound", a.sources, nosvc, "f")
    expect_api_error(404, "ServiceNotFound", a.deregister, nosvc, "f", MNS_ARN)
    svc = new_service(server, "evnofn")
    expect_api_error(404, "FunctionNotFound", a.register, svc, "nofn", MNS_ARN)
    expect_api_error(404, "FunctionNotFound", a.sources, svc, "nofn")
    expect_api_error(404, "FunctionNotFound", a.deregister, svc, "nofn", MNS_ARN)


BAD_SOURCE_BODIES = {
    "no sourceArn": ({}, "SourceArn is required but not provided."),
    "empty sourceArn": ({"sourceArn": " "}, "SourceArn is set to an invalid value (allowed: a non-empty string"),
    "list": ({"sourceArn": ["acs:x"]}, "SourceArn is set to an invalid value (allowed: a string, actual: '"),
    "control character": ({"sourceArn": "acs:mns:x\n"}, "SourceArn is set to an invalid value (allowed: 1 to 1024 "
                                                         "characters without control characters, actual: "
                                                         "'acs:mns:x\\n')"),
}


@pytest.mark.parametrize("prefix", ["raw16", "raw21"])
@pytest.mark.parametrize("case", list(BAD_SOURCE_BODIES))
def test_register_event_source_with_a_bad_body(server, prefix, case):
    raw = server.raw21 if prefix == "raw21" else server.raw
    svc = new_service(server, "evbad")
    fn, _ = new_function(server, svc)
    body, message = BAD_SOURCE_BODIES[case]
    got = err(raw.post(f"/services/{svc}/functions/{fn}/event-sources", json=body), 400, "InvalidArgument")
    assert message in got["ErrorMessage"], got
    assert ok(raw.get(f"/services/{svc}/functions/{fn}/event-sources")) == {"eventSources": []}


def test_event_sources_go_with_their_function(server):
    svc = new_service(server, "evgone")
    fn, _ = new_function(server, svc)
    ok(server.raw.post(f"/services/{svc}/functions/{fn}/event-sources", json={"sourceArn": MNS_ARN}))
    other, _ = new_function(server, svc, name=fn + "_b")  # a name that extends it keeps its own
    ok(server.raw.post(f"/services/{svc}/functions/{other}/event-sources", json={"sourceArn": OSS_ARN}))
    ok(server.raw.delete(f"/services/{svc}/functions/{fn}"), 204)
    err(server.raw.get(f"/services/{svc}/functions/{fn}/event-sources"), 404, "FunctionNotFound")
    new_function(server, svc, name=fn)
    assert ok(server.raw.get(f"/services/{svc}/functions/{fn}/event-sources")) == {"eventSources": []}
    assert [s["sourceArn"] for s in ok(server.raw.get(
        f"/services/{svc}/functions/{other}/event-sources"))["eventSources"]] == [OSS_ARN]


def test_an_unencoded_source_arn_can_be_deregistered(server):
    """The SDKs URL-encode the ARN into one path segment; a hand-written URL with its `/`s as they are works
    too."""
    svc = new_service(server, "evraw")
    fn, _ = new_function(server, svc)
    ok(server.raw.post(f"/services/{svc}/functions/{fn}/event-sources", json={"sourceArn": MNS_ARN}))
    ok(server.raw.delete(f"/services/{svc}/functions/{fn}/event-sources/{MNS_ARN}"), 204)
    assert ok(server.raw.get(f"/services/{svc}/functions/{fn}/event-sources")) == {"eventSources": []}
