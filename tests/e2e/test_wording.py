"""InvalidArgument messages in FC's wording (issue 13, docs/fc-messages.md): each case is refused with the exact
message FC's sentence shapes give — `X is set to an invalid value (allowed: …, actual: '…')`, `X doesn't match
expected format (allowed: '…', actual: '…')`, `X is required but not provided.`, `Bad data in request body.` —
and the message reaches the caller unchanged through raw requests on both prefixes, aliyun-fc2's FcError and
the 2021 SDK's ClientException."""

import json

import pytest

from helpers import assert_fc_error, b64, fc2_error, tea_error, unique
from resources_helpers import PKG, new_function, new_service, publish, service_arn
from sdk import runtime_options, tea_models

NAME_128 = "^[_a-zA-Z][-_a-zA-Z0-9]{0,127}$"
NAME_64 = "^[_a-zA-Z][-_a-zA-Z0-9]{0,63}$"
DOMAIN = r"^(\*\.)?([a-z0-9A-Z]([-a-z0-9A-Z]{0,61}[a-z0-9A-Z])?\.)+[a-zA-Z]{2,}$"
LAYER_ARNS = "acs:fc:{region}:{accountID}:layers/{layerName}/versions/{version} | {accountHash}#{layerName}#{version}"


@pytest.fixture(scope="module")
def ctx(server, tmp_path_factory):
    """A service with one function and one published version, and the package as a file for aliyun-fc2."""
    svc = new_service(server, "words")
    fn, _ = new_function(server, svc)
    publish(server, svc)
    zip_path = tmp_path_factory.mktemp("wording") / "code.zip"
    zip_path.write_bytes(PKG)
    return {"svc": svc, "fn": fn, "zip": str(zip_path)}


def fn_body(**fields):
    return {"functionName": unique("fn"), "runtime": "python3.10", "handler": "index.handler",
            "code": {"zipFile": b64(PKG)}, **fields}


def tea_fn(**fields):
    m = tea_models()
    body = {"function_name": unique("fn"), "runtime": "python3.10", "handler": "index.handler", **fields}
    return m.CreateFunctionRequest(code=m.Code(zip_file=b64(PKG)), **body)


def fc2_fn(server, c, **fields):
    """aliyun-fc2's create_function with the case's fields over a valid function."""
    args = {"functionName": unique("fn"), "runtime": "python3.10", "handler": "index.handler", **fields}
    return lambda: server.fc2.create_function(c["svc"], args.pop("functionName"), args.pop("runtime"),
                                              args.pop("handler"), codeZipFile=c["zip"], **args)


def sdk_calls(server, c, case):
    """(fc2 call, 2021 SDK call) for a case; None where that SDK cannot send the request."""
    m, svc = tea_models(), c["svc"]
    fc2, tea = server.fc2, server.fc21
    long_text = "d" * 257
    return {
        "service-name": (lambda: fc2.create_service("1svc"),
                         lambda: tea.create_service(m.CreateServiceRequest(service_name="1svc"))),
        "function-name": (fc2_fn(server, c, functionName="fn.x"),
                          lambda: tea.create_function(svc, tea_fn(function_name="fn.x"))),
        "runtime": (fc2_fn(server, c, runtime="python4"),
                    lambda: tea.create_function(svc, tea_fn(runtime="python4"))),
        "handler": (fc2_fn(server, c, handler="nodot"),
                    lambda: tea.create_function(svc, tea_fn(handler="nodot"))),
        "memory-size": (fc2_fn(server, c, memorySize=100),
                        lambda: tea.create_function(svc, tea_fn(memory_size=100))),
        # aliyun-fc2 leaves out a falsy timeout, so the case is one over the top rather than 0.
        "timeout": (fc2_fn(server, c, timeout=86401), lambda: tea.create_function(svc, tea_fn(timeout=86401))),
        "instance-concurrency": (fc2_fn(server, c, instanceConcurrency=201),
                                 lambda: tea.create_function(svc, tea_fn(instance_concurrency=201))),
        "layers": (None, lambda: tea.create_function(svc, tea_fn(layers=["nope"]))),
        "env-reserved": (fc2_fn(server, c, environmentVariables={"FC_X": "1"}),
                         lambda: tea.create_function(svc, tea_fn(environment_variables={"FC_X": "1"}))),
        "env-name": (fc2_fn(server, c, environmentVariables={"1A": "x"}),
                     lambda: tea.create_function(svc, tea_fn(environment_variables={"1A": "x"}))),
        "trigger-type": (lambda: fc2.create_trigger(svc, c["fn"], unique("t"), "ftp", {}, None, None),
                         lambda: tea.create_trigger(svc, c["fn"], m.CreateTriggerRequest(
                             trigger_name=unique("t"), trigger_type="ftp", trigger_config="{}"))),
        "trigger-config": (lambda: fc2.create_trigger(svc, c["fn"], unique("t"), "http",
                                                      {"authType": "nobody", "methods": ["GET"]}, None, None),
                           lambda: tea.create_trigger(svc, c["fn"], m.CreateTriggerRequest(
                               trigger_name=unique("t"), trigger_type="http",
                               trigger_config=json.dumps({"authType": "nobody", "methods": ["GET"]})))),
        "alias-weight": (lambda: fc2.create_alias(svc, unique("al"), "1", additionalVersionWeight={"1": 1.5}),
                         lambda: tea.create_alias(svc, m.CreateAliasRequest(
                             alias_name=unique("al"), version_id="1", additional_version_weight={"1": 1.5}))),
        "version-description": (lambda: fc2.publish_version(svc, long_text),
                                lambda: tea.publish_service_version(svc, m.PublishServiceVersionRequest(
                                    description=long_text))),
        "tag-key": (lambda: fc2.tag_resource(service_arn(server, svc), {"aliyun-x": "v"}),
                    lambda: tea.tag_resource(m.TagResourceRequest(resource_arn=service_arn(server, svc),
                                                                  tags={"aliyun-x": "v"}))),
        "domain-name": (lambda: fc2.create_custom_domain("Auto"),
                        lambda: tea.create_custom_domain(m.CreateCustomDomainRequest(domain_name="Auto"))),
        "limit": (lambda: fc2.list_services(limit=1000),
                  lambda: tea.list_services(m.ListServicesRequest(limit=1000))),
        "next-token": (lambda: fc2.list_versions(svc, nextToken="x"),
                       lambda: tea.list_service_versions(svc, m.ListServiceVersionsRequest(next_token="x"))),
        "log-type": (lambda: fc2.invoke_function(svc, c["fn"], headers={"x-fc-log-type": "Invalid"}),
                     lambda: tea.invoke_function_with_options(svc, c["fn"], m.InvokeFunctionRequest(),
                                                              m.InvokeFunctionHeaders(x_fc_log_type="Invalid"),
                                                              runtime_options())),
    }[case]


