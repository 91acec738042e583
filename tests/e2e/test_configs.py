"""Custom domains (spec 5.8) and provision / on-demand / async-invoke configs (spec 5.9) through both SDKs and
both prefixes (qualifier in the path and as ?qualifier=), with their validation; on both backends."""

import uuid

import pytest

from helpers import assert_recent, assert_subset, unique
from resources_helpers import CERT_PEM, KEY_PEM, create_alias, err, new_function, new_service, ok, publish
from sdk import (CLIENTS, Facade, expect_api_error, fc2_call, present, q_params, raw_for, svc_seg, tea_call,
                 tea_models, walk_pages)

# (client, qualifier form) for the qualified config paths.
RAW_FORMS = [("raw16", "path"), ("raw16", "query"), ("raw21", "path"), ("raw21", "query")]


@pytest.fixture(scope="module")
def env(server):
    """A service with functions fn and other, version 1 and alias 'prod' -> 1."""
    svc = new_service(server, "cfg")
    fn, _ = new_function(server, svc)
    other, _ = new_function(server, svc)
    publish(server, svc)
    create_alias(server, svc, "prod", "1")
    return {"svc": svc, "fn": fn, "other": other}


# ============================================================================================================
# Custom domains
# ============================================================================================================
def domain(prefix="e2e"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example.com"


def routes(env):
    return {"routes": [
        {"path": "/api/*", "serviceName": env["svc"], "functionName": env["fn"], "qualifier": "prod",
         "methods": ["GET", "POST"],
         "rewriteConfig": {"equalRules": [{"match": "/old", "replacement": "/new"}],
                           "wildcardRules": [{"match": "/api/*", "replacement": "/$1"}],
                           "regexRules": [{"match": "^/v1/(.*)", "replacement": "/$1"}]}},
        {"path": "/", "serviceName": env["svc"], "functionName": env["other"]},
    ]}


CERT = {"certName": "e2e-cert", "certificate": CERT_PEM, "privateKey": KEY_PEM}
TLS = {"minVersion": "TLSv1.2", "maxVersion": "TLSv1.3",
       "cipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]}


class Domains(Facade):
    """Custom-domain CRUD through one client; returns sdk.Resp, raises sdk.ApiError."""

    def create(self, body):
        if self.client == "fc2":
            extra = set(body) - {"domainName", "protocol", "routeConfig", "certConfig"}
            assert not extra, f"aliyun-fc2 cannot send {extra}"
            return fc2_call(self.server.fc2.create_custom_domain, body["domainName"], protocol=body.get("protocol"),
                            routeConfig=body.get("routeConfig"), certConfig=body.get("certConfig"))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.create_custom_domain, m.CreateCustomDomainRequest().from_map(body))
        return self._raw("POST", "/custom-domains", json=body)

    def get(self, name):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.get_custom_domain, name)
        if self.client == "fc21":
            return tea_call(self.server.fc21.get_custom_domain, name)
        return self._raw("GET", f"/custom-domains/{name}")

    def update(self, name, body):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.update_custom_domain, name, protocol=body.get("protocol"),
                            routeConfig=body.get("routeConfig"), certConfig=body.get("certConfig"))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.update_custom_domain, name, m.UpdateCustomDomainRequest().from_map(body))
        return self._raw("PUT", f"/custom-domains/{name}", json=body)

    def delete(self, name):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.delete_custom_domain, name)
        if self.client == "fc21":
            return tea_call(self.server.fc21.delete_custom_domain, name)
        return self._raw("DELETE", f"/custom-domains/{name}", expect=204)

    def list(self, limit=None, nextToken=None, prefix=None, startKey=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.list_custom_domains, limit=limit, nextToken=nextToken, prefix=prefix,
                            startKey=startKey)
        if self.client == "fc21":
            return tea_call(self.server.fc21.list_custom_domains, tea_models().ListCustomDomainsRequest(
                limit=limit, next_token=nextToken, prefix=prefix, start_key=startKey))
        return self._raw("GET", "/custom-domains",
                         params=present(limit=limit, nextToken=nextToken, prefix=prefix, startKey=startKey))


