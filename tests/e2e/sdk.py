"""One small facade over the three ways the tests talk to openfc, so CRUD tests are data-driven over clients:

  fc2    aliyun-fc2 2.5.2                    /2016-08-15, FC signature, qualifier in the path (svc.Q)
  fc21   alibabacloud-fc-open20210406 2.0.12 /2021-04-06, ACS3-HMAC-SHA256, qualifier as ?qualifier=
  raw16  rawsign.RawClient                   /2016-08-15, FC signature (our own signer)
  raw21  rawsign.RawClient                   /2021-04-06, FC signature

Every call returns Resp(status, headers, body) with body the JSON the server sent (as far as the SDK's model
knows it, for fc21); HTTP errors raise ApiError(status, code, request_id, body). The three call wrappers
(`fc2_call`, `tea_call`, `raw_call`) are what the per-resource facades of the test modules dispatch to, and
`walk_pages` follows nextToken through any List operation.
"""

import base64
import tempfile
from dataclasses import dataclass, field

import pytest

from helpers import assert_ok, hget

CLIENTS = ["fc2", "fc21", "raw16", "raw21"]


@dataclass
class Resp:
    # None for aliyun-fc2, whose responses carry no status (it raises on any non-2xx).
    status: object
    headers: dict
    body: object

    def assert_status(self, expected):
        """The exact status where the client shows it; for aliyun-fc2 only that the call succeeded."""
        if self.status is not None:
            assert self.status == expected, f"expected HTTP {expected}, got {self.status}"

    @property
    def etag(self):
        return hget(self.headers, "ETag")

    @property
    def request_id(self):
        return hget(self.headers, "X-Fc-Request-Id")


@dataclass
class ApiError(Exception):
    status: int
    code: str
    request_id: str = None
    body: dict = field(default=None)

    def __str__(self):
        return f"{self.status} {self.code} (request {self.request_id}): {self.body}"


# --- the three call wrappers ----------------------------------------------------------------------------------
def raw_for(server, client):
    """'raw16' / 'raw21' (also accepts '2016' / '2021') -> the raw FC-signed client on that prefix."""
    return server.raw21 if "21" in client else server.raw


def raw_call(raw, method, path, json=None, headers=None, params=None, expect=200):
    """One request through a rawsign.RawClient; Resp(status, headers, JSON body or None for 204) after
    helpers.assert_ok (exact status, X-Fc-Request-Id, JSON Content-Type), or ApiError for an HTTP error (whose
    body must be JSON)."""
    r = raw.request(method, path, json=json, headers=headers, params=params)
    if r.status_code >= 400:
        body = r.json()
        raise ApiError(r.status_code, body.get("ErrorCode"), r.headers.get("X-Fc-Request-Id"), body)
    return Resp(r.status_code, r.headers, assert_ok(r, expect))


def fc2_call(fn, *args, **kwargs):
    """Call an aliyun-fc2 method; Resp(None, headers, data) (fc2 shows no status) or ApiError."""
    from fc2.fc_exceptions import FcError
    try:
        r = fn(*args, **kwargs)
    except FcError as e:
        raise ApiError(e.status_code, e.err_code, e.request_id, e.message) from None
    if r is None:  # delete_* return nothing
        return Resp(None, {}, None)
    return Resp(None, r.headers, r.data)


def tea_call(fn, *args):
    """Call a 2021 SDK method; Resp(status, headers, body as the camelCase map) or ApiError."""
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
    try:
        r = fn(*args)
    except AlibabaCloudException as e:
        raise ApiError(e.status_code, e.code, e.request_id, e.data) from None
    body = r.body.to_map() if getattr(r, "body", None) is not None else None
    assert hget(r.headers, "X-Fc-Request-Id"), "no X-Fc-Request-Id"
    return Resp(r.status_code, r.headers, body)


def tea_models():
    from alibabacloud_fc_open20210406 import models
    return models


def runtime_options():
    from alibabacloud_tea_util import models as util_models
    return util_models.RuntimeOptions()


