# -*- coding: utf-8 -*-
"""openfc built-in Python runtime (FC 2.0 compatible).

Run as:  /usr/bin/python3 -u /var/fc/runtime/python/bootstrap.py

Speaks the custom-runtime HTTP contract (spec fc-api.md section 8.1) so the invoker treats Python functions
exactly like custom runtimes:

  POST /invoke          event handler  handler(event: bytes, context)      -> 200 body = result
  POST /initialize      initializer    initializer(context), once per process
  GET  /pre-stop        lifecycle hook named by x-fc-instance-lifecycle-pre-stop-handler
  GET  /pre-freeze      lifecycle hook named by x-fc-instance-lifecycle-pre-freeze-handler
  any  (x-fc-control-path: /http-invoke)   WSGI handler(environ, start_response)

The dispatch key is the x-fc-control-path header when present, else the request path.
Failures answer 404 with `x-fc-status: 404`, `x-fc-error-type: UnhandledInvocationError` and a JSON body
{"errorMessage", "errorType", "stackTrace"}.

Start-up environment: FC_FUNC_CODE_PATH, FC_CUSTOM_LISTEN_PORT, FC_FUNCTION_HANDLER, FC_FUNCTION_INITIALIZER,
FC_FUNCTION_NAME, FC_SERVICE_NAME, FC_FUNCTION_MEMORY_SIZE, FC_FUNCTION_TIMEOUT, FC_INITIALIZATION_TIMEOUT,
FC_REGION, FC_ACCOUNT_ID, FC_QUALIFIER, FC_VERSION_ID, FC_SERVICE_LOG_PROJECT, FC_SERVICE_LOG_STORE,
FC_INSTANCE_ID (+ user variables). Request-scoped values (request id, credentials, ...) come from headers, with
the environment as the fallback.

Only `os`, `sys`, `io`, `_socket` and `threading` are imported before the port is listening; everything else is
imported on first use (the `socket` wrapper module alone costs ~8 ms of start-up, measured, so the server uses
the `_socket` extension it wraps). Standard library only; Python 3.6+ syntax.
"""

import _socket
import io
import os
import sys
import threading

# openfc runs this file precompiled (bootstrap.pyc next to it) when it could; its code objects name the .py.
_BOOTSTRAP_FILE = os.path.abspath(__file__)
if _BOOTSTRAP_FILE.endswith(".pyc"):
    _BOOTSTRAP_FILE = _BOOTSTRAP_FILE[:-1]
_ENV = os.environ

CODE_DIR = _ENV.get("FC_FUNC_CODE_PATH") or "/code"

# The packages FC's Python runtimes ship built in (`openfc runtimes install`; openfc's runtime::BUILTINS_MOUNT and
# BUILTINS_SET): on sys.path after the code and layers, so a function's own copy wins.
BUILTINS_DIR = "/var/fc/runtime/builtins/v1/python"
# Top-level names importable from that set: an import of one that fails while the set is missing says how to
# install it.
_BUILTIN_MODULES = frozenset([
    "oss2", "tablestore", "fc2", "aliyunsdkcore", "aliyunsdkkms", "aliyunsdksts", "aliyun", "mns", "requests",
    "urllib3", "certifi", "charset_normalizer", "idna", "six", "crcmod", "Crypto", "jmespath", "cryptography",
    "OpenSSL", "cffi", "pycparser", "google", "future", "past", "dateutil", "elasticsearch", "dateparser", "pytz",
    "tzlocal", "pytz_deprecation_shim", "tzdata", "regex",
])

ERROR_STATUS = 404
# Python has no "handled" errors: every exception escaping user code is an UnhandledInvocationError.
UNHANDLED = "UnhandledInvocationError"

# Request headers never shown to user code as HTTP headers (the invoker's control channel).
_HIDDEN_REQUEST_PREFIX = "x-fc-"
# Response headers the user may not set (hop-by-hop, framing, reserved).
_DROPPED_RESPONSE_HEADERS = frozenset([
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "content-length",
])

_REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}

MAX_LINE = 65536
MAX_HEADERS = 1000

_tls = threading.local()


# ---------------------------------------------------------------------------------------------------------------
# stdout markers and logging
# ---------------------------------------------------------------------------------------------------------------

