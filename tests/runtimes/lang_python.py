"""The built-in Python runtime's functions and answers (crates/openfc-invoker/runtimes/python/bootstrap.py), for
the contract suite (test_runtime_contract.py) and the Python-only tests (test_python_runtime.py)."""

import json
import re

from runtime_helpers import PYTHON, Lang, check

INDEX = r'''
import json
import logging
import os
import sys
import threading
import time


class MyError(Exception):
    pass


def echo(event, context):
    return event


def event_type(event, context):
    return type(event).__name__


def ret_str(event, context):
    return "h\u00e9llo \u4e2d"


def ret_bytes(event, context):
    return b"\x00\xffraw"


def ret_bytearray(event, context):
    return bytearray(b"ba")


def ret_dict(event, context):
    return {"a": 1, "b": [True, None], "s": "x"}


def ret_list(event, context):
    return [1, "two", 3.5]


def ret_int(event, context):
    return 42


def ret_float(event, context):
    return 1.5


def ret_bool(event, context):
    return True


def ret_none(event, context):
    return None


def ret_implicit(event, context):
    pass


def context_echo(event, context):
    c = context
    return {
        "request_id": c.request_id,
        "credentials": [c.credentials.access_key_id, c.credentials.access_key_secret, c.credentials.security_token],
        "function": {"name": c.function.name, "handler": c.function.handler, "memory": c.function.memory,
                     "timeout": c.function.timeout, "initializer": c.function.initializer,
                     "initialization_timeout": c.function.initialization_timeout},
        "service": {"name": c.service.name, "log_project": c.service.log_project, "log_store": c.service.log_store,
                    "qualifier": c.service.qualifier, "version_id": c.service.version_id},
        "region": c.region,
        "account_id": c.account_id,
        "has_tracing": hasattr(c, "tracing"),
        "remaining": c.get_remaining_time_in_ms(),
        "env": {k: os.environ.get(k) for k in ("FC_FUNCTION_NAME", "FC_INSTANCE_ID", "MY_USER_VAR",
                                                 "FC_FUNC_CODE_PATH")},
        "cwd": os.getcwd(),
        "sys_path0": sys.path[0],
    }


def div0(event, context):
    return 1 / 0


def custom(event, context):
    raise MyError("custom boom")


def exits(event, context):
    sys.exit(3)


def thread_name(event, context):
    return str(threading.get_ident())


def sleeper(event, context):
    time.sleep(0.2)
    return "slept"


def chatty(event, context):
    print("print from handler", context.request_id)
    sys.stderr.write("stderr from handler\n")
    logging.getLogger().info("info via logging")
    logging.getLogger("child").warning("warn via child logger")
    logging.getLogger().debug("debug is below the default level")
    return "ok"


def noisy_failure(event, context):
    print("about to fail")
    raise ValueError("noisy failure")


def not_callable_target(event, context):
    return "unused"


not_callable = 5
'''

FILES = {
    "index.py": INDEX,
    "broken.py": "def handler(event, context)\n    return 1\n",
    "needs_dep.py": "import not_installed_pkg\n\ndef handler(event, context):\n    return 1\n",
    "sub/dir/mod.py": "def handler(event, context):\n    return 'nested:' + __name__\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": "def handler(event, context):\n    return 'dotted:' + __name__\n",
    "helper_lib.py": "VALUE = 'from helper'\n",
    "uses_helper.py": "import helper_lib\n\ndef handler(event, context):\n    return helper_lib.VALUE\n",
}

