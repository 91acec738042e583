"""Durable asynchronous invocations (issue: events that really happen): an Async request is committed before its
202 and runs even across a kill -9; the function's async config acts — retries with back-off, onSuccess and
onFailure destinations receiving FC's destination record, events older than maxAsyncEventAgeInSeconds expire,
throttled events wait for capacity. Evidence is what the functions write to their logs, which survive restarts.

One server per backend, with short retry back-off and lease so the suite stays quick."""

import json
import threading
import time

import pytest

from helpers import unique
from invoke_helpers import invoke, invoke_ok, new_function, new_service, py_zip, wait_until

ARGS = ["--async-retry-base-ms", "50", "--async-lease", "2", "--queue-timeout-ms", "300"]

# Prints a marker line per run, then answers per its payload: "fail" raises, "sleep:N" sleeps N seconds.
WORKER = py_zip('''
    import time

    def handler(event, context):
        text = event.decode()
        print("RAN " + text + " " + context.request_id, flush=True)
        if text.startswith("fail"):
            raise Exception("failing on purpose: " + text)
        if text.startswith("sleep:"):
            time.sleep(float(text.split(":")[1]))
        return "done " + text
''')

# A destination: prints the record it receives on one line.
SINK = py_zip('''
    def handler(event, context):
        print("RECORD " + event.decode(), flush=True)
        return "ok"
''')


@pytest.fixture(scope="module")
def srv(server_factory, backend):
    s = server_factory.start(backend, args=ARGS)
    yield s
    s.close()


def logs(srv, svc, fn):
    r = srv.raw.get(f"/services/{svc}/functions/{fn}/logs", params={"limit": "10000"})
    assert r.status_code == 200, r.text
    return r.json()["lines"]


def ran(srv, svc, fn):
    """The payloads each run of WORKER printed, in order."""
    return [l.split("RAN ", 1)[1].split(" ")[0] for l in logs(srv, svc, fn) if "RAN " in l]


def records(srv, svc, fn):
    return [json.loads(l.split("RECORD ", 1)[1]) for l in logs(srv, svc, fn) if "RECORD " in l]


def accepted(srv, svc, fn, payload, **kw):
    inv = invoke(srv, svc, fn, payload, async_=True, **kw)
    assert inv.status == 202, inv.describe()
    assert inv.request_id, inv.describe()
    assert inv.body == b"", inv.describe()
    return inv.request_id


def put_async_config(srv, svc, fn, cfg, qualifier="LATEST"):
    r = srv.raw.put(f"/services/{svc}.{qualifier}/functions/{fn}/async-invoke-config", json=cfg)
    assert r.status_code == 200, r.text
    return r.json()


def arn(srv, svc, fn):
    return f"acs:fc:cn-hangzhou:{srv.account_id}:services/{svc}.LATEST/functions/{fn}"


def test_async_invocation_runs_once_with_its_request_id(srv):
    svc = new_service(srv, "asy")
    fn = new_function(srv, svc, WORKER)
    rid = accepted(srv, svc, fn, b"hello")
    wait_until(lambda: ran(srv, svc, fn) == ["hello"], 20, what="the async invocation ran")
    line = next(l for l in logs(srv, svc, fn) if "RAN hello" in l)
    assert rid in line, (rid, line)
    time.sleep(0.5)
    assert ran(srv, svc, fn) == ["hello"], "ran more than once"


def test_failures_are_retried_then_the_failure_destination_gets_fcs_record(srv):
    svc = new_service(srv, "asyf")
    fn = new_function(srv, svc, WORKER)
    sink = new_function(srv, svc, SINK)
    put_async_config(srv, svc, fn, {"maxAsyncRetryAttempts": 2,
                                    "destinationConfig": {"onFailure": {"destination": arn(srv, svc, sink)}}})
    rid = accepted(srv, svc, fn, b"fail-1")
    wait_until(lambda: records(srv, svc, sink), 30, what="the failure record reached the destination")
    assert ran(srv, svc, fn) == ["fail-1"] * 3, "one attempt and two retries"
    (rec,) = records(srv, svc, sink)
    ctx = rec["requestContext"]
    assert ctx["requestId"] == rid
    assert ctx["condition"] == "UnhandledInvocationError" or ctx["condition"] == "HandledInvocationError", rec
    assert ctx["approximateInvokeCount"] == 3, rec
    assert ctx["functionArn"].endswith(f":services/{svc}.LATEST/functions/{fn}"), rec
    assert rec["requestPayload"] == "fail-1"
    assert rec["responseContext"]["functionError"] in ("HandledInvocationError", "UnhandledInvocationError"), rec
    assert "failing on purpose" in rec["responsePayload"], rec
    assert isinstance(rec["timestamp"], int) and rec["timestamp"] > 1_600_000_000_000, rec


