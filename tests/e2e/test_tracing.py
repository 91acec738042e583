"""A service's tracingConfig (Jaeger) reaches its functions as FC gives it: `context.tracing` with the collector
endpoint and a span context per invocation (openfc's: the request id as the 128-bit trace id, its last 64 bits
as the span, sampled); without tracingConfig the fields are empty (issue: FC semantics, tracing)."""

import json

import pytest

from invoke_helpers import invoke_ok, new_function, new_service, node_zip, py_zip

ENDPOINT = "http://tracing-analysis-dc-hz.aliyuncs.com/adapt_xxx/api/traces"

PY = py_zip('''
    import json
    def handler(event, context):
        t = context.tracing
        return json.dumps({"span": t.span_context, "endpoint": t.jaeger_endpoint, "baggage": t.span_baggages})
''')

NODE = node_zip('''
    exports.handler = (event, context, callback) => {
      const t = context.tracing;
      callback(null, JSON.stringify({span: t.openTracingSpanContext, endpoint: t.jaegerEndpoint}));
    };
''')


@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


def expected_span(request_id):
    trace = request_id.replace("-", "").lower()
    return f"{trace}:{trace[16:]}:0:1"


@pytest.mark.parametrize("pkg, runtime", [(PY, "python3.10"), (NODE, "nodejs18")], ids=["python", "nodejs"])
def test_a_traced_service_gives_its_functions_a_span_context(srv, pkg, runtime):
    svc = new_service(srv, "trc", tracingConfig={"type": "Jaeger", "params": {"endpoint": ENDPOINT}})
    fn = new_function(srv, svc, pkg, runtime=runtime)
    for _ in range(2):
        inv = invoke_ok(srv, svc, fn)
        got = json.loads(inv.body)
        assert got["endpoint"] == ENDPOINT, got
        assert got["span"] == expected_span(inv.request_id), (got, inv.request_id)


def test_tracing_follows_the_service_config(srv):
    svc = new_service(srv, "trn")
    fn = new_function(srv, svc, PY)
    untraced = json.loads(invoke_ok(srv, svc, fn).body)
    assert not untraced["span"] and not untraced["endpoint"] and untraced["baggage"] == {}, untraced
    r = srv.raw.put(f"/services/{svc}", json={"tracingConfig": {"type": "Jaeger", "params": {"endpoint": ENDPOINT}}})
    assert r.status_code == 200, r.text
    inv = invoke_ok(srv, svc, fn)
    assert json.loads(inv.body)["span"] == expected_span(inv.request_id)
    r = srv.raw.put(f"/services/{svc}", json={"tracingConfig": {}})
    assert r.status_code == 200, r.text
    assert not json.loads(invoke_ok(srv, svc, fn).body)["endpoint"]
