"""Custom domains route (issue 8 item 5, spec 5.8): a request whose Host (port stripped, any case) is a custom
domain goes to the function its routeConfig picks — exact paths before /* prefixes, the longest prefix first,
the route's methods and qualifier — with the path its rewriteConfig gives (equal, wildcard, regex rules), and
runs as an HTTP-trigger request does. No route: 404 DomainRouteNotFound. Names keep the spelling they were
created with and are found in any case; a certificate's private key is returned as null. On both backends."""

import uuid

import pytest
import requests

import rawsign
from helpers import assert_fc_error, assert_request_id
from invoke_helpers import (create_alias, custom_zip, http_trigger, new_function, new_service, publish, py_zip,
                            update_code)
from resources_helpers import CERT_PEM, KEY_PEM
from sdk import expect_api_error, fc2_call

ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]


def echo(tag):
    """A WSGI function answering '<tag> METHOD PATH?QUERY body=BODY'."""
    return py_zip('''
        def handler(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [("TAG %s %s?%s body=%s" % (environ["REQUEST_METHOD"], environ["PATH_INFO"],
                     environ["QUERY_STRING"], body.decode())).encode()]
    '''.replace("TAG", tag))


# The helpers' custom runtime answers 404 "unknown path <uri>" to anything but /invoke and /initialize: it shows
# the URI an HTTP request arrives with.
CUSTOM = custom_zip('''
    def invoke(headers, body):
        return 200, [], body
''')


@pytest.fixture(scope="module")
def site(server):
    """A service whose functions each answer with their own tag, all with an HTTP trigger for every method."""
    svc = new_service(server, "dom")
    fns = {}
    for tag in ("root", "api", "deep", "exact", "getonly"):
        fns[tag] = new_function(server, svc, echo(tag), runtime="python3.10")
    for tag in ("root", "api", "deep", "exact"):
        http_trigger(server, svc, fns[tag], ALL_METHODS)
    http_trigger(server, svc, fns["getonly"], ["GET"])
    fns["custom"] = new_function(server, svc, CUSTOM, runtime="custom")
    http_trigger(server, svc, fns["custom"], ALL_METHODS)
    fns["signed"] = new_function(server, svc, echo("signed"), runtime="python3.10")
    http_trigger(server, svc, fns["signed"], ALL_METHODS, auth="function")
    fns["notrigger"] = new_function(server, svc, echo("notrigger"), runtime="python3.10")
    # "pinned": version 1 answers "v1", alias prod -> 1, LATEST then answers "latest"; its trigger serves prod.
    fns["pinned"] = new_function(server, svc, echo("v1"), runtime="python3.10")
    version = publish(server, svc)
    create_alias(server, svc, "prod", version)
    update_code(server, svc, fns["pinned"], echo("latest"))
    http_trigger(server, svc, fns["pinned"], ALL_METHODS, qualifier="prod")
    return {"svc": svc, **fns}


