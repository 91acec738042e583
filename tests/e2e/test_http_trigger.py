"""HTTP triggers (spec §5.7): requests to /{v}/proxy/{svc}[.q]/{fn}/{path} reach the function as HTTP requests —
Python WSGI, Node.js (request, response, context) and custom runtimes — with the trigger's authType and methods
enforced, and the function's own response (status, headers, body) passed back."""

import base64

import pytest
import requests

from helpers import assert_fc_error
from invoke_helpers import custom_zip, http_trigger, new_function, new_service, node_zip, py_zip

WSGI = py_zip('''
    def handler(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("wsgi boom")
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Custom", "yes"), ("X-Fc-Forged", "no")])
        return [("%s %s ?%s ua=%s body=%s" % (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"],
                 environ.get("HTTP_X_CLIENT", ""), body.decode())).encode()]
''')

NODE = node_zip('''
    exports.handler = (req, resp, context) => {
      const chunks = [];
      req.on("data", c => chunks.push(c));
      req.on("end", () => {
        resp.setStatusCode(202);
        resp.setHeader("x-node", context.function.name);
        resp.send(`${req.method} ${req.path} ${JSON.stringify(req.queries)} ${Buffer.concat(chunks)}`);
      });
    };
''')

# The helpers' custom runtime answers /invoke and /initialize, and 404 "unknown path <path>" to anything else,
# which shows the URI an HTTP-trigger request arrives with.
CUSTOM = custom_zip('''
    def invoke(headers, body):
        return 200, [], body
''')


@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "httpsvc")


def with_trigger(srv, svc, pkg, runtime, auth="anonymous", methods=("GET", "POST"), qualifier=None):
    fn = new_function(srv, svc, pkg, runtime=runtime)
    http_trigger(srv, svc, fn, methods, auth, qualifier)
    return fn


def url(srv, svc, fn, path="/", prefix="2016-08-15"):
    return f"{srv.endpoint}/{prefix}/proxy/{svc}/{fn}{path}"


@pytest.mark.parametrize("prefix", ["2016-08-15", "2021-04-06"])
def test_wsgi_round_trip(srv, svc, prefix):
    fn = with_trigger(srv, svc, WSGI, "python3.10")
    r = requests.post(url(srv, svc, fn, "/a/b?x=1&y=two", prefix), data=b"hello", headers={"X-Client": "t"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.text == "POST /a/b ?x=1&y=two ua=t body=hello"
    assert r.headers["X-Custom"] == "yes"
    assert "X-Fc-Forged" not in r.headers, "functions may not set x-fc-* headers"
    assert r.headers["X-Fc-Request-Id"]


def test_node_http_handler_round_trip(srv, svc):
    fn = with_trigger(srv, svc, NODE, "nodejs20")
    r = requests.post(url(srv, svc, fn, "/p?k=v&k=w"), data=b"body", timeout=30)
    assert r.status_code == 202, r.text
    assert r.text == 'POST /p {"k":["v","w"]} body'
    assert r.headers["x-node"] == fn


def test_custom_runtime_sees_the_full_uri(srv, svc):
    fn = with_trigger(srv, svc, CUSTOM, "custom")
    r = requests.post(url(srv, svc, fn, "/x?q=1"), data=b"payload", timeout=30)
    # The function's own 404 is its response, not an invocation error.
    assert r.status_code == 404, r.text
    assert "X-Fc-Error-Type" not in r.headers
    assert r.text == f"unknown path /2016-08-15/proxy/{svc}/{fn}/x?q=1"


def test_methods_outside_the_trigger_are_refused(srv, svc):
    fn = with_trigger(srv, svc, WSGI, "python3.10", methods=("GET",))
    assert requests.get(url(srv, svc, fn, "/ok"), timeout=30).status_code == 201
    assert_fc_error(requests.put(url(srv, svc, fn, "/no"), timeout=30), 405, "MethodNotAllowed")


def test_function_auth_needs_a_signature(srv, svc):
    fn = with_trigger(srv, svc, WSGI, "python3.10", auth="function")
    assert_fc_error(requests.get(url(srv, svc, fn, "/x"), timeout=30), 400, "MissingRequiredHeader")
    r = srv.fc2.do_http_request("GET", svc, fn, "/signed", params={"q": "1"})
    assert r.status_code == 201, r.text
    assert r.text.startswith("GET /signed ?q=1")
    bad = requests.get(url(srv, svc, fn, "/x"), headers={"Authorization": f"FC {srv.creds['accessKeyId']}:bogus",
                                                        "Date": "Mon, 02 Jan 2006 15:04:05 GMT"}, timeout=30)
    assert bad.status_code in (400, 403)


def test_missing_pieces_are_clear_errors(srv, svc):
    plain = new_function(srv, svc, WSGI, runtime="python3.10")
    assert_fc_error(requests.get(url(srv, svc, plain, "/"), timeout=30), 404, "TriggerNotFound")
    assert_fc_error(requests.get(url(srv, svc, "nosuchfn", "/"), timeout=30), 404, "FunctionNotFound")
    assert_fc_error(requests.get(url(srv, "nosuchsvc", "f", "/"), timeout=30), 404, "ServiceNotFound")


def test_function_errors_are_marked(srv, svc):
    fn = with_trigger(srv, svc, WSGI, "python3.10")
    r = requests.get(url(srv, svc, fn, "/boom"), timeout=30)
    assert r.headers.get("X-Fc-Error-Type") == "UnhandledInvocationError"
    assert "wsgi boom" in r.json()["errorMessage"]


def test_a_trigger_for_a_version_serves_that_version(srv, svc):
    fn = new_function(srv, svc, WSGI, runtime="python3.10")
    r = srv.raw.post(f"/services/{svc}/versions", json={})
    assert r.status_code == 200, r.text
    version = r.json()["versionId"]
    http_trigger(srv, svc, fn, ["GET"], qualifier=version, name="pinned")
    # LATEST moves on to code that fails; the version's trigger still runs the version's code.
    broken = py_zip('''
        def handler(environ, start_response):
            raise RuntimeError("LATEST is broken")
    ''')
    r = srv.raw.put(f"/services/{svc}/functions/{fn}", json={"code": {"zipFile": base64.b64encode(broken).decode()}})
    assert r.status_code == 200, r.text
    r = requests.get(f"{srv.endpoint}/2016-08-15/proxy/{svc}.{version}/{fn}/", timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers.get("X-Fc-Error-Type") is None
    # The trigger is the version's, not LATEST's.
    assert_fc_error(requests.get(url(srv, svc, fn, "/"), timeout=30), 404, "TriggerNotFound")


def test_a_latest_trigger_does_not_serve_a_version(srv, svc):
    fn = with_trigger(srv, svc, WSGI, "python3.10")
    # The trigger above serves LATEST; the versioned URL form has no trigger for qualifier 1.
    r = srv.raw.post(f"/services/{svc}/versions", json={})
    assert r.status_code == 200
    version = r.json()["versionId"]
    assert requests.get(url(srv, svc, fn, "/"), timeout=30).status_code == 201
    r = requests.get(f"{srv.endpoint}/2016-08-15/proxy/{svc}.{version}/{fn}/", timeout=30)
    assert_fc_error(r, 404, "TriggerNotFound")
