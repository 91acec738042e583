"""custom-container functions on SQLite: what runs and when (containers.md §2.4–2.6, §4.2, §4.5, §4.6). argv by
the Kubernetes rule (every row of §4.2, PATH lookup, a shell form), the wire checks on command/args and fun's
capitalised keys, linux/amd64 picked from an image index, pulls that fail with a reason naming the image and
the cause (missing tag or repository, arm64 (single manifest or an index without amd64), an unknown USER, nothing to run, a corrupt blob, refused or missing credentials, over --max-image-size,
HTTPS to a plain-HTTP registry) and the 412 PullImageFailed an invocation of such a function gets at once; an
invocation while Preparing waits for the pull (a registry proxy holds the manifest); a server that never
listens (412 FunctionNotStarted naming the port); the tag pinned at create (a re-pushed tag changes nothing
until UpdateFunction re-resolves it, and published versions keep their image); webServerMode false (one process
per event, the event in FC_CUSTOM_CONTAINER_EVENT, no HTTP triggers); pre-stop when an idle instance stops."""

import base64
import json
import time
import uuid

import pytest

from helpers import assert_fc_error, assert_ok, unique
from images import (SlowProxy, USER, create_fn, function_body, get_fn, images, invoke_echo_headers,  # noqa: F401
                    acceleration, parse_echo, ready_fn, wait_failed, wait_ready)
from invoke_helpers import (UNHANDLED, function_logs, invoke, invoke_error, new_service, publish, wait_until)

pytestmark = pytest.mark.timeout(300)
START_TIMEOUT = 3  # --container-start-timeout of the module's server


@pytest.fixture(scope="module")
def proxy(images):
    p = SlowProxy(images.registry.host, delay=0)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def srv(server_factory, images, proxy):
    s = server_factory.start("sqlite", args=images.server_args(proxy.host)
                             + ["--container-start-timeout", str(START_TIMEOUT)])
    yield s
    s.close()


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "ccpull")


def echo_invoke(srv, svc, fn, payload=b"", **kw):
    inv = invoke(srv, svc, fn, payload, **kw)
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    invoke_echo_headers(inv)
    return parse_echo(inv.body), inv


def new_repo(prefix):
    return f"fc/{prefix}-{uuid.uuid4().hex[:10]}"


# --- argv: the Kubernetes rule (§4.2) ------------------------------------------------------------------------------
ARGV_CASES = [
    # image, command, args, the argv fc-start reports
    ("web", None, None, "/bin/fc-start entry-arg cmd-arg"),                 # E ++ C
    ("web", ["/bin/fc-start", "cx"], None, "/bin/fc-start cx"),             # X (CMD dropped)
    ("web", None, ["ay"], "/bin/fc-start entry-arg ay"),                    # E ++ A
    ("web", ["/bin/fc-start", "cx"], ["ay", "b z"], "/bin/fc-start cx ay b z"),  # X ++ A
    ("cmdonly", None, None, "/bin/fc-start only-cmd"),                      # C
    ("entryonly", None, None, "/bin/fc-start only-entry"),                  # E
    ("entryonly", None, ["ay"], "/bin/fc-start only-entry ay"),             # E ++ A
    ("noentry", ["/bin/fc-start", "rescued"], None, "/bin/fc-start rescued"),  # nothing in the image, X
]


@pytest.mark.parametrize("variant,command,args,argv", ARGV_CASES,
                         ids=["E+C", "X", "E+A", "X+A", "C", "E", "E-only+A", "none+X"])
def test_argv_follows_the_kubernetes_rule(srv, svc, images, variant, command, args, argv):
    fn = ready_fn(srv, svc, images.ref(variant), command, args)
    echo, _ = echo_invoke(srv, svc, fn)
    assert echo["argv"] == argv, echo.fields


def test_a_relative_command_is_looked_up_in_the_image_path(srv, svc, images):
    fn = ready_fn(srv, svc, images.ref("web"), ["fc-start", "rel"])
    echo, _ = echo_invoke(srv, svc, fn)
    assert echo["argv"].endswith("fc-start rel"), echo.fields


def test_a_shell_form_command(srv, svc, images):
    cmd = ["/bin/sh", "-c", 'export FC_ARGV=shell-form; exec nc -ll -p "$FC_CUSTOM_LISTEN_PORT" -e /bin/fc-handler']
    fn = ready_fn(srv, svc, images.ref("web"), cmd)
    echo, _ = echo_invoke(srv, svc, fn, b"sh")
    assert echo["argv"] == "shell-form" and echo.event == b"sh", echo.fields


