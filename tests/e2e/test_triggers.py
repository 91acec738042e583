"""Triggers (spec 5.5): CRUD through both SDKs and both prefixes, triggerConfig as an object on /2016-08-15 and a
JSON string on /2021-04-06, http / timer / event-source validation, qualifiers, pagination, FunctionNotEmpty;
on both backends."""

import json

import pytest

from helpers import assert_recent, parse_time, unique
from resources_helpers import create_alias, err, new_function, new_service, ok, publish
from sdk import (CLIENTS, Facade, expect_api_error, fc2_call, if_match_fc2, if_match_raw, present, raw_for,
                 runtime_options, tea_call, tea_models, walk_pages)

HTTP_CFG = {"authType": "anonymous", "methods": ["GET", "POST"]}
TIMER_CFG = {"cronExpression": "0 0/5 * * * *", "enable": True, "payload": "tick"}
RESPONSE_KEYS = {"triggerName", "triggerType", "triggerConfig", "sourceArn", "invocationRole", "qualifier",
                 "description", "triggerId", "createdTime", "lastModifiedTime", "urlInternet", "urlIntranet",
                 "status", "targetArn", "domainName"}


def config_of(trigger):
    """triggerConfig as a dict whichever shape it came in."""
    c = trigger["triggerConfig"]
    return json.loads(c) if isinstance(c, str) else c


def object_prefix(client):
    """Whether this client talks to /2016-08-15 (triggerConfig is an object there)."""
    return client in ("fc2", "raw16")


class Triggers(Facade):
    """Trigger CRUD through one client; returns sdk.Resp, raises sdk.ApiError."""

    def create(self, svc, fn, body):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.create_trigger, svc, fn, body["triggerName"], body["triggerType"],
                            body.get("triggerConfig"), body.get("sourceArn"), body.get("invocationRole"),
                            qualifier=body.get("qualifier"), description=body.get("description", ""))
        if self.client == "fc21":
            m = tea_models()
            body = dict(body)
            if not isinstance(body.get("triggerConfig"), (str, type(None))):
                body["triggerConfig"] = json.dumps(body["triggerConfig"])  # the 2021 model's field is a string
            return tea_call(self.server.fc21.create_trigger, svc, fn, m.CreateTriggerRequest().from_map(body))
        return self._raw("POST", f"/services/{svc}/functions/{fn}/triggers", json=body)

    def get(self, svc, fn, name):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.get_trigger, svc, fn, name)
        if self.client == "fc21":
            return tea_call(self.server.fc21.get_trigger, svc, fn, name)
        return self._raw("GET", f"/services/{svc}/functions/{fn}/triggers/{name}")

    def update(self, svc, fn, name, body, if_match=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.update_trigger, svc, fn, name, triggerConfig=body.get("triggerConfig"),
                            invocationRole=body.get("invocationRole"), qualifier=body.get("qualifier"),
                            description=body.get("description"),
                            headers=if_match_fc2(if_match))
        if self.client == "fc21":
            m = tea_models()
            body = dict(body)
            if not isinstance(body.get("triggerConfig"), (str, type(None))):
                body["triggerConfig"] = json.dumps(body["triggerConfig"])
            return tea_call(self.server.fc21.update_trigger_with_options, svc, fn, name,
                            m.UpdateTriggerRequest().from_map(body), m.UpdateTriggerHeaders(if_match=if_match),
                            runtime_options())
        return self._raw("PUT", f"/services/{svc}/functions/{fn}/triggers/{name}", json=body,
                         headers=if_match_raw(if_match))

    def delete(self, svc, fn, name, if_match=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.delete_trigger, svc, fn, name,
                            headers=if_match_fc2(if_match))
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.delete_trigger_with_options, svc, fn, name,
                            m.DeleteTriggerHeaders(if_match=if_match), runtime_options())
        return self._raw("DELETE", f"/services/{svc}/functions/{fn}/triggers/{name}",
                         headers=if_match_raw(if_match), expect=204)

    def list(self, svc, fn, limit=None, nextToken=None, prefix=None, startKey=None):
        if self.client == "fc2":
            return fc2_call(self.server.fc2.list_triggers, svc, fn, limit=limit, nextToken=nextToken,
                            prefix=prefix, startKey=startKey)
        if self.client == "fc21":
            m = tea_models()
            return tea_call(self.server.fc21.list_triggers, svc, fn, m.ListTriggersRequest(
                limit=limit, next_token=nextToken, prefix=prefix, start_key=startKey))
        return self._raw("GET", f"/services/{svc}/functions/{fn}/triggers",
                         params=present(limit=limit, nextToken=nextToken, prefix=prefix, startKey=startKey))