def _write_stdout(text):
    """One write(2) on fd 1: atomic for lines below PIPE_BUF, ordered with the unbuffered user prints."""
    data = text.encode("utf-8", "replace")
    try:
        while data:
            n = os.write(1, data)
            data = data[n:]
    except OSError:
        pass


def _marker(kind, phase, request_id):
    _write_stdout("FC %s %s RequestId: %s\n" % (kind, phase, request_id))


def _utc_iso(t=None):
    import time
    if t is None:
        t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%03dZ" % (int(t * 1000) % 1000))


def _log_error_line(request_id, text):
    _write_stdout("%s %s [ERROR] %s\n" % (_utc_iso(), request_id, text.rstrip("\n")))


_user_env_ready = False


def _setup_user_environment():
    """Done once, before the first user module is imported (not on the start-up path)."""
    global _user_env_ready
    if _user_env_ready:
        return
    import logging

    class _RequestIdFilter(logging.Filter):
        def filter(self, record):
            if not hasattr(record, "fc_request_id"):
                record.fc_request_id = getattr(_tls, "request_id", "") or ""
            return True

    class _Formatter(logging.Formatter):
        def formatTime(self, record, datefmt=None):
            return _utc_iso(record.created)

    class _StdoutHandler(logging.StreamHandler):
        # Always the current sys.stdout (unbuffered with -u), so log lines and prints stay in order.
        @property
        def stream(self):
            return sys.stdout

        @stream.setter
        def stream(self, value):
            pass

        def flush(self):
            try:
                sys.stdout.flush()
            except Exception:
                pass

    handler = _StdoutHandler()
    handler.setFormatter(_Formatter("%(asctime)s %(fc_request_id)s [%(levelname)s] %(message)s"))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    level = (_ENV.get("FC_LOG_LEVEL") or "INFO").upper()
    try:
        root.setLevel(level)
    except (ValueError, TypeError):
        root.setLevel(logging.INFO)
    _user_env_ready = True


# ---------------------------------------------------------------------------------------------------------------
# context
# ---------------------------------------------------------------------------------------------------------------

def _to_int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


class Credentials(object):
    def __init__(self, access_key_id, access_key_secret, security_token):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token

    def __repr__(self):
        return "Credentials(access_key_id=%r)" % (self.access_key_id,)


class FunctionMeta(object):
    def __init__(self, name, handler, memory, timeout, initializer, initialization_timeout):
        self.name = name
        self.handler = handler
        self.memory = memory
        self.timeout = timeout
        self.initializer = initializer
        self.initialization_timeout = initialization_timeout

    def __repr__(self):
        return "FunctionMeta(%r)" % (self.__dict__,)


class ServiceMeta(object):
    def __init__(self, name, log_project, log_store, qualifier, version_id):
        self.name = name
        self.log_project = log_project
        self.log_store = log_store
        self.qualifier = qualifier
        self.version_id = version_id

    def __repr__(self):
        return "ServiceMeta(%r)" % (self.__dict__,)


class Tracing(object):
    def __init__(self, span_context, base64_baggages, jaeger_endpoint, parent_span_id=None):
        self.span_context = span_context
        self.jaeger_endpoint = jaeger_endpoint
        self.span_baggages = self._parse_baggages(base64_baggages)
        self.parent_span_id = parent_span_id

    @staticmethod
    def _parse_baggages(value):
        if not value:
            return {}
        try:
            import base64
            import json
            parsed = json.loads(base64.b64decode(value).decode("utf-8"))
            return parsed if isinstance(parsed, dict) else {}
        except Exception:
            return {}

    def __repr__(self):
        return "Tracing(%r)" % (self.__dict__,)


class FCContext(object):
    def __init__(self, account_id, request_id, credentials, function, service, region, tracing, deadline,
                 retry_count=0):
        self.account_id = account_id
        self.request_id = request_id
        self.credentials = credentials
        self.function = function
        self.service = service
        self.region = region
        self.tracing = tracing
        self.retry_count = retry_count
        self._deadline = deadline

    def get_remaining_time_in_ms(self):
        import time
        return max(0, int((self._deadline - time.time()) * 1000))

    def __repr__(self):
        return "FCContext(request_id=%r)" % (self.request_id,)


