"""Keep-alive connections to a runtime that closes idle ones (Node's http server does after 5 s, many
frameworks do): the next invocation must open a new connection, not fail on the closed one and take the
instance down with it."""

import time

from invoke_helpers import code_zip, dedent, invoke, new_function, new_service

# A custom runtime whose server drops a keep-alive connection after 0.2 s without a request.
IMPATIENT = dedent('''
    #!/usr/bin/python3 -u
    import http.server, os

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 0.2  # idle keep-alive connections are closed after this

        def log_message(self, *args):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class S(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True

    S(("0.0.0.0", int(os.environ.get("FC_CUSTOM_LISTEN_PORT", "9000"))), H).serve_forever()
''')


def test_a_connection_the_runtime_closed_while_idle_is_replaced(start_server):
    srv = start_server()
    svc = new_service(srv, "keepalive")
    fn = new_function(srv, svc, code_zip({"bootstrap": (IMPATIENT, 0o755)}), runtime="custom", handler="x")
    instances = set()
    for i in range(4):
        inv = invoke(srv, svc, fn, f"event {i}".encode())
        assert inv.status == 200 and inv.error_type is None, inv.describe()
        assert inv.body == f"event {i}".encode()
        instances.add(inv.instance_id)
        time.sleep(0.5)  # longer than the runtime keeps an idle connection
    assert len(instances) == 1, f"the instance was replaced: {instances}"