RESULT_CASES = [
    # handler, request body, expected response body, expected content type
    ("index.echo", b"raw \x00\xff event", b"raw \x00\xff event", "application/octet-stream"),
    ("index.event_type", b"{}", b"bytes", None),
    ("index.ret_str", b"", "h\u00e9llo \u4e2d".encode("utf-8"), "application/octet-stream"),
    ("index.ret_bytes", b"", b"\x00\xffraw", "application/octet-stream"),
    ("index.ret_bytearray", b"", b"ba", "application/octet-stream"),
    ("index.ret_dict", b"", json.dumps({"a": 1, "b": [True, None], "s": "x"}).encode(), "application/json"),
    ("index.ret_list", b"", json.dumps([1, "two", 3.5]).encode(), "application/json"),
    ("index.ret_int", b"", b"42", "application/json"),
    ("index.ret_float", b"", b"1.5", "application/json"),
    ("index.ret_bool", b"", b"true", "application/json"),
    ("index.ret_none", b"", b"", None),
    ("index.ret_implicit", b"", b"", None),
    ("sub/dir/mod.handler", b"", b"nested:sub/dir/mod", None),
    ("pkg.mod.handler", b"", b"dotted:pkg.mod", None),
    ("uses_helper.handler", b"", b"from helper", None),
]

ERROR_CASES = [
    # handler, kind, errorType, errorMessage substring, substring expected in the stack trace (or None)
    ("index.div0", "Unhandled", "ZeroDivisionError", "division by zero", "index.py"),
    ("index.custom", "Unhandled", "MyError", "custom boom", "in custom"),
    ("index.exits", "Unhandled", "SystemExit", "3", "in exits"),
    ("nosuch.handler", "Unhandled", "ModuleNotFoundError", "nosuch", None),
    ("index.nosuch", "Unhandled", "HandlerNotFound", "Handler 'nosuch' is missing on module 'index'", None),
    ("index.not_callable", "Unhandled", "HandlerNotFound", "not callable", None),
    ("broken.handler", "Unhandled", "SyntaxError", "", "broken.py"),
    ("needs_dep.handler", "Unhandled", "ModuleNotFoundError", "not_installed_pkg", "needs_dep.py"),
    ("noperiod", "Unhandled", "InvalidHandler", "noperiod", None),
    ("sub/dir/missing.handler", "Unhandled", "ModuleNotFoundError", "sub/dir/missing", None),
]

COUNTER = {
    "index.py": '''
        import time
        counter = 0
        seen = []

        def init(context):
            global counter
            time.sleep(0.2)
            counter += 1
            seen.append([context.request_id, context.function.initialization_timeout,
                         context.get_remaining_time_in_ms()])
            print("initializer ran")

        def handler(event, context):
            global counter
            counter += 1
            return str(counter)

        def report(event, context):
            return {"seen": seen}
    ''',
}

INIT_FAILS_ONCE = {"index.py": '''
    attempts = 0

    def init(context):
        global attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first attempt fails")

    def handler(event, context):
        return str(attempts)
'''}

WSGI = {
    "index.py": r'''
        import json

        def app(environ, start_response):
            n = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(n)
            keys = ["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME",
                    "SERVER_PORT", "REMOTE_ADDR", "wsgi.url_scheme", "fc.request_uri", "SCRIPT_NAME"]
            out = {k: environ.get(k) for k in keys}
            out["wsgi.version"] = list(environ["wsgi.version"])
            out["http"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
            out["body"] = body.decode("utf-8")
            out["request_id"] = environ["fc.context"].request_id
            out["function"] = environ["fc.context"].function.name
            out["has_errors"] = hasattr(environ["wsgi.errors"], "write")
            out["path_utf8"] = environ["PATH_INFO"].encode("latin-1").decode("utf-8")
            start_response("201 Created", [
                ("Content-Type", "application/json"),
                ("X-Custom", "yes"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("X-Fc-Sneaky", "no"),
                ("Connection", "close"),
                ("Content-Length", "99999"),
            ])
            return [json.dumps(out).encode("utf-8")]

        def not_found(environ, start_response):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such page"]

        def generator(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            for part in ("a", "b", "c"):
                yield part.encode()

        def write_callable(environ, start_response):
            write = start_response("202 Accepted", [])
            write(b"written-")
            return [b"returned"]

        def crashes(environ, start_response):
            raise KeyError("wsgi boom")

        def forgets_start_response(environ, start_response):
            return [b"x"]

        # FC's runtime serves a bare bytes or str (not a list of chunks) as the body.
        def bare_bytes(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return b"bare bytes"

        def bare_str(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return "bare str \u00e9"

        def bare_bytearray(environ, start_response):
            start_response("200 OK", [])
            return bytearray(b"bare bytearray")
    ''',
}

