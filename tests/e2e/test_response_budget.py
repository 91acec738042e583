"""openfc holds function responses (up to 32 MB each) in its own memory, outside any instance's cgroup, until
the client has them: they are read against one node-wide budget (`--response-memory-mb`). Beyond it, reading
waits (the runtime's writes wait on TCP) rather than growing openfc's memory; every invocation still completes.
The reservation shows as `openfc_response_memory_bytes`."""

import concurrent.futures
import threading
import time

from invoke_helpers import invoke, new_function, new_service, py_zip

BIG = py_zip('''
    def handler(event, context):
        return b"x" * (30 * 1024 * 1024)
''')


def reserved(srv):
    for line in srv.metrics().splitlines():
        if line.startswith("openfc_response_memory_bytes"):
            return float(line.split()[-1])
    return 0.0


def test_responses_wait_for_the_budget_instead_of_growing_openfc(server_factory, backend):
    s = server_factory.start(backend, args=["--response-memory-mb", "64", "--prestarted-runtimes", "0"])
    try:
        svc = new_service(s, "rbud")
        fn = new_function(s, svc, BIG, memorySize=256, timeout=60)
        peak, done = [0.0], threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], reserved(s))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda _: invoke(s, svc, fn), range(4)))
        finally:
            done.set()
            watcher.join()
        for r in results:
            assert r.status == 200 and r.error_type is None and len(r.body) == 30 * 1024 * 1024, r.describe()
        assert 0 < peak[0] <= 64 * 1024 * 1024, peak[0]
        assert reserved(s) == 0.0, "every reservation is given back once the responses were sent"
    finally:
        s.close()
