"""A request openfc refuses before reading its body (a bad signature here) leaves the body unread, so its
connection cannot carry another request: the answer says `Connection: close`, and a keep-alive client's next
request (on a new connection) succeeds. An accepted request keeps its connection."""

import requests

import rawsign


def test_a_refused_request_with_a_body_closes_its_connection(server_factory):
    s = server_factory.start("sqlite")
    try:
        session = requests.Session()
        path = "/2016-08-15/services"
        bad = rawsign.signed_headers(s.ak, "wrong-secret", "POST", path, {"Content-Type": "application/json"})
        r = session.post(s.endpoint + path, data=b'{"serviceName": "x"}' + b" " * 200_000, headers=bad, timeout=30)
        assert r.status_code == 403 and r.headers.get("Connection", "").lower() == "close", r.headers
        ok = rawsign.signed_headers(s.ak, s.secret, "GET", path)
        r = session.get(s.endpoint + path, headers=ok, timeout=30)
        assert r.status_code == 200 and r.headers.get("Connection", "").lower() != "close"
    finally:
        s.close()
