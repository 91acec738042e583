"""Runtime built-ins (issue 13 item 2): the modules FC's Python and Node.js runtimes ship built in, installed by
`openfc runtimes install` and shown read-only at /var/fc/runtime/builtins. Functions import them without bundling
them, in fresh and pre-started runtimes alike; a function's own copy wins; nothing can write there; and without an
installed set, importing one names the command that installs it."""

import errno
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import openfc_bin
from invoke_helpers import (code_zip, dedent, health, invoke_fails, invoke_json, new_function, new_service, node_zip, py_zip,
                            wait_until)

pytestmark = pytest.mark.timeout(300)

SET_DIR = "/var/fc/runtime/builtins/v1"
# Node.js reports a module's real path: through the `v1` link, the set's own directory.
NODE_SET = re.compile(r"/var/fc/runtime/builtins/v1(-[0-9a-f]{12})?/nodejs/node_modules/")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def builtins_dir():
    """The installed set: scripts/test.sh installs it once per .testenv (OPENFC_TEST_BUILTINS_DIR); run alone, the
    test installs it there itself (the command is idempotent: a stat when it is there)."""
    d = os.environ.get("OPENFC_TEST_BUILTINS_DIR") or str(ROOT / ".testenv" / "builtins")
    subprocess.run([str(openfc_bin()), "runtimes", "install", "--builtins-dir", d], check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    return d


def used(srv):
    for line in srv.metrics().splitlines():
        if line.startswith("openfc_prestarted_runtimes_used_total"):
            return float(line.split()[-1])
    return 0.0


def start(server_factory, builtins, mode):
    prestarted = "1" if mode == "prestarted" else "0"
    s = server_factory.start("sqlite", args=["--builtins-dir", str(builtins), "--prestarted-runtimes", prestarted])
    if mode == "prestarted":
        wait_until(lambda: all(health(s)["prestarted_runtimes"][r]["waiting"] == 1 for r in ("python", "nodejs")), 60,
                   what="the pre-started pools filled")
    return s


class Env:
    """A server in one start mode; `run` invokes a new function and checks where its instance came from."""

    def __init__(self, srv, mode):
        self.srv, self.mode = srv, mode
        self.svc = new_service(srv, "bltn")

    def function(self, pkg, runtime, **fields):
        return new_function(self.srv, self.svc, pkg, runtime=runtime, **fields)

    def ready(self, runtime):
        """Before a cold start: a pre-started runtime of its language waits (the pool refills after each use)."""
        if self.mode == "prestarted":
            family = "python" if runtime.startswith("python") else "nodejs"
            wait_until(lambda: health(self.srv)["prestarted_runtimes"][family]["waiting"] == 1, 60,
                       what=f"a pre-started {family} runtime")
        return used(self.srv)

    def from_pool(self, before):
        if self.mode == "prestarted":
            assert used(self.srv) == before + 1, "the instance did not come from the pre-started pool"
        else:
            assert used(self.srv) == before

    def run(self, pkg, runtime, payload=b"{}"):
        fn = self.function(pkg, runtime)
        before = self.ready(runtime)
        out, _ = invoke_json(self.srv, self.svc, fn, payload)
        self.from_pool(before)
        return out

    def fails(self, pkg, runtime):
        fn = self.function(pkg, runtime)
        before = self.ready(runtime)
        body, _ = invoke_fails(self.srv, self.svc, fn, b"{}")
        self.from_pool(before)
        return body


@pytest.fixture(scope="module", params=["fresh", "prestarted"])
def env(request, server_factory, builtins_dir):
    s = start(server_factory, builtins_dir, request.param)
    yield Env(s, request.param)
    s.close()


@pytest.fixture(scope="module", params=["fresh", "prestarted"])
def bare(request, server_factory, tmp_path_factory):
    """A server whose built-ins directory holds no set (searchable by the instances' user, as openfc makes it)."""
    empty = tmp_path_factory.mktemp("no-builtins")
    empty.chmod(0o755)
    s = start(server_factory, empty, request.param)
    yield Env(s, request.param)
    s.close()


PY_USES_BUILTINS = '''
import json
import oss2, tablestore, fc2, aliyunsdkcore, mns.account
from aliyun.log import LogClient

def handler(event, context):
    crc = oss2.utils.Crc64()
    crc.update(b"123456789")
    client = fc2.Client(endpoint="http://127.0.0.1:1", accessKeyID="ak", accessKeySecret="sk")
    ots = tablestore.OTSClient("http://127.0.0.1:1", "ak", "sk", "instance")
    LogClient("http://127.0.0.1:1", "ak", "sk")
    return json.dumps({
        "files": {m.__name__: m.__file__ for m in (oss2, tablestore, fc2, aliyunsdkcore)},
        "oss2": oss2.__version__,
        "crc64": str(crc.crc),
        "fc2_client": type(client).__name__,
        "ots_client": type(ots).__name__,
    })
'''

NODE_USES_BUILTINS = '''
const co = require('co');
const getRawBody = require('raw-body');
const OSS = require('ali-oss');
const FCClient = require('@alicloud/fc2');
const TableStore = require('tablestore');
const { Readable } = require('stream');

exports.handler = (event, context, callback) => {
  co(function* () {
    const raw = yield getRawBody(Readable.from([Buffer.from('raw '), Buffer.from('body')]));
    const oss = new OSS({ region: 'oss-cn-hangzhou', accessKeyId: 'ak', accessKeySecret: 'sk', bucket: 'bkt' });
    const fc = new FCClient('123', { accessKeyID: 'ak', accessKeySecret: 'sk', region: 'cn-hangzhou' });
    const ots = new TableStore.Client({ accessKeyId: 'ak', secretAccessKey: 'sk', endpoint: 'http://127.0.0.1:1',
      instancename: 'instance' });
    return {
      files: ['co', 'raw-body', 'ali-oss', '@alicloud/fc2', 'tablestore'].reduce((o, m) => (o[m] = require.resolve(m), o), {}),
      raw: raw.toString(),
      oss: typeof oss.put,
      fc: typeof fc.invokeFunction,
      ots: typeof ots.getRow,
      nodePath: process.env.NODE_PATH,
    };
  }).then((out) => callback(null, JSON.stringify(out)), callback);
};
'''


def test_python_imports_the_builtins_without_bundling_them(env):
    out = env.run(py_zip(PY_USES_BUILTINS), "python3.10")
    assert all(f.startswith(SET_DIR + "/python/") for f in out["files"].values()), out
    # FC's python3.9 image pins oss2 2.15.0; its CRC-64 is the reference implementation (crcmod).
    assert out["oss2"] == "2.15.0", out
    assert out["crc64"] == "11051210869376104954", out
    assert (out["fc2_client"], out["ots_client"]) == ("Client", "OTSClient"), out


def test_node_requires_the_builtins_without_bundling_them(env):
    out = env.run(node_zip(NODE_USES_BUILTINS), "nodejs16")
    assert all(NODE_SET.match(f) for f in out["files"].values()), out
    assert out["raw"] == "raw body", out
    assert (out["oss"], out["fc"], out["ots"]) == ("function", "function", "function"), out
    # Last on NODE_PATH: the function's own modules and its layers come first.
    assert out["nodePath"].split(":")[-1] == SET_DIR + "/nodejs/node_modules", out


def test_a_function_s_own_copy_wins(env):
    py = env.run(code_zip({
        "index.py": dedent('''
            import json, oss2, tablestore
            def handler(event, context):
                return json.dumps({"oss2": oss2.__version__, "file": oss2.__file__, "tablestore": tablestore.__file__})
        '''),
        "oss2/__init__.py": "__version__ = 'bundled'\n",
    }), "python3.10")
    assert (py["oss2"], py["file"]) == ("bundled", "/code/oss2/__init__.py"), py
    assert py["tablestore"].startswith(SET_DIR + "/python/"), py
    node = env.run(code_zip({
        "index.js": dedent('''
            exports.handler = (event, context, callback) => callback(null, JSON.stringify({
              co: require('co').bundled || null, file: require.resolve('co'), rawBody: require.resolve('raw-body') }));
        '''),
        "node_modules/co/package.json": json.dumps({"name": "co", "version": "0.0.1", "main": "index.js"}),
        "node_modules/co/index.js": "module.exports = { bundled: 'yes' };\n",
    }), "nodejs16")
    assert (node["co"], node["file"]) == ("yes", "/code/node_modules/co/index.js"), node
    assert NODE_SET.match(node["rawBody"]), node


PY_WRITES = '''
import errno, json, os

def attempt(f):
    try:
        f()
        return "written"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def handler(event, context):
    site = "/var/fc/runtime/builtins/v1/python"
    target = os.path.join(site, "oss2", "__init__.py")
    mount = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == "/var/fc/runtime/builtins"]
    return json.dumps({
        "create": attempt(lambda: open(os.path.join(site, "planted.py"), "w").write("x")),
        "unlink": attempt(lambda: os.unlink(target)),
        "rename": attempt(lambda: os.rename(target, target + ".moved")),
        "mkdir": attempt(lambda: os.mkdir("/var/fc/runtime/builtins/v2")),
        "options": mount[0][5].split(",") if mount else None,
        "uid": os.getuid(),
    })
'''


def test_nothing_can_write_into_the_builtins(env):
    out = env.run(py_zip(PY_WRITES), "python3.10")
    erofs = errno.errorcode[errno.EROFS]
    # EROFS, not a permission error: the mount itself is read-only (files owned by root would refuse nobody anyway).
    assert {k: out[k] for k in ("create", "unlink", "rename", "mkdir")} == dict.fromkeys(
        ("create", "unlink", "rename", "mkdir"), erofs), out
    assert out["options"] is not None and {"ro", "nosuid", "nodev"} <= set(out["options"]), out
    assert out["uid"] == 65534, out
    node = env.run(node_zip('''
        const fs = require('fs');
        exports.handler = (event, context, callback) => {
          let code = 'written';
          try { fs.writeFileSync('/var/fc/runtime/builtins/v1/nodejs/node_modules/co/planted.js', 'x'); }
          catch (e) { code = e.code; }
          callback(null, JSON.stringify({ code }));
        };
    '''), "nodejs16")
    assert node == {"code": "EROFS"}, node


def test_without_an_installed_set_the_error_names_the_command(bare):
    body = bare.fails(py_zip("import oss2\n\ndef handler(event, context):\n    return 'unreachable'\n"), "python3.10")
    assert body["errorType"] == "ModuleNotFoundError", body
    assert "No module named 'oss2'" in body["errorMessage"] and "openfc runtimes install" in body["errorMessage"], body
    body = bare.fails(node_zip('''
        const OSS = require('ali-oss');
        exports.handler = (event, context, callback) => callback(null, 'unreachable');
    '''), "nodejs16")
    assert "Cannot find module 'ali-oss'" in body["errorMessage"], body
    assert "openfc runtimes install" in body["errorMessage"], body
    # A module that is no built-in gets no such advice.
    body = bare.fails(py_zip("import no_such_module_here\n\ndef handler(event, context):\n    return 1\n"), "python3.10")
    assert "openfc runtimes install" not in body["errorMessage"], body


def test_the_cli_lists_the_set_and_a_second_install_does_nothing(builtins_dir, tmp_path):
    run = lambda *a: subprocess.run([str(openfc_bin()), "runtimes", *a, "--builtins-dir", builtins_dir],
                                    capture_output=True, text=True, timeout=120, check=True).stdout
    again = run("install")
    assert "nothing to do" in again, again
    listed = run("list")
    for line in ("oss2==2.15.0", "tablestore==5.2.1", "aliyun-fc2==2.5.0", "co@4.6.0", "raw-body@2.4.1",
                 "ali-oss@6.6.0", "@alicloud/fc2@2.2.0", "tablestore@5.0.7"):
        assert "  " + line in listed.splitlines(), (line, listed)
    link = os.readlink(os.path.join(builtins_dir, "v1"))
    assert re.fullmatch(r"v1-[0-9a-f]{12}", link) and link in listed, (link, listed)
    # Only the listed modules are at the top of node_modules: their dependencies cannot be required on their own.
    top = sorted(n for n in os.listdir(os.path.join(builtins_dir, "v1", "nodejs", "node_modules")) if not n.startswith("."))
    assert top == ["@alicloud", "ali-mns", "ali-oss", "aliyun-sdk", "body", "co", "gm", "raw-body", "tablestore"], top
    empty = subprocess.run([str(openfc_bin()), "runtimes", "list", "--builtins-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert "openfc runtimes install" in empty, empty


def test_runtimes_started_before_a_set_was_installed_see_it(server_factory, tmp_path):
    """The directory, not a set, is what instances are shown: a set switched in later is seen by the runtimes that
    were already waiting (a hand-made set here, marked so it cannot be mistaken for a real one)."""
    tmp_path.chmod(0o755)
    env = Env(start(server_factory, tmp_path, "prestarted"), "prestarted")
    try:
        body = env.fails(py_zip("import oss2\n\ndef handler(event, context):\n    return 1\n"), "python3.10")
        assert "openfc runtimes install" in body["errorMessage"], body
        for family in ("python", "nodejs"):
            env.ready(family)  # these waiting runtimes started before the set below existed
        late = tmp_path / "v1-0123456789ab"
        (late / "python" / "oss2").mkdir(parents=True)
        (late / "python" / "oss2" / "__init__.py").write_text("__version__ = 'installed-later'\n")
        (late / "nodejs" / "node_modules" / "co").mkdir(parents=True)
        (late / "nodejs" / "node_modules" / "co" / "index.js").write_text("module.exports = 'installed-later';\n")
        os.symlink(late.name, tmp_path / "v1")
        py = env.run(py_zip("import json, oss2\n\ndef handler(event, context):\n    return json.dumps(oss2.__version__)\n"),
                     "python3.10")
        node = env.run(node_zip("exports.handler = (e, c, cb) => cb(null, JSON.stringify(require('co')));\n"), "nodejs16")
        assert (py, node) == ("installed-later", "installed-later"), (py, node)
    finally:
        env.srv.close()