WSGI_CASES = [
    # handler, method, status, body, error
    ("index.not_found", "GET", 404, b"no such page", None),
    ("index.generator", "GET", 200, b"abc", None),
    ("index.write_callable", "PUT", 202, b"written-returned", None),
    ("index.bare_bytes", "GET", 200, b"bare bytes", None),
    ("index.bare_str", "GET", 200, "bare str \u00e9".encode("utf-8"), None),
    ("index.bare_bytearray", "GET", 200, b"bare bytearray", None),
    ("index.crashes", "GET", 404, None, {"errorType": "KeyError"}),
    ("index.forgets_start_response", "GET", 404, None, {"errorType": "RuntimeError"}),
    ("index.nosuch", "GET", 404, None, {"errorType": "HandlerNotFound"}),
]

HOOKS = {
    "index.py": '''
        import os

        def handler(event, context):
            return "ok"

        def pre_stop(context):
            print("pre-stop ran", context.request_id)
            with open(os.path.join(os.environ["FC_FUNC_CODE_PATH"], "stopped"), "w") as f:
                f.write(context.function.name)

        def pre_freeze(context):
            raise OSError("cannot freeze")
    ''',
}


def keep_alive_probe(rt, session):
    a = check(rt.invoke(b"", handler="index.thread_name", session=session), 200).content
    b = check(rt.invoke(b"", handler="index.thread_name", session=session), 200).content
    assert a == b  # one connection = one server thread


def check_init_report(report, rid):
    seen = report["seen"]
    assert len(seen) == 1 and seen[0][0] == rid and seen[0][1] == 7 and 0 < seen[0][2] <= 7000, seen


TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "

PROFILE = Lang(
    name="python",
    bare_cmd=[PYTHON, "-c", "pass"],
    max_startup_overhead_ms=60,
    tiny_files={"index.py": "def handler(e, c):\n    return 1\n"},
    files=FILES,
    result_cases=RESULT_CASES,
    ret_42="index.ret_int",
    keep_alive_probe=keep_alive_probe,
    error_cases=ERROR_CASES,
    bootstrap_frames=("bootstrap.py", "importlib"),
    pid_handler=None,
    noisy_failure="index.noisy_failure",
    noisy_error={"errorType": "ValueError"},
    noisy_inside=lambda rid: [r"^about to fail$", re.escape(rid) + r" \[ERROR\] Traceback",
                              r"ValueError: noisy failure"],
    chatty="index.chatty",
    chatty_inside=lambda rid: ["^print from handler %s$" % rid,
                               TS + re.escape(rid) + r" \[INFO\] info via logging$",
                               TS + re.escape(rid) + r" \[WARNING\] warn via child logger$"],
    chatty_order=("print from handler", "info via logging", "warn via child logger"),
    chatty_never=("debug is below",),
    chatty_stderr="^stderr from handler$",
    counter=COUNTER,
    check_init_report=check_init_report,
    header_init=("index.init", b"3"),
    init_fails_once=INIT_FAILS_ONCE,
    init_failure={"errorType": "RuntimeError", "errorMessage": "first attempt fails"},
    http_files=WSGI,
    http_main="index.app",
    http_fixed=("index.generator", b"abc"),
    http_cases=WSGI_CASES,
    hooks=HOOKS,
    pre_stop="index.pre_stop",
    pre_freeze="index.pre_freeze",
    pre_freeze_error={"errorType": "OSError", "errorMessage": "cannot freeze"},
)
