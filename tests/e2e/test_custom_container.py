"""custom-container functions, the happy path on both backends (SQLite + local, PostgreSQL + S3): images from a
loopback registry (images.py: busybox + a `nc -e` shell server, built with umoci, pushed with skopeo) pulled at
CreateFunction and run in openfc's sandbox (containers.md §1, §2.4, §4). The wire object echoed as sent, the pull
from `Preparing` to `Ready`, then invocations through aliyun-fc2, the 2021 Tea SDK, the Node.js SDK and raw
requests: the event, FC's headers and environment, the image's Env under the function's variables, the image
argv, user and working directory, a read-only root with a writable /tmp, HTTP triggers, the initializer, OCI /
Docker media types and zstd layers, a registry behind Basic auth and an ACR-style name through a mirror.
Failures, argv rules, pinning and operators: test_custom_container_pull.py and test_custom_container_ops.py."""

import json
import os
import shutil
import subprocess

import pytest
import requests

from helpers import assert_ok, unique
from images import (create_fn, expected_uid, get_fn, images, invoke_echo_headers,  # noqa: F401
                    parse_echo, ready_fn, wait_ready)
from invoke_helpers import health, http_trigger, invoke, new_service

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def srv(server_factory, backend, images):
    s = server_factory.start(backend, args=images.server_args())
    yield s
    s.close()


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "ccsvc")


@pytest.fixture(scope="module")
def web(srv, svc, images):
    """One Ready function on the `web` image (v2s2), with a function variable shadowing the image's."""
    return ready_fn(srv, svc, images.ref("web"),
                    environmentVariables={"MY_VAR": "from-function", "SHADOWED": "from-function"})


def echo_invoke(srv, svc, fn, payload=b"", **kw):
    """InvokeFunction through the raw client; must succeed; returns (Echo, Invocation)."""
    inv = invoke(srv, svc, fn, payload, **kw)
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    invoke_echo_headers(inv)
    return parse_echo(inv.body), inv


# --- the wire object and the pull ------------------------------------------------------------------------------
def test_create_echoes_the_config_and_the_pull_becomes_ready(srv, svc, images):
    cfg = {"image": images.ref("web"), "command": '["/bin/fc-start", "c1"]', "args": '["a1"]',
           "accelerationType": "Default", "instanceID": "cri-openfc-test", "webServerMode": True}
    name, body = create_fn(srv, svc, None, config=cfg, caPort=9000)
    assert body["runtime"] == "custom-container"
    assert body["caPort"] == 9000
    assert body["customContainerConfig"] == cfg, body["customContainerConfig"]
    assert "codeChecksum" not in body and "codeSize" not in body, body
    got = get_fn(srv, svc, name)
    info = got["customContainerConfig"].pop("accelerationInfo")
    assert got["customContainerConfig"] == cfg
    assert info["status"] in ("Preparing", "Ready"), info
    wait_ready(srv, svc, name)
    echo, _ = echo_invoke(srv, svc, name, b"x")
    assert echo["argv"] == "/bin/fc-start c1 a1", echo.fields
    listed = assert_ok(srv.raw.get(f"/services/{svc}/functions", params={"prefix": name}))["functions"]
    assert [f["customContainerConfig"] for f in listed] == [cfg], listed


def test_defaults_are_echoed_web_server_mode_true_and_acceleration_default(srv, svc, images):
    name, body = create_fn(srv, svc, images.ref("web"))
    cfg = body["customContainerConfig"]
    assert cfg["image"] == images.ref("web")
    assert cfg["webServerMode"] is True, cfg
    assert cfg["accelerationType"] == "Default", cfg
    got = get_fn(srv, svc, name)["customContainerConfig"]
    assert got["webServerMode"] is True and got["accelerationType"] == "Default", got