def test_success_destination_gets_the_response(srv):
    svc = new_service(srv, "asys")
    fn = new_function(srv, svc, WORKER)
    sink = new_function(srv, svc, SINK)
    put_async_config(srv, svc, fn, {"destinationConfig": {"onSuccess": {"destination": arn(srv, svc, sink)},
                                                          "onFailure": {"destination": arn(srv, svc, sink)}}})
    rid = accepted(srv, svc, fn, b"fine")
    wait_until(lambda: records(srv, svc, sink), 30, what="the success record reached the destination")
    (rec,) = records(srv, svc, sink)
    assert rec["requestContext"]["condition"] == "Success", rec
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["responsePayload"] == "done fine", rec
    assert rec["responseContext"] == {"statusCode": 200, "functionError": ""}, rec


def test_other_destination_kinds_are_refused_at_put_time(srv):
    svc = new_service(srv, "asyd")
    fn = new_function(srv, svc, WORKER)
    for dest in ["acs:mns:cn-hangzhou:123:/queues/q/messages", "acs:eventbridge:cn-hangzhou:123:eventbus/default",
                 "acs:fc:cn-hangzhou:999999:services/s/functions/f"]:
        r = srv.raw.put(f"/services/{svc}.LATEST/functions/{fn}/async-invoke-config",
                        json={"destinationConfig": {"onFailure": {"destination": dest}}})
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["ErrorCode"] == "InvalidArgument" and "openfc delivers to functions only" in body["ErrorMessage"], body


def occupy(srv, svc, fn, seconds):
    """A synchronous invocation holding the function's only instance for `seconds` (in the background)."""
    t = threading.Thread(target=invoke, args=(srv, svc, fn, f"sleep:{seconds}".encode()), daemon=True)
    t.start()
    time.sleep(0.5)
    return t


def test_throttled_events_wait_for_capacity_then_run(srv):
    svc = new_service(srv, "asyt")
    fn = new_function(srv, svc, WORKER)
    r = srv.raw.put(f"/services/{svc}.LATEST/functions/{fn}/on-demand-config", json={"maximumInstanceCount": 1})
    assert r.status_code == 200, r.text
    busy = occupy(srv, svc, fn, 3)
    accepted(srv, svc, fn, b"after-busy")
    time.sleep(1)
    assert "after-busy" not in ran(srv, svc, fn), "it ran while the only instance was busy"
    busy.join(10)
    wait_until(lambda: "after-busy" in ran(srv, svc, fn), 20, what="the throttled event ran once capacity freed")


def test_events_older_than_the_max_age_expire_to_the_failure_destination(srv):
    svc = new_service(srv, "asye")
    fn = new_function(srv, svc, WORKER)
    sink = new_function(srv, svc, SINK)
    r = srv.raw.put(f"/services/{svc}.LATEST/functions/{fn}/on-demand-config", json={"maximumInstanceCount": 1})
    assert r.status_code == 200, r.text
    put_async_config(srv, svc, fn, {"maxAsyncEventAgeInSeconds": 1,
                                    "destinationConfig": {"onFailure": {"destination": arn(srv, svc, sink)}}})
    busy = occupy(srv, svc, fn, 4)
    rid = accepted(srv, svc, fn, b"too-late")
    wait_until(lambda: records(srv, svc, sink), 30, what="the expiry record reached the destination")
    busy.join(10)
    (rec,) = records(srv, svc, sink)
    assert rec["requestContext"]["condition"] == "EventExpired", rec
    assert rec["requestContext"]["requestId"] == rid
    time.sleep(0.5)
    assert "too-late" not in ran(srv, svc, fn), "an expired event ran"


def test_a_kill_9_after_the_202s_loses_nothing(srv):
    """200 async invocations, openfc killed with SIGKILL right after the last 202, restarted: every accepted
    one runs at least once (those claimed by the dead process run again when their lease ends)."""
    svc = new_service(srv, "asyk")
    fn = new_function(srv, svc, WORKER)
    ids = [f"k{i}" for i in range(200)]
    errors = []

    def send(chunk):
        for p in chunk:
            inv = invoke(srv, svc, fn, f"{p}".encode(), async_=True)
            if inv.status != 202:
                errors.append(inv.describe())

    threads = [threading.Thread(target=send, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    srv.kill()
    srv.start()
    wait_until(lambda: set(ids) <= set(ran(srv, svc, fn)), 90, interval=0.5,
               what="every accepted invocation ran after the restart")
