"""Authentication hardening: the body is bound to its signed hash header (Content-MD5 for the FC scheme,
x-acs-content-sha256 for ACS3), ACS3 must sign `host` and `x-acs-date` and canonicalises query keys, replayed
mutating requests are refused, an unauthenticated request's body is never read, HTTP-trigger functions never
see the caller's credentials, and huge Range bounds on code URLs are answered as HTTP says. SQLite."""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid

import pytest
import requests

import rawsign
from helpers import assert_fc_error, assert_ok, b64, unique
from invoke_helpers import code_zip, py_zip

MB = 1024 * 1024
U64_MAX = 18446744073709551615
# The server tolerates identical FC-scheme requests (1-second Date, no nonce) this long after the first one.
REPLAY_GRACE = 5


@pytest.fixture(scope="module")
def s(sqlite_server):
    return sqlite_server


# --- helpers -------------------------------------------------------------------------------------------------

def md5_b64_raw(body):
    """What the FC documentation and most SDKs send: base64 of the binary digest."""
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def md5_b64_hex(body):
    """What @alicloud/fc2 sends (spec §2.2): base64 of the lower-case hex digest."""
    return base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()


def fc_signed_headers(srv, method, path, body=b"", content_md5=None, content_type="application/json", extra=None):
    """Headers (Authorization included) of an FC-scheme request; send them as they are with `requests`."""
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if content_md5 is not None:
        headers["Content-MD5"] = content_md5
    headers.update(extra or {})
    return rawsign.signed_headers(srv.ak, srv.secret, method, path, headers)


def send(srv, method, path, headers, body=b""):
    return requests.request(method, srv.endpoint + path, headers=headers, data=body, timeout=30)


def acs3_date(epoch=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))


def acs3_headers(srv, method, path, canonical_query="", body=b"", signed=None, action="ListServices"):
    """Headers of an ACS3-HMAC-SHA256 request built as the Tea SDK builds them (spec §3.2). `signed` limits
    SignedHeaders to these names (default: every header set here); `canonical_query` is what is signed."""
    payload = hashlib.sha256(body).hexdigest()
    headers = {
        "host": f"127.0.0.1:{srv.port}",
        "x-acs-version": "2021-04-06",
        "x-acs-action": action,
        "x-acs-date": acs3_date(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": payload,
    }
    if body:
        headers["content-type"] = "application/json; charset=utf-8"
    names = sorted(signed if signed is not None else headers)
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
    canonical = "\n".join([method, path, canonical_query, canonical_headers, ";".join(names), payload])
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(srv.secret.encode(), sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"ACS3-HMAC-SHA256 Credential={srv.ak},SignedHeaders={';'.join(names)},"
                                f"Signature={sig}")
    return headers


def new_service(srv):
    name = unique("ahsvc")
    assert_ok(srv.raw.post("/services", json={"serviceName": name}))
    return name


# --- 1. Content-MD5 is checked against the body (FC scheme) ---------------------------------------------------

@pytest.mark.parametrize("form", [md5_b64_raw, md5_b64_hex], ids=["base64-digest", "base64-hex-node"])
def test_content_md5_of_the_body_is_accepted_in_both_sdk_forms(s, form):
    body = json.dumps({"serviceName": unique("md5ok")}).encode()
    path = "/2016-08-15/services"
    assert_ok(send(s, "POST", path, fc_signed_headers(s, "POST", path, body, content_md5=form(body)), body))


@pytest.mark.parametrize("form", [md5_b64_raw, md5_b64_hex], ids=["base64-digest", "base64-hex-node"])
def test_content_md5_of_another_body_is_refused(s, form):
    signed_body = json.dumps({"serviceName": unique("md5a")}).encode()
    sent_body = json.dumps({"serviceName": unique("md5b")}).encode()
    path = "/2016-08-15/services"
    headers = fc_signed_headers(s, "POST", path, signed_body, content_md5=form(signed_body))
    body = assert_fc_error(send(s, "POST", path, headers, sent_body), 400, "InvalidArgument")
    assert "Content-MD5" in body["ErrorMessage"], body
    assert_fc_error(s.raw.get(f"/services/{json.loads(sent_body)['serviceName']}"), 404, "ServiceNotFound")


def test_captured_update_function_cannot_carry_other_code(s):
    """The finding: a signed UpdateFunction replayed with other code inside the 15-minute window."""
    svc = new_service(s)
    fn = unique("fn")
    good = py_zip("def handler(event, context):\n    return 'good'\n")
    evil = py_zip("def handler(event, context):\n    return 'evil'\n")
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": fn, "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(good)}}))
    before = assert_ok(s.raw.get(f"/services/{svc}/functions/{fn}"))["codeChecksum"]
    path = f"/2016-08-15/services/{svc}/functions/{fn}"
    signed_body = json.dumps({"code": {"zipFile": b64(good)}}).encode()
    headers = fc_signed_headers(s, "PUT", path, signed_body, content_md5=md5_b64_hex(signed_body))
    evil_body = json.dumps({"code": {"zipFile": b64(evil)}}).encode()
    assert_fc_error(send(s, "PUT", path, headers, evil_body), 400, "InvalidArgument")
    assert assert_ok(s.raw.get(f"/services/{svc}/functions/{fn}"))["codeChecksum"] == before