def test_the_sdks_create_read_and_see_the_status(srv, svc, images):
    """aliyun-fc2 and the Tea SDK create such functions with their own models and read accelerationInfo."""
    from alibabacloud_fc_open20210406 import models
    fn2 = unique("ccfc2")
    r = srv.fc2.create_function(svc, fn2, "custom-container", "not-used", caPort=9000,
                                customContainerConfig={"image": images.ref("web"), "args": '["from-fc2"]'})
    assert r.data["customContainerConfig"]["args"] == '["from-fc2"]', r.data
    fn21 = unique("cctea")
    req = models.CreateFunctionRequest(
        function_name=fn21, runtime="custom-container", handler="not-used", ca_port=9000,
        custom_container_config=models.CustomContainerConfig(image=images.ref("web"), args='["from-tea"]',
                                                            web_server_mode=True))
    r = srv.fc21.create_function(svc, req)
    assert r.body.custom_container_config.args == '["from-tea"]'
    for fn, arg in ((fn2, "from-fc2"), (fn21, "from-tea")):
        wait_ready(srv, svc, fn)
        g = srv.fc21.get_function(svc, fn, models.GetFunctionRequest())
        assert g.body.custom_container_config.acceleration_info.status == "Ready"
        assert g.body.custom_container_config.image == images.ref("web")
        assert srv.fc2.get_function(svc, fn).data["customContainerConfig"]["accelerationInfo"]["status"] == "Ready"
        echo, _ = echo_invoke(srv, svc, fn)
        assert echo["argv"] == f"/bin/fc-start entry-arg {arg}"


# --- invoking ----------------------------------------------------------------------------------------------------
def test_invoke_through_fc2_and_tea_echoes_the_event(srv, svc, web):
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_util.models import RuntimeOptions
    event = b"hello \x00\xff container " + os.urandom(64)
    r = srv.fc2.invoke_function(svc, web, payload=event, headers={})
    echo = parse_echo(r.data)
    assert echo.event == event
    assert echo["method"] == "POST" and echo["path"] == "/invoke", echo.fields
    assert echo.headers["content-type"] == "application/octet-stream", echo.headers
    r = srv.fc21.invoke_function_with_options(svc, web, models.InvokeFunctionRequest(body=b"via tea"),
                                              models.InvokeFunctionHeaders(), RuntimeOptions())
    assert parse_echo(r.body).event == b"via tea"
    big = os.urandom(300 * 1024)
    echo, _ = echo_invoke(srv, svc, web, big)
    assert echo.event == big


def test_fc_headers_and_the_log_tail(srv, svc, web):
    echo, inv = echo_invoke(srv, svc, web, b"headers", log=True)
    h = echo.headers
    assert h["x-fc-request-id"] == inv.request_id
    assert h["x-fc-function-name"] == web and h["x-fc-service-name"] == svc, h
    assert h["x-fc-function-handler"] == "not-used", h
    assert h["x-fc-function-memory"] == "128" and h["x-fc-function-timeout"] == "30", h
    assert h.get("x-fc-control-path") == "/invoke", h
    assert f"FC Invoke Start RequestId: {inv.request_id}" in inv.log, inv.log
    assert "fc-handler: POST /invoke (7 bytes)" in inv.log, inv.log


def test_environment_image_then_function_then_fc(srv, svc, web):
    echo, inv = echo_invoke(srv, svc, web)
    env = echo.env
    assert env["IMAGE_VAR"] == "from-image", env
    assert env["SHADOWED"] == "from-function", env
    assert env["MY_VAR"] == "from-function", env
    assert env["PATH"] == "/bin", env
    assert env["FC_CUSTOM_LISTEN_PORT"] == "9000", env
    assert env["FC_FUNCTION_NAME"] == web and env["FC_SERVICE_NAME"] == svc, env
    assert env["FC_INSTANCE_ID"] == inv.instance_id, (env, inv.instance_id)
    assert env["HOME"] == "/root", env  # image has no HOME: the user's home from its /etc/passwd


