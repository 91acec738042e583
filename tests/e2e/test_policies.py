"""AccessKeys with RAM-style policies (hardening issue, item 4, first part): `openfc keys create --policy FILE`
makes a key that may do only what its policy allows — checked once per request from the endpoint's RAM action
and resource ARN, before the body is read — with wildcards, Deny winning, and nothing allowed that no statement
allows. Keys without a policy stay their account's root. Through aliyun-fc2 (FC signature), the 2021 SDK
(ACS3) and signed HTTP-trigger calls."""

import json

import pytest

from conftest import tea_client
from helpers import unique
from invoke_helpers import new_function, new_service, py_zip
from sdk import expect_api_error, fc2_call

ECHO = py_zip("def handler(event, context):\n    return b'echo ' + event\n")
# The same as an HTTP function (WSGI).
WSGI_ECHO = py_zip('''
    def handler(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"echo " + body]
''')


@pytest.fixture(scope="module")
def srv(server):
    return server


@pytest.fixture(scope="module")
def web(srv):
    """Two services: `web` (which the policy opens) and `other` (which it does not), each with a function,
    plus web's `secret` function, which the policy denies outright."""
    web, other = new_service(srv, "web"), new_service(srv, "other")
    return {"web": web, "other": other, "f": new_function(srv, web, ECHO), "g": new_function(srv, other, ECHO),
            "secret": new_function(srv, web, ECHO, name="secret")}


def policy_key(srv, tmp_path, policy):
    path = tmp_path / f"{unique('policy')}.json"
    path.write_text(json.dumps(policy))
    out = json.loads(srv.cli("keys", "create", "--policy", str(path)).stdout)
    return out["accessKeyId"], out["accessKeySecret"]


def reader_policy(web):
    svc = web["web"]
    return {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["fc:GetFunction", "fc:List*", "fc:InvokeFunction"],
         "Resource": [f"acs:fc:*:*:services/{svc}", f"acs:fc:*:*:services/{svc}/*", f"acs:fc:*:*:services/{svc}.*"]},
        {"Effect": "Deny", "Action": "fc:*", "Resource": f"acs:fc:*:*:services/{svc}*/functions/secret"},
    ]}


def assert_denied(e, action):
    assert e.status == 403 and e.code == "AccessDenied", str(e)
    assert f"'fc:{action}'" in e.body and "acs:fc:" in e.body, e.body


def test_a_policy_key_does_only_what_its_policy_allows(srv, web, tmp_path):
    ak, sk = policy_key(srv, tmp_path, reader_policy(web))
    c = srv.fc2_with(ak, sk)
    got = fc2_call(c.get_function, web["web"], web["f"]).body
    assert got["functionName"] == web["f"]
    names = [f["functionName"] for f in fc2_call(c.list_functions, web["web"]).body["functions"]]
    assert web["f"] in names
    assert c.invoke_function(web["web"], web["f"], payload=b"hi").data == b"echo hi"
    assert_denied(expect_api_error(403, "AccessDenied", fc2_call, c.get_function, web["other"], web["g"]), "GetFunction")
    assert_denied(expect_api_error(403, "AccessDenied", fc2_call, c.update_function, web["web"], web["f"],
                                   description="changed"), "UpdateFunction")
    assert_denied(expect_api_error(403, "AccessDenied", fc2_call, c.create_service, unique("nope")), "CreateService")
    # Deny wins over the Allow that covers the whole service.
    assert_denied(expect_api_error(403, "AccessDenied", fc2_call, c.get_function, web["web"], "secret"), "GetFunction")
    # Nothing changed behind the refusals.
    assert fc2_call(srv.fc2.get_function, web["web"], web["f"]).body.get("description", "") != "changed"


def test_the_2021_sdk_is_held_to_the_same_policy(srv, web, tmp_path):
    from alibabacloud_fc_open20210406 import models
    from Tea.exceptions import TeaException
    ak, sk = policy_key(srv, tmp_path, reader_policy(web))
    c = tea_client(srv.endpoint_hostport, ak, sk)
    assert c.get_function(web["web"], web["f"], models.GetFunctionRequest()).body.function_name == web["f"]
    with pytest.raises(TeaException) as e:
        c.get_function(web["other"], web["g"], models.GetFunctionRequest())
    assert e.value.code == "AccessDenied" and "fc:GetFunction" in e.value.message, e.value


def test_a_root_key_is_unchanged_and_keys_list_shows_policies(srv, web, tmp_path):
    ak, _ = policy_key(srv, tmp_path, reader_policy(web))
    assert fc2_call(srv.fc2.get_function, web["other"], web["g"]).body["functionName"] == web["g"]
    listed = {k["accessKeyId"]: k for k in map(json.loads, srv.cli("keys", "list").stdout.splitlines())}
    assert listed[ak]["policy"]["Statement"][0]["Effect"] == "Allow"
    assert listed[srv.ak]["policy"] is None


def test_signed_http_trigger_calls_need_invoke_permission(srv, web, tmp_path):
    f, g = new_function(srv, web["web"], WSGI_ECHO), new_function(srv, web["other"], WSGI_ECHO)
    for svc, fn in ((web["web"], f), (web["other"], g)):
        r = srv.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
            "triggerName": "h", "triggerType": "http", "triggerConfig": {"authType": "function", "methods": ["POST"]}})
        assert r.status_code == 200, r.text
    ak, sk = policy_key(srv, tmp_path, reader_policy(web))
    c = srv.fc2_with(ak, sk)
    ok = c.do_http_request("POST", web["web"], f, "/x", body=b"via-trigger")
    assert ok.status_code == 200 and ok.content == b"echo via-trigger", ok.content
    denied = c.do_http_request("POST", web["other"], g, "/x", body=b"nope")
    assert denied.status_code == 403 and b"fc:InvokeFunction" in denied.content, denied.content


@pytest.mark.parametrize("bad", [{"Statement": []}, {"Statement": [{"Effect": "Allow", "Action": "oss:GetObject",
                                                                    "Resource": "*"}]}, "not json"])
def test_bad_policies_are_refused_by_the_cli(srv, tmp_path, bad):
    path = tmp_path / "bad.json"
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    out = srv.cli("keys", "create", "--policy", str(path), check=False)
    assert out.returncode != 0 and "policy" in out.stderr, out
