"""A small raw client for the FC signature scheme (spec fc-api.md section 3.1), built on `requests`.

For what the official SDKs cannot express or hide: exact error statuses (fc2 retries 5xx), bad or missing
signatures, skewed dates, missing headers, If-Match, capitalised JSON keys, chunked bodies, Range requests.
Independent of the SDKs' own signing code on purpose.
"""

import base64
import email.utils
import hashlib
import hmac
import json as jsonlib
import re
import time
from urllib.parse import unquote, urlsplit

import requests

DEFAULT_TIMEOUT = 30
PREFIX_2016 = "/2016-08-15"
PREFIX_2021 = "/2021-04-06"


def http_date(epoch=None):
    """RFC 1123 GMT, as fc2 Python sends it."""
    return email.utils.formatdate(time.time() if epoch is None else epoch, usegmt=True)


def string_to_sign(method, path, headers, sign_query=None):
    """StringToSign for the FC scheme.

    `path` is the request path as sent (it is percent-decoded here); `headers` a dict (any case). For non-proxy
    API calls the query is not signed; pass `sign_query` (list of (k, v) pairs, v None for a bare key) to build
    the proxy/signed-URL form.
    """
    h = {k.lower(): v for k, v in headers.items()}
    canon = "".join(f"{k}:{h[k]}\n" for k in sorted(k for k in h if k.startswith("x-fc-")))
    resource = unquote(urlsplit(path).path)
    if sign_query is not None:
        parts = sorted(k if v is None else f"{k}={v}" for k, v in sign_query)
        resource = resource + "\n" + "\n".join(parts)
    date = h.get("date", h.get("x-fc-date", ""))
    return "\n".join([method.upper(), h.get("content-md5", ""), h.get("content-type", ""), date,
                      canon + resource])


def fc_signature(secret, sts):
    mac = hmac.new(secret.encode(), sts.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def authorization(ak, secret, method, path, headers, sign_query=None):
    return f"FC {ak}:{fc_signature(secret, string_to_sign(method, path, headers, sign_query))}"


def signed_headers(ak, secret, method, path, headers=None, sign_query=None):
    """The headers of an FC-signed request, to send as they are with any HTTP client: `headers` plus a Date (unless
    they have one) and the Authorization over them. `sign_query` as in string_to_sign (HTTP-trigger calls)."""
    signed = {"Date": http_date(), **(headers or {})}
    signed["Authorization"] = authorization(ak, secret, method, path, signed, sign_query)
    return signed


class RawClient:
    """Sends FC-signed requests to an openfc endpoint.

    path: a full path ('/2021-04-06/services') or one relative to `prefix` ('/services').
    """

    def __init__(self, endpoint, ak, secret, prefix=PREFIX_2016):
        self.endpoint = endpoint.rstrip("/")
        self.ak = ak
        self.secret = secret
        self.prefix = prefix
        self.session = requests.Session()

    def with_prefix(self, prefix):
        return RawClient(self.endpoint, self.ak, self.secret, prefix)

    def with_key(self, ak, secret):
        return RawClient(self.endpoint, ak, secret, self.prefix)

    def full_path(self, path):
        """'/services/x' -> prefix + path; paths that start with a version ('/2099-01-01/...'), with '/_' or are
        '/', '/health', '/metrics' are sent as they are."""
        if re.match(r"^/\d{4}-\d{2}-\d{2}(/|$)", path) or path.startswith("/_") or \
                path in ("/", "/health", "/metrics"):
            return path
        return self.prefix + path

    def request(self, method, path, *, json=None, body=None, headers=None, params=None,
                content_type="application/json", date=None, omit_date=False, sign=True, auth_header=None,
                ak=None, secret=None, sign_path=None, timeout=DEFAULT_TIMEOUT):
        """Build, sign and send one request. Returns the `requests.Response` (never raises on HTTP status).

        json / body      : a JSON-serialisable object, or raw bytes / an iterator of bytes (chunked)
        content_type     : Content-Type header (None = no header)
        date             : an epoch or a preformatted Date value; omit_date drops the header (still signed as '')
        sign=False       : no Authorization header; `auth_header` sets a literal one
        ak, secret       : sign with another key pair; sign_path signs a different path than the one sent
        """
        method = method.upper()
        path = self.full_path(path)
        hdrs = {}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if not omit_date:
            hdrs["Date"] = date if isinstance(date, str) else http_date(date)
        for k, v in (headers or {}).items():
            hdrs[k] = v
        if json is not None:
            assert body is None
            body = jsonlib.dumps(json).encode()
        if auth_header is not None:
            hdrs["Authorization"] = auth_header
        elif sign:
            hdrs["Authorization"] = authorization(ak or self.ak, secret or self.secret, method,
                                                  sign_path or path, hdrs)
        return self.session.request(method, self.endpoint + path, params=params, data=body, headers=hdrs,
                                    timeout=timeout, allow_redirects=False)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)


def check_vectors():
    """Spec section 3.5 vectors A, B and D: proves this signer matches the SDKs byte for byte."""
    date = "Mon, 02 Jan 2006 15:04:05 GMT"
    a = authorization("LTAI5tTestAccessKey", "test-secret-key", "POST", "/2021-04-06/services/svc/functions", {
        "content-md5": "GpnSTpYs+ecXfQWzwpWV5w==", "content-type": "application/json", "date": date,
        "x-fc-account-id": "1234567890", "X-Fc-Trace-Id": "trace-1", "host": "h", "user-agent": "u"})
    b = authorization("LTAI5tTestAccessKey", "test-secret-key", "GET",
                      "/2016-08-15/services/svc/functions?limit=10&prefix=f",
                      {"content-type": "application/json", "date": date})
    d = authorization("LTAI5tTestAccessKey", "test-secret-key", "GET", "/2021-04-06/proxy/svc/fn/",
                      {"date": date}, sign_query=[])
    return a, b, d