# --- 2. ACS3: host and x-acs-date must be signed; query keys are canonicalised -------------------------------

def test_acs3_signer_of_this_test_is_accepted(s):
    path = "/2021-04-06/services"
    assert_ok(requests.get(s.endpoint + path + "?limit=5&prefix=a+b",
                           headers=acs3_headers(s, "GET", path, "limit=5&prefix=a%20b"), timeout=30))


@pytest.mark.parametrize("unsigned", ["host", "x-acs-date"])
def test_acs3_must_sign_host_and_date(s, unsigned):
    path = "/2021-04-06/services"
    names = ["accept", "host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce",
             "x-acs-version"]
    headers = acs3_headers(s, "GET", path, signed=[n for n in names if n != unsigned])
    body = assert_fc_error(requests.get(s.endpoint + path, headers=headers, timeout=30), 403, "SignatureNotMatch")
    assert unsigned in body["ErrorMessage"], body


def test_acs3_encoded_query_keys_do_not_share_a_signature(s):
    path = "/2021-04-06/services"
    headers = acs3_headers(s, "GET", path, "limit=5&prefix=")
    assert_ok(requests.get(s.endpoint + path + "?limit=5&prefix=", headers=headers, timeout=30))
    # One key 'limit=5&prefix' with an empty value: a different request, so a different signature.
    headers = acs3_headers(s, "GET", path, "limit=5&prefix=")
    r = requests.get(s.endpoint + path + "?limit%3D5%26prefix=", headers=headers, timeout=30)
    assert_fc_error(r, 403, "SignatureNotMatch")


# --- 3. replayed mutating requests are refused -----------------------------------------------------------------

def test_replayed_fc_delete_is_refused_after_the_grace(s):
    svc = new_service(s)
    path = f"/2016-08-15/services/{svc}"
    headers = fc_signed_headers(s, "DELETE", path)
    assert_ok(send(s, "DELETE", path, headers), 204)
    assert_ok(s.raw.post("/services", json={"serviceName": svc}))
    time.sleep(REPLAY_GRACE + 1)
    body = assert_fc_error(send(s, "DELETE", path, headers), 403, "AccessDenied")
    assert "replay" in body["ErrorMessage"].lower(), body
    assert_ok(s.raw.get(f"/services/{svc}"))


def test_replayed_acs3_request_is_refused_at_once(s):
    svc = new_service(s)
    path = f"/2021-04-06/services/{svc}"
    headers = acs3_headers(s, "DELETE", path, action="DeleteService")
    assert_ok(requests.delete(s.endpoint + path, headers=headers, timeout=30), 204)
    assert_ok(s.raw.post("/services", json={"serviceName": svc}))
    # The signature covers x-acs-signature-nonce: a second sighting is a replay, however soon.
    body = assert_fc_error(requests.delete(s.endpoint + path, headers=headers, timeout=30), 403, "AccessDenied")
    assert "replay" in body["ErrorMessage"].lower(), body
    assert_ok(s.raw.get(f"/services/{svc}"))


def test_identical_fc_requests_within_a_second_are_not_replays(s):
    """fc2 signs with a 1-second Date and no nonce: a client sending the same request twice at once is legitimate."""
    svc = new_service(s)
    path = f"/2016-08-15/services/{svc}"
    body = json.dumps({"description": "same"}).encode()
    headers = fc_signed_headers(s, "PUT", path, body)
    for _ in range(3):
        assert_ok(send(s, "PUT", path, headers, body))
    for _ in range(3):
        s.fc2.update_service(svc, description="sdk")