def _make_context(headers, timeout_header="x-fc-function-timeout", timeout_env="FC_FUNCTION_TIMEOUT"):
    import time
    h = headers.get

    def pick(header, env, default=""):
        v = h(header)
        if v is None or v == "":
            v = _ENV.get(env, default) if env else default
        return v

    timeout = _to_int(pick("x-fc-function-timeout", "FC_FUNCTION_TIMEOUT", "3"), 3)
    init_timeout = _to_int(pick("x-fc-initialization-timeout", "FC_INITIALIZATION_TIMEOUT", "3"), 3)
    budget = _to_int(pick(timeout_header, timeout_env, str(timeout)), timeout)
    return FCContext(
        account_id=pick("x-fc-account-id", "FC_ACCOUNT_ID"),
        request_id=h("x-fc-request-id", ""),
        credentials=Credentials(
            pick("x-fc-access-key-id", "ALIBABA_CLOUD_ACCESS_KEY_ID"),
            pick("x-fc-access-key-secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            pick("x-fc-security-token", "ALIBABA_CLOUD_SECURITY_TOKEN"),
        ),
        function=FunctionMeta(
            pick("x-fc-function-name", "FC_FUNCTION_NAME"),
            pick("x-fc-function-handler", "FC_FUNCTION_HANDLER"),
            _to_int(pick("x-fc-function-memory", "FC_FUNCTION_MEMORY_SIZE", "128"), 128),
            timeout,
            pick("x-fc-function-initializer", "FC_FUNCTION_INITIALIZER"),
            init_timeout,
        ),
        service=ServiceMeta(
            pick("x-fc-service-name", "FC_SERVICE_NAME"),
            pick("x-fc-service-logproject", "FC_SERVICE_LOG_PROJECT"),
            pick("x-fc-service-logstore", "FC_SERVICE_LOG_STORE"),
            pick("x-fc-qualifier", "FC_QUALIFIER", "LATEST"),
            pick("x-fc-version-id", "FC_VERSION_ID"),
        ),
        region=pick("x-fc-region", "FC_REGION"),
        tracing=Tracing(
            h("x-fc-tracing-opentracing-span-context"),
            h("x-fc-tracing-opentracing-span-baggages"),
            h("x-fc-tracing-jaeger-endpoint"),
            h("x-fc-tracing-opentracing-parent-span-id"),
        ),
        deadline=time.time() + budget,
        retry_count=_to_int(h("x-fc-retry-count", "0"), 0),
    )


# ---------------------------------------------------------------------------------------------------------------
# user code loading
# ---------------------------------------------------------------------------------------------------------------

class FCError(Exception):
    """An error with an explicit errorType (handler not found, invalid handler, ...)."""

    def __init__(self, error_type, message):
        Exception.__init__(self, message)
        self.error_type = error_type


_handlers = {}
_load_lock = threading.RLock()


def _import_user_module(modname):
    import importlib
    if "/" not in modname:
        return importlib.import_module(modname)
    if modname in sys.modules:
        return sys.modules[modname]
    # "dir/sub/file" or "dir/pkg.mod": a file below the code dir, registered under the handler's module name.
    import importlib.util
    prefix, _, rest = modname.rpartition("/")
    base = os.path.join(CODE_DIR, prefix, *rest.split("."))
    search = None
    if os.path.isfile(base + ".py"):
        filename = base + ".py"
    elif os.path.isfile(os.path.join(base, "__init__.py")):
        filename = os.path.join(base, "__init__.py")
        search = [base]
    else:
        raise ModuleNotFoundError("No module named '%s'" % modname, name=modname)
    spec = importlib.util.spec_from_file_location(modname, filename, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def load_function(name):
    """Resolve '<module>.<function>' (module may be dotted 'pkg.mod' or a path 'dir/file') to a callable."""
    fn = _handlers.get(name)
    if fn is not None:
        return fn
    with _load_lock:
        fn = _handlers.get(name)
        if fn is not None:
            return fn
        _setup_user_environment()
        modname, dot, fname = (name or "").strip().rpartition(".")
        if not dot or not modname or not fname:
            raise FCError("InvalidHandler",
                          "Invalid handler '%s': expected '<module>.<function>', e.g. 'index.handler'" % (name,))
        if modname.endswith(".py") and "/" in modname:
            modname = modname[:-3]
        try:
            module = _import_user_module(modname)
        except ImportError as e:
            if isinstance(e, ModuleNotFoundError) and e.name and (e.name == modname or modname.startswith(e.name + ".")):
                e.msg = "Unable to import module '%s': No module named '%s' in %s" % (modname, e.name, CODE_DIR)
            raise
        fn = getattr(module, fname, None)
        if fn is None:
            raise FCError("HandlerNotFound", "Handler '%s' is missing on module '%s'" % (fname, modname))
        if not callable(fn):
            raise FCError("HandlerNotFound", "Handler '%s' on module '%s' is not callable" % (fname, modname))
        _handlers[name] = fn
        return fn


# ---------------------------------------------------------------------------------------------------------------
# errors and results
# ---------------------------------------------------------------------------------------------------------------

def _error_payload(exc):
    import importlib
    import traceback
    importlib_dir = os.path.dirname(importlib.__file__) + os.sep
    error_type = getattr(exc, "error_type", None) or type(exc).__name__
    try:
        message = str(exc)
    except Exception:
        message = repr(exc)
    frames = []
    for fs in traceback.extract_tb(exc.__traceback__):
        fname = fs.filename or ""
        if fname == _BOOTSTRAP_FILE or fname.startswith("<frozen importlib") or fname.startswith(importlib_dir):
            continue
        frames.append(fs)
    stack = [line.rstrip("\n") for line in traceback.format_list(frames)]
    if isinstance(exc, SyntaxError) and exc.filename:
        stack.append('  File "%s", line %s' % (exc.filename, exc.lineno))
    return {"errorMessage": message + _builtins_hint(exc), "errorType": error_type, "stackTrace": stack}


def _builtins_hint(exc):
    """What to do when user code imports one of FC's built-in packages and this openfc has none installed."""
    name = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if not name or name.split(".")[0] not in _BUILTIN_MODULES or os.path.isdir(BUILTINS_DIR):
        return ""
    return (" ('%s' is one of the modules Function Compute's Python runtimes ship built in; the runtime "
            "built-ins are not installed on this openfc server: run `openfc runtimes install`)" % name.split(".")[0])


def _error_response(exc, request_id, error_kind=UNHANDLED):
    import json
    payload = _error_payload(exc)
    lines = ["Traceback (most recent call last):"] + payload["stackTrace"] if payload["stackTrace"] else []
    lines.append("%s: %s" % (payload["errorType"], payload["errorMessage"]))
    _log_error_line(request_id, "\n".join(lines))
    body = json.dumps(payload).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("x-fc-status", str(ERROR_STATUS)),
               ("x-fc-error-type", error_kind)]
    return ERROR_STATUS, headers, body


def _encode_result(result):
    if result is None:
        return b"", "application/octet-stream"
    if isinstance(result, bytes):
        return result, "application/octet-stream"
    if isinstance(result, (bytearray, memoryview)):
        return bytes(result), "application/octet-stream"
    if isinstance(result, str):
        return result.encode("utf-8", "surrogateescape"), "application/octet-stream"
    import json
    try:
        return json.dumps(result).encode("utf-8"), "application/json"
    except (TypeError, ValueError):
        return str(result).encode("utf-8", "replace"), "application/octet-stream"


# ---------------------------------------------------------------------------------------------------------------
# HTTP/1.1 server (thread per connection, keep-alive, TCP_NODELAY)
# ---------------------------------------------------------------------------------------------------------------

class _BadRequest(Exception):
    pass


class Request(object):
    __slots__ = ("method", "target", "version", "header_list", "headers", "body", "peer")

    def __init__(self, method, target, version, header_list, peer):
        self.method = method
        self.target = target
        self.version = version
        self.header_list = header_list
        headers = {}
        for k, v in header_list:
            if k in headers:
                headers[k] = headers[k] + ", " + v
            else:
                headers[k] = v
        self.headers = headers
        self.body = b""
        self.peer = peer


def _read_request(rfile, conn, peer):
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise _BadRequest("request line too long")
    parts = line.decode("latin-1").rstrip("\r\n").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest("malformed request line")
    method, target, version = parts
    header_list = []
    while True:
        h = rfile.readline(MAX_LINE + 1)
        if not h:
            raise EOFError()
        if h in (b"\r\n", b"\n"):
            break
        if len(h) > MAX_LINE or len(header_list) >= MAX_HEADERS:
            raise _BadRequest("headers too large")
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest("malformed header")
        header_list.append((name.strip().lower(), value.strip()))
    req = Request(method, target, version, header_list, peer)
    hd = req.headers
    if hd.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in hd.get("transfer-encoding", "").lower():
        req.body = _read_chunked(rfile)
    elif "content-length" in hd:
        try:
            n = int(hd["content-length"].split(",")[0])
        except ValueError:
            raise _BadRequest("bad content-length")
        if n < 0:
            raise _BadRequest("bad content-length")
        body = rfile.read(n) if n else b""
        if len(body) < n:
            raise EOFError()
        req.body = body
    return req


def _read_chunked(rfile):
    chunks = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            raise EOFError()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("bad chunk size")
        if size == 0:
            while True:  # trailers
                t = rfile.readline(MAX_LINE + 1)
                if not t or t in (b"\r\n", b"\n"):
                    break
            return b"".join(chunks)
        data = rfile.read(size)
        if len(data) < size:
            raise EOFError()
        chunks.append(data)
        rfile.readline(MAX_LINE + 1)  # CRLF after the chunk


def _keep_alive(req):
    conn_tokens = [t.strip().lower() for t in req.headers.get("connection", "").split(",")]
    if req.version == "HTTP/1.1":
        return "close" not in conn_tokens
    return "keep-alive" in conn_tokens


def _header_bytes(name, value):
    value = str(value).replace("\r", " ").replace("\n", " ")
    name = str(name).replace("\r", "").replace("\n", "").replace(":", "")
    line = name + ": " + value + "\r\n"
    try:
        return line.encode("latin-1")
    except UnicodeEncodeError:
        return line.encode("utf-8")


def _send(conn, status, headers, body, keep, head=False):
    if isinstance(status, int):
        status_line = "%d %s" % (status, _REASONS.get(status, "Unknown"))
    else:
        status_line = status
    out = [("HTTP/1.1 " + status_line + "\r\n").encode("latin-1", "replace")]
    for k, v in headers:
        out.append(_header_bytes(k, v))
    out.append(("Content-Length: %d\r\n" % len(body)).encode("ascii"))
    if not keep:
        out.append(b"Connection: close\r\n")
    out.append(b"\r\n")
    head_bytes = b"".join(out)
    if head or not body:
        conn.sendall(head_bytes)
    elif len(body) <= 65536:
        conn.sendall(head_bytes + body)
    else:
        conn.sendall(head_bytes)
        conn.sendall(body)


class _SocketReader(io.RawIOBase):
    """What `socket.makefile("rb")` gives, over a bare `_socket.socket`."""

    def __init__(self, sock):
        io.RawIOBase.__init__(self)
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buf):
        return self._sock.recv_into(buf)