def full_domain(client, env, name):
    body = {"domainName": name, "protocol": "HTTP,HTTPS", "routeConfig": routes(env), "certConfig": CERT}
    if client != "fc2":
        body.update(tlsConfig=TLS, wafConfig={"enableWAF": True})
    return body


def assert_domain(server, got, sent):
    echo = {k: v for k, v in sent.items() if k != "certConfig"}
    assert_subset(echo, got)
    if "certConfig" in sent:
        cert = got["certConfig"]
        assert (cert["certName"], cert["certificate"]) == (sent["certConfig"]["certName"],
                                                           sent["certConfig"]["certificate"])
        assert cert.get("privateKey") in (None, ""), "the private key must never be returned"
    assert got["accountId"] == server.account_id
    assert got["apiVersion"]
    assert_recent(got["createdTime"])
    assert_recent(got["lastModifiedTime"])


@pytest.mark.parametrize("client", CLIENTS)
def test_custom_domain_crud(server, env, client):
    a = Domains(server, client)
    name = domain()
    body = full_domain(client, env, name)
    created = a.create(body)
    created.assert_status(200)
    assert_domain(server, created.body, body)

    got = a.get(name).body
    assert_domain(server, got, body)
    assert got["createdTime"] == created.body["createdTime"]

    listed = a.list(prefix=name).body["customDomains"]
    assert [d["domainName"] for d in listed] == [name]
    assert_domain(server, listed[0], body)

    # Partial update: only the protocol; the routes and the certificate stay.
    upd = a.update(name, {"protocol": "HTTPS"}).body
    assert upd["protocol"] == "HTTPS"
    assert_subset(routes(env), upd["routeConfig"])
    assert upd["certConfig"]["certName"] == "e2e-cert"
    assert upd["createdTime"] == created.body["createdTime"]
    new_routes = {"routes": [{"path": "/only", "serviceName": env["svc"], "functionName": env["fn"],
                              "methods": ["DELETE"]}]}
    upd = a.update(name, {"routeConfig": new_routes}).body
    assert_subset(new_routes, upd["routeConfig"])
    assert upd["protocol"] == "HTTPS"
    assert a.get(name).body["protocol"] == "HTTPS"

    a.delete(name).assert_status(204)
    expect_api_error(404, "DomainNameNotFound", a.get, name)


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_custom_domain_defaults_to_http(server, env, client):
    got = ok(raw_for(server, client).post("/custom-domains", json={"domainName": domain(),
                                                                   "routeConfig": routes(env)}))
    assert got["protocol"] == "HTTP"


@pytest.mark.parametrize("client", CLIENTS)
def test_duplicate_and_unknown_custom_domain(server, env, client):
    a = Domains(server, client)
    name = domain("dup")
    a.create({"domainName": name, "protocol": "HTTP", "routeConfig": routes(env)})
    expect_api_error(409, "DomainNameAlreadyExists", a.create, {"domainName": name, "protocol": "HTTP",
                                                                "routeConfig": routes(env)})
    missing = domain("none")
    expect_api_error(404, "DomainNameNotFound", a.get, missing)
    expect_api_error(404, "DomainNameNotFound", a.update, missing, {"protocol": "HTTP"})
    expect_api_error(404, "DomainNameNotFound", a.delete, missing)


def bad_route(**over):
    r = {"path": "/", "serviceName": "s", "functionName": "f"}
    r.update(over)
    return {"routes": [r]}