def expect_api_error(status, code, fn, *args, **kwargs):
    """Run a Resp-returning call expecting ApiError(status, code)."""
    try:
        got = fn(*args, **kwargs)
    except ApiError as e:
        assert (e.status, e.code) == (status, code), str(e)
        return e
    raise AssertionError(f"expected {status} {code}, got {got.status}: {got.body}")


# --- request pieces -------------------------------------------------------------------------------------------
def if_match_raw(etag):
    """The If-Match header for the raw client (None: no headers)."""
    return {"If-Match": etag} if etag else None


def if_match_fc2(etag):
    """The headers argument of aliyun-fc2's mutating methods."""
    return {"if-match": etag} if etag else {}


def present(**params):
    """The query parameters that have a value."""
    return {k: v for k, v in params.items() if v is not None}


def svc_seg(svc, qualifier=None, form="path"):
    """The service path segment: `svc.Q` when the qualifier goes in the path."""
    return f"{svc}.{qualifier}" if qualifier and form == "path" else svc


def q_params(qualifier=None, form="path", **extra):
    """The query: the extra parameters that have a value, and `qualifier` when it goes in the query."""
    params = present(**extra)
    if qualifier and form == "query":
        params["qualifier"] = qualifier
    return params or None


# --- paging ---------------------------------------------------------------------------------------------------
def walk_pages(fetch, key, limit=None, max_pages=50):
    """Follows nextToken from the first page to the last (spec section 6): fetch(token) returns one page's body
    (token None for the first). Returns the pages, each the list under `key`. Every page holds at most `limit`
    items; the last one omits nextToken (an empty one fails)."""
    pages, token = [], None
    for _ in range(max_pages):
        body = fetch(token)
        assert key in body, body
        page = body[key]
        if limit:
            assert len(page) <= limit, (limit, page)
        pages.append(page)
        token = body.get("nextToken")
        if token is None:
            return pages
        assert token != "", "nextToken must be omitted, not empty, on the last page"
    pytest.fail(f"more than {max_pages} pages")


class Facade:
    """Base of the per-resource facades of the test modules (aliases, triggers, versions, tags, domains): one
    client of CLIENTS; each method dispatches on it to fc2_call, tea_call or `_raw`."""

    def __init__(self, server, client):
        self.server, self.client = server, client

    def _raw(self, method, path, **kw):
        return raw_call(raw_for(self.server, self.client), method, path, **kw)


def api(server, client):
    return {"fc2": Fc2Api, "fc21": TeaApi, "raw16": RawApi, "raw21": RawApi}[client](server, client)


# ------------------------------------------------------------------------------------------------------------
class RawApi:
    """Raw FC-signed HTTP; `qualifier_form` picks 'path' (svc.Q) or 'query' (?qualifier=Q)."""

    def __init__(self, server, client):
        self.server = server
        self.name = client
        self.raw = raw_for(server, client)

    def _do(self, method, path, json=None, headers=None, params=None, expect=200):
        return raw_call(self.raw, method, path, json=json, headers=headers, params=params, expect=expect)

    def get_account_settings(self):
        return self._do("GET", "/account-settings")

    def create_service(self, body):
        return self._do("POST", "/services", json=body)

    def get_service(self, svc, qualifier=None, form="path"):
        return self._do("GET", f"/services/{svc_seg(svc, qualifier, form)}", params=q_params(qualifier, form))

    def update_service(self, svc, body, if_match=None):
        return self._do("PUT", f"/services/{svc}", json=body, headers=if_match_raw(if_match))

    def delete_service(self, svc, if_match=None):
        return self._do("DELETE", f"/services/{svc}", headers=if_match_raw(if_match), expect=204)

    def list_services(self, **params):
        return self._do("GET", "/services", params=present(**params))

    def create_function(self, svc, body, code_checksum=None):
        headers = {"X-Fc-Code-Checksum": code_checksum} if code_checksum else None
        return self._do("POST", f"/services/{svc}/functions", json=body, headers=headers)

    def get_function(self, svc, fn, qualifier=None, form="path"):
        return self._do("GET", f"/services/{svc_seg(svc, qualifier, form)}/functions/{fn}",
                        params=q_params(qualifier, form))

    def get_function_code(self, svc, fn, qualifier=None, form="path"):
        return self._do("GET", f"/services/{svc_seg(svc, qualifier, form)}/functions/{fn}/code",
                        params=q_params(qualifier, form))

    def update_function(self, svc, fn, body, if_match=None, code_checksum=None):
        headers = {}
        if if_match:
            headers["If-Match"] = if_match
        if code_checksum:
            headers["X-Fc-Code-Checksum"] = code_checksum
        return self._do("PUT", f"/services/{svc}/functions/{fn}", json=body, headers=headers or None)

    def delete_function(self, svc, fn, if_match=None):
        return self._do("DELETE", f"/services/{svc}/functions/{fn}", headers=if_match_raw(if_match), expect=204)

    def list_functions(self, svc, qualifier=None, form="path", **params):
        return self._do("GET", f"/services/{svc_seg(svc, qualifier, form)}/functions",
                        params=q_params(qualifier, form, **params))


