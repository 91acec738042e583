"""Function credentials (issue 11 item 5): `openfc roles create NAME --policy FILE`; a service whose `role` is
`acs:ram::ACCOUNT:role/NAME` gives its functions temporary credentials in `context.credentials` (AccessKeyId
`STS.…`, secret, security token), which openfc's API accepts with the security-token header the SDKs send, with
no more rights than the role's policy. FC code reaches openfc at FC's endpoint name
(`http://ACCOUNT.REGION-internal.fc.aliyuncs.com`) with the built-in `fc2` SDK, unchanged. Tokens expire, cannot be
altered, and stop working when their role is deleted."""

import json
import time

import fc2
import pytest

from helpers import assert_ok, unique
from invoke_helpers import invoke, new_function, new_service, py_zip
from test_builtins import builtins_dir  # noqa: F401  (the installed built-ins: the function uses fc2 from them)

CALLER = py_zip('''
    import json
    import fc2

    def handler(event, context):
        ev = json.loads(event)
        creds = context.credentials
        endpoint = "http://%s.%s-internal.fc.aliyuncs.com" % (context.account_id, context.region)
        client = fc2.Client(endpoint=endpoint, accessKeyID=creds.access_key_id,
                            accessKeySecret=creds.access_key_secret, securityToken=creds.security_token, Timeout=20)
        out = {"accessKeyId": creds.access_key_id, "secret": creds.access_key_secret,
               "token": creds.security_token}
        try:
            out["invoked"] = client.invoke_function(ev["svc"], ev["target"], payload=b"from a function").data.decode()
        except Exception as e:
            out["invoke_error"] = str(e)
        try:
            client.get_function(ev["svc"], ev["other"])
            out["other"] = "allowed"
        except Exception as e:
            out["other_error"] = str(e)
        return json.dumps(out)
''')

TARGET = py_zip('''
    def handler(event, context):
        return b"target got: " + event
''')

NO_ROLE = py_zip('''
    import json, socket

    def handler(event, context):
        c = context.credentials
        name = "%s.%s-internal.fc.aliyuncs.com" % (context.account_id, context.region)
        try:
            socket.create_connection((name, 80), timeout=2).close()
            reach = "reached"
        except Exception as e:
            reach = type(e).__name__
        return json.dumps({"ak": c.access_key_id, "token": c.security_token, "reach": reach})
''')


@pytest.fixture(scope="module")
def srv(server_factory, backend, builtins_dir):  # noqa: F811
    s = server_factory.start(backend, args=["--builtins-dir", str(builtins_dir), "--key-cache-ttl", "1"])
    yield s
    s.close()


def create_role(srv, tmp_path, name, policy):
    path = tmp_path / f"{unique('role')}.json"
    path.write_text(json.dumps(policy))
    out = json.loads(srv.cli("roles", "create", name, "--policy", str(path)).stdout)
    assert out["arn"] == f"acs:ram::{srv.account_id}:role/{name}"
    return out["arn"]


@pytest.fixture(scope="module")
def setup(srv, tmp_path_factory):
    """A service with the role `invoker` (may invoke `target` and nothing else), its caller and target."""
    name = unique("invoker").replace("_", "-")
    svc = unique("roles")
    policy = {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["fc:InvokeFunction"],
         "Resource": [f"acs:fc:*:*:services/{svc}.*/functions/target"]},
    ]}
    arn = create_role(srv, tmp_path_factory.mktemp("roles"), name, policy)
    assert_ok(srv.raw.post("/services", json={"serviceName": svc, "role": arn}))
    caller = new_function(srv, svc, CALLER, name="caller", timeout=30)
    new_function(srv, svc, TARGET, name="target")
    return {"svc": svc, "role": name, "caller": caller}


def call(srv, setup):
    inv = invoke(srv, setup["svc"], setup["caller"], json.dumps(
        {"svc": setup["svc"], "target": "target", "other": "caller"}).encode())
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    return json.loads(inv.body)


def test_a_function_calls_openfc_with_its_roles_credentials_and_no_more(srv, setup):
    out = call(srv, setup)
    assert out["accessKeyId"].startswith("STS.") and out["token"] and out["secret"]
    assert out.get("invoked") == "target got: from a function", out
    # The role allows nothing else: reading even the caller itself is refused, naming action and resource.
    assert "AccessDenied" in out["other_error"] and "fc:GetFunction" in out["other_error"], out
    # Invocations reuse the role's credentials while more than half their hour is left (sts.rs).
    again = call(srv, setup)
    assert (again["accessKeyId"], again["token"]) == (out["accessKeyId"], out["token"])


