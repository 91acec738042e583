"""/metrics names every function of every account (issue 11): with `--metrics-token` it needs
`Authorization: Bearer TOKEN`; without one it is served to clients on this host only (loopback), and a client
from another address is refused. /health stays open (a load balancer's probe)."""

import random
import subprocess

import pytest
import requests

from invoke_helpers import invoke_ok, new_function, new_service, py_zip

ECHO = py_zip('''
    def handler(event, context):
        return "ok"
''')


def test_a_metrics_token_is_required_when_set(server_factory, backend):
    s = server_factory.start(backend, args=["--metrics-token", "scrape-me"])
    try:
        svc = new_service(s, "mtok")
        invoke_ok(s, svc, new_function(s, svc, ECHO))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me"}):
            r = requests.get(f"{s.endpoint}/metrics", headers=headers, timeout=10)
            assert r.status_code == 403 and r.json()["ErrorCode"] == "AccessDenied", (headers, r.text)
            assert svc not in r.text
        r = requests.get(f"{s.endpoint}/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=10)
        assert r.status_code == 200 and svc in r.text
        assert requests.get(f"{s.endpoint}/health", timeout=10).status_code == 200
    finally:
        s.close()


@pytest.fixture
def other_address():
    """An address of this host that is not loopback (added to lo for the test)."""
    addr = f"10.213.{random.randint(1, 254)}.{random.randint(1, 254)}"
    subprocess.run(["ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True)
    yield addr
    subprocess.run(["ip", "addr", "del", f"{addr}/32", "dev", "lo"], check=False)


def test_without_a_token_only_this_hosts_clients_read_metrics(server_factory, backend, other_address):
    s = server_factory.start(backend, config_via_env=True, env={"OPENFC_LISTEN": "0.0.0.0:{port}"})
    try:
        assert requests.get(f"http://127.0.0.1:{s.port}/metrics", timeout=10).status_code == 200
        r = requests.get(f"http://{other_address}:{s.port}/metrics", timeout=10)
        assert r.status_code == 403 and "--metrics-token" in r.json()["ErrorMessage"], r.text
        assert requests.get(f"http://{other_address}:{s.port}/health", timeout=10).status_code == 200
    finally:
        s.close()