def test_an_image_with_nothing_to_run_fails_at_pull(srv, svc, images):
    ref = images.ref("noentry")
    fn, _ = create_fn(srv, svc, ref)
    reason = wait_failed(srv, svc, fn, ref, "has no ENTRYPOINT or CMD")
    assert_pull_failed_at_once(srv, svc, fn, reason)


@pytest.mark.parametrize("command,args", [("", "[]"), ("[]", "")])
def test_empty_command_and_args_mean_absent_and_are_echoed(srv, svc, images, command, args):
    fn, body = create_fn(srv, svc, images.ref("web"), command, args)
    cfg = body["customContainerConfig"]
    assert (cfg["command"], cfg["args"]) == (command, args), cfg
    wait_ready(srv, svc, fn)
    echo, _ = echo_invoke(srv, svc, fn)
    assert echo["argv"] == "/bin/fc-start entry-arg cmd-arg", echo.fields


@pytest.mark.parametrize("key", ["command", "args"])
@pytest.mark.parametrize("value", ["not json", '"/bin/sh"', '["a", 1]', '{"a": "b"}', '[["a"]]', "[null]"])
def test_command_and_args_must_be_json_arrays_of_strings(srv, svc, images, key, value):
    body = function_body(unique("ccbad"), None, config={"image": images.ref("web"), key: value})
    err = assert_fc_error(srv.raw.post(f"/services/{svc}/functions", json=body), 400, "InvalidArgument")
    # FC's wording names the field as CustomContainerConfig.Command / .Args.
    assert f"CustomContainerConfig.{key.capitalize()}" in err["ErrorMessage"], err
    # UpdateFunction checks the same.
    fn, _ = create_fn(srv, svc, images.ref("web"))
    r = srv.raw.put(f"/services/{svc}/functions/{fn}", json={"customContainerConfig": {"image": images.ref("web"),
                                                                                        key: value}})
    assert_fc_error(r, 400, "InvalidArgument")


def test_an_image_is_required(srv, svc):
    body = function_body(unique("ccnoimg"), None, config={"command": '["/bin/sh"]'})
    assert_fc_error(srv.raw.post(f"/services/{svc}/functions", json=body), 400, "InvalidArgument")


def test_funs_capitalised_keys(srv, svc, images):
    """funcraft's `fun deploy` sends CAPort, CustomContainerConfig and Image, Command, Args, AccelerationType,
    InstanceID."""
    name = unique("ccfun")
    body = {"functionName": name, "runtime": "custom-container", "handler": "index.handler", "CAPort": 9000,
            "CustomContainerConfig": {"Image": images.ref("web"), "Command": '["/bin/fc-start", "fun"]',
                                      "Args": '["style"]', "AccelerationType": "None", "InstanceID": "cri-fun"}}
    assert_ok(srv.raw.post(f"/services/{svc}/functions", json=body))
    cfg = get_fn(srv, svc, name)["customContainerConfig"]
    assert cfg["image"] == images.ref("web") and cfg["command"] == '["/bin/fc-start", "fun"]', cfg
    assert cfg["args"] == '["style"]' and cfg["accelerationType"] == "None" and cfg["instanceID"] == "cri-fun", cfg
    wait_ready(srv, svc, name)
    echo, _ = echo_invoke(srv, svc, name)
    assert echo["argv"] == "/bin/fc-start fun style", echo.fields


# --- failed pulls (§2.6) -------------------------------------------------------------------------------------------
def assert_pull_failed_at_once(srv, svc, fn, reason):
    """Invoking a Failed function: 412 PullImageFailed at once, the message `Failed to pull image. <reason>`."""
    t0 = time.monotonic()
    body, _ = invoke_error(srv, svc, fn, 412, "PullImageFailed", b"x")
    assert time.monotonic() - t0 < 2, "a failed pull must be answered at once"
    assert body["ErrorMessage"] == f"Failed to pull image. {reason}", (body, reason)


def test_a_missing_tag(srv, svc, images):
    ref = images.ref("web", "no-such-tag")
    fn, _ = create_fn(srv, svc, ref)
    reason = wait_failed(srv, svc, fn, ref, "not found", images.registry.host)
    assert_pull_failed_at_once(srv, svc, fn, reason)