def _handle_connection(conn, peer):
    rfile = io.BufferedReader(_SocketReader(conn), 65536)
    try:
        while True:
            try:
                req = _read_request(rfile, conn, peer)
            except _BadRequest as e:
                _send(conn, 400, [("Content-Type", "text/plain")], str(e).encode(), False)
                return
            if req is None:
                return
            keep = _keep_alive(req)
            try:
                status, headers, body = _dispatch(req)
            except Exception as e:  # a bug in the runtime itself: answer, keep serving
                status, headers, body = _error_response(e, req.headers.get("x-fc-request-id", ""))
            _send(conn, status, headers, body, keep, head=(req.method == "HEAD"))
            if not keep:
                return
    except (EOFError, OSError, ValueError):
        pass
    finally:
        try:
            rfile.close()
        except Exception:
            pass
        try:
            conn.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------------------------

def _dispatch(req):
    control = req.headers.get("x-fc-control-path", "")
    if control == "/http-invoke":
        return _do_http_invoke(req)
    route = control or req.target.split("?", 1)[0]
    if route == "/invoke":
        return _do_invoke(req)
    if route == "/initialize":
        return _do_initialize(req)
    if route == "/pre-stop":
        return _do_lifecycle(req, "PreStop", "x-fc-instance-lifecycle-pre-stop-handler")
    if route == "/pre-freeze":
        return _do_lifecycle(req, "PreFreeze", "x-fc-instance-lifecycle-pre-freeze-handler")
    return 400, [("Content-Type", "text/plain")], ("unknown control path %r" % route).encode("utf-8")