BAD_DOMAINS = {
    "host with '!'": {"domainName": "bad!.example.com"},
    "host with a space": {"domainName": "has space.example.com"},
    "host with '_'": {"domainName": "under_score.example.com"},
    "empty host": {"domainName": ""},
    "label starting with '-'": {"domainName": "-lead.example.com"},
    "empty label": {"domainName": "double..dot.com"},
    "protocol FTP": {"protocol": "FTP"},
    "path without '/'": {"routeConfig": bad_route(path="api")},
    "unknown method": {"routeConfig": bad_route(methods=["GET", "FETCH"])},
    "HTTPS without cert": {"protocol": "HTTPS"},
    "HTTP,HTTPS without cert": {"protocol": "HTTP,HTTPS"},
    "certificate not PEM": {"protocol": "HTTPS", "certConfig": {**CERT, "certificate": "not a certificate"}},
    "private key not PEM": {"protocol": "HTTPS", "certConfig": {**CERT, "privateKey": "not a key"}},
}


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case", list(BAD_DOMAINS))
def test_invalid_custom_domains(server, client, case):
    name = domain("bad")
    body = {"domainName": name, "protocol": "HTTP", "routeConfig": bad_route(), **BAD_DOMAINS[case]}
    err(raw_for(server, client).post("/custom-domains", json=body), 400, "InvalidArgument")
    err(server.raw.get(f"/custom-domains/{body['domainName'] or name}"), 404, "DomainNameNotFound")


@pytest.mark.parametrize("case, patch", [
    ("protocol FTP", {"protocol": "FTP"}),
    ("HTTPS without cert", {"protocol": "HTTPS"}),
    ("path without '/'", {"routeConfig": bad_route(path="x")}),
    ("unknown method", {"routeConfig": bad_route(methods=["FETCH"])}),
    ("certificate not PEM", {"protocol": "HTTPS", "certConfig": {**CERT, "certificate": "nope"}}),
])
def test_invalid_custom_domain_updates(server, env, case, patch):
    name = domain("upd")
    ok(server.raw.post("/custom-domains", json={"domainName": name, "routeConfig": routes(env)}))
    err(server.raw.put(f"/custom-domains/{name}", json=patch), 400, "InvalidArgument")
    got = ok(server.raw.get(f"/custom-domains/{name}"))
    assert got["protocol"] == "HTTP"
    assert_subset(routes(env), got["routeConfig"])


@pytest.fixture(scope="module")
def three_domains(server, env):
    p = f"l{uuid.uuid4().hex[:8]}"
    names = [f"{p}{c}.example.com" for c in "abc"]
    for n in names:
        ok(server.raw.post("/custom-domains", json={"domainName": n, "routeConfig": routes(env)}))
    return p, names


@pytest.mark.parametrize("client", CLIENTS)
def test_list_custom_domains_pages(server, three_domains, client):
    p, names = three_domains
    a = Domains(server, client)
    pages = walk_pages(lambda token: a.list(limit=2, prefix=p, nextToken=token).body, "customDomains", max_pages=10)
    assert [[d["domainName"] for d in page] for page in pages] == [names[:2], names[2:]]
    assert [d["domainName"] for d in a.list(prefix=p, startKey=names[1]).body["customDomains"]] == names[1:]


# ============================================================================================================
# Provision configs
# ============================================================================================================
SCHEDULED = [{"name": "morning", "startTime": "2030-01-01T00:00:00Z", "endTime": "2031-01-01T00:00:00Z",
              "target": 5, "scheduleExpression": "cron(0 0 8 * * *)"}]
TRACKING = [{"name": "cpu", "startTime": "2030-01-01T00:00:00Z", "endTime": "2031-01-01T00:00:00Z",
             "metricType": "ProvisionedConcurrencyUtilization", "metricTarget": 0.6, "minCapacity": 1,
             "maxCapacity": 10}]


def provision_path(svc, fn, q, form):
    return f"/services/{svc_seg(svc, q, form)}/functions/{fn}/provision-config"


def test_provision_config_with_fc2(server, env):
    svc, fn = env["svc"], env["fn"]
    put = fc2_call(server.fc2.put_provision_config, svc, "prod", fn, 3).body
    assert put["resource"] == f"{server.account_id}#{svc}#prod#{fn}"
    assert (put["target"], put["current"]) == (3, 0)
    got = fc2_call(server.fc2.get_provision_config, svc, "prod", fn).body
    assert (got["resource"], got["target"], got["current"]) == (put["resource"], 3, 0)
    assert "currentError" in got
    listed = fc2_call(server.fc2.list_provision_configs, svc, "prod").body["provisionConfigs"]
    assert {c["resource"]: c["target"] for c in listed}.get(put["resource"]) == 3


