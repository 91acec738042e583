"""Several accounts on one openfc (issue: hardening, item 4): `openfc accounts create|list|delete`, keys of an
account (`openfc keys create --account`), and the account boundary through the official SDKs — another
account's services, functions, code, logs, layers, tags, custom domain names and anonymous HTTP triggers are
out of reach (404 as if they did not exist, or FC's conflict for global names); background work (timers) runs
for every account; an account with resources is not deleted."""

import base64
import json
import time

import pytest
import requests

import rawsign
from helpers import fc2_error, unique
from invoke_helpers import http_trigger, invoke, invoke_ok, new_function, new_service, py_zip, wait_until

ECHO = py_zip('''
    import json
    def handler(event, context):
        print("RAN " + event.decode(), flush=True)
        return "account " + context.account_id
''')

WEB = py_zip('''
    def handler(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"web of the first account"]
''')


class Account:
    def __init__(self, srv, creds):
        self.id, self.ak, self.secret = creds["accountId"], creds["accessKeyId"], creds["accessKeySecret"]
        self.fc2 = srv.fc2_with(self.ak, self.secret)
        self.raw = rawsign.RawClient(srv.endpoint, self.ak, self.secret, rawsign.PREFIX_2016)
        self.endpoint, self.port = srv.endpoint, srv.port


@pytest.fixture(scope="module")
def srv(server_factory, backend):
    s = server_factory.start(backend, args=["--timer-min-interval", "1", "--prestarted-runtimes", "0"])
    yield s
    s.close()


@pytest.fixture(scope="module")
def other(srv):
    created = json.loads(srv.cli("accounts", "create").stdout)
    assert created["accountId"] != srv.account_id and len(created["accountId"]) == 16
    return Account(srv, created)


@pytest.fixture(scope="module")
def mine(srv):
    """The first account's service, function (with an anonymous HTTP trigger), private layer and domain."""
    svc = new_service(srv, "acct")
    fn = new_function(srv, svc, ECHO)
    web = new_function(srv, svc, WEB)
    http_trigger(srv, svc, web, methods=("GET",))
    layer = "acctlayer-" + unique("l")[-8:]
    r = srv.raw.post(f"/layers/{layer}/versions", json={"code": {"zipFile": base64.b64encode(ECHO).decode()},
                                                         "compatibleRuntime": ["python3.10"]})
    assert r.status_code == 200, r.text
    domain = unique("acct").replace("_", "-") + ".example.com"
    r = srv.raw.post("/custom-domains", json={"domainName": domain, "protocol": "HTTP", "routeConfig": {"routes": [
        {"path": "/*", "serviceName": svc, "functionName": web}]}})
    assert r.status_code == 200, r.text
    arn = f"acs:fc:{srv.region}:{srv.account_id}:layers/{layer}/versions/1"
    return {"svc": svc, "fn": fn, "web": web, "layer": layer, "layer_arn": arn, "domain": domain}


def test_accounts_are_listed_and_keys_can_be_made_for_one(srv, other):
    listed = [json.loads(l)["accountId"] for l in srv.cli("accounts", "list").stdout.splitlines()]
    assert listed[0] == srv.account_id and other.id in listed
    key = json.loads(srv.cli("keys", "create", "--account", other.id).stdout)
    assert key["accountId"] == other.id
    assert srv.fc2_with(key["accessKeyId"], key["accessKeySecret"]).list_services().data["services"] == []
    bad = srv.cli("keys", "create", "--account", "1111222233334444", check=False)
    assert bad.returncode != 0 and "no account" in bad.stderr


