"""The web console (issue 12): pages served from the binary, sign-in with an AccessKey pair answered by an
HttpOnly SameSite=Strict session cookie, the FC API reached with that cookie plus the CSRF header, the same
authorization as signed requests, expiry, sign-out, disabled keys, every node of a cluster accepting the
session; and, in a real headless chromium, signing in, deploying a zip, invoking, the log tail and a chart."""

import json
import time

import pytest
import requests

from browser import chrome, screenshot
from conftest import require_external
from helpers import unique
from invoke_helpers import (create_alias, http_trigger, invoke, new_function, new_service, publish, py_zip,
                            update_code, wait_until)

pytestmark = pytest.mark.timeout(180)

V = "/2021-04-06"

HELLO = py_zip('''
    def handler(event, context):
        print("hello from the console: " + event.decode(), flush=True)
        return "echo:" + event.decode()
''')


class Console:
    """A browser-less console client: the session cookie in a requests.Session, the CSRF value kept aside."""

    def __init__(self, srv):
        self.srv = srv
        self.http = requests.Session()
        self.csrf = None
        self.signed = None

    def sign_in(self, ak=None, secret=None, **kw):
        r = self.http.post(f"{self.srv.endpoint}/console/api/session",
                           json={"accessKeyId": ak or self.srv.ak, "accessKeySecret": secret or self.srv.secret},
                           timeout=10, **kw)
        if r.status_code == 200:
            self.signed = r.json()
            self.csrf = self.signed["csrf"]
        return r

    def call(self, method, path, csrf=True, **kw):
        # A refused request's body is never read, so openfc does not keep that connection: no reuse, no race.
        headers = {"Connection": "close", **kw.pop("headers", {})}
        if csrf is True and self.csrf:
            headers["X-Openfc-Csrf"] = self.csrf
        elif isinstance(csrf, str):
            headers["X-Openfc-Csrf"] = csrf
        return self.http.request(method, f"{self.srv.endpoint}{path}", headers=headers, timeout=30, **kw)


def fc_error(r, status, code, fragment=""):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["ErrorCode"] == code and fragment in body["ErrorMessage"], body
    assert r.headers.get("x-fc-request-id"), r.headers


def cookie_header(r):
    return r.headers.get("set-cookie", "")


def new_key(srv, tmp_path, policy=None):
    args = ["create"]
    if policy is not None:
        path = tmp_path / f"{unique('policy')}.json"
        path.write_text(json.dumps(policy))
        args += ["--policy", str(path)]
    out = json.loads(srv.cli("keys", *args).stdout)
    return out["accessKeyId"], out["accessKeySecret"]


# --- plain HTTP ---------------------------------------------------------------------------------------------