@pytest.fixture(scope="module")
def svc(server):
    """A service with version 1 and alias 'prod' -> 1."""
    name = new_service(server, "trsvc")
    new_function(server, name)
    publish(server, name)
    create_alias(server, name, "prod", "1")
    return name


@pytest.fixture
def fn(server, svc):
    return new_function(server, svc)[0]


def proxy_url(server, svc, qualifier, fn):
    return f"{server.endpoint}/2016-08-15/proxy/{svc}.{qualifier}/{fn}/"


# --- CRUD ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_create_get_list_http_trigger(server, svc, fn, client):
    a = Triggers(server, client)
    name = unique("http")
    created = a.create(svc, fn, {"triggerName": name, "triggerType": "http", "triggerConfig": HTTP_CFG,
                                 "sourceArn": "dummy_arn", "invocationRole": "", "description": "web"})
    t = created.body
    created.assert_status(200)
    assert created.etag, "CreateTrigger must send an ETag"
    assert (t["triggerName"], t["triggerType"], t["description"]) == (name, "http", "web")
    assert isinstance(t["triggerConfig"], dict if object_prefix(client) else str), t["triggerConfig"]
    assert config_of(t) == HTTP_CFG
    assert t.get("sourceArn") is None, "http triggers discard sourceArn"
    assert t["invocationRole"] == ""
    assert t["qualifier"] == "LATEST"
    assert t["triggerId"]
    assert_recent(t["createdTime"])
    assert_recent(t["lastModifiedTime"])
    assert t["urlInternet"] == proxy_url(server, svc, "LATEST", fn)

    got = a.get(svc, fn, name)
    assert got.etag == created.etag
    assert config_of(got.body) == HTTP_CFG
    for k in ("triggerId", "createdTime", "lastModifiedTime", "urlInternet", "qualifier"):
        assert got.body[k] == t[k], k

    listed = a.list(svc, fn).body["triggers"]
    assert [x["triggerName"] for x in listed] == [name]
    assert config_of(listed[0]) == HTTP_CFG


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_trigger_response_has_every_key(server, svc, fn, client):
    t = Triggers(server, client).create(svc, fn, {"triggerName": unique("keys"), "triggerType": "http",
                                                  "triggerConfig": HTTP_CFG}).body
    assert RESPONSE_KEYS <= set(t), RESPONSE_KEYS - set(t)
    assert t["sourceArn"] is None  # present, and null