def test_a_missing_repository(srv, svc, images):
    ref = images.registry.ref("fc/no-such-repo", "v1")
    fn, _ = create_fn(srv, svc, ref)
    wait_failed(srv, svc, fn, ref, "not found")


def test_an_arm64_image_is_refused(srv, svc, images):
    ref = images.ref("arm64")
    fn, _ = create_fn(srv, svc, ref)
    reason = wait_failed(srv, svc, fn, ref, "linux/arm64", "linux/amd64")
    assert_pull_failed_at_once(srv, svc, fn, reason)


def test_linux_amd64_is_chosen_from_an_image_index(srv, svc, images):
    fn = ready_fn(srv, svc, images.ref("multi"))
    echo, _ = echo_invoke(srv, svc, fn, b"from an index")
    assert echo.event == b"from an index" and echo["flavour"] == "a", echo.fields


def test_an_index_without_linux_amd64_is_refused(srv, svc, images):
    ref = images.ref("multi-arm")
    fn, _ = create_fn(srv, svc, ref)
    wait_failed(srv, svc, fn, ref, "linux/amd64")


def test_an_image_user_missing_from_its_passwd(srv, svc, images):
    ref = images.ref("ghost")
    fn, _ = create_fn(srv, svc, ref)
    wait_failed(srv, svc, fn, ref, "user 'ghost'", "not found")


def test_a_corrupt_blob(srv, svc, images):
    ref, layer = images.push_unique(new_repo("corrupt"))
    images.registry.corrupt_blob(layer)
    fn, _ = create_fn(srv, svc, ref)
    reason = wait_failed(srv, svc, fn, ref, layer, "does not match")
    assert_pull_failed_at_once(srv, svc, fn, reason)


def test_refused_and_missing_credentials(start_server, images, tmp_path):
    """Wrong password in the auth file; no auth file at all (with the plain-HTTP registries named in
    OPENFC_INSECURE_REGISTRIES, which works for the open registry)."""
    bad = tmp_path / "bad-auth.json"
    token = base64.b64encode(f"{USER[0]}:wrong-password".encode()).decode()
    bad.write_text(json.dumps({"auths": {images.auth_registry.host: {"auth": token}}}))
    s = start_server(args=["--insecure-registry", images.auth_registry.host, "--registry-auth-file", str(bad)])
    sv = new_service(s, "ccdenied")
    fn, _ = create_fn(s, sv, images.auth_ref)
    # The reason names the registry, the repository and the credentials used (§2.6).
    reason = wait_failed(s, sv, fn, images.auth_registry.host, "refused access", "'fc/web'", str(bad))
    assert_pull_failed_at_once(s, sv, fn, reason)

    s = start_server(env={"OPENFC_INSECURE_REGISTRIES": f"{images.registry.host},{images.auth_registry.host}"})
    sv = new_service(s, "ccnocreds")
    fn, _ = create_fn(s, sv, images.auth_ref)
    wait_failed(s, sv, fn, images.auth_registry.host, "refused access", "'fc/web'", "credentials: none")
    ok = ready_fn(s, sv, images.ref("web"))
    assert parse_echo(invoke(s, sv, ok, b"env-listed").body).event == b"env-listed"


def test_https_to_a_plain_http_registry_names_the_flag(srv, svc, images):
    """A registry not named by --insecure-registry is reached over HTTPS; a plain-HTTP one fails the TLS
    handshake, and the reason says which flag would allow it."""
    host = "localhost:" + images.registry.host.split(":")[1]  # the plain registry under a name not listed
    ref = f"{host}/fc/web:v1"
    fn, _ = create_fn(srv, svc, ref)
    wait_failed(srv, svc, fn, host, "TLS", f"--insecure-registry {host}")


def test_an_image_over_max_image_size(start_server, images):
    s = start_server(args=images.server_args() + ["--max-image-size", "1M"])
    sv = new_service(s, "ccsize")
    ref = images.ref("web")
    fn, _ = create_fn(s, sv, ref)
    reason = wait_failed(s, sv, fn, ref, "exceeds")
    assert_pull_failed_at_once(s, sv, fn, reason)