def _handler_name(req):
    return req.headers.get("x-fc-function-handler") or _ENV.get("FC_FUNCTION_HANDLER", "")


def _do_invoke(req):
    rid = req.headers.get("x-fc-request-id", "")
    _tls.request_id = rid
    _marker("Invoke", "Start", rid)
    try:
        try:
            fn = load_function(_handler_name(req))
            context = _make_context(req.headers)
            result = fn(req.body, context)
            body, ctype = _encode_result(result)
            return 200, [("Content-Type", ctype)], body
        except BaseException as e:  # SystemExit/KeyboardInterrupt from user code must not stop the runtime
            return _error_response(e, rid)
    finally:
        _marker("Invoke", "End", rid)
        _tls.request_id = ""


_init_lock = threading.Lock()
_init_done = False


def _do_initialize(req):
    global _init_done
    rid = req.headers.get("x-fc-request-id", "")
    name = req.headers.get("x-fc-function-initializer") or _ENV.get("FC_FUNCTION_INITIALIZER", "")
    with _init_lock:
        if _init_done or not name:
            return 200, [], b""
        _tls.request_id = rid
        _marker("Initialize", "Start", rid)
        try:
            try:
                fn = load_function(name)
                context = _make_context(req.headers, "x-fc-initialization-timeout", "FC_INITIALIZATION_TIMEOUT")
                fn(context)
                _init_done = True
                return 200, [], b""
            except BaseException as e:
                return _error_response(e, rid)
        finally:
            _marker("Initialize", "End", rid)
            _tls.request_id = ""


