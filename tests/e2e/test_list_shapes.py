"""Every list operation's response has the keys of the 2021 SDK's response model (`models.py` of
alibabacloud-fc-open20210406, read here by introspection) and no others, with the list key present even when the
list is empty (but ListStatefulAsyncInvocations, as FC), and reads back through the model (issue: FC semantics, list shapes). One page each, on a fresh
service and function with one of each child, and an empty one."""

import inspect
import re

import pytest

from helpers import unique
from invoke_helpers import create_alias, new_function, new_service, publish, py_zip

ECHO = py_zip('''
    def handler(event, context):
        return "ok"
''')


def model_keys(name):
    from alibabacloud_fc_open20210406 import models
    src = inspect.getsource(getattr(models, f"{name}ResponseBody").to_map)
    return set(re.findall(r"result\['(\w+)'\]", src))


@pytest.fixture(scope="module")
def srv(server_factory, backend):
    s = server_factory.start(backend)
    yield s
    s.close()


@pytest.fixture(scope="module")
def world(srv):
    svc = new_service(srv, "shp")
    fn = new_function(srv, svc, ECHO)
    v = publish(srv, svc)
    create_alias(srv, svc, "prod", v)
    r = srv.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": "t", "triggerType": "http", "triggerConfig": {"authType": "anonymous", "methods": ["GET"]}})
    assert r.status_code == 200, r.text
    assert srv.raw.put(f"/services/{svc}.prod/functions/{fn}/async-invoke-config", json={}).status_code == 200
    assert srv.raw.put(f"/services/{svc}.prod/functions/{fn}/on-demand-config",
                       json={"maximumInstanceCount": 2}).status_code == 200
    empty_svc = new_service(srv, "shpe")
    empty_fn = new_function(srv, empty_svc, ECHO)
    return {"svc": svc, "fn": fn, "empty_svc": empty_svc, "empty_fn": empty_fn}


LISTS = [
    ("ListServices", "/services", {}),
    ("ListFunctions", "/services/{svc}/functions", {}),
    ("ListServiceVersions", "/services/{svc}/versions", {}),
    ("ListAliases", "/services/{svc}/aliases", {}),
    ("ListTriggers", "/services/{svc}/functions/{fn}/triggers", {}),
    ("ListFunctionAsyncInvokeConfigs", "/services/{svc}/functions/{fn}/async-invoke-configs", {}),
    ("ListOnDemandConfigs", "/on-demand-configs", {}),
    ("ListProvisionConfigs", "/provision-configs", {}),
    ("ListCustomDomains", "/custom-domains", {}),
    ("ListLayers", "/layers", {}),
    ("ListTaggedResources", "/tags", {}),
    ("ListReservedCapacities", "/reserved-capacities", {}),
    ("ListInstances", "/services/{svc}/functions/{fn}/instances", {"qualifier": "LATEST"}),
    ("ListVpcBindings", "/services/{svc}/bindings", {}),
    ("ListEventSources", "/services/{svc}/functions/{fn}/event-sources", {}),
    ("ListStatefulAsyncInvocations", "/services/{svc}/functions/{fn}/stateful-async-invocations", {}),
]

# Keys the model has that openfc answers only when they apply: a next page (spec §6: absent, not "", on the
# last page), and the one list FC answers without its key when nothing matches (spec §6, FC's Java tests).
OPTIONAL = {"nextToken", "nextVersion"}
ABSENT_WHEN_EMPTY = {"ListStatefulAsyncInvocations": "invocations"}


@pytest.mark.parametrize("which", ["full", "empty"])
@pytest.mark.parametrize("name, path, params", LISTS, ids=[l[0] for l in LISTS])
def test_list_shapes_match_the_2021_models(srv, world, name, path, params, which):
    svc, fn = (world["svc"], world["fn"]) if which == "full" else (world["empty_svc"], world["empty_fn"])
    r = srv.raw21.get(path.format(svc=svc, fn=fn), params=params)
    assert r.status_code == 200, (name, r.text)
    body = r.json()
    keys = model_keys(name)
    if name in ABSENT_WHEN_EMPTY:
        keys_required = keys - OPTIONAL - {ABSENT_WHEN_EMPTY[name]}
    else:
        keys_required = keys - OPTIONAL
    assert set(body) <= keys, f"{name}: keys not in the model: {set(body) - keys}"
    assert keys_required <= set(body), f"{name}: model keys missing: {keys_required - set(body)} in {body}"
    from alibabacloud_fc_open20210406 import models
    getattr(models, f"{name}ResponseBody")().from_map(body)
