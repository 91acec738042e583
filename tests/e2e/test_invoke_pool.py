"""Instance pools: instanceConcurrency, on-demand scale-out up to --max-instances, queueing for --queue-timeout-ms
then 429 ResourceThrottled, scale to zero after --instance-idle-timeout (never while busy), and what /health
reports. One server for the module with small limits (2 instances, 600 ms queue, 2 s idle); the default limit
of 10 instances is checked on the default server in test_invoke.py."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import assert_fc_error
from invoke_helpers import health, invoke, invoke_json, new_function, new_service, py_zip, wait_until

MAX_INSTANCES = 2
QUEUE_MS = 600
IDLE_S = 2

# Sleeps for the event's number of seconds; reports its instance, its call count and the peak of requests in
# flight on that instance.
SLEEPER = py_zip('''
    import json, os, threading, time

    lock = threading.Lock()
    active = peak = calls = 0

    def handler(event, context):
        global active, peak, calls
        with lock:
            active += 1
            calls += 1
            peak = max(peak, active)
            n = calls
        try:
            time.sleep(float(event or b"0"))
        finally:
            with lock:
                active -= 1
        return json.dumps({"instance": os.environ["FC_INSTANCE_ID"], "calls": n, "peak": peak})
''')


@pytest.fixture(scope="module")
def srv(server_factory):
    s = server_factory.start("sqlite", args=["--max-instances", str(MAX_INSTANCES), "--queue-timeout-ms",
                                             str(QUEUE_MS), "--instance-idle-timeout", str(IDLE_S)])
    yield s
    s.close()


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "poolsvc")


def sleeper(srv, svc, **fields):
    return new_function(srv, svc, SLEEPER, timeout=10, **fields)


def parallel(srv, svc, fn, payloads, stagger=0.0):
    """Invokes concurrently; returns [(Invocation, seconds)] in payload order."""
    def one(i_p):
        i, p = i_p
        time.sleep(stagger * i)
        t0 = time.monotonic()
        inv = invoke(srv, svc, fn, p)
        return inv, time.monotonic() - t0
    with ThreadPoolExecutor(len(payloads)) as ex:
        return list(ex.map(one, enumerate(payloads)))


def ok_json(inv):
    assert inv.status == 200 and inv.error_type is None, inv.describe()
    return inv.json()


def wait_busy(srv, n, timeout=10):
    return wait_until(lambda: health(srv)["instances"]["busy"] >= n, timeout, 0.02, f"{n} busy instance(s)")


def test_concurrency_one_gives_each_concurrent_request_its_own_instance(srv, svc):
    fn = sleeper(srv, svc)
    results = parallel(srv, svc, fn, [b"0.8", b"0.8"])
    bodies = [ok_json(inv) for inv, _ in results]
    assert len({b["instance"] for b in bodies}) == 2, bodies
    assert all(b["peak"] == 1 for b in bodies), bodies
    assert [inv.instance_id for inv, _ in results] == [b["instance"] for b in bodies]


def test_instance_concurrency_shares_one_instance(srv, svc):
    fn = sleeper(srv, svc, instanceConcurrency=3)
    warm = ok_json(invoke(srv, svc, fn, b"0"))
    t0 = time.monotonic()
    results = parallel(srv, svc, fn, [b"0.6"] * 3)
    wall = time.monotonic() - t0
    bodies = [ok_json(inv) for inv, _ in results]
    assert {b["instance"] for b in bodies} == {warm["instance"]}, bodies
    assert max(b["peak"] for b in bodies) == 3, bodies
    assert sorted(b["calls"] for b in bodies) == [2, 3, 4]
    assert wall < 1.5, f"three 0.6 s requests on one instance took {wall:.2f}s: not concurrent"


def test_beyond_capacity_a_request_waits_the_queue_timeout_then_is_throttled(srv, svc):
    fn = sleeper(srv, svc)
    with ThreadPoolExecutor(2) as ex:
        running = [ex.submit(invoke, srv, svc, fn, b"2.5") for _ in range(MAX_INSTANCES)]
        wait_busy(srv, MAX_INSTANCES)
        t0 = time.monotonic()
        inv = invoke(srv, svc, fn, b"0")
        waited = time.monotonic() - t0
        body = assert_fc_error(inv.resp, 429, "ResourceThrottled")
        assert QUEUE_MS / 1000 - 0.05 <= waited < QUEUE_MS / 1000 + 1.0, waited
        assert fn in body["ErrorMessage"], body
        bodies = [ok_json(f.result()) for f in running]
    assert len({b["instance"] for b in bodies}) == MAX_INSTANCES
    after = ok_json(invoke(srv, svc, fn, b"0"))
    assert after["instance"] in {b["instance"] for b in bodies}
    assert health(srv)["status"] == "ok"


def test_a_queued_request_gets_the_first_freed_instance(srv, svc):
    fn = sleeper(srv, svc)
    with ThreadPoolExecutor(2) as ex:
        running = [ex.submit(invoke, srv, svc, fn, b"0.3") for _ in range(MAX_INSTANCES)]
        wait_busy(srv, MAX_INSTANCES)
        t0 = time.monotonic()
        queued = ok_json(invoke(srv, svc, fn, b"0"))
        waited = time.monotonic() - t0
        bodies = [ok_json(f.result()) for f in running]
    assert queued["instance"] in {b["instance"] for b in bodies}, (queued, bodies)
    assert queued["calls"] == 2
    assert waited < QUEUE_MS / 1000, waited


def test_throttling_is_per_function_version(srv, svc):
    busy_fn, other_fn = sleeper(srv, svc), sleeper(srv, svc)
    with ThreadPoolExecutor(2) as ex:
        running = [ex.submit(invoke, srv, svc, busy_fn, b"1.2") for _ in range(MAX_INSTANCES)]
        wait_busy(srv, MAX_INSTANCES)
        t0 = time.monotonic()
        ok_json(invoke(srv, svc, other_fn, b"0"))
        assert time.monotonic() - t0 < 1.0, "another function does not queue behind a busy one"
        for f in running:
            ok_json(f.result())


def test_idle_instances_stop_but_never_while_busy(srv, svc):
    fn = sleeper(srv, svc)
    first = invoke_json(srv, svc, fn, b"0")[0]
    assert first["calls"] == 1
    # A request longer than the idle timeout keeps its instance.
    long_running = invoke_json(srv, svc, fn, str(IDLE_S + 1).encode())[0]
    assert (long_running["instance"], long_running["calls"]) == (first["instance"], 2)
    # Idle time counts from the end of the last request: shortly after the long one, the instance is still warm.
    time.sleep(IDLE_S * 0.6)
    warm = invoke_json(srv, svc, fn, b"0")[0]
    assert (warm["instance"], warm["calls"]) == (first["instance"], 3), \
        f"instance stopped {IDLE_S * 0.6:.1f}s after its last request ended (idle timeout {IDLE_S}s): {warm}"
    t0 = time.monotonic()
    h = health(srv)["instances"]
    assert h["alive"] >= 1 and h["alive"] == h["busy"] + h["idle"], h
    # Then, idle, everything stops (scale to zero) ...
    wait_until(lambda: health(srv)["instances"]["alive"] == 0, IDLE_S + 4, 0.1, "scale to zero")
    assert time.monotonic() - t0 >= IDLE_S - 0.5, "stopped before the idle timeout"
    # ... and the next request starts a fresh instance.
    again = invoke_json(srv, svc, fn, b"0")[0]
    assert again["instance"] != first["instance"]
    assert again["calls"] == 1, "a new instance starts with fresh state"


def test_health_counts_busy_and_idle_instances(srv, svc):
    fn = sleeper(srv, svc)
    ok_json(invoke(srv, svc, fn, b"0"))
    with ThreadPoolExecutor(1) as ex:
        slow = ex.submit(invoke, srv, svc, fn, b"1")
        during = wait_busy(srv, 1) and health(srv)["instances"]
        assert during["busy"] >= 1 and during["alive"] == during["busy"] + during["idle"], during
        ok_json(slow.result())
    after = health(srv)["instances"]
    assert after["busy"] == 0 and after["idle"] == after["alive"] >= 1, after


def test_fifty_parallel_invocations_with_concurrency_ten_use_at_most_five_instances(server_factory):
    """50 requests at once, instanceConcurrency 10, cold: demand-aware scale-out starts ceil(50/10) = 5 instances,
    not one per request (on a server whose instance limit would allow 10)."""
    s = server_factory.start("sqlite", args=["--max-instances", "10", "--queue-timeout-ms", "20000"])
    try:
        svc = new_service(s, "fiftysvc")
        fn = new_function(s, svc, SLEEPER, timeout=20, instanceConcurrency=10)
        results = parallel(s, svc, fn, [b"1.0"] * 50)
        bodies = [ok_json(inv) for inv, _ in results]
        instances = {b["instance"] for b in bodies}
        assert len(instances) <= 5, f"{len(instances)} instances for 50 requests at concurrency 10"
        assert max(b["peak"] for b in bodies) <= 10, "an instance served more than instanceConcurrency at once"
        assert health(s)["instances"]["alive"] <= 5
    finally:
        s.close()