# --- the pull's timing ---------------------------------------------------------------------------------------------
def test_an_invocation_while_preparing_waits_for_the_pull(srv, svc, images, proxy):
    repo = new_repo("slow")
    images.push("web", repo)
    proxy.delay = 2.5
    try:
        fn, _ = create_fn(srv, svc, f"{proxy.host}/{repo}:v1")
        assert acceleration(srv, svc, fn)["status"] == "Preparing"
        t0 = time.monotonic()
        echo, _ = echo_invoke(srv, svc, fn, b"waited")
        assert time.monotonic() - t0 >= 1.5, "answered before the pull could have finished"
        assert echo.event == b"waited"
        assert acceleration(srv, svc, fn)["status"] == "Ready"
    finally:
        proxy.delay = 0


def test_an_async_invocation_while_preparing_is_accepted_at_once_and_runs_once_ready(srv, svc, images, proxy):
    repo = new_repo("slowasync")
    images.push("web", repo)
    proxy.delay = 2.5
    try:
        fn, _ = create_fn(srv, svc, f"{proxy.host}/{repo}:v1")
        t0 = time.monotonic()
        inv = invoke(srv, svc, fn, b"later", async_=True)
        assert inv.status == 202, inv.describe()
        assert time.monotonic() - t0 < 1.5, "the 202 waited for the pull"
        wait_until(lambda: acceleration(srv, svc, fn)["status"] == "Ready", 30, interval=0.3, what="the pull")
    finally:
        proxy.delay = 0


def test_the_wait_for_a_pull_is_bounded_by_the_function_timeout(srv, svc, images, proxy):
    repo = new_repo("slower")
    images.push("web", repo)
    proxy.delay = 5
    try:
        fn, _ = create_fn(srv, svc, f"{proxy.host}/{repo}:v1", timeout=2)
        t0 = time.monotonic()
        body, _ = invoke_error(srv, svc, fn, 412, "FunctionNotStarted", b"x")
        assert time.monotonic() - t0 < 4.5, "the wait must end at the function timeout"
        assert acceleration(srv, svc, fn)["status"] == "Preparing"
    finally:
        proxy.delay = 0
    wait_ready(srv, svc, fn)


def test_a_server_that_never_listens(srv, svc, images):
    fn = ready_fn(srv, svc, images.ref("sleeper"), caPort=9123)
    t0 = time.monotonic()
    body, _ = invoke_error(srv, svc, fn, 412, "FunctionNotStarted", b"x")
    assert time.monotonic() - t0 < START_TIMEOUT + 5
    assert "9123" in body["ErrorMessage"], body


# --- pinning ---------------------------------------------------------------------------------------------------------
def test_a_re_pushed_tag_changes_nothing_until_update_function(srv, svc, images):
    repo = new_repo("repush")
    ref = images.push("web", repo)
    digest_a = images.registry.manifest_digest(repo, "v1")
    fn = ready_fn(srv, svc, ref, environmentVariables={"GEN": "1"})
    assert echo_invoke(srv, svc, fn)[0]["flavour"] == "a"
    images.push("flavour-b", repo)
    assert images.registry.manifest_digest(repo, "v1") != digest_a
    # A configuration change without customContainerConfig: new instances, same pinned image, no new pull.
    assert_ok(srv.raw.put(f"/services/{svc}/functions/{fn}", json={"environmentVariables": {"GEN": "2"}}))
    assert acceleration(srv, svc, fn) == {"status": "Ready"}
    echo, _ = echo_invoke(srv, svc, fn)
    assert echo.env["GEN"] == "2" and echo["flavour"] == "a", echo.fields
    # UpdateFunction with customContainerConfig (same image string) resolves the tag again.
    body = assert_ok(srv.raw.put(f"/services/{svc}/functions/{fn}", json={"customContainerConfig": {"image": ref}}))
    assert body["customContainerConfig"]["image"] == ref
    wait_ready(srv, svc, fn)
    echo, _ = echo_invoke(srv, svc, fn)
    assert echo["flavour"] == "b", echo.fields


def test_a_published_version_keeps_its_image(srv, images):
    svc = new_service(srv, "ccver")
    repo = new_repo("versions")
    ref = images.push("web", repo)
    fn = ready_fn(srv, svc, ref)
    version = publish(srv, svc)
    images.push("flavour-b", repo)
    assert_ok(srv.raw.put(f"/services/{svc}/functions/{fn}", json={"customContainerConfig": {"image": ref}}))
    wait_ready(srv, svc, fn)
    assert echo_invoke(srv, svc, fn)[0]["flavour"] == "b"
    echo, inv = echo_invoke(srv, svc, fn, qualifier=str(version))
    assert echo["flavour"] == "a" and inv.version == str(version), echo.fields
    assert acceleration(srv, svc, fn, qualifier=str(version)) == {"status": "Ready"}