def _do_lifecycle(req, kind, header):
    rid = req.headers.get("x-fc-request-id", "")
    name = req.headers.get(header, "")
    if not name:
        return 200, [], b""
    _tls.request_id = rid
    _marker(kind, "Start", rid)
    try:
        try:
            fn = load_function(name)
            fn(_make_context(req.headers))
            return 200, [], b""
        except BaseException as e:
            return _error_response(e, rid)
    finally:
        _marker(kind, "End", rid)
        _tls.request_id = ""


def _split_target(target):
    if target.startswith("http://") or target.startswith("https://"):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    return path or "/", query


def _do_http_invoke(req):
    rid = req.headers.get("x-fc-request-id", "")
    _tls.request_id = rid
    _marker("Invoke", "Start", rid)
    try:
        try:
            fn = load_function(_handler_name(req))
            context = _make_context(req.headers)
            status, headers, body = _call_wsgi(fn, req, context)
            return status, headers, body
        except BaseException as e:
            return _error_response(e, rid)
    finally:
        _marker("Invoke", "End", rid)
        _tls.request_id = ""


def _call_wsgi(app, req, context):
    from io import BytesIO
    from urllib.parse import unquote_to_bytes

    path, query = _split_target(req.target)
    hd = req.headers
    host = hd.get("host", "")
    server_name, server_port = host, "80"
    if host.startswith("["):
        end = host.find("]")
        server_name, rest = host[:end + 1], host[end + 1:]
        if rest.startswith(":"):
            server_port = rest[1:]
    elif ":" in host:
        server_name, server_port = host.rsplit(":", 1)
    scheme = hd.get("x-forwarded-proto", "http").split(",")[0].strip() or "http"
    if not server_name:
        server_name, server_port = "localhost", _ENV.get("FC_CUSTOM_LISTEN_PORT", "9000")
    environ = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "REQUEST_URI": req.target,
        "RAW_URI": req.target,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": req.version,
        "REMOTE_ADDR": hd.get("x-fc-client-ip") or (req.peer[0] if req.peer else ""),
        "REMOTE_PORT": str(req.peer[1]) if req.peer and len(req.peer) > 1 else "",
        "CONTENT_LENGTH": str(len(req.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": BytesIO(req.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "fc.context": context,
        "fc.request_uri": hd.get("x-fc-request-uri") or req.target,
    }
    for name, value in req.header_list:
        if name.startswith(_HIDDEN_REQUEST_PREFIX) or name in ("transfer-encoding", "content-length"):
            continue
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            environ[key] = environ[key] + ("; " if name == "cookie" else ",") + value
        else:
            environ[key] = value

    state = {}
    written = []

    def start_response(status, headers, exc_info=None):
        if exc_info:
            try:
                if state.get("body_started"):
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif "status" in state:
            raise AssertionError("start_response() called twice without exc_info")
        if not isinstance(status, str) or len(status) < 3 or not status[:3].isdigit():
            raise ValueError("invalid WSGI status %r" % (status,))
        state["status"] = status
        state["headers"] = list(headers)
        return written.append

    result = app(environ, start_response)
    # FC's runtime serves a bare bytes/str return as the whole body; iterating it would send it one byte or
    # character at a time (bytes iterate as ints).
    if isinstance(result, (bytes, bytearray, memoryview)):
        result = [bytes(result)]
    elif isinstance(result, str):
        result = [result.encode("utf-8")]
    try:
        for chunk in result:
            if chunk:
                state["body_started"] = True
                written.append(chunk if isinstance(chunk, (bytes, bytearray)) else str(chunk).encode("utf-8"))
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in state:
        raise RuntimeError("the WSGI application returned without calling start_response()")
    status = state["status"]
    if len(status) == 3:
        status = status + " " + _REASONS.get(int(status), "Unknown")
    headers = []
    for k, v in state["headers"]:
        lk = str(k).lower()
        if lk in _DROPPED_RESPONSE_HEADERS or lk.startswith("x-fc-"):
            continue
        headers.append((k, v))
    body = b"".join(bytes(c) for c in written)
    return status, headers, body


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------

def _prepare_process():
    # The code dir replaces the bootstrap's own directory at the head of sys.path; layers follow it.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(_BOOTSTRAP_FILE):
        sys.path[0] = CODE_DIR
    else:
        sys.path.insert(0, CODE_DIR)
    layer_site = "/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2]
    for extra in (layer_site, "/opt/python"):
        if os.path.isdir(extra) and extra not in sys.path:
            sys.path.insert(1, extra)
    # The built-ins go after the standard library (none may shadow it) and before the interpreter's own site
    # directories (the host distribution's packages would otherwise mix other versions into the set).
    if os.path.isdir(BUILTINS_DIR) and BUILTINS_DIR not in sys.path:
        at = next((i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))
                   and not p.startswith(("/code", "/opt"))), len(sys.path))
        sys.path.insert(at, BUILTINS_DIR)
    try:
        os.chdir(CODE_DIR)
    except OSError:
        pass
    # Unbuffered even without -u (a no-op with -u).
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, write_through=True)
        except Exception:
            pass


