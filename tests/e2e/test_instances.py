"""ListInstances (FC: the instances that InvokeFunction with the same service, function and qualifier can use):
instances appear after an invocation started them (each node reports what runs on it with its heartbeat, so at
most about a second later), with the version they run; `instanceIds` filters, `limit` caps (0 to 1000); the
service, function and qualifier must exist. Through fc2, the 2021 SDK and the raw client on both prefixes.
Across nodes: test_cluster.py."""

import pytest

from helpers import fc2_error, tea_error
from invoke_helpers import create_alias, invoke_ok, new_function, new_service, publish, py_zip, wait_until

ECHO = py_zip('''
    def handler(event, context):
        return "ok"
''')


@pytest.fixture(scope="module")
def srv(server_factory, backend):
    s = server_factory.start(backend, args=["--prestarted-runtimes", "0"])
    yield s
    s.close()


def listed(srv, svc, fn, qualifier="LATEST", prefix="2016-08-15", **params):
    r = srv.raw.get(f"/services/{svc}.{qualifier}/functions/{fn}/instances", params=params) if prefix == "2016-08-15" \
        else srv.raw21.get(f"/services/{svc}/functions/{fn}/instances", params={"qualifier": qualifier, **params})
    assert r.status_code == 200, r.text
    return r.json()["instances"]


def test_an_invoked_function_lists_its_instance_with_its_version(srv):
    svc = new_service(srv, "lin")
    fn = new_function(srv, svc, ECHO)
    assert listed(srv, svc, fn) == []
    inst = invoke_ok(srv, svc, fn).instance_id
    got = wait_until(lambda: listed(srv, svc, fn), 5, what="the instance is listed")
    assert got == [{"instanceId": inst, "versionId": "LATEST"}]
    assert listed(srv, svc, fn, prefix="2021-04-06") == got
    # fc2 (path qualifier) and the 2021 SDK (query qualifier, instanceIds as instanceIds.N).
    assert srv.fc2.list_instances(svc, "LATEST", fn).data["instances"] == got
    from alibabacloud_fc_open20210406 import models
    body = srv.fc21.list_instances(svc, fn, models.ListInstancesRequest(qualifier="LATEST", instance_ids=[inst])).body
    assert [(i.instance_id, i.version_id) for i in body.instances] == [(inst, "LATEST")]
    body = srv.fc21.list_instances(svc, fn, models.ListInstancesRequest(qualifier="LATEST", instance_ids=["nope"])).body
    assert body.instances == []
    assert listed(srv, svc, fn, limit="0") == []


def test_a_version_and_its_alias_list_the_instances_running_that_version(srv):
    svc = new_service(srv, "liv")
    fn = new_function(srv, svc, ECHO)
    v = publish(srv, svc)
    create_alias(srv, svc, "prod", v)
    latest = invoke_ok(srv, svc, fn).instance_id
    prod = invoke_ok(srv, svc, fn, qualifier="prod").instance_id
    assert latest != prod
    wait_until(lambda: len(listed(srv, svc, fn)) == 1 and len(listed(srv, svc, fn, "prod")) == 1, 5,
               what="both listed")
    assert listed(srv, svc, fn, "prod") == [{"instanceId": prod, "versionId": str(v)}]
    assert listed(srv, svc, fn, str(v)) == [{"instanceId": prod, "versionId": str(v)}]
    assert listed(srv, svc, fn) == [{"instanceId": latest, "versionId": "LATEST"}]


def test_what_does_not_exist_and_bad_limits_are_refused(srv):
    svc = new_service(srv, "lie")
    fn = new_function(srv, svc, ECHO)
    fc2_error(404, "FunctionNotFound", srv.fc2.list_instances, svc, "LATEST", "nofn")
    fc2_error(404, "ServiceNotFound", srv.fc2.list_instances, "nosvc", "LATEST", fn)
    fc2_error(404, "AliasNotFound", srv.fc2.list_instances, svc, "noalias", fn)
    fc2_error(404, "VersionNotFound", srv.fc2.list_instances, svc, "7", fn)
    fc2_error(400, "InvalidArgument", srv.fc2.list_instances, svc, "LATEST", fn, {"limit": "1001"})
    from alibabacloud_fc_open20210406 import models
    tea_error(400, "InvalidArgument", srv.fc21.list_instances, svc, fn, models.ListInstancesRequest(limit=-1))