def test_fc_variables_win_over_the_image_and_follow_ca_port(srv, svc, images):
    """The image sets FC_FUNCTION_NAME=from-image (functions cannot set FC_ names: reserved)."""
    fn = ready_fn(srv, svc, images.ref("web"), caPort=9001)
    echo, _ = echo_invoke(srv, svc, fn)
    assert echo.env["FC_CUSTOM_LISTEN_PORT"] == "9001", echo.env
    assert echo.env["FC_FUNCTION_NAME"] == fn, echo.env


def test_the_image_argv_user_cwd_and_a_read_only_root(srv, svc, web):
    echo, _ = echo_invoke(srv, svc, web)
    assert echo["argv"] == "/bin/fc-start entry-arg cmd-arg", echo.fields
    assert echo.uid == expected_uid(0) and echo.gid == expected_uid(0), echo.fields
    assert echo["cwd"] == "/", echo.fields
    assert echo["flavour"] == "a"
    assert echo["rootwrite"] == "fail", "the image root must be read-only"
    assert echo["tmpwrite"] == "ok", "/tmp must be writable"


@pytest.mark.parametrize("variant,uid,gid,cwd", [("app", 1000, 1000, "/"), ("nobody", 65534, 65534, "/"),
                                                 ("workdir", 0, 0, "/srv")])
def test_image_user_and_working_dir_are_honoured(srv, svc, images, variant, uid, gid, cwd):
    fn = ready_fn(srv, svc, images.ref(variant))
    echo, _ = echo_invoke(srv, svc, fn)
    assert (echo.uid, echo.gid) == (expected_uid(uid), expected_uid(gid)), echo.fields
    assert echo["cwd"] == cwd, echo.fields
    assert echo["tmpwrite"] == "ok" and echo["rootwrite"] == "fail", echo.fields
    if variant == "app":
        assert echo.env["HOME"] == "/home/app", echo.env


@pytest.mark.parametrize("tag", ["oci", "zstd"])
def test_oci_media_types_and_zstd_layers(srv, svc, images, tag):
    fn = ready_fn(srv, svc, images.ref("web", tag))
    echo, _ = echo_invoke(srv, svc, fn, tag.encode())
    assert echo.event == tag.encode() and echo["flavour"] == "a", echo.fields


def test_a_registry_with_basic_auth(srv, svc, images):
    fn = ready_fn(srv, svc, images.auth_ref)
    echo, _ = echo_invoke(srv, svc, fn, b"authenticated")
    assert echo.event == b"authenticated"


def test_an_acr_style_name_through_the_mirror(srv, svc, images):
    fn, body = create_fn(srv, svc, images.mirrored_ref)
    assert body["customContainerConfig"]["image"] == images.mirrored_ref
    wait_ready(srv, svc, fn)
    assert get_fn(srv, svc, fn)["customContainerConfig"]["image"] == images.mirrored_ref
    echo, _ = echo_invoke(srv, svc, fn, b"mirrored")
    assert echo.event == b"mirrored"