def raw_request(server, c, case):
    """(method, path, keyword arguments of RawClient.request) of a case."""
    svc, fn = c["svc"], c["fn"]
    functions = f"/services/{svc}/functions"
    return {
        "service-name": ("POST", "/services", {"json": {"serviceName": "1svc"}}),
        "function-name": ("POST", functions, {"json": fn_body(functionName="fn.x")}),
        "runtime": ("POST", functions, {"json": fn_body(runtime="python4")}),
        "handler": ("POST", functions, {"json": fn_body(handler="nodot")}),
        "memory-size": ("POST", functions, {"json": fn_body(memorySize=100)}),
        "timeout": ("POST", functions, {"json": fn_body(timeout=86401)}),
        "instance-concurrency": ("POST", functions, {"json": fn_body(instanceConcurrency=201)}),
        "layers": ("POST", functions, {"json": fn_body(layers=["nope"])}),
        "env-reserved": ("POST", functions, {"json": fn_body(environmentVariables={"FC_X": "1"})}),
        "env-name": ("POST", functions, {"json": fn_body(environmentVariables={"1A": "x"})}),
        "trigger-type": ("POST", f"{functions}/{fn}/triggers",
                         {"json": {"triggerName": unique("t"), "triggerType": "ftp", "triggerConfig": {}}}),
        "trigger-config": ("POST", f"{functions}/{fn}/triggers",
                           {"json": {"triggerName": unique("t"), "triggerType": "http",
                                     "triggerConfig": {"authType": "nobody", "methods": ["GET"]}}}),
        "alias-weight": ("POST", f"/services/{svc}/aliases",
                         {"json": {"aliasName": unique("al"), "versionId": "1",
                                   "additionalVersionWeight": {"1": 1.5}}}),
        "version-description": ("POST", f"/services/{svc}/versions", {"json": {"description": "d" * 257}}),
        "tag-key": ("POST", "/tag", {"json": {"resourceArn": service_arn(server, svc), "tags": {"aliyun-x": "v"}}}),
        "domain-name": ("POST", "/custom-domains", {"json": {"domainName": "Auto"}}),
        "limit": ("GET", "/services", {"params": {"limit": "1000"}}),
        "next-token": ("GET", f"/services/{svc}/versions", {"params": {"nextToken": "x"}}),
        "log-type": ("POST", f"{functions}/{fn}/invocations", {"headers": {"X-Fc-Log-Type": "Invalid"}}),
        "runtime-missing": ("POST", functions, {"json": {k: v for k, v in fn_body().items() if k != "runtime"}}),
        "bad-json": ("POST", "/services", {"body": b"{not json", "headers": {"Content-Type": "application/json"}}),
        "version-direction": ("GET", f"/services/{svc}/versions", {"params": {"direction": "SIDEWAYS"}}),
    }[case]