# --- webServerMode false (§4.6) -----------------------------------------------------------------------------------
def test_non_web_mode_runs_one_process_per_event(srv, svc, images):
    fn, body = create_fn(srv, svc, None, config={"image": images.ref("oneshot"), "webServerMode": False})
    assert body["customContainerConfig"]["webServerMode"] is False
    wait_ready(srv, svc, fn)
    inv = invoke(srv, svc, fn, b"hello oneshot", log=True)
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    assert inv.body == b"", inv.describe()
    assert "oneshot event: hello oneshot" in inv.log, inv.log
    assert f"FC Invoke Start RequestId: {inv.request_id}" in inv.log, inv.log
    again = invoke(srv, svc, fn, b"again", log=True)
    assert again.status == 200 and "oneshot event: again" in again.log, again.describe()
    assert again.instance_id != inv.instance_id, "each event runs in its own instance"


def test_non_web_mode_exit_1_is_an_unhandled_error(srv, svc, images):
    fn, _ = create_fn(srv, svc, None, config={"image": images.ref("oneshot"), "webServerMode": False})
    wait_ready(srv, svc, fn)
    inv = invoke(srv, svc, fn, b"please fail", log=True)
    assert inv.status == 200 and inv.error_type == UNHANDLED, inv.describe()
    assert "exit code 1" in inv.text, inv.describe()
    assert "oneshot failing as asked" in inv.log, inv.log


def test_non_web_mode_refuses_events_an_environment_variable_cannot_hold(srv, svc, images):
    """§4.6: a NUL byte -> 400 InvalidArgument; over 131,045 bytes (MAX_ARG_STRLEN less the name) -> 400
    EntityTooLarge; exactly the limit runs."""
    fn, _ = create_fn(srv, svc, None, config={"image": images.ref("oneshot"), "webServerMode": False})
    wait_ready(srv, svc, fn)
    invoke_error(srv, svc, fn, 400, "InvalidArgument", b"nul \x00 byte")
    invoke_error(srv, svc, fn, 400, "InvalidArgument", b"not utf-8 \xff\xfe")
    invoke_error(srv, svc, fn, 400, "InvalidArgument", b"nul \x00 byte", async_=True)
    invoke_error(srv, svc, fn, 400, "EntityTooLarge", b"x" * 131_046)
    inv = invoke(srv, svc, fn, b"y" * 131_045)
    assert inv.status == 200 and inv.error_type is None, inv.describe()


def test_non_web_mode_refuses_http_triggers(srv, svc, images):
    fn, _ = create_fn(srv, svc, None, config={"image": images.ref("oneshot"), "webServerMode": False})
    r = srv.raw.post(f"/services/{svc}/functions/{fn}/triggers",
                     json={"triggerName": "web", "triggerType": "http",
                           "triggerConfig": {"authType": "anonymous", "methods": ["GET"]}})
    assert_fc_error(r, 400, "InvalidArgument")


def test_a_function_with_an_http_trigger_cannot_become_non_web(srv, svc, images):
    fn, _ = create_fn(srv, svc, None, config={"image": images.ref("web")})
    assert_ok(srv.raw.post(f"/services/{svc}/functions/{fn}/triggers",
                           json={"triggerName": "web", "triggerType": "http",
                                 "triggerConfig": {"authType": "anonymous", "methods": ["GET"]}}))
    r = srv.raw.put(f"/services/{svc}/functions/{fn}",
                    json={"customContainerConfig": {"image": images.ref("oneshot"), "webServerMode": False}})
    body = assert_fc_error(r, 400, "InvalidArgument")
    assert "HTTP trigger 'web'" in body["ErrorMessage"], body


# --- lifecycle -------------------------------------------------------------------------------------------------------
def test_pre_stop_runs_when_an_idle_instance_stops(start_server, images):
    s = start_server(args=images.server_args() + ["--instance-idle-timeout", "1"])
    sv = new_service(s, "ccstop")
    fn = ready_fn(s, sv, images.ref("web"), instanceLifecycleConfig={"preStop": {"handler": "prestop", "timeout": 3}})
    echo_invoke(s, sv, fn, b"1")
    echo_invoke(s, sv, fn, b"2")
    wait_until(lambda: any("fc-handler: pre-stop after 2 invocations" in line for line in function_logs(s, sv, fn)),
               15, interval=0.3, what="the pre-stop hook's log line")