def sdk(srv, out, token=None):
    return fc2.Client(endpoint=srv.endpoint, accessKeyID=out["accessKeyId"], accessKeySecret=out["secret"],
                      securityToken=out["token"] if token is None else token, Timeout=30)


def test_the_credentials_work_from_outside_until_altered_or_their_role_is_gone(srv, setup, tmp_path):
    out = call(srv, setup)
    assert sdk(srv, out).invoke_function(setup["svc"], "target", payload=b"x").data == b"target got: x"
    with pytest.raises(fc2.fc_exceptions.FcError) as e:
        sdk(srv, out).create_service(unique("nope"))
    assert e.value.status_code == 403 and "AccessDenied" in str(e.value)
    # An altered or missing token, or a token presented with another key: refused.
    body, tag = out["token"].rsplit(".", 1)
    for token in (body + "." + tag[::-1], "garbage"):
        with pytest.raises(fc2.fc_exceptions.FcError) as e:
            sdk(srv, out, token).invoke_function(setup["svc"], "target", payload=b"x")
        assert e.value.status_code == 403 and "InvalidAccessKeyID" in str(e.value), str(e.value)
    # The 2021 SDK sends the token as x-acs-security-token (ACS3).
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_fc_open20210406.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    cfg = open_api_models.Config(access_key_id=out["accessKeyId"], access_key_secret=out["secret"],
                                 security_token=out["token"], endpoint=srv.endpoint_hostport, protocol="http",
                                 region_id=srv.region, read_timeout=30000, connect_timeout=5000)
    body = Client(cfg).invoke_function(setup["svc"], "target", models.InvokeFunctionRequest(body=b"y")).body
    assert (body.read() if hasattr(body, "read") else body) == b"target got: y"
    # The role deleted: its credentials stop working (once the key cache, 1 s here, has expired).
    doomed = create_role(srv, tmp_path, setup["role"] + "-b", {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "fc:*", "Resource": "*"}]})
    svc2 = new_service(srv, "roles2", role=doomed)
    new_function(srv, svc2, CALLER, name="caller", timeout=30)
    new_function(srv, svc2, TARGET, name="target")
    out2 = call(srv, {"svc": svc2, "caller": "caller"})
    assert out2.get("invoked") and out2.get("other") == "allowed", out2
    # Another role's valid token, presented with this key: refused.
    with pytest.raises(fc2.fc_exceptions.FcError) as e:
        sdk(srv, dict(out, token=out2["token"])).invoke_function(setup["svc"], "target", payload=b"x")
    assert e.value.status_code == 403
    srv.cli("roles", "delete", setup["role"] + "-b")
    time.sleep(1.5)
    with pytest.raises(fc2.fc_exceptions.FcError) as e:
        sdk(srv, out2).invoke_function(svc2, "target", payload=b"x")
    assert e.value.status_code == 403 and "no longer exists" in str(e.value), str(e.value)


def test_a_service_without_a_role_gives_no_credentials_and_no_way_in(srv):
    svc = new_service(srv, "norole")
    fn = new_function(srv, svc, NO_ROLE)
    inv = invoke(srv, svc, fn)
    assert inv.status == 200, inv.describe()
    out = json.loads(inv.body)
    assert out["ak"] in ("", None) and out["token"] in ("", None), out
    assert out["reach"] != "reached", out


def test_roles_are_listed_and_bad_ones_refused(srv, tmp_path):
    name = unique("lister").replace("_", "-")
    create_role(srv, tmp_path, name, {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "fc:List*", "Resource": "*"}]})
    listed = [json.loads(l) for l in srv.cli("roles", "list").stdout.splitlines()]
    assert any(r["roleName"] == name and r["policy"]["Statement"][0]["Action"] == "fc:List*" for r in listed)
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": "nope"}')
    p = srv.cli("roles", "create", "x", "--policy", str(bad), check=False)
    assert p.returncode != 0 and "policy" in p.stderr
    p = srv.cli("roles", "create", "bad/name", "--policy", str(bad), check=False)
    assert p.returncode != 0
    p = srv.cli("roles", "delete", "no-such-role", check=False)
    assert p.returncode != 0 and "no role" in p.stderr