# ------------------------------------------------------------------------------------------------------------
class Fc2Api:
    """aliyun-fc2: only the fields its methods take; qualifiers always in the path."""
    name = "fc2"
    SERVICE_FIELDS = {"description", "logConfig", "role", "internetAccess", "vpcConfig", "nasConfig",
                      "tracingConfig"}
    FUNCTION_FIELDS = {"runtime", "handler", "initializer", "initializationTimeout", "description", "memorySize",
                       "timeout", "environmentVariables", "instanceConcurrency", "customContainerConfig", "caPort",
                       "instanceType"}

    def __init__(self, server, client="fc2"):
        self.server = server
        self.c = server.fc2

    _call = staticmethod(fc2_call)
    _headers = staticmethod(if_match_fc2)

    def _only(self, body, allowed, what):
        extra = set(body) - allowed
        if extra:
            raise ValueError(f"aliyun-fc2 cannot send {sorted(extra)} in {what}")
        return dict(body)

    def get_account_settings(self):
        return self._call(self.c.get_account_settings)

    def create_service(self, body):
        body = dict(body)
        name = body.pop("serviceName")
        return self._call(self.c.create_service, name, **self._only(body, self.SERVICE_FIELDS, "CreateService"))

    def get_service(self, svc, qualifier=None, form="path"):
        return self._call(self.c.get_service, svc, qualifier=qualifier)

    def update_service(self, svc, body, if_match=None):
        return self._call(self.c.update_service, svc, headers=self._headers(if_match),
                          **self._only(body, self.SERVICE_FIELDS, "UpdateService"))

    def delete_service(self, svc, if_match=None):
        return self._call(self.c.delete_service, svc, headers=self._headers(if_match))

    def list_services(self, limit=None, nextToken=None, prefix=None, startKey=None):
        return self._call(self.c.list_services, limit=limit, nextToken=nextToken, prefix=prefix, startKey=startKey)

    def _code_kwargs(self, code):
        if code is None:
            return {}
        if "zipFile" in code:
            f = tempfile.NamedTemporaryFile(prefix="openfc-e2e-", suffix=".zip", delete=False)
            f.write(base64.b64decode(code["zipFile"]))
            f.close()
            return {"codeZipFile": f.name}
        return {"codeOSSBucket": code["ossBucketName"], "codeOSSObject": code["ossObjectName"]}

    def create_function(self, svc, body, code_checksum=None):
        assert code_checksum is None, "aliyun-fc2 cannot send X-Fc-Code-Checksum"
        body = dict(body)
        name, runtime, handler = body.pop("functionName"), body.pop("runtime"), body.pop("handler")
        code = body.pop("code", None)
        kwargs = self._only(body, self.FUNCTION_FIELDS, "CreateFunction")
        return self._call(self.c.create_function, svc, name, runtime, handler, **self._code_kwargs(code), **kwargs)

    def get_function(self, svc, fn, qualifier=None, form="path"):
        return self._call(self.c.get_function, svc, fn, qualifier=qualifier)

    def get_function_code(self, svc, fn, qualifier=None, form="path"):
        return self._call(self.c.get_function_code, svc, fn, qualifier=qualifier)

    def update_function(self, svc, fn, body, if_match=None, code_checksum=None):
        assert code_checksum is None, "aliyun-fc2 cannot send X-Fc-Code-Checksum"
        body = dict(body)
        code = body.pop("code", None)
        kwargs = self._only(body, self.FUNCTION_FIELDS, "UpdateFunction")
        return self._call(self.c.update_function, svc, fn, headers=self._headers(if_match),
                          **self._code_kwargs(code), **kwargs)

    def delete_function(self, svc, fn, if_match=None):
        return self._call(self.c.delete_function, svc, fn, headers=self._headers(if_match))

    def list_functions(self, svc, qualifier=None, form="path", limit=None, nextToken=None, prefix=None,
                       startKey=None):
        return self._call(self.c.list_functions, svc, limit=limit, nextToken=nextToken, prefix=prefix,
                          startKey=startKey, qualifier=qualifier)


