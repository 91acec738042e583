"""One small facade over the three ways the tests talk to openfc, so CRUD tests are data-driven over clients:

  fc2    aliyun-fc2 2.5.2                    /2016-08-15, FC signature, qualifier in the path (svc.Q)
  fc21   alibabacloud-fc-open20210406 2.0.12 /2021-04-06, ACS3-HMAC-SHA256, qualifier as ?qualifier=
  raw16  rawsign.RawClient                   /2016-08-15, FC signature (our own signer)
  raw21  rawsign.RawClient                   /2021-04-06, FC signature

Every call returns Resp(status, headers, body) with body the JSON the server sent (as far as the SDK's model
knows it, for fc21); HTTP errors raise ApiError(status, code, request_id, body).
"""

import base64
import tempfile
from dataclasses import dataclass, field

from helpers import hget

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


def api(server, client):
    return {"fc2": Fc2Api, "fc21": TeaApi, "raw16": RawApi, "raw21": RawApi}[client](server, client)


# ------------------------------------------------------------------------------------------------------------
class RawApi:
    """Raw FC-signed HTTP; `qualifier_form` picks 'path' (svc.Q) or 'query' (?qualifier=Q)."""

    def __init__(self, server, client):
        self.server = server
        self.name = client
        self.raw = server.raw if client == "raw16" else server.raw21

    def _do(self, method, path, json=None, headers=None, params=None, expect=200):
        r = self.raw.request(method, path, json=json, headers=headers, params=params)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"raw": r.text}
            raise ApiError(r.status_code, body.get("ErrorCode"), r.headers.get("X-Fc-Request-Id"), body)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} (expected {expect}) {r.text[:500]}"
        assert r.headers.get("X-Fc-Request-Id"), f"{method} {path}: no X-Fc-Request-Id"
        if expect == 204:
            assert r.content == b"", r.content[:200]
            return Resp(r.status_code, r.headers, None)
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers.get("Content-Type")
        return Resp(r.status_code, r.headers, r.json())

    @staticmethod
    def _svc(svc, qualifier, form):
        return f"{svc}.{qualifier}" if qualifier and form == "path" else svc

    @staticmethod
    def _q(qualifier, form, params=None):
        params = dict(params or {})
        if qualifier and form == "query":
            params["qualifier"] = qualifier
        return params or None

    def get_account_settings(self):
        return self._do("GET", "/account-settings")

    def create_service(self, body):
        return self._do("POST", "/services", json=body)

    def get_service(self, svc, qualifier=None, form="path"):
        return self._do("GET", f"/services/{self._svc(svc, qualifier, form)}", params=self._q(qualifier, form))

    def update_service(self, svc, body, if_match=None):
        return self._do("PUT", f"/services/{svc}", json=body, headers={"If-Match": if_match} if if_match else None)

    def delete_service(self, svc, if_match=None):
        return self._do("DELETE", f"/services/{svc}", headers={"If-Match": if_match} if if_match else None,
                        expect=204)

    def list_services(self, **params):
        return self._do("GET", "/services", params={k: v for k, v in params.items() if v is not None})

    def create_function(self, svc, body, code_checksum=None):
        headers = {"X-Fc-Code-Checksum": code_checksum} if code_checksum else None
        return self._do("POST", f"/services/{svc}/functions", json=body, headers=headers)

    def get_function(self, svc, fn, qualifier=None, form="path"):
        return self._do("GET", f"/services/{self._svc(svc, qualifier, form)}/functions/{fn}",
                        params=self._q(qualifier, form))

    def get_function_code(self, svc, fn, qualifier=None, form="path"):
        return self._do("GET", f"/services/{self._svc(svc, qualifier, form)}/functions/{fn}/code",
                        params=self._q(qualifier, form))

    def update_function(self, svc, fn, body, if_match=None, code_checksum=None):
        headers = {}
        if if_match:
            headers["If-Match"] = if_match
        if code_checksum:
            headers["X-Fc-Code-Checksum"] = code_checksum
        return self._do("PUT", f"/services/{svc}/functions/{fn}", json=body, headers=headers or None)

    def delete_function(self, svc, fn, if_match=None):
        return self._do("DELETE", f"/services/{svc}/functions/{fn}",
                        headers={"If-Match": if_match} if if_match else None, expect=204)

    def list_functions(self, svc, qualifier=None, form="path", **params):
        params = {k: v for k, v in params.items() if v is not None}
        return self._do("GET", f"/services/{self._svc(svc, qualifier, form)}/functions",
                        params=self._q(qualifier, form, params))


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

    def _call(self, fn, *args, **kwargs):
        from fc2.fc_exceptions import FcError
        try:
            r = fn(*args, **kwargs)
        except FcError as e:
            raise ApiError(e.status_code, e.err_code, e.request_id, e.message) from None
        if r is None:  # delete_* return nothing
            return Resp(None, {}, None)
        return Resp(None, r.headers, r.data)

    @staticmethod
    def _headers(if_match=None):
        return {"if-match": if_match} if if_match else {}

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

    def __init__(self, server, client="fc21"):
        from alibabacloud_fc_open20210406 import models
        from alibabacloud_tea_util import models as util_models
        self.server = server
        self.c = server.fc21
        self.m = models
        self.rt = util_models.RuntimeOptions

    def _call(self, fn, *args):
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        try:
            r = fn(*args)
        except AlibabaCloudException as e:
            raise ApiError(e.status_code, e.code, e.request_id, e.data) from None
        body = r.body.to_map() if getattr(r, "body", None) is not None else None
        assert hget(r.headers, "X-Fc-Request-Id"), "no X-Fc-Request-Id"
        return Resp(r.status_code, r.headers, body)

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