def test_pages_are_served_from_the_binary_with_a_strict_policy(server):
    r = requests.get(f"{server.endpoint}/console", allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["location"] == "/console/", r.headers
    r = requests.get(f"{server.endpoint}/console/", timeout=10)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<script type="module" src="/console/js/app.js">' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    for asset in ("js/app.js", "js/api.js", "js/zip.js", "js/chart.js", "style.css"):
        a = requests.get(f"{server.endpoint}/console/{asset}", timeout=10)
        assert a.status_code == 200 and a.text, asset
        again = requests.get(f"{server.endpoint}/console/{asset}", headers={"If-None-Match": a.headers["etag"]}, timeout=10)
        assert again.status_code == 304, asset
    # Nothing the pages load comes from elsewhere.
    assert "http://" not in requests.get(f"{server.endpoint}/console/js/app.js", timeout=10).text
    fc_error(requests.get(f"{server.endpoint}/console/nope.js", timeout=10), 400, "PathNotSupported")


def test_sign_in_answers_a_strict_cookie_and_refuses_wrong_secrets(server):
    c = Console(server)
    fc_error(c.sign_in(secret="wrong" + server.secret), 403, "InvalidAccessKeyID", "wrong")
    fc_error(c.sign_in(ak="LTAInosuchkey"), 403, "InvalidAccessKeyID")
    # A form post (what another site could send) is not a sign-in.
    r = requests.post(f"{server.endpoint}/console/api/session",
                      data={"accessKeyId": server.ak, "accessKeySecret": server.secret}, timeout=10)
    fc_error(r, 400, "InvalidArgument", "JSON")
    r = c.sign_in()
    assert r.status_code == 200, r.text
    cookie = cookie_header(r)
    for attr in ("openfc_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"):
        assert attr in cookie, cookie
    assert "Secure" not in cookie, "plain HTTP: a Secure cookie would never come back"
    assert server.secret not in cookie and server.secret not in r.text
    assert r.json()["accountId"] == server.account_id and r.json()["accessKeyId"] == server.ak
    tls = Console(server).sign_in(headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in cookie_header(tls), cookie_header(tls)
    # After a reload the page asks who it is and gets the same CSRF value.
    s = c.call("GET", "/console/api/session")
    assert s.status_code == 200 and s.json()["csrf"] == c.csrf


def test_the_api_takes_the_session_and_every_change_needs_the_csrf_header(server):
    c = Console(server)
    assert c.sign_in().status_code == 200
    listed = c.call("GET", f"{V}/services?limit=5")
    assert listed.status_code == 200 and "services" in listed.json(), listed.text
    name = unique("csvc")
    body = {"serviceName": name}
    fc_error(c.call("POST", f"{V}/services", csrf=False, json=body), 403, "AccessDenied", "X-Openfc-Csrf")
    fc_error(c.call("POST", f"{V}/services", csrf="A" * 43, json=body), 403, "AccessDenied", "X-Openfc-Csrf")
    other = Console(server)
    other.sign_in()
    fc_error(c.call("POST", f"{V}/services", csrf=other.csrf, json=body), 403, "AccessDenied", "X-Openfc-Csrf")
    assert server.raw21.get(f"/services/{name}").status_code == 404, "refused requests changed nothing"
    # Another site's page: its Origin is not ours.
    fc_error(c.call("POST", f"{V}/services", json=body, headers={"Origin": "https://evil.example"}), 403, "AccessDenied", "Origin")
    r = c.call("POST", f"{V}/services", json=body, headers={"Origin": server.endpoint})
    assert r.status_code == 200, r.text
    assert server.raw21.get(f"/services/{name}").status_code == 200
    # A tampered cookie is no session.
    forged = requests.get(f"{server.endpoint}{V}/services",
                          cookies={"openfc_session": c.http.cookies["openfc_session"][:-2] + "AA"}, timeout=10)
    fc_error(forged, 403, "AccessDenied", "not valid")
    assert c.call("DELETE", f"{V}/services/{name}").status_code == 204


def test_sign_out_needs_the_csrf_header_and_clears_the_cookie(server):
    c = Console(server)
    c.sign_in()
    fc_error(c.call("DELETE", "/console/api/session", csrf=False), 403, "AccessDenied", "X-Openfc-Csrf")
    r = c.call("DELETE", "/console/api/session")
    assert r.status_code == 200 and "Max-Age=0" in cookie_header(r), cookie_header(r)
    assert "openfc_session" not in c.http.cookies
    # Without the cookie the request is an unsigned API call.
    fc_error(c.call("GET", f"{V}/services"), 400, "MissingRequiredHeader")


def test_a_session_expires(start_server):
    srv = start_server(args=["--console-session-ttl", "2"])
    c = Console(srv)
    r = c.sign_in()
    assert "Max-Age=2" in cookie_header(r)
    assert c.call("GET", f"{V}/services").status_code == 200
    time.sleep(2.5)
    # The browser would have dropped it; a client that keeps sending it is refused all the same.
    stale = requests.get(f"{srv.endpoint}{V}/services", cookies={"openfc_session": r.cookies.get("openfc_session")}, timeout=10)
    fc_error(stale, 403, "AccessDenied", "expired")
    fc_error(requests.get(f"{srv.endpoint}/console/api/session", cookies={"openfc_session": r.cookies.get("openfc_session")},
                          timeout=10), 403, "AccessDenied", "expired")


def test_a_disabled_keys_session_is_refused(server, tmp_path):
    ak, secret = new_key(server, tmp_path)
    c = Console(server)
    assert c.sign_in(ak, secret).status_code == 200
    assert c.call("GET", f"{V}/services").status_code == 200
    server.cli("keys", "disable", ak)
    wait_until(lambda: c.call("GET", f"{V}/services").status_code == 403, 5, what="the session refused")
    fc_error(c.call("GET", f"{V}/services"), 403, "AccessDenied", "disabled")
    fc_error(Console(server).sign_in(ak, secret), 403, "AccessDenied", "disabled")


def test_a_policy_restricted_session_is_authorized_like_the_api(server, tmp_path):
    mine, theirs = new_service(server, "cpol"), new_service(server, "cpol")
    fn = new_function(server, mine, HELLO)
    policy = {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["fc:List*", "fc:GetService", "fc:GetFunction"],
         "Resource": [f"acs:fc:*:*:services/{mine}", f"acs:fc:*:*:services/{mine}/*"]},
        {"Effect": "Allow", "Action": "fc:ListServices", "Resource": "acs:fc:*:*:services/*"},
    ]}
    ak, secret = new_key(server, tmp_path, policy)
    c = Console(server)
    assert c.sign_in(ak, secret).status_code == 200
    assert c.call("GET", f"{V}/services/{mine}/functions/{fn}").status_code == 200
    assert c.call("GET", f"{V}/services?prefix={mine}").json()["services"][0]["serviceName"] == mine
    fc_error(c.call("GET", f"{V}/services/{theirs}"), 403, "AccessDenied", "'fc:GetService'")
    fc_error(c.call("POST", f"{V}/services/{mine}/functions/{fn}/invocations", data=b"x"), 403, "AccessDenied",
             "'fc:InvokeFunction'")
    fc_error(c.call("DELETE", f"{V}/services/{mine}/functions/{fn}"), 403, "AccessDenied", "'fc:DeleteFunction'")
    assert server.raw21.get(f"/services/{mine}/functions/{fn}").status_code == 200


