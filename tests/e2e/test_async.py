"""Durable asynchronous invocations (issue: events that really happen): an Async request is committed before its
202 and runs even across a kill -9; the function's async config acts — retries with back-off, onSuccess and
onFailure destinations receiving FC's destination record, events older than maxAsyncEventAgeInSeconds expire,
throttled events wait for capacity. Evidence is what the functions write to their logs, which survive restarts.

One server per backend, with short retry back-off and lease so the suite stays quick."""

import json
import threading
import time

import pytest

from invoke_helpers import function_logs, invoke, invoke_ok, new_function, new_service, py_zip, wait_until

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


def ran(srv, svc, fn):
    """The payloads each run of WORKER printed, in order."""
    return [l.split("RAN ", 1)[1].split(" ")[0] for l in function_logs(srv, svc, fn) if "RAN " in l]


def records(srv, svc, fn):
    return [json.loads(l.split("RECORD ", 1)[1]) for l in function_logs(srv, svc, fn) if "RECORD " in l]


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
    line = next(l for l in function_logs(srv, svc, fn) if "RAN hello" in l)
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


def one_instance(srv, svc, fn):
    """At most one instance of the function's LATEST (its on-demand config)."""
    r = srv.raw.put(f"/services/{svc}.LATEST/functions/{fn}/on-demand-config", json={"maximumInstanceCount": 1})
    assert r.status_code == 200, r.text


def occupy(srv, svc, fn, seconds):
    """A synchronous invocation holding the function's only instance for `seconds` (in the background)."""
    t = threading.Thread(target=invoke, args=(srv, svc, fn, f"sleep:{seconds}".encode()), daemon=True)
    t.start()
    time.sleep(0.5)
    return t


def test_throttled_events_wait_for_capacity_then_run(srv):
    svc = new_service(srv, "asyt")
    fn = new_function(srv, svc, WORKER)
    one_instance(srv, svc, fn)
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
    one_instance(srv, svc, fn)
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
    import requests
    svc = new_service(srv, "asyk")
    fn = new_function(srv, svc, WORKER)
    # One instance, held busy: the accepted events are still waiting (or claimed, not run) at the kill.
    one_instance(srv, svc, fn)
    occupy(srv, svc, fn, 30)
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
    pending = requests.get(f"{srv.endpoint}/health", timeout=10).json()["async"]["pending"]
    assert pending >= 150, f"most accepted events should still be pending at the kill: {pending}"
    assert not set(ids) & set(ran(srv, svc, fn)), "none should have run yet"
    srv.kill()
    srv.start()
    wait_until(lambda: set(ids) <= set(ran(srv, svc, fn)), 90, interval=0.5,
               what="every accepted invocation ran after the restart")


# --- stateful async invocations -------------------------------------------------------------------------------
def stateful(srv, svc, fn, inv_id=None, qualifier=None, method="GET", suffix="", params=None):
    path = f"/services/{svc}{'.' + qualifier if qualifier else ''}/functions/{fn}/stateful-async-invocations"
    if inv_id:
        path += f"/{inv_id}{suffix}"
    return srv.raw.request(method, path, params=params)


def named(srv, svc, fn, inv_id, payload):
    inv = invoke(srv, svc, fn, payload, async_=True, headers={"X-Fc-Stateful-Async-Invocation-Id": inv_id})
    assert inv.status == 202, inv.describe()


def status_of(srv, svc, fn, inv_id):
    r = stateful(srv, svc, fn, inv_id)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_named_invocation_is_read_back_and_its_id_is_unique(srv):
    svc = new_service(srv, "sti")
    fn = new_function(srv, svc, WORKER)
    named(srv, svc, fn, "job_1", b"named")
    got = wait_until(lambda: (lambda s: s if s["status"] == "Succeeded" else None)(status_of(srv, svc, fn, "job_1")), 20,
                     what="the named invocation succeeded")
    assert (got["invocationId"], got["serviceName"], got["functionName"], got["qualifier"]) == ("job_1", svc, fn, "LATEST")
    assert got["invocationPayload"] == "named" and got["returnPayload"] == "done named", got
    assert got["alreadyRetriedTimes"] == 0 and got["endTime"] >= got["startedTime"] > 0, got
    dup = invoke(srv, svc, fn, b"again", async_=True, headers={"X-Fc-Stateful-Async-Invocation-Id": "job_1"})
    assert dup.status == 409 and dup.json()["ErrorCode"] == "StatefulAsyncInvocationAlreadyExists", dup.describe()
    bad = invoke(srv, svc, fn, b"x", async_=True, headers={"X-Fc-Stateful-Async-Invocation-Id": "1-starts-with-a-digit"})
    assert bad.status == 400, bad.describe()
    missing = stateful(srv, svc, fn, "nope")
    assert missing.status_code == 404 and missing.json()["ErrorCode"] == "StatefulAsyncInvocationNotFound", missing.text