def test_another_accounts_resources_are_out_of_reach(srv, other, mine):
    svc, fn = mine["svc"], mine["fn"]
    assert svc not in [s["serviceName"] for s in other.fc2.list_services().data["services"]]
    fc2_error(404, "ServiceNotFound", other.fc2.get_service, svc)
    fc2_error(404, "ServiceNotFound", other.fc2.update_service, svc, description="taken over")
    fc2_error(404, "ServiceNotFound", other.fc2.delete_service, svc)
    fc2_error(404, "ServiceNotFound", other.fc2.get_function, svc, fn)
    fc2_error(404, "ServiceNotFound", other.fc2.get_function_code, svc, fn)
    fc2_error(404, "ServiceNotFound", other.fc2.invoke_function, svc, fn, payload=b"x")
    assert other.raw.get(f"/services/{svc}/functions/{fn}/logs").status_code == 404
    assert other.raw.get(f"/services/{svc}/functions/{fn}/instances").status_code == 404
    # The same names are free in the other account, and stay apart.
    assert other.raw.post("/services", json={"serviceName": svc}).status_code == 200
    fc2_error(404, "FunctionNotFound", other.fc2.get_function, svc, fn)
    assert srv.fc2.get_function(svc, fn).data["functionName"] == fn
    # Layers: not listed, not readable by ARN.
    assert mine["layer"] not in [l["layerName"] for l in other.raw.get("/layers").json()["layers"]]
    from urllib.parse import quote
    r = other.raw.get(f"/layerarn/{quote(mine['layer_arn'], safe='')}")
    assert r.status_code == 404 and r.json()["ErrorCode"] == "LayerVersionNotFound", r.text
    assert srv.raw.get(f"/layerarn/{quote(mine['layer_arn'], safe='')}").status_code == 200
    # Tags: another account's resource cannot be tagged or read.
    arn = f"acs:fc:{srv.region}:{srv.account_id}:services/{svc}"
    r = other.raw.post("/tag", json={"resourceArn": arn, "tags": {"k": "v"}})
    assert r.status_code in (400, 403, 404), r.text
    # Custom domain names are global: one owner.
    r = other.raw.post("/custom-domains", json={"domainName": mine["domain"], "protocol": "HTTP"})
    assert r.status_code == 409 and r.json()["ErrorCode"] == "DomainNameAlreadyExists", r.text
    assert invoke_ok(srv, svc, fn, b"mine").body == f"account {srv.account_id}".encode()


def test_anonymous_http_triggers_reach_the_account_named_by_the_host(srv, other, mine):
    path = f"/2016-08-15/proxy/{mine['svc']}.LATEST/{mine['web']}/"
    plain = requests.get(srv.endpoint + path, timeout=30)
    assert plain.status_code == 200 and plain.text == "web of the first account", plain.text
    named = requests.get(srv.endpoint + path, headers={"Host": f"{srv.account_id}.cn-hangzhou.fc.example.com"}, timeout=30)
    assert named.status_code == 200, named.text
    theirs = requests.get(srv.endpoint + path, headers={"Host": f"{other.id}.cn-hangzhou.fc.example.com"}, timeout=30)
    assert theirs.status_code == 404, theirs.text


def test_timers_fire_in_every_account(srv, other):
    svc = unique("accttm")
    assert other.raw.post("/services", json={"serviceName": svc}).status_code == 200
    fn = unique("tick")
    r = other.raw.post(f"/services/{svc}/functions", json={"functionName": fn, "runtime": "python3.10",
                                                           "handler": "index.handler",
                                                           "code": {"zipFile": base64.b64encode(ECHO).decode()}})
    assert r.status_code == 200, r.text
    r = other.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": "t", "triggerType": "timer",
        "triggerConfig": {"cronExpression": "@every 1s", "enable": True, "payload": "tick"}})
    assert r.status_code == 200, r.text

    def ran():
        lines = other.raw.get(f"/services/{svc}/functions/{fn}/logs").json()["lines"]
        return [l for l in lines if "RAN " in l]

    wait_until(ran, 15, interval=0.5, what="the other account's timer fired")
    assert other.raw.delete(f"/services/{svc}/functions/{fn}/triggers/t").status_code == 204


def test_an_account_with_resources_is_not_deleted_then_is(srv):
    created = json.loads(srv.cli("accounts", "create").stdout)
    acct = Account(srv, created)
    svc = unique("acctdel")
    assert acct.raw.post("/services", json={"serviceName": svc}).status_code == 200
    refused = srv.cli("accounts", "delete", acct.id, check=False)
    assert refused.returncode != 0 and "delete them first" in refused.stderr, refused.stderr
    assert acct.raw.delete(f"/services/{svc}").status_code == 204
    srv.cli("accounts", "delete", acct.id)
    assert acct.id not in srv.cli("accounts", "list").stdout
    # On PostgreSQL nodes drop the key at once (notified); on SQLite within --key-cache-ttl (1 s).
    time.sleep(1.5)
    fc2_error(403, "InvalidAccessKeyID", acct.fc2.list_services)
    first = srv.cli("accounts", "delete", srv.account_id, check=False)
    assert first.returncode != 0 and "first account" in first.stderr