def test_charts_count_this_nodes_invocations_for_whoever_may_see_them(server, tmp_path):
    svc = new_service(server, "cchart")
    fn = new_function(server, svc, HELLO)
    for i in range(3):
        invoke(server, svc, fn, f"n{i}".encode())
    c = Console(server)
    c.sign_in()
    data = c.call("GET", f"/console/api/charts?service={svc}&function={fn}").json()
    assert data["bucketSeconds"] == 10 and data["node"]
    [series] = [f for f in data["functions"] if f["service"] == svc and f["function"] == fn]
    assert sum(p[1] for p in series["points"]) == 3 and sum(p[2] for p in series["points"]) == 0, series
    # Instance counts are sampled each second.
    wait_until(lambda: c.call("GET", "/console/api/charts").json()["instances"][-1][1] >= 1, 5, what="an instance alive")
    assert any(data["coldStartPhases"].values()), data["coldStartPhases"]
    # A key that may not read the function does not see its series.
    deny = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "fc:*", "Resource": "acs:fc:*:*:*"},
                                          {"Effect": "Deny", "Action": "fc:GetFunction", "Resource": f"acs:fc:*:*:services/{svc}/functions/*"}]}
    ak, secret = new_key(server, tmp_path, deny)
    other = Console(server)
    other.sign_in(ak, secret)
    data = other.call("GET", "/console/api/charts").json()
    assert not [f for f in data["functions"] if f["service"] == svc], data["functions"]
    fc_error(requests.get(f"{server.endpoint}/console/api/charts", timeout=10), 403, "AccessDenied", "not signed in")


def test_a_session_from_one_node_works_on_another(server_factory, tmp_path_factory):
    require_external()
    from test_cluster import join
    a = server_factory.start("postgres", name="console-a")
    b = join(a, tmp_path_factory.mktemp("console-b"), "console-b")
    try:
        c = Console(a)
        assert c.sign_in().status_code == 200
        name = unique("cnode")
        r = requests.post(f"{b.endpoint}{V}/services", json={"serviceName": name}, headers={"X-Openfc-Csrf": c.csrf},
                          cookies={"openfc_session": c.http.cookies["openfc_session"]}, timeout=10)
        assert r.status_code == 200, r.text
        assert a.raw21.get(f"/services/{name}").status_code == 200
    finally:
        b.close()
        a.close()