def serve(port=None):
    if port is None:
        port = int(_ENV.get("FC_CUSTOM_LISTEN_PORT") or 9000)
    srv = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    srv.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    srv.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1024)
    _prepare_process()
    accept = srv._accept
    while True:
        try:
            fd, peer = accept()
            conn = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, fd)
        except OSError:
            import time
            time.sleep(0.01)  # EMFILE and friends: back off, keep serving
            continue
        try:
            conn.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            t = threading.Thread(target=_handle_connection, args=(conn, peer), name="fc-conn")
            t.daemon = True
            t.start()
        except Exception:
            try:
                conn.close()
            except Exception:
                pass


def await_function():
    """A pre-started runtime (OPENFC_PRESTARTED=1): everything the shim needs is imported now, while no function
    is known; then one line on stdin — written by the sandbox's init once the function's package is at /code —
    gives the function's environment. os.environ assignments call putenv, so native code sees it too."""
    import json
    import traceback  # noqa: F401  (used by the error paths; imported ahead like the rest)
    import time  # noqa: F401
    import importlib  # noqa: F401
    import base64  # noqa: F401
    import importlib.util  # noqa: F401
    import logging  # noqa: F401  (the function's logger is set up at its first request: ~3 ms of imports)
    import urllib.parse  # noqa: F401
    line = sys.stdin.buffer.readline()
    if not line:
        sys.exit(0)  # no function came: openfc discarded this runtime
    for key, value in json.loads(line)["env"]:
        _ENV[key] = value
    _ENV.pop("OPENFC_PRESTARTED", None)


if __name__ == "__main__":
    try:
        if _ENV.get("OPENFC_PRESTARTED") == "1":
            await_function()
        serve()
    except KeyboardInterrupt:
        pass