# (case, the exact message) — or (case, (prefix, suffix)) where the middle lists every runtime or trigger type.
CASES = [
    ("service-name", f"ServiceName doesn't match expected format (allowed: '{NAME_128}', actual: '1svc')"),
    ("function-name", f"FunctionName doesn't match expected format (allowed: '{NAME_64}', actual: 'fn.x')"),
    ("runtime", ("Runtime is set to an invalid value (allowed: nodejs20 | ", ", actual: 'python4')")),
    ("handler", "Handler is set to an invalid value (allowed: [file].[function], actual: 'nodot')"),
    ("memory-size", "MemorySize is set to an invalid value (allowed: a multiple of 64 from 128 to 32768, "
                    "actual: '100')"),
    ("timeout", "Timeout is set to an invalid value (allowed: 1 to 86400, actual: '86401')"),
    ("instance-concurrency", "InstanceConcurrency is set to an invalid value (allowed: 1 to 200, actual: '201')"),
    ("layers", f"Layers is set to an invalid value (allowed: {LAYER_ARNS}, actual: 'nope')"),
    ("env-reserved", "EnvironmentVariables key is set to an invalid value (allowed: a name without the reserved "
                     "prefix FC_, actual: 'FC_X')"),
    ("env-name", "EnvironmentVariables key doesn't match expected format (allowed: '^[a-zA-Z][a-zA-Z0-9_]*$', "
                 "actual: '1A')"),
    ("trigger-type", ("TriggerType is set to an invalid value (allowed: http | ", ", actual: 'ftp')")),
    ("trigger-config", "TriggerConfig.AuthType is set to an invalid value (allowed: anonymous | function, "
                       "actual: 'nobody')"),
    ("alias-weight", "AdditionalVersionWeight is set to an invalid value (allowed: weights from 0 to 1, "
                     "actual: '1: 1.5')"),
    ("version-description", "Description is set to an invalid value (allowed: at most 256 characters, "
                            "actual: '257 characters')"),
    ("tag-key", "Tags key is set to an invalid value (allowed: 1 to 128 characters, not starting with 'aliyun' "
                "or 'acs:', actual: 'aliyun-x')"),
    ("domain-name", f"domain name doesn't match expected format (allowed: '{DOMAIN}', actual: 'Auto')"),
    ("limit", "Limit is set to an invalid value (allowed: 1 to 100, actual: '1000')"),
    ("next-token", "NextToken is set to an invalid value (allowed: a version id, actual: 'x')"),
    # FC's own message, as aliyun/fc-java-sdk's tests assert it.
    ("log-type", "LogType is set to an invalid value (allowed: Tail | None, actual: 'Invalid')"),
    ("runtime-missing", "Runtime is required but not provided."),
    ("bad-json", ("Bad data in request body. It is not valid JSON: ", "")),
    ("version-direction", "Direction is set to an invalid value (allowed: FORWARD | BACKWARD, actual: 'SIDEWAYS')"),
]
SDK_CASES = [c for c in CASES if c[0] not in ("runtime-missing", "bad-json", "version-direction")]


def check(message, expected):
    if isinstance(expected, tuple):
        prefix, suffix = expected
        assert message.startswith(prefix) and message.endswith(suffix), (message, expected)
    else:
        assert message == expected, (message, expected)


@pytest.mark.parametrize("prefix", ["raw16", "raw21"])
@pytest.mark.parametrize("case, expected", CASES, ids=[c[0] for c in CASES])
def test_raw_requests_get_fcs_wording(server, ctx, prefix, case, expected):
    raw = server.raw21 if prefix == "raw21" else server.raw
    method, path, kwargs = raw_request(server, ctx, case)
    body = assert_fc_error(raw.request(method, path, **kwargs), 400, "InvalidArgument")
    check(body["ErrorMessage"], expected)


@pytest.mark.parametrize("case, expected", SDK_CASES, ids=[c[0] for c in SDK_CASES])
def test_fc2_fc_error_carries_the_message(server, ctx, case, expected):
    call, _ = sdk_calls(server, ctx, case)
    if call is None:
        pytest.skip("aliyun-fc2 cannot send this field")
    e = fc2_error(400, "InvalidArgument", call)
    check(json.loads(e.message)["ErrorMessage"], expected)


@pytest.mark.parametrize("case, expected", SDK_CASES, ids=[c[0] for c in SDK_CASES])
def test_tea_client_exception_carries_the_message(server, ctx, case, expected):
    _, call = sdk_calls(server, ctx, case)
    e = tea_error(400, "InvalidArgument", call)
    # The 2021 SDK words it `code: <status>, <Message> request id: <id>`.
    head, _, tail = e.message.partition(" request id: ")
    assert head.startswith("code: 400, ") and tail == e.request_id, e.message
    check(head.removeprefix("code: 400, "), expected)


def test_nothing_refused_was_created(server, ctx):
    """The refusals above left no trace: the service still has its one function, version and no alias."""
    svc = ctx["svc"]
    assert [f["functionName"] for f in server.raw.get(f"/services/{svc}/functions").json()["functions"]] == \
        [ctx["fn"]]
    assert [v["versionId"] for v in server.raw.get(f"/services/{svc}/versions").json()["versions"]] == ["1"]
    assert server.raw.get(f"/services/{svc}/aliases").json().get("aliases", []) == []