# ------------------------------------------------------------------------------------------------------------
class TeaApi:
    """alibabacloud-fc-open20210406 (ACS3); qualifiers always as ?qualifier=."""
    name = "fc21"

    _call = staticmethod(tea_call)
    rt = staticmethod(runtime_options)

    def __init__(self, server, client="fc21"):
        self.server = server
        self.c = server.fc21
        self.m = tea_models()

    def get_account_settings(self):
        return self._call(self.c.get_account_settings)

    def create_service(self, body):
        return self._call(self.c.create_service, self.m.CreateServiceRequest().from_map(body))

    def get_service(self, svc, qualifier=None, form="query"):
        return self._call(self.c.get_service, svc, self.m.GetServiceRequest(qualifier=qualifier))

    def update_service(self, svc, body, if_match=None):
        return self._call(self.c.update_service_with_options, svc, self.m.UpdateServiceRequest().from_map(body),
                          self.m.UpdateServiceHeaders(if_match=if_match), self.rt())

    def delete_service(self, svc, if_match=None):
        return self._call(self.c.delete_service_with_options, svc, self.m.DeleteServiceHeaders(if_match=if_match),
                          self.rt())

    def list_services(self, limit=None, nextToken=None, prefix=None, startKey=None):
        return self._call(self.c.list_services, self.m.ListServicesRequest(
            limit=limit, next_token=nextToken, prefix=prefix, start_key=startKey))

    def create_function(self, svc, body, code_checksum=None):
        return self._call(self.c.create_function_with_options, svc, self.m.CreateFunctionRequest().from_map(body),
                          self.m.CreateFunctionHeaders(x_fc_code_checksum=code_checksum), self.rt())

    def get_function(self, svc, fn, qualifier=None, form="query"):
        return self._call(self.c.get_function, svc, fn, self.m.GetFunctionRequest(qualifier=qualifier))

    def get_function_code(self, svc, fn, qualifier=None, form="query"):
        return self._call(self.c.get_function_code, svc, fn, self.m.GetFunctionCodeRequest(qualifier=qualifier))

    def update_function(self, svc, fn, body, if_match=None, code_checksum=None):
        body = dict(body)
        if "instanceConcurrency" in body:  # the 2021 model's map key (and wire key) is capitalised
            body["InstanceConcurrency"] = body.pop("instanceConcurrency")
        return self._call(self.c.update_function_with_options, svc, fn,
                          self.m.UpdateFunctionRequest().from_map(body),
                          self.m.UpdateFunctionHeaders(if_match=if_match, x_fc_code_checksum=code_checksum),
                          self.rt())

    def delete_function(self, svc, fn, if_match=None):
        return self._call(self.c.delete_function_with_options, svc, fn,
                          self.m.DeleteFunctionHeaders(if_match=if_match), self.rt())

    def list_functions(self, svc, qualifier=None, form="query", limit=None, nextToken=None, prefix=None,
                       startKey=None):
        return self._call(self.c.list_functions, svc, self.m.ListFunctionsRequest(
            qualifier=qualifier, limit=limit, next_token=nextToken, prefix=prefix, start_key=startKey))