@pytest.mark.parametrize("writer", ["raw16", "raw21"])
@pytest.mark.parametrize("form", ["object", "string"])
def test_trigger_config_is_an_object_on_2016_and_a_string_on_2021(server, svc, fn, writer, form):
    name = unique("shape")
    cfg = HTTP_CFG if form == "object" else json.dumps(HTTP_CFG)
    ok(raw_for(server, writer).post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": name, "triggerType": "http", "triggerConfig": cfg}))
    old = ok(server.raw.get(f"/services/{svc}/functions/{fn}/triggers/{name}"))["triggerConfig"]
    new = ok(server.raw21.get(f"/services/{svc}/functions/{fn}/triggers/{name}"))["triggerConfig"]
    assert old == HTTP_CFG, old
    assert isinstance(new, str), new
    assert json.loads(new) == HTTP_CFG
    listed16 = ok(server.raw.get(f"/services/{svc}/functions/{fn}/triggers"))["triggers"][0]["triggerConfig"]
    listed21 = ok(server.raw21.get(f"/services/{svc}/functions/{fn}/triggers"))["triggers"][0]["triggerConfig"]
    assert listed16 == HTTP_CFG
    assert isinstance(listed21, str) and json.loads(listed21) == HTTP_CFG


@pytest.mark.parametrize("client", CLIENTS)
def test_update_trigger(server, svc, fn, client):
    a = Triggers(server, client)
    name = unique("upd")
    created = a.create(svc, fn, {"triggerName": name, "triggerType": "http", "triggerConfig": HTTP_CFG,
                                 "sourceArn": "dummy_arn", "invocationRole": "", "description": "before"})
    new_cfg = {"authType": "function", "methods": ["PUT", "DELETE", "OPTIONS"]}
    upd = a.update(svc, fn, name, {"triggerConfig": new_cfg, "description": "after", "qualifier": "prod",
                                   "invocationRole": "acs:ram::123:role/fc-invoke"})
    u = upd.body
    assert config_of(u) == new_cfg
    assert isinstance(u["triggerConfig"], dict if object_prefix(client) else str)
    assert (u["description"], u["qualifier"], u["invocationRole"]) == ("after", "prod",
                                                                        "acs:ram::123:role/fc-invoke")
    assert u["createdTime"] == created.body["createdTime"]
    assert u["triggerId"] == created.body["triggerId"]
    assert parse_time(u["lastModifiedTime"]) >= parse_time(created.body["lastModifiedTime"])
    assert u["urlInternet"] == proxy_url(server, svc, "prod", fn)
    assert upd.etag and upd.etag != created.etag

    # Partial: only the description changes.
    again = a.update(svc, fn, name, {"description": "third"}).body
    assert config_of(again) == new_cfg
    assert (again["description"], again["qualifier"]) == ("third", "prod")
    got = a.get(svc, fn, name).body
    assert (config_of(got), got["description"], got["qualifier"]) == (new_cfg, "third", "prod")


@pytest.mark.parametrize("client", CLIENTS)
def test_delete_trigger(server, svc, fn, client):
    a = Triggers(server, client)
    name = unique("del")
    a.create(svc, fn, {"triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG})
    a.delete(svc, fn, name).assert_status(204)
    expect_api_error(404, "TriggerNotFound", a.get, svc, fn, name)
    assert a.list(svc, fn).body["triggers"] == []


STALE = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("client", CLIENTS)
def test_update_and_delete_trigger_honour_if_match(server, svc, fn, client):
    a = Triggers(server, client)
    name = unique("ifm")
    etag = a.create(svc, fn, {"triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG}).etag
    expect_api_error(412, "PreconditionFailed", a.update, svc, fn, name, {"description": "x"}, if_match=STALE)
    upd = a.update(svc, fn, name, {"description": "x"}, if_match=etag)
    expect_api_error(412, "PreconditionFailed", a.delete, svc, fn, name, if_match=etag)
    assert a.get(svc, fn, name).body["description"] == "x"
    a.delete(svc, fn, name, if_match=upd.etag).assert_status(204)


# --- qualifiers ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("qualifier", ["1", "prod", "LATEST"])
def test_trigger_qualifier(server, svc, fn, client, qualifier):
    t = Triggers(server, client).create(svc, fn, {"triggerName": unique("q"), "triggerType": "http",
                                                  "triggerConfig": HTTP_CFG, "qualifier": qualifier}).body
    assert t["qualifier"] == qualifier
    assert t["urlInternet"] == proxy_url(server, svc, qualifier, fn)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("qualifier, code", [("99", "VersionNotFound"), ("no_such_alias", "AliasNotFound")])
def test_trigger_qualifier_must_exist(server, svc, fn, client, qualifier, code):
    a = Triggers(server, client)
    name = unique("q")
    expect_api_error(404, code, a.create, svc, fn, {"triggerName": name, "triggerType": "timer",
                                                    "triggerConfig": TIMER_CFG, "qualifier": qualifier})
    expect_api_error(404, "TriggerNotFound", a.get, svc, fn, name)
    a.create(svc, fn, {"triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG})
    expect_api_error(404, code, a.update, svc, fn, name, {"qualifier": qualifier})
    assert a.get(svc, fn, name).body["qualifier"] == "LATEST"


# --- http ---------------------------------------------------------------------------------------------------
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]


@pytest.mark.parametrize("cfg", [{"authType": "anonymous", "methods": [m]} for m in ALL_METHODS] + [
    {"authType": "function", "methods": ALL_METHODS}], ids=ALL_METHODS + ["function-all"])
def test_valid_http_configs(server, svc, fn, cfg):
    t = ok(server.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("h"), "triggerType": "http", "triggerConfig": cfg}))
    assert t["triggerConfig"] == cfg


BAD_HTTP = {
    "unknown authType": {"authType": "anon", "methods": ["GET"]},
    "empty methods": {"authType": "anonymous", "methods": []},
    "unknown method": {"authType": "anonymous", "methods": ["GET", "FETCH"]},
    "methods not a list": {"authType": "anonymous", "methods": "GET"},
    "authType not a string": {"authType": 1, "methods": ["GET"]},
}


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case", list(BAD_HTTP))
def test_invalid_http_configs(server, svc, fn, client, case):
    err(raw_for(server, client).post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("h"), "triggerType": "http", "triggerConfig": BAD_HTTP[case]}), 400,
        "InvalidArgument")
    assert ok(server.raw.get(f"/services/{svc}/functions/{fn}/triggers"))["triggers"] == []


def test_invalid_http_config_on_update(server, svc, fn):
    name = unique("h")
    ok(server.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": name, "triggerType": "http", "triggerConfig": HTTP_CFG}))
    for cfg in BAD_HTTP.values():
        err(server.raw.put(f"/services/{svc}/functions/{fn}/triggers/{name}", json={"triggerConfig": cfg}), 400,
            "InvalidArgument")
    assert ok(server.raw.get(f"/services/{svc}/functions/{fn}/triggers/{name}"))["triggerConfig"] == HTTP_CFG


@pytest.mark.parametrize("client", CLIENTS)
def test_second_http_trigger_on_a_function_is_rejected(server, svc, fn, client):
    a = Triggers(server, client)
    a.create(svc, fn, {"triggerName": unique("h1"), "triggerType": "http", "triggerConfig": HTTP_CFG})
    expect_api_error(400, "InvalidArgument", a.create, svc, fn, {
        "triggerName": unique("h2"), "triggerType": "http", "triggerConfig": HTTP_CFG})
    assert len(a.list(svc, fn).body["triggers"]) == 1
    # Another function may have its own; a timer next to the http trigger is fine.
    other, _ = new_function(server, svc)
    a.create(svc, other, {"triggerName": unique("h3"), "triggerType": "http", "triggerConfig": HTTP_CFG})
    a.create(svc, fn, {"triggerName": unique("t"), "triggerType": "timer", "triggerConfig": TIMER_CFG})


# --- timer --------------------------------------------------------------------------------------------------
GOOD_CRON = ["0 0/5 * * * *", "0 0 12 ? * MON-FRI", "0 30 4 1 * *", "@every 5m", "@every 1m", "@every 1h30m",
             "CRON_TZ=Asia/Shanghai 0 0 4 * * *", "0 0 0 29 2 *"]
# The last two are well-formed but never fire (February 30th, April 31st): refused rather than stored and searched.
BAD_CRON = ["0 0 * * *", "@every 30s", "@every 59s", "not a cron", "", "@every", "0 0 25 * * *", "0 0 0 30 2 *",
            "0 0 12 31 4 ?"]


@pytest.mark.parametrize("client", ["fc2", "fc21", "raw16"])
@pytest.mark.parametrize("cron", GOOD_CRON)
def test_valid_timer_triggers(server, svc, fn, client, cron):
    cfg = {"cronExpression": cron, "enable": False, "payload": '{"k": "v"}'}
    t = Triggers(server, client).create(svc, fn, {"triggerName": unique("tm"), "triggerType": "timer",
                                                  "triggerConfig": cfg, "sourceArn": "acs:ignored",
                                                  "invocationRole": ""}).body
    assert config_of(t) == cfg
    assert t.get("sourceArn") is None, "timer triggers discard sourceArn"


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("cron", BAD_CRON)
def test_invalid_timer_triggers(server, svc, fn, client, cron):
    err(raw_for(server, client).post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("tm"), "triggerType": "timer",
        "triggerConfig": {"cronExpression": cron, "enable": True, "payload": ""}}), 400, "InvalidArgument")


# --- event sources ------------------------------------------------------------------------------------------
EVENT_SOURCES = {
    "oss": ("acs:oss:cn-hangzhou:123456:my-bucket",
            {"events": ["oss:ObjectCreated:*"], "filter": {"key": {"prefix": "in/", "suffix": ".png"}}}),
    "log": ("acs:log:cn-hangzhou:123456:project/my-project",
            {"sourceConfig": {"logstore": "src"}, "jobConfig": {"maxRetryTime": 3, "triggerInterval": 60},
             "logConfig": {"project": "p", "logstore": "l"}, "enable": True}),
    "mns_topic": ("acs:mns:cn-hangzhou:123456:/topics/my-topic",
                  {"notifyContentFormat": "JSON", "notifyStrategy": "BACKOFF_RETRY"}),
    "tablestore": ("acs:ots:cn-hangzhou:123456:instance/inst/table/tbl", {}),
    "cdn_events": ("acs:cdn:*:123456",
                   {"eventName": "CachedObjectsRefreshed", "eventVersion": "1.0.0",
                    "filter": {"domain": ["example.com"]}}),
    "rds": ("acs:rds:cn-hangzhou:123456:dbinstance/rm-abc",
            {"subscriptionObjects": ["db1.table1"], "retry": 3, "concurrency": 1}),
    "eventbridge": (None, {"triggerEnable": True, "eventSourceConfig": {"eventSourceType": "Default"}}),
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("ttype", list(EVENT_SOURCES))
def test_valid_event_source_triggers(server, svc, fn, client, ttype):
    arn, cfg = EVENT_SOURCES[ttype]
    body = {"triggerName": unique(ttype[:4]), "triggerType": ttype, "triggerConfig": cfg,
            "invocationRole": "acs:ram::123456:role/fc-src"}
    if arn:
        body["sourceArn"] = arn
    t = Triggers(server, client).create(svc, fn, body).body
    assert t["triggerType"] == ttype
    assert config_of(t) == cfg
    assert t.get("sourceArn") == arn or (arn is None and t.get("sourceArn") in (None, ""))
    assert t["invocationRole"] == "acs:ram::123456:role/fc-src"


WRONG_ARN = {
    "oss": "acs:log:cn-hangzhou:123456:project/p",
    "log": "acs:oss:cn-hangzhou:123456:bucket",
    "mns_topic": "acs:ots:cn-hangzhou:123456:instance/i",
    "tablestore": "acs:mns:cn-hangzhou:123456:/topics/t",
    "cdn_events": "acs:rds:cn-hangzhou:123456:dbinstance/x",
    "rds": "acs:cdn:*:123456",
}


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("ttype", list(WRONG_ARN))
@pytest.mark.parametrize("arn_case", ["missing", "wrong service", "not an arn"])
def test_event_source_needs_its_own_arn(server, svc, fn, client, ttype, arn_case):
    _, cfg = EVENT_SOURCES[ttype]
    body = {"triggerName": unique("arn"), "triggerType": ttype, "triggerConfig": cfg}
    if arn_case == "wrong service":
        body["sourceArn"] = WRONG_ARN[ttype]
    elif arn_case == "not an arn":
        body["sourceArn"] = "my-bucket"
    err(raw_for(server, client).post(f"/services/{svc}/functions/{fn}/triggers", json=body), 400,
        "InvalidArgument")


@pytest.mark.parametrize("cfg", [{"notifyContentFormat": "XML", "notifyStrategy": "BACKOFF_RETRY"},
                                 {"notifyContentFormat": "STREAM", "notifyStrategy": "SOMETIMES"}],
                         ids=["format", "strategy"])
def test_invalid_mns_topic_config(server, svc, fn, cfg):
    err(server.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("mns"), "triggerType": "mns_topic", "triggerConfig": cfg,
        "sourceArn": EVENT_SOURCES["mns_topic"][0]}), 400, "InvalidArgument")


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("cfg", ['{"authType": "anonymous", "methods": ["GET"]', "not json", '"a string"', "[]"],
                         ids=["truncated", "not-json", "json-string", "json-array"])