def name(prefix="site"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example.com"


def route(site, path, fn, **extra):
    return {"path": path, "serviceName": site["svc"], "functionName": site[fn], **extra}


def create_domain(server, domain, routes, **extra):
    r = server.raw.post("/custom-domains", json={"domainName": domain, "protocol": "HTTP",
                                                  "routeConfig": {"routes": routes}, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def call(server, host, path, method="GET", **kw):
    """A plain (unsigned) request to openfc with this Host header."""
    headers = {"Host": host, **kw.pop("headers", {})}
    return requests.request(method, server.endpoint + path, headers=headers, timeout=60, allow_redirects=False, **kw)


def answer(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert_request_id(resp)
    assert "X-Fc-Error-Type" not in resp.headers, resp.text
    return resp.text


def test_each_rewrite_kind(server, site):
    host = name("rw")
    create_domain(server, host, [
        route(site, "/eq", "root", rewriteConfig={"equalRules": [{"match": "/eq", "replacement": "/equal/target"}]}),
        route(site, "/wild/*", "api", rewriteConfig={
            "wildcardRules": [{"match": "^/wild/*/*.html", "replacement": "/pages/$2/$1"}]}),
        route(site, "/re/*", "deep", rewriteConfig={
            "regexRules": [{"match": r"^/re/(\w+)/(\d+)$", "replacement": "/regex/$2/$1"}]}),
        route(site, "/all/*", "exact", rewriteConfig={
            "equalRules": [{"match": "/all/x", "replacement": "/by-equal"}],
            "wildcardRules": [{"match": "/all/*", "replacement": "/by-wildcard/$1"}],
            "regexRules": [{"match": "^/all/(.*)$", "replacement": "/by-regex/$1"}]}),
    ])
    assert answer(call(server, host, "/eq?a=1")) == f"root GET /equal/target?a=1 body="
    assert answer(call(server, host, "/wild/docs/intro.html", "POST", data=b"hi")) == \
        f"api POST /pages/intro/docs? body=hi"
    # A wildcard rule that does not match leaves the path as it was.
    assert answer(call(server, host, "/wild/docs/intro.txt")) == f"api GET /wild/docs/intro.txt? body="
    assert answer(call(server, host, "/re/user/42?x=y")) == f"deep GET /regex/42/user?x=y body="
    # FC's order: equal rules, then wildcard rules, then regex rules; the first that matches is the only one.
    assert answer(call(server, host, "/all/x")).startswith("exact GET /by-equal? ")
    assert answer(call(server, host, "/all/y")).startswith("exact GET /by-wildcard/y? ")


def test_exact_paths_first_then_the_longest_prefix(server, site):
    host = name("lpm")
    create_domain(server, host, [
        route(site, "/*", "root"),
        route(site, "/api/*", "api"),
        route(site, "/api/v2/*", "deep"),
        route(site, "/api/v2/exact", "exact"),
    ])
    tag = lambda path: answer(call(server, host, path)).split(" ")[0]  # noqa: E731
    assert tag("/api/v2/x/y") == "deep"
    assert tag("/api/v2/exact") == "exact"
    assert tag("/api/v2/exact/more") == "deep"
    assert tag("/api/v1") == "api"
    assert tag("/api") == "root", "/api/* covers the paths under /api/ only"
    assert tag("/") == "root"
    # No rewrite rules: the function sees the request's own path.
    assert answer(call(server, host, "/api/v2/x/y?q=1")) == f"deep GET /api/v2/x/y?q=1 body="


def test_a_route_qualifier_runs_that_version(server, site):
    host = name("qual")
    create_domain(server, host, [route(site, "/prod/*", "pinned", qualifier="prod"),
                                 route(site, "/latest/*", "pinned")])
    assert answer(call(server, host, "/prod/x")).startswith("v1 GET /prod/x")
    # The function's HTTP trigger serves prod only, as on FC: LATEST through the domain has no trigger.
    assert_fc_error(call(server, host, "/latest/x"), 404, "TriggerNotFound")


def test_methods_are_filtered(server, site):
    host = name("meth")
    create_domain(server, host, [
        route(site, "/ro/*", "api", methods=["GET", "HEAD"]),
        route(site, "/rw/*", "api", methods=["POST"]),
        route(site, "/trigger-get-only", "getonly", methods=["GET", "POST"]),
    ])
    assert answer(call(server, host, "/ro/x")).startswith("api GET /ro/x")
    body = assert_fc_error(call(server, host, "/ro/x", "POST"), 405, "MethodNotAllowed")
    assert "GET" in body["ErrorMessage"]
    assert_fc_error(call(server, host, "/rw/x", "DELETE"), 405, "MethodNotAllowed")
    assert answer(call(server, host, "/rw/x", "POST", data=b"b")).startswith("api POST /rw/x")
    # The route allows POST, the function's HTTP trigger does not.
    assert answer(call(server, host, "/trigger-get-only")).startswith("getonly GET")
    assert_fc_error(call(server, host, "/trigger-get-only", "POST"), 405, "MethodNotAllowed")
    # A route for another method gives way to the next route that matches the path.
    both = name("meth2")
    create_domain(server, both, [route(site, "/api/*", "api", methods=["GET"]), route(site, "/*", "root")])
    assert answer(call(server, both, "/api/x", "PUT")).startswith("root PUT /api/x")
    assert answer(call(server, both, "/api/x")).startswith("api GET /api/x")


def test_no_route_is_a_404_with_an_fc_body(server, site):
    host = name("none")
    create_domain(server, host, [route(site, "/only", "exact"), route(site, "/docs/*", "api")])
    for path in ("/other", "/only/", "/docs", "/"):
        body = assert_fc_error(call(server, host, path), 404, "DomainRouteNotFound")
        assert host in body["ErrorMessage"] and path in body["ErrorMessage"], body
    # A domain with no routes at all.
    empty = name("empty")
    create_domain(server, empty, [])
    assert_fc_error(call(server, empty, "/x", "POST", data=b"x"), 404, "DomainRouteNotFound")


def test_host_with_a_port_and_in_another_case(server, site):
    host = name("case")
    create_domain(server, host, [route(site, "/*", "root")])
    for sent in (f"{host}:80", host.upper(), f"{host.upper()}:{server.port}", f"{host}."):
        assert answer(call(server, sent, "/p")) == "root GET /p? body="


def test_custom_runtimes_see_the_routed_path(server, site):
    host = name("cust")
    create_domain(server, host, [route(site, "/app/*", "custom", rewriteConfig={
        "wildcardRules": [{"match": "^/app/*", "replacement": "/$1"}]})])
    r = call(server, host, "/app/x/y?q=1", "POST", data=b"p")
    # The function's own 404: it saw the rewritten path, not a /proxy/ URI.
    assert r.status_code == 404, r.text
    assert r.text == "unknown path /x/y?q=1"


def test_anonymous_unless_signed(server, site):
    host = name("sig")
    create_domain(server, host, [route(site, "/*", "signed")])
    assert_fc_error(call(server, host, "/s"), 400, "MissingRequiredHeader")
    headers = rawsign.signed_headers(server.ak, server.secret, "GET", "/s", {"Host": host})
    r = requests.get(server.endpoint + "/s", headers=headers, timeout=60)
    assert answer(r).startswith("signed GET /s? ")
    bad = dict(headers, Authorization=rawsign.authorization(server.ak, server.secret + "x", "GET", "/s", headers))
    assert_fc_error(requests.get(server.endpoint + "/s", headers=bad, timeout=60), 403, "SignatureNotMatch")


def test_the_function_needs_an_http_trigger(server, site):
    host = name("notrig")
    create_domain(server, host, [route(site, "/*", "notrigger")])
    assert_fc_error(call(server, host, "/"), 404, "TriggerNotFound")


def test_routes_follow_updates_and_deletes(server, site):
    host = name("upd")
    create_domain(server, host, [route(site, "/*", "root")])
    assert answer(call(server, host, "/a")).startswith("root ")
    r = server.raw.put(f"/custom-domains/{host}", json={"routeConfig": {"routes": [route(site, "/*", "api")]}})
    assert r.status_code == 200, r.text
    assert answer(call(server, host, "/a")).startswith("api ")
    r = server.raw.delete(f"/custom-domains/{host}")
    assert r.status_code == 204, r.text
    # No longer a custom domain: the request is an (unsigned) API request.
    r = call(server, host, "/a")
    assert r.status_code != 200 and r.json()["ErrorCode"] != "DomainRouteNotFound", r.text
    # Hosts that are no custom domain reach openfc itself.
    assert call(server, name("nobody"), "/health").status_code == 200


@pytest.mark.parametrize("client", ["raw", "fc2"])
def test_mixed_case_names_keep_their_spelling(server, site, client):
    spelled = f"MiXeD-{uuid.uuid4().hex[:8]}.Example.COM"
    routes = {"routes": [route(site, "/*", "root")]}
    if client == "fc2":
        created = fc2_call(server.fc2.create_custom_domain, spelled, protocol="HTTP", routeConfig=routes).body
    else:
        created = create_domain(server, spelled, routes["routes"])
    assert created["domainName"] == spelled
    for asked in (spelled, spelled.lower(), spelled.upper()):
        if client == "fc2":
            got = fc2_call(server.fc2.get_custom_domain, asked).body
        else:
            r = server.raw.get(f"/custom-domains/{asked}")
            assert r.status_code == 200, (asked, r.text)
            got = r.json()
        assert got["domainName"] == spelled
    listed = server.raw.get("/custom-domains", params={"prefix": spelled.split("-")[0]}).json()["customDomains"]
    assert spelled in [d["domainName"] for d in listed]
    # Any case routes, and the name is taken in every spelling.
    assert answer(call(server, spelled.lower(), "/x")).startswith("root ")
    r = server.raw.post("/custom-domains", json={"domainName": spelled.lower(), "routeConfig": routes})
    assert_fc_error(r, 409, "DomainNameAlreadyExists")
    r = server.raw.put(f"/custom-domains/{spelled}", json={"protocol": "HTTP"})
    assert r.status_code == 200 and r.json()["domainName"] == spelled, r.text
    if client == "fc2":
        fc2_call(server.fc2.delete_custom_domain, spelled)
        expect_api_error(404, "DomainNameNotFound", fc2_call, server.fc2.get_custom_domain, spelled)
    else:
        r = server.raw.delete(f"/custom-domains/{spelled}")
        assert r.status_code == 204, r.text
        assert_fc_error(server.raw.get(f"/custom-domains/{spelled}"), 404, "DomainNameNotFound")
    # Deleted: the name is free again.
    create_domain(server, spelled.lower(), routes["routes"])


def test_certificate_private_key_is_returned_as_null(server, site):
    host = name("tls")
    cert = {"certName": "site-cert", "certificate": CERT_PEM, "privateKey": KEY_PEM}
    created = create_domain(server, host, [route(site, "/*", "root")], protocol="HTTP,HTTPS", certConfig=cert)
    got = server.raw.get(f"/custom-domains/{host}").json()
    listed = [d for d in server.raw.get("/custom-domains", params={"prefix": host}).json()["customDomains"]]
    for body in (created, got, listed[0]):
        assert body["certConfig"]["certName"] == "site-cert"
        assert body["certConfig"]["certificate"] == CERT_PEM
        assert "privateKey" in body["certConfig"] and body["certConfig"]["privateKey"] is None, body["certConfig"]
        assert "PRIVATE KEY" not in str(body)
    # The certConfig sent back as it was read (key null) keeps the stored key.
    r = server.raw.put(f"/custom-domains/{host}", json={"certConfig": got["certConfig"], "protocol": "HTTPS"})
    assert r.status_code == 200, r.text
    assert r.json()["protocol"] == "HTTPS" and r.json()["certConfig"]["privateKey"] is None
