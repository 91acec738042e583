"""Service CRUD (spec 5.1, 5.2) through both SDKs and both prefixes, on both backends."""

import time

import pytest

from helpers import assert_recent, assert_subset, parse_time, unique
from sdk import CLIENTS, ApiError, api

# Every section 5.2 field with a non-default value.
SERVICE_FULL = {
    "description": "every field set",
    "role": "acs:ram::1234567890123456:role/fc-e2e",
    "internetAccess": False,
    "logConfig": {"project": "proj-e2e", "logstore": "store-e2e", "enableRequestMetrics": True,
                  "enableInstanceMetrics": False, "logBeginRule": "DefaultRegex"},
    "vpcConfig": {"vpcId": "vpc-e2e", "vSwitchIds": ["vsw-a", "vsw-b"], "securityGroupId": "sg-e2e",
                  "role": "acs:ram::1234567890123456:role/vpc-e2e"},
    "nasConfig": {"userId": -1, "groupId": -1, "mountPoints": [
        {"serverAddr": "abc.cn-hangzhou.nas.aliyuncs.com:/share", "mountDir": "/mnt/nas", "enableTLS": False}]},
    "tracingConfig": {"type": "Jaeger", "params": {"endpoint": "http://tracing.example:14268/api/traces"}},
    "ossMountConfig": {"mountPoints": [{"bucketName": "bkt-e2e", "bucketPath": "/sub", "endpoint":
                                        "http://oss-cn-hangzhou-internal.aliyuncs.com", "mountDir": "/mnt/oss",
                                        "readOnly": True}]},
}
# aliyun-fc2's create_service has no ossMountConfig parameter.
FC2_FIELDS = set(SERVICE_FULL) - {"ossMountConfig"}

REQUIRED_KEYS = {"serviceName", "description", "role", "logConfig", "serviceId", "createdTime",
                 "lastModifiedTime", "internetAccess"}


def full_body(client, name):
    body = {k: v for k, v in SERVICE_FULL.items() if client != "fc2" or k in FC2_FIELDS}
    return {"serviceName": name, **body}


@pytest.mark.parametrize("client", CLIENTS)
def test_create_get_list_service_round_trips_every_field(server, client):
    a = api(server, client)
    name = unique("svc")
    body = full_body(client, name)
    created = a.create_service(body)
    created.assert_status(200)
    assert_subset(body, created.body)
    assert REQUIRED_KEYS <= set(created.body), REQUIRED_KEYS - set(created.body)
    assert created.body["serviceId"]
    assert created.etag, "CreateService must send an ETag header"
    assert_recent(created.body["createdTime"])
    assert_recent(created.body["lastModifiedTime"])

    got = a.get_service(name)
    assert_subset(body, got.body)
    for k in ("serviceId", "createdTime", "lastModifiedTime"):
        assert got.body[k] == created.body[k], k
    assert got.etag == created.etag

    listed = a.list_services(prefix=name).body["services"]
    assert [s["serviceName"] for s in listed] == [name]
    assert_subset(body, listed[0])
    assert listed[0]["serviceId"] == created.body["serviceId"]


@pytest.mark.parametrize("client", CLIENTS)
def test_create_service_defaults(server, client):
    a = api(server, client)
    name = unique("svcdef")
    created = a.create_service({"serviceName": name})
    assert created.body["serviceName"] == name
    assert created.body["internetAccess"] is True
    assert isinstance(created.body["logConfig"], dict), created.body
    assert REQUIRED_KEYS <= set(created.body), REQUIRED_KEYS - set(created.body)
    got = a.get_service(name).body
    assert got["internetAccess"] is True
    assert isinstance(got["logConfig"], dict)


@pytest.mark.parametrize("client", CLIENTS)
def test_update_service_is_partial_and_moves_only_last_modified(server, client):
    a = api(server, client)
    name = unique("svcupd")
    body = full_body(client, name)
    created = a.create_service(body).body
    etag0 = a.get_service(name).etag
    time.sleep(1.1)  # timestamps may have one-second resolution

    updated = a.update_service(name, {"description": "changed"})
    updated.assert_status(200)
    assert updated.body["description"] == "changed"
    unchanged = {k: v for k, v in body.items() if k not in ("description",)}
    assert_subset(unchanged, updated.body)
    assert updated.body["serviceId"] == created["serviceId"]
    assert updated.body["createdTime"] == created["createdTime"]
    assert updated.body["lastModifiedTime"] != created["lastModifiedTime"]
    assert parse_time(updated.body["lastModifiedTime"]) > parse_time(created["lastModifiedTime"])
    assert updated.etag and updated.etag != etag0

    got = a.get_service(name)
    assert got.body["description"] == "changed"
    assert_subset(unchanged, got.body)
    assert got.etag == updated.etag

    updated2 = a.update_service(name, {"internetAccess": True,
                                       "logConfig": {"project": "p2", "logstore": "s2"}})
    assert updated2.body["internetAccess"] is True
    assert updated2.body["logConfig"]["project"] == "p2"
    assert updated2.body["logConfig"]["logstore"] == "s2"
    assert updated2.body["description"] == "changed"
    assert updated2.etag != updated.etag


@pytest.mark.parametrize("client", CLIENTS)
def test_delete_service(server, client):
    a = api(server, client)
    name = unique("svcdel")
    a.create_service({"serviceName": name})
    deleted = a.delete_service(name)
    deleted.assert_status(204)
    with pytest.raises(ApiError) as ei:
        a.get_service(name)
    assert (ei.value.status, ei.value.code) == (404, "ServiceNotFound")
    assert a.list_services(prefix=name).body["services"] == []
    # The name is free again.
    assert a.create_service({"serviceName": name}).body["serviceName"] == name


@pytest.mark.parametrize("creator, reader", [("fc2", "fc21"), ("fc21", "fc2"), ("raw16", "raw21"),
                                             ("raw21", "raw16")])
def test_service_is_the_same_resource_on_both_prefixes(server, creator, reader):
    name = unique("svcx")
    body = {"serviceName": name, "description": "cross", "role": "acs:ram::1:role/x"}
    created = api(server, creator).create_service(body).body
    got = api(server, reader).get_service(name).body
    assert_subset(body, got)
    assert got["serviceId"] == created["serviceId"]
    assert got["createdTime"] == created["createdTime"]


@pytest.mark.parametrize("client, form", [("fc2", "path"), ("fc21", "query"), ("raw16", "path"),
                                          ("raw16", "query"), ("raw21", "path"), ("raw21", "query")])
def test_get_service_qualifier_forms(server, client, form):
    a = api(server, client)
    name = unique("svcq")
    created = a.create_service({"serviceName": name, "description": "q"}).body
    got = a.get_service(name, qualifier="LATEST", form=form).body
    assert got["serviceName"] == name
    assert got["serviceId"] == created["serviceId"]
    assert got["description"] == "q"