def test_provision_config_with_the_2021_sdk(server, env):
    m = tea_models()
    svc, fn = env["svc"], env["other"]
    req = m.PutProvisionConfigRequest().from_map({"target": 4, "qualifier": "prod", "alwaysAllocateCPU": False,
                                                  "scheduledActions": SCHEDULED,
                                                  "targetTrackingPolicies": TRACKING})
    put = tea_call(server.fc21.put_provision_config, svc, fn, req).body
    assert put["resource"] == f"{server.account_id}#{svc}#prod#{fn}"
    assert (put["target"], put["current"], put["alwaysAllocateCPU"]) == (4, 0, False)
    assert_subset(SCHEDULED, put["scheduledActions"])
    assert_subset(TRACKING, put["targetTrackingPolicies"])
    got = tea_call(server.fc21.get_provision_config, svc, fn, m.GetProvisionConfigRequest(qualifier="prod")).body
    assert got["target"] == 4
    assert_subset(SCHEDULED, got["scheduledActions"])
    listed = tea_call(server.fc21.list_provision_configs, m.ListProvisionConfigsRequest(
        service_name=svc, qualifier="prod")).body["provisionConfigs"]
    assert put["resource"] in [c["resource"] for c in listed]


@pytest.mark.parametrize("client, form", RAW_FORMS)
@pytest.mark.parametrize("qualifier", ["LATEST", "prod"])
def test_provision_config_raw(server, client, form, qualifier):
    svc = new_service(server, "prov")
    fn, _ = new_function(server, svc)
    publish(server, svc)
    create_alias(server, svc, "prod", "1")
    raw = raw_for(server, client)
    path = provision_path(svc, fn, qualifier, form)
    body = {"target": 2, "alwaysAllocateCPU": True, "scheduledActions": SCHEDULED, "targetTrackingPolicies": []}
    put = ok(raw.put(path, json=body, params=q_params(qualifier, form)))
    assert put["resource"] == f"{server.account_id}#{svc}#{qualifier}#{fn}"
    assert (put["target"], put["current"], put["alwaysAllocateCPU"]) == (2, 0, True)
    assert put["targetTrackingPolicies"] in ([], None)
    got = ok(raw.get(path, params=q_params(qualifier, form)))
    assert (got["resource"], got["target"], got["current"]) == (put["resource"], 2, 0)
    assert "currentError" in got
    listed = ok(raw.get("/provision-configs", params={"serviceName": svc, "qualifier": qualifier}))
    assert [(c["resource"], c["target"]) for c in listed["provisionConfigs"]] == [(put["resource"], 2)]


def test_provision_configs_of_one_service_page_with_next_token(server):
    """ListProvisionConfigs filtered by serviceName: each nextToken continues where the page ended."""
    svc = new_service(server, "provpage")
    fns = sorted(new_function(server, svc)[0] for _ in range(3))
    for fn in fns:
        ok(server.raw.put(provision_path(svc, fn, "LATEST", "path"), json={"target": 1}))
    pages = walk_pages(lambda token: ok(server.raw.get("/provision-configs", params=present(
        serviceName=svc, limit=2, nextToken=token))), "provisionConfigs")
    assert [[c["resource"].rsplit("#", 1)[1] for c in page] for page in pages] == [fns[:2], fns[2:]]