def test_a_repeated_get_is_not_a_replay(s):
    path = "/2016-08-15/services"
    headers = fc_signed_headers(s, "GET", path)
    assert_ok(send(s, "GET", path, headers))
    time.sleep(REPLAY_GRACE + 1)
    assert_ok(send(s, "GET", path, headers))


# --- 4. the body of an unauthenticated request is not read ---------------------------------------------------

def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def reset_peak_rss(pid):
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0); harmless if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def read_status_line(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def head_bytes(srv, path, declared, auth=None):
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{srv.port}", "Content-Type: application/octet-stream",
             f"Content-Length: {declared}", f"Date: {rawsign.http_date()}"]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def bad_auth(srv, path):
    return rawsign.authorization(srv.ak, srv.secret + "x", "POST", path,
                                 {"Content-Type": "application/octet-stream", "Date": rawsign.http_date()})


@pytest.mark.parametrize("signature", ["unsigned", "bad-signature"])
def test_unauthenticated_request_is_answered_before_its_slow_body(s, signature):
    path = "/2016-08-15/services/nosvc/functions/nofn/invocations"
    auth = bad_auth(s, path) if signature == "bad-signature" else None
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        sock.sendall(head_bytes(s, path, 100 * MB, auth))
        sock.sendall(b"x" * 65536)
        started = time.monotonic()
        reply = read_status_line(sock, timeout=5)
    want = b"HTTP/1.1 400" if signature == "unsigned" else b"HTTP/1.1 403"
    assert reply.startswith(want), f"no prompt {want.decode()} within 5 s: {reply[:300]!r}"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("signature", ["unsigned", "bad-signature"])
