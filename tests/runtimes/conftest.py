"""Fixtures for the built-in runtime tests (crates/openfc-invoker/runtimes).

The bootstraps are started directly on the host (no sandbox) with a temporary code directory, a free port and the
start-up environment the invoker provides, then driven over HTTP exactly like the invoker will. The helpers live in
runtime_helpers.py.
"""

import pytest

from runtime_helpers import RawConnection, Runtime, write_files  # noqa: F401


@pytest.fixture
def start_runtime(tmp_path):
    """start_runtime(lang, files, handler='index.handler', initializer='', env=None) -> Runtime"""
    started = []

    def start(lang, files, handler="index.handler", initializer="", env=None):
        code = tmp_path / ("code%d" % len(started))
        code.mkdir()
        write_files(code, files)
        rt = Runtime(lang, code, handler, initializer, env)
        started.append(rt)
        return rt

    yield start
    for rt in started:
        rt.stop()


@pytest.fixture
def raw_conn():
    conns = []

    def make(port):
        c = RawConnection(port)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.close()