def test_provision_config_null_arrays_keep_and_empty_arrays_clear(server, env):
    """Spec 5.9: in PutProvisionConfig, a null (absent) array leaves it unchanged and [] clears it."""
    fn, _ = new_function(server, env["svc"])
    path = provision_path(env["svc"], fn, "prod", "path")
    ok(server.raw.put(path, json={"target": 1, "scheduledActions": SCHEDULED, "targetTrackingPolicies": TRACKING}))
    kept = ok(server.raw.put(path, json={"target": 2, "scheduledActions": None}))
    assert kept["target"] == 2
    assert_subset(SCHEDULED, kept["scheduledActions"])
    assert_subset(TRACKING, kept["targetTrackingPolicies"])
    cleared = ok(server.raw.put(path, json={"target": 2, "scheduledActions": [], "targetTrackingPolicies": []}))
    assert (cleared["scheduledActions"], cleared["targetTrackingPolicies"]) == ([], [])
    got = ok(server.raw.get(path))
    assert (got["target"], got["scheduledActions"], got["targetTrackingPolicies"]) == (2, [], [])


@pytest.mark.parametrize("client, form", RAW_FORMS)
def test_unconfigured_provision_config_has_target_zero(server, env, client, form):
    fn, _ = new_function(server, env["svc"])
    got = ok(raw_for(server, client).get(provision_path(env["svc"], fn, "LATEST", form),
                                         params=q_params("LATEST", form)))
    assert (got["target"], got.get("current", 0)) == (0, 0)


@pytest.mark.parametrize("client, form", RAW_FORMS)
@pytest.mark.parametrize("target, status", [(0, 200), (10000, 200), (10001, 400), (-1, 400)])
def test_provision_target_range(server, env, client, form, target, status):
    r = raw_for(server, client).put(provision_path(env["svc"], env["fn"], "LATEST", form),
                                    json={"target": target}, params=q_params("LATEST", form))
    if status == 200:
        assert ok(r)["target"] == target
    else:
        err(r, 400, "InvalidArgument")


@pytest.mark.parametrize("client, form", RAW_FORMS)
def test_provision_config_on_a_version_is_invalid(server, env, client, form):
    # Only PutProvisionConfig is pinned down; GetProvisionConfig on a version answers "unconfigured" (target 0).
    err(raw_for(server, client).put(provision_path(env["svc"], env["fn"], "1", form), json={"target": 1},
                                    params=q_params("1", form)), 400, "InvalidArgument")


# ============================================================================================================
# Shared not-found cases of the three qualified configs
# ============================================================================================================
CONFIG_KINDS = {
    "provision-config": {"target": 1},
    "on-demand-config": {"maximumInstanceCount": 1},
    "async-invoke-config": {"maxAsyncRetryAttempts": 1},
}


@pytest.mark.parametrize("client, form", RAW_FORMS)
@pytest.mark.parametrize("kind", list(CONFIG_KINDS))
@pytest.mark.parametrize("method", ["PUT", "GET"])
@pytest.mark.parametrize("case, status, code", [
    ("unknown function", 404, "FunctionNotFound"),
    ("unknown alias", 404, "AliasNotFound"),
    ("unknown service", 404, "ServiceNotFound"),
])
def test_config_not_found(server, env, client, form, kind, method, case, status, code):
    svc, fn, q = env["svc"], env["fn"], "prod"
    if case == "unknown function":
        fn = unique("nofn")
    elif case == "unknown alias":
        q = "no_such_alias"
    else:
        svc = unique("nosvc")
    r = raw_for(server, client).request(method, f"/services/{svc_seg(svc, q, form)}/functions/{fn}/{kind}",
                                        json=CONFIG_KINDS[kind] if method == "PUT" else None,
                                        params=q_params(q, form))
    err(r, status, code)


# ============================================================================================================
# On-demand configs
# ============================================================================================================
def on_demand_path(svc, fn, q, form):
    return f"/services/{svc_seg(svc, q, form)}/functions/{fn}/on-demand-config"


def walk_on_demand(server, client="raw16", limit=2):
    pages = walk_pages(lambda token: ok(raw_for(server, client).get("/on-demand-configs", params=present(
        limit=limit, nextToken=token))), "configs", limit, max_pages=200)
    return sum(pages, [])