def test_unauthenticated_huge_body_does_not_grow_memory(start_server, signature):
    srv = start_server()
    pid = srv.proc.pid
    path = "/2016-08-15/services/nosvc/functions/nofn/invocations"
    auth = bad_auth(srv, path) if signature == "bad-signature" else None
    reset_peak_rss(pid)
    peak_before = proc_status(pid, "VmHWM")
    declared = 100 * MB
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)

    def pump():
        chunk = b"y" * MB
        try:
            sock.sendall(head_bytes(srv, path, declared, auth))
            for _ in range(declared // MB):
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed: what we want

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    reply = read_status_line(sock, timeout=30)
    sender.join(timeout=60)
    sock.close()
    assert not sender.is_alive()
    if reply:
        assert reply.startswith(b"HTTP/1.1 4"), reply[:200]
    grown = proc_status(pid, "VmHWM") - peak_before
    assert grown < 30 * MB, f"peak RSS grew by {grown / MB:.1f} MiB for an unauthenticated 100 MiB body"
    assert_ok(srv.raw.get("/services"))


# --- 5. HTTP triggers do not hand the caller's credentials to the function -----------------------------------

ECHO_HEADERS = py_zip('''
    import json
    def handler(environ, start_response):
        headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(headers).encode()]
''')

# A custom runtime gets the request's headers as they came (the Python shim passes fewer on): this one
# answers every request with them.
ECHO_HEADERS_CUSTOM = code_zip({"bootstrap": ("""#!/usr/bin/python3 -u
import http.server, json, os

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("FC_CUSTOM_LISTEN_PORT", "9000"))), H).serve_forever()
""", 0o755)})


@pytest.mark.parametrize("runtime", ["python3.10", "custom"])
def test_signed_http_trigger_call_does_not_forward_credentials(s, runtime):
    svc = new_service(s)
    fn = unique("echo")
    pkg = ECHO_HEADERS_CUSTOM if runtime == "custom" else ECHO_HEADERS
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": fn, "runtime": runtime, "handler": "index.handler", "code": {"zipFile": b64(pkg)}}))
    assert_ok(s.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": "web", "triggerType": "http",
        "triggerConfig": {"authType": "function", "methods": ["GET", "POST"]}}))
    path = f"/2016-08-15/proxy/{svc}/{fn}/echo"
    headers = rawsign.signed_headers(s.ak, s.secret, "GET", path, {
        "X-Client": "kept", "x-acs-security-token": "acs-sts-token", "x-fc-security-token": "fc-sts-token",
        "x-fc-trace-id": "trace-1"}, sign_query=[])
    r = requests.get(s.endpoint + path, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen.get("x-client") == "kept", seen
    for credential in ("authorization", "x-acs-security-token"):
        assert credential not in seen, f"the function saw {credential}: {seen}"
    # x-fc-security-token is the function's own (role) token slot of the runtime contract: the caller's must
    # not show up there or anywhere else.
    leaked = {k: v for k, v in seen.items()
              if v in (headers["Authorization"], "acs-sts-token", "fc-sts-token") or s.ak in v}
    assert not leaked, f"the function saw the caller's credentials: {leaked}"


def test_an_anonymous_trigger_passes_the_apps_own_authorization_and_the_host(s):
    """Only FC's signature schemes make a request signed: an app's own Bearer or Basic header on an anonymous
    trigger is its business and reaches it (it was refused as a bad signature), with the Host the client
    used as X-Forwarded-Host (the instance's own Host is its loopback)."""
    svc = new_service(s)
    fn = unique("echo")
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": fn, "runtime": "custom", "handler": "index.handler", "code": {"zipFile": b64(ECHO_HEADERS_CUSTOM)}}))
    assert_ok(s.raw.post(f"/services/{svc}/functions/{fn}/triggers", json={
        "triggerName": "web", "triggerType": "http", "triggerConfig": {"authType": "anonymous", "methods": ["GET"]}}))
    for auth in ("Bearer app-token-123", "Basic dXNlcjpwYXNz"):
        r = requests.get(f"{s.endpoint}/2016-08-15/proxy/{svc}/{fn}/me", headers={"Authorization": auth}, timeout=60)
        assert r.status_code == 200, r.text
        seen = r.json()
        assert seen.get("authorization") == auth, seen
        assert seen.get("x-forwarded-host") == s.endpoint_hostport, seen
    # A malformed FC signature is still a (failed) signature, whatever the case of its scheme.
    for auth in ("FC nope", "fc LTAIx:c2ln", "ACS nope"):
        r = requests.get(f"{s.endpoint}/2016-08-15/proxy/{svc}/{fn}/me", headers={"Authorization": auth}, timeout=60)
        assert r.status_code in (400, 401, 403), (auth, r.text)


# --- 6. Range bounds beyond u64 and past the end -------------------------------------------------------------

@pytest.fixture(scope="module")
def code(s):
    svc = new_service(s)
    fn = unique("fn")
    pkg = py_zip("def handler(event, context):\n    return event\n", **{"pad.txt": "x" * 300})
    assert_ok(s.raw.post(f"/services/{svc}/functions", json={
        "functionName": fn, "runtime": "python3.10", "handler": "index.handler", "code": {"zipFile": b64(pkg)}}))
    url = assert_ok(s.raw.get(f"/services/{svc}/functions/{fn}/code"))["url"]
    return url, pkg


@pytest.mark.parametrize("first,last", [(0, U64_MAX), (5, U64_MAX), (0, 10 ** 30), (7, U64_MAX - 1)])
def test_range_end_past_the_object_is_clamped(code, first, last):
    url, pkg = code
    r = requests.get(url, headers={"Range": f"bytes={first}-{last}"}, timeout=30)
    assert r.status_code == 206, r.text
    assert r.content == pkg[first:]
    assert r.headers["Content-Range"] == f"bytes {first}-{len(pkg) - 1}/{len(pkg)}"


@pytest.mark.parametrize("spec", ["bytes={n}-18446744073709551615", "bytes=18446744073709551615-",
                                  "bytes=18446744073709551615-18446744073709551615", "bytes=1000000000000000000000-"])
def test_range_starting_past_the_object_is_416(code, spec):
    url, pkg = code
    r = requests.get(url, headers={"Range": spec.format(n=len(pkg))}, timeout=30)
    assert_fc_error(r, 416, "InvalidRange")


def test_suffix_range_longer_than_the_object_is_the_object(code):
    url, pkg = code
    for n in (U64_MAX, 10 ** 30):
        r = requests.get(url, headers={"Range": f"bytes=-{n}"}, timeout=30)
        assert r.status_code == 206, r.text
        assert r.content == pkg