def test_the_node_sdk_creates_and_invokes(srv, svc, images, tmp_path):
    from test_node_sdk import node_path
    modules = node_path()
    fn = unique("ccnode")
    script = tmp_path / "cc.js"
    script.write_text(NODE_SCRIPT)
    env = dict(os.environ, NODE_PATH=modules, OPENFC_ENDPOINT=srv.endpoint, OPENFC_ACCOUNT_ID=srv.account_id,
               OPENFC_AK=srv.ak, OPENFC_SK=srv.secret, OPENFC_SERVICE=svc, OPENFC_FUNCTION=fn,
               OPENFC_IMAGE=images.ref("web"))
    p = subprocess.run([shutil.which("node") or "node", str(script)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"node failed:\n{p.stderr}\n{p.stdout}"
    steps = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            step = json.loads(line)
            steps[step.pop("step")] = step
    assert steps["create"]["config"]["image"] == images.ref("web"), steps
    assert steps["create"]["config"]["webServerMode"] is True, steps
    assert steps["get"]["status"] == "Ready", steps
    echo = parse_echo(bytes.fromhex(steps["invoke"]["body"]))
    assert echo.event == b"hello from node", echo
    assert echo.headers["x-fc-request-id"] == steps["invoke"]["requestId"]


NODE_SCRIPT = r'''
'use strict';
const FC = require('@alicloud/fc2');
const e = process.env;
const client = new FC(e.OPENFC_ACCOUNT_ID, { accessKeyID: e.OPENFC_AK, accessKeySecret: e.OPENFC_SK,
  endpoint: e.OPENFC_ENDPOINT, region: 'cn-hangzhou', timeout: 60000 });
const out = (step, data) => console.log(JSON.stringify({ step, ...data }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const svc = e.OPENFC_SERVICE, fn = e.OPENFC_FUNCTION;
  const c = await client.createFunction(svc, { functionName: fn, runtime: 'custom-container', handler: 'not-used',
    caPort: 9000, customContainerConfig: { image: e.OPENFC_IMAGE } });
  out('create', { config: c.data.customContainerConfig });
  let status = 'Preparing';
  for (let i = 0; i < 600 && status === 'Preparing'; i++) {
    const g = await client.getFunction(svc, fn);
    status = g.data.customContainerConfig.accelerationInfo.status;
    if (status === 'Preparing') await sleep(100);
  }
  out('get', { status });
  const r = await client.invokeFunction(svc, fn, 'hello from node', {}, undefined, { rawBuf: true });
  out('invoke', { body: Buffer.from(r.data).toString('hex'), requestId: r.headers['x-fc-request-id'] });
})().catch((err) => { console.error(err); process.exit(1); });
'''


# --- HTTP triggers and the initializer --------------------------------------------------------------------------
def test_http_trigger_passes_method_path_query_headers_and_body(srv, svc, web):
    http_trigger(srv, svc, web, methods=("GET", "POST", "PUT"))
    base = f"{srv.endpoint}/2016-08-15/proxy/{svc}/{web}"
    r = requests.put(f"{base}/a/b?x=1&y=two", data=b"trigger body", headers={"X-Client": "t1"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Echo-Handler") == "busybox", r.headers
    assert r.headers.get("X-Fc-Request-Id"), r.headers
    echo = parse_echo(r.content)
    # As for custom runtimes (test_http_trigger): the server sees the full URI the client used.
    assert (echo["method"], echo["path"], echo["query"]) == \
        ("PUT", f"/2016-08-15/proxy/{svc}/{web}/a/b", "x=1&y=two"), echo.fields
    assert echo.headers["x-client"] == "t1", echo.headers
    assert echo.headers.get("x-fc-control-path") == "/http-invoke", echo.headers
    assert echo.event == b"trigger body"
    r = requests.get(f"{srv.endpoint}/2021-04-06/proxy/{svc}/{web}/", timeout=60)
    assert r.status_code == 200, r.text
    echo = parse_echo(r.content)
    assert (echo["method"], echo["path"], echo.event) == ("GET", f"/2021-04-06/proxy/{svc}/{web}/", b""), echo.fields


def test_the_initializer_runs_once_per_instance(srv, svc, images):
    fn = ready_fn(srv, svc, images.ref("web"), initializer="init", initializationTimeout=10)
    first, inv1 = echo_invoke(srv, svc, fn, b"1")
    second, inv2 = echo_invoke(srv, svc, fn, b"2")
    assert inv1.instance_id == inv2.instance_id
    assert first["inits"] == second["inits"] == "1", (first.fields, second.fields)
    plain, _ = echo_invoke(srv, svc, ready_fn(srv, svc, images.ref("web")))
    assert plain["inits"] == "0", "no initializer set: /initialize must not be called"


def test_health_shows_the_image_store(srv, web):
    h = health(srv)
    assert isinstance(h.get("images"), dict), h
    store = h["images"]
    assert store.get("images", 0) >= 1, store
    assert store.get("blobs", 0) >= 2 and store.get("blob_bytes", 0) > 1_000_000, store  # the busybox layer at least
    assert store.get("bytes", 0) > store["blob_bytes"], store  # blobs and the flattened tree
    assert store.get("pulls_in_flight") == 0, store