def test_on_demand_config_with_fc2(server, env):
    svc, fn = env["svc"], env["fn"]
    resource = f"services/{svc}.prod/functions/{fn}"
    put = fc2_call(server.fc2.put_on_demand_config, svc, "prod", fn, 10).body
    assert put == {**put, "resource": resource, "maximumInstanceCount": 10}
    got = fc2_call(server.fc2.get_on_demand_config, svc, "prod", fn).body
    assert (got["resource"], got["maximumInstanceCount"]) == (resource, 10)
    listed = fc2_call(server.fc2.list_on_demand_config, limit=100).body["configs"]
    assert {c["resource"]: c["maximumInstanceCount"] for c in listed}.get(resource) == 10
    fc2_call(server.fc2.delete_on_demand_config, svc, "prod", fn)
    expect_api_error(404, "OnDemandConfigNotFound", fc2_call, server.fc2.get_on_demand_config, svc, "prod", fn)


def test_on_demand_config_with_the_2021_sdk(server, env):
    m = tea_models()
    svc, fn = env["svc"], env["other"]
    resource = f"services/{svc}.LATEST/functions/{fn}"
    put = tea_call(server.fc21.put_function_on_demand_config, svc, fn, m.PutFunctionOnDemandConfigRequest(
        maximum_instance_count=3, qualifier="LATEST")).body
    assert (put["resource"], put["maximumInstanceCount"]) == (resource, 3)
    got = tea_call(server.fc21.get_function_on_demand_config, svc, fn,
                   m.GetFunctionOnDemandConfigRequest(qualifier="LATEST")).body
    assert (got["resource"], got["maximumInstanceCount"]) == (resource, 3)
    listed = tea_call(server.fc21.list_on_demand_configs, m.ListOnDemandConfigsRequest(limit=100)).body["configs"]
    assert resource in [c["resource"] for c in listed]
    deleted = tea_call(server.fc21.delete_function_on_demand_config, svc, fn,
                       m.DeleteFunctionOnDemandConfigRequest(qualifier="LATEST"))
    deleted.assert_status(204)
    expect_api_error(404, "OnDemandConfigNotFound", tea_call, server.fc21.get_function_on_demand_config, svc, fn,
                     m.GetFunctionOnDemandConfigRequest(qualifier="LATEST"))


@pytest.mark.parametrize("client, form", RAW_FORMS)
@pytest.mark.parametrize("qualifier", ["LATEST", "prod"])
def test_on_demand_config_raw(server, env, client, form, qualifier):
    svc = env["svc"]
    fn, _ = new_function(server, svc)
    raw = raw_for(server, client)
    path, params = on_demand_path(svc, fn, qualifier, form), q_params(qualifier, form)
    err(raw.get(path, params=params), 404, "OnDemandConfigNotFound")
    resource = f"services/{svc}.{qualifier}/functions/{fn}"
    put = ok(raw.put(path, json={"maximumInstanceCount": 7}, params=params))
    assert (put["resource"], put["maximumInstanceCount"]) == (resource, 7)
    again = ok(raw.put(path, json={"maximumInstanceCount": 8}, params=params))
    assert again["maximumInstanceCount"] == 8
    assert ok(raw.get(path, params=params))["maximumInstanceCount"] == 8
    assert {c["resource"]: c["maximumInstanceCount"] for c in walk_on_demand(server, client)}.get(resource) == 8
    ok(raw.delete(path, params=params), 204)
    err(raw.get(path, params=params), 404, "OnDemandConfigNotFound")
    assert resource not in [c["resource"] for c in walk_on_demand(server, client)]


# ============================================================================================================
# Async invoke configs
# ============================================================================================================
# openfc delivers destination records to functions only (other kinds are refused: see test_async.py).
DESTINATIONS = {"onSuccess": {"destination": "acs:fc:::services/ok/functions/handler"},
                "onFailure": {"destination": "acs:fc:::services/dlq/functions/handler"}}


def async_path(svc, fn, q, form):
    return f"/services/{svc_seg(svc, q, form)}/functions/{fn}/async-invoke-config"