def test_list_filters_and_pages(srv):
    svc = new_service(srv, "stl")
    fn = new_function(srv, svc, WORKER)
    for i in range(5):
        named(srv, svc, fn, f"ok_{i}", f"ok{i}".encode())
        time.sleep(0.01)
    named(srv, svc, fn, "bad_0", b"fail-x")
    put_async_config(srv, svc, fn, {"maxAsyncRetryAttempts": 0})
    wait_until(lambda: status_of(srv, svc, fn, "bad_0")["status"] == "Failed" and
               all(status_of(srv, svc, fn, f"ok_{i}")["status"] == "Succeeded" for i in range(5)), 30, what="all finished")

    def ids(**params):
        r = stateful(srv, svc, fn, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        return [i["invocationId"] for i in body.get("invocations", [])], body.get("nextToken"), body

    assert ids(status="Failed")[0] == ["bad_0"]
    assert ids(invocationIdPrefix="ok_", sortOrderByTime="asc")[0] == [f"ok_{i}" for i in range(5)]
    assert ids(invocationIdPrefix="ok_", sortOrderByTime="desc")[0] == [f"ok_{i}" for i in reversed(range(5))]
    first, token, _ = ids(invocationIdPrefix="ok_", sortOrderByTime="asc", limit="2")
    assert first == ["ok_0", "ok_1"] and token
    second, token2, _ = ids(invocationIdPrefix="ok_", sortOrderByTime="asc", limit="2", nextToken=token)
    assert second == ["ok_2", "ok_3"] and token2
    third, token3, _ = ids(invocationIdPrefix="ok_", sortOrderByTime="asc", limit="2", nextToken=token2)
    assert third == ["ok_4"] and token3 is None
    _, _, body = ids(invocationIdPrefix="ok_0")
    assert "invocationPayload" not in body["invocations"][0]
    _, _, body = ids(invocationIdPrefix="ok_0", includePayload="true")
    assert body["invocations"][0]["invocationPayload"] == "ok0"
    future = int(time.time() * 1000) + 60_000
    assert ids(startedTimeBegin=str(future))[2] == {}, "no invocations key when nothing matches"
    assert len(ids(startedTimeEnd=str(future))[0]) == 6
    r = stateful(srv, svc, fn, params={"status": "Sleeping"})
    assert r.status_code == 400, r.text


def test_stop_cancels_a_running_invocation_and_redrive_runs_it_again(srv):
    svc = new_service(srv, "sts")
    fn = new_function(srv, svc, WORKER, timeout=30)
    named(srv, svc, fn, "long_1", b"sleep:20")
    wait_until(lambda: status_of(srv, svc, fn, "long_1")["status"] == "Running", 20, what="the invocation runs")
    r = stateful(srv, svc, fn, "long_1", method="PUT")
    assert r.status_code == 200, r.text
    assert status_of(srv, svc, fn, "long_1")["status"] == "Stopped"
    again = stateful(srv, svc, fn, "long_1", method="PUT")
    assert again.status_code == 400, again.text
    # The cancelled attempt frees the instance: a new invocation does not wait 20 s behind it.
    one_instance(srv, svc, fn)
    t0 = time.time()
    assert invoke_ok(srv, svc, fn, b"quick").body == b"done quick"
    assert time.time() - t0 < 10
    time.sleep(1)
    assert status_of(srv, svc, fn, "long_1")["status"] == "Stopped", "a stopped invocation ran on"
    r = stateful(srv, svc, fn, "long_1", method="POST", suffix="/redrive")
    assert r.status_code == 200, r.text
    new_id = r.json()["invocationId"]
    assert new_id != "long_1"
    wait_until(lambda: status_of(srv, svc, fn, new_id)["status"] == "Running", 20, what="the re-driven invocation runs")
    stateful(srv, svc, fn, new_id, method="PUT")


def test_stateful_functions_are_listed(srv):
    svc = new_service(srv, "stf")
    fn = new_function(srv, svc, WORKER)
    put_async_config(srv, svc, fn, {"statefulInvocation": True})
    r = srv.raw.get("/stateful-async-invocation-functions")
    assert r.status_code == 200, r.text
    assert {"serviceName": svc, "functionName": fn, "qualifier": "LATEST"} in r.json()["data"], r.json()


def test_the_2021_sdk_reads_stateful_invocations(srv):
    from alibabacloud_fc_open20210406 import models
    svc = new_service(srv, "sdk")
    fn = new_function(srv, svc, WORKER)
    named(srv, svc, fn, "sdk_1", b"via-sdk")
    wait_until(lambda: status_of(srv, svc, fn, "sdk_1")["status"] == "Succeeded", 20, what="done")
    got = srv.fc21.get_stateful_async_invocation(svc, fn, "sdk_1", models.GetStatefulAsyncInvocationRequest()).body
    assert (got.invocation_id, got.status, got.return_payload) == ("sdk_1", "Succeeded", "done via-sdk")
    listed = srv.fc21.list_stateful_async_invocations(svc, fn, models.ListStatefulAsyncInvocationsRequest(
        include_payload=True, limit=10)).body
    assert [i.invocation_id for i in listed.invocations] == ["sdk_1"]
    assert listed.invocations[0].invocation_payload == "via-sdk"


def test_the_async_cli_lists_gets_stops_and_redrives(srv):
    svc = new_service(srv, "cli")
    fn = new_function(srv, svc, WORKER, timeout=30)
    named(srv, svc, fn, "cli_ok", b"cli")
    named(srv, svc, fn, "cli_long", b"sleep:20")
    wait_until(lambda: status_of(srv, svc, fn, "cli_ok")["status"] == "Succeeded"
               and status_of(srv, svc, fn, "cli_long")["status"] == "Running", 20, what="one done, one running")
    listed = [json.loads(l) for l in srv.cli("async", "list", f"{svc}/{fn}").stdout.splitlines()]
    assert {i["invocationId"]: i["status"] for i in listed} == {"cli_ok": "Succeeded", "cli_long": "Running"}, listed
    only = [json.loads(l)["invocationId"] for l in srv.cli("async", "list", f"{svc}/{fn}", "--status", "Succeeded").stdout.splitlines()]
    assert only == ["cli_ok"]
    got = json.loads(srv.cli("async", "get", f"{svc}/{fn}", "cli_ok").stdout)
    assert got["invocationPayload"] == "cli" and got["returnPayload"] == "done cli", got
    assert "stopped cli_long" in srv.cli("async", "stop", f"{svc}/{fn}", "cli_long").stdout
    # The node running it notices at its next lease renewal (a third of the 2 s lease).
    time.sleep(1.5)
    assert status_of(srv, svc, fn, "cli_long")["status"] == "Stopped"
    refused = srv.cli("async", "redrive", f"{svc}/{fn}", "cli_ok", check=False)
    assert refused.returncode != 0 and "Succeeded" in refused.stderr, refused
    new_id = srv.cli("async", "redrive", f"{svc}/{fn}", "cli_long").stdout.strip()
    wait_until(lambda: status_of(srv, svc, fn, new_id)["status"] == "Running", 20, what="the re-driven one runs")
    srv.cli("async", "stop", f"{svc}/{fn}", new_id)


def test_health_shows_the_queue_and_health_and_metrics_carry_request_ids(srv):
    import requests
    svc = new_service(srv, "hq")
    fn = new_function(srv, svc, WORKER)
    one_instance(srv, svc, fn)
    busy = occupy(srv, svc, fn, 3)
    for i in range(3):
        accepted(srv, svc, fn, f"q{i}".encode())
    time.sleep(1.2)
    h = requests.get(f"{srv.endpoint}/health", timeout=10)
    assert h.headers.get("X-Fc-Request-Id"), h.headers
    q = h.json()["async"]
    assert q["enabled"] and q["pending"] >= 3 and q["oldestPendingAgeSeconds"] > 0, q
    busy.join(10)
    wait_until(lambda: requests.get(f"{srv.endpoint}/health", timeout=10).json()["async"]["pending"] == 0, 30,
               what="the queue drained")
    m = requests.get(f"{srv.endpoint}/metrics", timeout=10)
    assert m.headers.get("X-Fc-Request-Id"), m.headers
    assert 'openfc_async_events_total{event="enqueued"}' in m.text, m.text[:2000]