def test_trigger_config_string_must_hold_a_json_object(server, svc, fn, client, cfg):
    err(raw_for(server, client).post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("js"), "triggerType": "http", "triggerConfig": cfg}), 400, "InvalidArgument")


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("cfg", [{"cronExpression": "@every 5m", "enable": "yes", "payload": ""},
                                 {"cronExpression": "@every 5m", "enable": True, "payload": {"not": "a string"}},
                                 {"cronExpression": 5, "enable": True, "payload": ""},
                                 {"enable": True, "payload": ""}],
                         ids=["enable-not-bool", "payload-not-string", "cron-not-string", "no-cron"])
def test_timer_config_types(server, svc, fn, client, cfg):
    err(raw_for(server, client).post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("tt"), "triggerType": "timer", "triggerConfig": cfg}), 400, "InvalidArgument")


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("ttype", ["kafka", "HTTP", ""])
def test_unknown_trigger_type(server, svc, fn, client, ttype):
    err(raw_for(server, client).post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": unique("u"), "triggerType": ttype, "triggerConfig": HTTP_CFG}), 400, "InvalidArgument")


# --- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", CLIENTS)
def test_duplicate_trigger(server, svc, fn, client):
    a = Triggers(server, client)
    name = unique("dup")
    a.create(svc, fn, {"triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG})
    expect_api_error(409, "TriggerAlreadyExists", a.create, svc, fn, {
        "triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG})


@pytest.mark.parametrize("client", CLIENTS)
def test_unknown_trigger(server, svc, fn, client):
    a = Triggers(server, client)
    name = unique("none")
    expect_api_error(404, "TriggerNotFound", a.get, svc, fn, name)
    expect_api_error(404, "TriggerNotFound", a.update, svc, fn, name, {"description": "x"})
    expect_api_error(404, "TriggerNotFound", a.delete, svc, fn, name)


@pytest.mark.parametrize("client", CLIENTS)
def test_triggers_of_an_unknown_function_or_service(server, svc, client):
    a = Triggers(server, client)
    body = {"triggerName": unique("t"), "triggerType": "timer", "triggerConfig": TIMER_CFG}
    missing_fn, missing_svc = unique("nofn"), unique("nosvc")
    expect_api_error(404, "FunctionNotFound", a.create, svc, missing_fn, body)
    expect_api_error(404, "FunctionNotFound", a.list, svc, missing_fn)
    expect_api_error(404, "FunctionNotFound", a.get, svc, missing_fn, "t")
    expect_api_error(404, "ServiceNotFound", a.create, missing_svc, "f", body)
    expect_api_error(404, "ServiceNotFound", a.list, missing_svc, "f")


@pytest.mark.parametrize("name", ["1abc", "-x", "has space", "x" * 129, ""])
def test_invalid_trigger_name(server, svc, fn, name):
    err(server.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG}), 400, "InvalidArgument")


@pytest.mark.parametrize("client", CLIENTS)
def test_delete_function_with_triggers_is_function_not_empty(server, svc, client):
    from sdk import api
    f, _ = new_function(server, svc)
    name = unique("t")
    a = Triggers(server, client)
    a.create(svc, f, {"triggerName": name, "triggerType": "timer", "triggerConfig": TIMER_CFG})
    expect_api_error(409, "FunctionNotEmpty", api(server, client).delete_function, svc, f)
    ok(server.raw.get(f"/services/{svc}/functions/{f}"))
    a.delete(svc, f, name)
    api(server, client).delete_function(svc, f).assert_status(204)
    err(server.raw.get(f"/services/{svc}/functions/{f}"), 404, "FunctionNotFound")


# --- pagination ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def five(server, svc):
    f, _ = new_function(server, svc)
    names = [f"p_{i}" for i in range(5)]
    for n in names + ["q_0"]:
        ok(server.raw.post(f"/services/{svc}/functions/{f}/triggers", json={
            "triggerName": n, "triggerType": "timer", "triggerConfig": TIMER_CFG}))
    return f, names


@pytest.mark.parametrize("client", CLIENTS)
def test_list_triggers_pages(server, svc, five, client):
    f, names = five
    a = Triggers(server, client)
    pages = walk_pages(lambda token: a.list(svc, f, limit=2, prefix="p_", nextToken=token).body, "triggers",
                       max_pages=10)
    assert [[x["triggerName"] for x in page] for page in pages] == [names[0:2], names[2:4], names[4:5]]


@pytest.mark.parametrize("client", CLIENTS)
def test_list_triggers_start_key_and_prefix(server, svc, five, client):
    f, names = five
    a = Triggers(server, client)
    assert [x["triggerName"] for x in a.list(svc, f, startKey="p_3").body["triggers"]] == ["p_3", "p_4", "q_0"]
    assert [x["triggerName"] for x in a.list(svc, f, prefix="q").body["triggers"]] == ["q_0"]
    assert [x["triggerName"] for x in a.list(svc, f).body["triggers"]] == names + ["q_0"]
    body = a.list(svc, f, limit=6).body
    assert len(body["triggers"]) == 6 and body.get("nextToken") is None