def assert_async(got, svc, fn, qualifier, sent):
    assert_subset(sent, got)
    assert (got["service"], got["function"], got["qualifier"]) == (svc, fn, qualifier)
    assert_recent(got["createdTime"])
    assert_recent(got["lastModifiedTime"])


def test_async_config_with_fc2(server, env):
    svc, fn = env["svc"], env["fn"]
    cfg = {"maxAsyncEventAgeInSeconds": 300, "maxAsyncRetryAttempts": 1, "destinationConfig": DESTINATIONS}
    put = fc2_call(server.fc2.put_function_async_invoke_config, svc, "prod", fn, cfg).body
    assert_async(put, svc, fn, "prod", cfg)
    got = fc2_call(server.fc2.get_function_async_invoke_config, svc, "prod", fn).body
    assert_async(got, svc, fn, "prod", cfg)
    listed = fc2_call(server.fc2.list_function_async_invoke_configs, svc, fn).body["configs"]
    assert [(c["qualifier"], c["maxAsyncRetryAttempts"]) for c in listed] == [("prod", 1)]
    fc2_call(server.fc2.delete_function_async_invoke_config, svc, "prod", fn)
    expect_api_error(404, "AsyncConfigNotExists", fc2_call, server.fc2.get_function_async_invoke_config, svc,
                     "prod", fn)


def test_async_config_with_the_2021_sdk(server, env):
    m = tea_models()
    svc, fn = env["svc"], env["other"]
    cfg = {"maxAsyncEventAgeInSeconds": 86400, "maxAsyncRetryAttempts": 8, "destinationConfig": DESTINATIONS,
           "statefulInvocation": True}
    req = m.PutFunctionAsyncInvokeConfigRequest().from_map({**cfg, "qualifier": "LATEST"})
    put = tea_call(server.fc21.put_function_async_invoke_config, svc, fn, req).body
    assert_async(put, svc, fn, "LATEST", cfg)
    got = tea_call(server.fc21.get_function_async_invoke_config, svc, fn,
                   m.GetFunctionAsyncInvokeConfigRequest(qualifier="LATEST")).body
    assert_async(got, svc, fn, "LATEST", cfg)
    listed = tea_call(server.fc21.list_function_async_invoke_configs, svc, fn,
                      m.ListFunctionAsyncInvokeConfigsRequest()).body["configs"]
    assert [c["qualifier"] for c in listed] == ["LATEST"]
    deleted = tea_call(server.fc21.delete_function_async_invoke_config, svc, fn,
                       m.DeleteFunctionAsyncInvokeConfigRequest(qualifier="LATEST"))
    deleted.assert_status(204)
    expect_api_error(404, "AsyncConfigNotExists", tea_call, server.fc21.get_function_async_invoke_config, svc, fn,
                     m.GetFunctionAsyncInvokeConfigRequest(qualifier="LATEST"))