# --- the browser ----------------------------------------------------------------------------------------------

def test_in_a_browser_sign_in_deploy_invoke_and_watch(sqlite_server, tmp_path):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    srv = sqlite_server
    svc = new_service(srv, "cbrowser")
    base = new_function(srv, svc, HELLO, name="base")
    v1 = publish(srv, svc)
    update_code(srv, svc, base, py_zip("def handler(event, context):\n    return 'v2'\n"))
    v2 = publish(srv, svc)
    create_alias(srv, svc, "prod", v1, weights={str(v2): 0.25})
    http_trigger(srv, svc, base, name="web-in")
    pkg = tmp_path / "code.zip"
    pkg.write_bytes(HELLO)
    folder = tmp_path / "folder"
    (folder / "lib").mkdir(parents=True)
    (folder / "index.py").write_text("import os, time\nfrom lib.greet import greet\n\ndef handler(event, context):\n"
                                     "    if event == b'slow':\n        time.sleep(20)\n"
                                     "    print('folder ' + greet() + ' ' + os.environ.get('STAGE', '-'), flush=True)\n"
                                     "    return greet()\n")
    (folder / "lib" / "__init__.py").write_text("")
    (folder / "lib" / "greet.py").write_text("def greet():\n    return 'hi from a folder'\n")
    d = chrome()
    # Views re-render when data arrives: an element found a moment ago may be replaced, so look again.
    wait = WebDriverWait(d, 20, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def el(css):
        return wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def click(css):
        def attempt(_):
            e = d.find_element(By.CSS_SELECTOR, css)
            if not (e.is_displayed() and e.is_enabled()):
                return False
            e.click()
            return True
        wait.until(attempt)

    def text_in(css, fragment):
        def found(_):
            text = d.find_element(By.CSS_SELECTOR, css).text
            return text if fragment in text else False
        return wait.until(found)

    try:
        d.get(f"{srv.endpoint}/console")
        el("#ak-id").send_keys(srv.ak)
        el("#ak-secret").send_keys("wrong")
        click("#sign-in")
        assert "InvalidAccessKeyID" in text_in("#sign-in-error", "wrong")
        screenshot(d, "01-sign-in-refused")
        el("#ak-secret").clear()
        el("#ak-secret").send_keys(srv.secret)
        click("#sign-in")
        text_in("#who-text", srv.ak)
        # The secret is nowhere the page's scripts could read it back.
        assert "openfc_session" not in d.execute_script("return document.cookie")
        assert srv.secret not in d.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        el("#svc-prefix").send_keys(svc)
        click("form[role=search] button")
        wait.until(lambda _: svc in d.execute_script("return location.hash"))
        click(f"a[href='#/s/{svc}']")
        text_in("h1", svc)
        assert f"{v2}: 25%" in text_in("#aliases", "25%")
        assert "web-in" in text_in("#triggers", "web-in") and "http" in el("#triggers").text
        text_in("#versions", "Created")
        screenshot(d, "02-service")

        # Deploy a zip file.
        click("#new-function")
        el("#fn-name").send_keys("hello")
        el("#fn-zip").send_keys(str(pkg))
        click("#save-function")
        text_in("h1", "hello")
        checksum = el("#code-checksum").text
        assert checksum == srv.raw21.get(f"/services/{svc}/functions/hello").json()["codeChecksum"]

        # Invoke it: result, duration, memory and the log tail.
        payload = el("#invoke-payload")
        payload.clear()
        payload.send_keys("from the browser")
        click("#invoke")
        assert text_in("#invoke-body", "echo:") == "echo:from the browser"
        assert "hello from the console: from the browser" in el("#invoke-log").text
        assert "ms" in el("#invoke-duration").text and "MB" in el("#invoke-memory").text
        screenshot(d, "03-invoked")
        # The chart counts it (this node's series, refreshed live).
        wait.until(lambda _: int(d.find_element(By.ID, "fn-chart").get_attribute("data-total") or 0) >= 1)
        assert d.find_elements(By.CSS_SELECTOR, "#fn-chart svg path.series")
        click("#logs-refresh")
        text_in("#logs", "hello from the console")
        click("#download-code")
        link = el("#download-link").get_attribute("href")
        assert requests.get(link, timeout=10).content == HELLO
        screenshot(d, "04-chart-and-logs")

        # Replace the code with a folder, zipped by the page.
        click("#edit-function")
        el("#fn-dir").send_keys(str(folder))
        el("#fn-timeout").clear()
        el("#fn-timeout").send_keys("60")
        click("#save-function")
        wait.until(lambda _: d.execute_script("return location.hash").endswith("/f/hello"))
        click("#invoke")
        assert text_in("#invoke-body", "hi from a folder") == "hi from a folder"
        assert "folder hi from a folder -" in el("#invoke-log").text

        # An environment variable, saved and seen by the next invocation.
        click("#env-add")
        el(".env-row:last-child .env-key").send_keys("STAGE")
        el(".env-row:last-child .env-value").send_keys("console")
        click("#save-env")
        click("#logs-follow")
        wait.until(lambda _: srv.raw21.get(f"/services/{svc}/functions/hello").json()["environmentVariables"] == {"STAGE": "console"})
        click("#invoke")
        text_in("#invoke-log", "folder hi from a folder console")
        text_in("#logs", "folder hi from a folder console")  # followed live: no refresh asked

        # A command in the instance that ran it (InstanceExec over a WebSocket with the session cookie).
        click("#instances-refresh")
        click(".exec-open")
        command = el("#exec-command")
        command.clear()
        command.send_keys("echo hi-from-exec; read line; echo got:$line; ls /code")
        click("#exec-run")
        wait.until(lambda _: not d.find_element(By.ID, "exec-stdin").get_attribute("disabled"))
        el("#exec-stdin").send_keys("typed\n")
        assert "exit code 0" in text_in("#exec-status", "exit code")
        output = el("#exec-output").text
        assert "hi-from-exec" in output and "got:typed" in output and "index.py" in output, output
        screenshot(d, "05-exec")

        # Asynchronously: it shows among the async invocations.
        click("#invoke-async")
        click("#invoke")
        text_in("#invoke-status", "202")
        wait.until(lambda _: (click("#async-refresh"), "Succeeded" in d.find_element(By.ID, "async-list").text)[1])
        # A slow one: stopped, then re-driven (a new invocation of the same event).
        payload = el("#invoke-payload")
        payload.clear()
        payload.send_keys("slow")
        click("#invoke")
        wait.until(lambda _: (click("#async-refresh"), d.find_elements(By.CSS_SELECTOR, "#async-list button[aria-label^='Stop']"))[1])
        click("#async-list button[aria-label^='Stop']")
        click("#async-list button[aria-label^='Re-drive']")
        wait.until(lambda _: (click("#async-refresh"), len(d.find_elements(By.CSS_SELECTOR, "#async-list tbody tr")) == 3)[1])
        assert "Stopped" in el("#async-list").text
        screenshot(d, "06-async")

        # The activity page, in a phone-sized window.
        d.set_window_size(390, 844)
        d.get(f"{srv.endpoint}/console/#/activity")
        text_in("#activity-node", "This node's view")
        wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, "#activity-functions svg"))
        assert d.execute_script("return document.documentElement.scrollWidth") <= 400, "no sideways scrolling"
        screenshot(d, "07-activity-narrow")
        d.set_window_size(1280, 900)

        # Delete with confirmation, then sign out.
        d.get(f"{srv.endpoint}/console/#/s/{svc}/f/hello")
        click("#delete-function")
        click("#confirm-ok")
        text_in("h1", svc)
        assert srv.raw21.get(f"/services/{svc}/functions/hello").status_code == 404
        click("#sign-out")
        el("#ak-id")
        d.get(f"{srv.endpoint}/console/#/s/{svc}")
        el("#ak-id")
        screenshot(d, "08-signed-out")
    except Exception:
        screenshot(d, "failure")
        raise
    finally:
        d.quit()