@pytest.mark.parametrize("client, form", RAW_FORMS)
def test_async_config_raw(server, env, client, form):
    svc = env["svc"]
    fn, _ = new_function(server, svc)
    raw = raw_for(server, client)
    for q in ("LATEST", "prod"):
        err(raw.get(async_path(svc, fn, q, form), params=q_params(q, form)), 404, "AsyncConfigNotExists")
    put = ok(raw.put(async_path(svc, fn, "LATEST", form), json={"maxAsyncEventAgeInSeconds": 60},
                     params=q_params("LATEST", form)))
    assert_async(put, svc, fn, "LATEST", {"maxAsyncEventAgeInSeconds": 60})
    assert put["maxAsyncRetryAttempts"] == 3, "default retry attempts"
    ok(raw.put(async_path(svc, fn, "prod", form),
               json={"maxAsyncRetryAttempts": 0, "destinationConfig": DESTINATIONS}, params=q_params("prod", form)))
    # Putting again updates in place: createdTime stays.
    again = ok(raw.put(async_path(svc, fn, "LATEST", form), json={"maxAsyncEventAgeInSeconds": 120},
                       params=q_params("LATEST", form)))
    assert again["maxAsyncEventAgeInSeconds"] == 120
    assert again["createdTime"] == put["createdTime"]
    listed = ok(raw.get(f"/services/{svc}/functions/{fn}/async-invoke-configs"))["configs"]
    assert sorted((c["qualifier"], c["maxAsyncRetryAttempts"]) for c in listed) == [("LATEST", 3), ("prod", 0)]
    ok(raw.delete(async_path(svc, fn, "prod", form), params=q_params("prod", form)), 204)
    err(raw.get(async_path(svc, fn, "prod", form), params=q_params("prod", form)), 404, "AsyncConfigNotExists")
    listed = ok(raw.get(f"/services/{svc}/functions/{fn}/async-invoke-configs"))["configs"]
    assert [c["qualifier"] for c in listed] == ["LATEST"]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("body, status", [
    ({"maxAsyncEventAgeInSeconds": 1}, 200),
    ({"maxAsyncEventAgeInSeconds": 86400}, 200),
    ({"maxAsyncEventAgeInSeconds": 0}, 400),
    ({"maxAsyncEventAgeInSeconds": 86401}, 400),
    ({"maxAsyncRetryAttempts": 0}, 200),
    ({"maxAsyncRetryAttempts": 8}, 200),
    ({"maxAsyncRetryAttempts": 9}, 400),
    ({"maxAsyncRetryAttempts": -1}, 400),
    ({"destinationConfig": {"onSuccess": {"destination": "not-an-arn"}}}, 400),
    ({"destinationConfig": {"onFailure": {"destination": "https://example.com/hook"}}}, 400),
    # openfc delivers records to functions only: an MNS queue would be accepted and silently never written.
    ({"destinationConfig": {"onFailure": {"destination": "acs:mns:cn-hangzhou:1:/queues/q/messages"}}}, 400),
    ({"destinationConfig": {"onFailure": {"destination": "acs:fc:::services/dlq/functions/f"}}}, 200),
], ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v)[:60])
def test_async_config_validation(server, env, client, body, status):
    fn, _ = new_function(server, env["svc"])
    r = raw_for(server, client).put(async_path(env["svc"], fn, "LATEST", "path"), json=body)
    if status == 200:
        assert_subset(body, ok(r))
    else:
        err(r, 400, "InvalidArgument")
        err(raw_for(server, client).get(async_path(env["svc"], fn, "LATEST", "path")), 404, "AsyncConfigNotExists")


# ============================================================================================================
# Configs do not outlive their function
# ============================================================================================================
def test_a_deleted_and_recreated_function_inherits_no_configs(server):
    """Delete-and-recreate deploys: the on-demand cap, async config and provision config of a deleted function
    were kept and silently applied to a new function of the same name."""
    svc = new_service(server)
    fn, _ = new_function(server, svc)
    create_alias(server, svc, "prod", publish(server, svc)["versionId"])
    ok(server.raw.put(f"/services/{svc}.LATEST/functions/{fn}/on-demand-config", json={"maximumInstanceCount": 1}))
    ok(server.raw.put(f"/services/{svc}.LATEST/functions/{fn}/async-invoke-config", json={"maxAsyncRetryAttempts": 0}))
    ok(server.raw.put(f"/services/{svc}.prod/functions/{fn}/provision-config", json={"target": 0}))
    assert server.raw.delete(f"/services/{svc}/functions/{fn}").status_code == 204
    new_function(server, svc, name=fn)
    err(server.raw.get(f"/services/{svc}.LATEST/functions/{fn}/on-demand-config"), 404, "OnDemandConfigNotFound")
    err(server.raw.get(f"/services/{svc}.LATEST/functions/{fn}/async-invoke-config"), 404, "AsyncConfigNotExists")
    listed = ok(server.raw.get("/provision-configs", params={"serviceName": svc}))
    assert [c for c in listed.get("provisionConfigs") or [] if c["resource"].endswith(f"#{fn}")] == [], listed
